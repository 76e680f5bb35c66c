package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// TestKeySetRefetch checks, on a clock the test moves, that an unknown kid
// forces a fetch at most once per refetchEvery, and that a failed fetch is
// errKeysUnavailable until one succeeds.
func TestKeySetRefetch(t *testing.T) {
	var (
		mu      sync.Mutex
		kids    []string // the key set served; nil: answer 500
		fetches atomic.Int64
	)
	serve := func(k ...string) {
		mu.Lock()
		defer mu.Unlock()
		kids = k
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if kids == nil {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(jwksWith(t, kids...))
	}))
	defer srv.Close()

	now := time.Unix(1_700_000_000, 0)
	keys, err := newKeySet(srv.URL, srv.Client(), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		serve       []string
		advance     time.Duration
		kid         string
		wantErr     error // nil: the key is found
		wantFetches int64 // in this step
	}{
		{"outage before any fetch", nil, 0, "a", errKeysUnavailable, 1},
		{"still down: every request tries", nil, 0, "a", errKeysUnavailable, 1},
		{"keys served", []string{"a"}, 0, "a", nil, 1},
		{"a cached key", []string{"a"}, 0, "a", nil, 0},
		{"an unknown kid refetches", []string{"a"}, 0, "x", errUnknown, 1},
		{"the next one within the window does not", []string{"a", "b"}, refetchEvery - time.Second, "b", errUnknown, 0},
		{"after the window a new key is found", []string{"a", "b"}, time.Second, "b", nil, 1},
		{"a failed refetch is an outage", nil, refetchEvery, "y", errKeysUnavailable, 1},
		{"the cached keys outlive a failed refetch", nil, 0, "b", nil, 0},
	}
	for _, s := range steps {
		serve(s.serve...)
		now = now.Add(s.advance)
		before := fetches.Load()
		_, err := keys.lookup(context.Background(), s.kid)
		switch {
		case s.wantErr == errUnknown && (err == nil || errors.Is(err, errKeysUnavailable)):
			t.Errorf("%s: lookup(%q) = %v, want an unknown kid", s.name, s.kid, err)
		case s.wantErr != errUnknown && !errors.Is(err, s.wantErr):
			t.Errorf("%s: lookup(%q) = %v, want %v", s.name, s.kid, err, s.wantErr)
		}
		if got := fetches.Load() - before; got != s.wantFetches {
			t.Errorf("%s: %d fetches, want %d", s.name, got, s.wantFetches)
		}
	}
}

// errUnknown marks a step whose lookup fails for the kid, not the key set.
var errUnknown = errors.New("unknown kid")

// jwksWith is a key set of fresh P-256 keys with these kids.
func jwksWith(t *testing.T, kids ...string) jwk.Set {
	set := jwk.NewSet()
	for _, kid := range kids {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Error(err)
			return set
		}
		key, err := jwk.FromRaw(priv.Public())
		if err == nil {
			err = key.Set(jwk.KeyIDKey, kid)
		}
		if err == nil {
			err = set.AddKey(key)
		}
		if err != nil {
			t.Error(err)
		}
	}
	return set
}
