package clustersync

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
)

// Syncer shares a denylist through a storage: it writes the denials this
// instance learns and merges those of every instance. Its methods are safe
// for concurrent use.
type Syncer struct {
	storage certmagic.Storage
	list    *denylist.List
	opts    Options
	log     *zap.Logger
	ownKey  string
	seed    maphash.Seed

	mu      sync.Mutex
	local   map[entryKey]denial // denials learned here
	forgets map[string]int64    // forget marks made here: id → Unix second
	dirty   bool                // local or forgets differ from the document last written
	written []byte              // the document last written; nil if none
	adopted bool                // the first read has run: own document taken over

	round   chan struct{}      // holds a token while a round or write runs
	seen    map[string]seenDoc // documents merged, by key; guarded by round
	applied map[markKey]int64  // other documents' marks applied; guarded by round
	failing bool               // the last round failed (for logging transitions)
	corrupt map[string]bool    // documents already logged as corrupt

	kick      chan struct{}
	ready     chan struct{}
	readyOnce sync.Once

	stats struct {
		rounds, failures, corrupt, pruned, writes atomic.Uint64
		documents                                 atomic.Int64
		lastRead                                  atomic.Int64 // Unix ns of the last complete read
	}

	runMu   sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// seenDoc is a document merged before: the hash of its content, and the
// Unix second its last denial ends or its last mark lapses, after which it
// is pruned.
type seenDoc struct {
	hash uint64
	last int64
}

// Stats count what a Syncer did since it was made, for metrics.
type Stats struct {
	// Rounds counts the rounds completed, failed ones included.
	Rounds uint64
	// Failures counts the rounds and writes that failed on storage.
	Failures uint64
	// Corrupt counts the documents skipped because they could not be
	// decoded, once per round.
	Corrupt uint64
	// Pruned counts the documents deleted because all their entries had
	// expired.
	Pruned uint64
	// Writes counts this instance's documents written.
	Writes uint64
	// Documents is the number of documents the last complete read found.
	Documents int
	// LastRead is when the storage was last read completely; zero if never.
	LastRead time.Time
}

// New returns a Syncer that shares list through storage. It reads nothing
// yet: call Start.
func New(storage certmagic.Storage, list *denylist.List, opts Options, log *zap.Logger) (*Syncer, error) {
	if storage == nil || list == nil {
		return nil, errors.New("sharing the denylist needs a storage and a list")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("denylist sync options: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Syncer{
		storage: storage,
		list:    list,
		opts:    o,
		log:     log,
		ownKey:  path.Join(o.Prefix, o.InstanceID+".json"),
		seed:    maphash.MakeSeed(),
		local:   make(map[entryKey]denial),
		forgets: make(map[string]int64),
		seen:    make(map[string]seenDoc),
		applied: make(map[markKey]int64),
		corrupt: make(map[string]bool),
		kick:    make(chan struct{}, 1),
		round:   make(chan struct{}, 1),
		ready:   make(chan struct{}),
	}, nil
}

// InstanceID is the id that names this instance's document.
func (s *Syncer) InstanceID() string { return s.opts.InstanceID }

// Deny adds entries to the denylist at once and has the background
// goroutine publish them to the storage without waiting for the next
// round. It never waits for storage; Flush does, for a caller that must
// know they are stored.
func (s *Syncer) Deny(entries ...denylist.Entry) {
	s.list.Add(entries...)
	s.mu.Lock()
	for _, e := range entries {
		if e.Kind != denylist.Session && e.Kind != denylist.User || e.ID == "" || len(e.ID) > denylist.MaxIDLen {
			continue
		}
		k := entryKey{e.Kind, e.ID}
		if d := s.local[k].join(denialOf(e)); d != s.local[k] {
			s.local[k] = d
			s.dirty = true
		}
	}
	s.mu.Unlock()
	s.kickWrite()
}

// kickWrite has the background goroutine write the document now.
func (s *Syncer) kickWrite() {
	select {
	case s.kick <- struct{}{}:
	default: // a write is already due
	}
}

// Ready is closed once the storage has been read completely: from then on
// the denylist holds every denial the cluster shared before.
func (s *Syncer) Ready() <-chan struct{} { return s.ready }

// Start runs a first round, waiting for it (within ctx and
// Options.StorageTimeout), then runs one every Options.SyncEvery until
// Stop. It returns the first round's error: the caller may report the
// instance as not ready yet; later rounds keep trying. Only the first call
// starts anything.
func (s *Syncer) Start(ctx context.Context) error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.done != nil || s.stopped {
		return nil
	}
	err := s.Sync(ctx)
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.run(runCtx, s.done)
	return err
}

// Stop ends the goroutine of Start, cancelling storage work under way, and
// returns once it has ended. The denylist stays as it is. It may be called
// more than once.
func (s *Syncer) Stop() {
	s.runMu.Lock()
	s.stopped = true
	cancel, done := s.cancel, s.done
	s.runMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (s *Syncer) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := s.opts.Clock.After(s.opts.SyncEvery)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			s.publish(ctx)
		case <-tick:
			_ = s.Sync(ctx) // reported by Sync
			tick = s.opts.Clock.After(s.opts.SyncEvery)
		}
	}
}

