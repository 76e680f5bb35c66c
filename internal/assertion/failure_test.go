package assertion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// corruptions turn a good key document into ones a ring must refuse.
var corruptions = []struct {
	name   string
	mutate func(t *testing.T, good []byte) []byte
}{
	{"empty", func(*testing.T, []byte) []byte { return nil }},
	{"not JSON", func(_ *testing.T, good []byte) []byte { return good[:len(good)/2] }},
	{"not a document", func(*testing.T, []byte) []byte { return []byte(`{"version":1,"keys":"none"}`) }},
	{"newer version", editDoc(func(d *document) { d.Version = 2 })},
	{"kid of another key", editDoc(func(d *document) { d.Keys[0].KID = "F9Ld-S642MioAkJnBDRN3DrGaeMNAf-YcKugVjiWL3g" })},
	{"wrong alg", editDoc(func(d *document) { d.Keys[0].Alg = "RS256" })},
	{"private key not PEM", editDoc(func(d *document) { d.Keys[0].PrivateKey = "not a key" })},
	{"private key truncated", editDoc(func(d *document) {
		lines := strings.Split(d.Keys[0].PrivateKey, "\n")
		d.Keys[0].PrivateKey = strings.Join(append(lines[:2:2], lines[len(lines)-2:]...), "\n")
	})},
	{"impossible schedule", editDoc(func(d *document) { d.Keys[0].SignUntil = d.Keys[0].SignFrom.Add(-time.Hour) })},
	{"key twice", editDoc(func(d *document) { d.Keys = append(d.Keys, d.Keys[0]) })},
}

func editDoc(edit func(*document)) func(t *testing.T, good []byte) []byte {
	return func(t *testing.T, good []byte) []byte {
		t.Helper()
		var d document
		if err := json.Unmarshal(good, &d); err != nil {
			t.Fatal(err)
		}
		edit(&d)
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// A corrupt document is reported and left alone, even when rotation work is
// due: a ring that had good keys keeps signing and publishing them, a ring
// that never had any refuses to sign.
func TestCorruptDocument(t *testing.T) {
	for _, tc := range corruptions {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(testNow)
			s := newStorage(t)
			running := newRing(t, s, clock, testOptions)
			mustRefresh(t, running)
			goodJWKS, goodETag := running.JWKS()
			goodKids := kids(running.Keys())

			bad := tc.mutate(t, readDoc(t, s))
			if err := os.WriteFile(docPath(s), bad, 0o600); err != nil {
				t.Fatal(err)
			}
			clock.Advance(12*time.Hour + time.Minute) // the next key is due
			if err := running.Refresh(context.Background()); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("refresh over a corrupt document: got %v, want ErrCorrupt", err)
			}
			if got := kids(running.Keys()); !slices.Equal(got, goodKids) {
				t.Errorf("holds %v after the corrupt read, want %v", got, goodKids)
			}
			if body, etag := running.JWKS(); !bytes.Equal(body, goodJWKS) || etag != goodETag {
				t.Error("the JWKS changed on a corrupt read")
			}
			mustSign(t, running, claimsAt(clock.Now(), time.Minute))

			fresh := newRing(t, sameFolder(s), clock, testOptions)
			if err := fresh.Refresh(context.Background()); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("first read of a corrupt document: got %v, want ErrCorrupt", err)
			}
			_, err := fresh.Sign(claimsAt(clock.Now(), time.Minute))
			if !errors.Is(err, ErrNoSigningKey) || !strings.Contains(err.Error(), "unusable") {
				t.Errorf("signing with no good read: got %v, want ErrNoSigningKey saying why", err)
			}
			if !bytes.Equal(readDoc(t, s), bad) {
				t.Error("a ring overwrote the corrupt document")
			}
		})
	}
}

// A storage that cannot be read, or cannot be locked to make the first key,
// is reported; the last good keys stay in use, and a read that works again
// is noticed.
func TestStorageUnusable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, s string) (repair func())
		// hadKeys: the ring read good keys before the storage broke.
		hadKeys bool
	}{
		{"document unreadable", func(t *testing.T, dir string) func() {
			doc := filepath.Join(dir, filepath.FromSlash(DefaultOptions.Prefix), "keys.json")
			good, err := os.ReadFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			mustDo(t, os.Remove(doc), os.Mkdir(doc, 0o700)) // reading a folder fails
			return func() { mustDo(t, os.Remove(doc), os.WriteFile(doc, good, 0o600)) }
		}, true},
		{"lock unobtainable, no key yet", func(t *testing.T, dir string) func() {
			locks := filepath.Join(dir, "locks")
			mustDo(t, os.WriteFile(locks, nil, 0o600)) // no lock file can be made under a file
			return func() { mustDo(t, os.Remove(locks)) }
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(testNow)
			s := newStorage(t)
			core, logs := observer.New(zapcore.InfoLevel)
			r, err := New(s, Options{Clock: clock}, zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			if tc.hadKeys {
				mustRefresh(t, r)
			}
			before := kids(r.Keys())
			repair := tc.spoil(t, s.Path)

			err = r.Refresh(context.Background())
			if err == nil || errors.Is(err, ErrCorrupt) {
				t.Fatalf("refresh over a broken storage: got %v", err)
			}
			if got := kids(r.Keys()); !slices.Equal(got, before) {
				t.Errorf("holds %v after the failed read, want %v", got, before)
			}
			_, signErr := r.Sign(claimsAt(clock.Now(), time.Minute))
			wantLevel := zapcore.WarnLevel
			if tc.hadKeys {
				if signErr != nil {
					t.Errorf("a ring with good keys stopped signing: %v", signErr)
				}
			} else {
				wantLevel = zapcore.ErrorLevel
				if !errors.Is(signErr, ErrNoSigningKey) {
					t.Errorf("a ring without keys signed: %v", signErr)
				}
			}
			if n := logs.FilterLevelExact(wantLevel).Len(); n != 1 {
				t.Errorf("%d %v log entries for the failure, want 1: %v", n, wantLevel, logs.All())
			}

			repair()
			mustRefresh(t, r)
			mustSign(t, r, claimsAt(clock.Now(), time.Minute))
			if logs.FilterMessage("identity assertion keys readable again").Len() != 1 {
				t.Error("the recovery was not logged")
			}
		})
	}
}

func mustDo(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Deleting the document is how an operator revokes the keys: the rings drop
// them and sign with a new one, rather than write the old ones back.
func TestDeletedDocumentRevokes(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	a := newRing(t, s, clock, testOptions)
	b := newRing(t, sameFolder(s), clock, testOptions)
	mustRefresh(t, a, b)
	old := a.Keys()[0].KID
	mustDo(t, os.Remove(docPath(s)))
	clock.Advance(testOptions.RefreshEvery)
	mustRefresh(t, a, b)
	for name, r := range map[string]*KeyRing{"a": a, "b": b} {
		if got := kids(r.Keys()); len(got) != 1 || got[0] == old {
			t.Errorf("ring %s holds %v after the revocation, want one new key", name, got)
		}
		if body, _ := r.JWKS(); strings.Contains(string(body), old) {
			t.Errorf("ring %s still publishes the revoked key", name)
		}
	}
	if !slices.Equal(kids(a.Keys()), kids(b.Keys())) {
		t.Error("the rings made different keys")
	}
}
