package examples

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/assertion"
)

// forger makes the assertions an attacker who reaches an app directly
// could send, from a real one that Caddy minted: the claims and kid are
// Caddy's, only what the case names differs.
type forger struct {
	t      *testing.T
	claims map[string]any // of Caddy's assertion
	kid    string         // of Caddy's signing key
	pub    *ecdsa.PublicKey
	real   string // Caddy's assertion
	ring   *assertion.KeyRing
}

// newForger reads Caddy's assertion, its public key from the JWKS at
// jwksURL, and its private key from the storage folder, as a second Caddy
// on that storage would.
func newForger(t *testing.T, jwksURL, storage, real string) *forger {
	t.Helper()
	parts := strings.Split(real, ".")
	if len(parts) != 3 {
		t.Fatalf("Caddy's assertion is not a compact JWS: %d parts", len(parts))
	}
	var header struct{ Alg, Kid string }
	f := &forger{t: t, real: real}
	decodeSegment(t, parts[0], &header)
	decodeSegment(t, parts[1], &f.claims)
	if header.Alg != "ES256" || header.Kid == "" {
		t.Fatalf("Caddy's assertion has alg %q, kid %q", header.Alg, header.Kid)
	}
	f.kid = header.Kid

	status, body := fetch(t, jwksURL, nil)
	var set struct {
		Keys []struct{ Kid, Crv, X, Y string }
	}
	if err := json.Unmarshal(body, &set); status != http.StatusOK || err != nil {
		t.Fatalf("JWKS: %d %v %s", status, err, body)
	}
	for _, k := range set.Keys {
		if k.Kid == f.kid && k.Crv == "P-256" {
			x, errX := base64.RawURLEncoding.DecodeString(k.X)
			y, errY := base64.RawURLEncoding.DecodeString(k.Y)
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if errX != nil || errY != nil || err != nil {
				t.Fatalf("JWKS key %s: %v %v %v", k.Kid, errX, errY, err)
			}
			f.pub = pub
		}
	}
	if f.pub == nil {
		t.Fatalf("the JWKS has no P-256 key %s: %s", f.kid, body)
	}

	ring, err := assertion.New(&certmagic.FileStorage{Path: storage}, assertion.Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.ring = ring
	return f
}

func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err == nil {
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		t.Fatalf("JWT segment: %v", err)
	}
}

// edit returns a copy of Caddy's claims changed by each of edits.
func (f *forger) edit(edits []func(map[string]any)) map[string]any {
	c := make(map[string]any, len(f.claims))
	for k, v := range f.claims {
		c[k] = v
	}
	for _, e := range edits {
		e(c)
	}
	return c
}

// compact is the JWS of header and claims, signed by sign (nil: an empty
// signature).
func (f *forger) compact(header, claims map[string]any, sign func(input []byte) []byte) string {
	f.t.Helper()
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			f.t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := seg(header) + "." + seg(claims)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// otherKey signs with a fresh P-256 key under the kid of Caddy's.
func (f *forger) otherKey(edits ...func(map[string]any)) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.compact(map[string]any{"alg": "ES256", "kid": f.kid, "typ": "JWT"}, f.edit(edits), func(input []byte) []byte {
		digest := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
		if err != nil {
			f.t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	})
}

// noneAlg is unsigned, as alg none allows.
func (f *forger) noneAlg(edits ...func(map[string]any)) string {
	return f.compact(map[string]any{"alg": "none", "kid": f.kid, "typ": "JWT"}, f.edit(edits), nil)
}

// hs256PublicKey is an HMAC keyed with the PEM of Caddy's public key: it
// passes a verifier that takes the alg from the token.
func (f *forger) hs256PublicKey(edits ...func(map[string]any)) string {
	der, err := x509.MarshalPKIXPublicKey(f.pub)
	if err != nil {
		f.t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return f.compact(map[string]any{"alg": "HS256", "kid": f.kid, "typ": "JWT"}, f.edit(edits), func(input []byte) []byte {
		mac := hmac.New(sha256.New, secret)
		mac.Write(input)
		return mac.Sum(nil)
	})
}

// caddysKey is signed by Caddy's own key: only the claims can be wrong.
func (f *forger) caddysKey(edits ...func(map[string]any)) string {
	token, err := f.ring.Sign(f.edit(edits))
	if err != nil {
		f.t.Fatal(err)
	}
	return token
}

// edited is Caddy's assertion with other claims under its signature.
func (f *forger) edited(edits ...func(map[string]any)) string {
	parts := strings.Split(f.real, ".")
	forged := strings.Split(f.noneAlg(edits...), ".")
	return parts[0] + "." + forged[1] + "." + parts[2]
}
