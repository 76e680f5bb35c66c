package assertion

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
	"github.com/caddyclerk/caddy-clerk-auth/internal/leakcheck"
)

// Two Caddy processes over one storage folder are one cluster: one key, one
// JWKS, and each one's assertions verify against the other's JWKS.
func TestSharedStorage(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	a := newRing(t, s, clock, testOptions)
	b := newRing(t, sameFolder(s), clock, testOptions)
	mustRefresh(t, a, b)

	if ka, kb := kids(a.Keys()), kids(b.Keys()); len(ka) != 1 || !slices.Equal(ka, kb) {
		t.Fatalf("keys %v and %v, want the same single key", ka, kb)
	}
	bodyA, etagA := a.JWKS()
	bodyB, etagB := b.JWKS()
	if !bytes.Equal(bodyA, bodyB) || etagA != etagB {
		t.Fatalf("JWKS differ:\n%s %s\n%s %s", bodyA, etagA, bodyB, etagB)
	}
	rings := map[string]*KeyRing{"a": a, "b": b}
	for _, tc := range []struct{ signer, verifier string }{
		{"a", "b"}, {"b", "a"},
	} {
		t.Run(tc.signer+" signs, "+tc.verifier+" publishes", func(t *testing.T) {
			tok := mustSign(t, rings[tc.signer], claimsAt(testNow, 5*time.Minute))
			body, _ := rings[tc.verifier].JWKS()
			if _, err := verify(tok, body, testNow); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Instances that start at once, each finding no key, make one between them:
// whoever holds the lock after the first re-reads and finds its key. The
// test holds the lock until every ring has found the storage empty and
// waits for it, so that all of them race for the same work.
func TestConcurrentStart(t *testing.T) {
	const n = 3 // the lock is polled every real second: keep the queue short
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	rings := make([]*KeyRing, n)
	for i := range rings {
		rings[i] = newRing(t, sameFolder(s), clock, testOptions)
	}
	ctx := context.Background()
	if err := s.Lock(ctx, rings[0].lock); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, r := range rings {
		wg.Go(func() { errs[i] = r.Refresh(ctx) })
	}
	waitFor(t, "every ring to wait for the lock", func() bool { return waitingForLock() == n })
	if err := s.Unlock(ctx, rings[0].lock); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ring %d: %v", i, err)
		}
	}
	want := kids(rings[0].Keys())
	if len(want) != 1 {
		t.Fatalf("ring 0 holds %d keys, want 1", len(want))
	}
	for i, r := range rings[1:] {
		if got := kids(r.Keys()); !slices.Equal(got, want) {
			t.Errorf("ring %d holds %v, ring 0 %v", i+1, got, want)
		}
	}
	stored, err := decodeDocument(readDoc(t, s))
	if err != nil || len(stored) != 1 || stored[0].kid != want[0] {
		t.Fatalf("storage holds %d keys (%v), want only %s", len(stored), err, want[0])
	}
}

// A restarted instance signs with the keys in storage rather than making its
// own, and leaves the document as it was.
func TestRestartReadsExistingKeys(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	first := newRing(t, s, clock, testOptions)
	first.Start()
	clock.WaitTimer(t)
	first.Stop()
	tok := mustSign(t, first, claimsAt(testNow, 5*time.Minute))
	doc := readDoc(t, s)

	clock.Advance(time.Hour)
	restarted := newRing(t, sameFolder(s), clock, testOptions)
	mustRefresh(t, restarted)
	if got, want := kids(restarted.Keys()), kids(first.Keys()); !slices.Equal(got, want) {
		t.Fatalf("restarted ring holds %v, want %v", got, want)
	}
	if !bytes.Equal(readDoc(t, s), doc) {
		t.Error("the restarted ring rewrote a document that needed no work")
	}
	body, _ := restarted.JWKS()
	if _, err := verify(tok, body, testNow); err != nil {
		t.Errorf("an assertion from before the restart no longer verifies: %v", err)
	}
}

// waitingForLock counts the goroutines inside a KeyRing's wait for the
// storage's lock.
func waitingForLock() int {
	n := 0
	for _, g := range leakcheck.Stacks() {
		if strings.Contains(g, "assertion.(*KeyRing).maintain") && strings.Contains(g, "certmagic.(*FileStorage).Lock") {
			n++
		}
	}
	return n
}

// waitFor polls cond, for what only the scheduler can tell (such as a
// goroutine having reached a lock); nothing here waits on a KeyRing's timers.
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
