package clerkauth

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
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

// startClockedKeySet starts a key set on url whose clock and timers are
// clock's, and waits until its fetcher is idle after the first attempt.
func startClockedKeySet(t *testing.T, url string, header http.Header, clock *fakeclock.Clock) *jwks.Set {
	t.Helper()
	ks := startKeySet(t, url, header, jwks.Options{Clock: clock})
	clock.WaitTimer(t)
	return ks
}

// TestMetricsKeySetsCountIntoTheRegisteredCounter: what the jwks tests count
// through a set's own OnFetch, a handler's key set counts in the registered
// jwks_fetches_total.
func TestMetricsKeySetsCountIntoTheRegisteredCounter(t *testing.T) {
	const series = "result=" + jwks.FetchOK + ",trigger=" + jwks.TriggerStartup
	iss := clerktest.Start(t)
	before := scrape(t)["caddy_clerk_auth_jwks_fetches_total"][series]
	h := &Handler{Issuers: []string{iss.URL}}
	if err := provisionHandler(t, h); err != nil {
		t.Fatal(err)
	}
	<-h.verifier.keys.(*jwks.Set).Settled()
	if got := scrape(t)["caddy_clerk_auth_jwks_fetches_total"][series]; got != before+1 {
		t.Fatalf("jwks_fetches_total{%s} = %v after a new key set's first fetch, want %v", series, got, before+1)
	}
}

func TestMetricsFetchSeriesStartAtZero(t *testing.T) {
	got := map[string]float64{}
	key := strings.NewReplacer("result=", "", ",trigger=", "/")
	for labels, v := range scrape(t)["caddy_clerk_auth_jwks_fetches_total"] {
		got[key.Replace(labels)] = v
	}
	for _, result := range []string{jwks.FetchOK, jwks.FetchUnchanged, jwks.FetchError} {
		for _, trigger := range []string{jwks.TriggerStartup, jwks.TriggerRefresh, jwks.TriggerKIDMiss, jwks.TriggerSignature} {
			if _, ok := got[result+"/"+trigger]; !ok {
				t.Errorf("no series for result=%s trigger=%s", result, trigger)
			}
		}
	}
	if len(got) != 12 {
		t.Errorf("%d fetch series, want 12: %v", len(got), got)
	}
}

// TestMetricsJWKSGauges: age and key count follow the set at scrape time,
// and the set's series go away with it.
func TestMetricsJWKSGauges(t *testing.T) {
	const age, keys = "caddy_clerk_auth_jwks_age_seconds", "caddy_clerk_auth_jwks_keys"
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), nil, clock)
	source := ks.Stats().Source
	check := func(wantAge, wantKeys float64) {
		t.Helper()
		if got := jwksGauge(t, age, source); got != wantAge {
			t.Errorf("%s = %v, want %v", age, got, wantAge)
		}
		if got := jwksGauge(t, keys, source); got != wantKeys {
			t.Errorf("%s = %v, want %v", keys, got, wantKeys)
		}
	}
	check(0, 1)
	clock.Advance(90 * time.Second)
	check(90, 1)
	iss.AddKey()
	clock.Advance(jwks.DefaultOptions.Refresh)
	clock.WaitTimer(t)
	check(0, 2)

	if err := ks.Destruct(); err != nil {
		t.Fatal(err)
	}
	got := scrape(t)
	for _, name := range []string{age, keys} {
		if _, ok := got[name]["source="+source]; ok {
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
	source := startClockedKeySet(t, iss.JWKSURL(), nil, clock).Stats().Source
	if got := jwksGauge(t, "caddy_clerk_auth_jwks_keys", source); got != 0 {
		t.Errorf("jwks_keys = %v, want 0", got)
	}
	if _, ok := scrape(t)["caddy_clerk_auth_jwks_age_seconds"]["source="+source]; ok {
		t.Error("jwks_age_seconds is reported before any successful fetch")
	}
}

// TestMetricsOneSeriesPerSource: two live sets on one URL (say, with two
// secret keys) make one series, from the stalest set, and the pedantic
// registry accepts it.
func TestMetricsOneSeriesPerSource(t *testing.T) {
	iss := clerktest.Start(t)
	fresh, stale := fakeclock.New(testNow), fakeclock.New(testNow)
	a := startClockedKeySet(t, iss.JWKSURL(), nil, fresh).Stats().Source
	b := startClockedKeySet(t, iss.JWKSURL(), http.Header{"X-Other": {"1"}}, stale).Stats().Source

	iss.SetFault(clerktest.Fault{Status: http.StatusInternalServerError})
	stale.Advance(time.Hour) // b's refresh fails: its keys are an hour old
	stale.WaitTimer(t)
	if a != b {
		t.Fatalf("sources differ: %q, %q", a, b)
	}
	if got := jwksGauge(t, "caddy_clerk_auth_jwks_age_seconds", a); got != time.Hour.Seconds() {
		t.Fatalf("jwks_age_seconds = %v, want the stalest set's %v", got, time.Hour.Seconds())
	}
}
