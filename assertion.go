package clerkauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/assertion"
)

// IdentityAssertion makes clerk_auth state the verified identity in a
// short-lived ES256 JWT that it sets as a request header, so that an
// upstream can verify where the identity came from instead of trusting
// the network. The keys live in Caddy's storage and are published by the
// clerk_identity_jwks handler.
type IdentityAssertion struct {
	// The request header that carries the assertion, e.g.
	// `X-Clerk-Identity`. The client's own copies (and look-alikes) are
	// deleted first, like every header clerk_auth owns.
	Header string `json:"header"`
	// The assertion's `aud`: who it is for. Required, and different per
	// upstream, so one upstream's assertions are useless at another.
	Audience string `json:"audience"`
	// The assertion's `iss`. Default: the origin the request arrived at
	// (its scheme and host, as for sign_in_url).
	Issuer string `json:"issuer,omitempty"`
	// How long an assertion lives at most; it never outlives the Clerk
	// token it states. Default: 5m; at most 30m, so that every key stays
	// published for longer than the assertions it signed.
	TTL caddy.Duration `json:"ttl,omitempty"`
}

// Assertion defaults and bounds.
const (
	defaultAssertionTTL = 5 * time.Minute
	maxAssertionTTL     = 30 * time.Minute
	// assertionRenewal is how long before its exp a cached assertion is
	// replaced, when a fresh one would live longer: upstream clocks and
	// network delays eat into an assertion that is about to expire.
	assertionRenewal = 15 * time.Second
)

// assertionRings holds one KeyRing per storage, shared by every handler
// (clerk_auth minting, clerk_identity_jwks publishing) and kept across
// reloads.
var assertionRings = caddy.NewUsagePool()

// assertionClock is the clock of key rings created from now on; nil is the
// real one. Tests move it to rotate keys without waiting.
var assertionClock assertion.Clock

type sharedRing struct{ *assertion.KeyRing }

func (r sharedRing) Destruct() error {
	r.Stop()
	return nil
}

// loadKeyRing returns the key ring of ctx's storage and the pool key that
// Cleanup must release. A new ring reads (or makes) its keys before it is
// used, so the first request finds a key.
func loadKeyRing(ctx caddy.Context) (*assertion.KeyRing, string, error) {
	storage := ctx.Storage()
	if storage == nil {
		return nil, "", errors.New("identity assertion: Caddy has no storage configured")
	}
	key := storageKey(storage)
	logger := ctx.Logger().Named("identity_assertion")
	val, _, err := assertionRings.LoadOrNew(key, func() (caddy.Destructor, error) {
		opts := assertion.DefaultOptions
		opts.Clock = assertionClock
		ring, err := assertion.New(storage, opts, logger)
		if err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, opts.StorageTimeout)
		defer cancel()
		if err := ring.Refresh(rctx); err != nil {
			// Not fatal: the ring retries in the background, and signing
			// fails with a 503 until it has a key.
			logger.Error("identity assertion keys could not be read or made yet; retrying", zap.Error(err))
		}
		ring.Start()
		return sharedRing{ring}, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("identity assertion keys: %v", err)
	}
	return val.(sharedRing).KeyRing, key, nil
}

// storageKey names a storage for the pools of state kept in it.
func storageKey(storage certmagic.Storage) string {
	if s, ok := storage.(fmt.Stringer); ok {
		// FileStorage names its folder: two configs on one folder share.
		return fmt.Sprintf("%T|%s", storage, s.String())
	}
	return fmt.Sprintf("%T|%p", storage, storage)
}

// minter mints a route's assertions.
type minter struct {
	ring     *assertion.KeyRing
	header   string
	audience string
	issuer   string // "" = the request's origin
	ttl      time.Duration
	now      func() time.Time
}

// minted is an assertion kept with the identity it states, so that a
// cached token costs no signature per request.
type minted struct {
	by      *minter
	issuer  string
	enrich  *enrichment
	token   string
	renewAt time.Time
}

