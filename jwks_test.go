package clerkauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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

// slack is how much later than the fetch timeout a bounded wait may end on a
// loaded machine running -race; an unbounded one would not end at all.
const slack = 10 * time.Second

// testKeySetOptions are the defaults with a shorter fetch timeout, so that
// a hanging issuer costs a test two seconds. Much shorter, and a loaded
// machine running -race times out attempts that should succeed.
var testKeySetOptions = keySetOptions{timeout: 2 * time.Second}.withDefaults()

// newClockedKeySet starts a keySet on url whose clock and timers are clock's,
// whose logs are observed, and whose fetches are counted on their own: the
// package-level counter also counts what other tests' Caddy instances do.
func newClockedKeySet(t *testing.T, url string, header http.Header, opts keySetOptions, clock *fakeclock.Clock) (*keySet, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	ks := newKeySet(url, header, opts, zap.New(core))
	ks.now, ks.after = clock.Now, clock.After
	ks.fetches = newFetchCounter()
	ks.start()
	t.Cleanup(func() { _ = ks.Destruct() })
	return ks, logs
}

// startClockedKeySet starts a keySet on url with testKeySetOptions and waits
// until its first fetch has ended.
func startClockedKeySet(t *testing.T, url string, clock *fakeclock.Clock) *keySet {
	t.Helper()
	ks, _ := newClockedKeySet(t, url, nil, testKeySetOptions, clock)
	clock.WaitTimer(t)
	return ks
}

func mustKey(t *testing.T, ks *keySet, kid string) *rsa.PublicKey {
	t.Helper()
	pub, _, err := ks.key(context.Background(), kid)
	if err != nil {
		t.Fatalf("key(%q): %v", kid, err)
	}
	return pub
}

func TestKeySetOptionsDefaults(t *testing.T) {
	want := keySetOptions{refresh: 15 * time.Minute, minInterval: 30 * time.Second, timeout: 5 * time.Second, maxStale: 24 * time.Hour}
	if defaultKeySetOptions != want {
		t.Fatalf("defaultKeySetOptions = %+v, want %+v", defaultKeySetOptions, want)
	}
	if got := (keySetOptions{}).withDefaults(); got != want {
		t.Fatalf("zero options resolve to %+v, want the defaults", got)
	}
	set := keySetOptions{refresh: time.Minute, minInterval: time.Second, timeout: 2 * time.Second, maxStale: time.Hour}
	if got := set.withDefaults(); got != set {
		t.Fatalf("set options resolve to %+v, want them unchanged", got)
	}
}

func TestKeySetUnknownKIDRefetchIsThrottledAndShared(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), clock)
	if n := iss.Fetches(); n != 1 {
		t.Fatalf("start-up made %d fetches, want 1", n)
	}

	flood := func(n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, _, err := ks.key(context.Background(), fmt.Sprintf("ins_unknown_%d", i))
				if !errors.Is(err, errUnknownKID) {
					t.Errorf("unknown kid: got %v, want errUnknownKID", err)
				}
			})
		}
		wg.Wait()
	}
	flood(200)
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("200 concurrent unknown kids made %d extra fetches, want 1", n-1)
	}
	clock.Advance(defaultKeySetOptions.minInterval - time.Second)
	flood(200)
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("unknown kids inside the interval fetched again (%d fetches)", n)
	}

	// Clerk rotates; once the interval has passed, the new kid is fetched.
	newKID := iss.Rotate()
	clock.Advance(time.Second)
	mustKey(t, ks, newKID)
	if n := iss.Fetches(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
}

