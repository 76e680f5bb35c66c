// Package examples tests the example upstreams in go/, python/ and node/
// the way they are meant to run: behind a real Caddy built from ./cmd/caddy,
// verifying tokens from a fake Clerk issuer.
package examples

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// bin holds the binaries TestMain builds: Caddy with clerk_auth, and the Go
// example.
var bin struct {
	caddy, goExample string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clerkauth-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin.caddy = filepath.Join(dir, "caddy")
	bin.goExample = filepath.Join(dir, "go-example")
	code := 1
	if err := build(bin.caddy, "../cmd/caddy"); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else if err := build(bin.goExample, "./go"); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// proc is a child process whose combined output is kept and searchable.
type proc struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced whenever a line arrives
	exited  chan struct{} // closed when the output ends
}

// startProc runs argv with extra environment variables, and stops it
// (interrupt, then kill) when the test ends.
func startProc(t *testing.T, env []string, argv ...string) *proc {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), changed: make(chan struct{}), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close() // the child holds its own copy
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		r.Close()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
		}
		_ = p.cmd.Wait()
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitFor returns the first submatch of the first output line matching re.
func (p *proc) waitFor(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for seen := 0; ; {
		p.mu.Lock()
		lines, changed := p.lines, p.changed
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if m := re.FindStringSubmatch(lines[seen]); m != nil {
				return m[len(m)-1]
			}
		}
		select {
		case <-changed:
		case <-p.exited:
			// Lines may have arrived just before the end: one last look.
			if p.output() != strings.Join(lines, "\n") {
				continue
			}
			t.Fatalf("%s exited without printing %s:\n%s", p.cmd.Path, re, p.output())
		case <-timeout:
			t.Fatalf("%s printed no %s within 60s:\n%s", p.cmd.Path, re, p.output())
		}
	}
}

var (
	listeningRE = regexp.MustCompile(`^listening on http://(127\.0\.0\.1:\d+)$`)
	caddyReady  = regexp.MustCompile(`"msg":"serving initial configuration"`)
)

// freePort finds a port for Caddy, which opens its listener itself.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

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
	dir := t.TempDir()
	port := freePort(t)
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, fmt.Appendf(nil, caddyfile, port, iss.URL, upstream), 0o600); err != nil {
		t.Fatal(err)
	}
	// Caddy's data and config directories go to a scratch place.
	p := startProc(t, []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")},
		bin.caddy, "run", "--config", config, "--adapter", "caddyfile")
	p.waitFor(t, caddyReady)
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

func get(t *testing.T, url string, header http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		// Direct map assignment keeps look-alike names such as X_User_Id
		// exactly as written, as a hostile client would send them.
		req.Header[name] = values
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("GET %s: %d with a body that is not JSON: %q", url, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, doc
}

// TestExamplesBehindCaddy runs each example upstream behind Caddy and checks
// the identity it reports, and that identity headers forged by the client
// never reach it.
func TestExamplesBehindCaddy(t *testing.T) {
	examples := []struct {
		name string
		argv []string // run from this directory; argv[0] must be on PATH unless absolute
	}{
		{"go", []string{bin.goExample, "--port", "0"}},
		{"python", []string{"python3", "python/app.py", "--port", "0"}},
		{"node", []string{"node", "node/server.js", "--port", "0"}},
	}
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			if _, err := exec.LookPath(ex.argv[0]); err != nil {
				t.Skipf("%s is not installed: %v", ex.argv[0], err)
			}
			t.Parallel()
			testExample(t, ex.argv)
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
	withToken := func(token string, extra http.Header) http.Header {
		h := http.Header{"Authorization": {"Bearer " + token}}
		for k, v := range extra {
			h[k] = v
		}
		return h
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
		{"valid token", caddy, withToken(member, nil), http.StatusOK, memberIdentity},
		{"valid token, forged headers", caddy, withToken(member, forged), http.StatusOK, memberIdentity},
		// The roles header is a list: a comma inside a role arrives
		// percent-encoded, and the app decodes each element.
		{"role holding a comma", caddy, withToken(iss.Mint(clerktest.WithClaims(map[string]any{"sub": "user_odd", "roles": []string{"viewer,admin", "50%"}})), nil),
			http.StatusOK, map[string]any{
				"user_id": "user_odd", "session_id": clerktest.DefaultSessionID,
				"org_id": nil, "org_role": nil, "roles": []any{"viewer,admin", "50%"},
			}},
		{"valid token without org, forged org headers", caddy, withToken(noOrg, forged), http.StatusOK, map[string]any{
			"user_id": "user_solo", "session_id": clerktest.DefaultSessionID,
			"org_id": nil, "org_role": nil, "roles": []any{},
		}},
		// Caddy answers these itself: the forged identity never arrives.
		{"no token, forged headers", caddy, forged, http.StatusUnauthorized, nil},
		{"expired token, forged headers", caddy,
			withToken(iss.Mint(clerktest.IssuedAt(time.Now().Add(-time.Hour))), forged), http.StatusUnauthorized, nil},
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
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skipf("python3 is not installed: %v", err)
	}
	readme, err := os.ReadFile("python/README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```python\n(.*?)```").FindSubmatch(readme)
	if m == nil || !strings.Contains(string(m[1]), "Depends(") {
		t.Fatal("python/README.md has no ```python block with a FastAPI dependency")
	}
	cmd := exec.Command("python3", "-c", "import ast, sys; ast.parse(sys.stdin.read())")
	cmd.Stdin = strings.NewReader(string(m[1]))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the FastAPI snippet does not parse: %v\n%s", err, out)
	}
}
