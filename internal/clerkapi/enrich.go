package clerkapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
)

// User is what enrichment exposes of a Clerk user: the fields a request's
// upstream may be handed. Clerk's private and unsafe metadata are never
// decoded, so they are neither kept nor returned. The strings are Clerk's
// as stored, of any Unicode: a caller putting them in a header must escape
// them. PublicMetadata is shared with the cache: read it, never modify it.
type User struct {
	// ID is the user's id, "user_…".
	ID string
	// Email is the primary email address (email_addresses[] whose id is
	// primary_email_address_id, as the SDK's primaryEmailAddress finds
	// it); empty if the user has none.
	Email string
	// FirstName, LastName and Username are empty when Clerk has none.
	FirstName, LastName, Username string
	// ImageURL is the user's avatar (image_url).
	ImageURL string
	// PublicMetadata is the public_metadata JSON object; nil if Clerk sent
	// none or null.
	PublicMetadata json.RawMessage
}

// Organization is what enrichment exposes of a Clerk organization; its
// private metadata is never decoded. The same caveats as User's apply.
type Organization struct {
	// ID is the organization's id, "org_…".
	ID string
	// Name and Slug are as Clerk has them; Slug may be empty.
	Name, Slug string
	// ImageURL is the organization's logo (image_url); empty if none.
	ImageURL string
	// PublicMetadata is the public_metadata JSON object; nil if Clerk sent
	// none or null.
	PublicMetadata json.RawMessage
}

// MaxResourceIDLen bounds a user or organization id, prefix included.
// Clerk's are the prefix and a 27-character base62 KSUID
// ("user_2NNEqL2nrIRdJ194ndJqAHwEfxC", 32 characters); 64 leaves room.
const MaxResourceIDLen = 64

// ValidUserID reports whether id could be a Clerk user id: "user_" then
// letters and digits only, MaxResourceIDLen characters at most. GetUser
// never sends anything else, so an id reaches a URL path unescaped.
func ValidUserID(id string) bool { return validResourceID("user_", id) }

// ValidOrganizationID is ValidUserID for organization ids, "org_…".
func ValidOrganizationID(id string) bool { return validResourceID("org_", id) }

