package clerktest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// token is a minted JWS split and decoded for assertions.
type token struct {
	header map[string]any
	claims map[string]any
	input  []byte // signing input: header "." payload
	sig    []byte
}

func parse(t *testing.T, tok string) token {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3: %q", len(parts), tok)
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("segment %q is not unpadded base64url: %v", s, err)
		}
		return b
	}
	obj := func(b []byte) map[string]any {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("segment %s is not a JSON object: %v", b, err)
		}
		return m
	}
	return token{
		header: obj(dec(parts[0])),
		claims: obj(dec(parts[1])),
		input:  []byte(parts[0] + "." + parts[1]),
		sig:    dec(parts[2]),
	}
}

func num(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v is not an integer: %v", v, err)
	}
	return i
}

func keysOf(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func hashed(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}

// client is what every test uses to reach the fake: a timeout keeps a broken
// fault from hanging the suite.
var client = &http.Client{Timeout: 5 * time.Second}

func get(t *testing.T, url, secret string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp, body
}

type servedKey struct {
	Use, Kty, Kid, Alg, N, E string
}

// fetchKeys fetches a key set and decodes n/e into public keys by kid.
func fetchKeys(t *testing.T, url, secret string) map[string]*rsa.PublicKey {
	t.Helper()
	resp, body := get(t, url, secret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %s", url, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var set struct{ Keys []servedKey }
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS does not parse: %v\n%s", err, body)
	}
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Use != "sig" || k.Kty != "RSA" || k.Alg != "RS256" {
			t.Errorf("key %s: use/kty/alg = %s/%s/%s, want sig/RSA/RS256", k.Kid, k.Use, k.Kty, k.Alg)
		}
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil {
			t.Fatalf("key %s: n: %v", k.Kid, err)
		}
		e, err := base64.RawURLEncoding.DecodeString(k.E)
		if err != nil {
			t.Fatalf("key %s: e: %v", k.Kid, err)
		}
		out[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	if len(out) != len(set.Keys) {
		t.Errorf("JWKS has duplicate kids: %s", body)
	}
	return out
}

func TestJWKSServesTheSigningKey(t *testing.T) {
	iss := Start(t)
	if u, err := url.Parse(iss.URL); err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "" {
		t.Fatalf("URL = %q, want http://127.0.0.1:<port>", iss.URL)
	}
	if !strings.HasPrefix(iss.KID(), "ins_test_") {
		t.Errorf("KID = %q, want ins_test_ prefix", iss.KID())
	}
	if !strings.HasPrefix(iss.SecretKey(), "sk_test_") {
		t.Errorf("SecretKey = %q, want sk_test_ prefix", iss.SecretKey())
	}
	if got := iss.PrivateKey().N.BitLen(); got != 2048 {
		t.Errorf("key size = %d bits, want 2048", got)
	}
	for name, ep := range map[string]struct{ url, secret string }{
		"frontend": {iss.JWKSURL(), ""},
		"backend":  {iss.APIURL() + "/v1/jwks", iss.SecretKey()},
	} {
		t.Run(name, func(t *testing.T) {
			keys := fetchKeys(t, ep.url, ep.secret)
			if len(keys) != 1 {
				t.Fatalf("served %d keys, want 1", len(keys))
			}
			pub := keys[iss.KID()]
			if pub == nil || !pub.Equal(&iss.PrivateKey().PublicKey) {
				t.Fatalf("served key for kid %s does not match PrivateKey()", iss.KID())
			}
			if pub.E != 65537 {
				t.Errorf("e = %d, want 65537 (AQAB)", pub.E)
			}
		})
	}
	if got, want := string(iss.JWKS()), `"e":"AQAB"`; !strings.Contains(got, want) {
		t.Errorf("JWKS() = %s, want it to contain %s", got, want)
	}
}

func TestPublicKeyPEM(t *testing.T) {
	iss := Start(t)
	block, rest := pem.Decode([]byte(iss.PublicKeyPEM()))
	if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("PublicKeyPEM is not a single PUBLIC KEY block:\n%s", iss.PublicKeyPEM())
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !iss.PrivateKey().PublicKey.Equal(pub) {
		t.Fatal("PublicKeyPEM does not match PrivateKey")
	}
}

func TestMintRSASignaturesVerify(t *testing.T) {
	iss := Start(t)
	pub := &iss.PrivateKey().PublicKey
	tests := []struct {
		alg string
		h   crypto.Hash
		pss bool
	}{
		{"RS256", crypto.SHA256, false},
		{"RS384", crypto.SHA384, false},
		{"RS512", crypto.SHA512, false},
		{"PS256", crypto.SHA256, true},
		{"PS384", crypto.SHA384, true},
		{"PS512", crypto.SHA512, true},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			tok := parse(t, iss.Mint(WithAlg(tc.alg)))
			if tok.header["alg"] != tc.alg {
				t.Errorf("header alg = %v, want %s", tok.header["alg"], tc.alg)
			}
			d := hashed(tc.h, tok.input)
			var err error
			if tc.pss {
				err = rsa.VerifyPSS(pub, tc.h, d, tok.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			} else {
				err = rsa.VerifyPKCS1v15(pub, tc.h, d, tok.sig)
			}
			if err != nil {
				t.Fatalf("signature does not verify: %v", err)
			}
		})
	}
}

func TestMintDefaults(t *testing.T) {
	iss := Start(t)
	now := time.Unix(1_700_000_000, 0)
	iss.SetNow(func() time.Time { return now })
	tok := parse(t, iss.Mint())

	wantHeader := map[string]any{"alg": "RS256", "cat": CatSession, "kid": iss.KID(), "typ": "JWT"}
	if !slices.Equal(keysOf(tok.header), keysOf(wantHeader)) {
		t.Errorf("header fields = %v, want %v", keysOf(tok.header), keysOf(wantHeader))
	}
	for k, v := range wantHeader {
		if tok.header[k] != v {
			t.Errorf("header %s = %v, want %v", k, tok.header[k], v)
		}
	}

	wantClaims := []string{"azp", "exp", "iat", "iss", "nbf", "sid", "sub"}
	if got := keysOf(tok.claims); !slices.Equal(got, wantClaims) {
		t.Errorf("claims = %v, want %v", got, wantClaims)
	}
	for k, v := range map[string]any{"azp": DefaultAZP, "iss": iss.URL, "sid": DefaultSessionID, "sub": DefaultSubject} {
		if tok.claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, tok.claims[k], v)
		}
	}
	for k, v := range map[string]int64{"iat": now.Unix(), "nbf": now.Unix() - 10, "exp": now.Unix() + 60} {
		if got := num(t, tok.claims[k]); got != v {
			t.Errorf("claim %s = %d, want %d", k, got, v)
		}
	}

	iss.SetNow(nil)
	if iat := num(t, parse(t, iss.Mint()).claims["iat"]); time.Since(time.Unix(iat, 0)).Abs() > time.Minute {
		t.Errorf("after SetNow(nil), iat = %d, want about now", iat)
	}
}

