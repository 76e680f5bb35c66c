package clerkauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
	"github.com/caddyclerk/caddy-clerk-auth/internal/leakcheck"
)

// waitFor polls cond, for what only the network can tell (such as a request
// having reached the issuer); nothing here waits on a keySet's timers.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// runningFetchers counts the goroutines running the background loop of ks.
func runningFetchers(ks *keySet) int {
	frame := fmt.Sprintf("(*keySet).run(%p)", ks)
	n := 0
	for _, g := range leakcheck.Stacks() {
		if strings.Contains(g, frame) {
			n++
		}
	}
	return n
}

// blockedFor counts the goroutines of ks (its fetcher and request-triggered
// fetches: those with a frame of a method of ks) that are blocked. Once
// Destruct has returned there must be none: each has run its deferred
// wg.Done, after which it can only be runnable on its way out.
func blockedFor(ks *keySet) int {
	receiver := fmt.Sprintf("(%p", ks)
	n := 0
	for _, g := range leakcheck.Stacks() {
		state, _, _ := strings.Cut(g, "\n")
		if strings.Contains(state, "[runnable") || strings.Contains(state, "[running") {
			continue
		}
		if strings.Contains(g, "(*keySet).") && strings.Contains(g, receiver) {
			n++
		}
	}
	return n
}

func liveSetsFor(source string) int {
	liveKeySets.Lock()
	defer liveKeySets.Unlock()
	n := 0
	for ks := range liveKeySets.sets {
		if ks.source == source {
			n++
		}
	}
	return n
}

// hungTimeout is the fetch timeout of sets whose fetches only Destruct
// should end.
const hungTimeout = 2 * time.Minute

// destructQuickly destructs sets, checking that each Destruct returns only
// once the set's goroutines have ended, and without waiting for the
// timeouts of their fetches.
func destructQuickly(t *testing.T, sets ...*keySet) {
	t.Helper()
	begin := time.Now()
	for _, ks := range sets {
		if err := ks.Destruct(); err != nil {
			t.Fatal(err)
		}
		if n := blockedFor(ks); n > 0 {
			t.Fatalf("Destruct returned with %d of the set's goroutines still blocked", n)
		}
	}
	if took := time.Since(begin); took > hungTimeout/2 {
		t.Fatalf("Destruct took %v: it waited for fetches instead of cancelling them", took)
	}
}

func TestLeakKeySetsDestructed(t *testing.T) {
	leakcheck.Verify(t)
	iss := clerktest.Start(t)
	hung := testKeySetOptions
	hung.timeout = hungTimeout
	newSet := func(opts keySetOptions, clock *fakeclock.Clock) *keySet {
		ks := newKeySet(iss.JWKSURL(), nil, opts, zap.NewNop())
		if clock != nil {
			ks.now, ks.after = clock.Now, clock.After
		}
		ks.start()
		return ks
	}

	t.Run("used and destructed", func(t *testing.T) {
		leakcheck.Verify(t)
		for range 50 {
			ks := newSet(testKeySetOptions, nil)
			mustKey(t, ks, iss.KID())
			destructQuickly(t, ks)
		}
	})

	t.Run("while the first fetch hangs", func(t *testing.T) {
		leakcheck.Verify(t)
		iss.SetFault(clerktest.Fault{Hang: true})
		defer iss.ClearFault()
		from := iss.Fetches()
		var sets []*keySet
		for range 20 {
			sets = append(sets, newSet(hung, nil))
		}
		waitFor(t, "20 hanging fetches", func() bool { return iss.Fetches() >= from+20 })
		destructQuickly(t, sets...)
	})

	t.Run("while a kid-miss fetch hangs", func(t *testing.T) {
		leakcheck.Verify(t)
		clock := fakeclock.New(testNow)
		ks := newSet(hung, clock)
		clock.WaitTimer(t)
		iss.SetFault(clerktest.Fault{Hang: true})
		defer iss.ClearFault()
		from := iss.Fetches()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, _, err := ks.key(ctx, "ins_unknown"); !errors.Is(err, errUnknownKID) {
			t.Fatalf("got %v, want errUnknownKID", err)
		}
		waitFor(t, "the hanging fetch", func() bool { return iss.Fetches() > from })
		destructQuickly(t, ks)
	})

	t.Run("while retries back off", func(t *testing.T) {
		leakcheck.Verify(t)
		iss.SetFault(clerktest.Fault{Status: http.StatusInternalServerError})
		defer iss.ClearFault()
		for range 20 {
			clock := fakeclock.New(testNow)
			ks := newSet(testKeySetOptions, clock)
			if d := clock.WaitTimer(t); d > minRetryBackoff {
				t.Fatalf("pending wait %v is not a retry backoff", d)
			}
			destructQuickly(t, ks)
		}
	})
}

// TestLeakUsagePoolReloadsKeepOneFetcher plays config reloads the way Caddy
// runs them, through a UsagePool as module.go does: the new config's
// handlers are provisioned before the old ones are cleaned up. The key set
// survives every reload, with one fetcher and one fetch, and goes away with
// the last handler.
func TestLeakUsagePoolReloadsKeepOneFetcher(t *testing.T) {
	leakcheck.Verify(t)
	iss := clerktest.Start(t)
	url := iss.JWKSURL()
	pool := caddy.NewUsagePool()
	provision := func() *keySet {
		t.Helper()
		v, _, err := pool.LoadOrNew(url, func() (caddy.Destructor, error) {
			ks := newKeySet(url, nil, testKeySetOptions, zap.NewNop())
			ks.start()
			return ks, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return v.(*keySet)
	}
	cleanup := func(handlers int) (destructed bool) {
		t.Helper()
		for range handlers {
			deleted, err := pool.Delete(url)
			if err != nil {
				t.Fatal(err)
			}
			destructed = destructed || deleted
		}
		return destructed
	}

	cfg := []*keySet{provision(), provision()} // two sites, one key source
	first := cfg[0]
	mustKey(t, first, iss.KID())
	for reload := range 50 {
		next := []*keySet{provision(), provision()}
		if cleanup(len(cfg)) {
			t.Fatalf("reload %d destructed the shared key set", reload)
		}
		for _, ks := range next {
			if ks != first {
				t.Fatalf("reload %d made a new key set", reload)
			}
		}
		if n := runningFetchers(first); n != 1 {
			t.Fatalf("after reload %d: %d fetchers running, want 1", reload, n)
		}
		if n := liveSetsFor(first.source); n != 1 {
			t.Fatalf("after reload %d: %d live key sets for the source, want 1", reload, n)
		}
		cfg = next
	}
	if n := iss.Fetches(); n != 1 {
		t.Fatalf("50 reloads made %d fetches, want 1", n)
	}

	if !cleanup(len(cfg)) {
		t.Fatal("the last handler's cleanup did not destruct the key set")
	}
	if n := runningFetchers(first); n != 0 {
		t.Fatalf("%d fetchers still running after the last cleanup", n)
	}
	if n := liveSetsFor(first.source); n != 0 {
		t.Fatalf("%d key sets still reported after the last cleanup", n)
	}
}
