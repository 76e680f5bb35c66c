package denylist

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// noIAT is the issuedAt of a token without iat: every live denial of its
// ids refuses it.
var noIAT time.Time

func newList(clock *fakeclock.Clock, max int) *List {
	return New(Options{MaxEntries: max, Now: clock.Now})
}

// sessionID is a session id shaped like Clerk's: "sess_" and 27 characters.
func sessionID(n int) string { return fmt.Sprintf("sess_2%026d", n) }

func TestCheck(t *testing.T) {
	clock := fakeclock.New(testNow)
	l := newList(clock, 0)
	until := testNow.Add(time.Hour)
	l.Add(
		Entry{Kind: Session, ID: "sess_revoked", Until: until},
		Entry{Kind: User, ID: "user_banned", Until: until},
		Entry{Kind: User, ID: "user_both", Until: until},
		Entry{Kind: Session, ID: "sess_both", Until: until},
	)
	for _, tc := range []struct {
		name          string
		session, user string
		at            time.Time
		want          Kind
	}{
		{"neither denied", "sess_ok", "user_ok", testNow, None},
		{"session denied", "sess_revoked", "user_ok", testNow, Session},
		{"user denied", "sess_ok", "user_banned", testNow, User},
		{"both denied: the session is named", "sess_both", "user_both", testNow, Session},
		{"machine token: no session", "", "user_banned", testNow, User},
		{"no ids", "", "", testNow, None},
		{"a session id is not a user id", "user_banned", "sess_revoked", testNow, None},
		{"just before the expiry", "sess_revoked", "", until.Add(-time.Nanosecond), Session},
		{"at the expiry", "sess_revoked", "", until, None},
		{"after the expiry", "", "user_banned", until.Add(time.Second), None},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.Check(tc.session, tc.user, noIAT, tc.at); got != tc.want {
				t.Errorf("Check(%q, %q) = %v, want %v", tc.session, tc.user, got, tc.want)
			}
		})
	}
}

func TestAdd(t *testing.T) {
	hour := testNow.Add(time.Hour)
	long := MaxIDLen + 1
	for _, tc := range []struct {
		name    string
		held    []Entry
		add     []Entry
		changed int
		len     int
		// deniedAt: a time at which "sess_a" must still be denied, and
		// after which it must not.
		deniedUntil time.Time
	}{
		{"new", nil, []Entry{{Kind: Session, ID: "sess_a", Until: hour}}, 1, 1, hour},
		{"later expiry extends", []Entry{{Kind: Session, ID: "sess_a", Until: hour}},
			[]Entry{{Kind: Session, ID: "sess_a", Until: hour.Add(time.Hour)}}, 1, 1, hour.Add(time.Hour)},
		{"earlier expiry changes nothing", []Entry{{Kind: Session, ID: "sess_a", Until: hour}},
			[]Entry{{Kind: Session, ID: "sess_a", Until: testNow.Add(time.Minute)}}, 0, 1, hour},
		{"same entry twice in one call", nil,
			[]Entry{{Kind: Session, ID: "sess_a", Until: hour}, {Kind: Session, ID: "sess_a", Until: hour}}, 1, 1, hour},
		{"same id, both kinds", nil,
			[]Entry{{Kind: Session, ID: "sess_a", Until: hour}, {Kind: User, ID: "sess_a", Until: hour}}, 2, 2, hour},
		{"already expired", nil, []Entry{{Kind: Session, ID: "sess_a", Until: testNow}}, 0, 0, time.Time{}},
		{"no kind", nil, []Entry{{Kind: None, ID: "sess_a", Until: hour}}, 0, 0, time.Time{}},
		{"unknown kind", nil, []Entry{{Kind: Kind(9), ID: "sess_a", Until: hour}}, 0, 0, time.Time{}},
		{"empty id", nil, []Entry{{Kind: Session, ID: "", Until: hour}}, 0, 0, time.Time{}},
		{"id too long", nil, []Entry{{Kind: Session, ID: string(make([]byte, long)), Until: hour}}, 0, 0, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(testNow)
			l := newList(clock, 0)
			l.Add(tc.held...)
			if got := l.Add(tc.add...); got != tc.changed {
				t.Errorf("Add reported %d changed, want %d", got, tc.changed)
			}
			if got := l.Len(); got != tc.len {
				t.Errorf("Len %d, want %d", got, tc.len)
			}
			if tc.deniedUntil.IsZero() {
				return
			}
			if l.Check("sess_a", "", noIAT, tc.deniedUntil.Add(-time.Nanosecond)) != Session {
				t.Errorf("not denied just before %v", tc.deniedUntil)
			}
			if l.Check("sess_a", "", noIAT, tc.deniedUntil) != None {
				t.Errorf("still denied at %v", tc.deniedUntil)
			}
		})
	}
}

// Expired entries leave by themselves: the first write after an expiry
// drops every expired entry, and Prune does so at once.
func TestExpiry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sweep func(l *List) // run once the first entries have expired
		len   int           // entries held after it
	}{
		{"next Add", func(l *List) { l.Add(Entry{Kind: User, ID: "user_new", Until: testNow.Add(3 * time.Hour)}) }, 2},
		{"Prune", func(l *List) { l.Prune() }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(testNow)
			l := newList(clock, 0)
			l.Add(
				Entry{Kind: Session, ID: "sess_a", Until: testNow.Add(time.Minute)},
				Entry{Kind: User, ID: "user_a", Until: testNow.Add(time.Minute)},
				Entry{Kind: Session, ID: "sess_b", Until: testNow.Add(time.Hour)},
			)
			clock.Advance(time.Minute)
			tc.sweep(l)
			if got := l.Len(); got != tc.len {
				t.Errorf("Len %d after the sweep, want %d", got, tc.len)
			}
			if l.Check("sess_b", "", noIAT, clock.Now()) != Session {
				t.Error("the live entry was dropped")
			}
		})
	}
}