func TestMintOptions(t *testing.T) {
	iss := Start(t)
	t0 := time.Unix(1_600_000_000, 0)
	tests := []struct {
		name       string
		opts       []Option
		cat        string
		claims     map[string]any // expected values; nil means "absent"
		wantHeader map[string]any // same convention
	}{
		{
			name:   "WithClaims merges and nil deletes",
			opts:   []Option{WithClaims(map[string]any{"sid": nil, "exp": nil, "sub": "user_x", "custom": "y"})},
			cat:    CatSession,
			claims: map[string]any{"sid": nil, "exp": nil, "sub": "user_x", "custom": "y", "azp": DefaultAZP},
		},
		{
			name:       "WithHeader merges and nil deletes",
			opts:       []Option{WithHeader(map[string]any{"kid": nil, "typ": nil, "x5u": "http://evil"})},
			cat:        CatSession,
			wantHeader: map[string]any{"kid": nil, "typ": nil, "x5u": "http://evil", "alg": "RS256"},
		},
		{
			name:   "Template",
			opts:   []Option{Template(), WithClaims(map[string]any{"email": "a@b.c"})},
			cat:    CatTemplate,
			claims: map[string]any{"sid": nil, "azp": DefaultAZP, "sub": DefaultSubject, "email": "a@b.c"},
		},
		{
			name:   "M2M",
			opts:   []Option{M2M()},
			cat:    CatM2M,
			claims: map[string]any{"sid": nil, "azp": nil, "sub": DefaultM2MSubject},
		},
		{
			name: "V2 with org, features and plans",
			opts: []Option{
				V2(OrgV2{ID: "org_123", Slug: "acme", Role: "admin", Per: "manage,read", Fpm: "3,2"}),
				WithClaims(map[string]any{"fea": "o:dashboard,o:teams", "pla": "o:pro"}),
			},
			cat: CatSession,
			claims: map[string]any{
				"v":   json.Number("2"),
				"o":   map[string]any{"id": "org_123", "slg": "acme", "rol": "admin", "per": "manage,read", "fpm": "3,2"},
				"fea": "o:dashboard,o:teams",
				"pla": "o:pro",
				"sid": DefaultSessionID,
			},
		},
		{
			name:   "V2 without org",
			opts:   []Option{V2(OrgV2{})},
			cat:    CatSession,
			claims: map[string]any{"v": json.Number("2"), "o": nil},
		},
		{
			name:   "V2 org omits empty per and fpm",
			opts:   []Option{V2(OrgV2{ID: "org_1", Slug: "s", Role: "member"})},
			cat:    CatSession,
			claims: map[string]any{"o": map[string]any{"id": "org_1", "slg": "s", "rol": "member"}},
		},
		{
			name: "V1Org",
			opts: []Option{V1Org("org_1", "acme", "org:admin", "org:sys_memberships:read")},
			cat:  CatSession,
			claims: map[string]any{
				"org_id": "org_1", "org_slug": "acme", "org_role": "org:admin",
				"org_permissions": []any{"org:sys_memberships:read"}, "v": nil,
			},
		},
		{
			name:   "V1Org without permissions is an empty array",
			opts:   []Option{V1Org("org_1", "acme", "org:member")},
			cat:    CatSession,
			claims: map[string]any{"org_permissions": []any{}},
		},
		{
			name:   "IssuedAt",
			opts:   []Option{IssuedAt(t0)},
			cat:    CatSession,
			claims: map[string]any{"iat": json.Number("1600000000"), "nbf": json.Number("1599999990"), "exp": json.Number("1600000060")},
		},
		{
			name:   "IssuedAt with Lifetime, in either order",
			opts:   []Option{Lifetime(-time.Hour), IssuedAt(t0)},
			cat:    CatSession,
			claims: map[string]any{"iat": json.Number("1600000000"), "exp": json.Number("1599996400")},
		},
		{
			name:   "WithClaims wins over other options",
			opts:   []Option{WithClaims(map[string]any{"sub": "user_late"}), M2M()},
			cat:    CatM2M,
			claims: map[string]any{"sub": "user_late"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := parse(t, iss.Mint(tc.opts...))
			if err := rsa.VerifyPKCS1v15(&iss.PrivateKey().PublicKey, crypto.SHA256, hashed(crypto.SHA256, tok.input), tok.sig); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
			if tok.header["cat"] != tc.cat {
				t.Errorf("cat = %v, want %s", tok.header["cat"], tc.cat)
			}
			check := func(what string, got, want map[string]any) {
				for k, v := range want {
					g, present := got[k]
					switch {
					case v == nil && present:
						t.Errorf("%s %s = %v, want absent", what, k, g)
					case v != nil && !present:
						t.Errorf("%s %s absent, want %v", what, k, v)
					case v != nil && !equalJSON(t, g, v):
						t.Errorf("%s %s = %#v, want %#v", what, k, g, v)
					}
				}
			}
			check("claim", tok.claims, tc.claims)
			check("header", tok.header, tc.wantHeader)
		})
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

func TestMintJTI(t *testing.T) {
	iss := Start(t)
	tpl1, tpl2 := parse(t, iss.Mint(Template())), parse(t, iss.Mint(Template()))
	if j1, j2 := tpl1.claims["jti"], tpl2.claims["jti"]; j1 == nil || j1 == "" || j1 == j2 {
		t.Errorf("template jti = %v then %v, want distinct non-empty values", j1, j2)
	}
	if jti, _ := parse(t, iss.Mint(M2M())).claims["jti"].(string); !strings.HasPrefix(jti, "mt_") {
		t.Errorf("M2M jti = %q, want mt_ prefix", jti)
	}
	if _, ok := parse(t, iss.Mint()).claims["jti"]; ok {
		t.Error("session token has a jti, want none")
	}
}

func TestMintOtherAlgorithms(t *testing.T) {
	iss := Start(t)
	pem := []byte(iss.PublicKeyPEM())

	t.Run("HS256 key confusion", func(t *testing.T) {
		tok := parse(t, iss.Mint(WithAlg("HS256"), WithHMACSecret(pem)))
		mac := hmac.New(sha256.New, pem)
		mac.Write(tok.input)
		if !hmac.Equal(tok.sig, mac.Sum(nil)) {
			t.Fatal("HS256 signature is not HMAC-SHA256 with the PEM as secret")
		}
		if tok.header["alg"] != "HS256" || tok.header["kid"] != iss.KID() {
			t.Errorf("header = %v, want alg HS256 and the issuer kid", tok.header)
		}
	})
	t.Run("HS256 without secret panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("Mint(WithAlg(HS256)) did not panic")
			}
		}()
		iss.Mint(WithAlg("HS256"))
	})
	for _, tc := range []struct {
		alg    string
		sigLen int
	}{
		{"ES256", 64}, {"ES384", 96}, {"ES512", 132}, {"EdDSA", 64},
		{"none", 0}, {"None", 0}, {"NONE", 0}, {"", 0}, {"XX999", 0},
	} {
		t.Run(fmt.Sprintf("alg=%q", tc.alg), func(t *testing.T) {
			raw := iss.Mint(WithAlg(tc.alg))
			tok := parse(t, raw)
			if tok.header["alg"] != tc.alg {
				t.Errorf("header alg = %v, want %q verbatim", tok.header["alg"], tc.alg)
			}
			if len(tok.sig) != tc.sigLen {
				t.Errorf("signature is %d bytes, want %d", len(tok.sig), tc.sigLen)
			}
			if tc.sigLen == 0 && !strings.HasSuffix(raw, ".") {
				t.Errorf("unsigned token %q does not end with an empty signature segment", raw)
			}
		})
	}
	t.Run("header alg lies about the signature", func(t *testing.T) {
		tok := parse(t, iss.Mint(WithHeader(map[string]any{"alg": "rs256"})))
		if tok.header["alg"] != "rs256" {
			t.Fatalf("header alg = %v, want rs256", tok.header["alg"])
		}
		if err := rsa.VerifyPKCS1v15(&iss.PrivateKey().PublicKey, crypto.SHA256, hashed(crypto.SHA256, tok.input), tok.sig); err != nil {
			t.Fatalf("token is not RS256-signed despite the header: %v", err)
		}
	})
	t.Run("WithKey forges with another key under the same kid", func(t *testing.T) {
		other, err := NewRSAKey(2048)
		if err != nil {
			t.Fatal(err)
		}
		if other.Equal(iss.PrivateKey()) {
			t.Fatal("NewRSAKey returned the live issuer's key")
		}
		tok := parse(t, iss.Mint(WithKey(other)))
		if tok.header["kid"] != iss.KID() {
			t.Errorf("kid = %v, want the issuer's %s", tok.header["kid"], iss.KID())
		}
		if rsa.VerifyPKCS1v15(&other.PublicKey, crypto.SHA256, hashed(crypto.SHA256, tok.input), tok.sig) != nil {
			t.Error("token is not signed by the WithKey key")
		}
		if rsa.VerifyPKCS1v15(&iss.PrivateKey().PublicKey, crypto.SHA256, hashed(crypto.SHA256, tok.input), tok.sig) == nil {
			t.Error("forged token verifies with the issuer key")
		}
	})
}

