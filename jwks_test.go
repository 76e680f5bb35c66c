package clerkauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// fakeClock is a concurrency-safe settable clock for keySet and verifier.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := new(fakeClock)
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// startClockedKeySet is startKeySet with the throttle driven by clock.
func startClockedKeySet(t *testing.T, url string, clock *fakeClock) *keySet {
	t.Helper()
	ks := newKeySet(url, nil, defaultKeySetOptions, zap.NewNop())
	ks.now = clock.Now
	ks.start()
	t.Cleanup(func() { _ = ks.Destruct() })
	<-ks.settled
	return ks
}

func TestKeySetUnknownKIDRefetchIsThrottledAndShared(t *testing.T) {
	iss := clerktest.Start(t)
	clock := newFakeClock(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), clock)
	if n := iss.Fetches(); n != 1 {
		t.Fatalf("start-up made %d fetches, want 1", n)
	}

	flood := func(n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := ks.key(context.Background(), fmt.Sprintf("ins_unknown_%d", i))
				if !errors.Is(err, errUnknownKID) {
					t.Errorf("unknown kid: got %v, want errUnknownKID", err)
				}
			}()
		}
		wg.Wait()
	}
	flood(200)
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("200 concurrent unknown kids made %d extra fetches, want 1", n-1)
	}
	clock.Advance(defaultKeySetOptions.minInterval - time.Second)
	flood(200)
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("unknown kids inside the interval fetched again (%d fetches)", n)
	}

	// Clerk rotates; once the interval has passed, the new kid is fetched.
	newKID := iss.Rotate()
	clock.Advance(time.Second)
	if _, _, err := ks.key(context.Background(), newKID); err != nil {
		t.Fatalf("rotated kid after the interval: %v", err)
	}
	if n := iss.Fetches(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
}

func TestKeySetKeepsGoodKeysOnBadResponses(t *testing.T) {
	iss := clerktest.Start(t)
	clock := newFakeClock(testNow)
	ks := startClockedKeySet(t, iss.JWKSURL(), clock)
	kid := iss.KID()

	faults := map[string]clerktest.Fault{
		"500":          {Status: http.StatusInternalServerError},
		"404":          {Status: http.StatusNotFound},
		"garbage":      {Body: []byte("<html>oops</html>")},
		"empty object": {Body: []byte("{}")},
		"no keys":      {Body: []byte(`{"keys":[]}`)},
		"weak key only": {Body: func() []byte {
			k, err := clerktest.NewRSAKey(1024)
			if err != nil {
				t.Fatal(err)
			}
			return jwksOf(t, "weak", k.N.Bytes())
		}()},
		"oversized": {Oversize: true},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			iss.SetFault(f)
			clock.Advance(time.Minute)
			before := iss.Fetches()
			_, _, err := ks.key(context.Background(), "ins_trigger_refetch")
			if !errors.Is(err, errUnknownKID) {
				t.Fatalf("got %v, want errUnknownKID with the old set still in place", err)
			}
			if iss.Fetches() != before+1 {
				t.Fatalf("the refetch did not happen")
			}
			if _, _, err := ks.key(context.Background(), kid); err != nil {
				t.Fatalf("good key lost after a %s response: %v", name, err)
			}
		})
	}
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	good, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	n := b64url(good.N.Bytes())
	body := fmt.Sprintf(`{"keys":[
		{"kty":"RSA","kid":"enc","use":"enc","n":%[1]q,"e":"AQAB"},
		{"kty":"RSA","kid":"ps","alg":"PS256","n":%[1]q,"e":"AQAB"},
		{"kty":"EC","kid":"ec","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
		{"kty":"RSA","kid":"e1","n":%[1]q,"e":"AQ"},
		{"kty":"oops"},
		{"kty":"RSA","kid":"good","alg":"RS256","use":"sig","n":%[1]q,"e":"AQAB"}
	]}`, n)
	keys, err := parseJWKS([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys["good"].pub == nil || keys["good"].alg != "RS256" {
		t.Fatalf("parsed %v, want only the good key", keys)
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwksOf(t *testing.T, kid string, n []byte) []byte {
	t.Helper()
	return fmt.Appendf(nil, `{"keys":[{"kty":"RSA","kid":%q,"alg":"RS256","n":%q,"e":"AQAB"}]}`, kid, b64url(n))
}
