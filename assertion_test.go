package clerkauth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// The assertion tests run a real Caddy that mints identity assertions on
// its routes and publishes their keys with clerk_identity_jwks, and check
// every assertion as an upstream would: with jwx, against the JWKS that
// Caddy serves.

const (
	assertionHeader  = "X-Clerk-Identity"
	identityJWKSPath = "/.well-known/clerk-identity/jwks.json"
	// caddyOrigin is the iss of an assertion whose route names none: the
	// origin the test requests arrive at.
	caddyOrigin = "http://localhost:9080"
)

// useFakeClock moves the handlers, the key rings and the Backend API
// clients created from now on, and iss's minting, to one fake clock. It
// must run before the config loads: the clocks are read at provisioning.
func useFakeClock(t *testing.T, iss *clerktest.Issuer) *fakeclock.Clock {
	t.Helper()
	clock := fakeclock.New(time.Now().Truncate(time.Second))
	timeNow, assertionClock, backendAPIClock = clock.Now, clock, clock.Now
	t.Cleanup(func() { timeNow, assertionClock, backendAPIClock = time.Now, nil, nil })
	iss.SetNow(clock.Now)
	return clock
}

// assertionBlock is an identity_assertion subdirective for audience, with
// more lines (issuer, ttl) inside its block.
func assertionBlock(audience string, lines ...string) string {
	return fmt.Sprintf("identity_assertion %s {\n\t\t\t\taudience %s\n\t\t\t\t%s\n\t\t\t}",
		assertionHeader, audience, strings.Join(lines, "\n\t\t\t\t"))
}

// startAssertionCaddy starts a Caddy whose storage is the folder storage,
// serving the identity JWKS at identityJWKSPath next to routes, and
// rendering refusals as reasonErrors does.
func startAssertionCaddy(t *testing.T, storage, options string, routes ...string) *caddytest.Tester {
	t.Helper()
	site := fmt.Sprintf(":%d {\n\thandle %s {\n\t\tclerk_identity_jwks\n\t}%s%s\n}",
		caddyPort, identityJWKSPath, strings.Join(routes, ""), reasonErrors)
	return startCaddyWithOptions(t, fmt.Sprintf("\tstorage file_system %s\n%s", storage, options), site)
}

// identityJWKS fetches the JWKS the Caddy under test publishes, and its
// ETag.
func identityJWKS(t *testing.T, tester *caddytest.Tester) (body []byte, etag string) {
	t.Helper()
	resp, text := do(t, tester, http.MethodGet, identityJWKSPath, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: status %d %q", resp.StatusCode, text)
	}
	return []byte(text), resp.Header.Get("ETag")
}

// verifyAssertion checks token as an upstream would with jwx: signature
// against jwks (kid and alg must match a key), exp and iat at now, and
// audience. It returns the claims exactly as signed.
func verifyAssertion(token string, jwks []byte, audience string, now time.Time) (map[string]any, error) {
	set, err := jwk.Parse(jwks)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if _, err := jwt.Parse([]byte(token),
		jwt.WithKeySet(set),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithAudience(audience),
	); err != nil {
		return nil, err
	}
	return assertionPayload(token)
}

// assertionPayload decodes the claims of a compact JWT without checking it.
func assertionPayload(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%d segments", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	return claims, dec.Decode(&claims)
}

// assertionKID is the kid in token's header.
func assertionKID(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Alg, Kid, Typ string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	if h.Alg != "ES256" || h.Typ != "JWT" || h.Kid == "" {
		t.Fatalf("assertion header %s: want alg ES256, typ JWT and a kid", raw)
	}
	return h.Kid
}

// assertionAt sends a request with token to path and returns the one
// assertion the upstream got.
func assertionAt(t *testing.T, tester *caddytest.Tester, up *upstream, path, token string) string {
	t.Helper()
	up.reset()
	resp, body := do(t, tester, http.MethodGet, path, bearer(token))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d %q", path, resp.StatusCode, body)
	}
	got := up.take()
	if len(got) != 1 {
		t.Fatalf("the upstream got %d requests, want 1", len(got))
	}
	vals := got[0].header.Values(assertionHeader)
	if len(vals) != 1 {
		t.Fatalf("upstream %s = %q, want one assertion", assertionHeader, vals)
	}
	return vals[0]
}

