package clerkapi

import "sync/atomic"

type machineCounters struct {
	calls                          [len(machineEndpoints)][resultCount]atomic.Int64
	hits, misses, limited, refused atomic.Int64
}

// counted counts the outcome err of a call to machineEndpoints[endpoint]:
// a refusal of the bucket, or a request's result.
func (s *machineCounters) counted(endpoint int, err error) {
	if isKind(err, ErrRateLimited) {
		s.limited.Add(1)
		return
	}
	s.calls[endpoint][resultOf(err)].Add(1)
}

// CallResults counts the Backend API calls of one endpoint by outcome.
type CallResults struct {
	Valid        int64 // 2xx with a valid token, user or organization (ResultOK)
	Invalid      int64 // unknown, revoked or expired (404, 400, 422, or flags)
	Unauthorized int64 // 401: the secret key was refused
	Unavailable  int64 // 429, 5xx, timeouts, outages, unreadable answers
}

// MachineStats counts what VerifyMachineToken did, for metrics.
type MachineStats struct {
	// Calls are the requests sent to Clerk, by token kind (one endpoint
	// each) and result.
	Calls map[MachineKind]CallResults
	// CacheHits and CacheMisses count verifications answered by the cache
	// or not; a miss joins a call in flight or makes one.
	CacheHits, CacheMisses int64
	// CacheEntries is how many answers the cache holds now.
	CacheEntries int
	// Limited counts calls the bucket refused (ErrRateLimited): the
	// rate-limit drops.
	Limited int64
	// Refused counts tokens that could not be valid, never sent.
	Refused int64
}

// MachineStats returns the machine-token counters so far.
func (c *Client) MachineStats() MachineStats {
	s := MachineStats{
		Calls:        make(map[MachineKind]CallResults, len(machineEndpoints)),
		CacheHits:    c.machineStats.hits.Load(),
		CacheMisses:  c.machineStats.misses.Load(),
		CacheEntries: c.machines.len(),
		Limited:      c.machineStats.limited.Load(),
		Refused:      c.machineStats.refused.Load(),
	}
	for i, e := range machineEndpoints {
		r := &c.machineStats.calls[i]
		s.Calls[e.kind] = CallResults{
			Valid:        r[resultOK].Load(),
			Invalid:      r[resultInvalid].Load(),
			Unauthorized: r[resultUnauthorized].Load(),
			Unavailable:  r[resultUnavailable].Load(),
		}
	}
	return s
}
