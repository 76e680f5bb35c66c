package clustersync

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// TestMain fails the package if any test leaves a goroutine of a Syncer
// behind: Stop must end them all.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// verifyNoLeak checks, once t and its cleanups are done, that it left no
// goroutine behind. Call it first, so that its cleanup runs last.
func verifyNoLeak(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const syncEvery = DefaultSyncEvery

// newStorage is a real FileStorage in a fresh folder.
func newStorage(t testing.TB) *certmagic.FileStorage {
	return &certmagic.FileStorage{Path: t.TempDir()}
}

// sameFolder is another FileStorage over the folder of s, as another Caddy
// process sharing the volume has.
func sameFolder(s *certmagic.FileStorage) *certmagic.FileStorage {
	return &certmagic.FileStorage{Path: s.Path}
}

// instance is one Caddy's share of the cluster: its denylist and Syncer,
// and the ids its OnForget was called with.
type instance struct {
	list   *denylist.List
	sync   *Syncer
	forgot *forgotten
}

// forgotten records the ids an OnForget was called with.
type forgotten struct {
	mu  sync.Mutex
	ids []string
}

func (f *forgotten) add(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = append(f.ids, id)
}

// take returns the ids recorded since the last take, sorted.
func (f *forgotten) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := f.ids
	f.ids = nil
	slices.Sort(ids)
	return ids
}

func newInstance(t *testing.T, s certmagic.Storage, clock *fakeclock.Clock, id string) instance {
	t.Helper()
	return newInstanceLog(t, s, clock, id, zap.NewNop())
}

func newInstanceLog(t *testing.T, s certmagic.Storage, clock *fakeclock.Clock, id string, log *zap.Logger) instance {
	t.Helper()
	list := denylist.New(denylist.Options{Now: clock.Now})
	forgot := new(forgotten)
	syncer, err := New(s, list, Options{InstanceID: id, Clock: clock, OnForget: forgot.add}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(syncer.Stop)
	return instance{list, syncer, forgot}
}

// noIAT is the issuedAt of a token without iat: every live denial of its
// ids refuses it.
var noIAT time.Time

// denies reports whether in refuses a token without iat of sessionID.
func (in instance) denies(sessionID string, now time.Time) bool {
	return in.list.Check(sessionID, "", noIAT, now) == denylist.Session
}

func mustSync(t *testing.T, ins ...instance) {
	t.Helper()
	for _, in := range ins {
		if err := in.sync.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// startTrio starts three instances a, b and c over one new folder, each on
// a clock of its own, named as they are.
func startTrio(t *testing.T) (a, b, c instance, clocks map[string]*fakeclock.Clock) {
	t.Helper()
	s := newStorage(t)
	clocks = map[string]*fakeclock.Clock{"a": fakeclock.New(testNow), "b": fakeclock.New(testNow), "c": fakeclock.New(testNow)}
	a = newInstance(t, s, clocks["a"], "a")
	b = newInstance(t, sameFolder(s), clocks["b"], "b")
	c = newInstance(t, sameFolder(s), clocks["c"], "c")
	mustStart(t, a, b, c)
	return a, b, c, clocks
}

func mustStart(t *testing.T, ins ...instance) {
	t.Helper()
	for _, in := range ins {
		if err := in.sync.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// revoke is a session denial for as long as the longest token lives.
func revoke(sessionID string, now time.Time) denylist.Entry {
	return denylist.Entry{Kind: denylist.Session, ID: sessionID, Until: now.Add(time.Hour)}
}

// docPath is where a FileStorage keeps the document of instance id.
func docPath(s *certmagic.FileStorage, id string) string {
	return filepath.Join(s.Path, filepath.FromSlash(DefaultPrefix), id+".json")
}

// breakStorage makes every List, Load and Store under the denylist's
// prefix fail, as an unusable storage does: the folder that holds it
// becomes a file. The returned func puts the folder back.
func breakStorage(t *testing.T, s *certmagic.FileStorage) (restore func()) {
	t.Helper()
	root := filepath.Join(s.Path, "clerk_auth")
	saved := root + ".saved"
	mustDo(t, os.MkdirAll(root, 0o700), os.Rename(root, saved), os.WriteFile(root, nil, 0o600))
	return func() {
		t.Helper()
		mustDo(t, os.Remove(root), os.Rename(saved, root))
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// waitFor polls cond: the background goroutines run on real time even
// though their clock is fake.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// tick waits until the background goroutine of in waits for its next
// round, moves its clock one SyncEvery on and waits for the round to end.
func tick(t *testing.T, in instance, clock *fakeclock.Clock) {
	t.Helper()
	if d := clock.WaitTimer(t); d != syncEvery {
		t.Fatalf("the syncer waits %v between rounds, want %v", d, syncEvery)
	}
	rounds := in.sync.Stats().Rounds
	clock.Advance(syncEvery)
	waitFor(t, "a round", func() bool { return in.sync.Stats().Rounds > rounds })
}

func mustDo(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
