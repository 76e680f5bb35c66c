package clerkauth

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
)

// handshakeSite is a production instance (pk_live_) whose Frontend API and
// Backend API are the fake Clerk: the handshake redirect goes to it through
// proxy_url, and nonces resolve through its Backend API.
func handshakeSite(iss *clerktest.Issuer, up *upstream, extra string) string {
	return fmt.Sprintf(`
:%d {
	clerk_auth {
		publishable_key %s
		issuer %s
		secret_key %s
		api_url %s
		proxy_url %s
		forward_header X-User-Id {http.auth.user.id}
		%s
	}
	reverse_proxy %s
}`, caddyPort, iss.PublishableKey(true), iss.URL, iss.LiveSecretKey(), iss.APIURL(), iss.URL, extra, up.addr())
}

// browser is an http.Client with a cookie jar that records the URLs it is
// redirected to, and sends what a browser loading a page sends.
type browser struct {
	*http.Client
	hops []*url.URL
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{Client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		b.hops = append(b.hops, req.URL)
		if req.URL.Path == clerktest.SignInPath {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return fmt.Errorf("redirect loop: %d hops", len(via))
		}
		return nil
	}
	t.Cleanup(b.CloseIdleConnections)
	return b
}

func (b *browser) setCookies(t *testing.T, rawURL string, cookies ...*http.Cookie) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	b.Jar.SetCookies(u, cookies)
}

// load GETs rawURL as a page load (or, with api, as a fetch call) and
// returns the final response and its body.
func (b *browser) load(t *testing.T, rawURL string, api bool) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if api {
		req.Header.Set("Sec-Fetch-Dest", "empty")
		req.Header.Set("Accept", "application/json")
	} else {
		req.Header.Set("Sec-Fetch-Dest", "document")
		req.Header.Set("Accept", "text/html")
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// A signed-in user whose session token expired comes back to a page: the
// handshake renews the cookie through the Frontend API, invisibly, and the
// upstream sees the user. API calls with the same cookie keep their 401.
func TestHandshakeRenewsExpiredSession(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	startCaddy(t, handshakeSite(iss, up, ""))
	app := fmt.Sprintf("http://localhost:%d", caddyPort)

	signedIn := func(t *testing.T) *browser {
		b := newBrowser(t)
		b.setCookies(t, iss.URL+clerktest.HandshakePath, iss.SignInClient("user_alice"))
		issued := time.Now().Add(-10 * time.Minute)
		b.setCookies(t, app,
			&http.Cookie{Name: "__session", Value: iss.Mint(clerktest.IssuedAt(issued), clerktest.WithClaims(map[string]any{"sub": "user_alice"}))},
			&http.Cookie{Name: "__client_uat", Value: strconv.FormatInt(issued.Unix(), 10)})
		return b
	}

	t.Run("page load", func(t *testing.T) {
		b := signedIn(t)
		before := iss.HandshakeStats()
		renewsSession(t, b, up, app+"/dashboard?tab=1", iss.URL+clerktest.HandshakePath)
		after := iss.HandshakeStats()
		if after.Redirects-before.Redirects != 1 || after.PayloadCalls-before.PayloadCalls != 1 {
			t.Errorf("fake Clerk served %d handshakes and %d payload calls, want 1 and 1",
				after.Redirects-before.Redirects, after.PayloadCalls-before.PayloadCalls)
		}
	})

	t.Run("API call", func(t *testing.T) {
		b := signedIn(t)
		before := iss.HandshakeStats()
		resp, _ := b.load(t, app+"/api/data", true)
		if resp.StatusCode != http.StatusUnauthorized || len(b.hops) != 0 {
			t.Fatalf("status %d after %v, want 401 and no redirect", resp.StatusCode, b.hops)
		}
		if !strings.Contains(resp.Header.Get("WWW-Authenticate"), ReasonTokenExpired) {
			t.Errorf("WWW-Authenticate %q, want %s", resp.Header.Get("WWW-Authenticate"), ReasonTokenExpired)
		}
		if after := iss.HandshakeStats(); after.Requests != before.Requests {
			t.Errorf("an API call reached the Frontend API")
		}
	})
}

// renewsSession loads page with b, whose session cookie has expired, and
// checks the renewal: 200 for user_alice after exactly three redirects, the
// handshake at handshakeURL with Clerk's parameters, the return leg with a
// nonce, and the clean page URL.
func renewsSession(t *testing.T, b *browser, up *upstream, page, handshakeURL string) {
	t.Helper()
	resp, body := b.load(t, page, false)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "user_alice") {
		t.Fatalf("status %d after %v, body %q: want 200 for user_alice", resp.StatusCode, b.hops, body)
	}
	if got := up.last().Get("X-User-Id"); got != "user_alice" {
		t.Errorf("upstream saw X-User-Id %q, want user_alice", got)
	}
	if len(b.hops) != 3 {
		t.Fatalf("redirects %v, want the handshake, the return with a nonce, the clean URL", b.hops)
	}
	hs := b.hops[0]
	if got := hs.Scheme + "://" + hs.Host + hs.Path; got != handshakeURL {
		t.Errorf("handshake redirect to %s, want %s", got, handshakeURL)
	}
	q := hs.Query()
	for name, want := range map[string]string{
		"redirect_url":        page,
		"__clerk_api_version": handshake.APIVersion,
		"suffixed_cookies":    "false",
		"__clerk_hs_reason":   "session-token-expired-refresh-non-eligible-no-refresh-cookie",
		"format":              "nonce",
	} {
		if got := q.Get(name); got != want {
			t.Errorf("handshake %s = %q, want %q", name, got, want)
		}
	}
	if !b.hops[1].Query().Has(handshake.CookieHandshakeNonce) {
		t.Errorf("return leg %s carries no nonce", b.hops[1])
	}
	if got := b.hops[2].String(); got != page {
		t.Errorf("clean URL %s, want %s", got, page)
	}
}

