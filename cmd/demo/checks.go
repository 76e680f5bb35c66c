package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// user is a demo user, offered on the sign-in page and used by the checks.
type user struct {
	id    string
	roles []string // minted as the "roles" claim, which `roles admin` checks
}

var (
	alice = user{id: "user_alice", roles: []string{"admin"}}
	bob   = user{id: "user_bob"}
)

func (u user) about() string {
	if len(u.roles) == 0 {
		return "no roles"
	}
	return "roles: " + strings.Join(u.roles, ", ")
}

func (u user) options() []clerktest.Option {
	if len(u.roles) == 0 {
		return nil
	}
	return []clerktest.Option{clerktest.WithClaims(map[string]any{"roles": u.roles})}
}

func signInUsers() []clerktest.SignInUser {
	var out []clerktest.SignInUser
	for _, u := range []user{alice, bob} {
		out = append(out, clerktest.SignInUser{ID: u.id, About: u.about(), Options: u.options()})
	}
	return out
}

// check is one curl line the demo prints, with what it should return.
type check struct {
	title      string
	path       string
	token      string      // sent as a bearer token unless empty
	headers    [][2]string // more request headers, as the client sends them
	wantStatus int
	wantReason string // the WWW-Authenticate error_description
	wantUser   string // the X-User-Id the upstream reports
}

// mint returns a token for u as the sign-in page would mint it; later
// options override earlier ones.
func (d *demo) mint(u user, opts ...clerktest.Option) string {
	all := []clerktest.Option{
		clerktest.Lifetime(d.lifetime),
		clerktest.WithClaims(map[string]any{"sub": u.id, "azp": d.caddyURL}),
	}
	all = append(all, u.options()...)
	return d.issuer.Mint(append(all, opts...)...)
}

func (d *demo) checks() ([]check, error) {
	// Another key, published nowhere: what an attacker would sign with.
	forger, err := clerktest.NewRSAKey(2048)
	if err != nil {
		return nil, err
	}
	return []check{{
		title:      "No token",
		path:       "/",
		wantStatus: http.StatusUnauthorized,
	}, {
		title:      fmt.Sprintf("A fresh token for %s (%s), valid for %s, on /admin", alice.id, alice.about(), d.lifetime),
		path:       "/admin",
		token:      d.mint(alice),
		wantStatus: http.StatusOK,
		wantUser:   alice.id,
	}, {
		title:      fmt.Sprintf("An expired token for %s: issued 10 minutes ago, for %s like Clerk's", alice.id, clerktest.DefaultLifetime),
		path:       "/",
		token:      d.mint(alice, clerktest.IssuedAt(time.Now().Add(-10*time.Minute)), clerktest.Lifetime(clerktest.DefaultLifetime)),
		wantStatus: http.StatusUnauthorized,
		wantReason: "token-expired",
	}, {
		title:      fmt.Sprintf("A forged token: claims %s with role admin, but is signed with another key", alice.id),
		path:       "/admin",
		token:      d.mint(alice, clerktest.WithKey(forger)),
		wantStatus: http.StatusUnauthorized,
		wantReason: "token-invalid-signature",
	}, {
		title:      fmt.Sprintf("A valid token for %s (%s) on /admin, which needs role admin", bob.id, bob.about()),
		path:       "/admin",
		token:      d.mint(bob),
		wantStatus: http.StatusForbidden,
		wantReason: "missing-role",
	}, {
		title:      fmt.Sprintf("A valid token for %s, plus a forged X-User-Id: %s header", bob.id, alice.id),
		path:       "/",
		token:      d.mint(bob),
		headers:    [][2]string{{"X-User-Id", alice.id}},
		wantStatus: http.StatusOK,
		wantUser:   bob.id,
	}}, nil
}

// result is what one check returned.
type result struct {
	check
	status  int
	wwwAuth string
	reason  string
	user    string
	err     error
}

func (r result) ok() bool {
	return r.err == nil && r.status == r.wantStatus && r.reason == r.wantReason && r.user == r.wantUser
}

var errorDescription = regexp.MustCompile(`error_description="([^"]*)"`)

// runChecks sends every check's request through Caddy, as its curl line
// would.
func (d *demo) runChecks() ([]result, error) {
	checks, err := d.checks()
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	out := make([]result, len(checks))
	for i, c := range checks {
		out[i] = d.runCheck(client, c)
	}
	return out, nil
}

