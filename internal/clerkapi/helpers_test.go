package clerkapi

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// newClient is a Client of iss's Backend API with a frozen bucket clock,
// so that only the test decides when tokens refill.
func newClient(t *testing.T, base, secret string, mod ...func(*Config)) (*Client, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	cfg := Config{SecretKey: secret, BaseURL: base, Timeout: 5 * time.Second, Now: clock.Now}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, clock
}

// unmeteredClient is a Client of iss's Backend API whose bucket never
// runs dry: what the benchmarks measure is the sharing of calls, and ops
// faster than the default 20/s would otherwise be refused and reach
// nobody.
func unmeteredClient(tb testing.TB, iss *clerktest.Issuer) *Client {
	tb.Helper()
	c, err := New(Config{SecretKey: iss.SecretKey(), BaseURL: iss.APIURL(), Rate: 1e9, Burst: 1 << 30})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// nonceFor runs a handshake for a fresh client session of iss and returns
// the nonce the fake Frontend API handed back.
func nonceFor(t *testing.T, iss *clerktest.Issuer) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, iss.HandshakeURL()+"?format=nonce&redirect_url="+url.QueryEscape("http://127.0.0.1:1/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(iss.SignInClient("user_alice"))
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	nonce := loc.Query().Get(clerktest.HandshakeNonceParam)
	if nonce == "" {
		t.Fatalf("handshake answered %d %q, want a nonce", resp.StatusCode, loc)
	}
	return nonce
}

// front is a real server on 127.0.0.1 in front of iss that records the
// requests it forwards and, while held, holds them until released.
type front struct {
	*httptest.Server
	seen chan *http.Request

	mu   sync.Mutex
	gate chan struct{} // nil while requests pass
}

// newFront starts a front, holding requests from the start if gated.
func newFront(t *testing.T, iss *clerktest.Issuer, gated bool) *front {
	t.Helper()
	target, err := url.Parse(iss.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	f := &front{seen: make(chan *http.Request, 1024)}
	if gated {
		f.hold()
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.seen <- r.Clone(context.Background())
		f.mu.Lock()
		gate := f.gate
		f.mu.Unlock()
		if gate != nil {
			<-gate
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	// Runs before Close, so a failed test does not leave Close waiting on
	// held requests.
	t.Cleanup(f.release)
	return f
}

// hold makes the front hold the requests it gets from now on.
func (f *front) hold() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate == nil {
		f.gate = make(chan struct{})
	}
}

// release lets the held requests, and every later one, through.
func (f *front) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate != nil {
		close(f.gate)
		f.gate = nil
	}
}

// leaks reports whether msg shows any of the secrets.
func leaks(msg string, secrets ...string) bool {
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// checkError checks a failed call's error: its kind and HTTP status, its
// Retry-After, the cause it wraps (if wantCause is set), and that its
// message shows none of secrets.
func checkError(t *testing.T, err, wantKind error, wantStatus int, wantRetry time.Duration, wantCause error, secrets ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, wantKind) || e.Status != wantStatus {
		t.Fatalf("error %v, want kind %v and status %d", err, wantKind, wantStatus)
	}
	wait, ok := RetryAfter(err)
	if wait != wantRetry || ok != (wantRetry > 0) {
		t.Errorf("RetryAfter = %s, %v; want %s", wait, ok, wantRetry)
	}
	if wantCause != nil && !errors.Is(err, wantCause) {
		t.Errorf("error %v, want it to wrap %v", err, wantCause)
	}
	if leaks(err.Error(), secrets...) {
		t.Errorf("error %q shows a token, nonce or secret", err)
	}
}

// observed records what an Observer is told, as "call <endpoint> <result>",
// "limited <endpoint>", "lookup hit" or "lookup miss" (machine tokens) and
// "lookup <resource> <result>" (enrichment), with counts.
type observed struct {
	mu     sync.Mutex
	events map[string]int
}

func (o *observed) add(event string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.events == nil {
		o.events = make(map[string]int)
	}
	o.events[event]++
}

func (o *observed) observer() Observer {
	return Observer{
		Call:         func(endpoint, result string) { o.add("call " + endpoint + " " + result) },
		Limited:      func(endpoint string) { o.add("limited " + endpoint) },
		EnrichLookup: func(resource, result string) { o.add("lookup " + resource + " " + result) },
		MachineLookup: func(hit bool) {
			if hit {
				o.add("lookup hit")
			} else {
				o.add("lookup miss")
			}
		},
	}
}

func (o *observed) counts() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.events)
}

// faultTimeout is the client timeout for a call that meets f: short where
// the fault waits for the client to give up, long otherwise, so that a
// large answer under -race on a busy machine is judged for what it is
// rather than timing out.
func faultTimeout(f *clerktest.Fault) time.Duration {
	if f != nil && (f.Hang || f.Delay > 0) {
		return 100 * time.Millisecond
	}
	return 10 * time.Second
}

// callTogether runs call from n goroutines at once, lets the held answer
// go (release) once all but one have joined the first caller's request,
// and fails t on any caller's error.
func callTogether(t *testing.T, c *Client, release func(), n int, call func() error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- call() })
	}
	for c.Stats().Shared < int64(n-1) {
		runtime.Gosched()
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a caller got %v", err)
		}
	}
}
