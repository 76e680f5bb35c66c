package clerktest

import (
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// SignInPath is where the development sign-in page is served once
// EnableSignIn has been called; until then it answers 404.
const SignInPath = "/sign-in"

// SignOutPath is where the development sign-in page signs out: under
// ClientCookiePath, so that the browser sends the ClientCookie of the
// session to end.
const SignOutPath = ClientCookiePath + "/sign-out"

// RevokePath is where the development sign-in page's "Sign out everywhere"
// button posts: under ClientCookiePath, like SignOutPath.
const RevokePath = ClientCookiePath + "/revoke"

// SessionCookie is the cookie the sign-in page stores the session token in,
// the one clerk-js sets on the application's domain.
const SessionCookie = "__session"

// SignInUser is someone the development sign-in page offers to sign in as.
type SignInUser struct {
	// ID is the user id, minted as "sub", e.g. "user_alice".
	ID string
	// About is shown next to the user's button, e.g. "roles: admin".
	About string
	// Options are applied to every token minted for this user, after the
	// page's own, e.g. WithClaims(map[string]any{"roles": []string{"admin"}}).
	Options []Option
}

// SignInPage configures the development sign-in page.
type SignInPage struct {
	// Users offered on the page, one button each.
	Users []SignInUser
	// Lifetime of the session tokens the page and the handshake mint; 0
	// means DefaultLifetime. No script refreshes them as clerk-js would:
	// once a token has expired, only a handshake gets a fresh one.
	Lifetime time.Duration
	// WebhookURL, if set, is where the page's "Sign out everywhere"
	// button has a session.revoked webhook sent (signed with
	// WebhookSecret), as Clerk does when a session is revoked from
	// another device: e.g. Caddy's clerk_webhook route. Unset, the page
	// has no such button.
	WebhookURL string
}

// EnableSignIn serves a DEVELOPMENT-ONLY sign-in page at SignInURL, standing
// in for Clerk's Account Portal so that clerk_auth's sign_in_url redirect can
// be tried in a browser without a Clerk account. It replaces any previous
// configuration.
//
// GET SignInURL()?redirect_url=<page> shows one button per user; pressing one
// starts a client session for that user and mints its first session token
// (Mint with a fresh "sid", "azp" set to the page's origin, and the user's
// Options). The token goes in the __session cookie, the sign-in time in
// __client_uat, and the client session in ClientCookie (scoped to
// ClientCookiePath), then the browser goes back to the page. Cookies are
// scoped to a host, not a port, so the cookies set here reach an app on the
// same host: the page therefore only redirects to loopback URLs on the host
// it was opened on. A POST to SignOutURL ends the client session; with a
// WebhookURL, a POST to RevokeURL ends it and tells WebhookURL by a signed
// session.revoked webhook, leaving the app's cookies in place.
//
// Anyone who can load the page signs in as anyone: that is its purpose, and
// why it must never be reachable outside a developer's machine.
func (i *Issuer) EnableSignIn(p SignInPage) {
	p.Users = slices.Clone(p.Users)
	if p.Lifetime == 0 {
		p.Lifetime = DefaultLifetime
	}
	i.signIn.Store(&p)
}

// SignInURL is the development sign-in page, URL + SignInPath.
func (i *Issuer) SignInURL() string { return i.URL + SignInPath }

// SignOutURL is where the sign-in page's sign-out button posts,
// URL + SignOutPath.
func (i *Issuer) SignOutURL() string { return i.URL + SignOutPath }

// RevokeURL is where the sign-in page's "Sign out everywhere" button
// posts, URL + RevokePath.
func (i *Issuer) RevokeURL() string { return i.URL + RevokePath }

// revokeHandler serves POST RevokePath (form: redirect_url) when the
// sign-in page has a WebhookURL: it ends the browser's client session and
// sends a signed session.revoked webhook for it to WebhookURL, then goes
// back to the page. Unlike sign-out, it leaves the app's cookies alone:
// the browser still presents its token, as a stolen copy or another
// device would, and only the webhook can make the app refuse it before it
// expires.
func (i *Issuer) revokeHandler(w http.ResponseWriter, r *http.Request) {
	if !i.enter() {
		return
	}
	defer i.inflight.Done()

	page := i.signIn.Load()
	if page == nil || page.WebhookURL == "" {
		http.NotFound(w, r)
		return
	}
	back, ok := pageForm(w, r, "sign out everywhere")
	if !ok {
		return
	}
	sess := i.clientFor(r)
	if sess == nil {
		signInError(w, http.StatusBadRequest, errors.New("this browser has no session to revoke: sign in first"))
		return
	}
	if c, err := r.Cookie(ClientCookie); err == nil {
		i.SignOutClient(c)
	}
	status, err := i.SendWebhook(page.WebhookURL, "session.revoked", SessionData(sess.sid, sess.userID, "revoked"))
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("it answered %d", status)
	}
	if err != nil {
		signInError(w, http.StatusBadGateway, fmt.Errorf("session %s is revoked here, but the session.revoked webhook to %s failed: %v", sess.sid, page.WebhookURL, err))
		return
	}
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

// pageForm reads the form a sign-in page button posts: a POST of at most
// maxSignInForm bytes, whose redirect_url goes back to a page of the same
// origin. Otherwise it answers the refusal itself and ok is false.
func pageForm(w http.ResponseWriter, r *http.Request, action string) (back *url.URL, ok bool) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		signInError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s with a POST, from the sign-in page's button", action))
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSignInForm)
	if err := r.ParseForm(); err != nil {
		signInError(w, http.StatusBadRequest, fmt.Errorf("unreadable form: %v", err))
		return nil, false
	}
	back, err := localRedirect(r, r.PostForm.Get("redirect_url"))
	if err != nil {
		signInError(w, http.StatusBadRequest, err)
		return nil, false
	}
	return back, true
}

