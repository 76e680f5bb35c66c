package jwks

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// TestSetServesLastGoodKeysUpToMaxStale: through an outage where every
// refresh fails, in every way, the last good keys stay in service for
// MaxStale, then the set fails closed, then it recovers with the issuer.
func TestSetServesLastGoodKeysUpToMaxStale(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := newClockedSet(t, iss.JWKSURL(), nil, testOptions, clock)
	clock.WaitTimer(t)
	kid := iss.KID()
	mustKey(t, ks.Set, kid)
	counts := ks.fetches.snapshot()

	faults := []clerktest.Fault{
		{Status: http.StatusInternalServerError},
		{Body: []byte("<html>bad gateway</html>")},
		{Hang: true},
		{CloseConn: true},
		{Status: http.StatusTooManyRequests},
		{Oversize: true},
		{Body: []byte(`{"keys":[]}`)},
		{Status: http.StatusBadGateway},
	}
	// Each step fires the pending timer (the refresh, then each backoff)
	// exactly once, so every fault is met by one attempt, and the steps add
	// up to MaxStale.
	step := testOptions.MaxStale / time.Duration(len(faults))
	for i, f := range faults {
		iss.SetFault(f)
		clock.Advance(step)
		clock.WaitTimer(t)
		if _, _, err := ks.Key(context.Background(), kid); err != nil {
			t.Fatalf("after %v of outage (fault %d: %+v): %v", time.Duration(i+1)*step, i, f, err)
		}
		if _, _, err := ks.Key(context.Background(), "ins_unknown"); !errors.Is(err, ErrUnknownKID) {
			t.Fatalf("unknown kid during the outage: got %v, want ErrUnknownKID", err)
		}
	}
	if age := ks.Stats().Age(); age != testOptions.MaxStale {
		t.Fatalf("age = %v, want %v", age, testOptions.MaxStale)
	}

	clock.Advance(time.Nanosecond)
	for _, k := range []string{kid, "ins_unknown"} {
		if _, _, err := ks.Key(context.Background(), k); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Key(%q) past MaxStale: got %v, want ErrUnavailable", k, err)
		}
	}

	iss.ClearFault()
	clock.Advance(maxRetryBackoff)
	if d := clock.WaitTimer(t); d != testOptions.Refresh {
		t.Fatalf("after recovery the fetcher waits %v, want the refresh period", d)
	}
	mustKey(t, ks.Set, kid)
	if age := ks.Stats().Age(); age != 0 {
		t.Fatalf("age after recovery = %v, want 0", age)
	}
	// Each step also met one kid miss, which the fault failed too.
	wantFetchDelta(t, ks, counts, map[string]int{
		"error/refresh":     len(faults),
		"error/kid_miss":    len(faults),
		"unchanged/refresh": 1,
	})

	warns := ks.logs.Filter(func(e observer.LoggedEntry) bool {
		return e.Message == "fetching JWKS failed" && e.ContextMap()["trigger"] == TriggerRefresh
	}).All()
	if len(warns) != len(faults) {
		t.Fatalf("%d failure warnings, want %d", len(warns), len(faults))
	}
	for i, w := range warns {
		f := w.ContextMap()
		if w.Level != zapcore.WarnLevel || f["url"] != iss.JWKSURL() || f["attempt"] != int64(i+1) || f["trigger"] != TriggerRefresh {
			t.Errorf("warning %d: %v %v", i, w.Level, f)
		}
	}
	if f := warns[0].ContextMap(); f["status"] != int64(http.StatusInternalServerError) {
		t.Errorf("the 500 warning has status %v", f["status"])
	}
}

// TestSetIssuerDownAtStart: Caddy starts without keys; the first request
// waits for the first attempt only (bounded by the timeout), requests get
// ErrUnavailable while retries back off, and keys arrive with the first
// retry that succeeds.
func TestSetIssuerDownAtStart(t *testing.T) {
	iss := clerktest.Start(t)
	iss.SetFault(clerktest.Fault{Hang: true})
	clock := fakeclock.New(testNow)
	ks := newClockedSet(t, iss.JWKSURL(), nil, testOptions, clock)

	begin := time.Now()
	_, _, err := ks.Key(context.Background(), iss.KID())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if took := time.Since(begin); took > testOptions.Timeout+slack {
		t.Fatalf("the first request waited %v, want about the %v timeout", took, testOptions.Timeout)
	}

	if d := clock.WaitTimer(t); d < minRetryBackoff/2 || d > minRetryBackoff {
		t.Fatalf("first retry in %v, want %v jittered down to half", d, minRetryBackoff)
	}
	iss.SetFault(clerktest.Fault{Status: http.StatusServiceUnavailable})
	clock.Advance(time.Second)
	if d := clock.WaitTimer(t); d < minRetryBackoff || d > 2*minRetryBackoff {
		t.Fatalf("second retry in %v, want %v jittered down to half", d, 2*minRetryBackoff)
	}
	begin = time.Now()
	if _, _, err := ks.Key(context.Background(), iss.KID()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("while retrying: got %v, want ErrUnavailable", err)
	}
	if took := time.Since(begin); took >= testOptions.Timeout {
		t.Fatalf("a request while retries back off waited %v; only the first fetch is waited for", took)
	}

	iss.ClearFault()
	clock.Advance(time.Second)
	if d := clock.WaitTimer(t); d != testOptions.Refresh {
		t.Fatalf("after the first success the fetcher waits %v, want the refresh period", d)
	}
	mustKey(t, ks.Set, iss.KID())
	wantFetchDelta(t, ks, nil, map[string]int{"error/startup": 2, "ok/startup": 1})
}

// TestSetFirstRequestWaitsForFirstFetch: right after start-up, a request
// is not failed just because the keys are a moment away.
func TestSetFirstRequestWaitsForFirstFetch(t *testing.T) {
	iss := clerktest.Start(t)
	iss.SetFault(clerktest.Fault{Delay: 200 * time.Millisecond})
	opts := testOptions
	opts.Timeout = 5 * time.Second
	ks := newClockedSet(t, iss.JWKSURL(), nil, opts, fakeclock.New(testNow))
	mustKey(t, ks.Set, iss.KID())
}