// TestKeySetConcurrentTriggersShareOneFetch: after a rotation, every
// request for the new kid that arrives while its fetch runs waits for that
// fetch and gets the key, and a signature refetch joins it too.
func TestKeySetConcurrentTriggersShareOneFetch(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), clock)
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
				_, _, err = ks.refetch(context.Background(), oldKID)
			} else {
				_, _, err = ks.key(context.Background(), newKID)
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

// TestKeySetUnknownKIDFlood: 10,000 tokens with random kids, from 100
// goroutines at once, make exactly one fetch per minInterval.
func TestKeySetUnknownKIDFlood(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), clock)
	before := fetchCounts(t, ks)

	flood := func() {
		t.Helper()
		var wrong atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 100 {
			wg.Go(func() {
				for range 100 {
					if _, _, err := ks.key(context.Background(), "ins_"+rand.Text()); !errors.Is(err, errUnknownKID) {
						wrong.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := wrong.Load(); n > 0 {
			t.Fatalf("%d of 10000 unknown kids did not get errUnknownKID", n)
		}
		t.Logf("10000 unknown kids answered in %v; issuer has seen %d fetches", time.Since(start), iss.Fetches())
	}

	flood()
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("the flood made %d fetches, want 1", n-1)
	}
	clock.Advance(defaultKeySetOptions.minInterval - time.Nanosecond)
	flood()
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("a flood inside minInterval made %d more fetches, want 0", n-2)
	}
	clock.Advance(time.Nanosecond)
	flood()
	if n := iss.Fetches(); n != 3 {
		t.Fatalf("a flood after minInterval made %d more fetches, want 1", n-2)
	}
	wantFetchDelta(t, ks, before, map[string]float64{"unchanged/kid_miss": 2})
}

func TestKeySetKeepsGoodKeysOnBadResponses(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), clock)
	kid := iss.KID()

	faults := map[string]clerktest.Fault{
		"500":                {Status: http.StatusInternalServerError},
		"503":                {Status: http.StatusServiceUnavailable},
		"404":                {Status: http.StatusNotFound},
		"401 invalid secret": {Status: http.StatusUnauthorized, Body: []byte(`{"errors":[{"code":"clerk_key_invalid"}]}`)},
		"garbage":            {Body: []byte("<html>oops</html>")},
		"empty object":       {Body: []byte("{}")},
		"no keys":            {Body: []byte(`{"keys":[]}`)},
		"EC key only": {Body: []byte(`{"keys":[{"kty":"EC","kid":"ec","crv":"P-256",` +
			`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)},
		"weak key only": {Body: func() []byte {
			k, err := clerktest.NewRSAKey(1024)
			if err != nil {
				t.Fatal(err)
			}
			return jwksOf(t, "weak", k.N.Bytes())
		}()},
		"oversized":       {Oversize: true},
		"hang":            {Hang: true},
		"connection drop": {CloseConn: true},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			iss.SetFault(f)
			clock.Advance(testKeySetOptions.minInterval)
			counts := fetchCounts(t, ks)
			_, _, err := ks.key(context.Background(), "ins_trigger_refetch")
			if !errors.Is(err, errUnknownKID) {
				t.Fatalf("got %v, want errUnknownKID with the old set still in place", err)
			}
			// One failed attempt. (The issuer may count two requests for
			// it: net/http retries a GET once when a reused connection
			// drops.)
			wantFetchDelta(t, ks, counts, map[string]float64{"error/kid_miss": 1})
			mustKey(t, ks, kid)
		})
	}
}

// TestKeySetSlowBodyTimesOut: the fetch timeout covers reading the body, not
// only getting the headers.
func TestKeySetSlowBodyTimesOut(t *testing.T) {
	iss := clerktest.Start(t)
	good := iss.JWKS()
	var slow atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slow.Load() {
			_, _ = w.Write(good)
			return
		}
		_, _ = w.Write(good[:len(good)/2])
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)

	clock := fakeclock.New(testNow)
	ks := startClockedKeySet(t, srv.URL, clock)
	slow.Store(true)
	clock.Advance(testKeySetOptions.minInterval)
	counts := fetchCounts(t, ks)
	begin := time.Now()
	if _, _, err := ks.key(context.Background(), "ins_trigger_refetch"); !errors.Is(err, errUnknownKID) {
		t.Fatalf("got %v, want errUnknownKID", err)
	}
	if took := time.Since(begin); took < testKeySetOptions.timeout || took > testKeySetOptions.timeout+slack {
		t.Fatalf("a body that never ends took %v to give up on, want about the %v timeout", took, testKeySetOptions.timeout)
	}
	wantFetchDelta(t, ks, counts, map[string]float64{"error/kid_miss": 1})
	mustKey(t, ks, iss.KID())
}

// TestKeySetServesLastGoodKeysUpToMaxStale: through an outage where every
// refresh fails, in every way, the last good keys stay in service for
// maxStale, then the set fails closed, then it recovers with the issuer.
func TestKeySetServesLastGoodKeysUpToMaxStale(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks, logs := newClockedKeySet(t, iss.JWKSURL(), nil, testKeySetOptions, clock)
	clock.WaitTimer(t)
	kid := iss.KID()
	mustKey(t, ks, kid)
	counts := fetchCounts(t, ks)

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
	// up to maxStale.
	step := testKeySetOptions.maxStale / time.Duration(len(faults))
	for i, f := range faults {
		iss.SetFault(f)
		clock.Advance(step)
		clock.WaitTimer(t)
		if _, _, err := ks.key(context.Background(), kid); err != nil {
			t.Fatalf("after %v of outage (fault %d: %+v): %v", time.Duration(i+1)*step, i, f, err)
		}
		if _, _, err := ks.key(context.Background(), "ins_unknown"); !errors.Is(err, errUnknownKID) {
			t.Fatalf("unknown kid during the outage: got %v, want errUnknownKID", err)
		}
	}
	if age := jwksGauge(t, "caddy_clerk_auth_jwks_age_seconds", ks.source); age != testKeySetOptions.maxStale.Seconds() {
		t.Fatalf("jwks_age_seconds = %v, want %v", age, testKeySetOptions.maxStale.Seconds())
	}

	clock.Advance(time.Nanosecond)
	for _, k := range []string{kid, "ins_unknown"} {
		if _, _, err := ks.key(context.Background(), k); !errors.Is(err, errKeysUnavailable) {
			t.Fatalf("key(%q) past maxStale: got %v, want errKeysUnavailable", k, err)
		}
	}

	iss.ClearFault()
	clock.Advance(maxRetryBackoff)
	if d := clock.WaitTimer(t); d != testKeySetOptions.refresh {
		t.Fatalf("after recovery the fetcher waits %v, want the refresh period", d)
	}
	mustKey(t, ks, kid)
	if age := jwksGauge(t, "caddy_clerk_auth_jwks_age_seconds", ks.source); age != 0 {
		t.Fatalf("jwks_age_seconds after recovery = %v, want 0", age)
	}
	// Each step also met one kid miss, which the fault failed too.
	wantFetchDelta(t, ks, counts, map[string]float64{
		"error/refresh":     float64(len(faults)),
		"error/kid_miss":    float64(len(faults)),
		"unchanged/refresh": 1,
	})

	warns := logs.Filter(func(e observer.LoggedEntry) bool {
		return e.Message == "fetching JWKS failed" && e.ContextMap()["trigger"] == triggerRefresh
	}).All()
	if len(warns) != len(faults) {
		t.Fatalf("%d failure warnings, want %d", len(warns), len(faults))
	}
	for i, w := range warns {
		f := w.ContextMap()
		if w.Level != zapcore.WarnLevel || f["url"] != iss.JWKSURL() || f["attempt"] != int64(i+1) || f["trigger"] != triggerRefresh {
			t.Errorf("warning %d: %v %v", i, w.Level, f)
		}
	}
	if f := warns[0].ContextMap(); f["status"] != int64(http.StatusInternalServerError) {
		t.Errorf("the 500 warning has status %v", f["status"])
	}
}

// TestKeySetIssuerDownAtStart: Caddy starts without keys; the first request
// waits for the first attempt only (bounded by the timeout), requests get
// errKeysUnavailable while retries back off, and keys arrive with the first
// retry that succeeds.
func TestKeySetIssuerDownAtStart(t *testing.T) {
	iss := clerktest.Start(t)
	iss.SetFault(clerktest.Fault{Hang: true})
	clock := fakeclock.New(testNow)
	ks, _ := newClockedKeySet(t, iss.JWKSURL(), nil, testKeySetOptions, clock)

	begin := time.Now()
	_, _, err := ks.key(context.Background(), iss.KID())
	if !errors.Is(err, errKeysUnavailable) {
		t.Fatalf("got %v, want errKeysUnavailable", err)
	}
	if took := time.Since(begin); took > testKeySetOptions.timeout+slack {
		t.Fatalf("the first request waited %v, want about the %v timeout", took, testKeySetOptions.timeout)
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
	if _, _, err := ks.key(context.Background(), iss.KID()); !errors.Is(err, errKeysUnavailable) {
		t.Fatalf("while retrying: got %v, want errKeysUnavailable", err)
	}
	if took := time.Since(begin); took >= testKeySetOptions.timeout {
		t.Fatalf("a request while retries back off waited %v; only the first fetch is waited for", took)
	}

	iss.ClearFault()
	clock.Advance(time.Second)
	if d := clock.WaitTimer(t); d != testKeySetOptions.refresh {
		t.Fatalf("after the first success the fetcher waits %v, want the refresh period", d)
	}
	mustKey(t, ks, iss.KID())
	wantFetchDelta(t, ks, nil, map[string]float64{"error/startup": 2, "ok/startup": 1})
}

// TestKeySetFirstRequestWaitsForFirstFetch: right after start-up, a request
// is not failed just because the keys are a moment away.
func TestKeySetFirstRequestWaitsForFirstFetch(t *testing.T) {
	iss := clerktest.Start(t)
	iss.SetFault(clerktest.Fault{Delay: 200 * time.Millisecond})
	opts := testKeySetOptions
	opts.timeout = 5 * time.Second
	ks, _ := newClockedKeySet(t, iss.JWKSURL(), nil, opts, fakeclock.New(testNow))
	mustKey(t, ks, iss.KID())
}

// TestKeySetInvalidSecretKey: Clerk's Backend API refuses the secret key.
// That is logged as an error, without the key, and retried at the slowest
// pace rather than fast.
func TestKeySetInvalidSecretKey(t *testing.T) {
	iss := clerktest.Start(t)
	url := iss.APIURL() + clerktest.APIJWKSPath
	wrong := "sk_test_" + rand.Text()
	clock := fakeclock.New(testNow)
	ks, logs := newClockedKeySet(t, url, http.Header{"Authorization": {"Bearer " + wrong}}, testKeySetOptions, clock)

	if d := clock.WaitTimer(t); d < maxRetryBackoff/2 || d > maxRetryBackoff {
		t.Fatalf("retry after an invalid secret key in %v, want %v jittered down to half", d, maxRetryBackoff)
	}
	if _, _, err := ks.key(context.Background(), iss.KID()); !errors.Is(err, errKeysUnavailable) {
		t.Fatalf("got %v, want errKeysUnavailable", err)
	}
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "secret key") || errs[0].ContextMap()["status"] != int64(http.StatusUnauthorized) {
		t.Fatalf("want one error log about the secret key with status 401, got %v", errs)
	}

	good, goodLogs := newClockedKeySet(t, url, http.Header{"Authorization": {"Bearer " + iss.SecretKey()}}, testKeySetOptions, fakeclock.New(testNow))
	<-good.settled
	mustKey(t, good, iss.KID())
	for _, l := range append(logs.All(), goodLogs.All()...) {
		if s := fmt.Sprint(l.Message, l.ContextMap()); strings.Contains(s, "sk_test_") {
			t.Fatalf("a log line holds a secret key: %s", s)
		}
	}
}

// TestKeySetRefetchAfterSameKIDRotation: Clerk replaces the key under the
// same kid. A signature failure refetches (throttled, and sharing the
// throttle with kid misses) and hands back the new key.
func TestKeySetRefetchAfterSameKIDRotation(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks, logs := newClockedKeySet(t, iss.JWKSURL(), nil, testKeySetOptions, clock)
	clock.WaitTimer(t)
	kid := iss.KID()
	old := mustKey(t, ks, kid)
	counts := fetchCounts(t, ks)

	refetch := func() *rsa.PublicKey {
		t.Helper()
		pub, _, err := ks.refetch(context.Background(), kid)
		if err != nil {
			t.Fatalf("refetch(%q): %v", kid, err)
		}
		return pub
	}

	iss.RotateSameKID()
	if !mustKey(t, ks, kid).Equal(old) {
		t.Fatal("key() refetched a known kid on its own")
	}
	first := refetch()
	if !first.Equal(&iss.PrivateKey().PublicKey) {
		t.Fatal("refetch did not return the rotated key")
	}
	if changes := logs.FilterMessage("JWKS key set changed").All(); len(changes) != 2 ||
		fmt.Sprint(changes[1].ContextMap()["replaced"]) != fmt.Sprint([]any{kid}) {
		t.Fatalf("want the start-up and the rotation logged, with %q replaced; got %v", kid, changes)
	}

	// Inside minInterval another rotation is not seen, and a kid miss does
	// not fetch either: one throttle for both triggers.
	iss.RotateSameKID()
	fetches := iss.Fetches()
	clock.Advance(testKeySetOptions.minInterval - time.Second)
	if !refetch().Equal(first) {
		t.Fatal("a throttled refetch changed the key")
	}
	if _, _, err := ks.key(context.Background(), "ins_unknown"); !errors.Is(err, errUnknownKID) {
		t.Fatalf("got %v, want errUnknownKID", err)
	}
	if n := iss.Fetches(); n != fetches {
		t.Fatalf("%d fetches inside minInterval, want 0", n-fetches)
	}

	clock.Advance(time.Second)
	if !refetch().Equal(&iss.PrivateKey().PublicKey) {
		t.Fatal("refetch after minInterval did not return the rotated key")
	}
	clock.Advance(testKeySetOptions.minInterval)
	refetch()
	wantFetchDelta(t, ks, counts, map[string]float64{"ok/signature": 2, "unchanged/signature": 1})
}

// TestKeySetConcurrentKeyDuringRefresh is for -race: readers, kid misses
// and refetches run while refreshes replace the key set.
func TestKeySetConcurrentKeyDuringRefresh(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), clock)
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
				if _, _, err := ks.key(context.Background(), base.KID); err != nil {
					t.Errorf("key: %v", err)
					return
				}
				if _, _, err := ks.key(context.Background(), fmt.Sprintf("ins_unknown_%d", g)); !errors.Is(err, errUnknownKID) {
					t.Errorf("unknown kid: %v", err)
					return
				}
				if _, _, err := ks.refetch(context.Background(), base.KID); err != nil {
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
		clock.Advance(testKeySetOptions.refresh)
		clock.WaitTimer(t)
	}
	close(stop)
	wg.Wait()
	// A refresh may have joined a kid-miss fetch answered before the last
	// SetKeys; one more refresh, with nothing else running, settles it.
	clock.Advance(testKeySetOptions.refresh)
	clock.WaitTimer(t)
	if _, _, err := ks.key(context.Background(), extra.KID); !errors.Is(err, errUnknownKID) {
		t.Fatalf("the last refresh served only the base key, but key(extra) = %v", err)
	}
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	good, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	n := b64url(good.N.Bytes())
	body := fmt.Sprintf(`{"keys":[
		{"kty":"RSA","kid":"enc","use":"enc","n":%[1]q,"e":"AQAB"},
		{"kty":"RSA","kid":"ps","alg":"PS256","n":%[1]q,"e":"AQAB"},
		{"kty":"EC","kid":"ec","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
		{"kty":"RSA","kid":"e1","n":%[1]q,"e":"AQ"},
		{"kty":"oops"},
		{"kty":"RSA","kid":"good","alg":"RS256","use":"sig","n":%[1]q,"e":"AQAB"}
	]}`, n)
	keys, err := parseJWKS([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys["good"].pub == nil || keys["good"].alg != "RS256" {
		t.Fatalf("parsed %v, want only the good key", keys)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://clerk.example.com/.well-known/jwks.json":        "https://clerk.example.com/.well-known/jwks.json",
		"https://api.clerk.com/v1/jwks?secret=sk_live_x#frag":    "https://api.clerk.com/v1/jwks",
		"https://user:sk_live_x@clerk.example.com/jwks.json":     "https://clerk.example.com/jwks.json",
		"http://127.0.0.1:8080/.well-known/jwks.json?":           "http://127.0.0.1:8080/.well-known/jwks.json",
		"https://clerk.example.com/%zz?secret=sk_live_x&x=1#abc": "(unparsable URL)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwksOf(t *testing.T, kid string, n []byte) []byte {
	t.Helper()
	return fmt.Appendf(nil, `{"keys":[{"kty":"RSA","kid":%q,"alg":"RS256","n":%q,"e":"AQAB"}]}`, kid, b64url(n))
}
