package jwks

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Stats is a snapshot of one Set, for gauges.
type Stats struct {
	Source    string    // the URL without anything secret: fit for logs and labels
	Keys      int       // usable signing keys held
	FetchedAt time.Time // the last good answer; zero until the first
	Now       time.Time // the Set's own clock when the snapshot was taken
}

// Age is how long the Set has gone without a good answer. It is meaningless
// while FetchedAt is zero.
func (s Stats) Age() time.Duration { return s.Now.Sub(s.FetchedAt) }

// staler reports whether s has gone longer than o without a good answer; a
// set that never had one is the stalest of all.
func (s Stats) staler(o Stats) bool {
	return s.FetchedAt.IsZero() || (!o.FetchedAt.IsZero() && s.Age() > o.Age())
}

// Stats returns the Set's current Stats.
func (s *Set) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Source: s.source, Keys: len(s.keys), FetchedAt: s.fetchedAt, Now: s.opts.Clock.Now()}
}

// live are the Sets started and not yet destructed. Gauges read them at
// scrape time, so they are always current and a destructed Set stops being
// reported.
var live = struct {
	sync.Mutex
	sets map[*Set]struct{}
}{sets: map[*Set]struct{}{}}

func track(s *Set) {
	live.Lock()
	defer live.Unlock()
	live.sets[s] = struct{}{}
}

func untrack(s *Set) {
	live.Lock()
	defer live.Unlock()
	delete(live.sets, s)
}

// Live returns the Stats of every Set started and not yet destructed, in no
// particular order.
func Live() []Stats {
	live.Lock()
	sets := make([]*Set, 0, len(live.sets))
	for s := range live.sets {
		sets = append(sets, s)
	}
	live.Unlock()

	out := make([]Stats, len(sets))
	for i, s := range sets {
		out[i] = s.Stats()
	}
	return out
}

// StalestPerSource returns, sorted by Source, one Stats per Source among the
// live Sets. Two live Sets share a source only if they differ in something
// else (say, the secret key), and a metrics registry accepts one series per
// label value: the stalest Set is the one reported, so an alert on age or
// on zero keys covers all of them.
func StalestPerSource() []Stats {
	stalest := map[string]Stats{}
	for _, s := range Live() {
		if prev, ok := stalest[s.Source]; !ok || s.staler(prev) {
			stalest[s.Source] = s
		}
	}
	out := make([]Stats, 0, len(stalest))
	for _, s := range stalest {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Stats) int { return strings.Compare(a.Source, b.Source) })
	return out
}
