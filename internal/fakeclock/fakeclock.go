// Package fakeclock is a settable clock for tests. Its After channels fire
// only when Advance reaches their deadline, so tests drive the refresh and
// backoff waits of a key set, and the handlers' clock, without sleeping.
package fakeclock

import (
	"sync"
	"testing"
	"time"
)

// Clock is a fake clock, safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []timer
	added  chan struct{} // closed, and replaced, whenever After adds a timer
}

type timer struct {
	at time.Time
	d  time.Duration
	ch chan time.Time
}

// New returns a Clock that reads t until it is advanced.
func New(t time.Time) *Clock {
	return &Clock{now: t, added: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the clock's time once Advance has
// moved it d past now.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, timer{at: c.now.Add(d), d: d, ch: ch})
	close(c.added)
	c.added = make(chan struct{})
	return ch
}

// Advance moves the clock and fires the timers it reaches.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	pending := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.now) {
			pending = append(pending, tm)
			continue
		}
		tm.ch <- c.now
	}
	c.timers = pending
}

// WaitTimer waits until a timer is pending and returns the duration it was
// set for. A key set's fetcher sets one after every attempt, so this is how
// a test knows an attempt has ended and the fetcher is idle: right after
// Advance fired its timer, none is pending until the next attempt ends.
// The deadline only catches a fetcher that never idles: an attempt is
// bounded by the fetch timeout, but a starved machine running -race can
// take many times that.
func (c *Clock) WaitTimer(t testing.TB) time.Duration {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		n, added := len(c.timers), c.added
		if n > 0 {
			d := c.timers[n-1].d
			c.mu.Unlock()
			return d
		}
		c.mu.Unlock()
		select {
		case <-added:
		case <-deadline.C:
			t.Fatal("the key set's fetcher never became idle")
		}
	}
}
