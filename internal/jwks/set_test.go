package jwks

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// testNow is where the tests' fake clocks start.
var testNow = time.Unix(1_800_000_000, 0)

// slack is how much later than the fetch timeout a bounded wait may end on a
// loaded machine running -race; an unbounded one would not end at all.
const slack = 10 * time.Second

// testOptions are the defaults with a shorter fetch timeout, so that a
// hanging issuer costs a test two seconds. Much shorter, and a loaded
// machine running -race times out attempts that should succeed.
var testOptions = Options{Timeout: 2 * time.Second}.withDefaults()

// fetchLog is a Set's OnFetch in tests: it counts the fetches the Set
// reported, as "result/trigger" → count.
type fetchLog struct {
	mu     sync.Mutex
	counts map[string]int
}

func (l *fetchLog) record(result, trigger string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[result+"/"+trigger]++
}

func (l *fetchLog) snapshot() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.counts)
}

// testSet is a started Set with what it logged and the fetches it reported.
type testSet struct {
	*Set
	logs    *observer.ObservedLogs
	fetches *fetchLog
}

// newClockedSet starts a Set on url whose clock and timers are clock's, and
// whose logs and fetches are recorded.
func newClockedSet(t *testing.T, url string, header http.Header, opts Options, clock *fakeclock.Clock) *testSet {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	fetches := &fetchLog{counts: map[string]int{}}
	opts.Clock, opts.OnFetch = clock, fetches.record
	ks := &testSet{Set: New(url, header, opts, zap.New(core)), logs: logs, fetches: fetches}
	ks.Start()
	t.Cleanup(func() { _ = ks.Destruct() })
	return ks
}

// startClockedSet starts a Set on url with testOptions and waits until its
// first fetch has ended.
func startClockedSet(t *testing.T, url string, clock *fakeclock.Clock) *testSet {
	t.Helper()
	ks := newClockedSet(t, url, nil, testOptions, clock)
	clock.WaitTimer(t)
	return ks
}

// wantFetchDelta checks that the fetches ks reported moved by exactly want
// since before.
func wantFetchDelta(t *testing.T, ks *testSet, before, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for k, v := range ks.fetches.snapshot() {
		if d := v - before[k]; d != 0 {
			got[k] = d
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("fetches moved by %v, want %v", got, want)
	}
}

func mustKey(t *testing.T, ks *Set, kid string) *rsa.PublicKey {
	t.Helper()
	pub, _, err := ks.Key(context.Background(), kid)
	if err != nil {
		t.Fatalf("Key(%q): %v", kid, err)
	}
	return pub
}

func TestOptionsDefaults(t *testing.T) {
	want := Options{Refresh: 15 * time.Minute, MinInterval: 30 * time.Second, Timeout: 5 * time.Second, MaxStale: 24 * time.Hour}
	if !reflect.DeepEqual(DefaultOptions, want) {
		t.Fatalf("DefaultOptions = %+v, want %+v", DefaultOptions, want)
	}
	if got := (Options{}).withDefaults(); !reflect.DeepEqual(got, want) {
		t.Fatalf("zero options resolve to %+v, want the defaults", got)
	}
	set := Options{Refresh: time.Minute, MinInterval: time.Second, Timeout: 2 * time.Second, MaxStale: time.Hour}
	if got := set.withDefaults(); !reflect.DeepEqual(got, set) {
		t.Fatalf("set options resolve to %+v, want them unchanged", got)
	}
}

func TestSetUnknownKIDRefetchIsThrottledAndShared(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedSet(t, iss.JWKSURL(), clock)
	if n := iss.Fetches(); n != 1 {
		t.Fatalf("start-up made %d fetches, want 1", n)
	}

	flood := func(n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, _, err := ks.Key(context.Background(), fmt.Sprintf("ins_unknown_%d", i))
				if !errors.Is(err, ErrUnknownKID) {
					t.Errorf("unknown kid: got %v, want ErrUnknownKID", err)
				}
			})
		}
		wg.Wait()
	}
	flood(200)
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("200 concurrent unknown kids made %d extra fetches, want 1", n-1)
	}
	clock.Advance(DefaultOptions.MinInterval - time.Second)
	flood(200)
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("unknown kids inside the interval fetched again (%d fetches)", n)
	}

	// Clerk rotates; once the interval has passed, the new kid is fetched.
	newKID := iss.Rotate()
	clock.Advance(time.Second)
	mustKey(t, ks.Set, newKID)
	if n := iss.Fetches(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
}

