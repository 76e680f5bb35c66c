package clerkauth

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddyclerk/caddy-clerk-auth/internal/assertion"
	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// jwksKIDs are the kids of a JWKS body, in order.
func jwksKIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS %s: %v", body, err)
	}
	kids := make([]string, len(set.Keys))
	for i, k := range set.Keys {
		kids[i] = k.Kid
	}
	return kids
}

// advanceRing moves clock by d and waits until the key ring has done the
// refresh that d brought due. The ring's loop is the only thing waiting on
// the clock: when its next timer is set, the refresh has ended.
func advanceRing(t *testing.T, clock *fakeclock.Clock, d time.Duration) {
	t.Helper()
	clock.Advance(d)
	clock.WaitTimer(t)
}

// TestIdentityAssertionRotation follows one key rotation with the default
// schedule (a key signs for 24h; the next is published 12h before it
// signs; the old one stays published 1h after): the next key is in the
// JWKS before it signs, an assertion signed just before the switch still
// verifies against the JWKS served after it, and the JWKS's ETag follows
// every change.
func TestIdentityAssertionRotation(t *testing.T) {
	iss := clerktest.Start(t)
	clock := useFakeClock(t, iss)
	start := clock.Now()
	up := startUpstream(t)
	tester := startAssertionCaddy(t, t.TempDir(), "",
		machineRoute("/a", iss, up, assertionBlock("https://a.internal")))
	clock.WaitTimer(t) // the ring's first refresh in the background is done

	signWith := func(t *testing.T) (token, kid string) {
		t.Helper()
		token = assertionAt(t, tester, up, "/a/x", iss.Mint(clerktest.Lifetime(time.Hour)))
		return token, assertionKID(t, token)
	}
	verifies := func(t *testing.T, token string, jwks []byte) {
		t.Helper()
		if _, err := verifyAssertion(token, jwks, "https://a.internal", clock.Now()); err != nil {
			t.Fatalf("assertion does not verify against the JWKS of %s: %v", clock.Now().Sub(start), err)
		}
	}

	jwks0, etag0 := identityJWKS(t, tester)
	_, first := signWith(t)
	if kids := jwksKIDs(t, jwks0); !slices.Equal(kids, []string{first}) {
		t.Fatalf("JWKS at start %v, want the signing key %s alone", kids, first)
	}

	// Just past half-way through the first key's turn the next one is
	// made, and published at once.
	advanceRing(t, clock, 12*time.Hour+time.Minute)
	jwks1, etag1 := identityJWKS(t, tester)
	kids := jwksKIDs(t, jwks1)
	if len(kids) != 2 || !slices.Contains(kids, first) {
		t.Fatalf("JWKS after 12h %v, want %s and the next key", kids, first)
	}
	next := kids[0]
	if next == first {
		next = kids[1]
	}
	if etag1 == etag0 {
		t.Error("the ETag did not change with the key set")
	}
	if _, kid := signWith(t); kid != first {
		t.Fatalf("after 12h signed by %s, want still %s: the next key is published before it signs", kid, first)
	}

	// The last minute of the first key's turn.
	advanceRing(t, clock, 12*time.Hour-2*time.Minute)
	late, kid := signWith(t)
	if kid != first {
		t.Fatalf("a minute before the switch signed by %s, want %s", kid, first)
	}

	// The next key signs now; the JWKS of now still has the first.
	advanceRing(t, clock, 2*time.Minute)
	jwks2, etag2 := identityJWKS(t, tester)
	if _, kid := signWith(t); kid != next {
		t.Fatalf("after the switch signed by %s, want %s", kid, next)
	}
	verifies(t, late, jwks2)
	if etag2 != etag1 {
		t.Error("the ETag changed although the published keys did not")
	}

	// An hour after the switch the first key leaves the JWKS.
	advanceRing(t, clock, time.Hour)
	jwks3, etag3 := identityJWKS(t, tester)
	if kids := jwksKIDs(t, jwks3); slices.Contains(kids, first) || !slices.Contains(kids, next) {
		t.Fatalf("JWKS an hour after the switch %v, want %s without %s", kids, next, first)
	}
	if etag3 == etag2 {
		t.Error("the ETag did not change when a key was pruned")
	}
}

