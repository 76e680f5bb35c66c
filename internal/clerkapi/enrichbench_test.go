package clerkapi

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// BenchmarkEnrichOneNewUser is a user's first requests arriving at once:
// each op creates a user and looks it up from 1,000 goroutines, without
// holding the request back, and exactly one call may reach Clerk.
func BenchmarkEnrichOneNewUser(b *testing.B) {
	const callers = 1000
	iss := clerktest.Start(b)
	c := unmeteredClient(b, iss)
	ctx := context.Background()
	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		id := fmt.Sprintf("user_bench%d", n)
		iss.SetUser(clerktest.User{ID: id, FirstName: "Bench"})
		before := iss.ResourceStats().UserCalls
		b.StartTimer()
		failed := fanOut(callers, func() bool {
			u, err := c.GetUser(ctx, id)
			return err == nil && u.FirstName == "Bench"
		})
		if calls := iss.ResourceStats().UserCalls - before; calls != 1 || failed != 0 {
			b.Fatalf("%d calls reached Clerk for %d concurrent look-ups of a new user, and %d failed; want 1 and 0",
				calls, callers, failed)
		}
	}
	b.ReportMetric(float64(iss.ResourceStats().UserCalls)/float64(b.N), "calls/op")
}

// BenchmarkEnrichCachedUser is the cost of a look-up the cache answers,
// fresh or stale: what every enriched request pays.
func BenchmarkEnrichCachedUser(b *testing.B) {
	for _, stale := range []bool{false, true} {
		name := "fresh"
		if stale {
			name = "stale"
		}
		b.Run(name, func(b *testing.B) {
			iss := clerktest.Start(b)
			iss.SetUser(clerktest.User{ID: "user_bench", FirstName: "Bench"})
			clock := fakeclock.New(time.Unix(1_700_000_000, 0))
			var told atomic.Int64
			c, err := New(Config{SecretKey: iss.SecretKey(), BaseURL: iss.APIURL(), Now: clock.Now,
				Enrich:   EnrichCacheConfig{TTL: time.Minute},
				Observer: Observer{EnrichLookup: func(string, string) { told.Add(1) }}})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := c.GetUser(ctx, "user_bench"); err != nil {
				b.Fatal(err)
			}
			if stale {
				// Clerk fails every refresh, so the entry stays stale and
				// each op after the first refresh is a plain stale read.
				iss.SetResourceFault(clerktest.ResourceFault{Fault: clerktest.Fault{Status: 503}})
				clock.Advance(2 * time.Minute)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.GetUser(ctx, "user_bench"); err != nil {
					b.Fatal(err)
				}
			}
			s := c.UserStats()
			if calls := s.Calls.Valid + s.Calls.Unavailable; calls > 2 || told.Load() != int64(b.N)+1 {
				b.Fatalf("%d calls and %d look-ups told for %d look-ups, want at most 2 and %d", calls, told.Load(), b.N, b.N+1)
			}
		})
	}
}
