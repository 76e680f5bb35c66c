package clerkauth

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// attackCase is one attack. Zero values mean: GET /req/x, 401, no identity.
type attackCase struct {
	name   string
	method string      // default GET
	path   string      // default /req/x
	header http.Header // sent verbatim (names are not canonicalised)
	// raw, if set, is sent as is over TCP: for requests Go's client refuses
	// to send (NUL bytes, trailing whitespace, trailers, huge headers).
	raw []byte
	// send, if set, replaces the request altogether (several requests).
	send func(t *testing.T, s *attackSuite) (*http.Response, string)

	status int    // default 401
	reason string // {http.auth.clerk.reason}
	user   string // the X-User-Id the upstream must see; "" = none
	org    string // the X-Org-Id the upstream must see; "" = none
	plan   string // the X-Plan the upstream must see; "" = none

	noForge bool // do not add the forged identity headers
}

type attackSuite struct {
	tester   *caddytest.Tester
	up       *upstream
	attacker *attackerServer
}

// addForgedHeaders adds client-forged copies of every owned header, with their
// look-alikes and duplicates, and of the header_up fields.
func addForgedHeaders(h http.Header) {
	add := func(name string, vals ...string) { h[name] = append(h[name], vals...) }
	add("X-User-Id", "user_"+forgedMarker, "user_"+forgedMarker+"_2")
	add("X_User_Id", "user_"+forgedMarker+"_underscore")
	add("x-user_id", "user_"+forgedMarker+"_mixed")
	add("X-USER-ID", "user_"+forgedMarker+"_upper")
	add("X-Org-Id", "org_"+forgedMarker)
	add("x_org_id", "org_"+forgedMarker+"_underscore")
	add("X-Plan", "plan_"+forgedMarker)
	add("X-Auth-Reason", forgedMarker)
	add("X-Claims-Sub", forgedMarker)
}

func (s *attackSuite) run(t *testing.T, tc attackCase) {
	t.Helper()
	s.up.reset()
	attackerBefore := s.attacker.hits.Load()

	start := time.Now()
	var resp *http.Response
	var body string
	switch {
	case tc.send != nil:
		resp, body = tc.send(t, s)
	case tc.raw != nil:
		resp, body = sendRaw(t, tc.raw)
	default:
		h := http.Header{}
		for k, v := range tc.header {
			h[k] = append([]string(nil), v...)
		}
		if !tc.noForge {
			addForgedHeaders(h)
		}
		method, path := tc.method, tc.path
		if method == "" {
			method = http.MethodGet
		}
		if path == "" {
			path = "/req/x"
		}
		resp, body = do(t, s.tester, method, path, h)
	}
	// Every answer, rejections of huge requests included, must come fast:
	// a generous bound, since only "it does not hang or crawl" matters.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %s", d)
	}

	want := tc.status
	if want == 0 {
		want = http.StatusUnauthorized
	}
	if resp.StatusCode != want {
		t.Errorf("status %d, want %d (body %q)", resp.StatusCode, want, truncate(body, 120))
	}
	seen := s.up.take()
	if resp.StatusCode != http.StatusOK {
		if got := resp.Header.Get("X-Reason"); got != tc.reason {
			t.Errorf("reason %q, want %q", got, tc.reason)
		}
		if len(seen) != 0 {
			t.Errorf("a rejected request reached the upstream: %v", seen[0].header)
		}
	} else {
		if len(seen) != 1 {
			t.Fatalf("upstream got %d requests, want 1", len(seen))
		}
		if got := seen[0].header.Get("X-Auth-Reason"); got != tc.reason {
			t.Errorf("reason forwarded by header_up %q, want %q", got, tc.reason)
		}
		checkIdentity(t, seen[0], map[string]string{"X-User-Id": tc.user, "X-Org-Id": tc.org, "X-Plan": tc.plan})
	}
	for _, r := range seen {
		checkNoForgery(t, r)
	}
	if n := s.attacker.hits.Load() - attackerBefore; n != 0 {
		t.Errorf("the attacker's server received %d requests", n)
	}
	// Nothing the client sent as a credential is ever echoed back: a
	// reflected token would end up in caches, logs or a page.
	for _, name := range []string{"Authorization", "Cookie"} {
		for _, v := range tc.header[name] {
			if len(v) < 24 {
				continue
			}
			if strings.Contains(body, v[len(v)-20:]) {
				t.Errorf("the response body echoes the %s value", name)
			}
			for k, hv := range resp.Header {
				if strings.Contains(strings.Join(hv, " "), v[len(v)-20:]) {
					t.Errorf("response header %s echoes the %s value", k, name)
				}
			}
		}
	}
}

