package clustersync

import (
	"strings"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
)

// Forget marks: an instance told that a user's or an organization's data
// changed in Clerk writes the id into its document, and every other
// instance drops what it cached of it when it next reads that document.
// A mark is kept for Options.ForgetRetention, then dropped.

// markKey names one document's mark for one id. Marks are applied per
// document, not per id: a mark that another instance wrote in the same
// second as one applied already is a change not dropped yet.
type markKey struct{ doc, id string }

// forgettable reports whether id can be marked: a user or organization id
// within the denylist's id bounds.
func forgettable(id string) bool {
	if len(id) > denylist.MaxIDLen {
		return false
	}
	for _, prefix := range []string{"user_", "org_"} {
		if len(id) > len(prefix) && strings.HasPrefix(id, prefix) {
			return true
		}
	}
	return false
}

// Forget marks ids as changed in Clerk at the clock's now, and has the
// background goroutine publish the marks without waiting for the next
// round: every other instance calls its Options.OnForget with each id when
// it reads them. Ids other than user_… and org_… ones are ignored. The
// caller drops its own caches itself. It never waits for storage; Flush
// does, for a caller that must know the marks are stored.
func (s *Syncer) Forget(ids ...string) {
	now := s.opts.Clock.Now().Unix()
	s.mu.Lock()
	for _, id := range ids {
		if forgettable(id) {
			// Later than the mark it replaces, even within one second:
			// an instance that applied that one applies this one too.
			s.forgets[id] = max(now, s.forgets[id]+1)
			s.dirty = true
		}
	}
	s.mu.Unlock()
	s.kickWrite()
}

// markLive reports whether a mark made at the Unix second at is still
// kept at the Unix second now.
func (s *Syncer) markLive(at, now int64) bool {
	return time.Unix(at, 0).Add(s.opts.ForgetRetention).Unix() > now
}

// newMarks records the live marks of another instance's document (key)
// that are later than the last one applied from it, and returns their ids
// for OnForget. Called with the round token held.
func (s *Syncer) newMarks(key string, marks map[string]int64, now int64) []string {
	var ids []string
	for id, at := range marks {
		k := markKey{key, id}
		if !s.markLive(at, now) || at <= s.applied[k] {
			continue
		}
		s.applied[k] = at
		ids = append(ids, id)
	}
	return ids
}

// pruneApplied forgets the applied marks past retention: documents drop
// them, and a mark that old is never applied again. Called with the round
// token held.
func (s *Syncer) pruneApplied(now int64) {
	for k, at := range s.applied {
		if !s.markLive(at, now) {
			delete(s.applied, k)
		}
	}
}

// dropLapsedMarks removes this instance's marks past retention and
// reports whether any was. Called with s.mu held.
func (s *Syncer) dropLapsedMarks(now int64) bool {
	dropped := false
	for id, at := range s.forgets {
		if !s.markLive(at, now) {
			delete(s.forgets, id)
			dropped = true
		}
	}
	return dropped
}

// lastKept is the Unix second after which nothing in c is kept: its last
// denial has ended and its last mark has lapsed.
func (s *Syncer) lastKept(c contents) int64 {
	var last int64
	for _, d := range c.denials {
		last = max(last, d.until)
	}
	for _, at := range c.forgets {
		last = max(last, time.Unix(at, 0).Add(s.opts.ForgetRetention).Unix())
	}
	return last
}