func TestSign(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	header := map[string]any{"alg": "RS256", "kid": "whatever"}
	claims := map[string]any{"sub": "x"}

	t.Run("header and claims verbatim", func(t *testing.T) {
		raw, err := Sign(header, claims, "ES256", ec)
		if err != nil {
			t.Fatal(err)
		}
		tok := parse(t, raw)
		if !equalJSON(t, tok.header, header) || !equalJSON(t, tok.claims, claims) {
			t.Fatalf("Sign altered header or claims: %v %v", tok.header, tok.claims)
		}
		r, s := new(big.Int).SetBytes(tok.sig[:32]), new(big.Int).SetBytes(tok.sig[32:])
		if !ecdsa.Verify(&ec.PublicKey, hashed(crypto.SHA256, tok.input), r, s) {
			t.Fatal("ES256 signature does not verify")
		}
	})
	t.Run("EdDSA", func(t *testing.T) {
		raw, err := Sign(header, claims, "EdDSA", ed)
		if err != nil {
			t.Fatal(err)
		}
		tok := parse(t, raw)
		if !ed25519.Verify(edPub, tok.input, tok.sig) {
			t.Fatal("EdDSA signature does not verify")
		}
	})
	t.Run("nil key means empty signature", func(t *testing.T) {
		raw, err := Sign(header, claims, "RS256", nil)
		if err != nil || !strings.HasSuffix(raw, ".") {
			t.Fatalf("Sign(nil key) = %q, %v; want an empty signature", raw, err)
		}
	})
	for _, tc := range []struct {
		name string
		alg  string
		key  any
	}{
		{"RSA alg with HMAC key", "RS256", []byte("k")},
		{"HMAC alg with RSA key", "HS256", ec},
		{"EC alg with Ed25519 key", "ES256", ed},
		{"EdDSA with EC key", "EdDSA", ec},
		{"unknown alg", "RS1024", []byte("k")},
		{"short alg", "R", []byte("k")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if raw, err := Sign(header, claims, tc.alg, tc.key); err == nil {
				t.Fatalf("Sign = %q, want an error", raw)
			}
		})
	}
	t.Run("unmarshalable claims", func(t *testing.T) {
		if _, err := Sign(header, map[string]any{"c": make(chan int)}, "none", nil); err == nil {
			t.Fatal("want an error")
		}
	})
}

