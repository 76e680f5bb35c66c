package jwks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
	"github.com/caddyclerk/caddy-clerk-auth/internal/leakcheck"
)

// TestMain fails the package if any test, or anything it started, leaves a
// goroutine behind: a Set must end all of its own once destructed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond, for what only the network can tell (such as a request
// having reached the issuer); nothing here waits on a Set's timers.
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

// blockedFor counts the goroutines of ks (its fetcher and request-triggered
// fetches: those with a frame of a method of ks) that are blocked. Once
// Destruct has returned there must be none: each has run its deferred
// wg.Done, after which it can only be runnable on its way out.
func blockedFor(ks *Set) int {
	receiver := fmt.Sprintf("(%p", ks)
	n := 0
	for _, g := range leakcheck.Stacks() {
		state, _, _ := strings.Cut(g, "\n")
		if strings.Contains(state, "[runnable") || strings.Contains(state, "[running") {
			continue
		}
		if strings.Contains(g, "jwks.(*Set).") && strings.Contains(g, receiver) {
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
func destructQuickly(t *testing.T, sets ...*Set) {
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

func TestLeakSetsDestructed(t *testing.T) {
	leakcheck.Verify(t)
	iss := clerktest.Start(t)
	hung := testOptions
	hung.Timeout = hungTimeout
	newSet := func(opts Options, clock *fakeclock.Clock) *Set {
		if clock != nil {
			opts.Clock = clock
		}
		ks := New(iss.JWKSURL(), nil, opts, zap.NewNop())
		ks.Start()
		return ks
	}

	t.Run("used and destructed", func(t *testing.T) {
		leakcheck.Verify(t)
		for range 50 {
			ks := newSet(testOptions, nil)
			mustKey(t, ks, iss.KID())
			destructQuickly(t, ks)
		}
	})

	t.Run("while the first fetch hangs", func(t *testing.T) {
		leakcheck.Verify(t)
		iss.SetFault(clerktest.Fault{Hang: true})
		defer iss.ClearFault()
		from := iss.Fetches()
		var sets []*Set
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
		if _, _, err := ks.Key(ctx, "ins_unknown"); !errors.Is(err, ErrUnknownKID) {
			t.Fatalf("got %v, want ErrUnknownKID", err)
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
			ks := newSet(testOptions, clock)
			if d := clock.WaitTimer(t); d > minRetryBackoff {
				t.Fatalf("pending wait %v is not a retry backoff", d)
			}
			destructQuickly(t, ks)
		}
	})
}