// TestSetConcurrentTriggersShareOneFetch: after a rotation, every
// request for the new kid that arrives while its fetch runs waits for that
// fetch and gets the key, and a signature refetch joins it too.
func TestSetConcurrentTriggersShareOneFetch(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedSet(t, iss.JWKSURL(), clock)
	oldKID := iss.KID()
	newKID := iss.AddKey()
	iss.SetFault(clerktest.Fault{Delay: 500 * time.Millisecond}) // the fetch is slow: all 100 arrive during it
	fetches := iss.Fetches()

	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			var err error
			if i%10 == 0 {
				_, _, err = ks.Refetch(context.Background(), oldKID)
			} else {
				_, _, err = ks.Key(context.Background(), newKID)
			}
			if err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of 100 concurrent triggers failed: they did not wait for the shared fetch", n)
	}
	if n := iss.Fetches() - fetches; n != 1 {
		t.Fatalf("100 concurrent triggers made %d fetches, want 1", n)
	}
}

// TestSetUnknownKIDFlood: 10,000 tokens with random kids, from 100
// goroutines at once, make exactly one fetch per MinInterval.
func TestSetUnknownKIDFlood(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedSet(t, iss.JWKSURL(), clock)
	before := ks.fetches.snapshot()

	flood := func() {
		t.Helper()
		var wrong atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 100 {
			wg.Go(func() {
				for range 100 {
					if _, _, err := ks.Key(context.Background(), "ins_"+rand.Text()); !errors.Is(err, ErrUnknownKID) {
						wrong.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := wrong.Load(); n > 0 {
			t.Fatalf("%d of 10000 unknown kids did not get ErrUnknownKID", n)
		}
		t.Logf("10000 unknown kids answered in %v; issuer has seen %d fetches", time.Since(start), iss.Fetches())
	}

	flood()
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("the flood made %d fetches, want 1", n-1)
	}
	clock.Advance(DefaultOptions.MinInterval - time.Nanosecond)
	flood()
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("a flood inside MinInterval made %d more fetches, want 0", n-2)
	}
	clock.Advance(time.Nanosecond)
	flood()
	if n := iss.Fetches(); n != 3 {
		t.Fatalf("a flood after MinInterval made %d more fetches, want 1", n-2)
	}
	wantFetchDelta(t, ks, before, map[string]int{"unchanged/kid_miss": 2})
}

// TestSetRefetchAfterSameKIDRotation: Clerk replaces the key under the
// same kid. A signature failure refetches (throttled, and sharing the
// throttle with kid misses) and hands back the new key.
func TestSetRefetchAfterSameKIDRotation(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := newClockedSet(t, iss.JWKSURL(), nil, testOptions, clock)
	clock.WaitTimer(t)
	kid := iss.KID()
	old := mustKey(t, ks.Set, kid)
	counts := ks.fetches.snapshot()

	refetch := func() *rsa.PublicKey {
		t.Helper()
		pub, _, err := ks.Refetch(context.Background(), kid)
		if err != nil {
			t.Fatalf("Refetch(%q): %v", kid, err)
		}
		return pub
	}

	iss.RotateSameKID()
	if !mustKey(t, ks.Set, kid).Equal(old) {
		t.Fatal("Key refetched a known kid on its own")
	}
	first := refetch()
	if !first.Equal(&iss.PrivateKey().PublicKey) {
		t.Fatal("refetch did not return the rotated key")
	}
	if changes := ks.logs.FilterMessage("JWKS key set changed").All(); len(changes) != 2 ||
		fmt.Sprint(changes[1].ContextMap()["replaced"]) != fmt.Sprint([]any{kid}) {
		t.Fatalf("want the start-up and the rotation logged, with %q replaced; got %v", kid, changes)
	}

	// Inside MinInterval another rotation is not seen, and a kid miss does
	// not fetch either: one throttle for both triggers.
	iss.RotateSameKID()
	fetches := iss.Fetches()
	clock.Advance(testOptions.MinInterval - time.Second)
	if !refetch().Equal(first) {
		t.Fatal("a throttled refetch changed the key")
	}
	if _, _, err := ks.Key(context.Background(), "ins_unknown"); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("got %v, want ErrUnknownKID", err)
	}
	if n := iss.Fetches(); n != fetches {
		t.Fatalf("%d fetches inside MinInterval, want 0", n-fetches)
	}

	clock.Advance(time.Second)
	if !refetch().Equal(&iss.PrivateKey().PublicKey) {
		t.Fatal("refetch after MinInterval did not return the rotated key")
	}
	clock.Advance(testOptions.MinInterval)
	refetch()
	wantFetchDelta(t, ks, counts, map[string]int{"ok/signature": 2, "unchanged/signature": 1})
}

// TestSetConcurrentKeyDuringRefresh is for -race: readers, kid misses
// and refetches run while refreshes replace the key set.
func TestSetConcurrentKeyDuringRefresh(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedSet(t, iss.JWKSURL(), clock)
	base := iss.Keys()[0]
	extraKey, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	extra := clerktest.Key{KID: "ins_test_extra", Private: extraKey}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := ks.Key(context.Background(), base.KID); err != nil {
					t.Errorf("key: %v", err)
					return
				}
				if _, _, err := ks.Key(context.Background(), fmt.Sprintf("ins_unknown_%d", g)); !errors.Is(err, ErrUnknownKID) {
					t.Errorf("unknown kid: %v", err)
					return
				}
				if _, _, err := ks.Refetch(context.Background(), base.KID); err != nil {
					t.Errorf("refetch: %v", err)
					return
				}
			}
		})
	}
	for i := range 100 {
		if i%2 == 0 {
			iss.SetKeys(base, extra)
		} else {
			iss.SetKeys(base)
		}
		clock.Advance(testOptions.Refresh)
		clock.WaitTimer(t)
	}
	close(stop)
	wg.Wait()
	// A refresh may have joined a kid-miss fetch answered before the last
	// SetKeys; one more refresh, with nothing else running, settles it.
	clock.Advance(testOptions.Refresh)
	clock.WaitTimer(t)
	if _, _, err := ks.Key(context.Background(), extra.KID); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("the last refresh served only the base key, but key(extra) = %v", err)
	}
}

