package assertion

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"time"
)

// ErrCorrupt is wrapped by the error of a refresh that found a key document
// it cannot use. The document is left alone (an operator, or a newer
// version of this package, may own it) and the last good keys stay in use.
var ErrCorrupt = errors.New("identity assertion key document is unusable")

// documentVersion is the layout written to storage; a reader refuses any
// other rather than guess.
const documentVersion = 1

// document is what storage holds under Options.Prefix: every key the
// cluster publishes, with its schedule.
type document struct {
	Version int         `json:"version"`
	Keys    []storedKey `json:"keys"`
}

type storedKey struct {
	KID          string    `json:"kid"`
	Alg          string    `json:"alg"`
	PrivateKey   string    `json:"private_key"` // PKCS#8, PEM
	Created      time.Time `json:"created"`
	SignFrom     time.Time `json:"sign_from"`
	SignUntil    time.Time `json:"sign_until"`
	PublishUntil time.Time `json:"publish_until"`
}

// encodeDocument is the inverse of decodeDocument.
func encodeDocument(keys []*key) ([]byte, error) {
	doc := document{Version: documentVersion, Keys: make([]storedKey, 0, len(keys))}
	for _, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			return nil, fmt.Errorf("encoding key %s: %w", k.kid, err)
		}
		doc.Keys = append(doc.Keys, storedKey{
			KID:          k.kid,
			Alg:          alg,
			PrivateKey:   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
			Created:      k.created.UTC(),
			SignFrom:     k.signFrom.UTC(),
			SignUntil:    k.signUntil.UTC(),
			PublishUntil: k.publishUntil.UTC(),
		})
	}
	return json.MarshalIndent(doc, "", "  ")
}

// decodeDocument parses a stored document into keys sorted by SignFrom. Its
// errors wrap ErrCorrupt and quote nothing of the document (it holds
// private keys), only kids derived from the keys themselves.
func decodeDocument(raw []byte) ([]*key, error) {
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("%w: not JSON (syntax error at byte %d)", ErrCorrupt, syn.Offset)
		}
		return nil, fmt.Errorf("%w: not a key document", ErrCorrupt)
	}
	if doc.Version != documentVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d", ErrCorrupt, doc.Version, documentVersion)
	}
	keys := make([]*key, 0, len(doc.Keys))
	seen := make(map[string]bool, len(doc.Keys))
	for i, sk := range doc.Keys {
		k, err := decodeKey(sk)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrCorrupt, i, err)
		}
		if seen[k.kid] {
			return nil, fmt.Errorf("%w: key %s appears twice", ErrCorrupt, k.kid)
		}
		seen[k.kid] = true
		keys = append(keys, k)
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].signFrom.Before(keys[j].signFrom) })
	return keys, nil
}

func decodeKey(sk storedKey) (*key, error) {
	if sk.Alg != alg {
		return nil, fmt.Errorf("alg is not %s", alg)
	}
	block, _ := pem.Decode([]byte(sk.PrivateKey))
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("private key is not a PKCS#8 PEM block")
	}
	// The parser's own error is not passed on: it may describe the bytes.
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("private key does not parse as PKCS#8")
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("private key is not ECDSA")
	}
	k, err := newKey(priv)
	if err != nil {
		return nil, err
	}
	if k.kid != sk.KID {
		return nil, fmt.Errorf("stored kid is not the thumbprint %s of its key", k.kid)
	}
	if !sk.SignFrom.Before(sk.SignUntil) || sk.PublishUntil.Before(sk.SignUntil) {
		return nil, fmt.Errorf("key %s has an impossible schedule", k.kid)
	}
	k.created, k.signFrom, k.signUntil, k.publishUntil = sk.Created, sk.SignFrom, sk.SignUntil, sk.PublishUntil
	return k, nil
}