// What goes wrong on the way back gets a clear answer: never a 500, never a
// redirect loop, and a Backend API outage is a 503, not a sign-out.
func TestHandshakeFailures(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	startCaddy(t, handshakeSite(iss, up, "sign_in_url "+iss.URL+clerktest.SignInPath))
	app := fmt.Sprintf("http://localhost:%d", caddyPort)
	fresh := func() string { return iss.Mint(clerktest.WithClaims(map[string]any{"sub": "user_alice"})) }
	directives := func(session string) []string {
		return []string{"__session=" + session + "; Path=/; SameSite=Lax",
			"__client_uat=" + strconv.FormatInt(time.Now().Unix(), 10) + "; Path=/; SameSite=Lax"}
	}
	handshakeToken := func(t *testing.T, key any, cat string) string {
		tok, err := clerktest.Sign(map[string]any{"alg": "RS256", "kid": iss.KID(), "typ": "JWT", "cat": cat},
			map[string]any{"handshake": directives(fresh())}, "RS256", key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T)
		path  func(t *testing.T) string
		// the final response, with redirects followed
		status   int
		location string // a prefix of the last hop, when redirected to sign in
		user     string // what the upstream saw, on 200
	}{
		{"signed-out visitor goes to sign in", nil,
			func(*testing.T) string { return "/page" }, http.StatusTemporaryRedirect, iss.URL + clerktest.SignInPath, ""},
		{"handshake token in the URL signs in", nil,
			func(t *testing.T) string {
				return "/page?" + handshake.CookieHandshake + "=" + handshakeToken(t, iss.PrivateKey(), clerktest.CatSession)
			}, http.StatusOK, "", "user_alice"},
		{"handshake token signed by another key is ignored", nil,
			func(t *testing.T) string {
				return "/page?" + handshake.CookieHandshake + "=" + handshakeToken(t, other, clerktest.CatSession)
			}, http.StatusTemporaryRedirect, iss.URL + clerktest.SignInPath, ""},
		{"handshake token of a JWT template is ignored", nil,
			func(t *testing.T) string {
				return "/page?" + handshake.CookieHandshake + "=" + handshakeToken(t, iss.PrivateKey(), clerktest.CatTemplate)
			}, http.StatusTemporaryRedirect, iss.URL + clerktest.SignInPath, ""},
		{"nonce unknown to the Backend API ends signed out", nil,
			func(*testing.T) string { return "/page?" + handshake.CookieHandshakeNonce + "=unknown-nonce" },
			http.StatusTemporaryRedirect, iss.URL + clerktest.SignInPath, ""},
		{"Backend API down is a 503", func(t *testing.T) {
			iss.SetPayloadFault(clerktest.PayloadFault{Fault: clerktest.Fault{Status: http.StatusInternalServerError}})
			t.Cleanup(iss.ClearPayloadFault)
		}, func(*testing.T) string { return "/page?" + handshake.CookieHandshakeNonce + "=some-nonce" },
			http.StatusServiceUnavailable, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			b := newBrowser(t)
			resp, _ := b.load(t, app+tc.path(t), false)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d after %v, want %d", resp.StatusCode, b.hops, tc.status)
			}
			if tc.location != "" {
				if len(b.hops) == 0 || !strings.HasPrefix(b.hops[len(b.hops)-1].String(), tc.location) {
					t.Fatalf("redirects %v, want the last to %s", b.hops, tc.location)
				}
				// A spent nonce or token must not come back after sign-in.
				if back := b.hops[len(b.hops)-1].Query().Get("redirect_url"); back != app+"/page" {
					t.Errorf("sign-in redirect_url %q, want %s/page", back, app)
				}
			}
			if tc.status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if tc.user != "" {
				if got := up.last().Get("X-User-Id"); got != tc.user {
					t.Errorf("upstream saw %q, want %q", got, tc.user)
				}
			}
		})
	}
}

