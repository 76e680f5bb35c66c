package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// exampleCaddyfile is the file `go run ./cmd/demo` uses from the repository
// root, seen from this package's directory, where tests run.
const exampleCaddyfile = "../../Caddyfile.example"

// readyLine is what run prints once everything answers.
const readyLine = "Ready. Press Ctrl-C to stop."

// runMainEnv makes the test binary act as the demo itself (see TestMain),
// so the signal test needs no separate build.
const runMainEnv = "CLERKAUTH_DEMO_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0) // main exits non-zero itself on failure
	}
	os.Exit(m.Run())
}

// ephemeral is the configuration tests run the demo with: every port is chosen by
// the kernel, so tests never collide with each other or with a running demo.
func ephemeral() config {
	return config{
		caddyfile:     exampleCaddyfile,
		tokenLifetime: time.Hour,
	}
}

// isolate restores the variables the demo sets for Caddyfile.example when
// the test ends, so they do not leak into later tests, and keeps the log
// files of the test's demos in a directory of its own.
func isolate(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // where Caddy's logs go
	for _, name := range []string{"CLERK_PUBLISHABLE_KEY", "CLERK_SECRET_KEY", "CLERK_ISSUER", "CLERK_API_URL", "CLERK_AUTHORIZED_PARTY", "CLERK_SIGN_IN_URL", "CLERK_WEBHOOK_SECRET", "CLERK_DENYLIST_SYNC", "SITE_ADDRESS", "UPSTREAM"} {
		t.Setenv(name, "")
	}
}

// output collects what run prints and tells when the ready line has appeared.
type output struct {
	mu    sync.Mutex
	buf   strings.Builder
	ready chan struct{}
	once  sync.Once
}

func newOutput() *output { return &output{ready: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if strings.Contains(o.buf.String(), readyLine) {
		o.once.Do(func() { close(o.ready) })
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// printedCase is one curl line of the demo's output and the result printed
// above it.
type printedCase struct {
	n      string
	title  string
	result string
	curl   string
}

var caseRE = regexp.MustCompile(`(?m)^# (\d+)\. (.*)\n#    → (.*)\n(curl .*)$`)

func printedCases(out string) []printedCase {
	var cases []printedCase
	for _, m := range caseRE.FindAllStringSubmatch(out, -1) {
		cases = append(cases, printedCase{n: m[1], title: m[2], result: m[3], curl: m[4]})
	}
	return cases
}

// printedEnv returns the NAME=value lines the demo printed.
func printedEnv(out string) map[string]string {
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  ([A-Z_]+)=(\S+)$`).FindAllStringSubmatch(out, -1) {
		env[m[1]] = m[2]
	}
	return env
}

// shellWords splits a printed command line the way a shell would, for the
// only quoting the demo prints: whole words in single quotes.
func shellWords(line string) ([]string, error) {
	var words []string
	for rest := strings.TrimSpace(line); rest != ""; rest = strings.TrimLeft(rest, " ") {
		if rest[0] == '\'' {
			end := strings.IndexByte(rest[1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", line)
			}
			words = append(words, rest[1:end+1])
			rest = rest[end+2:]
			continue
		}
		word, after, _ := strings.Cut(rest, " ")
		if strings.ContainsAny(word, `'"\$`) {
			return nil, fmt.Errorf("unexpected shell syntax in %q", word)
		}
		words = append(words, word)
		rest = after
	}
	return words, nil
}

// curlRequest turns a printed `curl -i URL [-H 'Name: value']...` into the
// request curl would send.
func curlRequest(line string) (*http.Request, error) {
	words, err := shellWords(line)
	if err != nil {
		return nil, err
	}
	if len(words) < 3 || words[0] != "curl" || words[1] != "-i" {
		return nil, fmt.Errorf("want curl -i URL ..., got %q", words)
	}
	req, err := http.NewRequest(http.MethodGet, words[2], nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "*/*") // as curl sends it
	for rest := words[3:]; len(rest) > 0; rest = rest[2:] {
		if len(rest) < 2 || rest[0] != "-H" {
			return nil, fmt.Errorf("want -H 'Name: value', got %q", rest)
		}
		name, value, ok := strings.Cut(rest[1], ": ")
		if !ok {
			return nil, fmt.Errorf("header %q is not Name: value", rest[1])
		}
		req.Header.Add(name, value)
	}
	return req, nil
}

// TestRun runs the demo as `go run ./cmd/demo` does, on ephemeral ports,
// replays every curl line it printed, and checks that it stops cleanly;
// with its own upstream, and with the user's app given by -upstream.
func TestRun(t *testing.T) {
	// The user's app: any upstream answering the identity JSON.
	app := httptest.NewServer(upstreamHandler("http://127.0.0.1:1/sign-in"))
	defer app.Close()
	tests := []struct {
		name     string
		upstream string
	}{
		{"built-in upstream", ""},
		{"own upstream", strings.TrimPrefix(app.URL, "http://")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ephemeral()
			cfg.upstream = tc.upstream
			testRun(t, cfg)
		})
	}
}