// TestIdentityJWKSHandler: the JWKS answers GET and HEAD with its caching
// headers, a matching If-None-Match with 304, and anything else with 405.
func TestIdentityJWKSHandler(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startAssertionCaddy(t, t.TempDir(), "",
		machineRoute("/a", iss, up, assertionBlock("https://a.internal")))
	body, etag := identityJWKS(t, tester)
	if len(jwksKIDs(t, body)) != 1 || etag == "" {
		t.Fatalf("JWKS %s with ETag %q: want one key and an ETag", body, etag)
	}

	cases := []struct {
		name     string
		method   string
		header   http.Header
		status   int
		wantBody bool
	}{
		{"GET", http.MethodGet, nil, http.StatusOK, true},
		{"HEAD", http.MethodHead, nil, http.StatusOK, false},
		{"matching If-None-Match", http.MethodGet, http.Header{"If-None-Match": {etag}}, http.StatusNotModified, false},
		{"stale If-None-Match", http.MethodGet, http.Header{"If-None-Match": {`"old"`}}, http.StatusOK, true},
		{"POST", http.MethodPost, nil, http.StatusMethodNotAllowed, false},
		{"DELETE", http.MethodDelete, nil, http.StatusMethodNotAllowed, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := do(t, tester, tc.method, identityJWKSPath, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, got, tc.status)
			}
			if tc.status == http.StatusMethodNotAllowed {
				if allow := resp.Header.Get("Allow"); allow != "GET, HEAD" {
					t.Errorf("Allow %q, want GET, HEAD", allow)
				}
				return
			}
			if (got == string(body)) != tc.wantBody || !tc.wantBody && got != "" {
				t.Errorf("body %q; want the JWKS: %v", got, tc.wantBody)
			}
			want := map[string]string{"ETag": etag, "Cache-Control": "public, max-age=300"}
			if tc.status == http.StatusOK {
				want["Content-Type"] = "application/jwk-set+json"
			}
			for k, v := range want {
				if resp.Header.Get(k) != v {
					t.Errorf("%s %q, want %q", k, resp.Header.Get(k), v)
				}
			}
		})
	}
}