func TestSegmentsJSON(t *testing.T) {
	key, err := NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	h := `{"alg":"RS256","kid":"a","kid":"b"}`
	p := `{"sub":"user_1","sub":"user_2","exp":1e10}`
	raw := SegmentsJSON(h, p, key)
	parts := strings.Split(raw, ".")
	gotH, _ := base64.RawURLEncoding.DecodeString(parts[0])
	gotP, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if string(gotH) != h || string(gotP) != p {
		t.Fatalf("segments = %s / %s, want the input verbatim", gotH, gotP)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, hashed(crypto.SHA256, []byte(parts[0]+"."+parts[1])), sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if raw := SegmentsJSON("not json", "[]", nil); !strings.HasSuffix(raw, ".") {
		t.Errorf("SegmentsJSON(nil key) = %q, want an empty signature", raw)
	}
}

func TestNewRSAKey(t *testing.T) {
	weak, err := NewRSAKey(1024)
	if err != nil {
		t.Fatalf("NewRSAKey(1024): %v", err)
	}
	if weak.N.BitLen() != 1024 {
		t.Errorf("NewRSAKey(1024) has %d bits", weak.N.BitLen())
	}
	if _, err := NewRSAKey(512); err == nil {
		t.Error("NewRSAKey(512) succeeded, want crypto/rsa's refusal")
	}
}

func TestBackendAPIRequiresSecret(t *testing.T) {
	iss := Start(t)
	u := iss.APIURL() + APIJWKSPath
	tests := []struct {
		name   string
		auth   string // Authorization header; empty: none
		status int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong secret", "Bearer sk_test_wrong", http.StatusUnauthorized},
		{"secret without scheme", iss.SecretKey(), http.StatusUnauthorized},
		{"basic scheme", "Basic " + iss.SecretKey(), http.StatusUnauthorized},
		{"secret prefix", "Bearer " + iss.SecretKey()[:len(iss.SecretKey())-1], http.StatusUnauthorized},
		{"right secret", "Bearer " + iss.SecretKey(), http.StatusOK},
		{"lower-case scheme", "bearer " + iss.SecretKey(), http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusUnauthorized {
				return
			}
			var body struct {
				Errors []struct{ Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("401 body does not parse: %v", err)
			}
			if len(body.Errors) != 1 || body.Errors[0].Code != "clerk_key_invalid" || body.Errors[0].Message == "" {
				t.Fatalf("401 body = %+v, want one clerk_key_invalid error", body)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	iss := Start(t)
	endpoints := map[string]struct{ url, secret string }{
		"frontend": {iss.JWKSURL(), ""},
		"backend":  {iss.APIURL() + APIJWKSPath, iss.SecretKey()},
	}
	// fast gives up quickly so Hang and long Delay tests stay short.
	fast := &http.Client{Timeout: 300 * time.Millisecond}
	tests := []struct {
		name   string
		fault  Fault
		client *http.Client
		// check inspects the outcome; resp is nil when err is set.
		check func(t *testing.T, resp *http.Response, body []byte, err error, took time.Duration)
	}{
		{"status", Fault{Status: http.StatusServiceUnavailable}, client,
			func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
				if err != nil || resp.StatusCode != 503 || !bytes.Contains(body, []byte(`"errors"`)) {
					t.Fatalf("got %v %v %s, want 503 with an error body", resp, err, body)
				}
			}},
		{"body", Fault{Body: []byte("<html>garbage")}, client,
			func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
				if err != nil || resp.StatusCode != 200 || string(body) != "<html>garbage" {
					t.Fatalf("got %v %v %q, want 200 <html>garbage", resp, err, body)
				}
			}},
		{"status and body", Fault{Status: http.StatusTooManyRequests, Body: []byte(`{"keys":[]}`)}, client,
			func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
				if err != nil || resp.StatusCode != 429 || string(body) != `{"keys":[]}` {
					t.Fatalf("got %v %v %q, want 429 {\"keys\":[]}", resp, err, body)
				}
			}},
		{"oversize", Fault{Oversize: true}, client,
			func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("got %v %v, want 200", resp, err)
				}
				var set struct{ Keys []servedKey }
				if len(body) <= 1<<20 || json.Unmarshal(body, &set) != nil || len(set.Keys) != 1 || set.Keys[0].Kid != iss.KID() {
					t.Fatalf("body is %d bytes, want > 1 MiB of valid JSON holding the real key", len(body))
				}
			}},
		{"short delay then real answer", Fault{Delay: 150 * time.Millisecond}, client,
			func(t *testing.T, resp *http.Response, body []byte, err error, took time.Duration) {
				if err != nil || resp.StatusCode != 200 || !bytes.Contains(body, []byte(iss.KID())) {
					t.Fatalf("got %v %v %s, want the real key set", resp, err, body)
				}
				if took < 150*time.Millisecond {
					t.Fatalf("answered after %v, want at least the delay", took)
				}
			}},
		{"delay beyond client timeout", Fault{Delay: time.Minute}, fast,
			func(t *testing.T, _ *http.Response, _ []byte, err error, took time.Duration) {
				if err == nil || took > 3*time.Second {
					t.Fatalf("err = %v after %v, want a client timeout", err, took)
				}
			}},
		{"hang", Fault{Hang: true}, fast,
			func(t *testing.T, _ *http.Response, _ []byte, err error, took time.Duration) {
				if err == nil || took > 3*time.Second {
					t.Fatalf("err = %v after %v, want a client timeout", err, took)
				}
			}},
		{"close connection", Fault{CloseConn: true}, client,
			func(t *testing.T, _ *http.Response, _ []byte, err error, _ time.Duration) {
				if err == nil {
					t.Fatal("request succeeded, want a connection error")
				}
			}},
	}
	for _, tc := range tests {
		for epName, ep := range endpoints {
			t.Run(tc.name+"/"+epName, func(t *testing.T) {
				iss.SetFault(tc.fault)
				defer iss.ClearFault()
				req, err := http.NewRequest(http.MethodGet, ep.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				if ep.secret != "" {
					req.Header.Set("Authorization", "Bearer "+ep.secret)
				}
				start := time.Now()
				resp, err := tc.client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				tc.check(t, resp, body, err, time.Since(start))
			})
		}
	}

	t.Run("ClearFault restores the real key set", func(t *testing.T) {
		iss.SetFault(Fault{Status: 500})
		iss.ClearFault()
		if keys := fetchKeys(t, iss.JWKSURL(), ""); keys[iss.KID()] == nil {
			t.Fatal("real key not served after ClearFault")
		}
	})
	t.Run("fault applies before the secret check", func(t *testing.T) {
		iss.SetFault(Fault{Status: 502})
		defer iss.ClearFault()
		if resp, _ := get(t, iss.APIURL()+APIJWKSPath, "sk_test_wrong"); resp.StatusCode != 502 {
			t.Fatalf("status = %d, want 502", resp.StatusCode)
		}
	})
	t.Run("SetFault copies Body", func(t *testing.T) {
		b := []byte("abc")
		iss.SetFault(Fault{Body: b})
		defer iss.ClearFault()
		b[0] = 'X'
		if _, body := get(t, iss.JWKSURL(), ""); string(body) != "abc" {
			t.Fatalf("body = %q, want abc", body)
		}
	})
	t.Run("SetFault rejects invalid status", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("SetFault(Status: 42) did not panic")
			}
		}()
		iss.SetFault(Fault{Status: 42})
	})
}

