package examples

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
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

// runCaddy runs the built Caddy with a Caddyfile until the test ends, and
// returns once it serves.
func runCaddy(t *testing.T, config string) {
	t.Helper()
	launchCaddy(t, config).waitFor(t, caddyReady)
}

// launchCaddy starts the built Caddy with a Caddyfile, to run until the test
// ends, without waiting for it to serve.
func launchCaddy(t *testing.T, config string) *proc {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// Caddy's data and config directories go to a scratch place.
	return startProc(t, []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")},
		bin.caddy, "run", "--config", file, "--adapter", "caddyfile")
}

// fetch sends GET url with header and returns the status and body.
func fetch(t *testing.T, url string, header http.Header) (int, []byte) {
	t.Helper()
	resp, body := send(t, url, header)
	return resp.StatusCode, body
}

// send sends GET url with header and returns the response, whose body is
// already read into the second result.
func send(t *testing.T, url string, header http.Header) (*http.Response, []byte) {
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
	return resp, body
}

// get is fetch for an answer that is JSON (or empty: nil).
func get(t *testing.T, url string, header http.Header) (int, map[string]any) {
	t.Helper()
	status, body := fetch(t, url, header)
	var doc map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("GET %s: %d with a body that is not JSON: %q", url, status, body)
		}
	}
	return status, doc
}

// bearer is header (which may be nil) with token in Authorization.
func bearer(token string, header http.Header) http.Header {
	h := http.Header{"Authorization": {"Bearer " + token}}
	for k, v := range header {
		h[k] = v
	}
	return h
}

// The assertion header the Caddyfiles configure (the examples' default),
// and where they serve the keys.
const (
	assertionHeader = "X-Clerk-Identity"
	jwksPath        = "/.well-known/clerk-identity/jwks.json"
)

// echoAssertion is an upstream that answers the assertion it received, so
// a test can hold one that Caddy minted; its address is host:port.
func echoAssertion(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get(assertionHeader))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// peek returns the assertion Caddy sends at url, a route to echoAssertion,
// for a request with token.
func peek(t *testing.T, url, token string) string {
	t.Helper()
	status, body := fetch(t, url, bearer(token, nil))
	if status != http.StatusOK || len(body) == 0 {
		t.Fatalf("GET %s: %d %q, want 200 and an assertion", url, status, body)
	}
	return string(body)
}
