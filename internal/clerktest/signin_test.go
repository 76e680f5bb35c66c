package clerktest

import (
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// noRedirects is client, but it returns redirects instead of following
// them, so the sign-in page's 303 and cookie can be inspected.
var noRedirects = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// clientCookie is the client cookie a sign-in set.
func clientCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == ClientCookie {
			return c
		}
	}
	t.Fatalf("sign-in set %v, want a %s", resp.Cookies(), ClientCookie)
	return nil
}

// formRequest sends form (none if nil) to target through client, with
// cookies, and returns the response and its body.
func formRequest(t *testing.T, client *http.Client, method, target string, form url.Values, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestSignInPageIsOffUntilEnabled(t *testing.T) {
	iss := Start(t)
	resp, _ := formRequest(t, noRedirects, http.MethodGet, iss.SignInURL()+"?redirect_url="+url.QueryEscape(iss.URL+"/"), nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d before EnableSignIn, want 404", resp.StatusCode)
	}
}

func TestSignInPage(t *testing.T) {
	iss := Start(t)
	iss.EnableSignIn(SignInPage{
		Users: []SignInUser{
			{ID: "user_alice", About: "roles: admin", Options: []Option{WithClaims(map[string]any{"roles": []string{"admin"}})}},
			{ID: "user_bob", About: "no roles"},
		},
		Lifetime: 90 * time.Second,
	})
	// The app is on the issuer's host, another port: that is where the
	// cookie goes and so the only place the page may redirect to.
	u, err := url.Parse(iss.URL)
	if err != nil {
		t.Fatal(err)
	}
	app := "http://" + net.JoinHostPort(u.Hostname(), "1") + "/private?x=1"
	tests := []struct {
		name       string
		method     string
		query      string     // redirect_url of a GET
		form       url.Values // body of a POST
		wantStatus int
		wantBody   []string // substrings of the body
	}{
		{"page lists users", http.MethodGet, app, nil, http.StatusOK,
			[]string{"DEVELOPMENT ONLY", `value="user_alice"`, "roles: admin", `value="user_bob"`, "1m30s", `value="` + strings.ReplaceAll(app, "&", "&amp;"), `action="/v1/client/sign-out"`}},
		{"page without redirect_url", http.MethodGet, "", nil, http.StatusBadRequest, []string{"DEVELOPMENT-ONLY", "redirect_url is missing"}},
		{"page for a relative URL", http.MethodGet, "/private", nil, http.StatusBadRequest, []string{"not an absolute"}},
		{"page for a remote app", http.MethodGet, "https://example.com/", nil, http.StatusBadRequest, []string{"not on this machine"}},
		{"page for another loopback host", http.MethodGet, "http://localhost:1/", nil, http.StatusBadRequest, []string{"cookies are per host"}},
		{"sign in as unknown user", http.MethodPost, "", url.Values{"user": {"user_mallory"}, "redirect_url": {app}}, http.StatusBadRequest, []string{"unknown user"}},
		{"sign in to a remote app", http.MethodPost, "", url.Values{"user": {"user_bob"}, "redirect_url": {"http://evil.example/"}}, http.StatusBadRequest, []string{"not on this machine"}},
		{"wrong method", http.MethodDelete, app, nil, http.StatusMethodNotAllowed, []string{"use GET"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := iss.SignInURL()
			if tc.query != "" {
				target += "?redirect_url=" + url.QueryEscape(tc.query)
			}
			resp, body := formRequest(t, noRedirects, tc.method, target, tc.form)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.wantStatus, body)
			}
			for _, want := range tc.wantBody {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q:\n%s", want, body)
				}
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", resp.Header.Get("Cache-Control"))
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("set cookies %v without signing in", resp.Cookies())
			}
		})
	}
}

