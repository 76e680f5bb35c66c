package assertion

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// The goroutine of Start refreshes at once and then every RefreshEvery,
// doing the rotation work that falls due, and learns the keys another
// instance made.
func TestBackgroundRefresh(t *testing.T) {
	verifyNoLeak(t)
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	r := newRing(t, s, clock, testOptions)
	r.Start()
	if d := clock.WaitTimer(t); d != testOptions.RefreshEvery {
		t.Fatalf("after a good refresh the ring waits %v, want %v", d, testOptions.RefreshEvery)
	}
	if n := len(r.Keys()); n != 1 {
		t.Fatalf("%d keys after the first refresh, want 1", n)
	}

	// Another instance, its clock half a day ahead, makes the next key.
	other := newRing(t, sameFolder(s), fakeclock.New(testNow.Add(12*time.Hour+time.Minute)), testOptions)
	mustRefresh(t, other)
	if len(r.Keys()) != 1 {
		t.Fatal("the ring learned of a key before its next refresh")
	}
	clock.Advance(testOptions.RefreshEvery)
	clock.WaitTimer(t)
	if got, want := kids(r.Keys()), kids(other.Keys()); len(got) != 2 || got[1] != want[1] {
		t.Fatalf("after a refresh the ring holds %v, the other instance %v", got, want)
	}
}

// A failing storage is retried sooner than RefreshEvery, backing off, and a
// storage that works again brings the period back.
func TestBackgroundRetry(t *testing.T) {
	verifyNoLeak(t)
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	locks := filepath.Join(s.Path, "locks")
	mustDo(t, os.WriteFile(locks, nil, 0o600)) // the first key cannot be made
	r := newRing(t, s, clock, testOptions)
	r.Start()
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if d := clock.WaitTimer(t); d != want {
			t.Fatalf("retrying after %v, want %v", d, want)
		}
		if want == 8*time.Second {
			mustDo(t, os.Remove(locks)) // while the ring is idle
		}
		clock.Advance(want)
	}
	if d := clock.WaitTimer(t); d != testOptions.RefreshEvery {
		t.Fatalf("after recovering the ring waits %v, want %v", d, testOptions.RefreshEvery)
	}
	mustSign(t, r, claimsAt(clock.Now(), time.Minute))
}

// Stop ends the goroutine of Start even while it waits for a lock another
// instance holds, and may be called at any point, any number of times.
func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, r *KeyRing, clock *fakeclock.Clock)
	}{
		{"never started", func(*testing.T, *KeyRing, *fakeclock.Clock) {}},
		{"idle", func(t *testing.T, r *KeyRing, clock *fakeclock.Clock) {
			r.Start()
			clock.WaitTimer(t)
		}},
		{"waiting for the lock", func(t *testing.T, r *KeyRing, _ *fakeclock.Clock) {
			held := sameFolder(r.storage.(*certmagic.FileStorage))
			mustDo(t, held.Lock(context.Background(), r.lock))
			t.Cleanup(func() { mustDo(t, held.Unlock(context.Background(), r.lock)) })
			r.Start()
			waitFor(t, "the ring to wait for the lock", func() bool { return waitingForLock() == 1 })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifyNoLeak(t)
			clock := fakeclock.New(testNow)
			r := newRing(t, newStorage(t), clock, testOptions)
			tc.run(t, r, clock)
			begin := time.Now()
			r.Stop()
			if took := time.Since(begin); took > 10*time.Second {
				t.Errorf("Stop took %v", took)
			}
			if n := waitingForLock(); n != 0 {
				t.Errorf("%d goroutines still wait for the lock", n)
			}
			r.Stop()
			r.Start() // a stopped ring stays stopped
			r.Stop()
		})
	}
}