// unix is t as a JSON number claim.
func unix(t time.Time) json.Number { return json.Number(fmt.Sprint(t.Unix())) }

// TestIdentityAssertion: the upstream gets one assertion per authenticated
// request that verifies against the JWKS the same Caddy serves, states the
// token's identity, lives no longer than the token or the ttl, and is
// reused for a cached token until it is due for renewal. No client copy
// ever reaches the upstream, and anonymous requests carry none.
func TestIdentityAssertion(t *testing.T) {
	iss := clerktest.Start(t)
	clock := useFakeClock(t, iss)
	up := startUpstream(t)
	tester := startAssertionCaddy(t, t.TempDir(), "",
		machineRoute("/a", iss, up, "accept session m2m_token api_key", assertionBlock("https://a.internal")),
		machineRoute("/b", iss, up, assertionBlock("https://b.internal", "issuer https://gateway.example", "ttl 30s")),
		machineRoute("/opt", iss, up, "optional", assertionBlock("https://a.internal")),
	)
	jwks, _ := identityJWKS(t, tester)

	t.Run("claims", func(t *testing.T) {
		now := clock.Now()
		session := iss.Mint(
			clerktest.V1Org("org_1", "acme", "org:admin", "org:billing:manage", "org:teams:read"),
			clerktest.WithClaims(map[string]any{"roles": []string{"admin", "support"}}),
		)
		long := iss.Mint(clerktest.Lifetime(time.Hour))
		m2m := iss.Mint(clerktest.M2M(), clerktest.WithClaims(map[string]any{"scopes": "mch_2 mch_3"}))
		apiKey := iss.IssueAPIKey("user_2", []string{"read", "write"}, "ci", nil, time.Time{})
		tokenExp := unix(now.Add(clerktest.DefaultLifetime))
		sessionClaims := map[string]any{
			"iss": caddyOrigin, "aud": "https://a.internal", "sub": clerktest.DefaultSubject,
			"iat": unix(now), "exp": tokenExp, "token_type": TokenTypeSession, "clerk_iss": iss.URL,
			"sid": clerktest.DefaultSessionID, "azp": clerktest.DefaultAZP,
		}
		with := func(base map[string]any, kv ...any) map[string]any {
			out := map[string]any{}
			for k, v := range base {
				out[k] = v
			}
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(out, kv[i].(string))
				} else {
					out[kv[i].(string)] = kv[i+1]
				}
			}
			return out
		}
		cases := []struct {
			name, path, token, audience string
			want                        map[string]any
		}{
			{"session token with organization and roles", "/a/x", session, "https://a.internal", with(sessionClaims,
				"org_id", "org_1", "org_role", "org:admin",
				"org_permissions", []any{"org:billing:manage", "org:teams:read"}, "roles", []any{"admin", "support"})},
			{"token outliving the ttl: exp is now plus ttl", "/a/x", long, "https://a.internal", with(sessionClaims,
				"exp", unix(now.Add(defaultAssertionTTL)))},
			{"route with its own issuer and ttl", "/b/x", session, "https://b.internal", with(sessionClaims,
				"iss", "https://gateway.example", "aud", "https://b.internal", "exp", unix(now.Add(30*time.Second)),
				"org_id", "org_1", "org_role", "org:admin",
				"org_permissions", []any{"org:billing:manage", "org:teams:read"}, "roles", []any{"admin", "support"})},
			{"M2M JWT", "/a/x", m2m, "https://a.internal", with(sessionClaims,
				"sub", clerktest.DefaultM2MSubject, "token_type", TokenTypeM2M, "scopes", []any{"mch_2", "mch_3"},
				"sid", nil, "azp", nil)},
			{"API key without expiry: exp is now plus ttl", "/a/x", apiKey, "https://a.internal", map[string]any{
				"iss": caddyOrigin, "aud": "https://a.internal", "sub": "user_2", "iat": unix(now),
				"exp": unix(now.Add(defaultAssertionTTL)), "token_type": TokenTypeAPIKey, "scopes": []any{"read", "write"}}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				token := assertionAt(t, tester, up, tc.path, tc.token)
				assertionKID(t, token)
				got, err := verifyAssertion(token, jwks, tc.audience, now)
				if err != nil {
					t.Fatalf("the assertion does not verify against the served JWKS: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("claims\n got %v\nwant %v", got, tc.want)
				}
				other := map[string]string{"https://a.internal": "https://b.internal", "https://b.internal": "https://a.internal"}[tc.audience]
				if _, err := verifyAssertion(token, jwks, other, now); err == nil {
					t.Errorf("an assertion for %s verified for %s", tc.audience, other)
				}
			})
		}
	})

	t.Run("client copies never reach the upstream", func(t *testing.T) {
		forged := func(token string) http.Header {
			h := http.Header{}
			if token != "" {
				h = bearer(token)
			}
			h[assertionHeader] = []string{"forged.forged.forged", "second"}
			h["X-Clerk_Identity"] = []string{"forged-underscore"}
			h["x_clerk_identity"] = []string{"forged-lower-underscore"}
			h["X-CLERK-IDENTITY"] = []string{"forged-upper"}
			return h
		}
		cases := []struct {
			name, path, token string
			status            int
			minted            bool
		}{
			{"authenticated", "/a/x", iss.Mint(), http.StatusOK, true},
			{"anonymous on an optional route", "/opt/x", "", http.StatusOK, false},
			{"invalid token on an optional route", "/opt/x", "not-a-token", http.StatusOK, false},
			{"refused", "/a/x", "", http.StatusUnauthorized, false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				up.reset()
				resp, body := do(t, tester, http.MethodGet, tc.path, forged(tc.token))
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tc.status)
				}
				got := up.take()
				if tc.status != http.StatusOK {
					if len(got) != 0 {
						t.Fatal("a refused request reached the upstream")
					}
					return
				}
				h := got[0].header
				for name, vals := range h {
					if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), assertionHeader) && name != assertionHeader {
						t.Errorf("look-alike %s = %q reached the upstream", name, vals)
					}
				}
				vals := h.Values(assertionHeader)
				if !tc.minted {
					if len(vals) != 0 {
						t.Errorf("%s = %q on a request without identity", assertionHeader, vals)
					}
					return
				}
				if len(vals) != 1 {
					t.Fatalf("%s = %q, want the one minted assertion", assertionHeader, vals)
				}
				if _, err := verifyAssertion(vals[0], jwks, "https://a.internal", clock.Now()); err != nil {
					t.Errorf("the upstream's assertion does not verify: %v", err)
				}
			})
		}
	})

	t.Run("cached token keeps its assertion until renewal", func(t *testing.T) {
		long := iss.Mint(clerktest.Lifetime(time.Hour))
		first := assertionAt(t, tester, up, "/a/x", long)
		steps := []struct {
			name    string
			advance time.Duration
			same    bool
		}{
			{"again at once", 0, true},
			{"just before renewal", defaultAssertionTTL - assertionRenewal - time.Second, true},
			{"renewal due", time.Second, false},
		}
		for _, s := range steps {
			clock.Advance(s.advance)
			got := assertionAt(t, tester, up, "/a/x", long)
			if (got == first) != s.same {
				t.Fatalf("%s: same assertion %v, want %v", s.name, got == first, s.same)
			}
			if !s.same {
				claims, err := verifyAssertion(got, jwks, "https://a.internal", clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				if claims["iat"] != unix(clock.Now()) || claims["exp"] != unix(clock.Now().Add(defaultAssertionTTL)) {
					t.Errorf("renewed assertion iat %v exp %v: want minted now", claims["iat"], claims["exp"])
				}
			}
		}
	})

	t.Run("token near its exp", func(t *testing.T) {
		short := iss.Mint(clerktest.Lifetime(20 * time.Second))
		exp := clock.Now().Add(20 * time.Second)
		first := assertionAt(t, tester, up, "/a/x", short)
		claims, err := verifyAssertion(first, jwks, "https://a.internal", clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if claims["exp"] != unix(exp) {
			t.Errorf("exp %v, want the token's %v", claims["exp"], unix(exp))
		}
		// A fresh assertion would not live longer: the cached one stays
		// until the token itself expires.
		clock.Advance(19 * time.Second)
		if got := assertionAt(t, tester, up, "/a/x", short); got != first {
			t.Error("a token-bound assertion was re-minted before the token expired")
		}
	})
}
