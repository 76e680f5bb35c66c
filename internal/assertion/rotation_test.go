package assertion

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// keyNames names kids K1, K2, ... in the order they appear, so a timeline
// can be written before its keys exist.
type keyNames map[string]string

func (n keyNames) of(kid string) string {
	if _, ok := n[kid]; !ok {
		n[kid] = "K" + string(rune('1'+len(n)))
	}
	return n[kid]
}

// published names the kids of a JWKS body.
func (n keyNames) published(t *testing.T, body []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, n.of(k.Kid))
	}
	return out
}

// signerName is the name of the kid an assertion signed now carries.
func (n keyNames) signerName(t *testing.T, r *KeyRing) string {
	t.Helper()
	k := r.signer(r.opts.Clock.Now())
	if k == nil {
		return ""
	}
	return n.of(k.kid)
}

// The default schedule, step by step, on two instances sharing storage: the
// next key is published half a day before it signs, the old one stays
// published for Overlap after it stops, so that an assertion signed in its
// last second verifies until it expires, and is pruned after that.
func TestRotationTimeline(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	a := newRing(t, s, clock, testOptions)
	b := newRing(t, sameFolder(s), clock, testOptions)
	names := keyNames{}
	var lastOfK1 string // signed by K1 in its last minute, valid for Overlap

	for _, step := range []struct {
		at        time.Duration // since testNow
		published []string      // the JWKS of both rings, and the storage
		signer    string
		check     func(t *testing.T)
	}{
		{at: 0, published: []string{"K1"}, signer: "K1"},
		{at: 11*time.Hour + 58*time.Minute, published: []string{"K1"}, signer: "K1"},
		{at: 12*time.Hour + time.Minute, published: []string{"K1", "K2"}, signer: "K1", check: func(t *testing.T) {
			k2 := a.Keys()[1]
			if ahead := k2.SignFrom.Sub(k2.Created); ahead < testOptions.Overlap+2*testOptions.RefreshEvery {
				t.Errorf("K2 is published only %v before it signs", ahead)
			}
			if !k2.SignFrom.Equal(a.Keys()[0].SignUntil) {
				t.Errorf("K2 signs from %v, K1 until %v: the windows must chain", k2.SignFrom, a.Keys()[0].SignUntil)
			}
		}},
		{at: 23*time.Hour + 59*time.Minute, published: []string{"K1", "K2"}, signer: "K1", check: func(t *testing.T) {
			lastOfK1 = mustSign(t, a, claimsAt(clock.Now(), testOptions.Overlap))
		}},
		{at: 24 * time.Hour, published: []string{"K1", "K2"}, signer: "K2"},
		{at: 24*time.Hour + 58*time.Minute, published: []string{"K1", "K2"}, signer: "K2", check: func(t *testing.T) {
			for _, r := range []*KeyRing{a, b} {
				body, _ := r.JWKS()
				if _, err := verify(lastOfK1, body, clock.Now()); err != nil {
					t.Errorf("K1's last assertion no longer verifies before its exp: %v", err)
				}
			}
		}},
		{at: 25 * time.Hour, published: []string{"K2"}, signer: "K2"},
		{at: 36*time.Hour + time.Minute, published: []string{"K2", "K3"}, signer: "K2"},
		{at: 48 * time.Hour, published: []string{"K2", "K3"}, signer: "K3"},
	} {
		t.Run(step.at.String(), func(t *testing.T) {
			clock.Advance(testNow.Add(step.at).Sub(clock.Now()))
			mustRefresh(t, a, b)
			bodyA, etagA := a.JWKS()
			bodyB, etagB := b.JWKS()
			if !bytes.Equal(bodyA, bodyB) || etagA != etagB {
				t.Fatalf("the instances publish different JWKS:\n%s\n%s", bodyA, bodyB)
			}
			if got := names.published(t, bodyA); !slices.Equal(got, step.published) {
				t.Errorf("JWKS holds %v, want %v", got, step.published)
			}
			stored, err := decodeDocument(readDoc(t, s))
			if err != nil {
				t.Fatal(err)
			}
			var inStorage []string
			for _, k := range stored {
				inStorage = append(inStorage, names.of(k.kid))
			}
			if !slices.Equal(inStorage, step.published) {
				t.Errorf("storage holds %v, want %v", inStorage, step.published)
			}
			for _, r := range []*KeyRing{a, b} {
				if got := names.signerName(t, r); got != step.signer {
					t.Errorf("signing with %q, want %s", got, step.signer)
				}
			}
			tok := mustSign(t, b, claimsAt(clock.Now(), 5*time.Minute))
			if _, err := verify(tok, bodyA, clock.Now()); err != nil {
				t.Errorf("an assertion signed now does not verify: %v", err)
			}
			if step.check != nil {
				step.check(t)
			}
		})
	}
}

// A cluster that was down for longer than its schedule reached has no key
// for the present: it refuses to sign until it reads storage again, then
// makes a key that signs at once.
func TestRotationAfterDowntime(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	r := newRing(t, s, clock, testOptions)
	mustRefresh(t, r)
	k1 := r.Keys()[0]

	clock.Advance(50 * time.Hour)
	if _, err := r.Sign(claimsAt(clock.Now(), time.Minute)); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("signing past every window: got %v, want ErrNoSigningKey", err)
	}
	mustRefresh(t, r)
	keys := r.Keys()
	if len(keys) != 1 || keys[0].KID == k1.KID {
		t.Fatalf("after the downtime the ring holds %v, want one new key", kids(keys))
	}
	if !keys[0].SignFrom.Equal(clock.Now()) {
		t.Errorf("the new key signs from %v, want now (%v): nothing else covers the present", keys[0].SignFrom, clock.Now())
	}
	mustSign(t, r, claimsAt(clock.Now(), time.Minute))
}

// The first schedule reaches at least lead() ahead whatever the options,
// with windows that chain without gaps.
func TestFirstSchedule(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     Options
		wantKeys int
	}{
		{"defaults", Options{}, 1},
		{"rotation shorter than the overlap", Options{RotateEvery: 30 * time.Minute, Overlap: time.Hour, RefreshEvery: time.Minute}, 3},
		{"hourly", Options{RotateEvery: time.Hour, Overlap: 10 * time.Minute, RefreshEvery: time.Minute}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(testNow)
			r := newRing(t, newStorage(t), clock, tc.opts)
			mustRefresh(t, r)
			keys := r.Keys()
			if len(keys) != tc.wantKeys {
				t.Fatalf("%d keys, want %d", len(keys), tc.wantKeys)
			}
			if !keys[0].SignFrom.Equal(testNow) {
				t.Errorf("the first key signs from %v, want now", keys[0].SignFrom)
			}
			for i := 1; i < len(keys); i++ {
				if !keys[i].SignFrom.Equal(keys[i-1].SignUntil) {
					t.Errorf("key %d signs from %v, key %d until %v", i, keys[i].SignFrom, i-1, keys[i-1].SignUntil)
				}
			}
			if end := keys[len(keys)-1].SignUntil; end.Before(testNow.Add(r.opts.lead())) {
				t.Errorf("the schedule ends at %v, before now + %v", end, r.opts.lead())
			}
		})
	}
}
