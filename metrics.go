package clerkauth

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	metricsNamespace = "caddy"
	metricsSubsystem = "clerk_auth"
)

// Values of the result label of requests_total. Its reason label takes the
// Reason* codes, a bounded set, never anything read from the request.
const (
	requestAllowed   = "allowed"
	requestRejected  = "rejected"
	requestAnonymous = "anonymous"
)

// Values of the labels of jwks_fetches_total.
const (
	fetchOK        = "ok"        // a good answer that changed the keys
	fetchUnchanged = "unchanged" // a good answer with the keys already in hand
	fetchError     = "error"     // anything else: the last good keys stay

	triggerStartup   = "startup"   // the first fetch of a set, and its retries
	triggerRefresh   = "refresh"   // the periodic refresh, and its retries
	triggerKIDMiss   = "kid_miss"  // a token whose kid is not in the set
	triggerSignature = "signature" // a signature that failed with a cached key
)

// metrics are package-level so their counts survive config reloads: each
// load gets a new registry from ctx.GetMetricsRegistry, and registerMetrics
// adds these same collectors to it.
var metrics = struct {
	requests   *prometheus.CounterVec
	fetches    *prometheus.CounterVec
	tokenCache *prometheus.CounterVec
}{
	requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "requests_total",
		Help:      "Requests handled by clerk_auth, by result (allowed, rejected, anonymous) and reason code.",
	}, []string{"result", "reason"}),
	fetches: newFetchCounter(),
	tokenCache: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "token_cache_total",
		Help:      "Verified-token cache lookups, by result (hit, miss).",
	}, []string{"result"}),
}

// The counters bumped on every request are resolved once: WithLabelValues
// hashes its labels on each call.
var (
	allowedRequests = metrics.requests.WithLabelValues(requestAllowed, "")
	tokenCacheHits  = metrics.tokenCache.WithLabelValues("hit")
	tokenCacheMiss  = metrics.tokenCache.WithLabelValues("miss")
)

// observeTokenCache counts one lookup in the verified-token cache.
func observeTokenCache(hit bool) {
	if hit {
		tokenCacheHits.Inc()
	} else {
		tokenCacheMiss.Inc()
	}
}

// newFetchCounter makes a jwks_fetches_total. Key sets count into the one
// in metrics; a test gives a set its own, to see only that set's fetches.
func newFetchCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "jwks_fetches_total",
		Help:      "JWKS fetch attempts, by result (ok, unchanged, error) and trigger (startup, refresh, kid_miss, signature).",
	}, []string{"result", "trigger"})
}

// Every fetch series exists from the start, at zero, so that rate() and
// alerts work before the first failure rather than only after it.
func init() {
	for _, result := range []string{fetchOK, fetchUnchanged, fetchError} {
		for _, trigger := range []string{triggerStartup, triggerRefresh, triggerKIDMiss, triggerSignature} {
			metrics.fetches.WithLabelValues(result, trigger)
		}
	}
}

var (
	jwksAgeDesc = prometheus.NewDesc(
		prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "jwks_age_seconds"),
		"Seconds since the key set was last fetched successfully; absent until the first success.",
		[]string{"source"}, nil)
	jwksKeysDesc = prometheus.NewDesc(
		prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "jwks_keys"),
		"Number of usable signing keys in the cached key set.",
		[]string{"source"}, nil)
)

// registerMetrics adds this module's collectors to reg. Registering them
// again in the same registry, as every handler of a config does, is not an
// error.
func registerMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{metrics.requests, metrics.fetches, metrics.tokenCache, keySetCollector{}} {
		var dup prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &dup) {
			return err
		}
	}
	return nil
}

// liveKeySets are the key sets started and not yet destructed. The gauges
// are read from them at scrape time, so they are always current and a
// destructed set stops being reported.
var liveKeySets = struct {
	sync.Mutex
	sets map[*keySet]struct{}
}{sets: map[*keySet]struct{}{}}

func trackKeySet(ks *keySet) {
	liveKeySets.Lock()
	defer liveKeySets.Unlock()
	liveKeySets.sets[ks] = struct{}{}
}

func untrackKeySet(ks *keySet) {
	liveKeySets.Lock()
	defer liveKeySets.Unlock()
	delete(liveKeySets.sets, ks)
}

// keySetStats is what the gauges report about one key set.
type keySetStats struct {
	source    string
	keys      int
	fetchedAt time.Time // zero until the first good answer
	now       time.Time // the set's own clock, for its age
}

func (s keySetStats) age() time.Duration { return s.now.Sub(s.fetchedAt) }

// staler reports whether s has gone longer than o without a good answer; a
// set that never had one is the stalest of all.
func (s keySetStats) staler(o keySetStats) bool {
	return s.fetchedAt.IsZero() || (!o.fetchedAt.IsZero() && s.age() > o.age())
}

func (ks *keySet) stats() keySetStats {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return keySetStats{source: ks.source, keys: len(ks.keys), fetchedAt: ks.fetchedAt, now: ks.now()}
}

// stalestPerSource returns one keySetStats per source. Two live sets share a
// source only if they differ in something else (say, the secret key), and
// a registry accepts one series per label value: the stalest set is the one
// reported, so an alert on age or on zero keys covers all of them.
func stalestPerSource() map[string]keySetStats {
	liveKeySets.Lock()
	sets := make([]*keySet, 0, len(liveKeySets.sets))
	for ks := range liveKeySets.sets {
		sets = append(sets, ks)
	}
	liveKeySets.Unlock()

	out := make(map[string]keySetStats, len(sets))
	for _, ks := range sets {
		s := ks.stats()
		if prev, ok := out[s.source]; !ok || s.staler(prev) {
			out[s.source] = s
		}
	}
	return out
}

// keySetCollector reports jwks_age_seconds and jwks_keys for the live key
// sets at scrape time.
type keySetCollector struct{}

func (keySetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jwksAgeDesc
	ch <- jwksKeysDesc
}

func (keySetCollector) Collect(ch chan<- prometheus.Metric) {
	for source, s := range stalestPerSource() {
		ch <- prometheus.MustNewConstMetric(jwksKeysDesc, prometheus.GaugeValue, float64(s.keys), source)
		if !s.fetchedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(jwksAgeDesc, prometheus.GaugeValue, s.age().Seconds(), source)
		}
	}
}
