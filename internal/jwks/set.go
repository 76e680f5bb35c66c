// Package jwks keeps the RSA signing keys of a JSON Web Key Set at hand for
// token verification. A Set fetches in the background, never lets a bad
// response replace good keys, keeps serving them through an outage up to
// Options.MaxStale, and throttles the fetches that requests can trigger so a
// flood of unknown kids or forged signatures cannot turn into a flood of
// requests to the issuer.
//
// It knows nothing of Caddy or of metrics libraries: its caller shares Sets
// (a Set's Destruct is that of a caddy.Destructor), counts fetches through
// Options.OnFetch, and reports the live Sets' Stats.
package jwks

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

var (
	// ErrUnavailable is returned by Key and Refetch when the Set holds no
	// keys younger than Options.MaxStale: the issuer could not be reached,
	// which says nothing about the token.
	ErrUnavailable = errors.New("no signing keys available")
	// ErrUnknownKID is wrapped by the error of Key and Refetch when the Set
	// has keys but none under the token's kid.
	ErrUnknownKID = errors.New("kid not found in key set")
)

// maxKIDInError keeps an attacker-chosen kid short in errors and logs.
const maxKIDInError = 40

// A failed background fetch is retried after a wait that doubles from
// minRetryBackoff up to maxRetryBackoff (or the refresh period, if shorter).
// Each wait is jittered so that many Caddy instances that lost Clerk at the
// same moment do not all come back to it in lockstep.
const (
	minRetryBackoff = 250 * time.Millisecond
	maxRetryBackoff = 30 * time.Second
)

