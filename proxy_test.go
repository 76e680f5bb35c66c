package clerkauth

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// The README's Frontend API proxy recipe, run as written: the block is read
// from README.md and only what cannot exist offline is swapped (the
// production hosts, the keys, the upstream), so a change to the recipe is a
// change to what this test runs.

// proxyRecipe returns the README block that serves Clerk's Frontend API
// under /__clerk.
func proxyRecipe(t *testing.T) string {
	t.Helper()
	var found []string
	for _, b := range readmeBlocks(t) {
		if b.file == "README.md" && strings.Contains(b.body, "Clerk-Proxy-Url") {
			found = append(found, b.body)
		}
	}
	if len(found) != 1 {
		t.Fatalf("README.md has %d Caddyfiles setting Clerk-Proxy-Url, want the one proxy recipe", len(found))
	}
	return found[0]
}

// proxySite is the recipe with the fake Clerk as the Frontend API (reached
// over http, where the real one is https) and as the Backend API, the
// harness's port as the site, and up as the app. Each replaced string must
// be in the recipe: a rewrite of the README that drops one fails here
// rather than testing something else.
func proxySite(t *testing.T, iss *clerktest.Issuer, up *upstream) string {
	t.Helper()
	site := proxyRecipe(t)
	for _, r := range []struct{ old, new string }{
		{"app.example.com {", fmt.Sprintf(":%d {", caddyPort)},
		{"https://app.example.com/__clerk", caddyURL("/__clerk")},
		{"https://frontend-api.clerk.dev", iss.URL},
		{"localhost:8000", up.addr()},
		// The fake's Frontend API is http on 127.0.0.1, which a
		// publishable key cannot name (Clerk derives https).
		{"publishable_key {env.CLERK_PUBLISHABLE_KEY}\n",
			"publishable_key {env.CLERK_PUBLISHABLE_KEY}\n\t\t\tissuer " + iss.URL + "\n\t\t\tapi_url " + iss.APIURL() + "\n"},
	} {
		if !strings.Contains(site, r.old) {
			t.Fatalf("the README proxy recipe no longer contains %q:\n%s", r.old, site)
		}
		site = strings.ReplaceAll(site, r.old, r.new)
	}
	// Production keys: Clerk's proxy serves production instances only.
	t.Setenv("CLERK_PUBLISHABLE_KEY", iss.PublishableKey(true))
	t.Setenv("CLERK_SECRET_KEY", iss.LiveSecretKey())
	return site
}

func TestFrontendAPIProxy(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	startCaddy(t, proxySite(t, iss, up))
	app := caddyURL("")
	proxyURL := caddyURL("/__clerk")

	// lastHandshake is the latest request the fake Frontend API received.
	lastHandshake := func(t *testing.T) clerktest.HandshakeRequest {
		t.Helper()
		seen := iss.HandshakeRequests()
		if len(seen) == 0 {
			t.Fatal("no request reached the Frontend API")
		}
		return seen[len(seen)-1]
	}

	// A browser's request to the proxy reaches the Frontend API without the
	// prefix, with Clerk's three headers, whatever the browser sent in
	// their place; clerk_auth does not stand in the way.
	t.Run("forwards with Clerk's headers", func(t *testing.T) {
		query := "redirect_url=" + url.QueryEscape(app+"/p?x=1") + "&format=nonce"
		req, err := http.NewRequest(http.MethodGet, caddyURL("/__clerk/v1/client/handshake?"+query), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = http.Header{
			"X-Forwarded-For":  {"198.51.100.66"},
			"Clerk-Secret-Key": {"sk_live_forged"},
			"Clerk-Proxy-Url":  {"https://evil.example/__clerk"},
		}
		// The Frontend API's own answer, not followed.
		client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
		t.Cleanup(client.CloseIdleConnections)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect ||
			!strings.HasPrefix(resp.Header.Get("Location"), app+"/p?x=1&"+clerktest.HandshakeNonceParam+"=") {
			t.Fatalf("status %d Location %q, want the Frontend API's 307 back to the app, untouched",
				resp.StatusCode, resp.Header.Get("Location"))
		}
		got := lastHandshake(t)
		if got.Path != clerktest.HandshakePath || got.RawQuery != query {
			t.Errorf("the Frontend API saw %s?%s, want %s?%s", got.Path, got.RawQuery, clerktest.HandshakePath, query)
		}
		for _, h := range []struct{ name, want string }{
			{"Clerk-Proxy-Url", proxyURL},
			{"Clerk-Secret-Key", iss.LiveSecretKey()},
		} {
			if v := got.Header.Values(h.name); len(v) != 1 || v[0] != h.want {
				t.Errorf("%s %q, want exactly %q", h.name, v, h.want)
			}
		}
		// Caddy listens on every interface, so localhost may be either
		// loopback address.
		if v := got.Header.Values("X-Forwarded-For"); len(v) != 1 || net.ParseIP(v[0]) == nil || !net.ParseIP(v[0]).IsLoopback() {
			t.Errorf("X-Forwarded-For %q, want only the client's own address", v)
		}
	})

	// The whole handshake through the proxy: the redirect goes to the
	// site's own /__clerk, the Frontend API (reading its client cookie,
	// which now lives on the app's domain) hands back a nonce, and
	// clerk_auth resolves it and lets the page through.
	t.Run("expired session renews through the proxy", func(t *testing.T) {
		b := newBrowser(t)
		client := iss.SignInClient("user_alice")
		client.Path = "/__clerk" + clerktest.ClientCookiePath
		b.setCookies(t, app, client)
		issued := time.Now().Add(-10 * time.Minute)
		b.setCookies(t, app,
			&http.Cookie{Name: "__session", Value: iss.Mint(clerktest.IssuedAt(issued), clerktest.WithClaims(map[string]any{"sub": "user_alice"}))},
			&http.Cookie{Name: "__client_uat", Value: strconv.FormatInt(issued.Unix(), 10)})
		before := iss.HandshakeStats()

		renewsSession(t, b, up, app+"/dashboard?tab=1", proxyURL+clerktest.HandshakePath)
		if got := lastHandshake(t).Header.Get("Clerk-Proxy-Url"); got != proxyURL {
			t.Errorf("the handshake reached the Frontend API with Clerk-Proxy-Url %q, want %q: not through the proxy", got, proxyURL)
		}
		after := iss.HandshakeStats()
		if after.Redirects-before.Redirects != 1 || after.PayloadsServed-before.PayloadsServed != 1 {
			t.Errorf("fake Clerk served %d handshakes and %d payloads, want 1 and 1",
				after.Redirects-before.Redirects, after.PayloadsServed-before.PayloadsServed)
		}
	})
}
