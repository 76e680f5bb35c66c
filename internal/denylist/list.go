package denylist

import (
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is what a denial names: a session, or a user.
type Kind uint8

// Kinds of denial. None is what Check returns for a request nothing denies.
const (
	None Kind = iota
	Session
	User
)

// String names the kind as reason codes and logs spell it.
func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case Session:
		return "session"
	case User:
		return "user"
	}
	return "unknown"
}

// Entry is one denial: the tokens of session or user ID issued at or
// before IssuedBefore (plus SkewMargin) are refused until Until.
type Entry struct {
	Kind  Kind
	ID    string
	Until time.Time
	// IssuedBefore is when Clerk revoked the session or denied the user:
	// Clerk mints no token for it afterwards, so a later token was minted
	// after an unban, or for a new session, and passes. The zero time
	// refuses every token.
	IssuedBefore time.Time
}

// SkewMargin widens every denial with an IssuedBefore to the tokens issued
// up to this long after it: Clerk's token issuer and the clock that dates
// its events are different machines, and a token minted just before the
// revocation must not pass because its iat is a little ahead.
const SkewMargin = 5 * time.Second

// DefaultMaxEntries is the cap a zero Options.MaxEntries stands for: about
// 84 MB of session ids (TestMemory measures 80 bytes per entry).
const DefaultMaxEntries = 1 << 20

// MaxIDLen is the longest id an entry may have. Clerk's ids (sess_…,
// user_…) are about 32 bytes; the bound keeps the memory per entry bounded
// whatever a caller passes.
const MaxIDLen = 128

// evictTo is the share of MaxEntries that an eviction leaves, so that a
// list at its cap evicts in batches rather than on every Add.
const evictTo = 15.0 / 16

const shardCount = 256 // a power of two: the shard is the hash's low bits

// Options tune a List. A zero field means its default.
type Options struct {
	// MaxEntries caps the number of entries, expired ones not yet dropped
	// included. Default DefaultMaxEntries.
	MaxEntries int

	// Now, if set, replaces time.Now for the expiry that writes prune by;
	// tests use it to move time without sleeping. Look-ups take the time
	// from their caller.
	Now func() time.Time
}

// Stats describe a List at one moment.
type Stats struct {
	// Entries is the number of entries held, some perhaps expired and not
	// yet dropped.
	Entries int
	// Evicted counts the unexpired entries dropped to keep the cap since
	// the List was made: each is a denial lifted early.
	Evicted uint64
}

// List is a set of denied sessions and users, each until its expiry. Check
// is safe to call from any number of goroutines while others write.
type List struct {
	seed maphash.Seed
	now  func() time.Time
	max  int

	shards [2][shardCount]atomic.Pointer[shard] // by Kind-1, then hash
	size   atomic.Int64                         // entries in shards

	mu      sync.Mutex // held by writers only
	soonest int64      // no entry expires before this (Unix ns); MaxInt64 if empty
	evicted atomic.Uint64
}

// shard maps an id to its denial. A stored shard is never modified:
// writers replace it.
type shard map[string]denial

// denial is an Entry as a shard holds it, in Unix nanoseconds: until when
// it lasts, and the latest iat it refuses, SkewMargin included
// (math.MaxInt64 for every token).
type denial struct {
	until, upTo int64
}

// join is the denial that refuses what either d or o refuses: both bounds
// only grow, so joins in any order give the same denial.
func (d denial) join(o denial) denial {
	return denial{max(d.until, o.until), max(d.upTo, o.upTo)}
}

// New returns an empty List.
func New(opts Options) *List {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &List{seed: maphash.MakeSeed(), now: opts.Now, max: opts.MaxEntries, soonest: math.MaxInt64}
}

// Check reports what denies, at now, a token of sessionID and userID
// issued at issuedAt: Session if the session is denied, else User if the
// user is, else None. A token without iat (the zero issuedAt) counts as
// issued at the beginning of time: every live denial of its ids refuses
// it. An empty id is never denied. It takes no lock and allocates
// nothing.
func (l *List) Check(sessionID, userID string, issuedAt, now time.Time) Kind {
	if l.size.Load() == 0 {
		return None
	}
	n := now.UnixNano()
	if sessionID != "" && l.denied(Session, sessionID, issuedAt, n) {
		return Session
	}
	if userID != "" && l.denied(User, userID, issuedAt, n) {
		return User
	}
	return None
}

func (l *List) denied(k Kind, id string, issuedAt time.Time, now int64) bool {
	s := l.slot(k, id).Load()
	if s == nil {
		return false
	}
	d, ok := (*s)[id]
	if !ok || now >= d.until {
		return false
	}
	return issuedAt.IsZero() || unixNanos(issuedAt) <= d.upTo
}