// Current is what a token cache asks on every hit: it must follow the keys
// in hand and their age, and never fetch.
func TestSetCurrent(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedSet(t, iss.JWKSURL(), clock)
	kid := iss.KID()
	pub := mustKey(t, ks.Set, kid)
	other := &rsa.PublicKey{N: new(big.Int).Add(pub.N, big.NewInt(2)), E: pub.E}
	fetches := iss.Fetches()
	for _, tc := range []struct {
		name string
		kid  string
		pub  *rsa.PublicKey
		want bool
	}{
		{"the key in hand", kid, pub, true},
		{"an equal copy of it, as a refetch installs", kid, &rsa.PublicKey{N: pub.N, E: pub.E}, true},
		{"another key under the kid", kid, other, false},
		{"a kid the set does not hold", "ins_gone", pub, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ks.Current(tc.kid, tc.pub); got != tc.want {
				t.Errorf("Current = %v, want %v", got, tc.want)
			}
		})
	}
	if got := iss.Fetches(); got != fetches {
		t.Errorf("Current fetched: %d fetches, want %d", got, fetches)
	}

	// The issuer goes down, so the background refreshes fail and the keys age.
	iss.SetFault(clerktest.Fault{Status: http.StatusInternalServerError})
	for _, tc := range []struct {
		name    string
		advance time.Duration
		want    bool
	}{
		{"at MaxStale", testOptions.MaxStale, true},
		{"past MaxStale", time.Nanosecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(tc.advance)
			if got := ks.Current(kid, pub); got != tc.want {
				t.Errorf("Current = %v, want %v", got, tc.want)
			}
		})
	}
}
