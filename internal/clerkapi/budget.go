package clerkapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// bucket is a token bucket shared by every call of a Client: rate tokens a
// second, at most burst saved up. A call that finds it empty is refused at
// once rather than queued: a flood must not pile up waiting page loads, and
// the caller's 503 carries the wait as Retry-After.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(rate float64, burst int, now func() time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// take spends one token, or reports how long until one will be there.
func (b *bucket) take() (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	// A clock that steps back refills nothing rather than draining.
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(b.burst, b.tokens+elapsed.Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration(math.Ceil((1 - b.tokens) / b.rate * float64(time.Second)))
}

// flights lets concurrent calls for the same value share one run of a
// function producing a T. Keys are hashes, so the nonces and tokens in
// flight are not kept as map keys.
type flights[T any] struct {
	mu     sync.Mutex
	m      map[[sha256.Size]byte]*flight[T]
	joined atomic.Int64 // callers that joined a run in flight, counted as they join
}

type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// do runs fn once for every caller that asks for key while it runs. fn
// gets a context that keeps ctx's values but not its cancellation: one
// caller giving up must not fail the others, so each caller stops waiting
// on its own ctx instead, and fn must bound itself.
//
// If cached is not nil, a caller that finds no run for key asks it first,
// under the lock a run takes to leave; a run that stores its result where
// cached finds it, before it ends, is thus never repeated by a caller that
// looked just before it stored. hit reports an answer from cached.
func (f *flights[T]) do(ctx context.Context, key [sha256.Size]byte, cached func() (T, error, bool), fn func(context.Context) (T, error)) (val T, err error, hit bool) {
	f.mu.Lock()
	fl, joined := f.m[key]
	switch {
	case joined:
		f.joined.Add(1)
	case cached != nil:
		if val, err, hit = cached(); hit {
			f.mu.Unlock()
			return val, err, true
		}
		fallthrough
	default:
		if f.m == nil {
			f.m = make(map[[sha256.Size]byte]*flight[T])
		}
		fl = &flight[T]{done: make(chan struct{})}
		f.m[key] = fl
		go func() {
			fl.val, fl.err = fn(context.WithoutCancel(ctx))
			f.mu.Lock()
			delete(f.m, key)
			f.mu.Unlock()
			close(fl.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-fl.done:
		return fl.val, fl.err, false
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err(), false
	}
}

// callKey is the flight key of endpoint resolving value: only a hash of the
// value is kept. It is hashed from a buffer on the stack, which holds any
// value this package sends, since a cache hit pays for it on every request.
func callKey(endpoint, value string) [sha256.Size]byte {
	var buf [1024]byte
	b := append(append(append(buf[:0], endpoint...), 0), value...)
	return sha256.Sum256(b)
}

// exchange sends k if the bucket has a token for it and decodes a 2xx
// answer with decode, telling the observer either way: a refusal as
// Limited, a request's outcome, decoded, as a Call. Every failure is an
// *Error.
func exchange[T any](ctx context.Context, c *Client, k call, decode func([]byte) (T, error)) (T, error) {
	var zero T
	if ok, wait := c.bucket.take(); !ok {
		c.stats.limited.Add(1)
		c.observer.limited(k.endpoint)
		return zero, &Error{Kind: ErrRateLimited, Endpoint: k.endpoint, RetryAfter: wait}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := c.send(ctx, k)
	var val T
	if err == nil {
		val, err = decode(body)
	}
	c.observer.call(k.endpoint, resultOf(err))
	if err != nil {
		return zero, err
	}
	return val, nil
}

// ownError makes the error of a caller whose own context ended while it
// waited on a flight an *Error like the others.
func ownError(endpoint string, err error) error {
	var e *Error
	if err != nil && !errors.As(err, &e) {
		return transportError(endpoint, err)
	}
	return err
}