func (d *demo) runCheck(client *http.Client, c check) result {
	r := result{check: c}
	req, err := http.NewRequest(http.MethodGet, d.caddyURL+c.path, nil)
	if err != nil {
		r.err = err
		return r
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for _, h := range c.headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	r.wwwAuth = resp.Header.Get("WWW-Authenticate")
	if m := errorDescription.FindStringSubmatch(r.wwwAuth); m != nil {
		r.reason = m[1]
	}
	if resp.StatusCode == http.StatusOK {
		var id identity
		// Any upstream answering the demo's identity JSON is understood
		// (the built-in one and examples/); for others user stays empty.
		if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&id) == nil && id.UserID != nil {
			r.user = *id.UserID
		}
	}
	return r
}

func (d *demo) printIntro(w io.Writer) {
	upstream := "the demo's upstream: shows the identity headers it receives"
	if d.upstream == nil {
		upstream = "your app (-upstream)"
	}
	fault := ""
	if d.handshakeFault != "" {
		fault = "  broken: -handshake-fault " + d.handshakeFault
	}
	logs := "on stderr (-v)"
	if d.logFile != "" {
		logs = d.logFile + "  (-v: on stderr instead)"
	}
	fmt.Fprintf(w, `caddy-clerk-auth demo

DEVELOPMENT ONLY: the Clerk issuer below is a fake with throwaway keys, and its
sign-in page signs in anyone as anyone. Nothing here talks to Clerk.

  Caddy + clerk_auth  %-28s  %s
  fake Clerk issuer   %-28s  DEVELOPMENT ONLY
    keys (JWKS)       %s
    sign-in page      %s
    handshake         %s%s
  upstream            %-28s  %s
  Caddy's logs        %s

%s was loaded with:
`, d.caddyURL, d.caddyfile, d.issuer.URL, d.issuer.JWKSURL(), d.issuer.SignInURL(), d.issuer.HandshakeURL(), fault,
		d.upstreamAddr, upstream, logs, d.caddyfile)
	for _, e := range d.env {
		fmt.Fprintf(w, "  %s=%s\n", e.name, e.value)
	}
	fmt.Fprintf(w, `
In a browser, open %s/ : you are sent to the sign-in page. Sign in as
%s (%s) or %s (%s), then try /admin. Session tokens live %s;
a page loaded after that is renewed through the fake's handshake, and you stay
signed in until you press Sign out on the sign-in page. Sign out everywhere
there revokes the session in the fake Clerk, which tells Caddy by a signed
webhook to %s: your browser keeps its token, and Caddy refuses it.

With curl: each line below was run once at start-up; → is what it returned.

`, d.caddyURL, alice.id, alice.about(), bob.id, bob.about(), d.lifetime, d.caddyURL+webhookPath)
}

// printChecks prints each check as a ready-to-paste curl line, preceded by
// what it returned at start-up.
func (d *demo) printChecks(w io.Writer, results []result) {
	failed := 0
	for i, r := range results {
		fmt.Fprintf(w, "# %d. %s\n#    → %s", i+1, r.title, r.describe())
		if !r.ok() {
			failed++
			fmt.Fprintf(w, "   ✗ expected %s", expectation(r.wantStatus, r.wantReason, r.wantUser))
		}
		fmt.Fprintf(w, "\n%s\n\n", d.curl(r.check))
	}
	if failed > 0 {
		fmt.Fprintf(w, "✗ %d of %d results differ from what the demo expects: was %s edited, or is the upstream down?\n\n",
			failed, len(results), d.caddyfile)
	}
}

// curl renders c as a shell command. Every value in it is a URL, a header
// name, a user id or a JWT, none of which contains a single quote.
func (d *demo) curl(c check) string {
	var b strings.Builder
	fmt.Fprintf(&b, "curl -i %s%s", d.caddyURL, c.path)
	if c.token != "" {
		fmt.Fprintf(&b, " -H 'Authorization: Bearer %s'", c.token)
	}
	for _, h := range c.headers {
		fmt.Fprintf(&b, " -H '%s: %s'", h[0], h[1])
	}
	return b.String()
}

func (r result) describe() string {
	if r.err != nil {
		return "request failed: " + r.err.Error()
	}
	s := fmt.Sprintf("%d %s", r.status, http.StatusText(r.status))
	if r.wwwAuth != "" {
		s += ", WWW-Authenticate: " + r.wwwAuth
	}
	if r.user != "" {
		s += ", the upstream saw X-User-Id: " + r.user
	}
	return s
}

// expectation says what a check wants in the words result.describe uses.
func expectation(status int, reason, user string) string {
	s := fmt.Sprintf("%d %s", status, http.StatusText(status))
	if reason != "" {
		s += " with " + reason
	}
	if user != "" {
		s += " with X-User-Id: " + user
	}
	return s
}
