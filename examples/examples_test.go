// Package examples tests the example upstreams in go/, python/ and node/
// the way they are meant to run: behind a real Caddy built from ./cmd/caddy,
// verifying tokens from a fake Clerk issuer.
package examples

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// caddyfile puts clerk_auth in front of upstream, forwarding the identity
// the examples read, on 127.0.0.1 only and without an admin endpoint.
const caddyfile = `{
	admin off
	persist_config off
	default_bind 127.0.0.1
}

http://127.0.0.1:%d {
	clerk_auth {
		issuer %s
		forward_header X-User-Id {http.auth.user.id}
		forward_header X-Session-Id {http.auth.user.session_id}
		forward_header X-Org-Id {http.auth.user.org_id}
		forward_header X-Org-Role {http.auth.user.org_role}
		forward_header X-User-Roles {http.auth.user.roles}
	}
	reverse_proxy %s
}
`

// startCaddy runs the built Caddy in front of upstream and returns its URL.
func startCaddy(t *testing.T, iss *clerktest.Issuer, upstream string) string {
	t.Helper()
	port := freePort(t)
	runCaddy(t, fmt.Sprintf(caddyfile, port, iss.URL, upstream))
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// TestExamplesBehindCaddy runs each example upstream behind Caddy and checks
// the identity it reports, and that identity headers forged by the client
// never reach it.
func TestExamplesBehindCaddy(t *testing.T) {
	examples := []struct {
		name    string
		runtime func() (string, error) // nil: argv[0] is a built binary
		argv    []string               // after the runtime, run from this directory
	}{
		{"go", nil, []string{bin.goExample, "--port", "0"}},
		{"python", python3, []string{"python/app.py", "--port", "0"}},
		{"node", node, []string{"node/server.js", "--port", "0"}},
	}
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			argv := ex.argv
			if ex.runtime != nil {
				argv = append([]string{need(t, ex.runtime)}, argv...)
			}
			t.Parallel()
			testExample(t, argv)
		})
	}
}

func testExample(t *testing.T, argv []string) {
	app := startProc(t, nil, argv...)
	upstream := app.waitFor(t, listeningRE)
	iss := clerktest.Start(t)
	caddy := startCaddy(t, iss, upstream)

	member := iss.Mint(
		clerktest.WithClaims(map[string]any{"sub": "user_example", "roles": []string{"admin", "billing"}}),
		clerktest.V1Org("org_1", "acme", "org:admin"),
	)
	noOrg := iss.Mint(clerktest.WithClaims(map[string]any{"sub": "user_solo"}))
	forged := http.Header{
		"X-User-Id":    {"user_forged"},
		"X_User_Id":    {"user_forged_underscore"},
		"X-Org-Id":     {"org_forged"},
		"X-Org-Role":   {"org:owner"},
		"X-User-Roles": {"admin"},
	}
	memberIdentity := map[string]any{
		"user_id": "user_example", "session_id": clerktest.DefaultSessionID,
		"org_id": "org_1", "org_role": "org:admin", "roles": []any{"admin", "billing"},
	}
	tests := []struct {
		name       string
		url        string
		header     http.Header
		wantStatus int
		want       map[string]any // the JSON answered; nil: do not check
	}{
		{"valid token", caddy, bearer(member, nil), http.StatusOK, memberIdentity},
		{"valid token, forged headers", caddy, bearer(member, forged), http.StatusOK, memberIdentity},
		// The roles header is a list: a comma inside a role arrives
		// percent-encoded, and the app decodes each element.
		{"role holding a comma", caddy, bearer(iss.Mint(clerktest.WithClaims(map[string]any{"sub": "user_odd", "roles": []string{"viewer,admin", "50%"}})), nil),
			http.StatusOK, map[string]any{
				"user_id": "user_odd", "session_id": clerktest.DefaultSessionID,
				"org_id": nil, "org_role": nil, "roles": []any{"viewer,admin", "50%"},
			}},
		{"valid token without org, forged org headers", caddy, bearer(noOrg, forged), http.StatusOK, map[string]any{
			"user_id": "user_solo", "session_id": clerktest.DefaultSessionID,
			"org_id": nil, "org_role": nil, "roles": []any{},
		}},
		// Caddy answers these itself: the forged identity never arrives.
		{"no token, forged headers", caddy, forged, http.StatusUnauthorized, nil},
		{"expired token, forged headers", caddy,
			bearer(iss.Mint(clerktest.IssuedAt(time.Now().Add(-time.Hour))), forged), http.StatusUnauthorized, nil},
		// Why the README insists the app be reachable only through Caddy.
		{"bypassing Caddy, forged headers are believed", "http://" + upstream, forged, http.StatusOK, map[string]any{
			"user_id": "user_forged", "session_id": nil,
			"org_id": "org_forged", "org_role": "org:owner", "roles": []any{"admin"},
		}},
		{"bypassing Caddy without headers", "http://" + upstream, nil, http.StatusUnauthorized, map[string]any{"error": "not signed in"}},
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

// TestFastAPISnippet keeps the FastAPI dependency in python/README.md valid
// Python. FastAPI itself is not installed here, so it is parsed, not run.
func TestFastAPISnippet(t *testing.T) {
	py := need(t, python3)
	readme, err := os.ReadFile("python/README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```python\n(.*?)```").FindSubmatch(readme)
	if m == nil || !strings.Contains(string(m[1]), "Depends(") {
		t.Fatal("python/README.md has no ```python block with a FastAPI dependency")
	}
	cmd := exec.Command(py, "-c", "import ast, sys; ast.parse(sys.stdin.read())")
	cmd.Stdin = strings.NewReader(string(m[1]))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the FastAPI snippet does not parse: %v\n%s", err, out)
	}
}
