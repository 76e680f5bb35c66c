package clerkauth

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
)

// The compact JWS and its RSA signature, checked before any claim is read.

// splitJWT splits a compact JWS into its three segments; ok is false
// unless there are exactly three.
func splitJWT(token string) (header, payload, sig string, ok bool) {
	header, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return "", "", "", false
	}
	return header, payload, sig, true
}

// tokenChars are the bytes of a compact JWS: base64url and '.'.
var tokenChars = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") {
		t[c] = true
	}
	return t
}()

// indexNotTokenChar returns the index of the first byte that cannot occur
// in a compact JWS, or -1. A table lookup per byte: this runs on every
// token, before anything else.
func indexNotTokenChar(token string) int {
	for i := 0; i < len(token); i++ {
		if !tokenChars[token[i]] {
			return i
		}
	}
	return -1
}

// checkSigned checks the signature over token[:signed] with the key for
// hdr's kid, asking the key source once for a fresh copy when a key may have
// been rotated under the same kid, and returns the key that verified it.
// buf is scratch space for the digest.
func (v *verifier) checkSigned(ctx context.Context, hdr *jwtHeader, hash crypto.Hash, token string, signed int, rawSig string, buf []byte) (*rsa.PublicKey, error) {
	pub, keyAlg, err := v.keys.Key(ctx, hdr.Kid)
	switch {
	case errors.Is(err, jwks.ErrUnknownKID):
		return nil, &VerifyError{Reason: ReasonKIDMismatch, Err: err}
	case err != nil:
		return nil, &VerifyError{Reason: ReasonJWKSUnavailable, Err: err}
	}
	if keyAlg != "" && keyAlg != hdr.Alg {
		return nil, reject(ReasonInvalidAlgorithm, "key %q is for %s, token says %s", truncate(hdr.Kid, 40), keyAlg, hdr.Alg)
	}

	// A 4096-bit signature fits the stack buffer, sparing an allocation.
	var sigBuf [512]byte
	sig, err := base64.RawURLEncoding.Strict().AppendDecode(sigBuf[:0], []byte(rawSig))
	if err != nil {
		return nil, reject(ReasonTokenInvalid, "signature is not base64url")
	}
	// crypto/rsa directly rather than jwx's jws.Verify: the same PKCS#1 v1.5
	// check, without jwx re-parsing the header and allocating per call.
	sum, n := digest(hash, token[:signed], buf)
	if err := rsa.VerifyPKCS1v15(pub, hash, sum[:n], sig); err != nil {
		// Clerk may rotate a key under the same kid (the kid is the instance
		// id). Ask the key source for a fresh copy, throttled, and try once
		// more with it if it differs.
		r, ok := v.keys.(refetcher)
		if !ok {
			return nil, reject(ReasonInvalidSignature, "signature does not verify with key %q", truncate(hdr.Kid, 40))
		}
		fresh, freshAlg, ferr := r.Refetch(ctx, hdr.Kid)
		if ferr != nil || fresh == nil || fresh.Equal(pub) || (freshAlg != "" && freshAlg != hdr.Alg) ||
			rsa.VerifyPKCS1v15(fresh, hash, sum[:n], sig) != nil {
			return nil, reject(ReasonInvalidSignature, "signature does not verify with key %q", truncate(hdr.Kid, 40))
		}
		pub = fresh
	}
	return pub, nil
}

// checkSignature verifies only the structure, the header's alg and the
// signature of token against the key set, for the handshake token, whose
// claims Clerk does not check.
func (v *verifier) checkSignature(ctx context.Context, token string) error {
	if len(token) > maxTokenSize {
		return reject(ReasonTokenInvalid, "token is %d bytes, above the %d byte limit", len(token), maxTokenSize)
	}
	if i := indexNotTokenChar(token); i >= 0 {
		return reject(ReasonTokenInvalid, "byte %d is not base64url or '.'", i)
	}
	rawHeader, rawPayload, rawSig, ok := splitJWT(token)
	if !ok {
		return reject(ReasonTokenInvalid, "a JWT has exactly three dot-separated segments")
	}
	var buf [2048]byte
	var hdr jwtHeader
	rawJSON, err := decodeSegment(buf[:0], rawHeader)
	if err == nil {
		err = walkObject(rawJSON, hdr.member)
	}
	if err != nil {
		return reject(ReasonTokenInvalid, "header: %v", err)
	}
	hash, ok := jwks.Hash(hdr.Alg)
	if !ok {
		return reject(ReasonInvalidAlgorithm, "alg %q is not one of RS256, RS384, RS512", truncate(hdr.Alg, 16))
	}
	_, err = v.checkSigned(ctx, &hdr, hash, token, len(rawHeader)+1+len(rawPayload), rawSig, buf[:0])
	return err
}

// digest hashes the signing input, copied into buf: the hash functions take
// bytes, and hash.Hash's Write would copy the string to the heap. jwks.Hash
// yields no other hash; one would leave n 0, and the signature check fail.
func digest(hash crypto.Hash, signed string, buf []byte) (sum [sha512.Size]byte, n int) {
	b := append(buf, signed...)
	switch hash {
	case crypto.SHA256:
		s := sha256.Sum256(b)
		n = copy(sum[:], s[:])
	case crypto.SHA384:
		s := sha512.Sum384(b)
		n = copy(sum[:], s[:])
	case crypto.SHA512:
		sum, n = sha512.Sum512(b), sha512.Size
	}
	return sum, n
}