// unixNanos is t in Unix nanoseconds, saturated where UnixNano is
// undefined (before 1678, after 2262): an iat or a date far out must not
// wrap around.
func unixNanos(t time.Time) int64 {
	switch s := t.Unix(); {
	case s < math.MinInt64/int64(time.Second):
		return math.MinInt64
	case s >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// denialOf is e as a shard holds it.
func denialOf(e Entry) denial {
	d := denial{until: unixNanos(e.Until), upTo: math.MaxInt64}
	if !e.IssuedBefore.IsZero() {
		d.upTo = unixNanos(e.IssuedBefore)
		if d.upTo < math.MaxInt64-int64(SkewMargin) {
			d.upTo += int64(SkewMargin)
		}
	}
	return d
}

func (l *List) slot(k Kind, id string) *atomic.Pointer[shard] {
	return &l.shards[k-1][maphash.String(l.seed, id)&(shardCount-1)]
}

// Add denies each entry until its Until, or joins it with the entry
// already held for its id (the later Until, the later IssuedBefore), and
// reports how many entries were new or widened. Entries of no known Kind, with an empty id or one longer than MaxIDLen,
// or whose Until has passed are ignored. Each touched shard is copied once
// per call: callers with many entries should pass them together.
func (l *List) Add(entries ...Entry) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now().UnixNano()
	if now >= l.soonest {
		l.pruneLocked(now)
	}
	type slotKey struct {
		k   Kind
		idx uint64
	}
	copies := make(map[slotKey]shard)
	changed := 0
	size := l.size.Load()
	for _, e := range entries {
		d := denialOf(e)
		if (e.Kind != Session && e.Kind != User) || e.ID == "" || len(e.ID) > MaxIDLen || d.until <= now {
			continue
		}
		key := slotKey{e.Kind, maphash.String(l.seed, e.ID) & (shardCount - 1)}
		s, ok := copies[key]
		if !ok {
			s = cloneLive(l.shards[key.k-1][key.idx].Load(), now, 1)
			size -= int64(l.shardLen(key.k, key.idx) - len(s))
			copies[key] = s
		}
		old, held := s[e.ID]
		if held {
			if d = old.join(d); d == old {
				continue
			}
		} else {
			size++
		}
		s[e.ID] = d
		l.soonest = min(l.soonest, d.until)
		changed++
	}
	for key, s := range copies {
		l.shards[key.k-1][key.idx].Store(&s)
	}
	l.size.Store(size)
	if size > int64(l.max) {
		l.pruneLocked(now)
		if l.size.Load() > int64(l.max) {
			l.evictLocked()
		}
	}
	return changed
}

func (l *List) shardLen(k Kind, idx uint64) int {
	if s := l.shards[k-1][idx].Load(); s != nil {
		return len(*s)
	}
	return 0
}

// cloneLive copies the entries of s that are live at now, with room for
// extra more.
func cloneLive(s *shard, now int64, extra int) shard {
	if s == nil {
		return make(shard, extra)
	}
	out := make(shard, len(*s)+extra)
	for id, d := range *s {
		if now < d.until {
			out[id] = d
		}
	}
	return out
}

// Prune drops the entries expired by the List's clock and reports how many
// it dropped. Add prunes by itself once the first entry expires; a caller
// with a timer of its own (a periodic sync) may call Prune to free the
// memory sooner.
func (l *List) Prune() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now().UnixNano()
	if now < l.soonest {
		return 0 // nothing expired: no need to look
	}
	before := l.size.Load()
	l.pruneLocked(now)
	return int(before - l.size.Load())
}

// pruneLocked replaces every shard that holds an expired entry and
// recomputes soonest.
func (l *List) pruneLocked(now int64) {
	var size int64
	soonest := int64(math.MaxInt64)
	for k := range l.shards {
		for idx := range l.shards[k] {
			p := l.shards[k][idx].Load()
			if p == nil {
				continue
			}
			s := *p
			expired := false
			for _, d := range s {
				if d.until <= now {
					expired = true
					break
				}
			}
			if expired {
				s = cloneLive(p, now, 0)
				l.shards[k][idx].Store(&s)
			}
			for _, d := range s {
				soonest = min(soonest, d.until)
			}
			size += int64(len(s))
		}
	}
	l.size.Store(size)
	l.soonest = soonest
}

// evictLocked drops the entries that expire soonest until the list holds
// evictTo of its cap. Ties at the cut are broken arbitrarily.
func (l *List) evictLocked() {
	size := int(l.size.Load())
	target := int(float64(l.max) * evictTo)
	drop := size - target
	if drop <= 0 {
		return
	}
	all := make([]int64, 0, size)
	for k := range l.shards {
		for idx := range l.shards[k] {
			if p := l.shards[k][idx].Load(); p != nil {
				for _, d := range *p {
					all = append(all, d.until)
				}
			}
		}
	}
	slices.Sort(all)
	cut := all[drop-1]
	atCut := drop - (slices.Index(all, cut)) // how many entries at the cut go
	var newSize int64
	soonest := int64(math.MaxInt64)
	for k := range l.shards {
		for idx := range l.shards[k] {
			p := l.shards[k][idx].Load()
			if p == nil {
				continue
			}
			s := make(shard, len(*p))
			for id, d := range *p {
				if d.until < cut {
					continue
				}
				if d.until == cut && atCut > 0 {
					atCut--
					continue
				}
				s[id] = d
				soonest = min(soonest, d.until)
			}
			l.shards[k][idx].Store(&s)
			newSize += int64(len(s))
		}
	}
	l.evicted.Add(uint64(int64(size) - newSize))
	l.size.Store(newSize)
	l.soonest = soonest
}

// Len is the number of entries held, some perhaps expired and not yet
// dropped.
func (l *List) Len() int { return int(l.size.Load()) }

// Stats describes the List now.
func (l *List) Stats() Stats {
	return Stats{Entries: l.Len(), Evicted: l.evicted.Load()}
}
