package clerktest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"maps"
	"time"
)

// Default claim values of minted tokens.
const (
	DefaultSubject    = "user_test"
	DefaultSessionID  = "sess_test"
	DefaultM2MSubject = "mch_test"
	// DefaultOAuthClientID and DefaultOAuthScope are the "client_id" and
	// "scope" of an OAuth access token JWT.
	DefaultOAuthClientID = "client_test"
	DefaultOAuthScope    = "read write"
)

// Default timing of minted tokens, mirroring Clerk's short-lived session
// tokens: valid for a minute, with nbf backdated to absorb clock skew.
const (
	DefaultLifetime = 60 * time.Second
	NotBeforeSkew   = 10 * time.Second
)

// Option customizes a token minted by Issuer.Mint. Options apply in order,
// except that WithClaims and WithHeader always merge last, over everything
// the other options produced, so they can override or delete any of it.
type Option func(*mint)

type tokenKind int

const (
	kindSession tokenKind = iota
	kindTemplate
	kindM2M
	kindOAuth
)

type mint struct {
	kind     tokenKind
	v2       bool
	org      OrgV2
	orgV1    map[string]any
	claims   []map[string]any
	header   []map[string]any
	key      *rsa.PrivateKey
	alg      string
	hmac     []byte
	iat      time.Time // zero: the Issuer's clock
	lifetime time.Duration
}

// OrgV2 is the active organization of a v2 session token, the "o" claim.
// Per and Fpm are omitted from the claim when empty.
type OrgV2 struct {
	ID   string // "id", e.g. "org_123"
	Slug string // "slg", e.g. "acme"
	Role string // "rol", without the "org:" prefix, e.g. "admin"
	Per  string // "per", comma-separated permission names, e.g. "manage,read"
	Fpm  string // "fpm", comma-separated feature permission bitmasks, e.g. "3,2"
}

func (o OrgV2) claim() map[string]any {
	c := map[string]any{"id": o.ID, "slg": o.Slug, "rol": o.Role}
	if o.Per != "" {
		c["per"] = o.Per
	}
	if o.Fpm != "" {
		c["fpm"] = o.Fpm
	}
	return c
}

// WithClaims merges claims over the token's claims; a nil value deletes
// that claim (e.g. {"exp": nil} for a token that never expires). Values are
// marshaled with encoding/json, so any type can be used to test odd claim
// types ("exp": "tomorrow", "sub": 42, ...).
func WithClaims(claims map[string]any) Option {
	return func(m *mint) { m.claims = append(m.claims, claims) }
}

// WithHeader merges fields over the JOSE header; a nil value deletes that
// field (e.g. {"kid": nil}). Overriding "alg" here changes only what the
// header claims, not how the token is signed; see WithAlg for the opposite.
func WithHeader(header map[string]any) Option {
	return func(m *mint) { m.header = append(m.header, header) }
}

// WithKey signs RS*/PS* tokens with key instead of the Issuer's signing key,
// e.g. a NewRSAKey to forge a signature. The header kid stays the Issuer's
// unless overridden with WithHeader. A nil key means the Issuer's key.
func WithKey(key *rsa.PrivateKey) Option {
	return func(m *mint) { m.key = key }
}

// WithAlg sets the header "alg" to alg, verbatim, and signs accordingly:
// RS256/384/512 and PS256/384/512 with the RSA key, HS256/384/512 with the
// WithHMACSecret secret (Mint panics without one), ES256/384/512 with a fresh
// P-256/P-384/P-521 key, EdDSA with a fresh Ed25519 key. Any other value,
// "none" included (in any letter case), yields an empty signature.
func WithAlg(alg string) Option {
	return func(m *mint) { m.alg = alg }
}

// WithHMACSecret is the secret for HS* algorithms, typically
// []byte(PublicKeyPEM()) to test RS256→HS256 key confusion. A nil secret
// is an empty one.
func WithHMACSecret(secret []byte) Option {
	return func(m *mint) { m.hmac = append([]byte{}, secret...) }
}

// Template mints a JWT template token: cat CatTemplate, no "sid", and a
// random "jti".
func Template() Option {
	return func(m *mint) { m.kind = kindTemplate }
}

// M2M mints a machine-to-machine JWT: cat CatM2M, "sub" DefaultM2MSubject,
// a "jti" of the form "mt_…", and neither "sid" nor "azp". Add "aud" and
// "scopes" with WithClaims.
func M2M() Option {
	return func(m *mint) { m.kind = kindM2M }
}

