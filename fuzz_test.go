package clerkauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
)

// Fuzz targets for everything that reads attacker-controlled bytes before
// (or instead of) a signature check: the request, the token's segments, the
// claims of a signed token, and the Caddyfile. Run one with e.g.
//
//	go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 60s .
//
// Seeds come from f.Add below and from testdata/fuzz/<FuzzName>/.

// fuzzIssuer is the iss of every token the fuzz targets sign.
const fuzzIssuer = "https://clerk.fuzz.example"

// Signature markers: a FuzzVerify input containing one of these has it
// replaced by a valid signature, over everything before the dot that
// precedes the marker, with the fuzz key. That lets the fuzzer mutate
// correctly signed tokens (and lets a crasher that needs a valid signature
// reproduce on a later run, whose key is a different random one).
var sigMarkers = map[string]crypto.Hash{
	"~RS256~": crypto.SHA256,
	"~RS384~": crypto.SHA384,
	"~RS512~": crypto.SHA512,
}

// fuzzKey is generated once per fuzzing process: the targets only need some
// key they hold. It is 1024-bit because FuzzClaims signs every input and
// FuzzVerify every marked one, several times faster than with 2048 bits;
// the 2048-bit minimum applies to configured keys, not to staticKey.
func fuzzKey(f *testing.F) *rsa.PrivateKey {
	f.Helper()
	k, err := clerktest.NewRSAKey(1024)
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// fuzzVerifier is the networkless configuration (jwt_key) with a fixed
// clock, so that a token's fate depends on its bytes alone.
func fuzzVerifier(key *rsa.PrivateKey) *verifier {
	v := newVerifier(staticKey{pub: &key.PublicKey}, verifierConfig{
		issuers:           []string{fuzzIssuer},
		authorizedParties: []string{clerktest.DefaultAZP},
		leeway:            defaultLeeway,
	})
	v.now = func() time.Time { return testNow }
	return v
}

// fuzzHeader is the header Clerk puts on session tokens.
const fuzzHeader = `{"alg":"RS256","cat":"cl_B7d4PD111AAA","kid":"ins_fuzz","typ":"JWT"}`

// fuzzPayload is a valid session payload at testNow.
var fuzzPayload = fmt.Sprintf(`{"azp":%q,"exp":%d,"iat":%d,"iss":%q,"nbf":%d,"sid":"sess_fuzz","sub":"user_fuzz"}`,
	clerktest.DefaultAZP, testNow.Unix()+60, testNow.Unix(), fuzzIssuer, testNow.Unix()-10)

func FuzzTokenFromRequest(f *testing.F) {
	pk, err := parsePublishableKey("pk_test_" + base64.RawStdEncoding.EncodeToString([]byte("clerk.fuzz.example$")))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct {
		auth1, auth2 string
		nAuth        uint8
		cookie       string
		withPK       bool
	}{
		{"Bearer a.b.c", "", 1, "", false},
		{"bearer   a.b.c", "", 1, "", false},
		{"a.b.c", "", 1, "", false},
		{"Basic dXNlcjpwYXNz", "", 1, "__session=a.b.c", false},
		{"Basic a.b.c", "", 1, "", false},
		{"Bearer", "", 1, "", false},
		{"Bearer a.b.c d", "", 1, "", false},
		{"Bearer\ta.b.c", "", 1, "", false},
		{"Bearer a.b.c", "Bearer x.y.z", 2, "", false},
		{"", "", 0, "__session=a.b.c; __client_uat=1", false},
		{"", "", 0, "__session=a.b.c; __session_abcdefgh=x.y.z; __client_uat_abcdefgh=1700000000", true},
		{"", "", 0, `__session="a.b.c"`, false},
		{" Bearer  a.b.c ", "", 1, "__session=x.y.z", true},
	} {
		f.Add(s.auth1, s.auth2, s.nAuth, s.cookie, s.withPK)
	}
	f.Fuzz(func(t *testing.T, auth1, auth2 string, nAuth uint8, cookie string, withPK bool) {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
		auths := []string{auth1, auth2}[:nAuth%3]
		for _, a := range auths {
			r.Header.Add("Authorization", a)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		var inst *handshake.Instance
		if withPK {
			inst = pk.instance()
		}
		token, carrier, err := tokenFromRequest(r, inst, testNow)

		if strings.ContainsAny(token, " \t") {
			t.Fatalf("token %q contains whitespace", token)
		}
		if err != nil && token != "" {
			t.Fatalf("error %v together with token %q", err, token)
		}
		if len(auths) == 2 && (err == nil || token != "") {
			t.Fatalf("two Authorization headers gave token %q, err %v: want an ambiguity error", token, err)
		}
		if token == "" {
			return
		}
		switch carrier {
		case carrierHeader:
			if len(auths) != 1 || !strings.Contains(auths[0], token) {
				t.Fatalf("header token %q is not from the Authorization header %q", token, auths)
			}
			scheme, _, _ := strings.Cut(strings.TrimSpace(auths[0]), " ")
			if strings.EqualFold(scheme, "Basic") {
				t.Fatalf("Basic credentials %q yielded token %q", auths[0], token)
			}
		case carrierCookie:
			if !cookieHolds(cookie, token) {
				t.Fatalf("cookie token %q is not a value of the Cookie header %q", token, cookie)
			}
		default:
			t.Fatalf("token %q with carrier %q", token, carrier)
		}
	})
}

// cookieHolds reports whether token is the value of a pair in the Cookie
// header, as sent or percent-decoded, as Clerk's cookie parser reads it.
func cookieHolds(header, token string) bool {
	for pair := range strings.SplitSeq(header, ";") {
		_, v, ok := strings.Cut(pair, "=")
		v = strings.Trim(v, " \t")
		if !ok {
			continue
		}
		if v == token {
			return true
		}
		if d, err := url.PathUnescape(v); err == nil && d == token {
			return true
		}
	}
	return false
}

func FuzzVerify(f *testing.F) {
	key := fuzzKey(f)
	v := fuzzVerifier(key)
	enc := base64.RawURLEncoding.EncodeToString
	h, p := enc([]byte(fuzzHeader)), enc([]byte(fuzzPayload))
	for _, seed := range []string{
		h + "." + p + ".~RS256~",
		enc([]byte(`{"alg":"RS384","typ":"JWT"}`)) + "." + p + ".~RS384~",
		enc([]byte(`{"alg":"RS512"}`)) + "." + p + ".~RS512~",
		h + "." + p + ".",
		h + "." + p,
		h + "." + p + ".~RS256~.",
		h + "=." + p + ".~RS256~",
		enc([]byte(`{"alg":"none"}`)) + "." + p + ".",
		enc([]byte(`{"alg":"RS256","crit":["exp"]}`)) + "." + p + ".~RS256~",
		enc([]byte(`{"alg":"RS256","typ":"at+jwt"}`)) + "." + p + ".~RS256~",
		enc([]byte(`{"alg":"RS256","cat":"cl_B7d4PD333AAA"}`)) + "." + p + ".~RS256~",
		h + "." + enc([]byte(`{"sub":"user_x","exp":1e400,"iss":"`+fuzzIssuer+`"}`)) + ".~RS256~",
		h + "." + enc([]byte(`[]`)) + ".~RS256~",
		"..",
		"",
		strings.Repeat("A", maxTokenSize+1),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		token = resign(key, token)
		id, err := v.verify(context.Background(), token)
		if len(token) > maxTokenSize {
			// Oversized tokens must be refused before any decoding: a
			// handful of allocations for the error, nothing per byte.
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Reason != ReasonTokenInvalid {
				t.Fatalf("oversized token: err = %v, want %s", err, ReasonTokenInvalid)
			}
			if allocs := testing.AllocsPerRun(5, func() { _, _ = v.verify(context.Background(), token) }); allocs > 8 {
				t.Fatalf("rejecting an oversized token took %v allocations", allocs)
			}
			return
		}
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Reason == "" {
				t.Fatalf("error %v has no reason code", err)
			}
			if len(token) > 8 && strings.Contains(ve.Error(), token) {
				t.Fatalf("error message contains the token: %v", err)
			}
			return
		}
		checkSignatureIndependently(t, &key.PublicKey, token)
		var c struct {
			Sub string `json:"sub"`
		}
		seg := strings.Split(token, ".")[1]
		if json.Unmarshal(mustDecodeSegment(t, seg), &c) != nil || id.Subject != c.Sub {
			t.Fatalf("Subject %q, but the payload's sub is %q", id.Subject, c.Sub)
		}
	})
}