func validResourceID(prefix, id string) bool {
	if len(id) <= len(prefix) || len(id) > MaxResourceIDLen || !strings.HasPrefix(id, prefix) {
		return false
	}
	for i := len(prefix); i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// GetUser returns the user id as GET /v1/users/{id} answers it, through
// the enrichment cache (see EnrichCacheConfig): a fresh entry is returned
// without a call, a stale one at once while one background call refreshes
// it, and concurrent misses share one request, which draws from the same
// bucket as every other call of c. The User is the cache's own, shared by
// every caller until the entry changes: read it, never modify it; an
// unchanged entry gives the same pointer, so callers can tell "same data"
// without comparing fields.
//
// An id that fails ValidUserID is ErrNotFound without a call. Errors:
// ErrNotFound if Clerk has no such user (404, kept for NegativeTTL),
// ErrUnauthorized if Clerk refuses the secret key, ErrUnavailable (and
// ErrRateLimited) with a RetryAfter when no answer can be had and no entry
// younger than MaxStale is left.
func (c *Client) GetUser(ctx context.Context, id string) (*User, error) {
	return c.users.get(ctx, c, id)
}

// GetOrganization is GetUser for the organization id, through
// GET /v1/organizations/{id}, with a cache of its own.
func (c *Client) GetOrganization(ctx context.Context, id string) (*Organization, error) {
	return c.orgs.get(ctx, c, id)
}

// Invalidate drops the cached user or organization id (by its prefix), so
// that its next look-up asks Clerk; an answer being fetched meanwhile is
// still returned to those waiting for it, but is not kept. It is what a
// user.updated or organization.updated webhook calls for, and reports
// whether anything was dropped.
func (c *Client) Invalidate(id string) bool {
	switch {
	case ValidUserID(id):
		return c.users.cache.invalidate(callKey(c.users.endpoint, id))
	case ValidOrganizationID(id):
		return c.orgs.cache.invalidate(callKey(c.orgs.endpoint, id))
	}
	return false
}

// resource describes one enrichment endpoint; enricher caches its answers.
type resource[T any] struct {
	name     string // Resource*, for the Observer
	endpoint string // Endpoint*
	path     string // the id is appended
	prefix   string
	decode   func(id string, body []byte) (T, error)
}

type enricher[T any] struct {
	resource[T]
	flights flights[T]
	cache   *enrichCache[T]
	stats   enrichCounters
}

type enrichCounters struct {
	calls                          [resultCount]atomic.Int64
	hits, stale, misses, refreshes atomic.Int64
	limited, refused               atomic.Int64
}

func (r *enricher[T]) get(ctx context.Context, c *Client, id string) (T, error) {
	if !validResourceID(r.prefix, id) {
		c.stats.refused.Add(1)
		r.stats.refused.Add(1)
		var zero T
		return zero, &Error{Kind: ErrNotFound, Endpoint: r.endpoint, detail: "the id cannot be valid, so it was not sent"}
	}
	key := callKey(r.endpoint, id)
	switch val, err, l := r.cache.get(key, true); l {
	case lookupHit:
		r.lookedUp(c, LookupHit)
		return val, err
	case lookupRefresh:
		r.stats.refreshes.Add(1)
		go r.flights.do(context.Background(), key, nil, func(ctx context.Context) (T, error) {
			return r.fetch(ctx, c, key, id)
		})
		fallthrough
	case lookupStale:
		r.lookedUp(c, LookupStale)
		return val, err
	}
	val, err, hit := r.flights.do(ctx, key,
		func() (T, error, bool) {
			val, err, l := r.cache.get(key, false)
			return val, err, l == lookupHit
		},
		func(ctx context.Context) (T, error) { return r.fetch(ctx, c, key, id) })
	if hit {
		r.lookedUp(c, LookupHit)
	} else {
		r.lookedUp(c, LookupMiss)
	}
	return val, ownError(r.endpoint, err)
}

// fetch makes the one request of a flight for id and stores its answer.
func (r *enricher[T]) fetch(ctx context.Context, c *Client, key [sha256.Size]byte, id string) (T, error) {
	t := r.cache.begin(key)
	k := call{endpoint: r.endpoint, method: http.MethodGet, path: r.path + id, maxBody: MaxResourceBodyBytes}
	val, err := exchange(ctx, c, k, func(body []byte) (T, error) { return r.decode(id, body) })
	r.cache.finish(key, t, val, err)
	// Counted once stored, so that a count seen means a cache updated.
	if isKind(err, ErrRateLimited) {
		r.stats.limited.Add(1)
	} else {
		r.stats.calls[resultOf(err)].Add(1)
	}
	return val, err
}

func (r *enricher[T]) lookedUp(c *Client, result string) {
	switch result {
	case LookupHit:
		r.stats.hits.Add(1)
	case LookupStale:
		r.stats.stale.Add(1)
	default:
		r.stats.misses.Add(1)
	}
	c.observer.enrichLookup(r.name, result)
}

func newEnricher[T any](r resource[T], cfg EnrichCacheConfig, c *Client) *enricher[T] {
	return &enricher[T]{resource: r, cache: newEnrichCache[T](cfg, c.now)}
}

var userResource = resource[*User]{
	name:     ResourceUser,
	endpoint: EndpointGetUser,
	path:     "/v1/users/",
	prefix:   "user_",
	decode:   decodeUser,
}

var organizationResource = resource[*Organization]{
	name:     ResourceOrganization,
	endpoint: EndpointGetOrganization,
	path:     "/v1/organizations/",
	prefix:   "org_",
	decode:   decodeOrganization,
}

// userJSON is the part of Clerk's user object (snake_case, the SDK's
// User.fromJSON) that User exposes; everything else, private_metadata and
// unsafe_metadata included, is skipped by the decoder.
type userJSON struct {
	Object                string `json:"object"`
	ID                    string `json:"id"`
	PrimaryEmailAddressID string `json:"primary_email_address_id"`
	EmailAddresses        []struct {
		ID           string `json:"id"`
		EmailAddress string `json:"email_address"`
	} `json:"email_addresses"`
	FirstName      string          `json:"first_name"`
	LastName       string          `json:"last_name"`
	Username       string          `json:"username"`
	ImageURL       string          `json:"image_url"`
	PublicMetadata json.RawMessage `json:"public_metadata"`
}

// organizationJSON is the part of Clerk's organization object (the SDK's
// Organization.fromJSON) that Organization exposes.
type organizationJSON struct {
	Object         string          `json:"object"`
	ID             string          `json:"id"`
	Name           string          `json:"name"`
	Slug           string          `json:"slug"`
	ImageURL       string          `json:"image_url"`
	PublicMetadata json.RawMessage `json:"public_metadata"`
}

// header is what decodeResource checks of a decoded answer.
func (d *userJSON) header() (object, id string, meta json.RawMessage) {
	return d.Object, d.ID, d.PublicMetadata
}

func (d *organizationJSON) header() (object, id string, meta json.RawMessage) {
	return d.Object, d.ID, d.PublicMetadata
}

func decodeUser(id string, body []byte) (*User, error) {
	var doc userJSON
	meta, err := decodeResource(EndpointGetUser, body, &doc, ResourceUser, id)
	if err != nil {
		return nil, err
	}
	u := &User{
		ID:             doc.ID,
		FirstName:      doc.FirstName,
		LastName:       doc.LastName,
		Username:       doc.Username,
		ImageURL:       doc.ImageURL,
		PublicMetadata: meta,
	}
	if doc.PrimaryEmailAddressID != "" {
		for _, e := range doc.EmailAddresses {
			if e.ID == doc.PrimaryEmailAddressID {
				u.Email = e.EmailAddress
				break
			}
		}
	}
	return u, nil
}

func decodeOrganization(id string, body []byte) (*Organization, error) {
	var doc organizationJSON
	meta, err := decodeResource(EndpointGetOrganization, body, &doc, ResourceOrganization, id)
	if err != nil {
		return nil, err
	}
	return &Organization{ID: doc.ID, Name: doc.Name, Slug: doc.Slug, ImageURL: doc.ImageURL, PublicMetadata: meta}, nil
}

// decodeResource decodes a 2xx answer into doc and checks it is the object
// asked for, by its "object" (Clerk's ObjectType, which the Resource*
// names match) and its id, so that a misrouted answer is never cached
// under another id. It returns the public metadata, nil for none.
func decodeResource(endpoint string, body []byte, doc interface {
	header() (object, id string, meta json.RawMessage)
}, object, id string) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	err := dec.Decode(doc)
	gotObject, gotID, meta := doc.header()
	if err != nil || dec.More() || gotObject != object || gotID != id {
		return nil, &Error{Kind: ErrUnavailable, Endpoint: endpoint, Status: http.StatusOK,
			detail: "the answer is not the " + object + " object asked for"}
	}
	switch {
	case len(meta) == 0 || string(meta) == "null":
		return nil, nil
	case meta[0] != '{':
		return nil, &Error{Kind: ErrUnavailable, Endpoint: endpoint, Status: http.StatusOK,
			detail: "the answer's public_metadata is not a JSON object"}
	}
	return meta, nil
}
