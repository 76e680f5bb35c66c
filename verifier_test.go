package clerkauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
)

// testNow is the fixed clock of the verifier tests: whole seconds, so the
// leeway boundaries below are exact.
var testNow = time.Unix(1_800_000_000, 0)

// startKeySet runs a real key set against url and waits until its first
// fetch has ended.
func startKeySet(t testing.TB, url string, header http.Header, opts jwks.Options) *jwks.Set {
	t.Helper()
	ks := jwks.New(url, header, opts, zap.NewNop())
	ks.Start()
	t.Cleanup(func() { _ = ks.Destruct() })
	<-ks.Settled()
	return ks
}

func newTestVerifier(t *testing.T, iss *clerktest.Issuer) *verifier {
	t.Helper()
	iss.SetNow(func() time.Time { return testNow })
	v := newVerifier(startKeySet(t, iss.JWKSURL(), nil, jwks.DefaultOptions), verifierConfig{
		issuers: []string{iss.URL},
		leeway:  defaultLeeway,
	})
	v.now = func() time.Time { return testNow }
	return v
}

func claimsOpt(kv ...any) clerktest.Option {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return clerktest.WithClaims(m)
}

func headerOpt(kv ...any) clerktest.Option {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return clerktest.WithHeader(m)
}

func TestVerify(t *testing.T) {
	iss := clerktest.Start(t)
	other := clerktest.Start(t)
	v := newTestVerifier(t, iss)
	now := testNow.Unix()
	ecKey := clerktest.WithAlg("ES256")

	cases := []struct {
		name   string
		token  string
		reason string // "" = valid
		class  string
		setup  func(v *verifier)
	}{
		{name: "session", token: iss.Mint(), class: TokenTypeSession},
		{name: "template", token: iss.Mint(clerktest.Template()), class: TokenTypeTemplate},
		{name: "no cat, with sid", token: iss.Mint(headerOpt("cat", nil)), class: TokenTypeSession},
		{name: "no cat, no sid", token: iss.Mint(headerOpt("cat", nil), claimsOpt("sid", nil)), class: TokenTypeTemplate},
		{name: "ignore cat decides by sid", token: iss.Mint(headerOpt("cat", clerktest.CatIgnore)), class: TokenTypeSession},
		{name: "no typ", token: iss.Mint(headerOpt("typ", nil)), class: TokenTypeSession},
		{name: "issuer with trailing slash", token: iss.Mint(claimsOpt("iss", iss.URL+"/")), class: TokenTypeSession},
		{name: "unknown header params are ignored", token: iss.Mint(headerOpt("oiat", 1)), class: TokenTypeSession},

		{name: "M2M category", token: iss.Mint(clerktest.M2M()), reason: ReasonTypeMismatch},
		{name: "unknown category", token: iss.Mint(headerOpt("cat", "cl_new")), reason: ReasonTypeMismatch},
		{name: "machine subject", token: iss.Mint(claimsOpt("sub", "mch_123")), reason: ReasonTypeMismatch},
		{name: "OAuth typ", token: iss.Mint(headerOpt("typ", "at+jwt")), reason: ReasonTypeMismatch},
		{name: "typ lowercase", token: iss.Mint(headerOpt("typ", "jwt")), reason: ReasonTokenInvalid},
		{name: "typ empty", token: iss.Mint(headerOpt("typ", "")), reason: ReasonTokenInvalid},
		{name: "crit header", token: iss.Mint(headerOpt("crit", []string{"exp"})), reason: ReasonTokenInvalid},
		{name: "RS384 with a key pinned to RS256", token: iss.Mint(clerktest.WithAlg("RS384")), reason: ReasonInvalidAlgorithm},
		{name: "RS512 with a key pinned to RS256", token: iss.Mint(clerktest.WithAlg("RS512")), reason: ReasonInvalidAlgorithm},
		{name: "alg none", token: iss.Mint(clerktest.WithAlg("none")), reason: ReasonInvalidAlgorithm},
		{name: "alg HS256 with public key", token: iss.Mint(clerktest.WithAlg("HS256"), clerktest.WithHMACSecret([]byte(iss.PublicKeyPEM()))), reason: ReasonInvalidAlgorithm},
		{name: "alg ES256", token: iss.Mint(ecKey), reason: ReasonInvalidAlgorithm},
		{name: "alg PS256", token: iss.Mint(clerktest.WithAlg("PS256")), reason: ReasonInvalidAlgorithm},
		{name: "embedded jwk is not used", token: iss.Mint(clerktest.WithKey(other.PrivateKey()), headerOpt("jwk", map[string]any{"kty": "RSA"}, "jku", other.JWKSURL())), reason: ReasonInvalidSignature},
		{name: "wrong key", token: iss.Mint(clerktest.WithKey(other.PrivateKey())), reason: ReasonInvalidSignature},
		{name: "unknown kid", token: other.Mint(), reason: ReasonKIDMismatch},
		{name: "no kid", token: iss.Mint(headerOpt("kid", nil)), reason: ReasonKIDMismatch},

		{name: "expired beyond leeway", token: iss.Mint(claimsOpt("exp", now-6)), reason: ReasonTokenExpired},
		{name: "expired exactly at leeway", token: iss.Mint(claimsOpt("exp", now-5)), reason: ReasonTokenExpired},
		{name: "expired within leeway", token: iss.Mint(claimsOpt("exp", now-4)), class: TokenTypeSession},
		{name: "nbf beyond leeway", token: iss.Mint(claimsOpt("nbf", now+6)), reason: ReasonNotActiveYet},
		{name: "nbf exactly at leeway", token: iss.Mint(claimsOpt("nbf", now+5)), class: TokenTypeSession},
		{name: "iat beyond leeway", token: iss.Mint(claimsOpt("iat", now+6)), reason: ReasonIATInFuture},
		{name: "iat exactly at leeway", token: iss.Mint(claimsOpt("iat", now+5)), class: TokenTypeSession},
		{name: "float times", token: iss.Mint(claimsOpt("exp", float64(now)+30.5, "iat", float64(now)-0.25)), class: TokenTypeSession},
		{name: "huge exp", token: iss.Mint(claimsOpt("exp", 1e300)), class: TokenTypeSession},
		{name: "huge negative exp", token: iss.Mint(claimsOpt("exp", -1e300)), reason: ReasonTokenExpired},
		{name: "huge nbf", token: iss.Mint(claimsOpt("nbf", 1e300)), reason: ReasonNotActiveYet},

		{name: "missing sub", token: iss.Mint(claimsOpt("sub", nil)), reason: ReasonVerificationFailed},
		{name: "numeric sub", token: iss.Mint(claimsOpt("sub", 42)), reason: ReasonVerificationFailed},
		{name: "missing exp", token: iss.Mint(claimsOpt("exp", nil)), reason: ReasonVerificationFailed},
		{name: "string exp", token: iss.Mint(claimsOpt("exp", "1900000000")), reason: ReasonVerificationFailed},
		{name: "string nbf", token: iss.Mint(claimsOpt("nbf", "0")), reason: ReasonVerificationFailed},
		{name: "null exp", token: clerktest.SegmentsJSON(`{"alg":"RS256","kid":"`+iss.KID()+`"}`, `{"sub":"user_1","exp":null,"iss":"`+iss.URL+`"}`, iss.PrivateKey()), reason: ReasonVerificationFailed},
		{name: "payload is an array", token: clerktest.SegmentsJSON(`{"alg":"RS256","kid":"`+iss.KID()+`"}`, `[1,2]`, iss.PrivateKey()), reason: ReasonVerificationFailed},
		{name: "header is an array", token: clerktest.SegmentsJSON(`["RS256"]`, `{}`, iss.PrivateKey()), reason: ReasonTokenInvalid},

		{name: "wrong issuer", token: iss.Mint(claimsOpt("iss", "https://clerk.example.com")), reason: ReasonInvalidIssuer},
		{name: "issuer case differs", token: iss.Mint(claimsOpt("iss", strings.ToUpper(iss.URL))), reason: ReasonInvalidIssuer},
		{name: "issuer with extra path", token: iss.Mint(claimsOpt("iss", iss.URL+"/x")), reason: ReasonInvalidIssuer},
		{name: "no issuer", token: iss.Mint(claimsOpt("iss", nil)), reason: ReasonInvalidIssuer},
		{name: "issuer array", token: iss.Mint(claimsOpt("iss", []string{iss.URL})), reason: ReasonInvalidIssuer},
		{name: "issuer number", token: iss.Mint(claimsOpt("iss", 42)), reason: ReasonInvalidIssuer},
		{name: "issuer object", token: iss.Mint(claimsOpt("iss", map[string]any{"iss": iss.URL})), reason: ReasonInvalidIssuer},
		{name: "issuer true", token: iss.Mint(claimsOpt("iss", true)), reason: ReasonInvalidIssuer},
		{name: "issuer null", token: clerktest.SegmentsJSON(`{"alg":"RS256","kid":"`+iss.KID()+`"}`, fmt.Sprintf(`{"sub":"user_1","exp":%d,"iss":null}`, now+60), iss.PrivateKey()), reason: ReasonInvalidIssuer},
		// azp is read into the identity, so even where no authorized
		// parties are configured it must be a string when present.
		{name: "azp array, no authorized parties", token: iss.Mint(claimsOpt("azp", []string{clerktest.DefaultAZP})), reason: ReasonInvalidAuthorizedPart},
		{name: "azp number, no authorized parties", token: iss.Mint(claimsOpt("azp", 42)), reason: ReasonInvalidAuthorizedPart},
		{name: "azp null, no authorized parties", token: iss.Mint(claimsOpt("azp", nil)), class: TokenTypeSession},
		// No audience configured: aud is never read, whatever its type (as
		// Clerk's verifyToken).
		{name: "aud number, no audience", token: iss.Mint(claimsOpt("aud", 42)), class: TokenTypeSession},
		{name: "aud object, no audience", token: iss.Mint(claimsOpt("aud", map[string]any{})), class: TokenTypeSession},
		{name: "aud array with a non-string, no audience", token: iss.Mint(claimsOpt("aud", []any{"api", 1})), class: TokenTypeSession},

		{name: "two segments", token: "a.b", reason: ReasonTokenInvalid},
		{name: "four segments", token: iss.Mint() + ".x", reason: ReasonTokenInvalid},
		{name: "bad base64", token: "!!!.e30.sig", reason: ReasonTokenInvalid},
		{name: "padded header", token: padFirst(iss.Mint()), reason: ReasonTokenInvalid},
		{name: "oversized", token: strings.Repeat("a", maxTokenSize+1), reason: ReasonTokenInvalid},
		{name: "truncated signature", token: truncateSignature(iss.Mint()), reason: ReasonInvalidSignature},
		{name: "empty signature", token: func() string { s := iss.Mint(); return s[:strings.LastIndex(s, ".")+1] }(), reason: ReasonInvalidSignature},
		{name: "payload swapped after signing", token: swapPayload(iss.Mint(), iss.Mint(claimsOpt("sub", "user_admin"))), reason: ReasonInvalidSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.verify(context.Background(), tc.token)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if id.TokenType != tc.class {
					t.Errorf("token type %q, want %q", id.TokenType, tc.class)
				}
				return
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("want reason %s, got %v (identity %+v)", tc.reason, err, id)
			}
			if ve.Reason != tc.reason {
				t.Fatalf("reason %s (%v), want %s", ve.Reason, ve, tc.reason)
			}
			if strings.Contains(ve.Error(), tc.token) && len(tc.token) > 20 {
				t.Fatal("error message contains the token")
			}
		})
	}
}