func TestSignInSetsSessionCookie(t *testing.T) {
	iss := Start(t)
	now := time.Unix(1_700_000_000, 0)
	iss.SetNow(func() time.Time { return now })
	iss.EnableSignIn(SignInPage{
		Users: []SignInUser{
			{ID: "user_alice", Options: []Option{WithClaims(map[string]any{"roles": []string{"admin"}})}},
			{ID: "user_bob"},
		},
		Lifetime: 90 * time.Second,
	})
	u, err := url.Parse(iss.URL)
	if err != nil {
		t.Fatal(err)
	}
	// An app on the issuer's host, another port, as the demo runs it.
	origin := "http://" + net.JoinHostPort(u.Hostname(), "1")
	back := origin + "/private?x=1"

	var sids []any
	for _, user := range []string{"user_alice", "user_bob"} {
		resp, body := formRequest(t, noRedirects, http.MethodPost, iss.SignInURL(), url.Values{"user": {user}, "redirect_url": {back}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != back {
			t.Fatalf("%s: status %d Location %q, want 303 to %s; body %q", user, resp.StatusCode, resp.Header.Get("Location"), back, body)
		}
		cookies := map[string]*http.Cookie{}
		for _, c := range resp.Cookies() {
			cookies[c.Name] = c
		}
		if len(cookies) != 3 || cookies[SessionCookie] == nil || cookies[ClientUATCookie] == nil || cookies[ClientCookie] == nil {
			t.Fatalf("%s: cookies %v, want %s, %s and %s", user, resp.Cookies(), SessionCookie, ClientUATCookie, ClientCookie)
		}
		c := cookies[SessionCookie]
		if c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 0 || !c.Expires.IsZero() || c.Domain != "" {
			t.Errorf("%s: cookie attributes %+v, want host-only, Path=/, HttpOnly, SameSite=Lax, no expiry", user, c)
		}
		// clerk-js reads __client_uat, so it is not HttpOnly; the client
		// cookie only ever goes back to the fake Frontend API.
		if uat := cookies[ClientUATCookie]; uat.Value != "1700000000" || uat.Path != "/" || uat.HttpOnly || uat.SameSite != http.SameSiteLaxMode {
			t.Errorf("%s: %s = %+v, want 1700000000 (the sign-in time), Path=/, SameSite=Lax, not HttpOnly", user, ClientUATCookie, uat)
		}
		if cl := cookies[ClientCookie]; cl.Value == "" || cl.Path != ClientCookiePath || !cl.HttpOnly || cl.SameSite != http.SameSiteLaxMode {
			t.Errorf("%s: %s = %+v, want a value, Path=%s, HttpOnly, SameSite=Lax", user, ClientCookie, cl, ClientCookiePath)
		}

		tok := parse(t, c.Value)
		if err := rsa.VerifyPKCS1v15(&iss.PrivateKey().PublicKey, crypto.SHA256, hashed(crypto.SHA256, tok.input), tok.sig); err != nil {
			t.Fatalf("%s: token does not verify with the issuer's key: %v", user, err)
		}
		if tok.header["kid"] != iss.KID() || tok.header["cat"] != CatSession {
			t.Errorf("%s: header %v, want the issuer's kid and a session token", user, tok.header)
		}
		want := map[string]any{"sub": user, "iss": iss.URL, "azp": origin}
		for k, v := range want {
			if tok.claims[k] != v {
				t.Errorf("%s: claim %s = %v, want %v", user, k, tok.claims[k], v)
			}
		}
		if got := num(t, tok.claims["exp"]) - num(t, tok.claims["iat"]); got != 90 {
			t.Errorf("%s: lifetime %ds, want 90s", user, got)
		}
		if sid, ok := tok.claims["sid"].(string); !ok || !strings.HasPrefix(sid, "sess_") {
			t.Errorf("%s: sid = %v, want sess_…", user, tok.claims["sid"])
		}
		sids = append(sids, tok.claims["sid"])
		_, hasRoles := tok.claims["roles"]
		if hasRoles != (user == "user_alice") {
			t.Errorf("%s: roles claim = %v, want it only for user_alice", user, tok.claims["roles"])
		}
	}
	if sids[0] == sids[1] {
		t.Errorf("two sign-ins share sid %v, want a fresh session each", sids[0])
	}
}

func TestNewAt(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr string
	}{
		{"127.0.0.1:0", ""},
		{"[::1]:0", ""},
		{"0.0.0.0:0", "loopback"},
		{":0", "loopback"},
		{"localhost:0", "loopback"}, // a name could resolve anywhere
		{"127.0.0.1", "missing port"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			iss, err := NewAt(tc.addr)
			if tc.wantErr != "" {
				if err == nil {
					iss.Close()
					t.Fatalf("NewAt(%q) succeeded, want an error mentioning %q", tc.addr, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewAt(%q) = %v, want an error mentioning %q", tc.addr, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				if strings.Contains(tc.addr, "::1") && strings.Contains(err.Error(), "cannot assign") {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				t.Fatal(err)
			}
			defer iss.Close()
			if keys := fetchKeys(t, iss.JWKSURL(), ""); keys[iss.KID()] == nil {
				t.Fatalf("JWKS at %s lacks the signing key", iss.JWKSURL())
			}
		})
	}
}

func TestSignOutEndsTheClientSession(t *testing.T) {
	iss := Start(t)
	u, err := url.Parse(iss.URL)
	if err != nil {
		t.Fatal(err)
	}
	back := "http://" + net.JoinHostPort(u.Hostname(), "1") + "/private"
	if resp, _ := formRequest(t, noRedirects, http.MethodPost, iss.SignOutURL(), url.Values{"redirect_url": {back}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("sign-out before EnableSignIn: status %d, want 404", resp.StatusCode)
	}
	iss.EnableSignIn(SignInPage{Users: []SignInUser{{ID: "user_alice"}}})

	resp, _ := formRequest(t, noRedirects, http.MethodPost, iss.SignInURL(), url.Values{"user": {"user_alice"}, "redirect_url": {back}})
	// The browser's cookies, each sent only where its Path allows.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	jar.SetCookies(u, resp.Cookies())
	browser := &http.Client{Jar: jar, CheckRedirect: noRedirects.CheckRedirect}
	client := clientCookie(t, resp)
	hs := url.Values{"redirect_url": {back}, "format": {"nonce"}}
	_, param, value := returnLeg(t, handshake(t, iss, hs, client))
	if d := directivesOf(t, iss, param, value); len(d) != 2 || !strings.HasPrefix(d[0], SessionCookie+"=ey") {
		t.Fatalf("directives %q after sign-in, want a session token", d)
	}

	tests := []struct {
		name       string
		method     string
		form       url.Values
		wantStatus int
	}{
		{"GET is refused", http.MethodGet, nil, http.StatusMethodNotAllowed},
		{"remote redirect is refused", http.MethodPost, url.Values{"redirect_url": {"http://evil.example/"}}, http.StatusBadRequest},
		{"sign out", http.MethodPost, url.Values{"redirect_url": {back}}, http.StatusSeeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := formRequest(t, browser, tc.method, iss.SignOutURL(), tc.form)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus != http.StatusSeeOther {
				return
			}
			if resp.Header.Get("Location") != back {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), back)
			}
			got := map[string]*http.Cookie{}
			for _, c := range resp.Cookies() {
				got[c.Name] = c
			}
			if c := got[SessionCookie]; c == nil || c.MaxAge >= 0 {
				t.Errorf("%s = %+v, want it deleted", SessionCookie, c)
			}
			if c := got[ClientUATCookie]; c == nil || c.Value != "0" {
				t.Errorf("%s = %+v, want 0", ClientUATCookie, c)
			}
			if c := got[ClientCookie]; c == nil || c.MaxAge >= 0 || c.Path != ClientCookiePath {
				t.Errorf("%s = %+v, want it deleted on %s", ClientCookie, c, ClientCookiePath)
			}
		})
	}

	// A browser that kept the old client cookie is signed out all the same.
	_, param, value = returnLeg(t, handshake(t, iss, hs, client))
	if d := directivesOf(t, iss, param, value); !slices.Equal(d, signedOutDirectives()) {
		t.Errorf("directives %q after sign-out, want signed-out", d)
	}
}

