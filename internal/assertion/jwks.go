package assertion

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// emptyJWKS is served before the storage was first read: upstreams see a
// valid, empty set rather than an error.
var emptyJWKS, emptyETag = buildJWKS(nil)

// buildJWKS is the JWKS of keys, and a strong ETag of it.
func buildJWKS(keys []*key) (body []byte, etag string) {
	set := struct {
		Keys []publicJWK `json:"keys"`
	}{Keys: make([]publicJWK, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk)
	}
	body, err := json.Marshal(set)
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	sum := sha256.Sum256(body)
	return body, `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// JWKS returns the public keys of every published key as a JWKS
// (kty EC, crv P-256, x, y, kid, alg ES256, use sig), and its ETag. Both are
// computed when the keys change, so serving them costs nothing; the body is
// shared and must not be modified.
func (r *KeyRing) JWKS() (body []byte, etag string) {
	cur := r.cur.Load()
	if cur == nil {
		return emptyJWKS, emptyETag
	}
	return cur.jwks, cur.etag
}
