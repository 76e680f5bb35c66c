package clerkauth

import (
	"crypto/rsa"
	"hash/maphash"
	"sync"
	"time"
)

const (
	defaultTokenCacheSize = 10000
	cacheShards           = 32
	// maxCachedTokenSize keeps the cache's memory bounded by entries ×
	// this, whatever tokens a flood brings. Clerk session tokens fit a
	// 4 KiB cookie; larger (template) tokens are simply verified each time.
	maxCachedTokenSize = 4096
)

// verifiedCache remembers tokens that verified, so the RSA check (about
// 30 µs) runs once per token instead of once per request: browsers reuse a
// Clerk token for its whole lifetime. It is keyed by the full token string,
// holds only successes, and belongs to one handler, so a hit can never
// accept a token that this handler's configuration would reject.
//
// It is sharded to keep lock contention low and bounded per shard; when a
// shard is full, expired entries go first, then arbitrary ones (Go's map
// iteration order), which under a flood of distinct tokens behaves like
// random eviction: good enough, and O(1).
type verifiedCache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[string]cacheEntry
}

// cacheEntry holds a verified identity, the window in which the token
// passes the time checks, [nbf - leeway, exp + leeway), and the key that
// verified it. A hit re-checks the window here and the key in verify, so a
// cached token is never accepted where verifyFresh would refuse it.
type cacheEntry struct {
	id        *Identity
	notBefore time.Time
	expires   time.Time
	kid       string
	key       *rsa.PublicKey
}

func newVerifiedCache(size int) *verifiedCache {
	c := &verifiedCache{seed: maphash.MakeSeed(), perShard: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]cacheEntry)
	}
	return c
}

func (c *verifiedCache) shard(token string) *cacheShard {
	return &c.shards[maphash.String(c.seed, token)%cacheShards]
}

// get returns the entry for token if it verified before and now is inside
// its validity window.
func (c *verifiedCache) get(token string, now time.Time) (cacheEntry, bool) {
	s := c.shard(token)
	s.mu.RLock()
	e, ok := s.entries[token]
	s.mu.RUnlock()
	if !ok || now.Before(e.notBefore) || !now.Before(e.expires) {
		return cacheEntry{}, false
	}
	return e, true
}

// put remembers a verified token for its validity window.
func (c *verifiedCache) put(token string, e cacheEntry, now time.Time) {
	if len(token) > maxCachedTokenSize || !now.Before(e.expires) {
		return
	}
	s := c.shard(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[token]; !ok && len(s.entries) >= c.perShard {
		s.evict(now)
	}
	s.entries[token] = e
}

// evictScan bounds the work of one eviction, keeping put O(1).
const evictScan = 8

// evict makes room for one entry: among a few arbitrary entries (Go's map
// iteration starts at a random place), the expired ones, else the first.
func (s *cacheShard) evict(now time.Time) {
	var first string
	removed, seen := false, 0
	for k, e := range s.entries {
		if seen == 0 {
			first = k
		}
		if !now.Before(e.expires) {
			delete(s.entries, k)
			removed = true
		}
		if seen++; seen == evictScan {
			break
		}
	}
	if !removed {
		delete(s.entries, first)
	}
}
