package clerkapi

import (
	"container/list"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Defaults of MachineCacheConfig.
const (
	// DefaultMachineCacheTTL bounds how long a valid answer is reused. It
	// is also how long a token revoked in Clerk keeps working here: Clerk
	// revokes opaque tokens at once, this cache only after at most this
	// long. 30 s turns a client's steady traffic into two calls a minute
	// per token, well inside Clerk's budget.
	DefaultMachineCacheTTL = 30 * time.Second
	// DefaultMachineNegativeTTL is how long an unknown, revoked or expired
	// answer is reused: long enough that a client retrying a bad key in a
	// loop costs one call per period, short enough that a key created a
	// moment after its first failed use soon works.
	DefaultMachineNegativeTTL = 10 * time.Second
	// DefaultMachineCacheEntries bounds the cache: an entry is a few hundred
	// bytes plus the token's claims, so 10,000 of them stay within a few MiB.
	DefaultMachineCacheEntries = 10_000
)

// MachineCacheConfig sizes the cache of machine-token answers. Zero fields
// take the defaults; negative ones are refused.
type MachineCacheConfig struct {
	// TTL bounds a valid answer's reuse, which never outlives the token's
	// own expiration either: the revocation delay. It is also the upper
	// bound of VerifyMachineToken's maxAge, so that callers with different
	// needs can share one cache: set it to the longest any of them asks.
	TTL time.Duration
	// NegativeTTL is how long an unknown, revoked or expired answer is
	// reused. Unavailable answers and a refused secret key are never kept.
	NegativeTTL time.Duration
	// Entries bounds the cache; the least recently used entry goes first.
	Entries int
}

func (cfg MachineCacheConfig) withDefaults() (MachineCacheConfig, error) {
	if cfg.TTL < 0 || cfg.NegativeTTL < 0 || cfg.Entries < 0 {
		return cfg, errors.New("clerkapi: the machine cache's TTL, NegativeTTL and Entries must not be negative")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultMachineCacheTTL
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = DefaultMachineNegativeTTL
	}
	if cfg.Entries == 0 {
		cfg.Entries = DefaultMachineCacheEntries
	}
	return cfg, nil
}

// machineCache keeps answers by a hash of endpoint and token, so that no
// token is kept in memory. It is an LRU list over a map: both O(1).
type machineCache struct {
	cfg MachineCacheConfig
	now func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*list.Element
	lru     list.List // of *machineEntry, most recently used first
}

type machineEntry struct {
	key     [sha256.Size]byte
	m       Machine
	err     error     // nil or an ErrNotFound *Error
	fetched time.Time // when the answer was stored
	until   time.Time // when it may no longer be reused by anyone
}

func newMachineCache(cfg MachineCacheConfig, now func() time.Time) *machineCache {
	return &machineCache{cfg: cfg, now: now, entries: make(map[[sha256.Size]byte]*list.Element)}
}

// get is the live answer for key, if any, and if it is a valid one, only
// while it is younger than maxAge. maxAge <= 0, or above the TTL, is the
// TTL: until already holds that bound.
func (c *machineCache) get(key [sha256.Size]byte, maxAge time.Duration) (Machine, error, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return Machine{}, nil, false
	}
	e := el.Value.(*machineEntry)
	if !now.Before(e.until) {
		c.lru.Remove(el)
		delete(c.entries, key)
		return Machine{}, nil, false
	}
	if e.err == nil && maxAge > 0 && !now.Before(e.fetched.Add(maxAge)) {
		// Too old for this caller only: one with a longer maxAge may still
		// use it, and the answer this caller fetches will replace it.
		return Machine{}, nil, false
	}
	c.lru.MoveToFront(el)
	return e.m, e.err, true
}

// put keeps an answer for as long as it may be reused; answers that a
// retry could change are not kept.
func (c *machineCache) put(key [sha256.Size]byte, m Machine, err error) {
	now := c.now()
	var until time.Time
	switch {
	case err == nil:
		until = now.Add(c.cfg.TTL)
		if !m.Expiration.IsZero() && m.Expiration.Before(until) {
			until = m.Expiration
		}
	case isKind(err, ErrNotFound):
		until = now.Add(c.cfg.NegativeTTL)
	default:
		return
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		el.Value = &machineEntry{key: key, m: m, err: err, fetched: now, until: until}
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(&machineEntry{key: key, m: m, err: err, fetched: now, until: until})
	for c.lru.Len() > c.cfg.Entries {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*machineEntry).key)
	}
}

func (c *machineCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// isKind reports whether err is an *Error of exactly kind; errors.Is would
// also take ErrRateLimited for ErrUnavailable.
func isKind(err error, kind error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}
