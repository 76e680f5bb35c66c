package clerkapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// TestConcurrentCallsForOneTokenShareOneRequest holds the one request at a
// front server until all 1,000 callers have joined it, so the count does
// not depend on timing.
func TestConcurrentCallsForOneTokenShareOneRequest(t *testing.T) {
	const callers = 1000
	iss := clerktest.Start(t)
	f := newFront(t, iss, true)
	c, _ := newClient(t, f.URL, iss.SecretKey())
	token := issueFor(iss, APIKey, time.Time{})

	callTogether(t, c, f.release, callers, func() error {
		m, err := c.VerifyMachineToken(context.Background(), APIKey, token, 0)
		if err == nil && m.Subject != "user_alice" {
			err = fmt.Errorf("subject %q", m.Subject)
		}
		return err
	})
	if got := iss.MachineStats().APIKeyCalls; got != 1 {
		t.Errorf("%d Backend API calls for %d concurrent callers of one token, want 1", got, callers)
	}
	if _, err := c.VerifyMachineToken(context.Background(), APIKey, token, 0); err != nil || iss.MachineStats().APIKeyCalls != 1 {
		t.Errorf("a later caller: %v, %d calls; want the cached answer", err, iss.MachineStats().APIKeyCalls)
	}
	s := c.MachineStats()
	if s.CacheHits != 1 || s.CacheMisses != callers || s.Calls[APIKey] != (CallResults{Valid: 1}) || s.CacheEntries != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestMadeUpTokensSpendAtMostTheBudget floods the client with distinct
// tokens: well-shaped ones nobody issued cost at most the bucket's burst
// while its clock stands still, malformed ones cost nothing, and the
// cache keeps at most its bound.
func TestMadeUpTokensSpendAtMostTheBudget(t *testing.T) {
	const flood, burst, entries = 10_000, 40, 16
	tests := []struct {
		name       string
		token      func(i int) string
		wantCalls  int64
		wantErr    func(error) bool
		wantLimits int64
	}{
		{"valid shape", func(i int) string { return fmt.Sprintf("ak_MADEUP%024d", i) }, burst, nil, flood - burst},
		{"too short", func(i int) string { return fmt.Sprintf("ak_%d", i%1000) }, 0, nil, 0},
		{"bad alphabet", func(i int) string { return fmt.Sprintf("ak_MADE UP%024d", i) }, 0, nil, 0},
		{"another prefix", func(i int) string { return fmt.Sprintf("sk_MADEUP%024d", i) }, 0, nil, 0},
		{"too long", func(i int) string { return fmt.Sprintf("ak_%0600d", i) }, 0, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := clerktest.Start(t)
			c, _ := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) {
				cfg.Rate, cfg.Burst = 20, burst
				cfg.Machine.Entries = entries
			})
			var wg sync.WaitGroup
			for i := range flood {
				wg.Go(func() {
					token := tc.token(i)
					_, err := c.VerifyMachineToken(context.Background(), APIKey, token, 0)
					if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrRateLimited) || leaks(err.Error(), token) {
						t.Errorf("%.20q: %v, want not found or rate limited, without the token", token, err)
					}
				})
			}
			wg.Wait()
			if got := iss.MachineStats().APIKeyCalls; got != tc.wantCalls {
				t.Errorf("%d Backend API calls for %d tokens, want %d", got, flood, tc.wantCalls)
			}
			s := c.MachineStats()
			if s.Limited != tc.wantLimits || s.CacheEntries > entries || s.CacheEntries != int(min(tc.wantCalls, entries)) {
				t.Errorf("stats %+v, want %d limited and at most %d entries", s, tc.wantLimits, entries)
			}
			if tc.wantCalls == 0 && s.Refused != flood {
				t.Errorf("%d refused, want %d", s.Refused, flood)
			}
		})
	}
}

func TestTheCacheNeverExceedsItsBound(t *testing.T) {
	const tokens, entries = 500, 100
	iss := clerktest.Start(t)
	c, _ := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) {
		cfg.Burst = tokens + 2
		cfg.Machine.Entries = entries
	})
	issued := make([]string, tokens)
	for i := range issued {
		issued[i] = issueFor(iss, M2MToken, time.Time{})
	}
	for i, token := range issued {
		if _, err := c.VerifyMachineToken(context.Background(), M2MToken, token, 0); err != nil {
			t.Fatal(err)
		}
		if n := c.MachineStats().CacheEntries; n != min(i+1, entries) {
			t.Fatalf("after %d tokens the cache holds %d, want %d", i+1, n, min(i+1, entries))
		}
	}
	// The most recent stay; the oldest were evicted and cost a call again.
	before := iss.MachineStats().M2MTokenCalls
	c.VerifyMachineToken(context.Background(), M2MToken, issued[tokens-1], 0)
	c.VerifyMachineToken(context.Background(), M2MToken, issued[0], 0)
	if got := iss.MachineStats().M2MTokenCalls - before; got != 1 {
		t.Errorf("%d calls for the newest and the oldest token, want 1", got)
	}
}

