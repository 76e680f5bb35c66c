package clustersync

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// A forget mark made on one instance reaches the OnForget of the others
// after one SyncEvery of theirs, once, and never the OnForget of the
// instance that made it.
func TestForgetConverges(t *testing.T) {
	verifyNoLeak(t)
	a, b, c, clocks := startTrio(t)

	a.sync.Forget("user_1")
	waitFor(t, "a to publish", func() bool { return a.sync.Stats().Writes == 1 })
	if ids := b.forgot.take(); len(ids) != 0 {
		t.Fatalf("b forgot %v before any round", ids)
	}
	for name, in := range map[string]instance{"b": b, "c": c} {
		tick(t, in, clocks[name])
		if ids := in.forgot.take(); !slices.Equal(ids, []string{"user_1"}) {
			t.Errorf("%s forgot %v one SyncEvery later, want [user_1]", name, ids)
		}
		tick(t, in, clocks[name])
		if ids := in.forgot.take(); len(ids) != 0 {
			t.Errorf("%s forgot %v again in its next round", name, ids)
		}
	}
	tick(t, a, clocks["a"])
	if ids := a.forgot.take(); len(ids) != 0 {
		t.Errorf("a applied its own marks: %v", ids)
	}
}

// Each new mark is applied once by every other instance: a mark made again
// later, or again within the same second, or by another instance in the
// same second as one applied already.
func TestForgetEachMarkOnce(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	a := newInstance(t, s, clock, "a")
	b := newInstance(t, sameFolder(s), clock, "b")
	c := newInstance(t, sameFolder(s), clock, "c")
	for _, step := range []struct {
		name  string
		do    func()
		syncs []instance // rounds run after do, in order
		want  []string   // what b forgot
	}{
		{"forgotten on a", func() { a.sync.Forget("user_1") }, []instance{a, b}, []string{"user_1"}},
		{"another round", func() {}, []instance{a, b}, nil},
		{"again within the same second", func() { a.sync.Forget("user_1") }, []instance{a, b}, []string{"user_1"}},
		{"again later, with an organization", func() {
			clock.Advance(time.Minute)
			a.sync.Forget("user_1", "org_1")
		}, []instance{a, b}, []string{"org_1", "user_1"}},
		{"on another instance, the same second", func() { c.sync.Forget("user_1") }, []instance{c, b}, []string{"user_1"}},
		{"ids that are no user's or organization's", func() { a.sync.Forget("sess_1", "", "user_", "org_") }, []instance{a, b}, nil},
		{"both forget one id before b reads", func() {
			clock.Advance(time.Second)
			a.sync.Forget("user_2")
			c.sync.Forget("user_2")
		}, []instance{a, c, b}, []string{"user_2", "user_2"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			writes := a.sync.Stats().Writes
			step.do()
			mustSync(t, step.syncs...)
			if ids := b.forgot.take(); !slices.Equal(ids, step.want) {
				t.Errorf("b forgot %v, want %v", ids, step.want)
			}
			a.forgot.take() // a and c read each other's marks
			c.forgot.take()
			if step.want == nil && a.sync.Stats().Writes != writes {
				t.Error("a wrote its document though nothing was marked")
			}
		})
	}
}

// A mark is kept for ForgetRetention: an instance reading it later applies
// it, one reading it after does not, and a document is kept while a mark
// in it is, then deleted by whoever reads it.
func TestForgetRetention(t *testing.T) {
	now := testNow.Unix()
	for _, tc := range []struct {
		name   string
		forget string // the document's forget member
		want   []string
		kept   bool
	}{
		{"a minute old", fmt.Sprintf(`{"user_new":%d}`, now-60), []string{"user_new"}, true},
		{"just within retention", fmt.Sprintf(`{"user_new":%d}`, now-599), []string{"user_new"}, true},
		{"as old as the retention", fmt.Sprintf(`{"user_old":%d}`, now-600), nil, false},
		{"older, next to a new one", fmt.Sprintf(`{"user_old":%d,"org_new":%d}`, now-3600, now), []string{"org_new"}, true},
		{"ahead of this clock", fmt.Sprintf(`{"user_ahead":%d}`, now+30), []string{"user_ahead"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(testNow)
			s := newStorage(t)
			a := newInstance(t, s, clock, "a")
			a.sync.Deny(revoke("sess_a", clock.Now())) // makes the folder
			mustSync(t, a)
			doc := fmt.Sprintf(`{"version":2,"instance":"other","written":%d,"forget":%s}`, now, tc.forget)
			mustDo(t, os.WriteFile(docPath(s, "other"), []byte(doc), 0o600))

			b := newInstance(t, sameFolder(s), clock, "b")
			mustSync(t, b)
			if ids := b.forgot.take(); !slices.Equal(ids, tc.want) {
				t.Errorf("forgot %v, want %v", ids, tc.want)
			}
			if exists(docPath(s, "other")) != tc.kept {
				t.Errorf("document kept: %v, want %v", !tc.kept, tc.kept)
			}
		})
	}
}

// An instance drops its own marks once they lapse: its document loses its
// forget member, or goes if nothing else is in it; an instance that
// starts then applies none of them.
func TestForgetLapses(t *testing.T) {
	for _, tc := range []struct {
		name string
		deny bool // the document also holds a denial, which outlives the mark
	}{
		{"marks alone", false},
		{"next to a denial", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(testNow)
			s := newStorage(t)
			a := newInstance(t, s, clock, "a")
			a.sync.Forget("user_1")
			if tc.deny {
				a.sync.Deny(revoke("sess_1", clock.Now()))
			}
			mustSync(t, a)
			clock.Advance(DefaultForgetRetention - time.Second)
			late := newInstance(t, sameFolder(s), clock, "late")
			mustSync(t, a, late)
			if ids := late.forgot.take(); !slices.Equal(ids, []string{"user_1"}) {
				t.Errorf("an instance reading within retention forgot %v", ids)
			}

			clock.Advance(time.Second)
			mustSync(t, a)
			raw, err := os.ReadFile(docPath(s, "a"))
			switch {
			case !tc.deny && err == nil:
				t.Errorf("the document of lapsed marks alone was kept: %s", raw)
			case tc.deny:
				mustDo(t, err)
				if c, err := decode(raw); err != nil || c.forgets != nil || len(c.denials) != 1 {
					t.Errorf("the document after the mark lapsed: %s (%v)", raw, err)
				}
			}
			fresh := newInstance(t, sameFolder(s), clock, "fresh")
			mustSync(t, fresh)
			if ids := fresh.forgot.take(); len(ids) != 0 {
				t.Errorf("a lapsed mark was applied: %v", ids)
			}
		})
	}
}

// A Syncer that replaces another of the same process takes its marks over:
// it applies none of them itself, and keeps publishing them.
func TestForgetReload(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	old := newInstance(t, s, clock, "proc")
	old.sync.Forget("user_1")
	mustSync(t, old)
	old.sync.Stop()

	reloaded := newInstance(t, sameFolder(s), clock, "proc")
	reloaded.sync.Forget("org_1")
	mustSync(t, reloaded)
	if ids := reloaded.forgot.take(); len(ids) != 0 {
		t.Errorf("the reloaded Syncer applied the marks of its own document: %v", ids)
	}
	other := newInstance(t, sameFolder(s), clock, "other")
	mustSync(t, other)
	if ids := other.forgot.take(); !slices.Equal(ids, []string{"org_1", "user_1"}) {
		t.Errorf("another instance forgot %v, want [org_1 user_1]", ids)
	}
}
