package clerkapi

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// TestConcurrentLookupsShareOneRequest holds the one request at a front
// server until all 1,000 callers have joined it, so the count does not
// depend on timing.
func TestConcurrentLookupsShareOneRequest(t *testing.T) {
	const callers = 1000
	for _, r := range enrichedResources {
		t.Run(r.name, func(t *testing.T) {
			iss := clerktest.Start(t)
			f := newFront(t, iss, true)
			c, _ := newClient(t, f.URL, iss.SecretKey())
			r.set(iss, r.id, "v1")

			callTogether(t, c, f.release, callers, func() error {
				v, err := r.get(c, r.id)
				if err == nil && v != "v1" {
					err = fmt.Errorf("got %q", v)
				}
				return err
			})
			if got := r.calls(iss); got != 1 {
				t.Errorf("%d Backend API calls for %d concurrent callers of one id, want 1", got, callers)
			}
			if v, err := r.get(c, r.id); err != nil || v != "v1" || r.calls(iss) != 1 {
				t.Errorf("a later caller: %q, %v, %d calls; want the cached answer", v, err, r.calls(iss))
			}
			want := EnrichStats{Calls: CallResults{Valid: 1}, CacheHits: 1, CacheMisses: callers, CacheEntries: 1}
			if s := r.stats(c); s != want {
				t.Errorf("stats %+v, want %+v", s, want)
			}
		})
	}
}

// waitFor yields until cond holds: for a background refresh, which a test
// can only observe through its effects.
func waitFor(cond func() bool) {
	for !cond() {
		runtime.Gosched()
	}
}

// TestStaleIsServedWhileOneRefreshRuns ages an entry past its TTL, holds
// the refresh at a front server while many look-ups read the stale entry,
// then lets it through: the next look-ups see what it brought.
func TestStaleIsServedWhileOneRefreshRuns(t *testing.T) {
	const lookups = 100
	tests := []struct {
		name    string
		change  func(iss *clerktest.Issuer, r enrichedResource)
		want    string
		wantErr error
	}{
		{"updated", func(iss *clerktest.Issuer, r enrichedResource) { r.set(iss, r.id, "v2") }, "v2", nil},
		{"deleted", func(iss *clerktest.Issuer, r enrichedResource) {
			iss.DeleteUser(r.id)
			iss.DeleteOrganization(r.id)
		}, "", ErrNotFound},
	}
	for _, r := range enrichedResources {
		for _, tc := range tests {
			t.Run(r.name+"/"+tc.name, func(t *testing.T) {
				iss := clerktest.Start(t)
				f := newFront(t, iss, false)
				obs := &observed{}
				c, clock := newClient(t, f.URL, iss.SecretKey(), func(cfg *Config) {
					cfg.Enrich = EnrichCacheConfig{TTL: time.Minute, MaxStale: 10 * time.Minute}
					cfg.Observer = obs.observer()
				})
				r.set(iss, r.id, "v1")
				if v, err := r.get(c, r.id); err != nil || v != "v1" {
					t.Fatalf("first look-up: %q, %v", v, err)
				}
				<-f.seen
				tc.change(iss, r)
				clock.Advance(2 * time.Minute)

				f.hold()
				var wg sync.WaitGroup
				for range lookups {
					wg.Go(func() {
						if v, err := r.get(c, r.id); err != nil || v != "v1" {
							t.Errorf("a look-up during the refresh got %q, %v; want the stale v1", v, err)
						}
					})
				}
				wg.Wait() // none waited on the held refresh
				<-f.seen
				if len(f.seen) != 0 || r.calls(iss) != 1 {
					t.Fatalf("%d more requests reached the front, %d Clerk; want only the held refresh", len(f.seen), r.calls(iss))
				}
				f.release()
				waitFor(func() bool { return r.stats(c).Calls != (CallResults{Valid: 1}) })

				v, err := r.get(c, r.id)
				if v != tc.want || !errorIs(err, tc.wantErr) {
					t.Errorf("after the refresh: %q, %v; want %q, %v", v, err, tc.want, tc.wantErr)
				}
				if got := r.calls(iss); got != 2 {
					t.Errorf("%d calls, want 2: the first and one refresh", got)
				}
				s := r.stats(c)
				if s.Refreshes != 1 || s.CacheStale != lookups || s.CacheHits != 1 || s.CacheMisses != 1 {
					t.Errorf("stats %+v, want 1 refresh, %d stale, 1 hit, 1 miss", s, lookups)
				}
				if got := obs.counts()["lookup "+r.name+" "+LookupStale]; got != lookups {
					t.Errorf("observer told %v, want %d stale look-ups", obs.counts(), lookups)
				}
			})
		}
	}
}