// signOutHandler serves POST SignOutPath (form: redirect_url) once
// EnableSignIn has been called: it ends the browser's client session, so
// that the next handshake hands out signed-out directives, clears the app's
// cookies as clerk-js would (__client_uat=0), and goes back to the page.
func (i *Issuer) signOutHandler(w http.ResponseWriter, r *http.Request) {
	if !i.enter() {
		return
	}
	defer i.inflight.Done()

	if i.signIn.Load() == nil {
		http.NotFound(w, r)
		return
	}
	back, ok := pageForm(w, r, "sign out")
	if !ok {
		return
	}
	if c, err := r.Cookie(ClientCookie); err == nil {
		i.SignOutClient(c)
	}
	for _, c := range signedOutCookies() {
		http.SetCookie(w, c)
	}
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

// maxSignInForm bounds what a POST to the sign-in page may send: a user id
// and a URL.
const maxSignInForm = 16 << 10

func (i *Issuer) signInHandler(w http.ResponseWriter, r *http.Request) {
	if !i.enter() {
		return
	}
	defer i.inflight.Done()

	page := i.signIn.Load()
	if page == nil {
		http.NotFound(w, r)
		return
	}
	// A sign-in answer is personal and, for POST, carries a session.
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		back, err := localRedirect(r, r.URL.Query().Get("redirect_url"))
		if err != nil {
			signInError(w, http.StatusBadRequest, err)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// An error here means the client went away; nobody is left to tell.
		_ = signInTemplate.Execute(w, signInView{
			Action:   SignInPath,
			SignOut:  SignOutPath,
			Back:     back.String(),
			Revoke:   revokeAction(page),
			Lifetime: page.Lifetime,
			Users:    page.Users,
		})
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxSignInForm)
		if err := r.ParseForm(); err != nil {
			signInError(w, http.StatusBadRequest, fmt.Errorf("unreadable form: %v", err))
			return
		}
		back, err := localRedirect(r, r.PostForm.Get("redirect_url"))
		if err != nil {
			signInError(w, http.StatusBadRequest, err)
			return
		}
		id := r.PostForm.Get("user")
		n := slices.IndexFunc(page.Users, func(u SignInUser) bool { return u.ID == id })
		if n < 0 {
			signInError(w, http.StatusBadRequest, fmt.Errorf("unknown user %q", id))
			return
		}
		sess := i.newClientSession(id, append([]Option{Lifetime(page.Lifetime)}, page.Users[n].Options...))
		for _, c := range appCookies(i.mintFor(sess, back.Scheme+"://"+back.Host), sess.uat) {
			http.SetCookie(w, c)
		}
		http.SetCookie(w, sess.cookie())
		http.Redirect(w, r, back.String(), http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		signInError(w, http.StatusMethodNotAllowed, errors.New("use GET to see the page and POST to sign in"))
	}
}

// localRedirect checks the URL to send the browser back to after sign-in.
// Only loopback URLs on the host this page was opened on are accepted: any
// other host would not receive the cookie, and a development page that
// redirects anywhere would be an open redirect.
func localRedirect(r *http.Request, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("redirect_url is missing: open a page protected by clerk_auth with sign_in_url, which sends you here with it")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("redirect_url %q is not an absolute http(s) URL", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("redirect_url %q is not on this machine: this development page only signs in to local apps", raw)
	}
	here, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		here = r.Host
	}
	if u.Hostname() != here {
		return nil, fmt.Errorf("redirect_url %q is on host %s but this page is on host %s: cookies are per host, so open the app at %s://%s",
			raw, u.Hostname(), here, u.Scheme, net.JoinHostPort(here, u.Port()))
	}
	return u, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func signInError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// A write error means the client went away; there is nobody to tell.
	_, _ = fmt.Fprintf(w, "DEVELOPMENT-ONLY fake Clerk sign-in page: %v\n", err)
}

