package assertion

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// typedClaims is how a caller may hand Sign a struct instead of a map.
type typedClaims struct {
	Sub      string   `json:"sub"`
	Iss      string   `json:"iss"`
	Aud      string   `json:"aud"`
	Iat      int64    `json:"iat"`
	Exp      int64    `json:"exp"`
	SID      string   `json:"sid,omitempty"`
	OrgID    string   `json:"org_id,omitempty"`
	OrgRole  string   `json:"org_role,omitempty"`
	OrgPerms []string `json:"org_permissions,omitempty"`
}

func TestSignVerifies(t *testing.T) {
	clock := fakeclock.New(testNow)
	r := newRing(t, newStorage(t), clock, testOptions)
	mustRefresh(t, r)
	kid := r.Keys()[0].KID
	body, _ := r.JWKS()

	for _, tc := range []struct {
		name   string
		claims any
	}{
		{"map", claimsAt(testNow, 5*time.Minute)},
		{"struct", typedClaims{
			Sub: "user_2abc", Iss: "https://example.com", Aud: "upstream-a",
			Iat: testNow.Unix(), Exp: testNow.Add(5 * time.Minute).Unix(),
			SID: "sess_1", OrgID: "org_1", OrgRole: "org:admin", OrgPerms: []string{"org:x:read"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := mustSign(t, r, tc.claims)
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("%d parts, want 3", len(parts))
			}
			hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"alg":"ES256","kid":"` + kid + `","typ":"JWT"}`; string(hdr) != want {
				t.Errorf("header %s, want %s", hdr, want)
			}
			if sig, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil || len(sig) != 64 {
				t.Errorf("signature is %d bytes (%v), want JOSE r||s of 64", len(sig), err)
			}
			got, err := verify(tok, body, testNow)
			if err != nil {
				t.Fatalf("jwx rejects the assertion: %v", err)
			}
			if got.Subject() != "user_2abc" || got.Issuer() != "https://example.com" {
				t.Errorf("claims came back as sub %q iss %q", got.Subject(), got.Issuer())
			}
			if _, err := verify(tok, body, testNow.Add(6*time.Minute)); err == nil {
				t.Error("jwx accepts the assertion after its exp")
			}
			tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"user_evil","aud":"upstream-a"}`)) + "." + parts[2]
			if _, err := verify(tampered, body, testNow); err == nil {
				t.Error("jwx accepts a payload the signature does not cover")
			}
		})
	}
}

func TestSignRefusesClaims(t *testing.T) {
	r := newRing(t, newStorage(t), fakeclock.New(testNow), testOptions)
	mustRefresh(t, r)
	for _, tc := range []struct {
		name   string
		claims any
	}{
		{"string", "user_2abc"},
		{"array", []string{"a"}},
		{"null", nil},
		{"not marshalable", map[string]any{"c": make(chan int)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := r.Sign(tc.claims); err == nil {
				t.Fatalf("signed %q", tok)
			}
		})
	}
}

func TestSignWithoutKeys(t *testing.T) {
	r := newRing(t, newStorage(t), fakeclock.New(testNow), testOptions)
	if _, err := r.Sign(claimsAt(testNow, time.Minute)); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("got %v, want ErrNoSigningKey", err)
	}
	if body, etag := r.JWKS(); string(body) != `{"keys":[]}` || etag == "" {
		t.Fatalf("JWKS before any read: %s %s", body, etag)
	}
}

func TestJWKS(t *testing.T) {
	r := newRing(t, newStorage(t), fakeclock.New(testNow), testOptions)
	mustRefresh(t, r)
	body, etag := r.JWKS()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	for field, want := range map[string]string{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": r.Keys()[0].KID} {
		if k[field] != want {
			t.Errorf("%s = %q, want %q", field, k[field], want)
		}
	}
	if len(k) != 7 {
		t.Errorf("JWK has fields %v, want exactly kty crv x y kid alg use", k)
	}
	// The kid is the RFC 7638 thumbprint, as jwx computes it.
	parsed, err := jwk.ParseKey([]byte(mustJSON(t, k)))
	if err != nil {
		t.Fatal(err)
	}
	thumb, err := parsed.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(thumb); got != k["kid"] {
		t.Errorf("kid %s, thumbprint %s", k["kid"], got)
	}
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
		t.Errorf("ETag %s is not a quoted strong tag", etag)
	}
	mustRefresh(t, r)
	if body2, etag2 := r.JWKS(); string(body2) != string(body) || etag2 != etag {
		t.Error("JWKS changed on a refresh that changed no key")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func BenchmarkSign(b *testing.B) {
	s := &certmagic.FileStorage{Path: b.TempDir()}
	r, err := New(s, Options{Clock: fakeclock.New(testNow)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Refresh(b.Context()); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		claims any
	}{
		{"struct", typedClaims{
			Sub: "user_2abcdefghijklmnopqrstuvwxyz", Iss: "https://clerk.example.com", Aud: "upstream-a",
			Iat: testNow.Unix(), Exp: testNow.Add(5 * time.Minute).Unix(),
			SID: "sess_2abcdefghijklmnopqrstuvwxyz", OrgID: "org_2abcdefghijklmnopqrstuvwxyz",
			OrgRole: "org:admin", OrgPerms: []string{"org:billing:read", "org:billing:manage"},
		}},
		{"map", claimsAt(testNow, 5*time.Minute)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Sign(bc.claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
