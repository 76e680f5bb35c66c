package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// alg is the JWS algorithm of every assertion; see the package doc for why.
const alg = "ES256"

// key is one signing key with its schedule, and what Sign and JWKS need of
// it precomputed. It is never formatted or marshalled: only its kid and
// schedule leave the package, as a KeyInfo.
type key struct {
	kid  string
	priv *ecdsa.PrivateKey

	created      time.Time
	signFrom     time.Time // first instant it signs
	signUntil    time.Time // first instant it no longer signs
	publishUntil time.Time // first instant it is no longer in the JWKS

	header []byte // base64url of the JWS header, and the '.' after it
	jwk    publicJWK
}

// publicJWK is a key's entry in the JWKS (RFC 7517, RFC 7518 §6.2.1).
type publicJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// newKey derives the kid, header and public JWK of priv.
func newKey(priv *ecdsa.PrivateKey) (*key, error) {
	if priv.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 key")
	}
	pub, err := priv.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil || len(pub) != 65 {
		return nil, errors.New("not a valid P-256 public key")
	}
	b64 := base64.RawURLEncoding
	x, y := b64.EncodeToString(pub[1:33]), b64.EncodeToString(pub[33:])
	// The kid is the RFC 7638 thumbprint: the same key always gets the same
	// kid, and a kid that does not match its key betrays a corrupt document.
	thumb := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	kid := b64.EncodeToString(thumb[:])
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, "JWT"})
	if err != nil {
		return nil, err
	}
	k := &key{kid: kid, priv: priv}
	k.header = append(b64.AppendEncode(nil, hdr), '.')
	k.jwk = publicJWK{Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: kid, Alg: alg, Use: "sig"}
	return k, nil
}

// generateKey makes a fresh key that signs in [signFrom, signFrom+o.RotateEvery)
// and is published from now until Overlap after that.
func generateKey(now, signFrom time.Time, o Options) (*key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	k, err := newKey(priv)
	if err != nil {
		return nil, err
	}
	k.created = now
	k.signFrom = signFrom
	k.signUntil = signFrom.Add(o.RotateEvery)
	k.publishUntil = k.signUntil.Add(o.Overlap)
	return k, nil
}

// signs reports whether k is the key for assertions signed at now.
func (k *key) signs(now time.Time) bool {
	return !now.Before(k.signFrom) && now.Before(k.signUntil)
}

// info is k's public description.
func (k *key) info() KeyInfo {
	return KeyInfo{
		KID:          k.kid,
		Created:      k.created,
		SignFrom:     k.signFrom,
		SignUntil:    k.signUntil,
		PublishUntil: k.publishUntil,
	}
}

// KeyInfo is the public description of one key of a KeyRing: its kid and
// schedule. It holds nothing secret.
type KeyInfo struct {
	KID          string    `json:"kid"`
	Created      time.Time `json:"created"`
	SignFrom     time.Time `json:"sign_from"`
	SignUntil    time.Time `json:"sign_until"`
	PublishUntil time.Time `json:"publish_until"`
}