// The handshake turns on where Clerk's SDK would use it, and a setting that
// cannot work is refused at provision time with what to fix.
func TestHandshakeConfiguration(t *testing.T) {
	iss := clerktest.Start(t)
	pk := iss.PublishableKey(false)
	for _, tc := range []struct {
		name    string
		h       Handler
		enabled bool
		err     string
	}{
		{"publishable and secret key", Handler{PublishableKey: pk, SecretKey: iss.SecretKey(), APIURL: iss.APIURL()}, true, ""},
		{"with jwt_key too, as Clerk allows", Handler{PublishableKey: pk, SecretKey: iss.SecretKey(), APIURL: iss.APIURL(), JWTKey: iss.PublicKeyPEM()}, true, ""},
		{"turned off", Handler{PublishableKey: pk, SecretKey: iss.SecretKey(), APIURL: iss.APIURL(), Handshake: "off"}, false, ""},
		{"no secret key", Handler{PublishableKey: pk}, false, ""},
		{"on without a secret key", Handler{PublishableKey: pk, Handshake: "on"}, false, "handshake on needs secret_key"},
		{"on without a publishable key", Handler{Issuers: []string{iss.URL}, SecretKey: iss.SecretKey(), APIURL: iss.APIURL(), Handshake: "on"}, false, "handshake on needs publishable_key"},
		{"unknown mode", Handler{PublishableKey: pk, Handshake: "maybe"}, false, `handshake "maybe": use on or off`},
		{"relative proxy_url that is no path", Handler{PublishableKey: pk, ProxyURL: "__clerk"}, false, "proxy_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			h.logger = zap.NewNop()
			err := h.provision(caddy.NewReplacer())
			t.Cleanup(func() { _ = h.Cleanup() })
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("provision: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("provision error %v, want one containing %q", err, tc.err)
			}
			if got := h.sessions != nil; got != tc.enabled {
				t.Errorf("handshake on = %v, want %v", got, tc.enabled)
			}
			if tc.err == "" && tc.h.JWTKey != "" {
				if _, ok := h.verifier.keys.(staticKey); !ok {
					t.Errorf("key source %T, want the networkless jwt_key", h.verifier.keys)
				}
			}
		})
	}
}

// The handshake's own paths log and count what happened, and never the
// token or the nonce that came with the request.
func TestHandshakeLogsAndMetrics(t *testing.T) {
	iss := clerktest.Start(t)
	core, logs := observer.New(zapcore.DebugLevel)
	h := &Handler{PublishableKey: iss.PublishableKey(true), Issuers: []string{iss.URL}, SecretKey: iss.LiveSecretKey(),
		APIURL: iss.APIURL(), ProxyURL: iss.URL, logger: zap.New(core)}
	if err := h.provision(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	other, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := clerktest.Sign(map[string]any{"alg": "RS256", "kid": iss.KID(), "typ": "JWT"},
		map[string]any{"handshake": []string{"__session=" + iss.Mint() + "; Path=/"}}, "RS256", other)
	if err != nil {
		t.Fatal(err)
	}
	expired := iss.Mint(clerktest.IssuedAt(time.Now().Add(-time.Hour)))
	const nonce = "secret-nonce-0123456789"

	for _, tc := range []struct {
		name, query, cookie string
		secret              string // must appear in no log line
		metric, series      string // the counter that must move by one
	}{
		{"expired session redirected", "", "__session=" + expired + "; __client_uat=1", expired,
			"caddy_clerk_auth_handshakes_total", "reason=session-token-expired-refresh-non-eligible-no-refresh-cookie"},
		{"forged handshake token", "?" + handshake.CookieHandshake + "=" + forged, "", forged,
			"caddy_clerk_auth_handshake_returns_total", "format=token,result=refused"},
		{"unknown nonce", "?" + handshake.CookieHandshakeNonce + "=" + nonce, "", nonce,
			"caddy_clerk_auth_handshake_returns_total", "format=nonce,result=refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := scrape(t)[tc.metric][tc.series]
			r := httptest.NewRequest(http.MethodGet, "http://app.example/page"+tc.query, nil)
			r.Header.Set("Sec-Fetch-Dest", "document")
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			w := httptest.NewRecorder()
			r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
			_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
			if got := scrape(t)[tc.metric][tc.series] - before; got != 1 {
				t.Errorf("counter moved by %v, want 1", got)
			}
			for _, e := range logs.TakeAll() {
				line := e.Message + fmt.Sprint(e.ContextMap())
				if strings.Contains(line, tc.secret) || strings.Contains(line, tc.secret[len(tc.secret)-12:]) {
					t.Errorf("log line quotes the request's secret: %s", line)
				}
			}
		})
	}
}