// acquire waits for the round under way, if any, to end; it gives up
// when ctx does.
func (s *Syncer) acquire(ctx context.Context) bool {
	select {
	case s.round <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Syncer) release() { <-s.round }

// publish writes this instance's document if it changed; failures are
// counted and logged, and the next round retries.
func (s *Syncer) publish(ctx context.Context) {
	if err := s.Flush(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("denylist not written to storage: other instances learn of it once it is", zap.String("key", s.ownKey), zap.Error(err))
	}
}

// Flush writes this instance's document now if it holds denials or
// forget marks not yet in storage, waiting for a round or write under way
// first, and returns nil once every denial and mark made here is in
// storage. It gives up when ctx ends; each write is also bounded by
// Options.StorageTimeout. A failure is counted, unless ctx ended it, but
// not logged (the caller says what it means), and leaves the denials and
// marks to the next round.
func (s *Syncer) Flush(ctx context.Context) error {
	if !s.acquire(ctx) {
		return fmt.Errorf("waiting for the round under way: %w", ctx.Err())
	}
	defer s.release()
	tctx, cancel := context.WithTimeout(ctx, s.opts.StorageTimeout)
	defer cancel()
	err := s.write(tctx)
	if err != nil && ctx.Err() == nil {
		s.stats.failures.Add(1)
	}
	return err
}

// Sync runs one round: it reads every document, merges their denials into
// the denylist, calls Options.OnForget for the other instances' marks not
// applied yet, and deletes documents with nothing left in force; then it
// writes this instance's document if it changed. It returns the first
// storage failure; what it could read is merged regardless.
func (s *Syncer) Sync(ctx context.Context) error {
	if !s.acquire(ctx) {
		return fmt.Errorf("waiting for the round under way: %w", ctx.Err())
	}
	defer s.release()
	tctx, cancel := context.WithTimeout(ctx, s.opts.StorageTimeout)
	defer cancel()
	readErr := s.read(tctx)
	writeErr := s.write(tctx) // after the read: the first one takes over the own document
	err := errors.Join(readErr, writeErr)
	s.list.Prune()
	s.report(ctx, err)
	if readErr == nil {
		s.stats.lastRead.Store(s.opts.Clock.Now().UnixNano())
		s.readyOnce.Do(func() { close(s.ready) })
	}
	s.stats.rounds.Add(1)
	return err
}

// report logs the start and the end of a run of failed rounds. A round cut
// short by its caller is not a failure of the storage.
func (s *Syncer) report(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	switch {
	case err != nil:
		s.stats.failures.Add(1)
		if !s.failing {
			s.log.Error("denylist storage unusable: serving the last good denylist", zap.String("prefix", s.opts.Prefix), zap.Error(err))
		}
		s.failing = true
	case s.failing:
		s.failing = false
		s.log.Info("denylist storage usable again", zap.String("prefix", s.opts.Prefix))
	}
}

// Stats returns the Syncer's counters.
func (s *Syncer) Stats() Stats {
	st := Stats{
		Rounds:    s.stats.rounds.Load(),
		Failures:  s.stats.failures.Load(),
		Corrupt:   s.stats.corrupt.Load(),
		Pruned:    s.stats.pruned.Load(),
		Writes:    s.stats.writes.Load(),
		Documents: int(s.stats.documents.Load()),
	}
	if ns := s.stats.lastRead.Load(); ns != 0 {
		st.LastRead = time.Unix(0, ns)
	}
	return st
}

// cmpErr keeps the first error.
func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}
