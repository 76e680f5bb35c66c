package clustersync

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// A corrupt document is skipped, counted and logged once; the other
// documents are merged, and the round is no storage failure.
func TestCorruptDocument(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"not JSON", `{"version":2,"sessions":{"sess_x":`},
		{"newer version", `{"version":3,"sessions":{"sess_x":[9999999999,1]}}`},
		{"no version", `{"sessions":{"sess_x":[9999999999,1]}}`},
		{"not a document", `["sess_x"]`},
		{"expiry not a number", `{"version":1,"sessions":{"sess_x":"later"}}`},
		{"empty id", `{"version":1,"sessions":{"":9999999999}}`},
		{"no expiry", `{"version":1,"users":{"user_x":0}}`},
		{"version 2, a number for a pair", `{"version":2,"sessions":{"sess_x":9999999999}}`},
		{"version 1, a pair for a number", `{"version":1,"sessions":{"sess_x":[9999999999,1]}}`},
		{"one number", `{"version":2,"users":{"user_x":[9999999999]}}`},
		{"three numbers", `{"version":2,"users":{"user_x":[9999999999,1,2]}}`},
		{"no numbers", `{"version":2,"users":{"user_x":[]}}`},
		{"before zero", `{"version":2,"users":{"user_x":[9999999999,0]}}`},
		{"before negative", `{"version":2,"sessions":{"sess_x":[9999999999,-5]}}`},
		{"until zero", `{"version":2,"sessions":{"sess_x":[0,1772366400]}}`},
		{"before not an integer", `{"version":2,"sessions":{"sess_x":[9999999999,1.5]}}`},
		{"a good entry next to a bad one", `{"version":2,"sessions":{"sess_x":[9999999999,1772366400]},"users":{"user_x":[9999999999,-1]}}`},
		{"forget mark zero", `{"version":2,"sessions":{"sess_x":[9999999999,1]},"forget":{"user_x":0}}`},
		{"forget mark negative", `{"version":2,"forget":{"user_x":-1772366400}}`},
		{"forget mark not a number", `{"version":2,"forget":{"user_x":"now"}}`},
		{"forget mark not an integer", `{"version":2,"forget":{"user_x":1772366400.5}}`},
		{"forget mark a pair", `{"version":2,"forget":{"user_x":[1772366400,1]}}`},
		{"forget a list", `{"version":2,"forget":["user_x"]}`},
		{"forget mark without an id", `{"version":2,"forget":{"":1772366400}}`},
		{"forget mark of a prefix alone", `{"version":2,"forget":{"org_":1772366400}}`},
		{"forget mark of a session", `{"version":2,"sessions":{"sess_x":[9999999999,1]},"forget":{"user_x":1772366400,"sess_x":1772366400}}`},
		{"forget mark of a long id", `{"version":2,"forget":{"user_` + strings.Repeat("x", denylist.MaxIDLen) + `":1772366400}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(testNow)
			s := newStorage(t)
			a := newInstance(t, s, clock, "a")
			b := newInstance(t, sameFolder(s), clock, "b")
			a.sync.Deny(revoke("sess_a", clock.Now()))
			b.sync.Deny(revoke("sess_b", clock.Now()))
			mustSync(t, a, b)
			mustDo(t, os.WriteFile(docPath(s, "broken"), []byte(tc.body), 0o600))

			core, logs := observer.New(zapcore.WarnLevel)
			fresh := newInstanceLog(t, sameFolder(s), clock, "fresh", zap.New(core))
			mustSync(t, fresh, fresh)
			if !fresh.denies("sess_a", clock.Now()) || !fresh.denies("sess_b", clock.Now()) {
				t.Error("the good documents were not merged")
			}
			if fresh.denies("sess_x", clock.Now()) || fresh.list.Check("", "user_x", noIAT, clock.Now()) != denylist.None {
				t.Error("an entry of the corrupt document was merged")
			}
			if ids := fresh.forgot.take(); len(ids) != 0 {
				t.Errorf("marks of the corrupt document were applied: %v", ids)
			}
			if st := fresh.sync.Stats(); st.Corrupt != 2 || st.Failures != 0 {
				t.Errorf("stats %+v, want 2 corrupt reads and no failure", st)
			}
			if n := logs.Len(); n != 1 {
				t.Errorf("%d warnings over two rounds, want 1: %v", n, logs.All())
			}
			if !exists(docPath(s, "broken")) {
				t.Error("a corrupt document of another instance was deleted")
			}
		})
	}
}

// While the storage is down, each instance keeps denying what it knew
// (and what it learns meanwhile), failures are counted and logged when
// they start and end; once the storage is back, the cluster converges.
func TestStorageDown(t *testing.T) {
	verifyNoLeak(t)
	s := newStorage(t)
	ca, cb := fakeclock.New(testNow), fakeclock.New(testNow)
	core, logs := observer.New(zapcore.InfoLevel)
	a := newInstance(t, s, ca, "a")
	b := newInstanceLog(t, sameFolder(s), cb, "b", zap.New(core))
	a.sync.Deny(revoke("sess_before", testNow))
	mustStart(t, a, b)

	restore := breakStorage(t, s)
	a.sync.Deny(revoke("sess_during", testNow))
	waitFor(t, "a's write to fail", func() bool { return a.sync.Stats().Failures > 0 })
	if !a.denies("sess_during", testNow) {
		t.Error("a denial learned during the outage is not denied where it was learned")
	}
	for range 3 {
		tick(t, b, cb)
	}
	if st := b.sync.Stats(); st.Failures != 3 {
		t.Errorf("b's stats during the outage: %+v, want 3 failures", st)
	}
	if !b.denies("sess_before", cb.Now()) {
		t.Error("b forgot a denial while the storage was down")
	}
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 1 {
		t.Errorf("%d errors logged over 3 failed rounds, want 1", n)
	}

	restore()
	tick(t, a, ca) // writes what it learned during the outage
	tick(t, b, cb)
	if !b.denies("sess_during", cb.Now()) {
		t.Error("b did not converge once the storage was back")
	}
	if logs.FilterMessage("denylist storage usable again").Len() != 1 {
		t.Error("the recovery was not logged")
	}
}

// A first read that fails leaves the instance not ready; Start says why,
// and the background rounds make it ready once the storage works.
func TestStartWithStorageDown(t *testing.T) {
	verifyNoLeak(t)
	s := newStorage(t)
	clock := fakeclock.New(testNow)
	writer := newInstance(t, s, clock, "writer")
	writer.sync.Deny(revoke("sess_1", testNow))
	mustSync(t, writer)
	doc := docPath(s, "writer")
	good, err := os.ReadFile(doc)
	mustDo(t, err, os.Remove(doc), os.Mkdir(doc, 0o700)) // loading a folder fails

	in := newInstance(t, sameFolder(s), clock, "late")
	if err := in.sync.Start(context.Background()); err == nil {
		t.Fatal("Start over an unreadable document reported no error")
	}
	select {
	case <-in.sync.Ready():
		t.Fatal("ready without having read every document")
	default:
	}
	mustDo(t, os.Remove(doc), os.WriteFile(doc, good, 0o600))
	tick(t, in, clock)
	<-in.sync.Ready()
	if !in.denies("sess_1", clock.Now()) {
		t.Error("not converged once the document was readable")
	}
}

// hangingStorage is a FileStorage whose reads hang until their context
// ends, as a storage behind a dead network does.
type hangingStorage struct {
	*certmagic.FileStorage
	hang chan struct{} // closed: reads hang
}

func (h hangingStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	select {
	case <-h.hang:
		<-ctx.Done()
		return nil, ctx.Err()
	default:
		return h.FileStorage.List(ctx, prefix, recursive)
	}
}

// Look-ups and Deny never wait for a storage that hangs, a round or flush
// waiting behind one gives up with its context, and Stop ends it.
func TestStorageHangs(t *testing.T) {
	verifyNoLeak(t)
	clock := fakeclock.New(testNow)
	hs := hangingStorage{newStorage(t), make(chan struct{})}
	list := denylist.New(denylist.Options{Now: clock.Now})
	syncer, err := New(hs, list, Options{InstanceID: "a", Clock: clock, StorageTimeout: time.Hour}, zap.NewNop())
	mustDo(t, err, syncer.Start(context.Background()))
	close(hs.hang)
	clock.WaitTimer(t)
	clock.Advance(syncEvery) // the round hangs in List

	done := make(chan struct{})
	go func() {
		defer close(done)
		syncer.Deny(revoke("sess_1", testNow))
		if list.Check("sess_1", "", noIAT, testNow) != denylist.Session {
			t.Error("a denial was not denied while the storage hung")
		}
	}()
	<-done

	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := syncer.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a round over a hanging storage: %v", err)
	}
	if err := syncer.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a flush behind a hanging round: %v", err)
	}
	syncer.Stop() // cancels the hanging round
}