// assertionClaims are what an assertion states. Names follow Clerk's
// session claims where there is one; clerk_iss is the Clerk instance, iss
// the gateway.
type assertionClaims struct {
	Issuer         string   `json:"iss"`
	Audience       string   `json:"aud"`
	Subject        string   `json:"sub"`
	IssuedAt       int64    `json:"iat"`
	Expires        int64    `json:"exp"`
	TokenType      string   `json:"token_type"`
	ClerkIssuer    string   `json:"clerk_iss,omitempty"`
	SessionID      string   `json:"sid,omitempty"`
	AuthorizedBy   string   `json:"azp,omitempty"`
	OrgID          string   `json:"org_id,omitempty"`
	OrgRole        string   `json:"org_role,omitempty"`
	OrgPermissions []string `json:"org_permissions,omitempty"`
	Roles          []string `json:"roles,omitempty"`
	Scopes         []string `json:"scopes,omitempty"`
	*enrichedClaims
}

// assertionFor returns the assertion for id on r, minting one when the
// cached one is missing, due for renewal, or was made for another issuer
// or other enrichment data.
func (m *minter) assertionFor(id *Identity, enrich *enrichment, r *http.Request) (string, error) {
	issuer := m.issuer
	if issuer == "" {
		// Every request pays for this, cached assertion or not: the
		// origin alone, not publicURL, which parses the whole URL.
		issuer = requestOrigin(r)
	}
	now := m.now()
	if c := id.assertion.Load(); c != nil && c.by == m && c.issuer == issuer && c.enrich.same(enrich) && now.Before(c.renewAt) {
		return c.token, nil
	}
	exp := now.Add(m.ttl)
	renewAt := exp.Add(-assertionRenewal)
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(exp) {
		// Bound by the token: a fresh assertion would not live longer.
		exp, renewAt = id.ExpiresAt, id.ExpiresAt
	}
	claims := assertionClaims{
		Issuer:         issuer,
		Audience:       m.audience,
		Subject:        id.Subject,
		IssuedAt:       now.Unix(),
		Expires:        exp.Unix(),
		TokenType:      id.TokenType,
		ClerkIssuer:    id.Issuer,
		SessionID:      id.SessionID,
		AuthorizedBy:   id.AuthorizedParty,
		OrgID:          id.OrgID,
		OrgRole:        id.OrgRole,
		OrgPermissions: id.OrgPermissions,
		Roles:          id.Roles(),
		Scopes:         id.Scopes,
		enrichedClaims: enrich.claims(),
	}
	token, err := m.ring.Sign(claims)
	if err != nil {
		return "", err
	}
	id.assertion.Store(&minted{by: m, issuer: issuer, enrich: enrich, token: token, renewAt: renewAt})
	return token, nil
}

// provisionAssertion checks identity_assertion; attachKeyRing gives it its
// keys.
func (h *Handler) provisionAssertion(repl *caddy.Replacer) error {
	a := h.IdentityAssertion
	if a == nil {
		return nil
	}
	if err := checkOwnedName("identity_assertion", a.Header); err != nil {
		return err
	}
	audience, err := expand(repl, "identity_assertion audience", a.Audience)
	if err != nil {
		return err
	}
	if audience == "" {
		return errors.New("identity_assertion needs an audience: name the upstream it is for, e.g. audience https://billing.internal, so that its assertions are refused by every other upstream")
	}
	issuer, err := expand(repl, "identity_assertion issuer", a.Issuer)
	if err != nil {
		return err
	}
	ttl := time.Duration(a.TTL)
	if ttl == 0 {
		ttl = defaultAssertionTTL
	}
	if ttl < time.Second || ttl > maxAssertionTTL {
		return fmt.Errorf("identity_assertion ttl %s: use 1s to %s", ttl, maxAssertionTTL)
	}
	h.minter = &minter{header: a.Header, audience: audience, issuer: issuer, ttl: ttl}
	h.ownedHeaders = append(h.ownedHeaders, a.Header)
	return nil
}

// attachKeyRing gives identity_assertion the key ring of ctx's storage.
func (h *Handler) attachKeyRing(ctx caddy.Context) error {
	if h.minter == nil {
		return nil
	}
	ring, key, err := loadKeyRing(ctx)
	if err != nil {
		return err
	}
	h.ringKey = key
	h.minter.ring, h.minter.now = ring, h.verifier.now
	return nil
}

// assertionHolder is the part of Identity that keeps its assertion.
type assertionHolder struct {
	assertion atomic.Pointer[minted]
}
