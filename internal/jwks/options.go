package jwks

import "time"

// Options tune one Set. A caller that shares a Set between users (as the
// Caddy handler does) takes them from the user that creates it. A zero
// duration means its default.
type Options struct {
	Refresh     time.Duration // background refresh period
	MinInterval time.Duration // least time between request-triggered fetches
	Timeout     time.Duration // per fetch attempt, body included
	MaxStale    time.Duration // serve the last good keys at most this long

	// OnFetch, if set, is told the result (FetchOK, FetchUnchanged,
	// FetchError) and trigger (Trigger*) of every fetch attempt, except the
	// ones FetchOnce makes and the ones cut short by Destruct. It is how
	// fetches are counted without this package knowing of any metrics
	// library. It must be quick and safe for concurrent use.
	OnFetch func(result, trigger string)

	// Clock, if set, replaces the real clock and timers: tests use it to
	// move time without sleeping.
	Clock Clock
}

// DefaultOptions are the durations a zero Options field stands for.
var DefaultOptions = Options{
	Refresh:     15 * time.Minute,
	MinInterval: 30 * time.Second,
	Timeout:     5 * time.Second,
	MaxStale:    24 * time.Hour,
}

// withDefaults fills in the zero durations, so a caller sets only what is
// configured.
func (o Options) withDefaults() Options {
	pick := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	d := DefaultOptions
	o.Refresh = pick(o.Refresh, d.Refresh)
	o.MinInterval = pick(o.MinInterval, d.MinInterval)
	o.Timeout = pick(o.Timeout, d.Timeout)
	o.MaxStale = pick(o.MaxStale, d.MaxStale)
	return o
}

// Clock is where a Set reads the time (for the age of its keys and its
// throttle) and waits (for refreshes and retry backoff).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
