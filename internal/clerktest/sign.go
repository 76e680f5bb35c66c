package clerktest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math/big"

	// Register the hashes the JWS algorithms below refer to by crypto.Hash.
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// hashBySize maps the digit suffix of a JWS algorithm name to its hash.
var hashBySize = map[string]crypto.Hash{
	"256": crypto.SHA256,
	"384": crypto.SHA384,
	"512": crypto.SHA512,
}

// Sign builds a compact JWS from header and claims, each marshaled with
// encoding/json exactly as given: Sign never adds or checks "alg", "kid" or
// any claim, so the header may lie about how the token is signed.
//
// alg chooses the signature: RS256/384/512 (PKCS #1 v1.5) and PS256/384/512
// (PSS, salt length = hash length, per RFC 7518) need an *rsa.PrivateKey;
// HS256/384/512 a []byte secret; ES256/384/512 an *ecdsa.PrivateKey (any
// curve, so mismatches can be tested); EdDSA an ed25519.PrivateKey. A nil
// key produces an empty signature whatever alg says, which covers "none"
// and stripped-signature tokens.
func Sign(header, claims any, alg string, key any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("clerktest: marshaling header: %w", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("clerktest: marshaling claims: %w", err)
	}
	return signSegments(h, c, alg, key)
}

// SegmentsJSON builds an RS256-signed JWS whose header and payload are the
// given strings byte for byte, for JSON that encoding/json would never
// produce: duplicate members, odd number forms, invalid UTF-8, non-objects,
// or not JSON at all. A nil key produces an empty signature.
func SegmentsJSON(headerJSON, payloadJSON string, key *rsa.PrivateKey) string {
	var k any
	if key != nil { // keep a nil *rsa.PrivateKey from becoming a non-nil any
		k = key
	}
	tok, err := signSegments([]byte(headerJSON), []byte(payloadJSON), "RS256", k)
	if err != nil {
		panic("clerktest: SegmentsJSON: " + err.Error()) // RS256 with an RSA key cannot fail
	}
	return tok
}

func signSegments(header, claims []byte, alg string, key any) (string, error) {
	input := b64(header) + "." + b64(claims)
	sig, err := signature(alg, key, []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

func signature(alg string, key any, input []byte) ([]byte, error) {
	if key == nil {
		return nil, nil
	}
	if alg == "EdDSA" {
		k, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, keyTypeError(alg, key)
		}
		return ed25519.Sign(k, input), nil
	}
	h, ok := hashBySize[alg[min(2, len(alg)):]]
	if !ok || len(alg) != 5 {
		return nil, fmt.Errorf("clerktest: cannot sign with alg %q", alg)
	}
	switch alg[:2] {
	case "HS":
		secret, ok := key.([]byte)
		if !ok {
			return nil, keyTypeError(alg, key)
		}
		mac := hmac.New(h.New, secret)
		mac.Write(input)
		return mac.Sum(nil), nil
	case "RS", "PS":
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, keyTypeError(alg, key)
		}
		d := digest(h, input)
		if alg[0] == 'R' {
			return rsa.SignPKCS1v15(nil, k, h, d)
		}
		return rsa.SignPSS(rand.Reader, k, h, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES":
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, keyTypeError(alg, key)
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, digest(h, input))
		if err != nil {
			return nil, err
		}
		// JWS wants R||S, each left-padded to the curve's byte size
		// (RFC 7518 §3.4), not the ASN.1 form crypto/ecdsa prefers.
		size := (k.Curve.Params().BitSize + 7) / 8
		return append(fixed(r, size), fixed(s, size)...), nil
	}
	return nil, fmt.Errorf("clerktest: cannot sign with alg %q", alg)
}

func digest(h crypto.Hash, input []byte) []byte {
	d := h.New()
	d.Write(input)
	return d.Sum(nil)
}

func fixed(n *big.Int, size int) []byte { return n.FillBytes(make([]byte, size)) }

func keyTypeError(alg string, key any) error {
	return fmt.Errorf("clerktest: alg %s cannot sign with a %T key", alg, key)
}
