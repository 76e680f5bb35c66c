package denylist

import (
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// A denial refuses the tokens issued up to its IssuedBefore and
// SkewMargin, and passes the ones issued later; without IssuedBefore, and
// for a token without iat, it refuses them all.
func TestCheckIssuedAt(t *testing.T) {
	event := testNow.Add(-time.Minute)
	until := testNow.Add(time.Hour)
	l := newList(fakeclock.New(testNow), 0)
	l.Add(
		Entry{Kind: Session, ID: "sess_revoked", Until: until, IssuedBefore: event},
		Entry{Kind: User, ID: "user_banned", Until: until, IssuedBefore: event},
		Entry{Kind: User, ID: "user_every", Until: until},
	)
	for _, tc := range []struct {
		name          string
		session, user string
		iat, at       time.Time
		want          Kind
	}{
		{"issued long before", "sess_revoked", "", event.Add(-time.Hour), testNow, Session},
		{"issued at the event", "", "user_banned", event, testNow, User},
		{"issued at the end of the margin", "", "user_banned", event.Add(SkewMargin), testNow, User},
		{"issued just after the margin", "", "user_banned", event.Add(SkewMargin + time.Nanosecond), testNow, None},
		{"issued after an unban", "", "user_banned", testNow, testNow, None},
		{"new token of a revoked session", "sess_revoked", "", testNow, testNow, None},
		{"revoked session of a banned user, issued after both", "sess_revoked", "user_banned", testNow, testNow, None},
		{"no iat", "sess_revoked", "", noIAT, testNow, Session},
		{"no iat, user", "", "user_banned", noIAT, testNow, User},
		{"iat before 1678", "", "user_banned", time.Unix(-1<<40, 0), testNow, User},
		{"iat after 2262", "", "user_banned", time.Unix(1<<40, 0), testNow, None},
		{"every token: issued later", "", "user_every", testNow, testNow, User},
		{"every token: issued after 2262", "", "user_every", time.Unix(1<<40, 0), testNow, User},
		{"expired: issued before", "sess_revoked", "user_banned", event.Add(-time.Hour), until, None},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.Check(tc.session, tc.user, tc.iat, tc.at); got != tc.want {
				t.Errorf("Check(%q, %q, iat %v) = %v, want %v", tc.session, tc.user, tc.iat, got, tc.want)
			}
		})
	}
}

// Two denials of one id join into the later expiry and the later
// IssuedBefore; the zero IssuedBefore, every token, is the widest.
func TestAddJoins(t *testing.T) {
	hour, event := testNow.Add(time.Hour), testNow.Add(-time.Hour)
	later := event.Add(30 * time.Minute)
	for _, tc := range []struct {
		name       string
		held, add  Entry
		changed    int
		want       Entry // what the list must then refuse, and no more
		everyToken bool  // want refuses every token
	}{
		{"later IssuedBefore widens", Entry{Session, "sess_a", hour, event},
			Entry{Session, "sess_a", hour, later}, 1, Entry{Session, "sess_a", hour, later}, false},
		{"earlier IssuedBefore changes nothing", Entry{Session, "sess_a", hour, later},
			Entry{Session, "sess_a", hour, event}, 0, Entry{Session, "sess_a", hour, later}, false},
		{"late retry: later expiry, same IssuedBefore", Entry{Session, "sess_a", hour, event},
			Entry{Session, "sess_a", hour.Add(time.Hour), event}, 1, Entry{Session, "sess_a", hour.Add(time.Hour), event}, false},
		{"every token absorbs", Entry{Session, "sess_a", hour, event},
			Entry{Session, "sess_a", hour, time.Time{}}, 1, Entry{Session, "sess_a", hour, time.Time{}}, true},
		{"every token stays", Entry{Session, "sess_a", hour, time.Time{}},
			Entry{Session, "sess_a", hour, later}, 0, Entry{Session, "sess_a", hour, time.Time{}}, true},
		{"each widens one bound", Entry{Session, "sess_a", hour.Add(time.Hour), event},
			Entry{Session, "sess_a", hour, later}, 1, Entry{Session, "sess_a", hour.Add(time.Hour), later}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newList(fakeclock.New(testNow), 0)
			l.Add(tc.held)
			if got := l.Add(tc.add); got != tc.changed {
				t.Errorf("Add reported %d changed, want %d", got, tc.changed)
			}
			w := tc.want
			last := w.IssuedBefore.Add(SkewMargin)
			if l.Check(w.ID, "", last, w.Until.Add(-time.Nanosecond)) != Session {
				t.Errorf("a token issued at %v passes before %v", last, w.Until)
			}
			if l.Check(w.ID, "", noIAT, w.Until) != None {
				t.Errorf("still denied at %v", w.Until)
			}
			if got := l.Check(w.ID, "", testNow, testNow); (got == Session) != tc.everyToken {
				t.Errorf("a token issued now: %v, want every token refused: %v", got, tc.everyToken)
			}
		})
	}
}

// Lists that learn the same denials, in any order and in any batches,
// hold the same entries: the union across instances needs no ordering.
func TestJoinIsOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []string{"sess_a", "sess_b", "user_a", "user_b"}
	var all []Entry
	for range 200 {
		e := Entry{
			Kind:  Kind(1 + rng.IntN(2)),
			ID:    ids[rng.IntN(len(ids))],
			Until: testNow.Add(time.Duration(1+rng.IntN(120)) * time.Minute),
		}
		if rng.IntN(8) != 0 { // some deny every token
			e.IssuedBefore = testNow.Add(-time.Duration(rng.IntN(3600)) * time.Second)
		}
		all = append(all, e)
	}
	want := snapshot(addInBatches(all, rng))
	for round := range 20 {
		shuffled := append([]Entry(nil), all...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		// Two instances learn half each, then merge each other's.
		half := rng.IntN(len(shuffled))
		a, b := addInBatches(shuffled[:half], rng), addInBatches(shuffled[half:], rng)
		a.Add(shuffled[half:]...)
		b.Add(shuffled[:half]...)
		for name, l := range map[string]*List{"a": a, "b": b} {
			if got := snapshot(l); !maps.Equal(got, want) {
				t.Fatalf("round %d, instance %s: %d entries differ from the %d of the first order", round, name, len(got), len(want))
			}
		}
	}
}

// addInBatches adds entries to a new list in batches of random sizes.
func addInBatches(entries []Entry, rng *rand.Rand) *List {
	l := newList(fakeclock.New(testNow), 0)
	for len(entries) > 0 {
		n := 1 + rng.IntN(len(entries))
		l.Add(entries[:n]...)
		entries = entries[n:]
	}
	return l
}

type snapshotKey struct {
	kind Kind
	id   string
}

// snapshot is every denial l holds.
func snapshot(l *List) map[snapshotKey]denial {
	out := map[snapshotKey]denial{}
	for k := range l.shards {
		for idx := range l.shards[k] {
			if p := l.shards[k][idx].Load(); p != nil {
				for id, d := range *p {
					out[snapshotKey{Kind(k + 1), id}] = d
				}
			}
		}
	}
	return out
}