// TestIdentityAssertionStorageUnusable: when the storage cannot hold the
// keys at first start, a request that needs an assertion gets 503
// assertion-unavailable, never an unsigned pass, and the JWKS is empty;
// once the storage works, the ring's next refresh makes a key and
// requests pass with an assertion that verifies.
func TestIdentityAssertionStorageUnusable(t *testing.T) {
	iss := clerktest.Start(t)
	clock := useFakeClock(t, iss)
	up := startUpstream(t)
	// A file where the storage's folder should be: no one, root included,
	// can make the folder.
	parent := filepath.Join(t.TempDir(), "volume")
	if err := os.WriteFile(parent, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	tester := startAssertionCaddy(t, filepath.Join(parent, "caddy"), "",
		machineRoute("/a", iss, up, assertionBlock("https://a.internal")),
		machineRoute("/plain", iss, up))
	clock.WaitTimer(t)

	token := iss.Mint(clerktest.Lifetime(time.Hour))
	refused := func(t *testing.T, tester *caddytest.Tester) {
		t.Helper()
		up.reset()
		resp, body := do(t, tester, http.MethodGet, "/a/x", bearer(token))
		checkRefused(t, up, resp, body, http.StatusServiceUnavailable, ReasonAssertionUnavailable)
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	refused(t, tester)
	if jwks, _ := identityJWKS(t, tester); len(jwksKIDs(t, jwks)) != 0 {
		t.Fatalf("JWKS %s without a usable storage", jwks)
	}
	// Routes without an assertion are not affected.
	if resp, body := do(t, tester, http.MethodGet, "/plain/x", bearer(token)); resp.StatusCode != http.StatusOK {
		t.Fatalf("route without identity_assertion: status %d %q", resp.StatusCode, body)
	}

	// Still broken at the next retry.
	advanceRing(t, clock, assertion.DefaultOptions.RefreshEvery)
	refused(t, tester)

	if err := os.Remove(parent); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	advanceRing(t, clock, assertion.DefaultOptions.RefreshEvery)
	got := assertionAt(t, tester, up, "/a/x", token)
	jwks, _ := identityJWKS(t, tester)
	if _, err := verifyAssertion(got, jwks, "https://a.internal", clock.Now()); err != nil {
		t.Fatalf("after recovery the assertion does not verify: %v", err)
	}
}

// storedSecrets reads the assertion key document in the storage folder
// and returns every form in which its private keys could leak: the PEM
// label and body, and each key's D in base64url, base64, hex and decimal.
func storedSecrets(t *testing.T, storage string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(storage, filepath.FromSlash(assertion.DefaultOptions.Prefix), "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []struct {
			PrivateKey string `json:"private_key"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) == 0 {
		t.Fatal("no key in storage")
	}
	secrets := []string{"PRIVATE KEY"}
	for _, k := range doc.Keys {
		block, _ := pem.Decode([]byte(k.PrivateKey))
		if block == nil {
			t.Fatal("a stored key is not PEM")
		}
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		priv, ok := parsed.(*ecdsa.PrivateKey)
		if !ok {
			t.Fatalf("stored key is a %T", parsed)
		}
		d := priv.D.FillBytes(make([]byte, 32))
		body := base64.StdEncoding.EncodeToString(block.Bytes)[:40]
		if !strings.Contains(k.PrivateKey, body) {
			t.Fatal("the PEM body is not searched for as it is written")
		}
		secrets = append(secrets,
			body,
			base64.RawURLEncoding.EncodeToString(d),
			base64.StdEncoding.EncodeToString(d)[:40],
			hex.EncodeToString(d),
			priv.D.String(),
		)
	}
	return secrets
}

// TestAssertionKeysStayPrivate: after keys were made, used and rotated,
// no private key appears in `caddy adapt` output, the admin API's config,
// the logs, the metrics or the JWKS.
func TestAssertionKeysStayPrivate(t *testing.T) {
	iss := clerktest.Start(t)
	clock := useFakeClock(t, iss)
	up := startUpstream(t)
	storage := t.TempDir()
	logOptions, readLog := debugLog(t)
	route := machineRoute("/a", iss, up, assertionBlock("https://a.internal"))
	tester := startAssertionCaddy(t, storage, logOptions, route)
	clock.WaitTimer(t)
	assertionAt(t, tester, up, "/a/x", iss.Mint())
	advanceRing(t, clock, 12*time.Hour+time.Minute) // the next key is made, and logged
	assertionAt(t, tester, up, "/a/x", iss.Mint())
	jwks, _ := identityJWKS(t, tester)
	if n := len(jwksKIDs(t, jwks)); n != 2 {
		t.Fatalf("%d keys published, want 2", n)
	}
	secrets := storedSecrets(t, storage)

	get := func(url string) string {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
		}
		return string(b)
	}
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(fmt.Sprintf(
		"{\n\tstorage file_system %s\n}\n:%d {\n\thandle %s {\n\t\tclerk_identity_jwks\n\t}%s\n}\n",
		storage, caddyPort, identityJWKSPath, route)), nil)
	if err != nil {
		t.Fatal(err)
	}
	sources := []struct{ name, text string }{
		{"caddy adapt", string(adapted)},
		{"admin /config/", get("http://localhost:2999/config/")},
		{"admin /metrics", get("http://localhost:2999/metrics")},
		{"the log", readLog()},
		{"the JWKS", string(jwks)},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			if src.text == "" {
				t.Fatal("nothing to search")
			}
			for _, s := range secrets {
				if strings.Contains(src.text, s) {
					t.Errorf("%s holds a private key (%.12s…)", src.name, s)
				}
			}
		})
	}
	if !strings.Contains(readLog(), "identity assertion key generated") {
		t.Error("the log never mentions the keys it was searched for")
	}
}
