package assertion

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Options tune a KeyRing. A zero field means its default. Every instance
// that shares a storage should use the same values: the schedule written to
// storage is made by whichever instance was due first.
type Options struct {
	// RotateEvery is how long one key signs.
	RotateEvery time.Duration

	// Overlap is how long a key is published before it may sign and after
	// it stops signing. It must be at least the longest assertion lifetime
	// plus the time upstreams cache the JWKS: an assertion whose exp is
	// more than Overlap after it was signed may outlive its key.
	Overlap time.Duration

	// RefreshEvery is how often the KeyRing re-reads storage to learn the
	// keys that other instances made, and to do the rotation work that is
	// due.
	RefreshEvery time.Duration

	// StorageTimeout bounds one refresh: its reads, the wait for the
	// storage's lock and the write.
	StorageTimeout time.Duration

	// Prefix is the storage key under which the key document and its lock
	// live.
	Prefix string

	// Clock, if set, replaces the real clock and timers: tests use it to
	// move time without sleeping.
	Clock Clock
}

// DefaultOptions are the values a zero Options field stands for.
var DefaultOptions = Options{
	RotateEvery:    24 * time.Hour,
	Overlap:        time.Hour,
	RefreshEvery:   time.Minute,
	StorageTimeout: 30 * time.Second,
	Prefix:         "clerk_auth/identity_assertion",
}

// Clock is where a KeyRing reads the time (to pick the signing key and plan
// rotation) and waits (between refreshes).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// withDefaults fills in the zero fields and rejects values no schedule can
// be made of.
func (o Options) withDefaults() (Options, error) {
	d := DefaultOptions
	pick := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	o.RotateEvery = pick(o.RotateEvery, d.RotateEvery)
	o.Overlap = pick(o.Overlap, d.Overlap)
	o.RefreshEvery = pick(o.RefreshEvery, d.RefreshEvery)
	o.StorageTimeout = pick(o.StorageTimeout, d.StorageTimeout)
	o.Prefix = strings.Trim(o.Prefix, "/")
	if o.Prefix == "" {
		o.Prefix = d.Prefix
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"rotate_every", o.RotateEvery},
		{"overlap", o.Overlap},
		{"refresh_every", o.RefreshEvery},
		{"storage_timeout", o.StorageTimeout},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", f.name, f.v))
		}
	}
	if o.RefreshEvery > o.Overlap {
		// An instance would learn of a key from another one only after
		// upstreams may already need it.
		errs = append(errs, fmt.Errorf("refresh_every %v is longer than overlap %v", o.RefreshEvery, o.Overlap))
	}
	return o, errors.Join(errs...)
}

// lead is how far ahead of now the schedule must always have a key ready:
// half a signing period, so that a storage outage of that long costs
// nothing, and never less than Overlap plus two refresh periods, so that
// every instance has read a new key, and upstream caches have had Overlap to
// learn it, before it signs.
func (o Options) lead() time.Duration {
	return max(o.RotateEvery/2, o.Overlap+2*o.RefreshEvery)
}
