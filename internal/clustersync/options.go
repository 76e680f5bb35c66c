package clustersync

import (
	"crypto/rand"
	"errors"
	"strings"
	"time"
)

// Options tune a Syncer. A zero field means its default. Every instance
// that shares a storage must use the same Prefix.
type Options struct {
	// SyncEvery is how often the storage is read: the longest an instance
	// takes to learn a denial another instance wrote. Default 5s.
	SyncEvery time.Duration

	// StorageTimeout bounds one round of storage work. Default 10s.
	StorageTimeout time.Duration

	// Prefix is the storage key under which the instances' documents live.
	// Default "clerk_auth/denylist".
	Prefix string

	// InstanceID names this instance's document. Default: an id drawn at
	// random once per process, so that a Syncer made by a config reload
	// takes over the document of the one it replaces. Two Syncers that
	// run at once over one storage and Prefix need distinct ids.
	InstanceID string

	// ForgetRetention is how long a forget mark (Syncer.Forget) stays in
	// its document; a mark older than that is dropped and never applied.
	// Default 10m: twice the lifetime of the enrichment cache, so that by
	// then every instance has refreshed what it cached of the id anyway
	// and the mark has nothing left to drop, with room for clocks that
	// differ and a storage that failed for a while. It must be longer than
	// SyncEvery, or a mark could lapse before another instance reads it.
	ForgetRetention time.Duration

	// OnForget, if set, is called with the id of each forget mark that
	// another instance wrote, once per mark, from the round that reads it;
	// a mark of this instance's own document is not applied again. It
	// must not call the Syncer's methods that wait for a round (Sync,
	// Flush).
	OnForget func(id string)

	// Clock, if set, replaces the real clock and timers: tests move time
	// without sleeping.
	Clock Clock
}

// Defaults of Options.
const (
	DefaultSyncEvery       = 5 * time.Second
	DefaultStorageTimeout  = 10 * time.Second
	DefaultPrefix          = "clerk_auth/denylist"
	DefaultForgetRetention = 10 * time.Minute
)

// Clock is where a Syncer reads the time (to drop expired entries) and
// waits (between rounds).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// processID is the default InstanceID: random, and the same for every
// Syncer of this process.
var processID = strings.ToLower(rand.Text())

func (o Options) withDefaults() (Options, error) {
	if o.SyncEvery < 0 || o.StorageTimeout < 0 || o.ForgetRetention < 0 {
		return o, errors.New("negative durations")
	}
	if o.SyncEvery == 0 {
		o.SyncEvery = DefaultSyncEvery
	}
	if o.StorageTimeout == 0 {
		o.StorageTimeout = DefaultStorageTimeout
	}
	if o.ForgetRetention == 0 {
		o.ForgetRetention = DefaultForgetRetention
	}
	if o.ForgetRetention <= o.SyncEvery {
		return o, errors.New("the forget retention must be longer than the sync period")
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.InstanceID == "" {
		o.InstanceID = processID
	}
	if strings.ContainsAny(o.InstanceID, "/\\") || o.InstanceID == "." || o.InstanceID == ".." {
		return o, errors.New("the instance id must be usable as a storage key's last segment")
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	return o, nil
}
