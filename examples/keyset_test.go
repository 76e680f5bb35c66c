package examples

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/assertion"
)

// The audience and issuer of the assertions TestAssertionKeySet signs.
const (
	keySetAudience = "https://app.internal"
	keySetIssuer   = "https://api.example.com"
)

// TestAssertionKeySet runs each example upstream in assertion mode against
// a key set server that fails, then serves, then changes its keys, and
// checks that an outage is answered 503 with Retry-After (never 401, which
// would sign the user out), that the app recovers once the keys can be
// fetched, that it accepts a key published after its last fetch, and that
// made-up kids cost the key set server one fetch, not one each.
func TestAssertionKeySet(t *testing.T) {
	for _, app := range assertionApps() {
		t.Run(app.name, func(t *testing.T) {
			argv := app.argv(t)
			t.Parallel()
			ringA, ringB := newRing(t), newRing(t)
			tokenA, tokenB := sign(t, ringA), sign(t, ringB)

			t.Run("key set unreachable", func(t *testing.T) {
				closed := fmt.Sprintf("http://127.0.0.1:%d%s", freePort(t), jwksPath)
				wantUnavailable(t, startAssertionApp(t, argv, closed, keySetAudience, keySetIssuer), tokenA)
			})

			t.Run("outage, then keys, then an emergency key change", func(t *testing.T) {
				keys := startKeySet(t)
				url := startAssertionApp(t, argv, keys.url, keySetAudience, keySetIssuer)
				keys.set(http.StatusInternalServerError, []byte("down"))
				wantUnavailable(t, url, tokenA)
				keys.set(http.StatusOK, []byte("<html>not a key set</html>"))
				wantUnavailable(t, url, tokenA)
				keys.set(http.StatusOK, jwksOf(ringA))
				wantIdentity(t, url, tokenA)

				// Ring A's keys are gone, ring B's published: what deleting
				// Caddy's keys.json does.
				keys.set(http.StatusOK, jwksOf(ringB))
				before := keys.fetches.Load()
				status, wantFetches := http.StatusOK, int64(1)
				if app.coolsDownAfterAnyFetch {
					// Its copy is fresh: the new key waits for the cooldown.
					status, wantFetches = http.StatusUnauthorized, 0
				}
				if got, body := fetch(t, url, http.Header{assertionHeader: {tokenB}}); got != status {
					t.Errorf("an assertion by a key published since the last fetch: %d %s, want %d", got, body, status)
				}
				if got := keys.fetches.Load() - before; got != wantFetches {
					t.Errorf("it cost %d key set fetches, want %d", got, wantFetches)
				}
			})

			t.Run("made-up kids", func(t *testing.T) {
				keys := startKeySet(t)
				keys.set(http.StatusOK, jwksOf(ringA))
				url := startAssertionApp(t, argv, keys.url, keySetAudience, keySetIssuer)
				wantIdentity(t, url, tokenA)
				for i := range 50 {
					token := withKid(t, tokenA, fmt.Sprintf("made-up-%d", i))
					if status, body := fetch(t, url, http.Header{assertionHeader: {token}}); status != http.StatusUnauthorized {
						t.Fatalf("made-up kid %d: %d %s, want 401", i, status, body)
					}
				}
				// One fetch for the first request, at most one more forced
				// by the first unknown kid.
				if got := keys.fetches.Load(); got > 2 {
					t.Errorf("1 genuine assertion and 50 made-up kids cost %d key set fetches, want at most 2", got)
				}
			})
		})
	}
}

// wantUnavailable checks that the app at url answers token with 503,
// Retry-After and an error.
func wantUnavailable(t *testing.T, url, token string) {
	t.Helper()
	resp, body := send(t, url, http.Header{assertionHeader: {token}})
	var doc map[string]any
	_ = json.Unmarshal(body, &doc)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" ||
		doc["error"] != "identity assertion keys unavailable" {
		t.Errorf("without the key set: %d, Retry-After %q, %s; want 503, 5 and an error",
			resp.StatusCode, resp.Header.Get("Retry-After"), bytes.TrimSpace(body))
	}
}

// wantIdentity checks that the app at url accepts token, made by sign.
func wantIdentity(t *testing.T, url, token string) {
	t.Helper()
	status, doc := get(t, url, http.Header{assertionHeader: {token}})
	want := map[string]any{"user_id": "user_example", "session_id": nil, "org_id": nil, "org_role": nil, "roles": []any{}}
	if status != http.StatusOK || !reflect.DeepEqual(doc, want) {
		t.Errorf("a genuine assertion: %d %v, want 200 %v", status, doc, want)
	}
}

// newRing is a KeyRing with keys of its own, as a Caddy with its own
// storage signs with.
func newRing(t *testing.T) *assertion.KeyRing {
	t.Helper()
	ring, err := assertion.New(&certmagic.FileStorage{Path: t.TempDir()}, assertion.Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ring
}

// sign is an assertion for user_example from ring, for keySetAudience.
func sign(t *testing.T, ring *assertion.KeyRing) string {
	t.Helper()
	now := time.Now()
	token, err := ring.Sign(map[string]any{
		"iss": keySetIssuer, "aud": keySetAudience, "sub": "user_example",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// jwksOf is the JWKS that clerk_identity_jwks serves for ring.
func jwksOf(ring *assertion.KeyRing) []byte {
	body, _ := ring.JWKS()
	return body
}

// withKid is token with its header's kid replaced, its signature kept.
func withKid(t *testing.T, token, kid string) string {
	t.Helper()
	header, err := json.Marshal(map[string]string{"alg": "ES256", "kid": kid, "typ": "JWT"})
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(header) + token[strings.Index(token, "."):]
}

// keySet is an HTTP server for a JWKS URL whose answer a test sets, and
// which counts the requests it got.
type keySet struct {
	url     string
	fetches atomic.Int64

	mu     sync.Mutex
	status int
	body   []byte
}

// startKeySet starts a keySet that answers 500 until set, and stops it when
// the test ends.
func startKeySet(t *testing.T) *keySet {
	t.Helper()
	k := &keySet{status: http.StatusInternalServerError}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.fetches.Add(1)
		k.mu.Lock()
		status, body := k.status, k.body
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	k.url = srv.URL + jwksPath
	return k
}

// set makes the server answer status and body from now on.
func (k *keySet) set(status int, body []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.status, k.body = status, body
}
