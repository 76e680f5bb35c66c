package clerkauth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
)

// TestForwardsVerifiedIdentity is the product in one test: a valid token
// reaches the upstream with the identity headers, and client-forged copies
// of those headers (and their CGI look-alikes) never do.
func TestForwardsVerifiedIdentity(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%d {
	clerk_auth {
		issuer %s
		forward_header X-User-Id {http.auth.user.id}
		forward_header X-Org-Id {http.auth.user.org_id}
		forward_header X-Org-Role {http.auth.user.org_role}
	}
	reverse_proxy %s {
		header_up X-Session-Id {http.auth.user.session_id}
		header_up X-Token-Type {http.auth.user.token_type}
		header_up X-Azp {http.auth.user.azp}
		header_up X-Plan {http.auth.user.claims.metadata.plan}
		header_up X-Perms {http.auth.user.org_permissions}
	}
}`, caddyPort, iss.URL, up.addr()))

	token := iss.Mint(
		clerktest.V1Org("org_1", "acme", "org:admin", "org:billing:manage", "org:teams:read"),
		clerktest.WithClaims(map[string]any{"metadata": map[string]any{"plan": "pro"}}),
	)
	forged := bearer(token)
	forged.Set("X-User-Id", "user_forged")
	forged.Set("X-Org-Role", "org:owner")
	forged["X_User_Id"] = []string{"user_forged_underscore"}
	forged["x_org_id"] = []string{"org_forged"}

	resp, body := do(t, tester, http.MethodGet, "/", forged)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	h := up.last()
	want := map[string]string{
		"X-User-Id":    clerktest.DefaultSubject,
		"X-Org-Id":     "org_1",
		"X-Org-Role":   "org:admin",
		"X-Session-Id": clerktest.DefaultSessionID,
		"X-Token-Type": "session",
		"X-Azp":        clerktest.DefaultAZP,
		"X-Plan":       "pro",
		"X-Perms":      "org:billing:manage,org:teams:read",
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("upstream %s = %q, want [%q]", k, got, v)
		}
	}
	for name := range h {
		if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "X-User-Id") && name != "X-User-Id" {
			t.Errorf("look-alike header %s = %q reached the upstream", name, h[name])
		}
		if strings.EqualFold(name, "x_org_id") {
			t.Errorf("look-alike header %s reached the upstream", name)
		}
	}
}

// TestResponses covers every way a request can fail, as a client and as
// handle_errors see it.
func TestResponses(t *testing.T) {
	iss := clerktest.Start(t)
	other := clerktest.Start(t) // another Clerk instance: valid tokens, wrong keys and issuer
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%d {
	route /raw/* {
		clerk_auth {
			issuer %[2]s
			audience api
			authorized_parties http://localhost:3000
			roles admin
		}
		reverse_proxy %[3]s
	}
	route /pages/* {
		clerk_auth {
			issuer %[2]s
			roles admin
		}
		reverse_proxy %[3]s
	}
	handle_errors {
		header X-Reason {http.auth.clerk.reason}
		respond "{err.status_code} {http.auth.clerk.reason}"
	}
}`, caddyPort, iss.URL, up.addr()))

	now := time.Now()
	admin := map[string]any{"roles": []string{"admin"}, "aud": "api"}
	valid := iss.Mint(clerktest.WithClaims(admin))
	cases := []struct {
		name       string
		header     http.Header
		status     int
		reason     string
		wwwAuth    string
		noUpstream bool
	}{
		{"no token", nil, 401, ReasonTokenMissing, "Bearer", true},
		{"basic scheme is no token", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, 401, ReasonTokenMissing, "Bearer", true},
		{"garbage", bearer("not-a-jwt"), 401, ReasonTokenInvalid, `Bearer error="invalid_token", error_description="token-invalid"`, true},
		{"two tokens in the header", http.Header{"Authorization": {"Bearer a.b.c d.e.f"}}, 401, ReasonTokenInvalid, "", true},
		{"two Authorization headers", http.Header{"Authorization": {"Bearer " + valid, "Bearer " + valid}}, 401, ReasonTokenInvalid, "", true},
		{"expired", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.IssuedAt(now.Add(-2*time.Minute)))), 401, ReasonTokenExpired, "", true},
		{"not active yet", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithClaims(map[string]any{"nbf": now.Add(time.Minute).Unix()}))), 401, ReasonNotActiveYet, "", true},
		{"issued in the future", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithClaims(map[string]any{"iat": now.Add(time.Minute).Unix()}))), 401, ReasonIATInFuture, "", true},
		{"forged signature", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithKey(other.PrivateKey()))), 401, ReasonInvalidSignature, "", true},
		{"alg none", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithAlg("none"))), 401, ReasonInvalidAlgorithm, "", true},
		{"HS256 key confusion", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithAlg("HS256"), clerktest.WithHMACSecret([]byte(iss.PublicKeyPEM())))), 401, ReasonInvalidAlgorithm, "", true},
		{"unknown kid", bearer(other.Mint(clerktest.WithClaims(admin))), 401, ReasonKIDMismatch, "", true},
		{"wrong issuer", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithClaims(map[string]any{"iss": "https://clerk.example.com.evil"}))), 401, ReasonInvalidIssuer, "", true},
		{"missing sub", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithClaims(map[string]any{"sub": nil}))), 401, ReasonVerificationFailed, "", true},
		{"string exp", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithClaims(map[string]any{"exp": "tomorrow"}))), 401, ReasonVerificationFailed, "", true},
		{"missing azp", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithClaims(map[string]any{"azp": nil}))), 401, ReasonInvalidAuthorizedPart, "", true},
		{"wrong azp", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithClaims(map[string]any{"azp": "https://evil.example"}))), 401, ReasonInvalidAuthorizedPart, "", true},
		{"missing aud", bearer(iss.Mint(clerktest.WithClaims(map[string]any{"roles": []string{"admin"}}))), 401, ReasonInvalidAudience, "", true},
		{"wrong aud", bearer(iss.Mint(clerktest.WithClaims(admin), clerktest.WithClaims(map[string]any{"aud": []string{"other"}}))), 401, ReasonInvalidAudience, "", true},
		{"M2M token", bearer(iss.Mint(clerktest.M2M(), clerktest.WithClaims(admin))), 401, ReasonTypeMismatch, "", true},
		{"missing role", bearer(iss.Mint(clerktest.WithClaims(map[string]any{"aud": "api", "roles": "viewer,editor"}))), 403, ReasonMissingRole, `Bearer error="insufficient_scope", error_description="missing-role"`, true},
		{"valid", bearer(valid), 200, "", "", false},
		{"valid template token", bearer(iss.Mint(clerktest.Template(), clerktest.WithClaims(admin))), 200, "", "", false},
		{"valid with role in a string", bearer(iss.Mint(clerktest.WithClaims(map[string]any{"aud": "api", "roles": "viewer, admin"}))), 200, "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, prefix := range []string{"/raw/", "/pages/"} {
				if prefix == "/pages/" && tc.status != 200 && tc.reason != ReasonTokenMissing && tc.reason != ReasonMissingRole {
					continue // the pages route has no aud/azp rules; one pass suffices there
				}
				up.reset()
				resp, body := do(t, tester, http.MethodGet, prefix+"x", tc.header)
				if resp.StatusCode != tc.status {
					t.Fatalf("%s: status %d, want %d (body %q)", prefix, resp.StatusCode, tc.status, body)
				}
				if tc.status == 200 {
					if up.last() == nil {
						t.Fatalf("%s: upstream got nothing", prefix)
					}
					continue
				}
				if tc.noUpstream && up.last() != nil {
					t.Errorf("%s: a rejected request reached the upstream", prefix)
				}
				if got := resp.Header.Get("X-Reason"); got != tc.reason {
					t.Errorf("%s: {http.auth.clerk.reason} = %q, want %q", prefix, got, tc.reason)
				}
				if want := fmt.Sprintf("%d %s", tc.status, tc.reason); body != want {
					t.Errorf("%s: handle_errors body %q, want %q", prefix, body, want)
				}
				wantAuth := tc.wwwAuth
				if wantAuth == "" {
					wantAuth = fmt.Sprintf(`Bearer error="invalid_token", error_description=%q`, tc.reason)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != wantAuth {
					t.Errorf("%s: WWW-Authenticate %q, want %q", prefix, got, wantAuth)
				}
			}
		})
	}
}