// revokeAction is the page's "Sign out everywhere" form action, or "" for
// no button.
func revokeAction(p *SignInPage) string {
	if p.WebhookURL == "" {
		return ""
	}
	return RevokePath
}

type signInView struct {
	Action   string
	SignOut  string
	Revoke   string // "": no "Sign out everywhere" button
	Back     string
	Lifetime time.Duration
	Users    []SignInUser
}

var signInTemplate = template.Must(template.New("sign-in").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex">
<title>DEVELOPMENT ONLY: fake Clerk sign-in</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; }
.dev { background: #b00020; color: #fff; padding: 1rem; border-radius: .5rem; }
form { margin: 1rem 0; }
button { font-size: 1rem; padding: .5rem 1rem; }
</style>
</head>
<body>
<p class="dev" role="alert"><strong>DEVELOPMENT ONLY.</strong> This is not Clerk: it is a fake
sign-in page (internal/clerktest) with throwaway keys, and it signs in anyone as anyone.
It must never be reachable in production.</p>
<h1>Sign in</h1>
<p>You will be sent back to <code>{{.Back}}</code>. The session token lives {{.Lifetime}}; after
that, only a handshake with this fake Clerk gets a fresh one, for as long as you stay signed in here.</p>
{{range .Users}}<form method="post" action="{{$.Action}}">
<input type="hidden" name="redirect_url" value="{{$.Back}}">
<button type="submit" name="user" value="{{.ID}}">Sign in as {{.ID}}</button> {{.About}}
</form>
{{end}}<form method="post" action="{{.SignOut}}">
<input type="hidden" name="redirect_url" value="{{.Back}}">
<button type="submit">Sign out</button>
</form>
{{with .Revoke}}<form method="post" action="{{.}}">
<input type="hidden" name="redirect_url" value="{{$.Back}}">
<button type="submit">Sign out everywhere</button> revokes this session in Clerk, which tells the app
by a signed <code>session.revoked</code> webhook; this browser keeps its token, which the app now refuses.
</form>
{{end}}</body>
</html>
`))
