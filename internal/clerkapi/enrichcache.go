package clerkapi

import (
	"container/list"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Defaults of EnrichCacheConfig.
const (
	// DefaultEnrichTTL is how long a user or organization is served
	// without asking Clerk again: how long a renamed user keeps the old
	// name here, unless a webhook invalidates it sooner. Five minutes
	// turns a busy user's traffic into one call per five minutes.
	DefaultEnrichTTL = 5 * time.Minute
	// DefaultEnrichMaxStaleFactor makes MaxStale ten times the TTL: a
	// Backend API outage of up to 45 minutes (with the default TTL) leaves
	// every user seen before it enriched.
	DefaultEnrichMaxStaleFactor = 10
	// DefaultEnrichNegativeTTL is how long a 404 is reused: a user deleted
	// in Clerk whose session token still works (a minute at most) costs a
	// call or two, and an id created a moment after a failed look-up soon
	// resolves.
	DefaultEnrichNegativeTTL = 30 * time.Second
	// DefaultEnrichEntries bounds each cache (users, organizations). An
	// entry is a few hundred bytes plus the public metadata, which Clerk
	// caps at 8 KiB: typically a few MiB, 80 MiB at the very worst.
	DefaultEnrichEntries = 10_000
)

// minRefreshRetry is the least a failed background refresh waits before
// the next one, unless the TTL is shorter: stale entries are read on every
// request, and an outage must not turn each into a call.
const minRefreshRetry = 10 * time.Second

// EnrichCacheConfig sizes the caches of users and organizations. Zero
// fields take the defaults; negative ones are refused.
type EnrichCacheConfig struct {
	// TTL is how long an entry is fresh: served without a call.
	TTL time.Duration
	// MaxStale is the age past which an entry is no longer served at all.
	// Between TTL and MaxStale it is stale: still served, at once, while
	// one background call refreshes it. Zero means
	// DefaultEnrichMaxStaleFactor × TTL; it must not be below TTL (equal
	// to it turns stale serving off).
	MaxStale time.Duration
	// NegativeTTL is how long a "not found" answer is reused. Unavailable
	// answers and a refused secret key are never kept.
	NegativeTTL time.Duration
	// Entries bounds each of the two caches; the least recently used
	// entry goes first.
	Entries int
}

func (cfg EnrichCacheConfig) withDefaults() (EnrichCacheConfig, error) {
	if cfg.TTL < 0 || cfg.MaxStale < 0 || cfg.NegativeTTL < 0 || cfg.Entries < 0 {
		return cfg, errors.New("clerkapi: the enrichment cache's TTL, MaxStale, NegativeTTL and Entries must not be negative")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultEnrichTTL
	}
	if cfg.MaxStale == 0 {
		cfg.MaxStale = DefaultEnrichMaxStaleFactor * cfg.TTL
	}
	if cfg.MaxStale < cfg.TTL {
		return cfg, errors.New("clerkapi: the enrichment cache's MaxStale must not be below its TTL")
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = DefaultEnrichNegativeTTL
	}
	if cfg.Entries == 0 {
		cfg.Entries = DefaultEnrichEntries
	}
	return cfg, nil
}

// lookup is what a cache look-up found.
type lookup int

const (
	lookupMiss    lookup = iota // nothing servable: call Clerk
	lookupHit                   // a fresh answer, or a live "not found"
	lookupStale                 // a stale answer, already being refreshed or waiting to retry
	lookupRefresh               // a stale answer the caller must start refreshing
)

// enrichCache keeps the answers for one resource by the hash of endpoint
// and id, the flight key. It is an LRU list over a map: both O(1).
//
// Every fetch registers with begin and reports with finish, so that an
// Invalidate while it runs keeps its answer, read before the change the
// invalidation announces, out of the cache.
type enrichCache[T any] struct {
	cfg EnrichCacheConfig
	now func() time.Time

	mu       sync.Mutex
	entries  map[[sha256.Size]byte]*list.Element
	lru      list.List // of *enrichEntry[T], most recently used first
	fetching map[[sha256.Size]byte]*fetchTicket
}

type enrichEntry[T any] struct {
	key        [sha256.Size]byte
	val        T
	err        error     // nil or an ErrNotFound *Error
	fetched    time.Time // when the answer was stored
	refreshing bool      // a background refresh is running
	retryAt    time.Time // a failed refresh's next attempt, not before
}

// fetchTicket is one fetch in flight; dropped means its answer must not be
// stored.
type fetchTicket struct{ dropped bool }

func newEnrichCache[T any](cfg EnrichCacheConfig, now func() time.Time) *enrichCache[T] {
	return &enrichCache[T]{cfg: cfg, now: now, entries: make(map[[sha256.Size]byte]*list.Element)}
}

// get looks key up. A stale answer is only served if allowStale; the one
// caller told lookupRefresh must start the refresh, and the entry counts
// as refreshing until that refresh finishes.
func (c *enrichCache[T]) get(key [sha256.Size]byte, allowStale bool) (T, error, lookup) {
	var zero T
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return zero, nil, lookupMiss
	}
	e := el.Value.(*enrichEntry[T])
	age := now.Sub(e.fetched)
	fresh := c.cfg.TTL
	if e.err != nil {
		fresh = c.cfg.NegativeTTL
	}
	switch {
	case age < fresh:
		c.lru.MoveToFront(el)
		return e.val, e.err, lookupHit
	case e.err != nil || age >= c.cfg.MaxStale:
		c.lru.Remove(el)
		delete(c.entries, key)
		return zero, nil, lookupMiss
	case !allowStale:
		return zero, nil, lookupMiss
	}
	c.lru.MoveToFront(el)
	if e.refreshing || now.Before(e.retryAt) {
		return e.val, nil, lookupStale
	}
	e.refreshing = true
	return e.val, nil, lookupRefresh
}

// begin registers a fetch of key. Flights run one fetch per key at a time.
func (c *enrichCache[T]) begin(key [sha256.Size]byte) *fetchTicket {
	t := &fetchTicket{}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fetching == nil {
		c.fetching = make(map[[sha256.Size]byte]*fetchTicket)
	}
	c.fetching[key] = t
	return t
}

// finish stores the answer of fetch t unless it was dropped: a value or a
// "not found" replaces the entry; any other failure keeps a stale entry
// and makes the next refresh wait for the error's Retry-After, and at
// least minRefreshRetry (or the TTL if shorter).
func (c *enrichCache[T]) finish(key [sha256.Size]byte, t *fetchTicket, val T, err error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fetching[key] == t {
		delete(c.fetching, key)
	}
	el, exists := c.entries[key]
	if t.dropped || (err != nil && !isKind(err, ErrNotFound)) {
		if exists {
			e := el.Value.(*enrichEntry[T])
			e.refreshing = false
			if !t.dropped {
				wait := min(minRefreshRetry, c.cfg.TTL)
				var ae *Error
				if errors.As(err, &ae) {
					wait = max(wait, ae.RetryAfter)
				}
				e.retryAt = now.Add(wait)
			}
		}
		return
	}
	e := &enrichEntry[T]{key: key, val: val, err: err, fetched: now}
	if exists {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.cfg.Entries {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*enrichEntry[T]).key)
	}
}

// invalidate drops key's entry, and the answer of a fetch of key in
// flight, and reports whether there was either.
func (c *enrichCache[T]) invalidate(key [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if ok {
		c.lru.Remove(el)
		delete(c.entries, key)
	}
	if t := c.fetching[key]; t != nil {
		t.dropped = true
		ok = true
	}
	return ok
}

func (c *enrichCache[T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