// fetchCall is one fetch attempt that every concurrent trigger waits for.
type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// Set is a JWKS cache, meant to be shared by every verifier that uses the
// same key source, across config reloads. Its methods are safe for
// concurrent use.
type Set struct {
	url    string
	source string      // url as logs and metrics show it: nothing secret
	header http.Header // may hold a Clerk secret key: never logged
	opts   Options     // with defaults, Clock and OnFetch filled in
	client *http.Client
	logger *zap.Logger

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

// New makes a Set that fetches jwksURL, sending header (which may hold a
// secret and is never logged) with every request. Nothing is fetched in the
// background until Start.
func New(jwksURL string, header http.Header, opts Options, logger *zap.Logger) *Set {
	opts = opts.withDefaults()
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.OnFetch == nil {
		opts.OnFetch = func(string, string) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Set{
		url:     jwksURL,
		source:  redactURL(jwksURL),
		header:  header.Clone(),
		opts:    opts,
		client:  &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		logger:  logger,
		keys:    map[string]rsaKey{},
		settled: make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// URL is the URL the Set fetches, as given to New: it may hold a secret.
func (s *Set) URL() string { return s.url }

// HasHeader reports whether New was given a header to send with every
// fetch; the header itself stays inside, since it may hold a secret key.
func (s *Set) HasHeader() bool { return s.header != nil }

// Settled is closed once the first fetch attempt has ended, whatever its
// outcome; Key waits for it too.
func (s *Set) Settled() <-chan struct{} { return s.settled }

// Start launches the background fetcher and makes the Set live (see Live).
// Call it once. It never waits for the network.
func (s *Set) Start() {
	track(s)
	s.wg.Add(1)
	go s.run()
}

func (s *Set) run() {
	defer s.wg.Done()
	s.fetchUntilOK(TriggerStartup)
	for s.sleep(s.opts.Refresh) {
		s.fetchUntilOK(TriggerRefresh)
	}
}

// sleep waits d on the Set's clock and reports false if the set was
// destructed meanwhile.
func (s *Set) sleep(d time.Duration) bool {
	select {
	case <-s.ctx.Done():
		return false
	case <-s.opts.Clock.After(d):
		return true
	}
}

// fetchUntilOK retries a failed fetch with exponential backoff and jitter
// until one succeeds or the set is destructed. The keys in hand stay in
// service meanwhile, up to MaxStale.
func (s *Set) fetchUntilOK(trigger string) {
	ceiling := min(maxRetryBackoff, s.opts.Refresh)
	backoff := min(minRetryBackoff, ceiling)
	for attempt := 1; ; attempt++ {
		err := s.fetchShared(trigger, attempt)
		s.settle.Do(func() { close(s.settled) })
		if err == nil {
			return
		}
		var se *statusError
		if errors.As(err, &se) && se.invalidSecret {
			// A wrong secret key does not fix itself: retrying fast only
			// hammers Clerk's API with it.
			backoff = ceiling
		}
		if !s.sleep(jitter(backoff)) {
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
// them; a Set is no longer live once it returns. A caller sharing the Set
// (Caddy's UsagePool) calls it when its last user is done with it.
func (s *Set) Destruct() error {
	untrack(s)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.client.CloseIdleConnections()
	return nil
}

// Key returns the RSA key for kid and, when the key set pins one, the only
// algorithm that key may be used with ("" = any RS*). An unknown kid may be
// a key Clerk has just rotated in, so it triggers a refetch, throttled and
// shared; the error then wraps ErrUnknownKID if kid is still unknown.
func (s *Set) Key(ctx context.Context, kid string) (*rsa.PublicKey, string, error) {
	// A request that arrives while the first fetch is still running waits for
	// it (the attempt is bounded by the fetch timeout) rather than failing
	// just because Caddy started a moment ago.
	select {
	case <-s.settled:
	case <-ctx.Done():
		return nil, "", ErrUnavailable
	}
	pub, alg, err := s.cached(kid)
	if !errors.Is(err, ErrUnknownKID) || kid == "" {
		return pub, alg, err
	}
	// Unknown kid: perhaps Clerk rotated keys. Refetch, throttled and shared.
	s.kick(ctx, TriggerKIDMiss)
	return s.cached(kid)
}

// Refetch is for a signature that failed with the cached key for kid: Clerk
// may have rotated the key under the same kid. It refetches, throttled and
// shared with kid misses, and returns the key for kid as it then stands,
// which is the same key if the fetch was throttled or changed nothing.
func (s *Set) Refetch(ctx context.Context, kid string) (*rsa.PublicKey, string, error) {
	s.kick(ctx, TriggerSignature)
	return s.cached(kid)
}

// cached answers from the keys in hand: ErrUnavailable if there are none
// younger than MaxStale, ErrUnknownKID if kid is not among them.
func (s *Set) cached(kid string) (*rsa.PublicKey, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) == 0 || s.opts.Clock.Now().Sub(s.fetchedAt) > s.opts.MaxStale {
		return nil, "", ErrUnavailable
	}
	if k, ok := s.keys[kid]; ok {
		return k.pub, k.alg, nil
	}
	if kid == "" {
		return nil, "", fmt.Errorf("%w: token has no kid", ErrUnknownKID)
	}
	if len(kid) > maxKIDInError {
		kid = kid[:maxKIDInError] + "…"
	}
	return nil, "", fmt.Errorf("%w: %q", ErrUnknownKID, kid)
}

// Current reports whether pub is the key the Set holds for kid and the keys
// are younger than MaxStale. It never fetches. A key that a refetch
// replaced with an equal one stays current.
func (s *Set) Current(kid string, pub *rsa.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Clock.Now().Sub(s.fetchedAt) > s.opts.MaxStale {
		return false
	}
	k, ok := s.keys[kid]
	return ok && (k.pub == pub || k.pub.Equal(pub))
}

// KIDs lists, sorted, the key ids the Set holds now.
func (s *Set) KIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.keys))
	for kid := range s.keys {
		out = append(out, kid)
	}
	sort.Strings(out)
	return out
}

// kick starts a request-triggered fetch, at most once per MinInterval, and
// waits for it, or for the fetch already running, whatever triggered it. The
// fetch runs on the set's own context, so a caller that gives up does not
// cancel it for the others.
func (s *Set) kick(ctx context.Context, trigger string) {
	s.mu.Lock()
	c := s.inflight
	if c == nil && !s.closed && s.opts.Clock.Now().Sub(s.lastKick) >= s.opts.MinInterval {
		s.lastKick = s.opts.Clock.Now()
		c = s.beginLocked()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.finish(c, s.attempt(trigger, 1))
		}()
	}
	s.mu.Unlock()
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
func (s *Set) fetchShared(trigger string, attempt int) error {
	s.mu.Lock()
	c, lead := s.inflight, false
	if c == nil {
		c, lead = s.beginLocked(), true
	}
	s.mu.Unlock()
	if lead {
		s.finish(c, s.attempt(trigger, attempt))
	}
	<-c.done
	return c.err
}

func (s *Set) beginLocked() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	s.inflight = c
	return c
}

func (s *Set) finish(c *fetchCall, err error) {
	c.err = err
	s.mu.Lock()
	s.inflight = nil
	s.mu.Unlock()
	close(c.done)
}