func TestVerifyAudienceAndAuthorizedParties(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)
	v.audiences = []string{"api", "api2"}
	v.authorizedParties = []string{"https://app.example.com"}
	azp := "https://app.example.com"

	cases := []struct {
		name   string
		token  string
		reason string
	}{
		{"aud string", iss.Mint(claimsOpt("aud", "api2", "azp", azp)), ""},
		{"aud array", iss.Mint(claimsOpt("aud", []string{"x", "api"}, "azp", azp)), ""},
		{"aud missing", iss.Mint(claimsOpt("azp", azp)), ReasonInvalidAudience},
		{"aud null", iss.Mint(claimsOpt("aud", nil, "azp", azp)), ReasonInvalidAudience},
		{"aud mismatch", iss.Mint(claimsOpt("aud", []string{"x"}, "azp", azp)), ReasonInvalidAudience},
		{"aud number", iss.Mint(claimsOpt("aud", 7, "azp", azp)), ReasonInvalidAudience},
		{"aud object", iss.Mint(claimsOpt("aud", map[string]any{"aud": "api"}, "azp", azp)), ReasonInvalidAudience},
		{"aud true", iss.Mint(claimsOpt("aud", true, "azp", azp)), ReasonInvalidAudience},
		{"aud array with a non-string", iss.Mint(claimsOpt("aud", []any{"api", 1}, "azp", azp)), ReasonInvalidAudience},
		{"aud array of numbers", iss.Mint(claimsOpt("aud", []int{1}, "azp", azp)), ReasonInvalidAudience},
		{"aud array with null", iss.Mint(claimsOpt("aud", []any{"api", nil}, "azp", azp)), ReasonInvalidAudience},
		{"aud empty array", iss.Mint(claimsOpt("aud", []string{}, "azp", azp)), ReasonInvalidAudience},
		{"aud empty string", iss.Mint(claimsOpt("aud", "", "azp", azp)), ReasonInvalidAudience},
		{"azp missing", iss.Mint(claimsOpt("aud", "api", "azp", nil)), ReasonInvalidAuthorizedPart},
		{"azp empty", iss.Mint(claimsOpt("aud", "api", "azp", "")), ReasonInvalidAuthorizedPart},
		{"azp look-alike", iss.Mint(claimsOpt("aud", "api", "azp", "https://app.example.com.evil")), ReasonInvalidAuthorizedPart},
		{"azp trailing slash", iss.Mint(claimsOpt("aud", "api", "azp", "https://app.example.com/")), ReasonInvalidAuthorizedPart},
		{"azp other scheme", iss.Mint(claimsOpt("aud", "api", "azp", "http://app.example.com")), ReasonInvalidAuthorizedPart},
		{"azp array holding the party", iss.Mint(claimsOpt("aud", "api", "azp", []string{azp})), ReasonInvalidAuthorizedPart},
		{"azp number", iss.Mint(claimsOpt("aud", "api", "azp", 42)), ReasonInvalidAuthorizedPart},
		{"azp object", iss.Mint(claimsOpt("aud", "api", "azp", map[string]any{"azp": azp})), ReasonInvalidAuthorizedPart},
		{"azp true", iss.Mint(claimsOpt("aud", "api", "azp", true)), ReasonInvalidAuthorizedPart},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.verify(context.Background(), tc.token)
			var ve *VerifyError
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.reason != "" && (!errors.As(err, &ve) || ve.Reason != tc.reason):
				t.Fatalf("got %v, want %s", err, tc.reason)
			}
		})
	}
}

