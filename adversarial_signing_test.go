package clerkauth

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// Attacks on what makes a token trustworthy: the algorithm, the key, and
// the signature.

// algCases: the token must never choose how it is verified. "none" would
// skip the signature; HS* keyed with the public key (which anyone can
// download) is the classic RS→HS key confusion; other asymmetric algs would
// need keys Clerk does not have, or verify with the RSA key in another
// scheme.
func algCases(f *forger) []attackCase {
	pub := &f.iss.PrivateKey().PublicKey
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(f.iss.JWKS(), &set); err != nil || len(set.Keys) == 0 {
		panic(fmt.Sprintf("issuer JWKS: %v", err))
	}
	hs := func(alg string, secret []byte) string {
		return f.mint(clerktest.WithAlg(alg), clerktest.WithHMACSecret(secret), claimsOpt("sub", "user_admin"))
	}
	// A token that says RS256 but carries an HMAC made with the PEM.
	lying, err := clerktest.Sign(
		map[string]any{"alg": "RS256", "kid": f.iss.KID(), "typ": "JWT", "cat": clerktest.CatSession},
		map[string]any{"sub": "user_admin", "iss": targetIssuer, "azp": targetAZP, "sid": "s", "exp": time.Now().Add(time.Hour).Unix()},
		"HS256", []byte(f.iss.PublicKeyPEM()))
	if err != nil {
		panic(err)
	}
	_, p, sig := jwsSegments(f.mint())
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"alg":"none","kid":%q,"typ":"JWT"}`, f.iss.KID())))
	return []attackCase{
		{name: "none", header: bearer(f.mint(clerktest.WithAlg("none"))), reason: ReasonInvalidAlgorithm},
		{name: "None", header: bearer(f.mint(clerktest.WithAlg("None"))), reason: ReasonInvalidAlgorithm},
		{name: "NONE", header: bearer(f.mint(clerktest.WithAlg("NONE"))), reason: ReasonInvalidAlgorithm},
		{name: "empty alg", header: bearer(f.mint(clerktest.WithAlg(""))), reason: ReasonInvalidAlgorithm},
		{name: "no alg member", header: bearer(f.mint(headerOpt("alg", nil))), reason: ReasonInvalidAlgorithm},
		{name: "none header over a valid RS256 signature", header: bearer(noneHeader + "." + p + "." + sig), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the PEM public key", header: bearer(hs("HS256", []byte(f.iss.PublicKeyPEM()))), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the PEM without newline", header: bearer(hs("HS256", []byte(strings.TrimSpace(f.iss.PublicKeyPEM())))), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the PKIX DER", header: bearer(hs("HS256", pkix)), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the PKCS1 DER", header: bearer(hs("HS256", x509.MarshalPKCS1PublicKey(pub))), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the JWK", header: bearer(hs("HS256", set.Keys[0])), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the JWKS document", header: bearer(hs("HS256", f.iss.JWKS())), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the modulus", header: bearer(hs("HS256", pub.N.Bytes())), reason: ReasonInvalidAlgorithm},
		{name: "HS512 keyed with the PEM", header: bearer(hs("HS512", []byte(f.iss.PublicKeyPEM()))), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the PEM on the networkless route", path: "/pem/x", header: bearer(hs("HS256", []byte(f.iss.PublicKeyPEM()))), reason: ReasonInvalidAlgorithm},
		{name: "RS256 header over an HMAC of the PEM", header: bearer(lying), reason: ReasonInvalidSignature},
		{name: "RS256 header over an HMAC of the PEM, networkless", path: "/pem/x", header: bearer(lying), reason: ReasonInvalidSignature},
		{name: "ES256", header: bearer(f.mint(clerktest.WithAlg("ES256"))), reason: ReasonInvalidAlgorithm},
		{name: "ES384", header: bearer(f.mint(clerktest.WithAlg("ES384"))), reason: ReasonInvalidAlgorithm},
		{name: "EdDSA", header: bearer(f.mint(clerktest.WithAlg("EdDSA"))), reason: ReasonInvalidAlgorithm},
		// A genuine PSS signature by the issuer's own key: still refused,
		// Clerk signs with PKCS #1 v1.5 only.
		{name: "PS256 by the issuer key", header: bearer(f.mint(clerktest.WithAlg("PS256"))), reason: ReasonInvalidAlgorithm},
		{name: "PS256 by the issuer key, networkless", path: "/pem/x", header: bearer(f.mint(clerktest.WithAlg("PS256"))), reason: ReasonInvalidAlgorithm},
		// The JWKS pins the key to RS256: another hash is refused.
		{name: "RS512 by the issuer key pinned to RS256", header: bearer(f.mint(clerktest.WithAlg("RS512"))), reason: ReasonInvalidAlgorithm},
		{name: "alg lowercase rs256", header: bearer(f.mint(headerOpt("alg", "rs256"))), reason: ReasonInvalidAlgorithm},
		{name: "alg with trailing space", header: bearer(f.mint(headerOpt("alg", "RS256 "))), reason: ReasonInvalidAlgorithm},
		{name: "alg as an array", header: bearer(f.mint(headerOpt("alg", []string{"RS256"}))), reason: ReasonTokenInvalid},
	}
}

// keyInjectionCases: jwk, jku, x5u and x5c let a token carry or point at
// its own verification key. Honouring any of them lets anyone sign: the key
// must come from the configured key set only, and nothing a token names
// may ever be fetched (SSRF), so the attacker's server must see no request.
func keyInjectionCases(f *forger) []attackCase {
	a := f.attacker
	jwk := map[string]any{"kty": "RSA", "kid": a.kid, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(a.key.N.Bytes()), "e": "AQAB"}
	x5c := []string{base64.StdEncoding.EncodeToString(a.certDER)}
	jku := a.URL + "/jwks.json"
	x5u := a.URL + "/cert.pem"
	signed := func(kv ...any) string {
		return f.mint(clerktest.WithKey(a.key), headerOpt(kv...), clerktest.WithClaims(map[string]any{"sub": "user_admin"}))
	}
	return []attackCase{
		{name: "embedded jwk, attacker kid", header: bearer(signed("jwk", jwk, "kid", a.kid)), reason: ReasonKIDMismatch},
		{name: "embedded jwk, issuer kid", header: bearer(signed("jwk", jwk)), reason: ReasonInvalidSignature},
		{name: "embedded jwk, no kid", header: bearer(signed("jwk", jwk, "kid", nil)), reason: ReasonKIDMismatch},
		{name: "jku to the attacker, attacker kid", header: bearer(signed("jku", jku, "kid", a.kid)), reason: ReasonKIDMismatch},
		{name: "jku to the attacker, issuer kid", header: bearer(signed("jku", jku)), reason: ReasonInvalidSignature},
		{name: "x5u to the attacker, attacker kid", header: bearer(signed("x5u", x5u, "kid", a.kid)), reason: ReasonKIDMismatch},
		{name: "x5u to the attacker, issuer kid", header: bearer(signed("x5u", x5u)), reason: ReasonInvalidSignature},
		{name: "x5c attacker certificate, issuer kid", header: bearer(signed("x5c", x5c)), reason: ReasonInvalidSignature},
		{name: "x5c attacker certificate, no kid", header: bearer(signed("x5c", x5c, "kid", nil)), reason: ReasonKIDMismatch},
		{name: "all four at once", header: bearer(signed("jwk", jwk, "jku", jku, "x5u", x5u, "x5c", x5c, "x5t", "AAAA")), reason: ReasonInvalidSignature},
		// The networkless key ignores kid, so only the signature can fail.
		{name: "all four at once, networkless", path: "/pem/x", header: bearer(signed("jwk", jwk, "jku", jku, "x5u", x5u, "x5c", x5c, "kid", a.kid)), reason: ReasonInvalidSignature},
		// A real token of another Clerk instance (the attacker's own, or
		// another tenant's) with our issuer's iss: its kid is not ours.
		{name: "token of another Clerk instance", header: bearer(f.other.Mint(clerktest.WithClaims(map[string]any{"iss": targetIssuer, "azp": targetAZP}), clerktest.Lifetime(10*time.Minute))), reason: ReasonKIDMismatch},
		{name: "another instance's key under our kid", header: bearer(f.mint(clerktest.WithKey(f.other.PrivateKey()))), reason: ReasonInvalidSignature},
		{name: "another instance's key under our kid, networkless", path: "/pem/x", header: bearer(f.mint(clerktest.WithKey(f.other.PrivateKey()))), reason: ReasonInvalidSignature},
		{name: "issuer kid in a jku URL", header: bearer(signed("jku", jku+"?kid="+f.iss.KID(), "kid", jku)), reason: ReasonKIDMismatch},
	}
}

// critCases: RFC 7515 §4.1.11: a crit extension the verifier does not
// understand must fail the token. b64:false (RFC 7797) would change what the
// signature covers.
func critCases(f *forger) []attackCase {
	return []attackCase{
		{name: "crit exp", header: bearer(f.mint(headerOpt("crit", []string{"exp"}))), reason: ReasonTokenInvalid},
		{name: "crit b64 false", header: bearer(f.mint(headerOpt("crit", []string{"b64"}, "b64", false))), reason: ReasonTokenInvalid},
		{name: "crit empty list", header: bearer(f.mint(headerOpt("crit", []string{}))), reason: ReasonTokenInvalid},
		{name: "crit null", header: bearer(f.raw(f.baseHeader+`,"crit":null`, `"sub":"user_test",`+f.baseClaims)), reason: ReasonTokenInvalid},
	}
}

// kidCases: kid is attacker-controlled input to a cache lookup and to the
// refetch logic. Path- or URL-like kids must not be resolved as anything,
// long ones must not be costly, and a flood of unknown kids must not turn
// into a flood of JWKS fetches.
func kidCases(f *forger) []attackCase {
	kid := func(v any) http.Header { return bearer(f.mint(headerOpt("kid", v))) }
	cases := []attackCase{
		{name: "wrong kid", header: kid("ins_test_nope"), reason: ReasonKIDMismatch},
		{name: "missing kid", header: bearer(f.mint(headerOpt("kid", nil))), reason: ReasonKIDMismatch},
		{name: "empty kid", header: kid(""), reason: ReasonKIDMismatch},
		{name: "path traversal kid", header: kid("../../etc/passwd"), reason: ReasonKIDMismatch},
		{name: "encoded path traversal kid", header: kid("..%2f..%2fetc%2fpasswd"), reason: ReasonKIDMismatch},
		{name: "URL kid", header: kid("https://evil.example/jwks.json#" + f.iss.KID()), reason: ReasonKIDMismatch},
		{name: "kid with control characters", header: kid(f.iss.KID() + "\x00\r\nX-User-Id: user_admin"), reason: ReasonKIDMismatch},
		{name: "kid differing in case", header: kid(strings.ToUpper(f.iss.KID())), reason: ReasonKIDMismatch},
		{name: "kid with trailing space", header: kid(f.iss.KID() + " "), reason: ReasonKIDMismatch},
		{name: "8 KiB kid", header: kid(strings.Repeat("k", 8<<10)), reason: ReasonKIDMismatch},
		{name: "numeric kid", header: kid(1), reason: ReasonTokenInvalid},
		{name: "kid object", header: kid(map[string]any{"kid": f.iss.KID()}), reason: ReasonTokenInvalid},
		// A genuine token whose kid is right except for a unicode
		// look-alike character (Cyrillic "і").
		{name: "homoglyph kid", header: kid(strings.Replace(f.iss.KID(), "i", "\u0456", 1)), reason: ReasonKIDMismatch},
	}
	// The refetch an unknown kid may trigger is throttled (once per 10 s)
	// and shared: 30 distinct unknown kids cost at most one fetch, plus one
	// if the 10 s window happens to roll over mid-flood.
	cases = append(cases, attackCase{
		name: "flood of unknown kids",
		send: func(t *testing.T, s *attackSuite) (*http.Response, string) {
			before := f.iss.Fetches()
			var resp *http.Response
			var body string
			for i := range 30 {
				resp, body = do(t, s.tester, http.MethodGet, "/req/x", kid(fmt.Sprintf("ins_flood_%d", i)))
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Reason") != ReasonKIDMismatch {
					t.Fatalf("request %d: %d %q", i, resp.StatusCode, resp.Header.Get("X-Reason"))
				}
			}
			if n := f.iss.Fetches() - before; n > 2 {
				t.Errorf("30 unknown kids caused %d JWKS fetches, want at most 2", n)
			}
			return resp, body
		},
		reason: ReasonKIDMismatch,
	})
	return cases
}

// signatureCases: the signature is the only thing an attacker cannot
// produce. Stripping, truncating, re-encoding or transplanting it, or
// changing any signed byte, must fail; and its base64 must have exactly one
// spelling, or one token would have many (token malleability: replay
// detection and caches keyed by token would be bypassed).
func signatureCases(f *forger) []attackCase {
	h, p, sig := jwsSegments(f.valid)
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		panic(err)
	}
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)/2] ^= 1
	admin := f.mint(claimsOpt("sub", "user_admin", "roles", []string{"admin"}))
	_, adminPayload, _ := jwsSegments(admin)
	_, _, otherSig := jwsSegments(f.mint(claimsOpt("sub", "user_other")))

	// The last base64 character of a 256-byte signature carries 2 bits;
	// the other 4 must be zero. Setting one yields the same bytes for a
	// lenient decoder.
	last := sig[len(sig)-1]
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	malleable := sig[:len(sig)-1] + string(alphabet[strings.IndexByte(alphabet, last)|1])

	// The same signature in the standard alphabet: mint until it has a
	// character that differs between the two.
	std := f.valid
	for !strings.ContainsAny(std[strings.LastIndex(std, ".")+1:], "-_") {
		std = f.mint()
	}
	sh, sp, ss := jwsSegments(std)
	std = sh + "." + sp + "." + strings.NewReplacer("-", "+", "_", "/").Replace(ss)

	tamperedHeader := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(
		`{"alg":"RS256","cat":%q,"kid":%q,"typ":"JWT","x":1}`, clerktest.CatSession, f.iss.KID())))
	return []attackCase{
		{name: "stripped signature", header: bearer(h + "." + p + "."), reason: ReasonInvalidSignature},
		{name: "truncated signature bytes", header: bearer(h + "." + p + "." + base64.RawURLEncoding.EncodeToString(raw[:len(raw)-8])), reason: ReasonInvalidSignature},
		{name: "signature cut mid-character", header: bearer(f.valid[:len(f.valid)-1]), reason: ReasonTokenInvalid},
		{name: "signature with extra bytes", header: bearer(h + "." + p + "." + base64.RawURLEncoding.EncodeToString(append(raw, 0))), reason: ReasonInvalidSignature},
		{name: "one bit flipped", header: bearer(h + "." + p + "." + base64.RawURLEncoding.EncodeToString(flipped)), reason: ReasonInvalidSignature},
		{name: "signature from another token", header: bearer(h + "." + p + "." + otherSig), reason: ReasonInvalidSignature},
		{name: "payload of an admin token under this signature", path: "/admin/x", header: bearer(h + "." + adminPayload + "." + sig), reason: ReasonInvalidSignature},
		{name: "payload tampered after signing", header: bearer(h + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"user_admin"}`)) + "." + sig), reason: ReasonInvalidSignature},
		{name: "header tampered after signing", header: bearer(tamperedHeader + "." + p + "." + sig), reason: ReasonInvalidSignature},
		{name: "signature by another instance's key", header: bearer(f.mint(clerktest.WithKey(f.other.PrivateKey()))), reason: ReasonInvalidSignature},
		{name: "non-canonical last signature character", header: bearer(h + "." + p + "." + malleable), reason: ReasonTokenInvalid},
		{name: "padded signature", header: bearer(f.valid + "=="), reason: ReasonTokenInvalid},
		{name: "standard base64 signature", header: bearer(std), reason: ReasonTokenInvalid},
		{name: "signature and payload swapped", header: bearer(h + "." + sig + "." + p), reason: ReasonInvalidSignature},
	}
}