func TestCloseReleasesHangingRequests(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault Fault
	}{
		{"hang", Fault{Hang: true}},
		{"delay", Fault{Delay: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss, err := New()
			if err != nil {
				t.Fatal(err)
			}
			iss.SetFault(tc.fault)
			errc := make(chan error, 1)
			go func() {
				// No client timeout: only Close can end this request.
				resp, err := http.Get(iss.JWKSURL())
				if err == nil {
					resp.Body.Close()
				}
				errc <- err
			}()
			for iss.Fetches() == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			start := time.Now()
			iss.Close()
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Close took %v with a request in flight", took)
			}
			select {
			case err := <-errc:
				if err == nil {
					t.Error("request got an answer, want a connection error")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("request still blocked after Close")
			}
			iss.Close() // idempotent
		})
	}
}

func TestKeyRotation(t *testing.T) {
	servedKIDs := func(t *testing.T, iss *Issuer) []string {
		t.Helper()
		return slices.Sorted(maps.Keys(fetchKeys(t, iss.JWKSURL(), "")))
	}
	verifies := func(iss *Issuer, tok token, kid string) bool {
		for _, k := range iss.Keys() {
			if k.KID == kid {
				return rsa.VerifyPKCS1v15(&k.Private.PublicKey, crypto.SHA256, hashed(crypto.SHA256, tok.input), tok.sig) == nil
			}
		}
		return false
	}

	t.Run("Rotate", func(t *testing.T) {
		iss := Start(t)
		oldKID, oldKey := iss.KID(), iss.PrivateKey()
		newKID := iss.Rotate()
		if newKID == oldKID || iss.KID() != newKID || iss.PrivateKey().Equal(oldKey) {
			t.Fatalf("Rotate: kid %s -> %s, key changed %v", oldKID, newKID, !iss.PrivateKey().Equal(oldKey))
		}
		if got := servedKIDs(t, iss); !slices.Equal(got, []string{newKID}) {
			t.Fatalf("served kids = %v, want only %s", got, newKID)
		}
		tok := parse(t, iss.Mint())
		if tok.header["kid"] != newKID || !verifies(iss, tok, newKID) {
			t.Fatal("new token is not signed by the rotated key")
		}
	})
	t.Run("AddKey", func(t *testing.T) {
		iss := Start(t)
		oldKID := iss.KID()
		old := parse(t, iss.Mint())
		newKID := iss.AddKey()
		want := []string{oldKID, newKID}
		slices.Sort(want)
		if got := servedKIDs(t, iss); !slices.Equal(got, want) {
			t.Fatalf("served kids = %v, want %v", got, want)
		}
		if !verifies(iss, old, oldKID) {
			t.Error("token signed before AddKey no longer verifies")
		}
		if tok := parse(t, iss.Mint()); tok.header["kid"] != newKID || !verifies(iss, tok, newKID) {
			t.Error("new token is not signed by the added key")
		}
		if !iss.RemoveKey(oldKID) || iss.RemoveKey(oldKID) {
			t.Fatal("RemoveKey should report true once, then false")
		}
		if got := servedKIDs(t, iss); !slices.Equal(got, []string{newKID}) {
			t.Fatalf("after RemoveKey served kids = %v, want %v", got, []string{newKID})
		}
	})
	t.Run("RotateSameKID", func(t *testing.T) {
		iss := Start(t)
		kid, oldKey := iss.KID(), iss.PrivateKey()
		old := parse(t, iss.Mint())
		iss.RotateSameKID()
		if iss.KID() != kid || iss.PrivateKey().Equal(oldKey) {
			t.Fatal("RotateSameKID must keep the kid and change the key")
		}
		pub := fetchKeys(t, iss.JWKSURL(), "")[kid]
		if pub == nil || !pub.Equal(&iss.PrivateKey().PublicKey) || pub.Equal(&oldKey.PublicKey) {
			t.Fatal("served key under the same kid is not the new key")
		}
		if verifies(iss, old, kid) {
			t.Error("token signed by the old key still verifies against the served key")
		}
	})
	t.Run("RemoveKey keeps signing with the removed key", func(t *testing.T) {
		iss := Start(t)
		kid := iss.KID()
		iss.RemoveKey(kid)
		if _, body := get(t, iss.JWKSURL(), ""); string(body) != `{"keys":[]}` {
			t.Fatalf("JWKS = %s, want {\"keys\":[]}", body)
		}
		if tok := parse(t, iss.Mint()); tok.header["kid"] != kid {
			t.Fatalf("kid = %v, want the removed %s", tok.header["kid"], kid)
		}
	})
	t.Run("SetKeys", func(t *testing.T) {
		iss := Start(t)
		large, err := NewRSAKey(3072)
		if err != nil {
			t.Fatal(err)
		}
		keys := []Key{{KID: "ins_big", Private: large}, {KID: iss.KID(), Private: iss.PrivateKey()}}
		iss.SetKeys(keys...)
		if iss.KID() != "ins_big" || !iss.PrivateKey().Equal(large) {
			t.Fatal("the first SetKeys key should become the signing key")
		}
		if got := servedKIDs(t, iss); len(got) != 2 {
			t.Fatalf("served kids = %v, want 2", got)
		}
		if got := fetchKeys(t, iss.JWKSURL(), "")["ins_big"]; got == nil || got.N.BitLen() != 3072 {
			t.Fatal("3072-bit key not served")
		}
		iss.SetKeys()
		if iss.KID() != "ins_big" || len(fetchKeys(t, iss.JWKSURL(), "")) != 0 {
			t.Fatal("SetKeys() should empty the set and keep the signing key")
		}
	})
	t.Run("live issuers never share a key", func(t *testing.T) {
		a, b := Start(t), Start(t)
		a.AddKey()
		for _, ka := range a.Keys() {
			for _, kb := range b.Keys() {
				if ka.Private.Equal(kb.Private) || ka.KID == kb.KID {
					t.Fatal("two live issuers share a key or kid")
				}
			}
		}
	})
}