// At its cap the list drops the denials that expire soonest, in a batch,
// and counts them; a new denial is always kept.
func TestCap(t *testing.T) {
	const max = 32
	clock := fakeclock.New(testNow)
	l := newList(clock, max)
	for i := range max {
		// sess_i expires i+1 minutes from now.
		l.Add(Entry{Kind: Session, ID: sessionID(i), Until: testNow.Add(time.Duration(i+1) * time.Minute)})
	}
	if l.Len() != max || l.Stats().Evicted != 0 {
		t.Fatalf("at the cap: %+v", l.Stats())
	}
	l.Add(Entry{Kind: User, ID: "user_new", Until: testNow.Add(time.Hour)})
	target := int(float64(max) * evictTo)
	st := l.Stats()
	if st.Entries != target || st.Evicted != uint64(max+1-target) {
		t.Fatalf("after passing the cap: %+v, want %d entries, %d evicted", st, target, max+1-target)
	}
	if l.Check("", "user_new", noIAT, testNow) != User {
		t.Error("the new denial was evicted")
	}
	gone := int(st.Evicted)
	for i := range max {
		want := Session
		if i < gone {
			want = None
		}
		if got := l.Check(sessionID(i), "", noIAT, testNow); got != want {
			t.Errorf("entry expiring in %d min: %v, want %v", i+1, got, want)
		}
	}

	// Expired entries go before live ones are evicted.
	clock.Advance(time.Duration(gone+2) * time.Minute) // two more expire
	for i := range 2 {
		l.Add(Entry{Kind: User, ID: fmt.Sprintf("user_%d", i), Until: testNow.Add(2 * time.Hour)})
	}
	if got := l.Stats().Evicted; got != st.Evicted {
		t.Errorf("evicted %d live entries while expired ones were held", got-st.Evicted)
	}
}

// Entries that all expire at the same instant are cut exactly at the
// target, not all dropped.
func TestCapTies(t *testing.T) {
	const max = 64
	clock := fakeclock.New(testNow)
	l := newList(clock, max)
	batch := make([]Entry, max+1)
	for i := range batch {
		batch[i] = Entry{Kind: Session, ID: sessionID(i), Until: testNow.Add(time.Hour)}
	}
	l.Add(batch...)
	if got, want := l.Len(), int(float64(max)*evictTo); got != want {
		t.Fatalf("Len %d after evicting among ties, want %d", got, want)
	}
}

// Readers never see a torn state while writers add, prune and evict; run
// with -race.
func TestConcurrentUse(t *testing.T) {
	clock := fakeclock.New(testNow)
	l := newList(clock, 512)
	l.Add(Entry{Kind: User, ID: "user_always", Until: testNow.Add(24 * time.Hour)})
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if l.Check(sessionID(7), "user_always", noIAT, testNow) == None {
					t.Error("a denial vanished during writes")
					return
				}
			}
		})
	}
	for i := range 2000 {
		l.Add(Entry{Kind: Session, ID: sessionID(i), Until: testNow.Add(time.Duration(i%50+1) * time.Minute)})
		if i%100 == 0 {
			l.Prune()
		}
	}
	stop.Store(true)
	wg.Wait()
}

func TestCheckAllocatesNothing(t *testing.T) {
	clock := fakeclock.New(testNow)
	l := newList(clock, 0)
	l.Add(Entry{Kind: Session, ID: sessionID(1), Until: testNow.Add(time.Hour)}, Entry{Kind: User, ID: "user_x", Until: testNow.Add(time.Hour)})
	miss, hit := sessionID(2), sessionID(1)
	if n := testing.AllocsPerRun(1000, func() {
		l.Check(miss, "user_y", noIAT, testNow)
		l.Check(hit, "user_y", noIAT, testNow)
		l.Check("", "user_x", noIAT, testNow)
	}); n != 0 {
		t.Errorf("Check allocates %v times per run, want 0", n)
	}
}

// memoryFor100k is the bound the README states for 100,000 denied
// sessions; the measured figure is logged.
const memoryFor100k = 10 << 20

func TestMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 entries")
	}
	const n = 100_000
	clock := fakeclock.New(testNow)
	before := heapInUse()
	l := newList(clock, 0)
	addSessions(l, n, testNow.Add(time.Hour))
	used := heapInUse() - before
	runtime.KeepAlive(l)
	t.Logf("100,000 denied sessions: %d bytes, %.0f per entry (ids of %d bytes included)", used, float64(used)/n, len(sessionID(0)))
	if used > memoryFor100k {
		t.Errorf("100,000 denied sessions use %d bytes, over the %d bound", used, memoryFor100k)
	}
}

// addSessions denies n sessions with ids of their own, as decoding a
// webhook or a storage file makes them, in one Add: each refuses the
// tokens issued up to testNow.
func addSessions(l *List, n int, until time.Time) {
	entries := make([]Entry, n)
	for i := range entries {
		entries[i] = Entry{Kind: Session, ID: sessionID(i), Until: until, IssuedBefore: testNow}
	}
	l.Add(entries...)
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