func testRun(t *testing.T, cfg config) {
	isolate(t)
	out := newOutput()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, out) }()

	select {
	case <-out.ready:
	case err := <-done:
		t.Fatalf("run returned before it was ready: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		t.Fatalf("no %q after 30s:\n%s", readyLine, out)
	}
	printed := out.String()
	if strings.Contains(printed, "✗") {
		t.Errorf("the demo reports unexpected results:\n%s", printed)
	}
	for _, want := range []string{"DEVELOPMENT ONLY", "/sign-in"} {
		if !strings.Contains(printed, want) {
			t.Errorf("output lacks %q:\n%s", want, printed)
		}
	}

	// What each printed case must be, in order: the four, plus no
	// token at all and a client trying to forge the identity header.
	want := []struct {
		title  string // a substring of the printed title
		status int
		reason string // WWW-Authenticate error_description
		user   string // X-User-Id the upstream reports
	}{
		{"No token", http.StatusUnauthorized, "", ""},
		{"A fresh token for user_alice", http.StatusOK, "", "user_alice"},
		{"An expired token", http.StatusUnauthorized, "token-expired", ""},
		{"A forged token", http.StatusUnauthorized, "token-invalid-signature", ""},
		{"user_bob (no roles) on /admin, which needs role admin", http.StatusForbidden, "missing-role", ""},
		{"forged X-User-Id: user_alice header", http.StatusOK, "", "user_bob"},
	}
	cases := printedCases(printed)
	if len(cases) != len(want) {
		t.Fatalf("printed %d curl cases, want %d:\n%s", len(cases), len(want), printed)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for i, w := range want {
		c := cases[i]
		t.Run(c.n+" "+w.title, func(t *testing.T) {
			if !strings.Contains(c.title, w.title) {
				t.Errorf("title %q, want it to contain %q", c.title, w.title)
			}
			// The printed result says what the line returns ...
			if prefix := fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)); !strings.HasPrefix(c.result, prefix) {
				t.Errorf("printed result %q, want %q", c.result, prefix)
			}
			if w.reason != "" && !strings.Contains(c.result, `error_description="`+w.reason+`"`) {
				t.Errorf("printed result %q lacks reason %s", c.result, w.reason)
			}
			if w.user != "" && !strings.Contains(c.result, "X-User-Id: "+w.user) {
				t.Errorf("printed result %q lacks user %s", c.result, w.user)
			}

			// ... and the line, pasted, really returns it.
			req, err := curlRequest(c.curl)
			if err != nil {
				t.Fatal(err)
			}
			if req.URL.Hostname() != "127.0.0.1" {
				t.Errorf("curl line targets %s, want 127.0.0.1", req.URL.Host)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != w.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, w.status, body)
			}
			if m := errorDescription.FindStringSubmatch(resp.Header.Get("WWW-Authenticate")); w.reason != "" && (m == nil || m[1] != w.reason) {
				t.Errorf("WWW-Authenticate %q, want reason %s", resp.Header.Get("WWW-Authenticate"), w.reason)
			}
			switch resp.StatusCode {
			case http.StatusOK:
				var id identity
				if err := json.Unmarshal(body, &id); err != nil || id.UserID == nil || *id.UserID != w.user {
					t.Errorf("upstream answered %s, want user_id %q", body, w.user)
				}
			default:
				// Caddyfile.example's handle_errors renders the reason.
				reason := w.reason
				if reason == "" {
					reason = "token-missing"
				}
				if got := strings.TrimSpace(string(body)); got != `{"error":"`+reason+`"}` {
					t.Errorf("body %s, want {\"error\":%q}", got, reason)
				}
			}
		})
	}

	env := printedEnv(printed)
	t.Run("sign out everywhere", func(t *testing.T) { testSignOutEverywhere(t, env) })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return within 15s of cancellation")
	}
	if !strings.HasSuffix(out.String(), "Stopping.\n") {
		t.Errorf("output does not end with Stopping.:\n%s", out)
	}
	started := []string{"SITE_ADDRESS", "CLERK_ISSUER", "UPSTREAM"}
	if cfg.upstream != "" {
		if env["UPSTREAM"] != cfg.upstream {
			t.Errorf("UPSTREAM=%s, want -upstream %s", env["UPSTREAM"], cfg.upstream)
		}
		// The user's app is not the demo's to stop.
		started = started[:2]
	}
	assertClosed(t, env, started...)
	assertNoDemoGoroutines(t)
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "clerkauth-demo-storage-*")); len(left) > 0 {
		t.Errorf("Caddy's storage folder outlives the demo: %v", left)
	}
}

