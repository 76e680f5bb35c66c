package clerkauth

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
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

// metrics are package-level so their counts survive config reloads: each
// load gets a new registry from ctx.GetMetricsRegistry, and registerMetrics
// adds these same collectors to it.
var metrics = struct {
	requests   *prometheus.CounterVec
	fetches    *prometheus.CounterVec
	tokenCache *prometheus.CounterVec
	// The browser handshake: redirects by Clerk's reason, and return legs
	// by payload format (nonce, token) and result (applied, refused,
	// unavailable).
	handshakes       *prometheus.CounterVec
	handshakeReturns *prometheus.CounterVec
	// The Backend API budget: calls by endpoint and result, calls our own
	// token bucket refused, and machine-token answers from the cache.
	backendCalls   *prometheus.CounterVec
	backendLimited *prometheus.CounterVec
	machineCache   *prometheus.CounterVec
	// Enrichment look-ups by resource (user, organization) and result
	// (hit, stale, miss), and drops of cached data by source (webhook,
	// storage).
	enrichCache   *prometheus.CounterVec
	enrichForgets *prometheus.CounterVec
	// Clerk webhook deliveries by result (applied, ignored, refused) and
	// the HTTP status answered.
	webhooks *prometheus.CounterVec
}{
	requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "requests_total",
		Help:      "Requests handled by clerk_auth, by result (allowed, rejected, anonymous) and reason code.",
	}, []string{"result", "reason"}),
	fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "jwks_fetches_total",
		Help:      "JWKS fetch attempts, by result (ok, unchanged, error) and trigger (startup, refresh, kid_miss, signature).",
	}, []string{"result", "trigger"}),
	tokenCache: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "token_cache_total",
		Help:      "Verified-token cache lookups, by result (hit, miss).",
	}, []string{"result"}),
	handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "handshakes_total",
		Help:      "Browsers sent through Clerk's handshake, by Clerk's reason.",
	}, []string{"reason"}),
	handshakeReturns: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "handshake_returns_total",
		Help:      "Handshake payloads received back, by format (nonce, token) and result (applied, refused, unavailable).",
	}, []string{"format", "result"}),
	backendCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "backend_api_calls_total",
		Help:      "Requests sent to Clerk's Backend API, by endpoint and result (ok, invalid, unauthorized, unavailable).",
	}, []string{"endpoint", "result"}),
	backendLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "backend_api_rate_limited_total",
		Help:      "Backend API calls not made because backend_api_rate was spent, by endpoint; each became a 503.",
	}, []string{"endpoint"}),
	machineCache: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "machine_token_cache_total",
		Help:      "Opaque machine-token verifications, by whether the cache answered (hit) or a Backend API call was needed or joined (miss).",
	}, []string{"result"}),
	enrichCache: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "enrich_cache_total",
		Help:      "Backend API user and organization look-ups, by resource (user, organization) and result (hit, stale: served while one call refreshes it, miss).",
	}, []string{"resource", "result"}),
	enrichForgets: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "enrich_forgets_total",
		Help:      "User and organization ids whose cached enrichment data was dropped (if any was cached), by source (webhook: a Clerk webhook to this Caddy; storage: a webhook to another Caddy sharing the storage).",
	}, []string{"source"}),
	webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "webhooks_total",
		Help:      "Clerk webhook deliveries to clerk_webhook, by result (applied: it denied or forgot something; ignored: an event that changes nothing here; duplicate: applied before, applied no more; unstored: applied here but not written to the storage, answered 503 so that Clerk sends it again; refused) and status.",
	}, []string{"result", "status"}),
}

// Values of the result label of webhooks_total.
const (
	webhookApplied   = "applied"
	webhookIgnored   = "ignored"
	webhookDuplicate = "duplicate" // applied before: acknowledged, applied no more
	webhookUnstored  = "unstored"  // applied here, not in storage: 503 so that it is sent again
	webhookRefused   = "refused"
)

// Values of the source label of enrich_forgets_total.
const (
	forgetFromWebhook = "webhook"
	forgetFromStorage = "storage"
)

// The counters bumped on every request are resolved once: WithLabelValues
// hashes its labels on each call.
var (
	allowedRequests = metrics.requests.WithLabelValues(requestAllowed, "")
	tokenCacheHits  = metrics.tokenCache.WithLabelValues("hit")
	tokenCacheMiss  = metrics.tokenCache.WithLabelValues("miss")
)

var (
	machineCacheHits = metrics.machineCache.WithLabelValues("hit")
	machineCacheMiss = metrics.machineCache.WithLabelValues("miss")
)

// backendAPIObserver counts every shared Backend API client's calls; the
// endpoint and result labels are clerkapi's constants, a bounded set.
var backendAPIObserver = clerkapi.Observer{
	Call: func(endpoint, result string) { metrics.backendCalls.WithLabelValues(endpoint, result).Inc() },
	MachineLookup: func(hit bool) {
		if hit {
			machineCacheHits.Inc()
		} else {
			machineCacheMiss.Inc()
		}
	},
	Limited:      func(endpoint string) { metrics.backendLimited.WithLabelValues(endpoint).Inc() },
	EnrichLookup: func(resource, result string) { metrics.enrichCache.WithLabelValues(resource, result).Inc() },
}

