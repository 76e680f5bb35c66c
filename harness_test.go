package clerkauth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// The integration tests drive one real Caddy (caddytest runs it in-process
// with its admin API on localhost:2999) against a fake Clerk issuer and a
// recording upstream, both on ephemeral 127.0.0.1 ports. caddytest allows one
// Caddy per process, so every such test lives in this package and none runs
// in parallel.

const caddyPort = 9080

// startCaddy loads a Caddyfile whose sites listen on caddyPort.
func startCaddy(t *testing.T, sites string) *caddytest.Tester {
	t.Helper()
	return startCaddyWithOptions(t, "", sites)
}

// startCaddyWithOptions is startCaddy with more global options, such as a
// servers block, added to the harness's own.
func startCaddyWithOptions(t *testing.T, options, sites string) *caddytest.Tester {
	t.Helper()
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	skip_install_trust
	admin localhost:2999
	http_port %d
	auto_https off
%s
}
%s`, caddyPort, options, sites), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return tester
}

// upstream is the backend behind reverse_proxy. It records every request
// that reaches it, trailers included: it reads the body first, as trailers
// only arrive after it.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	received []upstreamRequest
}

type upstreamRequest struct {
	method          string
	header, trailer http.Header
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.received = append(u.received, upstreamRequest{r.Method, r.Header.Clone(), r.Trailer.Clone()})
		u.mu.Unlock()
		fmt.Fprintf(w, "upstream saw user=%q", r.Header.Get("X-User-Id"))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) addr() string { return strings.TrimPrefix(u.URL, "http://") }

// take returns the requests received since the last take or reset, and
// forgets them.
func (u *upstream) take() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.received
	u.received = nil
	return r
}

func (u *upstream) reset() { u.take() }

// last returns the headers of the latest request, or nil if none arrived.
func (u *upstream) last() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.received) == 0 {
		return nil
	}
	return u.received[len(u.received)-1].header
}

// do sends a request without a body to the Caddy under test.
func do(t *testing.T, tester *caddytest.Tester, method, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, caddyURL(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	if header != nil {
		// Assigned, not added: header names reach Caddy exactly as written
		// (x_user_id stays x_user_id), which the forgery tests rely on.
		req.Header = header.Clone()
	}
	return roundTrip(t, tester, req)
}

// roundTrip sends req with the tester's client and reads the whole answer.
func roundTrip(t *testing.T, tester *caddytest.Tester, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := tester.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.RequestURI(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL.RequestURI(), err)
	}
	return resp, string(body)
}

func caddyURL(path string) string { return fmt.Sprintf("http://localhost:%d%s", caddyPort, path) }

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// storageContext is a Caddy context whose storage is a fresh folder, as the
// global option `storage file_system <dir>` gives a running Caddy: the
// identity assertion's key ring needs one, and caddy.NewContext alone has
// no config to hold it. Modules provisioned through it (LoadModule) are
// cleaned up when the test ends.
func storageContext(tb testing.TB) caddy.Context {
	tb.Helper()
	storage, err := json.Marshal(map[string]string{"module": "file_system", "root": tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	root, err := caddy.ProvisionContext(&caddy.Config{StorageRaw: storage})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(root)
	tb.Cleanup(cancel)
	return ctx
}
