package clustersync

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// Three instances over one folder: a denial learned by the first is denied
// by the other two after one SyncEvery, not before.
func TestConverge(t *testing.T) {
	verifyNoLeak(t)
	a, b, c, clocks := startTrio(t)

	a.sync.Deny(revoke("sess_1", testNow))
	if !a.denies("sess_1", testNow) {
		t.Fatal("the instance that learned the denial does not deny at once")
	}
	waitFor(t, "a to publish", func() bool { return a.sync.Stats().Writes == 1 })
	if b.denies("sess_1", testNow) || c.denies("sess_1", testNow) {
		t.Fatal("denied elsewhere before any round")
	}
	for name, in := range map[string]instance{"b": b, "c": c} {
		tick(t, in, clocks[name])
		if !in.denies("sess_1", clocks[name].Now()) {
			t.Errorf("%s does not deny sess_1 one SyncEvery later", name)
		}
	}
}

// A restarted instance denies what the cluster denied as soon as Start
// returns, and says it is ready.
func TestRestart(t *testing.T) {
	verifyNoLeak(t)
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	a := newInstance(t, s, clock, "a")
	b := newInstance(t, sameFolder(s), clock, "b")
	a.sync.Deny(revoke("sess_a", clock.Now()))
	b.sync.Deny(denylist.Entry{Kind: denylist.User, ID: "user_b", Until: clock.Now().Add(time.Hour)})
	mustSync(t, a, b)

	fresh := newInstance(t, sameFolder(s), clock, "fresh")
	select {
	case <-fresh.sync.Ready():
		t.Fatal("ready before reading anything")
	default:
	}
	mustStart(t, fresh)
	select {
	case <-fresh.sync.Ready():
	default:
		t.Fatal("not ready after Start read the storage")
	}
	if !fresh.denies("sess_a", clock.Now()) || fresh.list.Check("", "user_b", noIAT, clock.Now()) != denylist.User {
		t.Error("the restarted instance does not deny what the cluster denied")
	}
	if st := fresh.sync.Stats(); st.Documents != 2 || st.LastRead.IsZero() {
		t.Errorf("stats after the first read: %+v", st)
	}
	if exists(docPath(s, "fresh")) {
		t.Error("an instance that learned nothing wrote a document")
	}
}

// A Syncer that replaces another of the same process (a config reload,
// same instance id) takes over its denials and keeps publishing them with
// its own.
func TestReload(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	old := newInstance(t, s, clock, "proc")
	old.sync.Deny(revoke("sess_old", clock.Now()))
	mustSync(t, old)
	old.sync.Stop()

	reloaded := newInstance(t, sameFolder(s), clock, "proc")
	reloaded.sync.Deny(revoke("sess_new", clock.Now()))
	mustSync(t, reloaded)

	other := newInstance(t, sameFolder(s), clock, "other")
	mustSync(t, other)
	for _, id := range []string{"sess_old", "sess_new"} {
		if !other.denies(id, clock.Now()) {
			t.Errorf("%s lost across the reload", id)
		}
	}
}

// Documents whose entries have all expired are deleted: another
// instance's by whoever reads it, an instance's own by itself.
func TestPrune(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	dead := newInstance(t, s, clock, "dead")
	dead.sync.Deny(denylist.Entry{Kind: denylist.Session, ID: "sess_short", Until: clock.Now().Add(time.Minute)})
	live := newInstance(t, sameFolder(s), clock, "live")
	live.sync.Deny(denylist.Entry{Kind: denylist.Session, ID: "sess_long", Until: clock.Now().Add(2 * time.Minute)})
	mustSync(t, dead, live)

	clock.Advance(time.Minute)
	mustSync(t, live)
	if exists(docPath(s, "dead")) {
		t.Error("the expired document of another instance was kept")
	}
	if !exists(docPath(s, "live")) || live.sync.Stats().Pruned != 1 {
		t.Errorf("live document gone or prune not counted: %+v", live.sync.Stats())
	}
	clock.Advance(time.Minute)
	mustSync(t, live)
	if exists(docPath(s, "live")) {
		t.Error("an instance kept its own expired document")
	}
	if live.list.Len() != 0 {
		t.Errorf("%d entries after everything expired", live.list.Len())
	}
}

// An instance whose document was deleted under it (a prune racing its
// write, an operator) writes it again in its next round.
func TestOwnDocumentRewritten(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	a := newInstance(t, s, clock, "a")
	a.sync.Deny(revoke("sess_1", clock.Now()))
	mustSync(t, a)
	for _, spoil := range []struct {
		name string
		do   func() error
	}{
		{"deleted", func() error { return os.Remove(docPath(s, "a")) }},
		{"overwritten", func() error { return os.WriteFile(docPath(s, "a"), []byte(`{"version":1}`), 0o600) }},
	} {
		t.Run(spoil.name, func(t *testing.T) {
			mustDo(t, spoil.do())
			mustSync(t, a) // notices
			mustSync(t, a) // writes
			b := newInstance(t, sameFolder(s), clock, "b-"+spoil.name)
			mustSync(t, b)
			if !b.denies("sess_1", clock.Now()) {
				t.Error("the denial was not published again")
			}
		})
	}
}

func TestStartStop(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, in instance, clock *fakeclock.Clock)
	}{
		{"never started", func(*testing.T, instance, *fakeclock.Clock) {}},
		{"started", func(t *testing.T, in instance, _ *fakeclock.Clock) { mustStart(t, in) }},
		{"started twice", func(t *testing.T, in instance, _ *fakeclock.Clock) { mustStart(t, in, in) }},
		{"after a few rounds", func(t *testing.T, in instance, clock *fakeclock.Clock) {
			mustStart(t, in)
			for range 3 {
				tick(t, in, clock)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifyNoLeak(t)
			clock := fakeclock.New(testNow)
			in := newInstance(t, newStorage(t), clock, "a")
			tc.run(t, in, clock)
			in.sync.Stop()
			in.sync.Stop()
			if err := in.sync.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			in.sync.Stop() // Start after Stop started nothing
		})
	}
}