func TestFetchesCountsEveryRequest(t *testing.T) {
	iss := Start(t)
	if n := iss.Fetches(); n != 0 {
		t.Fatalf("Fetches = %d before any request", n)
	}
	get(t, iss.JWKSURL(), "")                           // 1: frontend
	get(t, iss.APIURL()+APIJWKSPath, iss.SecretKey())   // 2: backend
	get(t, iss.APIURL()+APIJWKSPath, "sk_test_invalid") // 3: unauthorized
	iss.SetFault(Fault{Status: 500})
	get(t, iss.JWKSURL(), "") // 4: faulted
	iss.ClearFault()
	resp, err := client.Post(iss.JWKSURL(), "application/json", nil) // 5: wrong method
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status = %d, want 405", resp.StatusCode)
	}
	get(t, iss.URL+"/elsewhere", "") // not a JWKS endpoint: not counted
	if n := iss.Fetches(); n != 5 {
		t.Fatalf("Fetches = %d, want 5", n)
	}
}

// TestConcurrentUse exercises every mutator while requests are served; its
// value is in running under -race.
func TestConcurrentUse(t *testing.T) {
	iss := Start(t)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 4 {
		wg.Go(func() {
			for range 10 {
				resp, err := client.Get(iss.JWKSURL())
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		wg.Go(func() {
			for range 10 {
				iss.Mint(V2(OrgV2{ID: "org_1"}))
				iss.SetNow(time.Now)
			}
		})
	}
	wg.Go(func() {
		for range 3 {
			iss.AddKey()
			iss.SetFault(Fault{Delay: time.Millisecond})
			iss.RotateSameKID()
			iss.ClearFault()
			iss.Rotate()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if iss.Fetches() != 40 {
		t.Errorf("Fetches = %d, want 40", iss.Fetches())
	}
}

func ExampleIssuer_Mint() {
	iss, err := New()
	if err != nil {
		panic(err)
	}
	defer iss.Close()

	// A v2 session token with an active organization, expired an hour ago,
	// whose verifier would fetch keys from iss.JWKSURL().
	_ = iss.Mint(
		V2(OrgV2{ID: "org_123", Slug: "acme", Role: "admin", Per: "read"}),
		WithClaims(map[string]any{"fea": "o:dashboard"}),
		IssuedAt(time.Now().Add(-time.Hour)),
	)
	// The RS256→HS256 key-confusion attack every verifier must refuse.
	_ = iss.Mint(WithAlg("HS256"), WithHMACSecret([]byte(iss.PublicKeyPEM())))
}
