package clerkapi

// EnrichStats counts what GetUser or GetOrganization did, for metrics.
type EnrichStats struct {
	// Calls are the requests sent to Clerk, by result; Valid counts the
	// users or organizations found.
	Calls CallResults
	// CacheHits, CacheStale and CacheMisses count look-ups by how the cache
	// answered them (LookupHit, LookupStale, LookupMiss).
	CacheHits, CacheStale, CacheMisses int64
	// Refreshes counts the background refreshes that stale look-ups
	// started: one per stale entry at a time.
	Refreshes int64
	// CacheEntries is how many entries the cache holds now.
	CacheEntries int
	// Limited counts calls the bucket refused (ErrRateLimited).
	Limited int64
	// Refused counts ids that could not be valid, never sent.
	Refused int64
}

// UserStats returns GetUser's counters so far.
func (c *Client) UserStats() EnrichStats { return c.users.snapshot() }

// OrganizationStats returns GetOrganization's counters so far.
func (c *Client) OrganizationStats() EnrichStats { return c.orgs.snapshot() }

func (r *enricher[T]) snapshot() EnrichStats {
	s := &r.stats
	return EnrichStats{
		Calls: CallResults{
			Valid:        s.calls[resultOK].Load(),
			Invalid:      s.calls[resultInvalid].Load(),
			Unauthorized: s.calls[resultUnauthorized].Load(),
			Unavailable:  s.calls[resultUnavailable].Load(),
		},
		CacheHits:    s.hits.Load(),
		CacheStale:   s.stale.Load(),
		CacheMisses:  s.misses.Load(),
		Refreshes:    s.refreshes.Load(),
		CacheEntries: r.cache.len(),
		Limited:      s.limited.Load(),
		Refused:      s.refused.Load(),
	}
}
