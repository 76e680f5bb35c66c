package clerkapi

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// The benchmarks below run against a real fake Backend API on 127.0.0.1
// and check what reached it, so they also hold with -benchtime=1x.

// BenchmarkMachineTokenOneNewToken is a token's first use by many requests
// at once: each op issues a new token and verifies it from 1,000
// goroutines, without holding the request back, and exactly one call may
// reach Clerk.
func BenchmarkMachineTokenOneNewToken(b *testing.B) {
	const callers = 1000
	iss := clerktest.Start(b)
	c := unmeteredClient(b, iss)
	ctx := context.Background()
	for b.Loop() {
		token := issueFor(iss, APIKey, time.Time{})
		before := iss.MachineStats().APIKeyCalls
		failed := fanOut(callers, func() bool {
			m, err := c.VerifyMachineToken(ctx, APIKey, token, 0)
			return err == nil && m.Subject == "user_alice"
		})
		if calls := iss.MachineStats().APIKeyCalls - before; calls != 1 || failed != 0 {
			b.Fatalf("%d calls reached Clerk for %d concurrent verifications of a new token, and %d failed; want 1 and 0",
				calls, callers, failed)
		}
	}
	b.ReportMetric(float64(iss.MachineStats().APIKeyCalls)/float64(b.N), "calls/op")
}

// fanOut runs ok from n goroutines at once and returns how many said no.
func fanOut(n int, ok func() bool) int64 {
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if !ok() {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	return failed.Load()
}

// tokenAlphabet is what ValidMachineToken admits before the padding.
const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"

// madeUpAPIKey is a random API key nobody issued that passes
// ValidMachineToken: MinMachineTokenBody to 64 characters of its
// alphabet, then up to two "=".
func madeUpAPIKey(rng *rand.Rand) string {
	n := MinMachineTokenBody + rng.IntN(64-MinMachineTokenBody+1)
	b := make([]byte, 0, 3+n+2)
	b = append(b, "ak_"...)
	for range n {
		b = append(b, tokenAlphabet[rng.IntN(len(tokenAlphabet))])
	}
	for range rng.IntN(3) {
		b = append(b, '=')
	}
	return string(b)
}

// malformedAPIKey is an "ak_" string that cannot be a token: too short,
// or with a character outside the alphabet.
func malformedAPIKey(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		return madeUpAPIKey(rng)[:3+rng.IntN(MinMachineTokenBody)]
	}
	b := []byte(madeUpAPIKey(rng))
	b[3+rng.IntN(len(b)-3)] = " %\"\\é\n"[rng.IntN(6)]
	return string(b)
}

// BenchmarkMachineTokenMadeUpKeys floods a Client with the default budget
// and cache with distinct API keys nobody issued, as a scanner or a
// misconfigured client would. Each op is a flood of 10,000 keys from 100
// concurrent requests, with the injected clock frozen during it and
// advanced 1 s after it. It checks that the calls reaching Clerk stay
// within the bucket's budget over the injected time, burst + rate×elapsed,
// that the cache stays within its bound, and that the heap the Client
// keeps grows by less than maxRetained whatever the number of ops; keys
// that cannot be valid never reach Clerk.
func BenchmarkMachineTokenMadeUpKeys(b *testing.B) {
	const (
		flood   = 10_000
		workers = 100
		// maxRetained bounds the heap kept after any number of floods: a
		// cache full of DefaultMachineCacheEntries refusals (about 530
		// bytes each, 5.3 MB in all, measured with Go 1.26 on amd64) and
		// room to spare. The default budget fills it only after some 500
		// floods; a default run keeps a few hundred entries.
		maxRetained = 8 << 20
	)
	tests := []struct {
		name  string
		token func(*rand.Rand) string
		// budget reports whether the flood may spend the budget; if not,
		// no call may reach Clerk at all.
		budget bool
	}{
		{"well-formed", madeUpAPIKey, true},
		{"cannot be valid", malformedAPIKey, false},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			iss := clerktest.Start(b)
			clock := fakeclock.New(time.Unix(1_700_000_000, 0))
			c, err := New(Config{SecretKey: iss.SecretKey(), BaseURL: iss.APIURL(), Now: clock.Now})
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			ctx := context.Background()
			var unexpected atomic.Pointer[error]
			verify := func(tokens []string) {
				var next atomic.Int64
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for i := next.Add(1) - 1; i < int64(len(tokens)); i = next.Add(1) - 1 {
							_, err := c.VerifyMachineToken(ctx, APIKey, tokens[i], 0)
							if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrRateLimited) {
								unexpected.Store(&err)
							}
						}
					})
				}
				wg.Wait()
			}

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			elapsed := time.Duration(0)
			tokens := make([]string, flood)
			for b.Loop() {
				b.StopTimer()
				for i := range tokens {
					tokens[i] = tc.token(rng)
				}
				b.StartTimer()
				verify(tokens)
				clock.Advance(time.Second)
				elapsed += time.Second
			}
			clear(tokens)
			runtime.GC()
			runtime.ReadMemStats(&after)
			retained := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			runtime.KeepAlive(c)

			if errp := unexpected.Load(); errp != nil {
				b.Fatalf("a made-up key got %v, want not found or rate limited", *errp)
			}
			calls := iss.MachineStats().APIKeyCalls
			s := c.MachineStats()
			budget := int64(DefaultBurst + DefaultRate*elapsed.Seconds())
			if !tc.budget {
				budget = 0
			}
			if calls > budget || s.Limited+s.Refused+calls != int64(flood*b.N) {
				b.Fatalf("%d calls reached Clerk, %d limited, %d refused for %d floods over %s; want at most %d calls",
					calls, s.Limited, s.Refused, b.N, elapsed, budget)
			}
			if s.CacheEntries > DefaultMachineCacheEntries || s.CacheEntries != int(min(calls, DefaultMachineCacheEntries)) {
				b.Fatalf("%d cache entries after %d refusals, want at most %d", s.CacheEntries, calls, DefaultMachineCacheEntries)
			}
			if retained > maxRetained {
				b.Fatalf("the heap grew by %d bytes over %d floods, want at most %d", retained, b.N, maxRetained)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
			b.ReportMetric(float64(retained)/float64(b.N), "retained-B/op")
			b.ReportMetric(float64(s.CacheEntries), "entries")
		})
	}
}

// BenchmarkMachineTokenCachedHit is the cost of a verification the cache
// answers: what every request with a known opaque token pays.
func BenchmarkMachineTokenCachedHit(b *testing.B) {
	iss := clerktest.Start(b)
	var hits atomic.Int64
	c, err := New(Config{SecretKey: iss.SecretKey(), BaseURL: iss.APIURL(),
		Observer: Observer{MachineLookup: func(hit bool) {
			if hit {
				hits.Add(1)
			}
		}}})
	if err != nil {
		b.Fatal(err)
	}
	token := issueFor(iss, APIKey, time.Time{})
	ctx := context.Background()
	if _, err := c.VerifyMachineToken(ctx, APIKey, token, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.VerifyMachineToken(ctx, APIKey, token, 0); err != nil {
			b.Fatal(err)
		}
	}
	if calls := iss.MachineStats().APIKeyCalls; calls != 1 || hits.Load() != int64(b.N) {
		b.Fatalf("%d calls and %d hits for %d verifications, want 1 and %d", calls, hits.Load(), b.N, b.N)
	}
}