func TestIdentityFromClaims(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)
	v.rolesClaim = "metadata.roles"

	id, err := v.verify(context.Background(), iss.Mint(
		clerktest.V1Org("org_1", "acme", "admin", "org:teams:read"),
		claimsOpt("metadata", map[string]any{"roles": []any{"admin", 3, "ops"}, "n": 1.50, "ok": true, "obj": map[string]any{"a": 1}}),
	))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{
		"id":                    clerktest.DefaultSubject,
		"session_id":            clerktest.DefaultSessionID,
		"org_id":                "org_1",
		"org_slug":              "acme",
		"org_role":              "org:admin", // old v1 tokens lack the prefix
		"org_permissions":       "org:teams:read",
		"roles":                 "admin,ops",
		"token_type":            "session",
		"azp":                   clerktest.DefaultAZP,
		"claims.metadata.n":     "1.5",
		"claims.metadata.ok":    "true",
		"claims.metadata.obj":   `{"a":1}`,
		"claims.metadata.roles": "admin,3,ops",
		"claims.sub":            clerktest.DefaultSubject,
		"claims.missing.path":   "",
		"claims.sub.deeper":     "",
		"no_such_field":         "",
	}
	for name, want := range checks {
		if got := id.placeholder(name); got != want {
			t.Errorf("{http.auth.user.%s} = %q, want %q", name, got, want)
		}
	}
	if !id.ExpiresAt.Equal(testNow.Add(time.Minute)) {
		t.Errorf("ExpiresAt %v", id.ExpiresAt)
	}

	t.Run("iat", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			opts []clerktest.Option
			want time.Time
		}{
			{"issued now", nil, testNow},
			{"issued earlier", []clerktest.Option{clerktest.IssuedAt(testNow.Add(-30 * time.Second))}, testNow.Add(-30 * time.Second)},
			{"no iat", []clerktest.Option{claimsOpt("iat", nil)}, time.Time{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id, err := v.verify(context.Background(), iss.Mint(tc.opts...))
				if err != nil {
					t.Fatal(err)
				}
				if !id.IssuedAt.Equal(tc.want) {
					t.Errorf("IssuedAt %v, want %v", id.IssuedAt, tc.want)
				}
			})
		}
	})

	t.Run("v2 org", func(t *testing.T) {
		id, err := v.verify(context.Background(), iss.Mint(clerktest.V2(clerktest.OrgV2{ID: "org_2", Slug: "beta", Role: "member"})))
		if err != nil {
			t.Fatal(err)
		}
		if id.OrgID != "org_2" || id.OrgSlug != "beta" || id.OrgRole != "org:member" {
			t.Fatalf("v2 org decoded as %q %q %q", id.OrgID, id.OrgSlug, id.OrgRole)
		}
	})
	t.Run("org fields without an org id are dropped", func(t *testing.T) {
		id, err := v.verify(context.Background(), iss.Mint(claimsOpt("org_role", "org:admin", "org_slug", "x")))
		if err != nil {
			t.Fatal(err)
		}
		if id.OrgRole != "" || id.OrgSlug != "" {
			t.Fatalf("org role %q slug %q without org_id", id.OrgRole, id.OrgSlug)
		}
	})
}

