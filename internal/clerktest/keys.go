package clerktest

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"
)

// Key is one RSA signing key of an Issuer with the kid it is served under.
type Key struct {
	KID     string          // served as "kid" and put in minted headers
	Private *rsa.PrivateKey // signs tokens; its public half is served
}

// newKID returns a kid shaped like Clerk's instance ids ("ins_…") but marked
// as a test one so it can never be mistaken for a real instance's.
func newKID() string { return "ins_test_" + rand.Text() }

// Generating an RSA-2048 key costs tens of milliseconds; suites that start an
// Issuer per test would spend most of their time there. Closed Issuers
// therefore hand their keys back to this process-wide free list, bounded so an
// odd test creating hundreds of keys does not pin them all in memory. A key
// is only ever held by one live Issuer at a time, so two instances alive
// together never share a key: cross-instance forgery tests stay meaningful.
var keyPool struct {
	mu   sync.Mutex
	free []*rsa.PrivateKey
}

const maxPooledKeys = 16

// leaseKey takes an RSA-2048 key from the pool, generating one if it is
// empty. Generation happens outside the lock so parallel tests generate in
// parallel.
func leaseKey() (*rsa.PrivateKey, error) {
	keyPool.mu.Lock()
	if n := len(keyPool.free); n > 0 {
		k := keyPool.free[n-1]
		keyPool.free = keyPool.free[:n-1]
		keyPool.mu.Unlock()
		return k, nil
	}
	keyPool.mu.Unlock()
	return rsa.GenerateKey(rand.Reader, 2048)
}

func releaseKeys(keys []*rsa.PrivateKey) {
	keyPool.mu.Lock()
	defer keyPool.mu.Unlock()
	for _, k := range keys {
		if len(keyPool.free) >= maxPooledKeys {
			return
		}
		keyPool.free = append(keyPool.free, k)
	}
}

// NewRSAKey returns an RSA key of the given size that no live Issuer uses,
// e.g. to forge signatures (WithKey) or to test weak (1024) and large
// (3072, 4096) keys through SetKeys. 2048-bit keys come from the pool when
// possible and are never returned to it. Sizes below 1024 bits are refused
// by crypto/rsa.
func NewRSAKey(bits int) (*rsa.PrivateKey, error) {
	if bits == 2048 {
		return leaseKey()
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("clerktest: generating %d-bit RSA key: %w", bits, err)
	}
	return k, nil
}

// mustLeaseKey is leaseKey for methods whose signature has no error: with
// crypto/rand that cannot fail in practice, and a test helper is better off
// panicking loudly than returning a half-rotated Issuer.
func (i *Issuer) mustLeaseKey() *rsa.PrivateKey {
	k, err := leaseKey()
	if err != nil {
		panic("clerktest: generating RSA key: " + err.Error())
	}
	i.leased = append(i.leased, k) // caller holds i.mu
	return k
}

// KID is the kid of the key Mint currently signs with.
func (i *Issuer) KID() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.signer.KID
}

// PrivateKey is the key Mint currently signs with.
func (i *Issuer) PrivateKey() *rsa.PrivateKey {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.signer.Private
}

// Keys returns a copy of the served key set, in JWKS order.
func (i *Issuer) Keys() []Key {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return append([]Key(nil), i.keys...)
}

// Rotate replaces the served key set with a single new key under a new kid,
// which Mint signs with from now on. Tokens signed before no longer verify.
func (i *Issuer) Rotate() (kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	k := Key{KID: newKID(), Private: i.mustLeaseKey()}
	i.keys = []Key{k}
	i.signer = k
	return k.KID
}

// AddKey adds a new key under a new kid to the served set, keeping the old
// ones, and makes it the signing key: the overlap phase of a graceful
// rotation.
func (i *Issuer) AddKey() (kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	k := Key{KID: newKID(), Private: i.mustLeaseKey()}
	i.keys = append(i.keys, k)
	i.signer = k
	return k.KID
}

// RotateSameKID replaces the signing key with a new RSA key under the SAME
// kid, in the served set too. A verifier caching keys by kid alone will keep
// rejecting new tokens (or accepting old ones) until it refetches.
func (i *Issuer) RotateSameKID() {
	i.mu.Lock()
	defer i.mu.Unlock()
	k := Key{KID: i.signer.KID, Private: i.mustLeaseKey()}
	for n := range i.keys {
		if i.keys[n].KID == k.KID {
			i.keys[n] = k
		}
	}
	i.signer = k
}

// SetKeys replaces the served key set with keys, in that order. If keys is
// not empty, its first element becomes the signing key; otherwise the
// signing key is unchanged and the endpoints serve {"keys":[]}. Keys passed
// here stay the caller's: Close does not recycle them.
func (i *Issuer) SetKeys(keys ...Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append([]Key(nil), keys...)
	if len(keys) > 0 {
		i.signer = keys[0]
	}
}

// RemoveKey removes every key with this kid from the served set and reports
// whether there was one. The signing key is not changed, so Mint can keep
// producing tokens whose kid the key set no longer contains.
func (i *Issuer) RemoveKey(kid string) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	kept := make([]Key, 0, len(i.keys))
	for _, k := range i.keys {
		if k.KID != kid {
			kept = append(kept, k)
		}
	}
	removed := len(kept) != len(i.keys)
	i.keys = kept
	return removed
}
