package clerkauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

func newCachedVerifier(t *testing.T, iss *clerktest.Issuer, clock *fakeclock.Clock) (*verifier, *[2]int) {
	t.Helper()
	v := newTestVerifier(t, iss)
	v.now = clock.Now
	v.cache = newVerifiedCache(defaultTokenCacheSize)
	var mu sync.Mutex
	counts := new([2]int) // misses, hits
	v.observeCache = func(hit bool) {
		mu.Lock()
		defer mu.Unlock()
		if hit {
			counts[1]++
		} else {
			counts[0]++
		}
	}
	return v, counts
}

func TestVerifiedCacheWindow(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	v, counts := newCachedVerifier(t, iss, clock)
	// Valid from testNow-10s-5s (nbf, leeway) to testNow+60s+5s (exp, leeway).
	token := iss.Mint()

	steps := []struct {
		name    string
		advance time.Duration
		reason  string // "" = valid
		hits    int
	}{
		{"first sight verifies", 0, "", 0},
		{"second sight hits", 0, "", 1},
		{"still valid inside the leeway", 64 * time.Second, "", 2},
		{"rejected at exp + leeway, never from the cache", time.Second, ReasonTokenExpired, 2},
		{"and after", time.Hour, ReasonTokenExpired, 2},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		_, err := v.verify(context.Background(), token)
		var ve *VerifyError
		switch {
		case s.reason == "" && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.reason != "" && (!errors.As(err, &ve) || ve.Reason != s.reason):
			t.Fatalf("%s: got %v, want %s", s.name, err, s.reason)
		}
		if counts[1] != s.hits {
			t.Fatalf("%s: %d cache hits, want %d", s.name, counts[1], s.hits)
		}
	}
}

func TestVerifiedCacheNotBefore(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	v, counts := newCachedVerifier(t, iss, clock)
	token := iss.Mint(claimsOpt("nbf", testNow.Unix()-5, "iat", testNow.Unix()-5))
	if _, err := v.verify(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	// A clock stepped back before nbf - leeway must not be served from the cache.
	clock.Advance(-11 * time.Second)
	if _, err := v.verify(context.Background(), token); err == nil || counts[1] != 0 {
		t.Fatalf("token served before its nbf: err %v, hits %d", err, counts[1])
	}
}

func TestVerifiedCacheOnlyHoldsSuccesses(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	v, counts := newCachedVerifier(t, iss, clock)
	bad := iss.Mint(claimsOpt("iss", "https://evil.example"))
	for range 3 {
		if _, err := v.verify(context.Background(), bad); err == nil {
			t.Fatal("bad token accepted")
		}
	}
	if counts[1] != 0 || cacheLen(v.cache) != 0 {
		t.Fatalf("a rejected token was cached: hits %d, entries %d", counts[1], cacheLen(v.cache))
	}
}

// TestVerifiedCacheConfigIsolation: each handler has its own cache, so a
// token one configuration accepted is still judged by another's rules.
func TestVerifiedCacheConfigIsolation(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	lenient, _ := newCachedVerifier(t, iss, clock)
	strict, _ := newCachedVerifier(t, iss, clock)
	strict.authorizedParties = []string{"https://app.example.com"}
	strict.accept = map[string]bool{TokenTypeSession: true}

	for _, token := range []string{iss.Mint(), iss.Mint(clerktest.Template(), claimsOpt("azp", "https://app.example.com"))} {
		if _, err := lenient.verify(context.Background(), token); err != nil {
			t.Fatal(err)
		}
		if _, err := strict.verify(context.Background(), token); err == nil {
			t.Fatal("a token cached by one handler passed another handler's stricter rules")
		}
	}
}

func TestVerifiedCacheBounded(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	v, _ := newCachedVerifier(t, iss, clock)
	v.cache = newVerifiedCache(64)
	for i := range 1000 {
		token := iss.Mint(claimsOpt("sub", fmt.Sprintf("user_%d", i)))
		if _, err := v.verify(context.Background(), token); err != nil {
			t.Fatal(err)
		}
	}
	if n := cacheLen(v.cache); n > 64+cacheShards || n == 0 {
		t.Fatalf("cache holds %d entries for a bound of 64", n)
	}
	big := iss.Mint(claimsOpt("pad", strings.Repeat("a", maxCachedTokenSize)))
	before := cacheLen(v.cache)
	if _, err := v.verify(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	if cacheLen(v.cache) > before {
		t.Fatal("a token above maxCachedTokenSize was cached")
	}
}

func TestVerifiedCacheConcurrent(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	v, _ := newCachedVerifier(t, iss, clock)
	v.cache = newVerifiedCache(32)
	tokens := make([]string, 50)
	for i := range tokens {
		tokens[i] = iss.Mint(claimsOpt("sub", fmt.Sprintf("user_%d", i)))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				tok := tokens[(g*7+i)%len(tokens)]
				id, err := v.verify(context.Background(), tok)
				if err != nil {
					t.Error(err)
					return
				}
				if want := fmt.Sprintf("user_%d", (g*7+i)%len(tokens)); id.Subject != want {
					t.Errorf("token for %s returned identity %s", want, id.Subject)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// cacheLen counts the entries of all shards.
func cacheLen(c *verifiedCache) int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
