package clerkauth

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// gather returns every series of g as name → "label=value,…" → value.
// Label pairs come sorted by name.
func gather(t *testing.T, g prometheus.Gatherer) map[string]map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		series := map[string]float64{}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			// The getters are nil-safe: the one of the other type reads 0.
			series[strings.Join(labels, ",")] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		out[mf.GetName()] = series
	}
	return out
}

// scrape registers the module's metrics in a fresh pedantic registry, as a
// config load does, and gathers it: what Caddy's metrics endpoint serves.
func scrape(t *testing.T) map[string]map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	return gather(t, reg)
}

// fetchCounts returns the fetches ks counted, as "result/trigger" → count.
func fetchCounts(t *testing.T, ks *keySet) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(ks.fetches)
	out := map[string]float64{}
	key := strings.NewReplacer("result=", "", ",trigger=", "/")
	for labels, v := range gather(t, reg)["caddy_clerk_auth_jwks_fetches_total"] {
		out[key.Replace(labels)] = v
	}
	return out
}

// wantFetchDelta checks that the fetches ks counted moved by exactly want
// since before.
func wantFetchDelta(t *testing.T, ks *keySet, before, want map[string]float64) {
	t.Helper()
	got := map[string]float64{}
	for k, v := range fetchCounts(t, ks) {
		if d := v - before[k]; d != 0 {
			got[k] = d
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("jwks_fetches_total moved by %v, want %v", got, want)
	}
}

// jwksGauge returns the value of a per-source gauge, failing if absent.
func jwksGauge(t *testing.T, name, source string) float64 {
	t.Helper()
	v, ok := scrape(t)[name]["source="+source]
	if !ok {
		t.Fatalf("%s has no series for source %q", name, source)
	}
	return v
}

// TestMetricsRegisterOnEveryConfigLoad: every handler of a config registers
// into the config's registry, every reload brings a new registry, and the
// counts carry over from one to the next.
func TestMetricsRegisterOnEveryConfigLoad(t *testing.T) {
	old := prometheus.NewPedanticRegistry()
	for range 2 {
		if err := registerMetrics(old); err != nil {
			t.Fatalf("registering twice in one registry: %v", err)
		}
	}
	// A reason no handler uses, so that no other test's traffic moves it.
	const reason = "test-register-on-every-config-load"
	const series = "reason=" + reason + ",result=rejected"
	metrics.requests.WithLabelValues(requestRejected, reason).Inc()
	before := gather(t, old)["caddy_clerk_auth_requests_total"][series]

	reloaded := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reloaded); err != nil {
		t.Fatalf("registering in a new registry: %v", err)
	}
	metrics.requests.WithLabelValues(requestRejected, reason).Inc()
	for name, reg := range map[string]*prometheus.Registry{"old": old, "reloaded": reloaded} {
		if got := gather(t, reg)["caddy_clerk_auth_requests_total"][series]; got != before+1 {
			t.Errorf("%s registry: requests_total{%s} = %v, want %v", name, series, got, before+1)
		}
	}
}

// TestMetricsRegisterReportsConflicts: only "already registered" is
// tolerated; a different metric under one of our names is an error.
func TestMetricsRegisterReportsConflicts(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "caddy_clerk_auth_requests_total", Help: "not ours"}))
	err := registerMetrics(reg)
	if err == nil || errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		t.Fatalf("got %v, want a registration conflict", err)
	}
}

// TestMetricsKeySetsCountIntoTheRegisteredCounter: what tests count on a
// set's own counter, production counts on the registered one.
func TestMetricsKeySetsCountIntoTheRegisteredCounter(t *testing.T) {
	ks := newKeySet("https://clerk.example.com/.well-known/jwks.json", nil, keySetOptions{}, zap.NewNop())
	defer ks.Destruct()
	if ks.fetches != metrics.fetches {
		t.Fatal("a new key set does not count its fetches in metrics.fetches")
	}
}

func TestMetricsFetchSeriesStartAtZero(t *testing.T) {
	got := map[string]float64{}
	key := strings.NewReplacer("result=", "", ",trigger=", "/")
	for labels, v := range scrape(t)["caddy_clerk_auth_jwks_fetches_total"] {
		got[key.Replace(labels)] = v
	}
	for _, result := range []string{fetchOK, fetchUnchanged, fetchError} {
		for _, trigger := range []string{triggerStartup, triggerRefresh, triggerKIDMiss, triggerSignature} {
			if _, ok := got[result+"/"+trigger]; !ok {
				t.Errorf("no series for result=%s trigger=%s", result, trigger)
			}
		}
	}
	if len(got) != 12 {
		t.Errorf("%d fetch series, want 12: %v", len(got), got)
	}
}

