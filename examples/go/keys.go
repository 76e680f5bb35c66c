package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// errKeysUnavailable is wrapped by the errors of keySet.lookup when the key
// set could not be had: Caddy down or unreachable, a timeout, an answer
// other than 200, or a body that is no key set. That is an outage, not a
// bad assertion, so the app answers 503 with Retry-After, never 401: a
// client must retry, not sign the user out.
var errKeysUnavailable = errors.New("identity assertion keys unavailable")

// refetchEvery is the least time between two fetches forced by a kid the
// cached key set lacks. Caddy publishes a key 12 hours before it signs with
// it, so such a kid is, but after an emergency key change, a made-up one:
// a flood of them must cost Caddy one fetch, not a flood of fetches.
const refetchEvery = 30 * time.Second

// keySet is the JWKS at url, in a jwk.Cache: fetched on first use (so the
// app may start before Caddy) and refreshed in the background every 5
// minutes, a failed refresh keeping the last good keys.
type keySet struct {
	cache *jwk.Cache
	url   string
	now   func() time.Time

	// fetched is set once a fetch succeeded. Before that the cache holds
	// no set, and after a failed first fetch it would not try again before
	// its next scheduled refresh: so until then every lookup fetches.
	fetched atomic.Bool

	mu        sync.Mutex
	refetched time.Time // the last fetch forced by an unknown kid
}

func newKeySet(url string, client *http.Client, now func() time.Time) (*keySet, error) {
	cache := jwk.NewCache(context.Background())
	err := cache.Register(url, jwk.WithMinRefreshInterval(5*time.Minute), jwk.WithHTTPClient(client))
	if err != nil {
		return nil, err
	}
	return &keySet{cache: cache, url: url, now: now}, nil
}

// lookup returns the key named kid. A kid the cached set lacks is fetched
// anew, at most once per refetchEvery; one still unknown after that is
// the assertion's fault. An error wrapping errKeysUnavailable says the key
// set could not be fetched.
func (k *keySet) lookup(ctx context.Context, kid string) (jwk.Key, error) {
	set, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	if key, ok := set.LookupKeyID(kid); ok {
		return key, nil
	}
	if !k.mayRefetch() {
		return nil, fmt.Errorf("no key %q in the key set (fetched anew less than %v ago)", kid, refetchEvery)
	}
	if set, err = k.cache.Refresh(ctx, k.url); err != nil {
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	if key, ok := set.LookupKeyID(kid); ok {
		return key, nil
	}
	return nil, fmt.Errorf("no key %q in the key set, even fetched anew", kid)
}

// current is the cached key set, fetched now if no fetch succeeded yet.
func (k *keySet) current(ctx context.Context) (set jwk.Set, err error) {
	if k.fetched.Load() {
		set, err = k.cache.Get(ctx, k.url)
	} else {
		set, err = k.cache.Refresh(ctx, k.url)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	k.fetched.Store(true)
	return set, nil
}

// mayRefetch reports whether an unknown kid may force a fetch now, and if
// so, starts a new refetchEvery.
func (k *keySet) mayRefetch() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if !k.refetched.IsZero() && now.Sub(k.refetched) < refetchEvery {
		return false
	}
	k.refetched = now
	return true
}