// "Sign out everywhere" ends the client session and sends a signed
// session.revoked for it to WebhookURL, but leaves the app's cookies: the
// token in the browser is refused only because the webhook said so.
func TestRevokeSendsSessionRevoked(t *testing.T) {
	iss := Start(t)
	u, err := url.Parse(iss.URL)
	if err != nil {
		t.Fatal(err)
	}
	back := "http://" + net.JoinHostPort(u.Hostname(), "1") + "/private"
	iss.EnableSignIn(SignInPage{Users: []SignInUser{{ID: "user_alice"}}})
	if resp, _ := formRequest(t, noRedirects, http.MethodPost, iss.RevokeURL(), url.Values{"redirect_url": {back}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("revoke without a WebhookURL: status %d, want 404", resp.StatusCode)
	}
	if _, page := formRequest(t, noRedirects, http.MethodGet, iss.SignInURL()+"?redirect_url="+url.QueryEscape(back), nil); strings.Contains(page, "Sign out everywhere") {
		t.Error("the page offers Sign out everywhere without a WebhookURL")
	}
	hook, got := receiver(t, http.StatusOK)
	iss.EnableSignIn(SignInPage{Users: []SignInUser{{ID: "user_alice"}}, WebhookURL: hook})
	if _, page := formRequest(t, noRedirects, http.MethodGet, iss.SignInURL()+"?redirect_url="+url.QueryEscape(back), nil); !strings.Contains(page, "Sign out everywhere") {
		t.Error("the page has no Sign out everywhere button with a WebhookURL")
	}

	resp, _ := formRequest(t, noRedirects, http.MethodPost, iss.SignInURL(), url.Values{"user": {"user_alice"}, "redirect_url": {back}})
	client := clientCookie(t, resp)
	sid := iss.clientFor(&http.Request{Header: http.Header{"Cookie": {client.String()}}}).sid

	tests := []struct {
		name       string
		method     string
		cookie     *http.Cookie
		wantStatus int
	}{
		{"GET is refused", http.MethodGet, client, http.StatusMethodNotAllowed},
		{"no session in this browser", http.MethodPost, nil, http.StatusBadRequest},
		{"revoke", http.MethodPost, client, http.StatusSeeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cookies []*http.Cookie
			if tc.cookie != nil {
				cookies = append(cookies, tc.cookie)
			}
			resp, _ := formRequest(t, noRedirects, tc.method, iss.RevokeURL(), url.Values{"redirect_url": {back}}, cookies...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus != http.StatusSeeOther {
				return
			}
			if loc := resp.Header.Get("Location"); loc != back {
				t.Errorf("Location %q, want %q", loc, back)
			}
			if c := resp.Cookies(); len(c) != 0 {
				t.Errorf("set cookies %v, want the browser's left as they are", c)
			}
			d := <-got
			wh, err := svix.NewWebhook(iss.WebhookSecret())
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(d.body, d.header); err != nil {
				t.Fatalf("the delivery does not verify: %v", err)
			}
			var ev struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal(d.body, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type != "session.revoked" || ev.Data["id"] != sid || ev.Data["user_id"] != "user_alice" {
				t.Errorf("sent %s for %v, want session.revoked of %s (user_alice)", ev.Type, ev.Data, sid)
			}
			if iss.clientFor(&http.Request{Header: http.Header{"Cookie": {client.String()}}}) != nil {
				t.Error("the client session outlives its revocation")
			}
		})
	}
}
