package clerkauth

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// maxJWKSBody bounds a key set response: a real one is a few KiB.
const maxJWKSBody = 1 << 20

// maxErrorBody bounds what is read of a non-200 answer: enough to find
// Clerk's error code, and no more from a server that is misbehaving anyway.
const maxErrorBody = 64 << 10

// minRSABits refuses weak keys even if an issuer serves them.
const minRSABits = 2048

// A failed background fetch is retried after a wait that doubles from
// minRetryBackoff up to maxRetryBackoff (or the refresh period, if shorter).
// Each wait is jittered so that many Caddy instances that lost Clerk at the
// same moment do not all come back to it in lockstep.
const (
	minRetryBackoff = 250 * time.Millisecond
	maxRetryBackoff = 30 * time.Second
)

// keySetOptions tune one shared key set. They come from the first handler
// that creates the set; handlers sharing a set share it as it is. A zero
// field means its default.
type keySetOptions struct {
	refresh     time.Duration // background refresh period
	minInterval time.Duration // least time between request-triggered fetches
	timeout     time.Duration // per fetch attempt
	maxStale    time.Duration // serve the last good keys at most this long
}

var defaultKeySetOptions = keySetOptions{
	refresh:     15 * time.Minute,
	minInterval: 30 * time.Second,
	timeout:     5 * time.Second,
	maxStale:    24 * time.Hour,
}

// withDefaults fills in the zero fields, so a caller sets only what is
// configured.
func (o keySetOptions) withDefaults() keySetOptions {
	pick := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	d := defaultKeySetOptions
	return keySetOptions{
		refresh:     pick(o.refresh, d.refresh),
		minInterval: pick(o.minInterval, d.minInterval),
		timeout:     pick(o.timeout, d.timeout),
		maxStale:    pick(o.maxStale, d.maxStale),
	}
}

type rsaKey struct {
	pub *rsa.PublicKey
	alg string // "" when the JWK does not pin one
}

func (k rsaKey) equal(o rsaKey) bool { return k.alg == o.alg && k.pub.Equal(o.pub) }

// fetchCall is one fetch attempt that every concurrent trigger waits for.
type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// keySet is a JWKS cache shared by every handler that verifies against the
// same key source, across config reloads (see keySets in module.go). It
// fetches in the background, never lets a bad response replace good keys,
// keeps serving them through an outage up to maxStale, and throttles the
// fetches that requests can trigger so a flood of unknown kids or forged
// signatures cannot turn into a flood of requests to Clerk.
type keySet struct {
	url     string
	source  string      // url as logs and metrics show it: nothing secret
	header  http.Header // may hold a Clerk secret key: never logged
	opts    keySetOptions
	client  *http.Client
	logger  *zap.Logger
	fetches *prometheus.CounterVec // jwks_fetches_total
	now     func() time.Time
	after   func(time.Duration) <-chan time.Time // backoff and refresh waits

	mu        sync.Mutex
	keys      map[string]rsaKey
	fetchedAt time.Time  // last good response, whether it changed the keys or not
	lastKick  time.Time  // start of the last request-triggered fetch
	inflight  *fetchCall // the running fetch; nil if none
	closed    bool       // Destruct has begun: start no more fetches

	settled chan struct{} // closed once the first fetch attempt has ended
	settle  sync.Once

	ctx    context.Context // cancelled by Destruct; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // the refresher and request-triggered fetches
}