// OAuth mints an OAuth access token JWT as Clerk's IdP issues them (RFC
// 9068): header "typ" "at+jwt" and no "cat" (Clerk's SDK checks none, and
// the value Clerk stamps is not known), "client_id"
// DefaultOAuthClientID, "scope" DefaultOAuthScope, a "jti" of the form
// "oat_…", and neither "sid" nor "azp". The default "sub" stays
// DefaultSubject, a user.
func OAuth() Option {
	return func(m *mint) { m.kind = kindOAuth }
}

// V2 mints a version 2 session token ("v": 2) with org as the active
// organization ("o"), or with none if org.ID is empty. Add "fea", "pla",
// "sts", "act" or "fva" with WithClaims.
func V2(org OrgV2) Option {
	return func(m *mint) {
		m.v2 = true
		m.org = org
	}
}

// V1Org adds a v1 session token's active organization: "org_id",
// "org_slug", "org_role" (e.g. "org:admin") and "org_permissions" (always an
// array, possibly empty).
func V1Org(id, slug, role string, perms ...string) Option {
	return func(m *mint) {
		if perms == nil {
			perms = []string{}
		}
		m.orgV1 = map[string]any{
			"org_id":          id,
			"org_slug":        slug,
			"org_role":        role,
			"org_permissions": perms,
		}
	}
}

// Lifetime sets "exp" to "iat" + d; negative values mint expired tokens.
func Lifetime(d time.Duration) Option {
	return func(m *mint) { m.lifetime = d }
}

// IssuedAt sets "iat" to t, "nbf" to t-NotBeforeSkew and "exp" to
// t+DefaultLifetime (or t+Lifetime if set), instead of using the Issuer's
// clock.
func IssuedAt(t time.Time) Option {
	return func(m *mint) { m.iat = t }
}

// Mint returns a token signed by the Issuer. Without options it is a v1
// session token, RS256, header {"alg","cat":CatSession,"kid","typ":"JWT"},
// claims {"azp":DefaultAZP,"exp":iat+60s,"iat":now,"iss":URL,
// "nbf":iat-10s,"sid":DefaultSessionID,"sub":DefaultSubject}, with now from
// SetNow's clock.
//
// Mint panics if the options cannot be honoured (an HS* alg without
// WithHMACSecret): it is a test helper, and such a test is broken.
func (i *Issuer) Mint(opts ...Option) string {
	m := mint{alg: "RS256", lifetime: DefaultLifetime}
	for _, o := range opts {
		o(&m)
	}

	i.mu.RLock()
	signer, now := i.signer, i.now
	i.mu.RUnlock()

	iat := m.iat
	if iat.IsZero() {
		iat = now()
	}
	claims := map[string]any{
		"iss": i.URL,
		"sub": DefaultSubject,
		"iat": iat.Unix(),
		"nbf": iat.Add(-NotBeforeSkew).Unix(),
		"exp": iat.Add(m.lifetime).Unix(),
	}
	cat := CatSession
	switch m.kind {
	case kindSession:
		claims["sid"] = DefaultSessionID
		claims["azp"] = DefaultAZP
	case kindTemplate:
		cat = CatTemplate
		claims["azp"] = DefaultAZP
		claims["jti"] = rand.Text()
	case kindM2M:
		cat = CatM2M
		claims["sub"] = DefaultM2MSubject
		claims["jti"] = "mt_" + rand.Text()
	case kindOAuth:
		claims["client_id"] = DefaultOAuthClientID
		claims["scope"] = DefaultOAuthScope
		claims["jti"] = "oat_" + rand.Text()
	}
	maps.Copy(claims, m.orgV1)
	if m.v2 {
		claims["v"] = 2
		if m.org.ID != "" {
			claims["o"] = m.org.claim()
		}
	}
	for _, c := range m.claims {
		merge(claims, c)
	}

	header := map[string]any{"alg": m.alg, "cat": cat, "kid": signer.KID, "typ": "JWT"}
	if m.kind == kindOAuth {
		header["typ"] = "at+jwt"
		delete(header, "cat")
	}
	for _, h := range m.header {
		merge(header, h)
	}

	key, err := m.signingKey(signer.Private)
	if err != nil {
		panic("clerktest: Mint: " + err.Error())
	}
	tok, err := Sign(header, claims, m.alg, key)
	if err != nil {
		panic("clerktest: Mint: " + err.Error())
	}
	return tok
}

// merge copies src over dst, deleting the keys whose value is nil.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
}

// signingKey picks the key for m.alg; nil means an unsigned token.
func (m *mint) signingKey(issuerKey *rsa.PrivateKey) (any, error) {
	switch m.alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		if m.key != nil {
			return m.key, nil
		}
		return issuerKey, nil
	case "HS256", "HS384", "HS512":
		if m.hmac == nil {
			return nil, errors.New(m.alg + " needs WithHMACSecret")
		}
		return m.hmac, nil
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, nil
}