func TestRolesFrom(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{"admin", "admin"},
		{"admin,ops", "admin|ops"},
		{"admin ops, dev", "admin|ops|dev"},
		{[]any{"a", "", 1, "b"}, "a|b"},
		{map[string]any{"admin": true}, ""},
		{nil, ""},
	}
	for _, tc := range cases {
		if got := strings.Join(rolesFrom(tc.in), "|"); got != tc.want {
			t.Errorf("rolesFrom(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	cases := []struct {
		in      string
		token   string
		ok, err bool
	}{
		{"Bearer a.b.c", "a.b.c", true, false},
		{"bearer a.b.c", "a.b.c", true, false},
		{"BEARER   a.b.c", "a.b.c", true, false},
		{"a.b.c", "a.b.c", true, false},
		{"Basic dXNlcjpw", "", false, false},
		{"Token a.b.c", "", false, false},
		{"Bearer", "", false, true},
		{"Bearer ", "", false, true},
		{"Bearer a.b.c d", "", false, true},
		{"Bearer a.b.c\td", "", false, true},
		{"", "", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			tok, ok, err := bearerToken(tc.in)
			if tok != tc.token || ok != tc.ok || (err != nil) != tc.err {
				t.Fatalf("bearerToken(%q) = %q, %v, %v", tc.in, tok, ok, err)
			}
		})
	}
}