func TestCookieAndPreflight(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%d {
	clerk_auth {
		issuer %s
		forward_header X-User-Id {http.auth.user.id}
	}
	reverse_proxy %s
}`, caddyPort, iss.URL, up.addr()))

	t.Run("session cookie", func(t *testing.T) {
		up.reset()
		resp, body := do(t, tester, http.MethodGet, "/", http.Header{"Cookie": {"__session=" + iss.Mint()}})
		if resp.StatusCode != 200 || up.last().Get("X-User-Id") != clerktest.DefaultSubject {
			t.Fatalf("status %d body %q upstream %v", resp.StatusCode, body, up.last())
		}
	})
	t.Run("header wins over cookie", func(t *testing.T) {
		h := bearer("bad.token.here")
		h.Set("Cookie", "__session="+iss.Mint())
		resp, _ := do(t, tester, http.MethodGet, "/", h)
		if resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401: an invalid header token must not fall back to the cookie", resp.StatusCode)
		}
	})
	t.Run("token in the query string is ignored", func(t *testing.T) {
		resp, _ := do(t, tester, http.MethodGet, "/?__session="+iss.Mint()+"&token="+iss.Mint(), nil)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("CORS preflight passes unauthenticated", func(t *testing.T) {
		up.reset()
		h := http.Header{
			"Origin":                        {"https://app.example.com"},
			"Access-Control-Request-Method": {"POST"},
			"X-User-Id":                     {"user_forged"},
		}
		resp, _ := do(t, tester, http.MethodOptions, "/", h)
		if resp.StatusCode != 200 {
			t.Fatalf("preflight status %d", resp.StatusCode)
		}
		if got := up.last().Get("X-User-Id"); got != "" {
			t.Fatalf("forged X-User-Id %q reached the upstream on a preflight", got)
		}
	})
	t.Run("OPTIONS without preflight headers is authenticated", func(t *testing.T) {
		resp, _ := do(t, tester, http.MethodOptions, "/", nil)
		if resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
}

// TestPreflight: a CORS preflight passes unauthenticated by default, and is
// authenticated with `preflight authenticate`. An OPTIONS with a body is not
// a preflight, whatever its headers: it cannot carry data to the upstream
// unauthenticated, even on a route that requires a role.
func TestPreflight(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddyWithOptions(t, `
	servers {
		protocols h1 h2c
	}`, fmt.Sprintf(`
:%[1]d {
	route /pass/* {
		clerk_auth {
			issuer %[2]s
			roles admin
			forward_header X-User-Id {http.auth.user.id}
		}
		reverse_proxy %[3]s
	}
	route /authenticate/* {
		clerk_auth {
			issuer %[2]s
			preflight authenticate
		}
		reverse_proxy %[3]s
	}
	handle_errors {
		header X-Reason {http.auth.clerk.reason}
		respond {err.status_code}
	}
}`, caddyPort, iss.URL, up.addr()))
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h2cClient := &http.Client{Transport: &http.Transport{Protocols: &h2c}}
	t.Cleanup(h2cClient.CloseIdleConnections)

	const unknownLength = -1
	cases := []struct {
		name   string
		path   string
		body   string
		length int64 // Content-Length sent with body; unknownLength sends none
		h2c    bool
		token  string
		status int
		reason string
	}{
		{name: "preflight passes by default", path: "/pass/x", status: 200},
		{name: "preflight over HTTP/2 passes by default", path: "/pass/x", h2c: true, status: 200},
		{name: "with a Content-Length body", path: "/pass/x", body: "state-changing", length: 14, status: 401, reason: ReasonTokenMissing},
		{name: "with a chunked body", path: "/pass/x", body: "state-changing", length: unknownLength, status: 401, reason: ReasonTokenMissing},
		{name: "with an HTTP/2 body of unknown length", path: "/pass/x", body: "state-changing", length: unknownLength, h2c: true, status: 401, reason: ReasonTokenMissing},
		{name: "preflight authenticate", path: "/authenticate/x", status: 401, reason: ReasonTokenMissing},
		{name: "preflight authenticate with a valid token", path: "/authenticate/x", token: iss.Mint(), status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up.reset()
			req, err := http.NewRequest(http.MethodOptions, caddyURL(tc.path), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.body != "" {
				req.Body = io.NopCloser(strings.NewReader(tc.body))
				req.ContentLength = tc.length
			}
			client := tester.Client
			if tc.h2c {
				client = h2cClient
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if tc.h2c && resp.ProtoMajor != 2 {
				t.Fatalf("answered over %s, want HTTP/2", resp.Proto)
			}
			if resp.StatusCode != tc.status || resp.Header.Get("X-Reason") != tc.reason {
				t.Fatalf("status %d, reason %q; want %d %q", resp.StatusCode, resp.Header.Get("X-Reason"), tc.status, tc.reason)
			}
			if reached := up.last() != nil; reached != (tc.status == 200) {
				t.Fatalf("upstream reached: %v, want %v", reached, tc.status == 200)
			}
		})
	}
}

// TestCrossSiteCookie: a state-changing request whose token comes from the
// session cookie is unauthenticated when a browser says another origin's
// page sent it; a token in the Authorization header, a safe method, the
// request's own origin and an authorized party are unaffected.
func TestCrossSiteCookie(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%[1]d {
	route /req/* {
		clerk_auth {
			issuer %[2]s
			authorized_parties %[4]s
			forward_header X-User-Id {http.auth.user.id}
		}
		reverse_proxy %[3]s
	}
	route /opt/* {
		clerk_auth {
			issuer %[2]s
			optional
			forward_header X-User-Id {http.auth.user.id}
		}
		reverse_proxy %[3]s {
			header_up X-Reason {http.auth.clerk.reason}
		}
	}
	route /allow/* {
		clerk_auth {
			issuer %[2]s
			cross_site_cookies allow
			forward_header X-User-Id {http.auth.user.id}
		}
		reverse_proxy %[3]s
	}
	handle_errors {
		header X-Reason {http.auth.clerk.reason}
		respond {err.status_code}
	}
}`, caddyPort, iss.URL, up.addr(), clerktest.DefaultAZP))

	token := iss.Mint()
	carriers := map[string]http.Header{
		"cookie": {"Cookie": {"__session=" + token}},
		"header": bearer(token),
	}
	origins := map[string]string{
		"own":              fmt.Sprintf("http://localhost:%d", caddyPort),
		"evil":             "https://evil.example",
		"authorized party": clerktest.DefaultAZP,
		"null":             "null",
		"absent":           "",
	}
	fetchSites := []string{"same-origin", "cross-site", ""}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodGet} {
		for carrier, credentials := range carriers {
			for originName, origin := range origins {
				for _, site := range fetchSites {
					refused := carrier == "cookie" && method != http.MethodGet &&
						(site == "cross-site" || originName == "evil" || originName == "null")
					name := fmt.Sprintf("%s %s Origin=%s Sec-Fetch-Site=%s", method, carrier, originName, site)
					t.Run(name, func(t *testing.T) {
						up.reset()
						h := credentials.Clone()
						if origin != "" {
							h.Set("Origin", origin)
						}
						if site != "" {
							h.Set("Sec-Fetch-Site", site)
						}
						resp, body := do(t, tester, method, "/req/x", h)
						if refused {
							if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Reason") != ReasonCrossSiteCookie {
								t.Fatalf("status %d, reason %q; want 401 %q", resp.StatusCode, resp.Header.Get("X-Reason"), ReasonCrossSiteCookie)
							}
							want := `Bearer error="invalid_token", error_description="cross-site-cookie"`
							if got := resp.Header.Get("WWW-Authenticate"); got != want {
								t.Errorf("WWW-Authenticate %q, want %q", got, want)
							}
							if up.last() != nil {
								t.Error("a refused request reached the upstream")
							}
							return
						}
						if resp.StatusCode != http.StatusOK {
							t.Fatalf("status %d (%q, reason %q), want 200", resp.StatusCode, body, resp.Header.Get("X-Reason"))
						}
						if got := up.last().Get("X-User-Id"); got != clerktest.DefaultSubject {
							t.Fatalf("upstream X-User-Id %q, want %q", got, clerktest.DefaultSubject)
						}
					})
				}
			}
		}
	}

	crossSiteCookie := http.Header{"Cookie": {"__session=" + token}, "Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}
	t.Run("optional: a cross-site cookie goes on anonymously", func(t *testing.T) {
		up.reset()
		resp, _ := do(t, tester, http.MethodPost, "/opt/x", crossSiteCookie)
		got := up.last()
		if resp.StatusCode != http.StatusOK || got == nil {
			t.Fatalf("status %d, upstream reached: %v", resp.StatusCode, got != nil)
		}
		if got.Get("X-User-Id") != "" || got.Get("X-Reason") != ReasonCrossSiteCookie {
			t.Fatalf("upstream X-User-Id %q, reason %q; want none, %q", got.Get("X-User-Id"), got.Get("X-Reason"), ReasonCrossSiteCookie)
		}
	})
	t.Run("cross_site_cookies allow", func(t *testing.T) {
		up.reset()
		resp, _ := do(t, tester, http.MethodPost, "/allow/x", crossSiteCookie)
		if resp.StatusCode != http.StatusOK || up.last().Get("X-User-Id") != clerktest.DefaultSubject {
			t.Fatalf("status %d, upstream %v", resp.StatusCode, up.last())
		}
	})
}

// TestOptional checks that anonymous requests continue with empty identity
// placeholders and never carry a forged identity header.
func TestOptional(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%d {
	clerk_auth {
		issuer %s
		optional
		roles admin
		forward_header X-User-Id {http.auth.user.id}
	}
	reverse_proxy %s {
		header_up X-Reason {http.auth.clerk.reason}
		header_up X-Via-Placeholder {http.auth.user.id}
		header_up X-Org {http.auth.user.org_id}
	}
}`, caddyPort, iss.URL, up.addr()))

	cases := []struct {
		name   string
		header http.Header
		status int
		user   string
		reason string
	}{
		{"anonymous", nil, 200, "", ReasonTokenMissing},
		{"invalid token", bearer("x.y.z"), 200, "", ReasonTokenInvalid},
		{"expired token", bearer(iss.Mint(clerktest.IssuedAt(time.Now().Add(-time.Hour)))), 200, "", ReasonTokenExpired},
		{"valid admin", bearer(iss.Mint(clerktest.WithClaims(map[string]any{"roles": []string{"admin"}}))), 200, clerktest.DefaultSubject, ""},
		{"valid but missing role", bearer(iss.Mint()), 403, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up.reset()
			h := tc.header.Clone()
			if h == nil {
				h = http.Header{}
			}
			h.Set("X-User-Id", "user_forged")
			h["X_USER_ID"] = []string{"user_forged"}
			resp, body := do(t, tester, http.MethodGet, "/", h)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				if up.last() != nil {
					t.Fatal("a rejected request reached the upstream")
				}
				return
			}
			got := up.last()
			if v := got.Values("X-User-Id"); tc.user == "" && len(v) != 0 || tc.user != "" && (len(v) != 1 || v[0] != tc.user) {
				t.Errorf("X-User-Id = %q, want %q", v, tc.user)
			}
			if v := got.Get("X-Via-Placeholder"); v != tc.user {
				t.Errorf("header_up {http.auth.user.id} = %q, want %q", v, tc.user)
			}
			if v := got.Get("X-Org"); v != "" {
				t.Errorf("header_up {http.auth.user.org_id} = %q, want empty", v)
			}
			if v := got.Get("X-Reason"); v != tc.reason {
				t.Errorf("reason %q, want %q", v, tc.reason)
			}
			if _, ok := got["X_USER_ID"]; ok {
				t.Error("X_USER_ID look-alike reached the upstream")
			}
		})
	}
}

// TestSharedKeySet checks that sites sharing an issuer share one JWKS fetch,
// and that a config reload reuses it instead of fetching again.
func TestSharedKeySet(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	config := fmt.Sprintf(`
http://a.localhost:%[1]d {
	clerk_auth {
		issuer %[2]s
	}
	reverse_proxy %[3]s
}
http://b.localhost:%[1]d {
	clerk_auth {
		issuer %[2]s
		roles admin
	}
	reverse_proxy %[3]s
}`, caddyPort, iss.URL, up.addr())
	tester := startCaddy(t, config)

	token := iss.Mint(clerktest.WithClaims(map[string]any{"roles": "admin"}))
	hit := func() {
		for _, host := range []string{"a.localhost", "b.localhost"} {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s:%d/", host, caddyPort), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp := tester.AssertResponseCode(req, 200)
			resp.Body.Close()
		}
	}
	hit()
	if n := iss.Fetches(); n != 1 {
		t.Fatalf("two sites made %d JWKS fetches, want 1", n)
	}
	startCaddy(t, config+"\n# reloaded\n")
	hit()
	if n := iss.Fetches(); n != 1 {
		t.Fatalf("after a reload: %d JWKS fetches, want 1", n)
	}
}

// TestKeysUnavailable: when the issuer serves no keys, requests get 503 with
// Retry-After, never a 401 that would look like a sign-out.
func TestKeysUnavailable(t *testing.T) {
	iss := clerktest.Start(t)
	iss.SetFault(clerktest.Fault{Status: http.StatusInternalServerError})
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%d {
	clerk_auth {
		issuer %s
	}
	reverse_proxy %s
}`, caddyPort, iss.URL, up.addr()))

	resp, _ := do(t, tester, http.MethodGet, "/", bearer(iss.Mint()))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if up.last() != nil {
		t.Fatal("request reached the upstream without verification")
	}
}

// TestExampleCaddyfile keeps Caddyfile.example loadable: it is adapted and
// provisioned exactly as `caddy validate` would.
func TestExampleCaddyfile(t *testing.T) {
	body, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("adapter warnings: %v", warnings)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfgJSON), `"handler":"clerk_auth"`) {
		t.Fatalf("example has no clerk_auth handler: %s", cfgJSON)
	}
}

// TestRequirements drives each requirement directive through Caddy: one
// token that passes and one that gets 403 with the directive's reason.
func TestRequirements(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%[1]d {
	route /org-role {
		clerk_auth {
			issuer %[2]s
			org_role admin
		}
		reverse_proxy %[3]s
	}
	route /permission {
		clerk_auth {
			issuer %[2]s
			org_permission teams:manage
		}
		reverse_proxy %[3]s
	}
	route /role-and-permission {
		clerk_auth {
			issuer %[2]s
			org_role admin
			org_permission org:teams:manage
		}
		reverse_proxy %[3]s
	}
	route /feature {
		clerk_auth {
			issuer %[2]s
			feature org:dashboard
		}
		reverse_proxy %[3]s
	}
	route /plan {
		clerk_auth {
			issuer %[2]s
			plan pro enterprise
		}
		reverse_proxy %[3]s
	}
	route /claim {
		clerk_auth {
			issuer %[2]s
			claim metadata.tier gold platinum
		}
		reverse_proxy %[3]s
	}
	route /session-only {
		clerk_auth {
			issuer %[2]s
			accept session
		}
		reverse_proxy %[3]s
	}
	handle_errors {
		respond "{http.auth.clerk.reason}"
	}
}`, caddyPort, iss.URL, up.addr()))

	adminV2 := clerktest.V2(clerktest.OrgV2{ID: "org_1", Slug: "acme", Role: "admin", Per: "manage,read", Fpm: "1,2"})
	billing := clerktest.WithClaims(map[string]any{"fea": "o:dashboard,o:teams", "pla": "u:pro"})
	memberV2 := clerktest.V2(clerktest.OrgV2{ID: "org_1", Slug: "acme", Role: "member", Per: "manage,read", Fpm: "2,2"})
	cases := []struct {
		path   string
		token  string
		status int
		reason string
	}{
		{"/org-role", iss.Mint(adminV2, billing), 200, ""},
		{"/org-role", iss.Mint(clerktest.V1Org("org_1", "acme", "org:admin")), 200, ""},
		{"/org-role", iss.Mint(memberV2, billing), 403, "missing-org-role"},
		{"/org-role", iss.Mint(), 403, "missing-org-role"},
		{"/permission", iss.Mint(adminV2, clerktest.WithClaims(map[string]any{"fea": "o:teams,o:dashboard"})), 200, ""},
		{"/permission", iss.Mint(memberV2, billing), 403, "missing-permission"},
		{"/role-and-permission", iss.Mint(adminV2, clerktest.WithClaims(map[string]any{"fea": "o:teams"}), clerktest.WithClaims(map[string]any{"o": map[string]any{"id": "org_1", "rol": "admin", "per": "manage", "fpm": "1"}})), 200, ""},
		{"/role-and-permission", iss.Mint(adminV2, billing), 403, "missing-permission"},
		{"/role-and-permission", iss.Mint(memberV2, clerktest.WithClaims(map[string]any{"fea": "o:teams"})), 403, "missing-org-role"},
		{"/feature", iss.Mint(adminV2, billing), 200, ""},
		{"/feature", iss.Mint(adminV2, clerktest.WithClaims(map[string]any{"fea": "u:dashboard"})), 403, "missing-feature"},
		{"/plan", iss.Mint(adminV2, billing), 200, ""},
		{"/plan", iss.Mint(adminV2, clerktest.WithClaims(map[string]any{"pla": "o:free"})), 403, "missing-plan"},
		{"/claim", iss.Mint(clerktest.WithClaims(map[string]any{"metadata": map[string]any{"tier": "gold"}})), 200, ""},
		{"/claim", iss.Mint(clerktest.WithClaims(map[string]any{"metadata": map[string]any{"tier": []string{"x", "platinum"}}})), 200, ""},
		{"/claim", iss.Mint(clerktest.WithClaims(map[string]any{"metadata": map[string]any{"tier": "bronze"}})), 403, "claim-mismatch"},
		{"/claim", iss.Mint(), 403, "claim-mismatch"},
		{"/session-only", iss.Mint(), 200, ""},
		{"/session-only", iss.Mint(clerktest.Template()), 401, ReasonTypeMismatch},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %d %s", tc.path, tc.status, tc.reason), func(t *testing.T) {
			resp, body := do(t, tester, http.MethodGet, tc.path, bearer(tc.token))
			if resp.StatusCode != tc.status || tc.status != 200 && body != tc.reason {
				t.Fatalf("status %d body %q, want %d %q", resp.StatusCode, body, tc.status, tc.reason)
			}
		})
	}
}

// TestClerkNativeConfig covers the ways a Clerk user configures keys and
// sessions: networkless PEM, Backend API with a secret key, the suffixed
// cookie of a publishable key, pending sessions, and the new placeholders.
func TestClerkNativeConfig(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	t.Setenv("TEST_CLERK_JWT_KEY", iss.PublicKeyPEM())
	const pk = "pk_test_Y2xlcmsuY2xlcmsuZGV2JA" // clerk.clerk.dev, cookie suffix QvfNY2dr
	tester := startCaddy(t, fmt.Sprintf(`
:%[1]d {
	route /pem/* {
		clerk_auth {
			issuer %[2]s
			jwt_key {env.TEST_CLERK_JWT_KEY}
		}
		reverse_proxy %[3]s
	}
	route /bapi/* {
		clerk_auth {
			issuer %[2]s
			secret_key %[4]s
			api_url %[5]s
		}
		reverse_proxy %[3]s
	}
	route /bad-secret/* {
		clerk_auth {
			issuer %[2]s
			secret_key sk_test_wrong
			api_url %[5]s
		}
		reverse_proxy %[3]s
	}
	route /pk/* {
		clerk_auth {
			publishable_key %[6]s
			issuer https://clerk.clerk.dev
			jwks_url %[7]s
			allow_pending
		}
		reverse_proxy %[3]s {
			header_up X-Features {http.auth.user.features}
			header_up X-Plans {http.auth.user.plans}
			header_up X-Status {http.auth.user.session_status}
			header_up X-Actor {http.auth.user.actor}
			header_up X-Issuer {http.auth.user.issuer}
			header_up X-Expires {http.auth.user.expires_at}
		}
	}
	route /pending/* {
		clerk_auth {
			issuer %[2]s
		}
		reverse_proxy %[3]s
	}
	route /pending-optional/* {
		clerk_auth {
			issuer %[2]s
			optional
		}
		reverse_proxy %[3]s {
			header_up X-User {http.auth.user.id}
			header_up X-Reason {http.auth.clerk.reason}
		}
	}
}`, caddyPort, iss.URL, up.addr(), iss.SecretKey(), iss.APIURL(), pk, iss.JWKSURL()))

	t.Run("networkless PEM verifies without fetching", func(t *testing.T) {
		before := iss.Fetches()
		resp, _ := do(t, tester, http.MethodGet, "/pem/x", bearer(iss.Mint(clerktest.WithHeader(map[string]any{"kid": nil}))))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if iss.Fetches() != before {
			t.Fatal("jwt_key fetched a JWKS")
		}
		resp, _ = do(t, tester, http.MethodGet, "/pem/x", bearer(iss.Mint(clerktest.WithKey(clerktest.Start(t).PrivateKey()))))
		if resp.StatusCode != 401 {
			t.Fatalf("forged token: status %d", resp.StatusCode)
		}
	})
	t.Run("Backend API keys with the secret key", func(t *testing.T) {
		resp, _ := do(t, tester, http.MethodGet, "/bapi/x", bearer(iss.Mint()))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		resp, _ = do(t, tester, http.MethodGet, "/bad-secret/x", bearer(iss.Mint()))
		if resp.StatusCode != 503 {
			t.Fatalf("wrong secret key: status %d, want 503", resp.StatusCode)
		}
	})
	t.Run("suffixed cookie and v2 placeholders", func(t *testing.T) {
		up.reset()
		exp := time.Now().Add(time.Minute).Truncate(time.Second)
		mine := iss.Mint(
			clerktest.V2(clerktest.OrgV2{ID: "org_1", Slug: "acme", Role: "admin"}),
			clerktest.WithClaims(map[string]any{
				"iss": "https://clerk.clerk.dev", "fea": "o:dashboard,u:beta", "pla": "ou:pro",
				"sts": "pending", "act": map[string]any{"sub": "user_support"}, "exp": exp.Unix(),
			}))
		theirs := iss.Mint(clerktest.WithClaims(map[string]any{"iss": "https://other.clerk.accounts.dev", "sub": "user_other"}))
		h := http.Header{"Cookie": {"__session=" + theirs + "; __session_QvfNY2dr=" + mine + "; __client_uat_QvfNY2dr=1"}}
		resp, body := do(t, tester, http.MethodGet, "/pk/x", h)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d %q", resp.StatusCode, body)
		}
		got := up.last()
		want := map[string]string{
			"X-Features": "o:dashboard,u:beta", "X-Plans": "o:pro,u:pro", "X-Status": "pending",
			"X-Actor": "user_support", "X-Issuer": "https://clerk.clerk.dev", "X-Expires": exp.UTC().Format(time.RFC3339),
		}
		for k, v := range want {
			if got.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, got.Get(k), v)
			}
		}
	})
	t.Run("pending sessions are signed out by default", func(t *testing.T) {
		pending := iss.Mint(clerktest.WithClaims(map[string]any{"sts": "pending"}))
		resp, _ := do(t, tester, http.MethodGet, "/pending/x", bearer(pending))
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "session-pending") {
			t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		up.reset()
		resp, _ = do(t, tester, http.MethodGet, "/pending-optional/x", bearer(pending))
		if resp.StatusCode != 200 || up.last().Get("X-User") != "" || up.last().Get("X-Reason") != ReasonSessionPending {
			t.Fatalf("optional: status %d, upstream %v", resp.StatusCode, up.last())
		}
	})
}

// TestSignInRedirect: browsers navigating to a page are sent to sign in;
// API calls keep their 401.
func TestSignInRedirect(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%d {
	clerk_auth {
		issuer %s
		sign_in_url https://accounts.example.com/sign-in?lang=en
	}
	reverse_proxy %s
}`, caddyPort, iss.URL, up.addr()))
	tester.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	wantLocation := "https://accounts.example.com/sign-in?lang=en&redirect_url=" +
		url.QueryEscape(fmt.Sprintf("http://localhost:%d/dash?tab=1", caddyPort))
	cases := []struct {
		name     string
		method   string
		header   http.Header
		redirect bool
	}{
		{"document navigation", "GET", http.Header{"Sec-Fetch-Dest": {"document"}, "Accept": {"text/html"}}, true},
		{"iframe", "GET", http.Header{"Sec-Fetch-Dest": {"iframe"}}, true},
		{"old browser asking for HTML", "GET", http.Header{"Accept": {"text/html,application/xhtml+xml"}}, true},
		{"expired cookie on a page", "GET", http.Header{"Sec-Fetch-Dest": {"document"}, "Cookie": {"__session=" + iss.Mint(clerktest.IssuedAt(time.Now().Add(-time.Hour)))}}, true},
		{"fetch from a page", "GET", http.Header{"Sec-Fetch-Dest": {"empty"}, "Accept": {"text/html"}}, false},
		{"API client", "GET", http.Header{"Accept": {"application/json"}}, false},
		{"form post", "POST", http.Header{"Sec-Fetch-Dest": {"document"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := do(t, tester, tc.method, "/dash?tab=1", tc.header)
			if !tc.redirect {
				if resp.StatusCode != 401 {
					t.Fatalf("status %d, want 401", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != wantLocation {
				t.Fatalf("status %d Location %q, want 307 %q", resp.StatusCode, resp.Header.Get("Location"), wantLocation)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

// TestCachedTokenExpires: a token served from the verified-token cache is
// still rejected once exp + leeway has passed. The handlers' clock is
// injected, so no test sleeps.
func TestCachedTokenExpires(t *testing.T) {
	start := time.Now()
	clock := fakeclock.New(start)
	timeNow = clock.Now
	t.Cleanup(func() { timeNow = time.Now })

	iss := clerktest.Start(t)
	iss.SetNow(func() time.Time { return start })
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%d {
	clerk_auth {
		issuer %s
		leeway 5s
	}
	reverse_proxy %s
}`, caddyPort, iss.URL, up.addr()))

	token := iss.Mint() // exp = start + 60s
	steps := []struct {
		advance time.Duration
		status  int
	}{
		{0, 200},                // verified, then cached
		{0, 200},                // from the cache
		{64 * time.Second, 200}, // inside exp + leeway
		{time.Second, 401},      // exp + leeway reached: rejected although cached
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		resp, _ := do(t, tester, http.MethodGet, "/", bearer(token))
		if resp.StatusCode != s.status {
			t.Fatalf("step %d (+%s): status %d, want %d", i, clock.Now().Sub(start), resp.StatusCode, s.status)
		}
	}
}

// TestMetricsEndpoint scrapes Caddy's admin /metrics after a few requests:
// the plugin's counters and key set gauges are there, with bounded labels.
func TestMetricsEndpoint(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%[1]d {
	handle /opt/* {
		clerk_auth {
			issuer %[2]s
			optional
		}
		reverse_proxy %[3]s
	}
	handle {
		clerk_auth {
			issuer %[2]s
		}
		reverse_proxy %[3]s
	}
}`, caddyPort, iss.URL, up.addr()))

	token := iss.Mint()
	for _, req := range []struct {
		path   string
		header http.Header
		status int
	}{
		{"/", bearer(token), 200},
		{"/", bearer(token), 200},
		{"/", nil, 401},
		{"/", bearer(iss.Mint(clerktest.WithKey(clerktest.Start(t).PrivateKey()))), 401},
		{"/opt/x", nil, 200},
	} {
		if resp, _ := do(t, tester, http.MethodGet, req.path, req.header); resp.StatusCode != req.status {
			t.Fatalf("%s: status %d, want %d", req.path, resp.StatusCode, req.status)
		}
	}

	resp, err := http.Get("http://localhost:2999/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	source := iss.JWKSURL()
	for _, want := range []string{
		`caddy_clerk_auth_requests_total{reason="",result="allowed"}`,
		`caddy_clerk_auth_requests_total{reason="token-missing",result="rejected"}`,
		`caddy_clerk_auth_requests_total{reason="token-invalid-signature",result="rejected"}`,
		`caddy_clerk_auth_requests_total{reason="token-missing",result="anonymous"}`,
		`caddy_clerk_auth_jwks_fetches_total{result="ok",trigger="startup"}`,
		`caddy_clerk_auth_token_cache_total{result="hit"}`,
		`caddy_clerk_auth_token_cache_total{result="miss"}`,
		fmt.Sprintf(`caddy_clerk_auth_jwks_keys{source=%q} 1`, source),
		fmt.Sprintf(`caddy_clerk_auth_jwks_age_seconds{source=%q}`, source),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	if strings.Contains(text, clerktest.DefaultSubject) || strings.Contains(text, token[:20]) {
		t.Error("/metrics exposes a user id or a token")
	}
}

// TestSameKIDRotation: Clerk rotates the signing key under the same kid.
// The first token signed by the new key makes the handler refetch the key
// set once and verify it; further bad signatures inside jwks_min_interval
// do not fetch again.
func TestSameKIDRotation(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%d {
	clerk_auth {
		issuer %s
		token_cache off
	}
	reverse_proxy %s
}`, caddyPort, iss.URL, up.addr()))

	if resp, _ := do(t, tester, http.MethodGet, "/", bearer(iss.Mint())); resp.StatusCode != 200 {
		t.Fatalf("before rotation: status %d", resp.StatusCode)
	}
	before := iss.Fetches()
	iss.RotateSameKID()
	if resp, _ := do(t, tester, http.MethodGet, "/", bearer(iss.Mint())); resp.StatusCode != 200 {
		t.Fatalf("token signed by the rotated key: status %d", resp.StatusCode)
	}
	if n := iss.Fetches() - before; n != 1 {
		t.Fatalf("rotation caused %d fetches, want 1", n)
	}
	forged := iss.Mint(clerktest.WithKey(clerktest.Start(t).PrivateKey()))
	for range 20 {
		if resp, _ := do(t, tester, http.MethodGet, "/", bearer(forged)); resp.StatusCode != 401 {
			t.Fatalf("forged token: status %d", resp.StatusCode)
		}
	}
	if n := iss.Fetches() - before; n != 1 {
		t.Fatalf("20 forged signatures inside jwks_min_interval caused %d more fetches", n-1)
	}
}

// TestCachedTokenFollowsKeySet: a cached token is only as good as the key
// that verified it. Once that key leaves the set, or the set is older than
// jwks_max_stale, the cached token gets what an uncached one would.
func TestCachedTokenFollowsKeySet(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		reason string
		// breakKeys changes the key set after the token was cached.
		breakKeys func(t *testing.T, tester *caddytest.Tester, iss *clerktest.Issuer, clock *fakeclock.Clock)
	}{
		{"key rotated out", http.StatusUnauthorized, ReasonKIDMismatch,
			func(t *testing.T, tester *caddytest.Tester, iss *clerktest.Issuer, _ *fakeclock.Clock) {
				iss.Rotate()
				// A token under the new kid makes the set refetch, which
				// drops the old key.
				if resp, _ := do(t, tester, http.MethodGet, "/", bearer(iss.Mint())); resp.StatusCode != http.StatusOK {
					t.Fatalf("token under the new key: status %d, want 200", resp.StatusCode)
				}
			}},
		{"keys past jwks_max_stale", http.StatusServiceUnavailable, ReasonJWKSUnavailable,
			func(t *testing.T, _ *caddytest.Tester, iss *clerktest.Issuer, clock *fakeclock.Clock) {
				iss.SetFault(clerktest.Fault{Status: http.StatusInternalServerError})
				clock.Advance(jwks.DefaultOptions.MaxStale + time.Minute)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			clock := fakeclock.New(start)
			timeNow, keySetClock = clock.Now, clock
			t.Cleanup(func() { timeNow, keySetClock = time.Now, nil })

			iss := clerktest.Start(t)
			iss.SetNow(clock.Now)
			up := startUpstream(t)
			tester := startCaddy(t, fmt.Sprintf(`
:%d {
	clerk_auth {
		issuer %s
	}
	reverse_proxy %s
}`, caddyPort, iss.URL, up.addr()))

			// A JWT-template token that outlives the outage below.
			token := iss.Mint(clerktest.Template(), clerktest.Lifetime(48*time.Hour))
			for i := range 2 { // verified, then cached
				if resp, _ := do(t, tester, http.MethodGet, "/", bearer(token)); resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: status %d, want 200", i, resp.StatusCode)
				}
			}
			tc.breakKeys(t, tester, iss, clock)
			resp, _ := do(t, tester, http.MethodGet, "/", bearer(token))
			if resp.StatusCode != tc.status {
				t.Fatalf("cached token after the keys changed: status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == http.StatusUnauthorized {
				if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, tc.reason) {
					t.Errorf("WWW-Authenticate %q, want reason %s", got, tc.reason)
				}
			}
		})
	}
}

// The debug line of a rejected request shows its URI, but never the
// handshake's nonce or token, nor a dev-browser token, however the name is
// spelled on the wire.
func TestLoggedURIRedactsHandshakeCredentials(t *testing.T) {
	for _, tc := range []struct{ name, uri, want string }{
		{"no query", "/page", "/page"},
		{"other parameters", "/page?tab=1&x=%20y", "/page?tab=1&x=%20y"},
		{"nonce", "/page?tab=1&__clerk_handshake_nonce=n0nce", "/page?tab=1&__clerk_handshake_nonce=REDACTED"},
		{"token", "/page?__clerk_handshake=eyJ.a.b&tab=1", "/page?__clerk_handshake=REDACTED&tab=1"},
		{"dev browser", "/?__clerk_db_jwt=dvb_1", "/?__clerk_db_jwt=REDACTED"},
		{"percent-encoded name", "/?__clerk%5Fhandshake%5Fnonce=n0nce", "/?__clerk%5Fhandshake%5Fnonce=REDACTED"},
		{"repeated", "/?__clerk_handshake_nonce=a&__clerk_handshake_nonce=b", "/?__clerk_handshake_nonce=REDACTED&__clerk_handshake_nonce=REDACTED"},
		{"name without value", "/?__clerk_handshake_nonce", "/?__clerk_handshake_nonce=REDACTED"},
		{"a longer name is kept", "/?__clerk_handshake_nonce_x=1", "/?__clerk_handshake_nonce_x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := loggedURI(tc.uri); got != tc.want {
				t.Errorf("loggedURI(%q) = %q, want %q", tc.uri, got, tc.want)
			}
		})
	}
}