func newKeySet(jwksURL string, header http.Header, opts keySetOptions, logger *zap.Logger) *keySet {
	ctx, cancel := context.WithCancel(context.Background())
	return &keySet{
		url:     jwksURL,
		source:  redactURL(jwksURL),
		header:  header.Clone(),
		opts:    opts.withDefaults(),
		client:  &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		logger:  logger,
		fetches: metrics.fetches,
		now:     time.Now,
		after:   time.After,
		keys:    map[string]rsaKey{},
		settled: make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// redactURL drops the parts of a URL where a secret could hide (user info,
// query, fragment), so the result is safe for logs and metric labels.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// start launches the background fetcher. Provisioning never waits for it.
func (ks *keySet) start() {
	trackKeySet(ks)
	ks.wg.Add(1)
	go ks.run()
}

func (ks *keySet) run() {
	defer ks.wg.Done()
	ks.fetchUntilOK(triggerStartup)
	for ks.sleep(ks.opts.refresh) {
		ks.fetchUntilOK(triggerRefresh)
	}
}

// sleep waits d on the injectable timer and reports false if the set was
// destructed meanwhile.
func (ks *keySet) sleep(d time.Duration) bool {
	select {
	case <-ks.ctx.Done():
		return false
	case <-ks.after(d):
		return true
	}
}

// fetchUntilOK retries a failed fetch with exponential backoff and jitter
// until one succeeds or the set is destructed. The keys in hand stay in
// service meanwhile, up to maxStale.
func (ks *keySet) fetchUntilOK(trigger string) {
	ceiling := min(maxRetryBackoff, ks.opts.refresh)
	backoff := min(minRetryBackoff, ceiling)
	for attempt := 1; ; attempt++ {
		err := ks.fetchShared(trigger, attempt)
		ks.settle.Do(func() { close(ks.settled) })
		if err == nil {
			return
		}
		var se *statusError
		if errors.As(err, &se) && se.invalidSecret {
			// A wrong secret key does not fix itself: retrying fast only
			// hammers Clerk's API with it.
			backoff = ceiling
		}
		if !ks.sleep(jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, ceiling)
	}
}

// jitter returns a random wait in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// Destruct stops the fetcher and any request-triggered fetch, and waits for
// them; the UsagePool calls it when the last handler using this key set is
// cleaned up.
func (ks *keySet) Destruct() error {
	untrackKeySet(ks)
	ks.mu.Lock()
	ks.closed = true
	ks.mu.Unlock()
	ks.cancel()
	ks.wg.Wait()
	ks.client.CloseIdleConnections()
	return nil
}

// key implements keyProvider.
func (ks *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, string, error) {
	// A request that arrives while the first fetch is still running waits for
	// it (the attempt is bounded by the fetch timeout) rather than failing
	// just because Caddy started a moment ago.
	select {
	case <-ks.settled:
	case <-ctx.Done():
		return nil, "", errKeysUnavailable
	}
	pub, alg, err := ks.cached(kid)
	if !errors.Is(err, errUnknownKID) || kid == "" {
		return pub, alg, err
	}
	// Unknown kid: perhaps Clerk rotated keys. Refetch, throttled and shared.
	ks.kick(ctx, triggerKIDMiss)
	return ks.cached(kid)
}

// refetch is for a signature that failed with the cached key for kid: Clerk
// may have rotated the key under the same kid. It refetches, throttled and
// shared with kid misses, and returns the key for kid as it then stands,
// which is the same key if the fetch was throttled or changed nothing.
func (ks *keySet) refetch(ctx context.Context, kid string) (*rsa.PublicKey, string, error) {
	ks.kick(ctx, triggerSignature)
	return ks.cached(kid)
}

// cached answers from the keys in hand: errKeysUnavailable if there are
// none younger than maxStale, errUnknownKID if kid is not among them.
func (ks *keySet) cached(kid string) (*rsa.PublicKey, string, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if len(ks.keys) == 0 || ks.now().Sub(ks.fetchedAt) > ks.opts.maxStale {
		return nil, "", errKeysUnavailable
	}
	if k, ok := ks.keys[kid]; ok {
		return k.pub, k.alg, nil
	}
	if kid == "" {
		return nil, "", fmt.Errorf("%w: token has no kid", errUnknownKID)
	}
	return nil, "", fmt.Errorf("%w: %q", errUnknownKID, truncate(kid, 40))
}

// kick starts a request-triggered fetch, at most once per minInterval, and
// waits for it, or for the fetch already running, whatever triggered it. The
// fetch runs on the set's own context, so a caller that gives up does not
// cancel it for the others.
func (ks *keySet) kick(ctx context.Context, trigger string) {
	ks.mu.Lock()
	c := ks.inflight
	if c == nil && !ks.closed && ks.now().Sub(ks.lastKick) >= ks.opts.minInterval {
		ks.lastKick = ks.now()
		c = ks.beginLocked()
		ks.wg.Add(1)
		go func() {
			defer ks.wg.Done()
			ks.finish(c, ks.attempt(trigger, 1))
		}()
	}
	ks.mu.Unlock()
	if c == nil {
		return
	}
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

// fetchShared makes one attempt for the background fetcher, or joins the
// one already running: there is never more than one fetch per set at a time.
func (ks *keySet) fetchShared(trigger string, attempt int) error {
	ks.mu.Lock()
	c, lead := ks.inflight, false
	if c == nil {
		c, lead = ks.beginLocked(), true
	}
	ks.mu.Unlock()
	if lead {
		ks.finish(c, ks.attempt(trigger, attempt))
	}
	<-c.done
	return c.err
}

func (ks *keySet) beginLocked() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	ks.inflight = c
	return c
}

func (ks *keySet) finish(c *fetchCall, err error) {
	c.err = err
	ks.mu.Lock()
	ks.inflight = nil
	ks.mu.Unlock()
	close(c.done)
}

// attempt makes one fetch and accounts for it in metrics and logs. An
// attempt cut short by Destruct is not a failure and is not accounted.
func (ks *keySet) attempt(trigger string, n int) error {
	keys, err := ks.download()
	if ks.ctx.Err() != nil {
		return context.Canceled
	}
	if err != nil {
		ks.fetches.WithLabelValues(fetchError, trigger).Inc()
		ks.logFailure(err, trigger, n)
		return err
	}
	result := fetchUnchanged
	if ks.install(keys) {
		result = fetchOK
	}
	ks.fetches.WithLabelValues(result, trigger).Inc()
	return nil
}

// fetchOnce makes one attempt and installs its keys if the answer is good,
// bypassing the throttle and accounting for nothing: it is for diagnostics
// (caddy clerk-token), which want the error itself.
func (ks *keySet) fetchOnce() error {
	keys, err := ks.download()
	if err == nil {
		ks.install(keys)
	}
	return err
}

// download makes one attempt bounded by the fetch timeout, body included,
// and returns the usable keys only if the whole answer is good.
func (ks *keySet) download() (map[string]rsaKey, error) {
	ctx, cancel := context.WithTimeout(ks.ctx, ks.opts.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range ks.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, newStatusError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBody {
		return nil, fmt.Errorf("response is larger than %d bytes", maxJWKSBody)
	}
	return parseJWKS(body)
}

// statusError is a non-200 answer. It keeps the status, and whether Clerk
// said the secret key is invalid, but never the body or the request headers.
type statusError struct {
	status        int
	invalidSecret bool
}

func (e *statusError) Error() string {
	if e.invalidSecret {
		return fmt.Sprintf("HTTP status %d: Clerk says the secret key is invalid", e.status)
	}
	return fmt.Sprintf("HTTP status %d", e.status)
}

// clerkAPIError is the part of a Clerk Backend API error that matters here.
type clerkAPIError struct {
	Code string `json:"code"`
}

// newStatusError recognises Clerk's Backend API answer to a wrong secret
// key: a 401 whose body has an error with code "clerk_key_invalid".
func newStatusError(resp *http.Response) *statusError {
	e := &statusError{status: resp.StatusCode}
	if resp.StatusCode != http.StatusUnauthorized {
		return e
	}
	var doc struct {
		Errors []clerkAPIError `json:"errors"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(body, &doc) == nil {
		e.invalidSecret = slices.Contains(doc.Errors, clerkAPIError{Code: "clerk_key_invalid"})
	}
	return e
}

func (ks *keySet) logFailure(err error, trigger string, attempt int) {
	fields := []zap.Field{zap.String("url", ks.source), zap.String("trigger", trigger), zap.Int("attempt", attempt)}
	var se *statusError
	if errors.As(err, &se) {
		fields = append(fields, zap.Int("status", se.status))
		if se.invalidSecret {
			ks.logger.Error("Clerk rejected the secret key used to fetch the JWKS: check the configured secret key; retrying slowly", fields...)
			return
		}
	}
	// A *url.Error repeats the URL, query included: log only its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	ks.logger.Warn("fetching JWKS failed", append(fields, zap.Error(err))...)
}

// install puts a good answer in service and reports whether it changed the
// keys. Either way it renews the keys' age: the issuer vouched for them.
func (ks *keySet) install(keys map[string]rsaKey) bool {
	ks.mu.Lock()
	d := diffKeys(ks.keys, keys)
	if d.changed() {
		ks.keys = keys
	}
	ks.fetchedAt = ks.now()
	ks.mu.Unlock()
	if !d.changed() {
		return false
	}
	ks.logger.Info("JWKS key set changed",
		zap.String("url", ks.source),
		zap.Strings("added", d.added),
		zap.Strings("removed", d.removed),
		zap.Strings("replaced", d.replaced))
	return true
}

// parseJWKS keeps the usable RSA signing keys of a JWKS document. A key jwx
// cannot parse, or that is not an RSA signing key of at least 2048 bits, is
// skipped rather than failing the whole set; a set with no usable key is an
// error, so it never replaces a good one.
func parseJWKS(body []byte) (map[string]rsaKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("invalid JWKS JSON: %v", err)
	}
	keys := make(map[string]rsaKey, len(doc.Keys))
	for _, raw := range doc.Keys {
		k, err := jwk.ParseKey(bytes.TrimSpace(raw))
		if err != nil {
			continue
		}
		if use := k.KeyUsage(); use != "" && use != "sig" {
			continue
		}
		alg := ""
		if a := k.Algorithm(); a != nil {
			alg = a.String()
		}
		if _, ok := algHashes[alg]; !ok && alg != "" {
			continue
		}
		var pub rsa.PublicKey
		if k.Raw(&pub) != nil || pub.N == nil || pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			continue
		}
		keys[k.KeyID()] = rsaKey{pub: &pub, alg: alg}
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no usable RSA signing key")
	}
	return keys, nil
}

// keyDiff lists the kids a new key set adds, removes, or serves with a
// different key (a rotation under the same kid).
type keyDiff struct {
	added, removed, replaced []string
}

func (d keyDiff) changed() bool { return len(d.added)+len(d.removed)+len(d.replaced) > 0 }

func diffKeys(old, cur map[string]rsaKey) keyDiff {
	var d keyDiff
	for kid, k := range cur {
		switch o, ok := old[kid]; {
		case !ok:
			d.added = append(d.added, kid)
		case !o.equal(k):
			d.replaced = append(d.replaced, kid)
		}
	}
	for kid := range old {
		if _, ok := cur[kid]; !ok {
			d.removed = append(d.removed, kid)
		}
	}
	sort.Strings(d.added)
	sort.Strings(d.removed)
	sort.Strings(d.replaced)
	return d
}
