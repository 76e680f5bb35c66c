package assertion

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrNoSigningKey is wrapped by the error of Sign when no key signs now:
// the storage has not been read yet, or has been unusable for longer than
// the schedule reached ahead. It says nothing about the request; the caller
// answers 503.
var ErrNoSigningKey = errors.New("no identity assertion signing key")

// Sign returns claims, which must marshal to a JSON object, as a compact
// ES256 JWS with header {"alg":"ES256","kid":...,"typ":"JWT"}, signed by the
// key whose turn it is. The claims' exp should be at most Options.Overlap
// after now: a longer-lived assertion may outlive its key in the JWKS. Sign
// reads only memory.
func (r *KeyRing) Sign(claims any) (string, error) {
	now := r.opts.Clock.Now()
	k := r.signer(now)
	if k == nil {
		return "", r.noKeyError(now)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("identity assertion claims: %w", err)
	}
	if len(payload) == 0 || payload[0] != '{' {
		return "", errors.New("identity assertion claims are not a JSON object")
	}
	b64 := base64.RawURLEncoding
	const sigLen = 86 // base64url of 64 bytes
	buf := make([]byte, 0, len(k.header)+b64.EncodedLen(len(payload))+1+sigLen)
	buf = append(buf, k.header...)
	buf = b64.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	rs, ss, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		return "", errors.New("identity assertion: ECDSA signing failed")
	}
	// JWS wants r || s, each left-padded to the curve's 32 bytes (RFC 7518
	// §3.4), not the ASN.1 form.
	var sig [64]byte
	rs.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig[:])
	return string(buf), nil
}

// signer is the key that signs at now: of those whose window holds now, the
// one that started last.
func (r *KeyRing) signer(now time.Time) *key {
	cur := r.cur.Load()
	if cur == nil {
		return nil
	}
	var best *key
	for _, k := range cur.keys {
		if k.signs(now) && (best == nil || k.signFrom.After(best.signFrom)) {
			best = k
		}
	}
	return best
}

func (r *KeyRing) noKeyError(now time.Time) error {
	last := r.lastError()
	switch {
	case r.cur.Load() == nil && last == nil:
		return fmt.Errorf("%w: storage not read yet", ErrNoSigningKey)
	case r.cur.Load() == nil:
		return fmt.Errorf("%w: storage never read: %v", ErrNoSigningKey, last)
	case last != nil:
		return fmt.Errorf("%w at %s: %v", ErrNoSigningKey, now.UTC().Format(time.RFC3339), last)
	default:
		return fmt.Errorf("%w at %s", ErrNoSigningKey, now.UTC().Format(time.RFC3339))
	}
}