// TestCacheLifetimes walks the injected clock through a token's life:
// revocation takes effect after at most the TTL, a refusal is reused for
// the negative TTL, and a valid answer never outlives the token.
func TestCacheLifetimes(t *testing.T) {
	const ttl, negative = 30 * time.Second, 10 * time.Second
	iss := clerktest.Start(t)
	c, clock := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) {
		cfg.Machine.TTL, cfg.Machine.NegativeTTL = ttl, negative
	})
	iss.SetNow(clock.Now)
	token := issueFor(iss, APIKey, time.Time{})
	// The steps before it take 40 s.
	shortLived := issueFor(iss, OAuthToken, clock.Now().Add(45*time.Second))

	steps := []struct {
		name      string
		advance   time.Duration
		revoke    bool
		token     string
		kind      MachineKind
		wantErr   error
		wantCalls int64 // in total so far
	}{
		{"first use calls Clerk", 0, false, token, APIKey, nil, 1},
		{"then the cache answers", ttl - time.Second, false, token, APIKey, nil, 1},
		{"a revocation is not seen within the TTL", 0, true, token, APIKey, nil, 1},
		{"but is once the TTL has passed", time.Second, false, token, APIKey, ErrNotFound, 2},
		{"the refusal is reused", negative - time.Second, false, token, APIKey, ErrNotFound, 2},
		{"for the negative TTL only", time.Second, false, token, APIKey, ErrNotFound, 3},
		{"a token expiring in 5s", 0, false, shortLived, OAuthToken, nil, 4},
		{"is cached until then", 4 * time.Second, false, shortLived, OAuthToken, nil, 4},
		{"and not after", time.Second, false, shortLived, OAuthToken, ErrNotFound, 5},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if s.revoke {
			iss.Revoke(s.token)
		}
		_, err := c.VerifyMachineToken(context.Background(), s.kind, s.token, 0)
		calls := machineCalls(iss)
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) || calls != s.wantCalls {
			t.Fatalf("%s: %v after %d calls, want %v after %d", s.name, err, calls, s.wantErr, s.wantCalls)
		}
	}
}

// TestMaxAge walks the injected clock through callers sharing one cache
// with different maxAge: each reuses a valid answer only while it is
// younger than its own bound, the TTL caps every bound, and refusals keep
// the negative TTL whatever the bound.
func TestMaxAge(t *testing.T) {
	const ttl, negative = 30 * time.Second, 10 * time.Second
	iss := clerktest.Start(t)
	c, clock := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) {
		cfg.Machine.TTL, cfg.Machine.NegativeTTL = ttl, negative
	})
	iss.SetNow(clock.Now)
	token := issueFor(iss, APIKey, time.Time{})

	steps := []struct {
		name      string
		advance   time.Duration
		revoke    bool
		maxAge    time.Duration
		wantErr   error
		wantCalls int64 // in total so far
	}{
		{"first use calls Clerk", 0, false, 5 * time.Second, nil, 1},
		{"younger than maxAge: cached", 4 * time.Second, false, 5 * time.Second, nil, 1},
		{"as old as maxAge: called again", time.Second, false, 5 * time.Second, nil, 2},
		{"0 is the TTL", 0, false, 0, nil, 2},
		{"a longer maxAge reuses it", 15 * time.Second, false, 20 * time.Second, nil, 2},
		{"a shorter one does not", 0, false, 10 * time.Second, nil, 3},
		{"and its answer serves the others", 29 * time.Second, false, 0, nil, 3},
		{"above the TTL is capped at it", 0, false, time.Hour, nil, 3},
		{"the TTL ends every maxAge", time.Second, false, time.Hour, nil, 4},
		{"negative is the TTL", ttl - time.Second, false, -1, nil, 4},
		{"a revocation is seen once the answer is too old", time.Second, true, -1, ErrNotFound, 5},
		{"the refusal is reused whatever maxAge", negative - time.Second, false, time.Nanosecond, ErrNotFound, 5},
		{"for the negative TTL", time.Second, false, time.Hour, ErrNotFound, 6},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if s.revoke {
			iss.Revoke(token)
		}
		m, err := c.VerifyMachineToken(context.Background(), APIKey, token, s.maxAge)
		calls := iss.MachineStats().APIKeyCalls
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && (err != nil || m.Subject != "user_alice")) || calls != s.wantCalls {
			t.Fatalf("%s: %v after %d calls, want %v after %d", s.name, err, calls, s.wantErr, s.wantCalls)
		}
	}
	if n := c.MachineStats().CacheEntries; n != 1 {
		t.Errorf("%d cache entries for one token, want 1", n)
	}
}

func TestUnavailableAnswersAreNotCached(t *testing.T) {
	faults := []struct {
		name   string
		secret string
		fault  *clerktest.MachineFault
	}{
		{"429", "", &clerktest.MachineFault{Fault: clerktest.Fault{Status: 429}}},
		{"500", "", &clerktest.MachineFault{Fault: clerktest.Fault{Status: 500}}},
		{"a refused secret key", "sk_test_WRONG", nil},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			iss := clerktest.Start(t)
			secret := tc.secret
			if secret == "" {
				secret = iss.SecretKey()
			}
			c, _ := newClient(t, iss.APIURL(), secret)
			token := issueFor(iss, APIKey, time.Time{})
			for range 3 {
				if tc.fault != nil {
					iss.SetMachineFault(*tc.fault)
				}
				if _, err := c.VerifyMachineToken(context.Background(), APIKey, token, 0); err == nil {
					t.Fatal("no error")
				}
			}
			if got := iss.MachineStats().APIKeyCalls; got != 3 {
				t.Errorf("%d calls for 3 verifications, want 3: nothing cached", got)
			}
			if n := c.MachineStats().CacheEntries; n != 0 {
				t.Errorf("%d cache entries, want 0", n)
			}
		})
	}
}

func TestMachineCacheConfig(t *testing.T) {
	for _, cfg := range []MachineCacheConfig{{TTL: -1}, {NegativeTTL: -1}, {Entries: -1}} {
		if _, err := New(Config{SecretKey: "sk_test_SECRET", Machine: cfg}); err == nil {
			t.Errorf("New with %+v: no error", cfg)
		}
	}
	c, err := New(Config{SecretKey: "sk_test_SECRET"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.machines.cfg; got != (MachineCacheConfig{DefaultMachineCacheTTL, DefaultMachineNegativeTTL, DefaultMachineCacheEntries}) {
		t.Errorf("defaults %+v", got)
	}
}