// resign replaces the first signature marker in token (see sigMarkers).
func resign(key *rsa.PrivateKey, token string) string {
	for marker, hash := range sigMarkers {
		i := strings.Index(token, marker)
		if i < 0 {
			continue
		}
		input := strings.TrimSuffix(token[:i], ".")
		d := hash.New()
		d.Write([]byte(input))
		sig, err := rsa.SignPKCS1v15(nil, key, hash, d.Sum(nil))
		if err != nil {
			panic(err) // RSA signing with a valid key does not fail
		}
		return token[:i] + base64.RawURLEncoding.EncodeToString(sig) + token[i+len(marker):]
	}
	return token
}

// checkSignatureIndependently is the fuzz oracle for an accepted token: it
// has exactly three unpadded base64url segments, and its header's alg is an
// RS* algorithm whose PKCS#1 v1.5 signature verifies over the raw first two
// segments, byte for byte as sent.
func checkSignatureIndependently(t *testing.T, pub *rsa.PublicKey, token string) {
	t.Helper()
	seg := strings.Split(token, ".")
	if len(seg) != 3 {
		t.Fatalf("accepted a token with %d segments", len(seg))
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(mustDecodeSegment(t, seg[0]), &hdr); err != nil {
		t.Fatalf("accepted a token whose header is not JSON: %v", err)
	}
	hash, ok := map[string]crypto.Hash{"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512}[hdr.Alg]
	if !ok {
		t.Fatalf("accepted alg %q", hdr.Alg)
	}
	d := hash.New()
	d.Write([]byte(seg[0] + "." + seg[1]))
	if err := rsa.VerifyPKCS1v15(pub, hash, d.Sum(nil), mustDecodeSegment(t, seg[2])); err != nil {
		t.Fatalf("accepted a token whose signature does not verify: %v", err)
	}
}

// mustDecodeSegment decodes a segment that must consist of base64url
// characters only: Go's decoder would also skip CR and LF.
func mustDecodeSegment(t *testing.T, seg string) []byte {
	t.Helper()
	if i := strings.IndexFunc(seg, func(r rune) bool { return !isBase64URL(r) }); i >= 0 {
		t.Fatalf("accepted a segment with %q at %d, outside the base64url alphabet", seg[i], i)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		t.Fatalf("accepted a segment that is not canonical base64url: %v", err)
	}
	return b
}

func isBase64URL(r rune) bool {
	return 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_'
}

func FuzzClaims(f *testing.F) {
	key := fuzzKey(f)
	v := fuzzVerifier(key)
	v2 := func(o string) string {
		return strings.TrimSuffix(fuzzPayload, "}") + `,"v":2,"o":` + o + `,"fea":"o:a,u:b,o:c","pla":"u:pro"}`
	}
	for _, s := range []struct{ payload, per, fpm, fea string }{
		{fuzzPayload, "manage,read", "3", "o:dashboard"},
		{v2(`{"id":"org_1","slg":"acme","rol":"admin","per":"manage,read","fpm":"3,0,1"}`), "manage,read", "3,2", "o:a,u:b"},
		{v2(`{"id":"org_1","per":"a,b","fpm":"1,1"}`), "a,,b", "1,7", "u:a,o:b"},
		{v2(`{"id":"org_1","per":"x","fpm":"-1"}`), "x", "-1", "o:a"},
		{v2(`{"id":"org_1","per":"x","fpm":"340282366920938463463374607431768211455"}`), "x", "99999999999999999999999", "o:a,ou:b,uo:c"},
		{strings.TrimSuffix(fuzzPayload, "}") + `,"org_id":"org_1","org_role":"org:org:admin","org_permissions":["org:a:b",1]}`, "", "", ""},
		{strings.TrimSuffix(fuzzPayload, "}") + `,"roles":"a, b,,c","act":{"sub":"user_admin"},"sts":"active"}`, "p", "1", "o:x:y"},
		{`{"sub":"user_x","sub":"user_y","exp":1e400}`, " a , b ", " 1 , 2 ", " o:a , o:b "},
		{`[]`, ",", ",", ","},
	} {
		f.Add(s.payload, s.per, s.fpm, s.fea)
	}
	f.Fuzz(func(t *testing.T, payload, per, fpm, fea string) {
		// Arbitrary payload JSON under a valid signature: whatever the
		// verifier decides, building the identity must not panic.
		if id, err := v.verify(context.Background(), clerktest.SegmentsJSON(fuzzHeader, payload, key)); err == nil {
			exercise(id)
		}

		features := parseScoped(fea)
		perms, problem := orgPermissionsV2(per, fpm, features)
		checkPermissions(t, perms, problem, per, features)

		// The same values through a real v2 token and newIdentity.
		o, err := json.Marshal(map[string]string{"id": "org_fuzz", "per": per, "fpm": fpm})
		if err != nil {
			t.Fatal(err)
		}
		fj, err := json.Marshal(fea)
		if err != nil {
			t.Fatal(err)
		}
		// Marshaling replaced any invalid UTF-8 with U+FFFD: compare with
		// the values as the token carries them.
		var sent map[string]string
		if err := json.Unmarshal(o, &sent); err != nil {
			t.Fatal(err)
		}
		tok := clerktest.SegmentsJSON(fuzzHeader, strings.TrimSuffix(fuzzPayload, "}")+`,"v":2,"o":`+string(o)+`,"fea":`+string(fj)+`}`, key)
		id, err := v.verify(context.Background(), tok)
		if err != nil {
			// Only a token too large for the limit may fail here.
			if len(tok) <= maxTokenSize {
				t.Fatalf("a valid v2 token was rejected: %v", err)
			}
			return
		}
		exercise(id)
		checkPermissions(t, id.OrgPermissions, id.PermissionsProblem(), sent["per"], parseScoped(rawString(string(fj))))
	})
}

// checkPermissions asserts that every decoded permission is
// "org:<feature>:<perm>" with the feature an org-scoped slug of fea and the
// permission one of the names in per, and that a problem means none.
func checkPermissions(t *testing.T, perms []string, problem, per string, features []scopedEntry) {
	t.Helper()
	if problem != "" && len(perms) > 0 {
		t.Fatalf("problem %q but permissions %q", problem, perms)
	}
	names := splitTrim(per)
	for _, p := range perms {
		rest, ok := strings.CutPrefix(p, "org:")
		if !ok {
			t.Fatalf("permission %q lacks the org: prefix", p)
		}
		granted := false
		for _, f := range features {
			if perm, ok := strings.CutPrefix(rest, f.slug+":"); f.org && f.slug != "" && ok && perm != "" && slices.Contains(names, perm) {
				granted = true
				break
			}
		}
		if !granted {
			t.Fatalf("permission %q is not an org feature of fea crossed with a name of per %q", p, per)
		}
	}
}

// exercise reads everything a request handler reads off an identity.
func exercise(id *Identity) {
	for _, name := range []string{"id", "session_id", "org_id", "org_slug", "org_role", "org_permissions", "roles",
		"features", "plans", "session_status", "actor", "issuer", "expires_at", "token_type", "azp",
		"claims.sub", "claims.o.per", "claims.metadata.roles", "claims.a.b.c"} {
		_ = id.placeholder(name)
	}
}

func FuzzCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"clerk_auth {\n\tissuer https://clerk.example.com\n\tforward_header X-User-Id {http.auth.user.id}\n}",
		"clerk_auth {\n\tpublishable_key pk_test_Y2xlcmsuZXhhbXBsZS5jb20k\n\tsecret_key sk_test_x\n\tapi_url https://api.clerk.com\n}",
		"clerk_auth {\n\tjwt_key \"-----BEGIN PUBLIC KEY-----\\nMIIB\\n-----END PUBLIC KEY-----\"\n\tleeway 10s\n\tleeway 1s\n}",
		"clerk_auth {\n\taccept session template\n\tallow_pending\n\toptional\n\tsign_in_url https://accounts.example.com/sign-in\n}",
		"clerk_auth {\n\troles admin\n\troles_claim metadata.roles\n\torg_role admin org:member\n\torg_permission org:billing:manage\n\tfeature o:sso\n\tplan u:pro\n\tclaim metadata.tier gold\n}",
		"clerk_auth {\n\tclaim\n\tforward_header X\n\taudience\n\tallow_pending yes\n}",
		"clerk_auth extra {\n}",
		"clerk_auth {\n\tnested {\n\t\tblock\n\t}\n}",
		"clerk_auth",
		"{",
		"clerk_auth {\n\tissuer `a\nb` \"c\\\"d\" {$ENV} {env.X}\n}",
		"clerk_auth <<EOF\nheredoc\nEOF",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		// Tokenize rather than NewTestDispenser, which log.Fatals on a
		// lexer error instead of returning it.
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		// Whatever parsed must be representable as the JSON config the
		// Caddyfile adapter produces.
		b, err := json.Marshal(&h)
		if err != nil {
			t.Fatalf("parsed config does not marshal: %v", err)
		}
		var back Handler
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("marshaled config %s does not unmarshal: %v", b, err)
		}
		if b2, _ := json.Marshal(&back); !bytes.Equal(b, b2) {
			t.Fatalf("config does not round-trip through JSON:\n%s\n%s", b, b2)
		}
	})
}