func errorIs(err, kind error) bool {
	if kind == nil {
		return err == nil
	}
	return isKind(err, kind)
}

// TestOutageServesStaleUntilMaxStale breaks the Backend API after an entry
// was cached: it is served, stale, until MaxStale, with one failed
// refresh per retry period, and then the look-up fails as unavailable.
func TestOutageServesStaleUntilMaxStale(t *testing.T) {
	const ttl, maxStale = time.Minute, 10 * time.Minute
	tests := []struct {
		name      string
		fault     clerktest.ResourceFault
		retry     time.Duration // how long a failed refresh waits
		wantRetry time.Duration // RetryAfter of the final error
	}{
		{"Clerk's 429", clerktest.ResourceFault{Fault: clerktest.Fault{Status: 429}, RetryAfter: "30"}, 30 * time.Second, 30 * time.Second},
		{"500", clerktest.ResourceFault{Fault: clerktest.Fault{Status: 503}}, minRefreshRetry, time.Second},
		{"down", clerktest.ResourceFault{Fault: clerktest.Fault{CloseConn: true}}, minRefreshRetry, time.Second},
	}
	for _, r := range enrichedResources {
		for _, tc := range tests {
			t.Run(r.name+"/"+tc.name, func(t *testing.T) {
				iss := clerktest.Start(t)
				c, clock := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) {
					cfg.Enrich = EnrichCacheConfig{TTL: ttl, MaxStale: maxStale}
				})
				r.set(iss, r.id, "v1")
				if _, err := r.get(c, r.id); err != nil {
					t.Fatal(err)
				}
				iss.SetResourceFault(tc.fault)
				clock.Advance(2 * ttl)

				failed := func() int64 { return r.stats(c).Calls.Unavailable }
				staleRead := func(when string) {
					t.Helper()
					if v, err := r.get(c, r.id); err != nil || v != "v1" {
						t.Fatalf("%s: %q, %v; want the stale v1", when, v, err)
					}
				}
				staleRead("at the outage")
				waitFor(func() bool { return failed() == 1 })
				staleRead("right after a failed refresh")
				clock.Advance(tc.retry - time.Second)
				staleRead("before the retry")
				if s := r.stats(c); s.Refreshes != 1 {
					t.Errorf("%d refreshes before the retry period ended, want 1", s.Refreshes)
				}
				clock.Advance(time.Second)
				staleRead("at the retry")
				waitFor(func() bool { return failed() == 2 })

				clock.Advance(maxStale - 2*ttl - tc.retry - time.Second)
				staleRead("just within MaxStale")
				waitFor(func() bool { return failed() == 3 })
				clock.Advance(time.Second)
				_, err := r.get(c, r.id)
				checkError(t, err, ErrUnavailable, tc.fault.Status, tc.wantRetry, nil)
				if s := r.stats(c); s.CacheEntries != 0 || s.Refreshes != 3 || s.Calls.Unavailable != 4 {
					t.Errorf("stats %+v, want no entry, 3 refreshes, 4 failed calls", s)
				}

				iss.ClearResourceFault()
				r.set(iss, r.id, "v2")
				if v, err := r.get(c, r.id); err != nil || v != "v2" {
					t.Errorf("after the outage: %q, %v; want v2", v, err)
				}
			})
		}
	}
}

