package assertion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// KeyRing holds the identity assertion keys of one storage: it signs with
// the key whose turn it is and publishes the JWKS of every key upstreams may
// meet. Sign and JWKS only read memory; the storage is read by Refresh,
// which the goroutine of Start runs every Options.RefreshEvery. Its methods
// are safe for concurrent use.
type KeyRing struct {
	storage certmagic.Storage
	opts    Options
	log     *zap.Logger
	docKey  string // storage key of the document
	lock    string // storage lock that guards changes to it

	cur atomic.Pointer[state] // nil until storage was first read

	refreshMu sync.Mutex // one refresh at a time
	errMu     sync.Mutex
	lastErr   error // of the last refresh, nil if it succeeded

	runMu   sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// state is what one good read of the storage gave: immutable once stored
// in KeyRing.cur.
type state struct {
	raw  []byte // the document as read, nil if there was none
	keys []*key // sorted by signFrom
	jwks []byte
	etag string
}

// Minimum wait before a failed refresh is retried; it doubles up to
// Options.RefreshEvery.
const minRetry = time.Second

// New returns a KeyRing over storage. It reads nothing yet: call Start, or
// Refresh to wait for a first read.
func New(storage certmagic.Storage, opts Options, log *zap.Logger) (*KeyRing, error) {
	if storage == nil {
		return nil, errors.New("identity assertion keys need a storage")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("identity assertion key options: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &KeyRing{
		storage: storage,
		opts:    o,
		log:     log,
		docKey:  o.Prefix + "/keys.json",
		lock:    o.Prefix + "/keys",
	}, nil
}

// Start runs Refresh at once and then every Options.RefreshEvery (sooner,
// backing off, after a failure) until Stop. Only the first call starts
// anything.
func (r *KeyRing) Start() {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if r.done != nil || r.stopped {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.run(ctx, r.done)
}

// Stop ends the goroutine of Start, cancelling a refresh under way, and
// returns once it has ended. The keys stay usable; the KeyRing no longer
// learns of new ones. It may be called more than once.
func (r *KeyRing) Stop() {
	r.runMu.Lock()
	r.stopped = true
	cancel, done := r.cancel, r.done
	r.runMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (r *KeyRing) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	retry := minRetry
	for {
		wait := r.opts.RefreshEvery
		if err := r.Refresh(ctx); err != nil {
			wait = min(retry, wait)
			retry = min(2*retry, r.opts.RefreshEvery) // capped, so it never overflows
		} else {
			retry = minRetry
		}
		select {
		case <-ctx.Done():
			return
		case <-r.opts.Clock.After(wait):
		}
	}
}

// Refresh reads the storage, does the rotation work that is due (under the
// storage's lock), and makes what it read the keys that Sign and JWKS use.
// On error the last good keys stay; the error (also logged) never holds key
// material.
func (r *KeyRing) Refresh(ctx context.Context) error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	tctx, cancel := context.WithTimeout(ctx, r.opts.StorageTimeout)
	defer cancel()
	err := r.refresh(tctx)
	r.report(ctx, err)
	return err
}

func (r *KeyRing) refresh(ctx context.Context) error {
	raw, keys, err := r.read(ctx)
	if err != nil {
		if cur := r.cur.Load(); cur != nil {
			r.adopt(cur.raw, cur.keys) // time still moves the JWKS on
		}
		return err
	}
	if due(keys, r.opts.Clock.Now(), r.opts) {
		var newRaw []byte
		var newKeys []*key
		newRaw, newKeys, err = r.maintain(ctx)
		if err == nil {
			raw, keys = newRaw, newKeys
		}
	}
	r.adopt(raw, keys)
	return err
}

// read loads and decodes the document. A missing document is no keys, not
// an error: it is how a cluster starts, and how an operator revokes every
// key at once.
func (r *KeyRing) read(ctx context.Context) ([]byte, []*key, error) {
	raw, err := r.storage.Load(ctx, r.docKey)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading identity assertion keys from storage: %w", err)
	}
	if cur := r.cur.Load(); cur != nil && cur.raw != nil && bytes.Equal(raw, cur.raw) {
		return cur.raw, cur.keys, nil
	}
	keys, err := decodeDocument(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s in storage: %w", r.docKey, err)
	}
	return raw, keys, nil
}

// maintain takes the storage's lock, re-reads the document (another
// instance may have done the work while this one waited) and writes the
// planned schedule if it differs.
func (r *KeyRing) maintain(ctx context.Context) ([]byte, []*key, error) {
	if err := r.storage.Lock(ctx, r.lock); err != nil {
		return nil, nil, fmt.Errorf("locking identity assertion keys in storage: %w", err)
	}
	defer func() {
		if err := r.storage.Unlock(context.WithoutCancel(ctx), r.lock); err != nil {
			r.log.Warn("unlocking identity assertion keys in storage", zap.Error(err))
		}
	}()
	raw, keys, err := r.read(ctx)
	if err != nil {
		return nil, nil, err
	}
	now := r.opts.Clock.Now()
	next, added, pruned, err := plan(keys, now, r.opts)
	if err != nil {
		return nil, nil, fmt.Errorf("generating an identity assertion key: %w", err)
	}
	if len(added) == 0 && len(pruned) == 0 {
		return raw, keys, nil
	}
	newRaw, err := encodeDocument(next)
	if err != nil {
		return nil, nil, err
	}
	if err := r.storage.Store(ctx, r.docKey, newRaw); err != nil {
		return nil, nil, fmt.Errorf("writing identity assertion keys to storage: %w", err)
	}
	for _, k := range added {
		r.log.Info("identity assertion key generated",
			zap.String("kid", k.kid), zap.Time("sign_from", k.signFrom),
			zap.Time("sign_until", k.signUntil), zap.Time("publish_until", k.publishUntil))
	}
	for _, k := range pruned {
		r.log.Info("identity assertion key pruned", zap.String("kid", k.kid))
	}
	return newRaw, next, nil
}

// adopt makes keys, read as raw, the current state, rebuilding the JWKS only
// if the published keys changed.
func (r *KeyRing) adopt(raw []byte, keys []*key) {
	now := r.opts.Clock.Now()
	var published []*key
	for _, k := range keys {
		if now.Before(k.publishUntil) {
			published = append(published, k)
		}
	}
	body, etag := buildJWKS(published)
	if cur := r.cur.Load(); cur != nil && bytes.Equal(cur.raw, raw) && cur.etag == etag {
		return
	}
	r.cur.Store(&state{raw: raw, keys: keys, jwks: body, etag: etag})
}

// report records the outcome of a refresh and logs failures, and the
// recovery after them. A refresh cut short by its caller is not a failure
// of the storage.
func (r *KeyRing) report(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	r.errMu.Lock()
	prev := r.lastErr
	r.lastErr = err
	r.errMu.Unlock()
	switch {
	case err == nil && prev != nil:
		r.log.Info("identity assertion keys readable again", zap.String("prefix", r.opts.Prefix))
	case err != nil && r.signer(r.opts.Clock.Now()) == nil:
		r.log.Error("identity assertion keys unavailable: assertions cannot be signed",
			zap.String("prefix", r.opts.Prefix), zap.Error(err))
	case err != nil:
		r.log.Warn("identity assertion keys not refreshed: signing with the last good keys",
			zap.String("prefix", r.opts.Prefix), zap.Error(err))
	}
}

func (r *KeyRing) lastError() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.lastErr
}

// Keys describes the keys the KeyRing holds, in signing order, published or
// not yet pruned.
func (r *KeyRing) Keys() []KeyInfo {
	cur := r.cur.Load()
	if cur == nil {
		return nil
	}
	out := make([]KeyInfo, len(cur.keys))
	for i, k := range cur.keys {
		out[i] = k.info()
	}
	return out
}

// String describes the KeyRing by its storage prefix and kids, never its
// keys.
func (r *KeyRing) String() string {
	cur := r.cur.Load()
	if cur == nil {
		return fmt.Sprintf("assertion.KeyRing(%s, not loaded)", r.opts.Prefix)
	}
	kids := make([]string, len(cur.keys))
	for i, k := range cur.keys {
		kids[i] = k.kid
	}
	return fmt.Sprintf("assertion.KeyRing(%s, kids %v)", r.opts.Prefix, kids)
}

// GoString is String, so that %#v shows no key either.
func (r *KeyRing) GoString() string { return r.String() }

// MarshalJSON gives the storage prefix and the public KeyInfo of each key.
func (r *KeyRing) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Prefix string    `json:"prefix"`
		Keys   []KeyInfo `json:"keys"`
	}{r.opts.Prefix, r.Keys()})
}