func truncateSignature(tok string) string {
	i := strings.LastIndex(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig[:len(sig)-3])
}

func padFirst(tok string) string {
	i := strings.Index(tok, ".")
	return tok[:i] + "=" + tok[i:]
}

// swapPayload puts b's payload under a's header and signature.
func swapPayload(a, b string) string {
	pa := strings.Split(a, ".")
	pb := strings.Split(b, ".")
	return pa[0] + "." + pb[1] + "." + pa[2]
}

func TestIdentityField(t *testing.T) {
	cases := map[string]string{
		"{http.auth.user.id}":                        "id",
		"{http.auth.user.claims.meta.tier}":          "claims.meta.tier",
		"user {http.auth.user.id}":                   "",
		"{http.auth.user.id}{http.auth.user.org_id}": "",
		"{http.request.host}":                        "",
		"{http.auth.user.}":                          "",
		"plain":                                      "",
	}
	for in, want := range cases {
		if got := identityField(in); got != want {
			t.Errorf("identityField(%q) = %q, want %q", in, got, want)
		}
	}
}

// A cold verification allocates little beyond crypto/rsa's own nine: the
// decoded header and payload, the identity and what it holds that is not a
// substring of the payload. Issue 11 sets the budget at 20 for a session
// token; a v2 token's org permissions are expanded into one new string per
// permission, on top of that.
func TestVerifyColdAllocations(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)
	cases := []struct {
		name string
		opts []clerktest.Option
		max  float64
	}{
		{"v1 session", nil, 20},
		{"v1 session with org", []clerktest.Option{clerktest.V1Org("org_1", "acme", "org:admin", "org:teams:read", "org:teams:manage")}, 20},
		{"v2 session with org and features", []clerktest.Option{
			clerktest.V2(clerktest.OrgV2{ID: "org_1", Slug: "acme", Role: "admin", Per: "manage,read", Fpm: "3,1"}),
			claimsOpt("fea", "o:teams,o:billing", "pla", "u:pro", "sts", "active"),
		}, 30},
		{"template with custom claims", []clerktest.Option{clerktest.Template(), claimsOpt("aud", "api", "roles", []string{"admin"})}, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := iss.Mint(tc.opts...)
			allocs := testing.AllocsPerRun(20, func() {
				if _, err := v.verify(context.Background(), token); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > tc.max {
				t.Errorf("a cold verification took %v allocations, want at most %v", allocs, tc.max)
			}
		})
	}
}