// TestMetricsFetchCounters counts one fetch of each kind: every trigger,
// and a changed, an unchanged and a failed answer.
func TestMetricsFetchCounters(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), clock)
	wantFetchDelta(t, ks, nil, map[string]float64{"ok/startup": 1})

	if _, _, err := ks.key(context.Background(), "ins_unknown"); !errors.Is(err, errUnknownKID) {
		t.Fatalf("got %v, want errUnknownKID", err)
	}
	clock.Advance(testKeySetOptions.minInterval)
	newKID := iss.Rotate()
	mustKey(t, ks, newKID)
	clock.Advance(testKeySetOptions.minInterval)
	iss.SetFault(clerktest.Fault{Status: http.StatusInternalServerError})
	if _, _, err := ks.key(context.Background(), "ins_unknown"); !errors.Is(err, errUnknownKID) {
		t.Fatalf("got %v, want errUnknownKID", err)
	}
	iss.ClearFault()
	clock.Advance(testKeySetOptions.minInterval)
	if _, _, err := ks.refetch(context.Background(), newKID); err != nil {
		t.Fatal(err)
	}
	iss.Rotate()
	clock.Advance(testKeySetOptions.refresh)
	clock.WaitTimer(t)

	wantFetchDelta(t, ks, nil, map[string]float64{
		"ok/startup":          1,
		"unchanged/kid_miss":  1,
		"ok/kid_miss":         1,
		"error/kid_miss":      1,
		"unchanged/signature": 1,
		"ok/refresh":          1,
	})
}

// TestMetricsJWKSGauges: age and key count follow the set at scrape time,
// and the set's series go away with it.
func TestMetricsJWKSGauges(t *testing.T) {
	const age, keys = "caddy_clerk_auth_jwks_age_seconds", "caddy_clerk_auth_jwks_keys"
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), clock)
	check := func(wantAge, wantKeys float64) {
		t.Helper()
		if got := jwksGauge(t, age, ks.source); got != wantAge {
			t.Errorf("%s = %v, want %v", age, got, wantAge)
		}
		if got := jwksGauge(t, keys, ks.source); got != wantKeys {
			t.Errorf("%s = %v, want %v", keys, got, wantKeys)
		}
	}
	check(0, 1)
	clock.Advance(90 * time.Second)
	check(90, 1)
	iss.AddKey()
	clock.Advance(testKeySetOptions.refresh)
	clock.WaitTimer(t)
	check(0, 2)

	if err := ks.Destruct(); err != nil {
		t.Fatal(err)
	}
	got := scrape(t)
	for _, name := range []string{age, keys} {
		if _, ok := got[name]["source="+ks.source]; ok {
			t.Errorf("%s still reports a destructed key set", name)
		}
	}
}

// TestMetricsJWKSGaugesBeforeFirstFetch: no keys yet is zero keys and no
// age at all, rather than an age that would look fresh.
func TestMetricsJWKSGaugesBeforeFirstFetch(t *testing.T) {
	iss := clerktest.Start(t)
	iss.SetFault(clerktest.Fault{Status: http.StatusInternalServerError})
	clock := fakeclock.New(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), clock)
	if got := jwksGauge(t, "caddy_clerk_auth_jwks_keys", ks.source); got != 0 {
		t.Errorf("jwks_keys = %v, want 0", got)
	}
	if _, ok := scrape(t)["caddy_clerk_auth_jwks_age_seconds"]["source="+ks.source]; ok {
		t.Error("jwks_age_seconds is reported before any successful fetch")
	}
}

// TestMetricsOneSeriesPerSource: two live sets on one URL (say, with two
// secret keys) make one series, from the stalest set, and the pedantic
// registry accepts it.
func TestMetricsOneSeriesPerSource(t *testing.T) {
	iss := clerktest.Start(t)
	fresh, stale := fakeclock.New(testNow), fakeclock.New(testNow)
	a := startClockedKeySet(t, iss.JWKSURL(), fresh)
	b, _ := newClockedKeySet(t, iss.JWKSURL(), http.Header{"X-Other": {"1"}}, testKeySetOptions, stale)
	stale.WaitTimer(t)

	iss.SetFault(clerktest.Fault{Status: http.StatusInternalServerError})
	stale.Advance(time.Hour) // b's refresh fails: its keys are an hour old
	stale.WaitTimer(t)
	if a.source != b.source {
		t.Fatalf("sources differ: %q, %q", a.source, b.source)
	}
	if got := jwksGauge(t, "caddy_clerk_auth_jwks_age_seconds", a.source); got != time.Hour.Seconds() {
		t.Fatalf("jwks_age_seconds = %v, want the stalest set's %v", got, time.Hour.Seconds())
	}
}
