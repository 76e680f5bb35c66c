package jwks

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// MinRSABits is the least modulus size of a key a Set accepts: weaker keys
// are refused even if an issuer serves them.
const MinRSABits = 2048

// hashes are the RSASSA-PKCS1-v1_5 algorithms Clerk signs with.
var hashes = map[string]crypto.Hash{
	"RS256": crypto.SHA256,
	"RS384": crypto.SHA384,
	"RS512": crypto.SHA512,
}

// Hash returns the hash of the RS* algorithm alg. For any other alg it
// reports false: no key of a Set is ever pinned to one.
func Hash(alg string) (crypto.Hash, bool) {
	h, ok := hashes[alg]
	return h, ok
}

type rsaKey struct {
	pub *rsa.PublicKey
	alg string // "" when the JWK does not pin one
}

func (k rsaKey) equal(o rsaKey) bool { return k.alg == o.alg && k.pub.Equal(o.pub) }

// parseJWKS keeps the usable RSA signing keys of a JWKS document. A key jwx
// cannot parse, or that is not an RSA signing key of at least MinRSABits, is
// skipped rather than failing the whole set; a set with no usable key is an
// error, so it never replaces a good one.
func parseJWKS(body []byte) (map[string]rsaKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("invalid JWKS JSON: %v", err)
	}
	keys := make(map[string]rsaKey, len(doc.Keys))
	for _, raw := range doc.Keys {
		k, err := jwk.ParseKey(bytes.TrimSpace(raw))
		if err != nil {
			continue
		}
		if use := k.KeyUsage(); use != "" && use != "sig" {
			continue
		}
		alg := ""
		if a := k.Algorithm(); a != nil {
			alg = a.String()
		}
		if _, ok := hashes[alg]; !ok && alg != "" {
			continue
		}
		var pub rsa.PublicKey
		if k.Raw(&pub) != nil || pub.N == nil || pub.N.BitLen() < MinRSABits || pub.E < 3 || pub.E%2 == 0 {
			continue
		}
		keys[k.KeyID()] = rsaKey{pub: &pub, alg: alg}
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no usable RSA signing key")
	}
	return keys, nil
}

// keyDiff lists the kids a new key set adds, removes, or serves with a
// different key (a rotation under the same kid).
type keyDiff struct {
	added, removed, replaced []string
}

func (d keyDiff) changed() bool { return len(d.added)+len(d.removed)+len(d.replaced) > 0 }

func diffKeys(old, cur map[string]rsaKey) keyDiff {
	var d keyDiff
	for kid, k := range cur {
		switch o, ok := old[kid]; {
		case !ok:
			d.added = append(d.added, kid)
		case !o.equal(k):
			d.replaced = append(d.replaced, kid)
		}
	}
	for kid := range old {
		if _, ok := cur[kid]; !ok {
			d.removed = append(d.removed, kid)
		}
	}
	sort.Strings(d.added)
	sort.Strings(d.removed)
	sort.Strings(d.replaced)
	return d
}