// observeTokenCache counts one lookup in the verified-token cache.
func observeTokenCache(hit bool) {
	if hit {
		tokenCacheHits.Inc()
	} else {
		tokenCacheMiss.Inc()
	}
}

// countFetch is the key sets' jwks.Options.OnFetch: the label values are
// jwks's Fetch* results and Trigger* triggers, a bounded set.
func countFetch(result, trigger string) {
	metrics.fetches.WithLabelValues(result, trigger).Inc()
}

// Every fetch and enrichment drop series exists from the start, at zero, so that rate() and
// alerts work before the first failure rather than only after it.
func init() {
	for _, result := range []string{jwks.FetchOK, jwks.FetchUnchanged, jwks.FetchError} {
		for _, trigger := range []string{jwks.TriggerStartup, jwks.TriggerRefresh, jwks.TriggerKIDMiss, jwks.TriggerSignature} {
			metrics.fetches.WithLabelValues(result, trigger)
		}
	}
	for _, source := range []string{forgetFromWebhook, forgetFromStorage} {
		metrics.enrichForgets.WithLabelValues(source)
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
	for _, c := range []prometheus.Collector{metrics.requests, metrics.fetches, metrics.tokenCache, metrics.handshakes, metrics.handshakeReturns,
		metrics.backendCalls, metrics.backendLimited, metrics.machineCache, metrics.enrichCache, metrics.enrichForgets, metrics.webhooks,
		keySetCollector{}, clusterCollector{}} {
		var dup prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &dup) {
			return err
		}
	}
	return nil
}

// keySetCollector reports jwks_age_seconds and jwks_keys for the live key
// sets at scrape time, so they are always current and a destructed set stops
// being reported. A registry accepts one series per label value, so a
// source is reported by its stalest set (see jwks.StalestPerSource).
type keySetCollector struct{}

func (keySetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jwksAgeDesc
	ch <- jwksKeysDesc
}

func (keySetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range jwks.StalestPerSource() {
		ch <- prometheus.MustNewConstMetric(jwksKeysDesc, prometheus.GaugeValue, float64(s.Keys), s.Source)
		if !s.FetchedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(jwksAgeDesc, prometheus.GaugeValue, s.Age().Seconds(), s.Source)
		}
	}
}

var (
	denylistEntriesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "denylist_entries"),
		"Sessions and users denied now, shared through Caddy's storage.",
		nil, nil)
	denylistSyncFailuresDesc = prometheus.NewDesc(
		prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "denylist_sync_failures_total"),
		"Denylist reads and writes that failed on Caddy's storage; the last good denials stay in force meanwhile.",
		nil, nil)
	denylistEvictionsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "denylist_evictions_total"),
		"Denials dropped early because the denylist reached its cap (the ones expiring soonest first); alert on any.",
		nil, nil)
	denylistSyncAgeDesc = prometheus.NewDesc(
		prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "denylist_sync_age_seconds"),
		"Seconds since the storage's denials were last read completely; absent until the first complete read.",
		nil, nil)
)

// clusterCollector reports the live denylists at scrape time: the largest
// list, the failures of all of them, and the stalest last read.
type clusterCollector struct{}

func (clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- denylistEntriesDesc
	ch <- denylistSyncFailuresDesc
	ch <- denylistEvictionsDesc
	ch <- denylistSyncAgeDesc
}

func (clusterCollector) Collect(ch chan<- prometheus.Metric) {
	entries, failures, evicted := 0, uint64(0), uint64(0)
	var oldest time.Time
	live := false
	clusters.Range(func(_, val any) bool {
		c, ok := val.(*cluster)
		if !ok {
			return true
		}
		live = true
		entries = max(entries, c.list.Len())
		st := c.sync.Stats()
		failures += st.Failures
		evicted += uint64(c.list.Stats().Evicted)
		if !st.LastRead.IsZero() && (oldest.IsZero() || st.LastRead.Before(oldest)) {
			oldest = st.LastRead
		}
		return true
	})
	if !live {
		return
	}
	ch <- prometheus.MustNewConstMetric(denylistEntriesDesc, prometheus.GaugeValue, float64(entries))
	ch <- prometheus.MustNewConstMetric(denylistSyncFailuresDesc, prometheus.CounterValue, float64(failures))
	ch <- prometheus.MustNewConstMetric(denylistEvictionsDesc, prometheus.CounterValue, float64(evicted))
	if !oldest.IsZero() {
		ch <- prometheus.MustNewConstMetric(denylistSyncAgeDesc, prometheus.GaugeValue, timeNow().Sub(oldest).Seconds())
	}
}