// testSignOutEverywhere signs in on the demo's sign-in page as a browser
// does, presses Sign out everywhere, and checks that Caddy refuses the
// session cookie the browser still holds, as revoked.
func testSignOutEverywhere(t *testing.T, env map[string]string) {
	app := env["SITE_ADDRESS"] + "/"
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	defer browser.CloseIdleConnections()
	post := func(url string, form url.Values) {
		t.Helper()
		resp, err := browser.PostForm(url, form)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != app {
			t.Fatalf("POST %s: ended at %s with %d %s, want %s 200", url, resp.Request.URL, resp.StatusCode, body, app)
		}
	}
	page := func() (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, app, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}

	post(env["CLERK_SIGN_IN_URL"], url.Values{"user": {"user_alice"}, "redirect_url": {app}})
	cookie := func() string {
		for _, c := range jar.Cookies(mustParse(t, app)) {
			if c.Name == clerktest.SessionCookie {
				return c.Value
			}
		}
		return ""
	}
	token := cookie()
	if status, body := page(); status != http.StatusOK || token == "" {
		t.Fatalf("signed in: %d %s with __session %t, want 200", status, body, token != "")
	}
	// The answer follows the redirect back to the page, which Caddy
	// refuses; a 200 there would mean the webhook did not act.
	resp, err := browser.PostForm(strings.TrimSuffix(env["CLERK_ISSUER"], "/")+clerktest.RevokePath, url.Values{"redirect_url": {app}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cookie() != token {
		t.Fatal("Sign out everywhere changed the browser's __session: nothing is left to test")
	}
	if status, body := page(); status != http.StatusUnauthorized || body != `{"error":"session-revoked"}` {
		t.Errorf("after Sign out everywhere: %d %s, want 401 {\"error\":\"session-revoked\"}", status, body)
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// demoGoroutines are the functions that start the demo's long-lived
// goroutines: the servers' accept loops and clerk_auth's JWKS fetcher.
var demoGoroutines = []string{
	"created by github.com/caddyclerk/caddy-clerk-auth/cmd/demo.(*demo).startUpstream",
	"created by github.com/caddyclerk/caddy-clerk-auth/internal/clerktest.NewAt",
	"created by github.com/caddyserver/caddy/v2/modules/caddyhttp.(*App).Start",
	"created by github.com/caddyclerk/caddy-clerk-auth/internal/jwks.(*Set).Start",
	"created by github.com/caddyclerk/caddy-clerk-auth/internal/clustersync.(*Syncer).Start",
}

// assertNoDemoGoroutines checks that no goroutine the demo started is left.
func assertNoDemoGoroutines(t *testing.T) {
	t.Helper()
	// Goroutines end shortly after their listeners close or their context
	// is cancelled, so give them a bounded moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var left []string
		for _, creator := range demoGoroutines {
			if strings.Contains(stacks, creator+" in goroutine") {
				left = append(left, creator)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left behind, %s:\n%s", strings.Join(left, "; "), stacks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartFailsCleanly checks that a demo that cannot start says why and
// leaves nothing running.
func TestStartFailsCleanly(t *testing.T) {
	example, err := os.ReadFile(exampleCaddyfile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	publicBind := strings.Replace(string(example), "\tdefault_bind 127.0.0.1\n", "", 1)
	if publicBind == string(example) {
		t.Fatal("Caddyfile.example has no default_bind 127.0.0.1 line to remove")
	}
	tests := []struct {
		name      string
		caddyfile string
		wantErr   string
	}{
		{"no Caddyfile", filepath.Join(dir, "missing"), "run the demo from the repository root"},
		{"listening on every interface", write("public", publicBind), "only runs on 127.0.0.1"},
		{"invalid Caddyfile", write("invalid", "http://127.0.0.1:1 {\n\tclerk_auth {\n\t\tno_such_subdirective\n\t}\n}\n"), "adapting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			cfg := ephemeral()
			cfg.caddyfile = tc.caddyfile
			d, err := start(cfg)
			if err == nil {
				d.stop()
				t.Fatalf("start succeeded, want an error mentioning %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("start: %v, want an error mentioning %q", err, tc.wantErr)
			}
			assertNoDemoGoroutines(t)
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    config
		wantErr string
	}{
		{"defaults", nil, config{caddyfile: "Caddyfile.example", port: 8080, issuerPort: 8081, upstreamPort: 8082, tokenLifetime: 60 * time.Second}, ""},
		{"ephemeral ports and short tokens",
			[]string{"-port", "0", "-issuer-port", "0", "-upstream-port", "0", "-token-lifetime", "3s"},
			config{caddyfile: "Caddyfile.example", tokenLifetime: 3 * time.Second}, ""},
		{"own upstream", []string{"-upstream", "127.0.0.1:8000", "-config", "x"},
			config{caddyfile: "x", port: 8080, issuerPort: 8081, upstreamPort: 8082, upstream: "127.0.0.1:8000", tokenLifetime: 60 * time.Second}, ""},
		{"zero lifetime", []string{"-token-lifetime", "0s"}, config{}, "must be positive"},
		{"port out of range", []string{"-port", "70000"}, config{}, "out of range"},
		{"stray argument", []string{"serve"}, config{}, "unexpected arguments"},
		{"Caddy's logs on stderr", []string{"-v"},
			config{caddyfile: "Caddyfile.example", port: 8080, issuerPort: 8081, upstreamPort: 8082, tokenLifetime: 60 * time.Second, verbose: true}, ""},
		{"unknown flag", []string{"-verbose"}, config{}, "not defined"},
		{"a broken handshake", []string{"-handshake-fault", "expired-sessions"},
			config{caddyfile: "Caddyfile.example", port: 8080, issuerPort: 8081, upstreamPort: 8082, tokenLifetime: 60 * time.Second, handshakeFault: "expired-sessions"}, ""},
		{"unknown handshake fault", []string{"-handshake-fault", "slow"}, config{}, "want one of down, expired-sessions, unknown-nonce"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			got, err := parseFlags(tc.args, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				if !strings.Contains(stderr.String(), "Usage") {
					t.Errorf("no usage on stderr: %q", stderr.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// demoProcess is the demo running as a process of its own, as `go run
// ./cmd/demo` runs it.
type demoProcess struct {
	cmd     *exec.Cmd
	stderr  *output
	lines   chan string // stdout, line by line
	exited  chan error
	printed strings.Builder // the lines read so far
}

// startDemo starts the demo with args on ephemeral ports, with Caddy's
// directories and the temporary directory in tmp, and waits until it is
// ready.
func startDemo(t *testing.T, tmp string, args ...string) *demoProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-config", exampleCaddyfile,
		"-port", "0", "-issuer-port", "0", "-upstream-port", "0"}, args...)...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "HOME="+tmp, "TMPDIR="+tmp,
		"XDG_DATA_HOME="+filepath.Join(tmp, "data"), "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"))
	p := &demoProcess{cmd: cmd, stderr: newOutput(), lines: make(chan string), exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20) // curl lines carry whole JWTs
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		// Only reached with the process alive if the test failed.
		_ = cmd.Process.Kill()
	})

	timeout := time.After(60 * time.Second)
	for ready := false; !ready; {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("demo exited before it was ready: %v\nstdout:\n%s\nstderr:\n%s", <-p.exited, p.printed.String(), p.stderr)
			}
			p.printed.WriteString(line + "\n")
			ready = line == readyLine
		case <-timeout:
			t.Fatalf("no %q after 60s\nstdout:\n%s\nstderr:\n%s", readyLine, p.printed.String(), p.stderr)
		}
	}
	return p
}

// stop sends sig and waits for the process to exit, reading the rest of
// its output; it returns how the process exited.
func (p *demoProcess) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	for line := range p.lines {
		p.printed.WriteString(line + "\n")
	}
	select {
	case err := <-p.exited:
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("demo still running 15s after %s", sig)
	}
	return nil
}

// TestSignalStopsCleanly runs the demo as a process and stops it the way a
// user or a service manager would: it must exit 0 after cleaning up.
func TestSignalStopsCleanly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startDemo(t, t.TempDir())
			if err := p.stop(t, sig); err != nil {
				t.Fatalf("demo exited with %v after %s, want 0\nstderr:\n%s", err, sig, p.stderr)
			}
			// Its listeners died with it; TestRun checks that the demo
			// closes them itself.
			if !strings.HasSuffix(p.printed.String(), "Stopping.\n") {
				t.Errorf("stdout does not end with Stopping.:\n%s", p.printed.String())
			}
		})
	}
}

// logLines are the lines of out that are Caddy's JSON logs.
func logLines(out string) []string {
	var logs []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, `{"level"`) {
			logs = append(logs, line)
		}
	}
	return logs
}