// checkIdentity: each owned header is there exactly once with the
// verified value, or absent when there is none.
func checkIdentity(t *testing.T, r upstreamRequest, want map[string]string) {
	t.Helper()
	for name, v := range want {
		got := r.header.Values(name)
		if v == "" && len(got) != 0 || v != "" && (len(got) != 1 || got[0] != v) {
			t.Errorf("upstream %s = %q, want %q", name, got, v)
		}
	}
}

// checkNoForgery: no look-alike of an owned header, no forged value, and
// no literal placeholder, in the headers or the trailers.
func checkNoForgery(t *testing.T, r upstreamRequest) {
	t.Helper()
	for where, h := range map[string]http.Header{"header": r.header, "trailer": r.trailer} {
		for name, vals := range h {
			for _, o := range identityHeaders {
				if sameHeaderVariable(name, o) && name != o {
					t.Errorf("look-alike %s %s = %q reached the upstream", where, name, vals)
				}
			}
			for _, v := range vals {
				if strings.Contains(v, forgedMarker) {
					t.Errorf("forged %s %s = %q reached the upstream", where, name, v)
				}
				if strings.Contains(v, "{http.") {
					t.Errorf("literal placeholder in %s %s = %q reached the upstream", where, name, v)
				}
			}
		}
	}
}

// rawRequest builds an HTTP/1.1 request from header lines given as is,
// with forged identity headers, as run adds to the others.
func rawRequest(method, path string, lines ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n", method, path, caddyPort)
	forged := []string{"X-User-Id: user_" + forgedMarker, "x_user_id: user_" + forgedMarker, "x-org-id: org_" + forgedMarker}
	for _, l := range append(forged, lines...) {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// sendRaw sends req over a fresh connection and reads one response. It
// writes concurrently: the server may answer (431) and stop reading before
// a huge request is fully sent.
func sendRaw(t *testing.T, req []byte) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", caddyPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = conn.Write(req) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// afterPassing sends token to first, where it must pass, then to second; the
// case's expectations apply to the second answer.
func afterPassing(first, second, token string) func(*testing.T, *attackSuite) (*http.Response, string) {
	return func(t *testing.T, s *attackSuite) (*http.Response, string) {
		resp, body := do(t, s.tester, http.MethodGet, first, bearer(token))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d (%q), want 200", first, resp.StatusCode, truncate(body, 120))
		}
		for _, r := range s.up.take() {
			checkNoForgery(t, r)
		}
		return do(t, s.tester, http.MethodGet, second, bearer(token))
	}
}

// attackerServer is the attacker's server: it serves a JWKS and a certificate
// for the attacker's key, and counts every request. A verifier that follows
// jku/x5u, or fetches anything a token names, would show up here.
type attackerServer struct {
	*httptest.Server
	key     *rsa.PrivateKey
	kid     string
	certDER []byte // a self-signed certificate for key
	hits    atomic.Int64
}

func startAttackerServer(t *testing.T) *attackerServer {
	t.Helper()
	key, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	a := &attackerServer{key: key, kid: "attacker-key", certDER: selfSignedCert(t, key)}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.certDER})
	jwks := fmt.Sprintf(`{"keys":[{"use":"sig","kty":"RSA","kid":%q,"alg":"RS256","n":%q,"e":"AQAB"}]}`,
		a.kid, base64.RawURLEncoding.EncodeToString(key.N.Bytes()))
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		if strings.HasSuffix(r.URL.Path, ".pem") {
			_, _ = w.Write(certPEM)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, jwks)
	}))
	t.Cleanup(a.Close)
	return a
}

// selfSignedCert is a certificate for the attacker's key, for x5c/x5u.
func selfSignedCert(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "clerk.example.com"},
		DNSNames:     []string{"clerk.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// jwsSegments splits a compact JWS.
func jwsSegments(tok string) (h, p, s string) {
	parts := strings.SplitN(tok, ".", 3)
	return parts[0], parts[1], parts[2]
}
