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
	"sort"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"go.uber.org/zap"
)

// maxJWKSBody bounds a key set response: a real one is a few KiB.
const maxJWKSBody = 1 << 20

// minRSABits refuses weak keys even if an issuer serves them.
const minRSABits = 2048

// keySetOptions tune one shared key set. They come from the first handler
// that creates the set; handlers sharing a URL share the set as it is.
type keySetOptions struct {
	refresh     time.Duration // background refresh period
	minInterval time.Duration // least time between request-triggered fetches
	timeout     time.Duration // per fetch attempt
	maxStale    time.Duration // serve the last good keys at most this long
}

var defaultKeySetOptions = keySetOptions{
	refresh:     15 * time.Minute,
	minInterval: 10 * time.Second,
	timeout:     5 * time.Second,
	maxStale:    24 * time.Hour,
}

type rsaKey struct {
	pub *rsa.PublicKey
	alg string // "" when the JWK does not pin one
}

// keySet is a JWKS cache shared by every handler that verifies against the
// same URL, across config reloads (see keySetPool). It fetches in the
// background, never lets a bad response replace good keys, and throttles the
// fetches that requests can trigger so a flood of unknown kids cannot turn
// into a flood of requests to Clerk.
type keySet struct {
	url    string
	header http.Header
	opts   keySetOptions
	client *http.Client
	logger *zap.Logger
	now    func() time.Time

	mu        sync.Mutex
	keys      map[string]rsaKey
	fetchedAt time.Time     // last successful fetch
	lastKick  time.Time     // last request-triggered fetch
	inflight  chan struct{} // closed when the running fetch ends; nil if none
	settled   chan struct{} // closed once the first fetch has finished
	settle    sync.Once

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newKeySet(url string, header http.Header, opts keySetOptions, logger *zap.Logger) *keySet {
	ctx, cancel := context.WithCancel(context.Background())
	return &keySet{
		url:     url,
		header:  header,
		opts:    opts,
		client:  &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		logger:  logger,
		now:     time.Now,
		keys:    map[string]rsaKey{},
		settled: make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
}

// start launches the background fetcher. Provisioning never waits for it.
func (ks *keySet) start() {
	go ks.run()
}

func (ks *keySet) run() {
	defer close(ks.done)
	ks.fetchWithRetry()
	ks.settle.Do(func() { close(ks.settled) })
	t := time.NewTicker(ks.opts.refresh)
	defer t.Stop()
	for {
		select {
		case <-ks.ctx.Done():
			return
		case <-t.C:
			ks.fetchWithRetry()
		}
	}
}

// Destruct stops the fetcher; the UsagePool calls it when the last handler
// using this key set is cleaned up.
func (ks *keySet) Destruct() error {
	ks.cancel()
	<-ks.done
	ks.client.CloseIdleConnections()
	return nil
}

// key implements keyProvider.
func (ks *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, string, error) {
	// A request that arrives while the first fetch is still running waits for
	// it (each attempt is bounded by the fetch timeout) instead of failing.
	select {
	case <-ks.settled:
	case <-ctx.Done():
		return nil, "", errKeysUnavailable
	}
	k, fresh := ks.lookup(kid)
	if k.pub != nil {
		return k.pub, k.alg, nil
	}
	if !fresh {
		return nil, "", errKeysUnavailable
	}
	if kid == "" {
		return nil, "", fmt.Errorf("%w: token has no kid", errUnknownKID)
	}
	// Unknown kid: perhaps Clerk rotated keys. Refetch, throttled and shared.
	ks.kick(ctx)
	if k, fresh = ks.lookup(kid); k.pub != nil {
		return k.pub, k.alg, nil
	}
	if !fresh {
		return nil, "", errKeysUnavailable
	}
	return nil, "", fmt.Errorf("%w: %q", errUnknownKID, truncate(kid, 40))
}

// lookup returns the key for kid and whether the set is usable at all: it has
// keys no older than maxStale.
func (ks *keySet) lookup(kid string) (rsaKey, bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if len(ks.keys) == 0 || ks.now().Sub(ks.fetchedAt) > ks.opts.maxStale {
		return rsaKey{}, false
	}
	return ks.keys[kid], true
}

// kick runs a request-triggered fetch, at most once per minInterval; callers
// that arrive while one runs wait for it instead of starting their own.
func (ks *keySet) kick(ctx context.Context) {
	ks.mu.Lock()
	wait := ks.inflight
	if wait == nil && ks.now().Sub(ks.lastKick) >= ks.opts.minInterval {
		ks.lastKick = ks.now()
		wait = make(chan struct{})
		ks.inflight = wait
		go func() {
			ks.fetchOnce()
			ks.mu.Lock()
			ks.inflight = nil
			ks.mu.Unlock()
			close(wait)
		}()
	}
	ks.mu.Unlock()
	if wait == nil {
		return
	}
	select {
	case <-wait:
	case <-ctx.Done():
	}
}

// fetchWithRetry retries a failed fetch with exponential backoff and jitter
// (250ms, 500ms, ... capped at 30s) until it succeeds, the set is stopped,
// or the time until the next scheduled refresh is used up.
func (ks *keySet) fetchWithRetry() {
	deadline := ks.now().Add(ks.opts.refresh)
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := ks.fetchOnce()
		if err == nil || ks.ctx.Err() != nil {
			return
		}
		ks.logger.Warn("fetching JWKS failed",
			zap.String("url", ks.url), zap.Int("attempt", attempt), zap.Error(err))
		ks.settle.Do(func() { close(ks.settled) })
		wait := backoff/2 + rand.N(backoff/2+1)
		if ks.now().Add(wait).After(deadline) {
			return
		}
		select {
		case <-ks.ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// fetchOnce makes one bounded attempt and installs the result only if it is a
// usable key set; anything else leaves the last good keys in place.
func (ks *keySet) fetchOnce() error {
	ctx, cancel := context.WithTimeout(ks.ctx, ks.opts.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return err
	}
	for k, v := range ks.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJWKSBody))
		return fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return err
	}
	if len(body) > maxJWKSBody {
		return fmt.Errorf("response is larger than %d bytes", maxJWKSBody)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return err
	}
	ks.install(keys)
	return nil
}

func (ks *keySet) install(keys map[string]rsaKey) {
	ks.mu.Lock()
	added, removed := diffKIDs(ks.keys, keys)
	ks.keys = keys
	ks.fetchedAt = ks.now()
	ks.mu.Unlock()
	if len(added)+len(removed) > 0 {
		ks.logger.Info("JWKS key set changed",
			zap.String("url", ks.url), zap.Strings("added", added), zap.Strings("removed", removed))
	}
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

func diffKIDs(old, cur map[string]rsaKey) (added, removed []string) {
	for kid := range cur {
		if _, ok := old[kid]; !ok {
			added = append(added, kid)
		}
	}
	for kid := range old {
		if _, ok := cur[kid]; !ok {
			removed = append(removed, kid)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}
