package clerkauth

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
	"github.com/caddyclerk/caddy-clerk-auth/internal/leakcheck"
)

// runningFetchers counts the goroutines running the background loop of ks.
func runningFetchers(ks *jwks.Set) int {
	frame := fmt.Sprintf("jwks.(*Set).run(%p)", ks)
	n := 0
	for _, g := range leakcheck.Stacks() {
		if strings.Contains(g, frame) {
			n++
		}
	}
	return n
}

// liveSetsFor counts the live key sets that fetch from source.
func liveSetsFor(source string) int {
	n := 0
	for _, s := range jwks.Live() {
		if s.Source == source {
			n++
		}
	}
	return n
}

// TestLeakUsagePoolReloadsKeepOneFetcher plays config reloads the way Caddy
// runs them, through a UsagePool and loadKeySet as provision.go does: the
// new config's handlers are provisioned before the old ones are cleaned up.
// The key set survives every reload, with one fetcher and one fetch, and
// goes away with the last handler.
func TestLeakUsagePoolReloadsKeepOneFetcher(t *testing.T) {
	leakcheck.Verify(t)
	iss := clerktest.Start(t)
	url := iss.JWKSURL()
	pool := caddy.NewUsagePool()
	provision := func() *jwks.Set {
		t.Helper()
		ks, err := loadKeySet(pool, url, url, nil, jwks.Options{}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	cleanup := func(handlers int) (destructed bool) {
		t.Helper()
		for range handlers {
			deleted, err := pool.Delete(url)
			if err != nil {
				t.Fatal(err)
			}
			destructed = destructed || deleted
		}
		return destructed
	}

	cfg := []*jwks.Set{provision(), provision()} // two sites, one key source
	first := cfg[0]
	source := first.Stats().Source
	if _, _, err := first.Key(context.Background(), iss.KID()); err != nil {
		t.Fatal(err)
	}
	for reload := range 50 {
		next := []*jwks.Set{provision(), provision()}
		if cleanup(len(cfg)) {
			t.Fatalf("reload %d destructed the shared key set", reload)
		}
		for _, ks := range next {
			if ks != first {
				t.Fatalf("reload %d made a new key set", reload)
			}
		}
		if n := runningFetchers(first); n != 1 {
			t.Fatalf("after reload %d: %d fetchers running, want 1", reload, n)
		}
		if n := liveSetsFor(source); n != 1 {
			t.Fatalf("after reload %d: %d live key sets for the source, want 1", reload, n)
		}
		cfg = next
	}
	if n := iss.Fetches(); n != 1 {
		t.Fatalf("50 reloads made %d fetches, want 1", n)
	}

	if !cleanup(len(cfg)) {
		t.Fatal("the last handler's cleanup did not destruct the key set")
	}
	if n := runningFetchers(first); n != 0 {
		t.Fatalf("%d fetchers still running after the last cleanup", n)
	}
	if n := liveSetsFor(source); n != 0 {
		t.Fatalf("%d key sets still reported after the last cleanup", n)
	}
}