// TestInvalidate drops a cached entry, then one being fetched: the caller
// waiting on that fetch still gets its answer, but it is not kept.
func TestInvalidate(t *testing.T) {
	for _, r := range enrichedResources {
		t.Run(r.name, func(t *testing.T) {
			iss := clerktest.Start(t)
			f := newFront(t, iss, false)
			c, _ := newClient(t, f.URL, iss.SecretKey())
			r.set(iss, r.id, "v1")
			if v, _ := r.get(c, r.id); v != "v1" {
				t.Fatalf("got %q", v)
			}
			r.set(iss, r.id, "v2")
			if !c.Invalidate(r.id) || c.Invalidate(r.id) {
				t.Error("Invalidate did not report the one entry it dropped")
			}
			if v, err := r.get(c, r.id); err != nil || v != "v2" || r.calls(iss) != 2 {
				t.Errorf("after Invalidate: %q, %v, %d calls; want v2 from a new call", v, err, r.calls(iss))
			}

			c.Invalidate(r.id)
			r.set(iss, r.id, "v3")
			f.hold()
			waiter := make(chan string, 1)
			go func() {
				v, _ := r.get(c, r.id)
				waiter <- v
			}()
			for len(f.seen) < 3 {
				runtime.Gosched()
			}
			if !c.Invalidate(r.id) {
				t.Error("Invalidate did not report the fetch in flight")
			}
			f.release()
			if v := <-waiter; v != "v3" {
				t.Errorf("the caller waiting on the invalidated fetch got %q, want v3", v)
			}
			if v, err := r.get(c, r.id); err != nil || v != "v3" || r.calls(iss) != 4 {
				t.Errorf("after the fetch: %q, %v, %d calls; want v3 from a new call", v, err, r.calls(iss))
			}
		})
	}
	c, _ := newClient(t, "http://127.0.0.1:1", "sk_test_x")
	if c.Invalidate("user_nobody") || c.Invalidate("org_nobody") {
		t.Error("Invalidate reported dropping what was never cached")
	}
}

func TestEnrichCacheNeverExceedsItsBound(t *testing.T) {
	const ids, entries = 50, 10
	for _, r := range enrichedResources {
		t.Run(r.name, func(t *testing.T) {
			iss := clerktest.Start(t)
			c, _ := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) {
				cfg.Burst = 2 * ids
				cfg.Enrich.Entries = entries
			})
			id := func(i int) string { return fmt.Sprintf("%s%d", r.id, i) }
			for i := range ids {
				r.set(iss, id(i), "v1")
				if _, err := r.get(c, id(i)); err != nil {
					t.Fatal(err)
				}
				if s := r.stats(c); s.CacheEntries > entries {
					t.Fatalf("%d entries, want at most %d", s.CacheEntries, entries)
				}
			}
			// The most recent are kept; the oldest went first.
			for _, i := range []int{ids - 1, ids - entries, 0} {
				if _, err := r.get(c, id(i)); err != nil {
					t.Fatal(err)
				}
			}
			if got, want := r.calls(iss), int64(ids+1); got != want {
				t.Errorf("%d calls, want %d: only the evicted id asked again", got, want)
			}
			if s := r.stats(c); s.CacheEntries != entries {
				t.Errorf("%d entries, want %d", s.CacheEntries, entries)
			}
		})
	}
}

