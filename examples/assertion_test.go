package examples

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// Routes /a/ and /b/ of assertionCaddyfile send assertions for these
// audiences to apps that require them.
const (
	audienceA = "https://a.internal"
	audienceB = "https://b.internal"
)

// assertionCaddyfile serves the assertion keys from its storage and puts
// clerk_auth with identity_assertion (default issuer: Caddy's origin) in
// front of app A (/a/), app B (/b/) and an echo of the assertion (/peek-a/,
// audience A). It forwards no identity headers: the apps must read the
// identity from the assertion.
func assertionCaddyfile(storage string, port int, clerkIssuer, appA, appB, echo string) string {
	route := func(path, audience, upstream string) string {
		return fmt.Sprintf(`
	handle %s {
		clerk_auth {
			issuer %s
			identity_assertion %s {
				audience %s
			}
		}
		reverse_proxy %s
	}
`, path, clerkIssuer, assertionHeader, audience, upstream)
	}
	return fmt.Sprintf(`{
	admin off
	persist_config off
	default_bind 127.0.0.1
	storage file_system %s
}

http://127.0.0.1:%d {
	handle %s {
		clerk_identity_jwks
	}
%s%s%s}
`, storage, port, jwksPath, route("/a/*", audienceA, appA), route("/b/*", audienceB, appB), route("/peek-a/*", audienceA, echo))
}

// TestAssertionExamples runs each example upstream in assertion mode behind
// Caddy, twice, for two routes with different audiences, and checks that it
// reports the identity of the verified assertion, and refuses forged,
// expired and misdirected assertions sent to it directly.
func TestAssertionExamples(t *testing.T) {
	for _, ex := range assertionApps() {
		t.Run(ex.name, func(t *testing.T) {
			argv := ex.argv(t)
			t.Parallel()
			testAssertionExample(t, argv)
		})
	}
}

func testAssertionExample(t *testing.T, argv []string) {
	iss := clerktest.Start(t)
	storage := t.TempDir()
	port := freePort(t)
	gateway := fmt.Sprintf("http://127.0.0.1:%d", port)
	// The apps start first: they fetch the keys on the first request.
	appA := startAssertionApp(t, argv, gateway+jwksPath, audienceA, gateway)
	appB := startAssertionApp(t, argv, gateway+jwksPath, audienceB, gateway)
	echo := echoAssertion(t)
	runCaddy(t, assertionCaddyfile(storage, port, iss.URL, strings.TrimPrefix(appA, "http://"), strings.TrimPrefix(appB, "http://"), echo))

	member := iss.Mint(
		clerktest.WithClaims(map[string]any{"sub": "user_example", "roles": []string{"admin", "billing"}}),
		clerktest.V1Org("org_1", "acme", "org:admin"),
	)
	memberIdentity := map[string]any{
		"user_id": "user_example", "session_id": clerktest.DefaultSessionID,
		"org_id": "org_1", "org_role": "org:admin", "roles": []any{"admin", "billing"},
	}
	forA := peek(t, gateway+"/peek-a/", member)
	f := newForger(t, gateway+jwksPath, storage, forA)
	withAssertion := func(token string) http.Header {
		return http.Header{assertionHeader: {token}, "X-User-Id": {"user_forged"}, "X-Org-Role": {"org:owner"}}
	}
	later := func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }
	otherIssuer := func(c map[string]any) { c["iss"] = "http://127.0.0.1:1" }
	otherUser := func(c map[string]any) { c["sub"] = "user_forged" }
	notSignedIn := map[string]any{"error": "not signed in"}
	refused := map[string]any{"error": "invalid identity assertion"}

	tests := []struct {
		name       string
		url        string
		header     http.Header
		wantStatus int
		want       map[string]any // the JSON answered; nil: do not check
	}{
		// Caddy forwards no X-User-Id here: the client's forged one
		// reaches the app, which reads the assertion instead.
		{"through Caddy, route A", gateway + "/a/", bearer(member, withAssertion(f.noneAlg(otherUser))), http.StatusOK, memberIdentity},
		{"through Caddy, route B", gateway + "/b/", bearer(member, withAssertion(f.otherKey(otherUser))), http.StatusOK, memberIdentity},
		{"through Caddy without a token", gateway + "/a/", withAssertion(forA), http.StatusUnauthorized, nil},
		// Straight to the app, as an attacker on its network would.
		{"no assertion, forged identity headers", appA, http.Header{"X-User-Id": {"user_forged"}}, http.StatusUnauthorized, notSignedIn},
		{"Caddy's assertion for A at A", appA, withAssertion(forA), http.StatusOK, memberIdentity},
		{"Caddy's assertion for A at B", appB, withAssertion(forA), http.StatusUnauthorized, refused},
		{"another key under Caddy's kid", appA, withAssertion(f.otherKey(otherUser)), http.StatusUnauthorized, refused},
		{"alg none", appA, withAssertion(f.noneAlg(otherUser)), http.StatusUnauthorized, refused},
		{"HS256 keyed with Caddy's public key", appA, withAssertion(f.hs256PublicKey(otherUser)), http.StatusUnauthorized, refused},
		{"Caddy's key, expired a minute ago", appA, withAssertion(f.caddysKey(later)), http.StatusUnauthorized, refused},
		{"Caddy's key, another issuer", appA, withAssertion(f.caddysKey(otherIssuer)), http.StatusUnauthorized, refused},
		{"Caddy's key, the claims edited", appA, withAssertion(f.edited(otherUser)), http.StatusUnauthorized, refused},
		{"not a JWT", appA, withAssertion("user_forged"), http.StatusUnauthorized, refused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, doc := get(t, tc.url, tc.header)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %v", status, tc.wantStatus, doc)
			}
			if tc.want != nil && !reflect.DeepEqual(doc, tc.want) {
				t.Errorf("answered %v, want %v", doc, tc.want)
			}
		})
	}
}