// printedLogFile is the file the demo said Caddy's logs go to, "" if none.
var printedLogFile = regexp.MustCompile(`(?m)^  Caddy's logs +(\S+\.log)\b`)

// TestCaddyLogsStayOffTheTerminal runs the demo as a process, as a user
// would in a terminal (stdout and stderr both on screen): Caddy's logs go
// to the file it names, not between its instructions; -v puts them on
// stderr instead.
func TestCaddyLogsStayOffTheTerminal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		verbose bool
	}{
		{"to a file", nil, false},
		{"-v on stderr", []string{"-v"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			p := startDemo(t, tmp, tc.args...)
			if err := p.stop(t, syscall.SIGINT); err != nil {
				t.Fatalf("demo exited with %v, want 0\nstderr:\n%s", err, p.stderr)
			}
			stdout, stderr := p.printed.String(), p.stderr.String()
			if logs := logLines(stdout); len(logs) > 0 {
				t.Errorf("stdout has %d of Caddy's log lines, such as %s", len(logs), logs[0])
			}
			m := printedLogFile.FindStringSubmatch(stdout)
			if tc.verbose {
				if m != nil {
					t.Errorf("with -v the demo names a log file, %s", m[1])
				}
				if !strings.Contains(stderr, `"msg":"server running"`) {
					t.Errorf("with -v, stderr lacks Caddy's logs:\n%s", stderr)
				}
				return
			}
			if logs := logLines(stderr); len(logs) > 0 {
				t.Errorf("stderr has %d of Caddy's log lines, such as %s", len(logs), logs[0])
			}
			if stderr != "" {
				t.Errorf("stderr is not empty:\n%s", stderr)
			}
			if m == nil {
				t.Fatalf("the demo does not say where Caddy's logs are:\n%s", stdout)
			}
			if filepath.Dir(m[1]) != tmp {
				t.Errorf("log file %s is not in the temporary directory %s", m[1], tmp)
			}
			logs, err := os.ReadFile(m[1])
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(logs), `"msg":"server running"`) {
				t.Errorf("%s lacks Caddy's logs:\n%s", m[1], logs)
			}
		})
	}
}

// assertClosed checks that none of the named addresses the demo printed
// accepts connections any more.
func assertClosed(t *testing.T, env map[string]string, names ...string) {
	t.Helper()
	for _, name := range names {
		addr := env[name]
		if u, err := url.Parse(addr); err == nil && u.Host != "" {
			addr = u.Host
		}
		if addr == "" {
			t.Fatalf("the demo printed no %s", name)
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s (%s) still accepts connections", name, addr)
		}
	}
}