// TestEnrichmentSharesTheMachineBudget spends one bucket with machine
// tokens and look-ups alike, with its clock frozen: whichever comes
// after the burst is refused, and a stale entry is still served when its
// refresh is.
func TestEnrichmentSharesTheMachineBudget(t *testing.T) {
	const burst = 4
	iss := clerktest.Start(t)
	obs := &observed{}
	c, clock := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) {
		cfg.Rate, cfg.Burst = 1.0/60, burst // a token a minute
		cfg.Enrich = EnrichCacheConfig{TTL: time.Minute}
		cfg.Observer = obs.observer()
	})
	user, org := enrichedResources[0], enrichedResources[1]
	user.set(iss, user.id, "v1")
	org.set(iss, org.id, "v1")
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"machine token", func() error { return verifyIssued(c, iss) }, nil},
		{"user", func() error { _, err := user.get(c, user.id); return err }, nil},
		{"organization", func() error { _, err := org.get(c, org.id); return err }, nil},
		{"machine token", func() error { return verifyIssued(c, iss) }, nil},
		{"another user", func() error { _, err := user.get(c, user.id+"2"); return err }, ErrRateLimited},
		{"another organization", func() error { _, err := org.get(c, org.id+"2"); return err }, ErrRateLimited},
		{"machine token", func() error { return verifyIssued(c, iss) }, ErrRateLimited},
		{"cached user", func() error { _, err := user.get(c, user.id); return err }, nil},
	}
	for i, s := range steps {
		if err := s.do(); !errorIs(err, s.want) {
			t.Fatalf("step %d (%s): %v, want %v", i, s.name, err, s.want)
		}
	}
	clock.Advance(2 * time.Minute) // refills two tokens; spend them
	for range 2 {
		if err := verifyIssued(c, iss); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := user.get(c, user.id); err != nil || v != "v1" {
		t.Errorf("a stale user whose refresh the bucket refuses: %q, %v; want v1", v, err)
	}
	waitFor(func() bool { return user.stats(c).Limited == 2 })
	want := map[string]int{
		"limited " + EndpointGetUser:         2,
		"limited " + EndpointGetOrganization: 1,
		"limited " + EndpointAPIKeyVerify:    1,
	}
	got := obs.counts()
	for event, n := range want {
		if got[event] != n {
			t.Errorf("observer told %q %d times, want %d (all: %v)", event, got[event], n, got)
		}
	}
	if calls := iss.ResourceStats().UserCalls + iss.ResourceStats().OrganizationCalls + iss.MachineStats().APIKeyCalls; calls != burst+2 {
		t.Errorf("%d calls reached Clerk, want the burst and the refill, %d", calls, burst+2)
	}
}

// verifyIssued verifies a new API key of iss.
func verifyIssued(c *Client, iss *clerktest.Issuer) error {
	_, err := c.VerifyMachineToken(context.Background(), APIKey, issueFor(iss, APIKey, time.Time{}), 0)
	return err
}

// TestCachedLookupDoesNotAllocate guards the path every enriched request
// takes, Observer included.
func TestCachedLookupDoesNotAllocate(t *testing.T) {
	for _, r := range enrichedResources {
		t.Run(r.name, func(t *testing.T) {
			iss := clerktest.Start(t)
			var hits int
			c, _ := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) {
				cfg.Observer = Observer{EnrichLookup: func(_, result string) {
					if result == LookupHit {
						hits++
					}
				}}
			})
			r.set(iss, r.id, "v1")
			if _, err := r.get(c, r.id); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := r.get(c, r.id); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 || hits == 0 {
				t.Errorf("%v allocations per cached look-up (%d hits told), want 0", allocs, hits)
			}
		})
	}
}

// TestCachedEntriesKeepTheirIdentity: an unchanged entry is handed out as
// one value, and a fetch again (here after Invalidate) as a new one with
// the new data, the old one left as it was. clerk_auth relies on it to
// reuse an identity assertion only for unchanged data.
func TestCachedEntriesKeepTheirIdentity(t *testing.T) {
	iss := clerktest.Start(t)
	c, _ := newClient(t, iss.APIURL(), iss.SecretKey())
	ctx := context.Background()
	iss.SetUser(clerktest.User{ID: "user_same", FirstName: "A"})
	first, err := c.GetUser(ctx, "user_same")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.GetUser(ctx, "user_same"); err != nil || again != first {
		t.Fatalf("an unchanged entry gave %p, %v; want %p", again, err, first)
	}
	iss.SetUser(clerktest.User{ID: "user_same", FirstName: "B"})
	c.Invalidate("user_same")
	next, err := c.GetUser(ctx, "user_same")
	if err != nil {
		t.Fatal(err)
	}
	if next == first || next.FirstName != "B" || first.FirstName != "A" {
		t.Errorf("fetched again: %p %q, before: %p %q; want a new value with B, the old one still A", next, next.FirstName, first, first.FirstName)
	}
}
