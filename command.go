package clerkauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/spf13/cobra"

	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "clerk-token",
		Usage: "[--config <path> [--adapter <name>]] [--site <host>] [--path <request path>] [--now <RFC3339>] <token|->",
		Short: "Decodes a Clerk token and explains whether clerk_auth accepts it",
		Long: `
Decodes a Clerk session token (or JWT-template token) WITHOUT verifying it
and prints its header, claims, times, token class, organization,
permissions, features and plans.

With --config, it also loads that configuration, picks its clerk_auth
handler for --site (and --path), provisions it and verifies the token
exactly as the handler would: same issuer, same keys (the JWKS is
fetched, or jwt_key used), same requirements. It then prints VALID or
REJECTED: <reason>, the HTTP status the handler would answer, and how to
fix a rejection.

The token is the last argument. Pass - to read it from stdin instead, so
it stays out of your shell history:

	caddy clerk-token --config Caddyfile --site api.example.com - < token.txt

A leading "Bearer " is ignored, so a copied Authorization header works.

--config
    The configuration to check the token against (Caddyfile or JSON).

--adapter
    Its config adapter. Default: caddyfile for files named like
    Caddyfile, else JSON, as with caddy run.

--site
    The host of the site whose clerk_auth to use, e.g. api.example.com.
    Needed when the config has clerk_auth in more than one site.

--path
    The request path, e.g. /admin/users, when the site has clerk_auth
    handlers for different paths.

--now
    Check the times as of this instant (RFC 3339) instead of now, e.g.
    to replay a token from a log.

Exit status: 0 if the token is valid (without --config: if it decodes),
1 if it is rejected or cannot be decoded, 2 on a usage error (bad flags,
a config that does not load, no clerk_auth handler or an ambiguous one).
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().StringP("config", "c", "", "Configuration file with the clerk_auth handler")
			cmd.Flags().StringP("adapter", "a", "", "Name of the config adapter")
			cmd.Flags().String("site", "", "Host of the site whose clerk_auth to use")
			cmd.Flags().String("path", "", "Request path, to choose between path-matched clerk_auth handlers")
			cmd.Flags().String("now", "", "Check times as of this RFC 3339 instant")
			cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
				return exitStatus(cmd, 2, fmt.Errorf("%v (see caddy help clerk-token)", err))
			})
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				get := func(name string) string {
					v, _ := cmd.Flags().GetString(name) // defined above, so never an error
					return v
				}
				o := clerkTokenOptions{config: get("config"), adapter: get("adapter"), site: get("site"), path: get("path"), now: get("now")}
				code, err := runClerkToken(cmd.Context(), o, args, cmd.InOrStdin(), cmd.OutOrStdout())
				return exitStatus(cmd, code, err)
			}
		},
	})
}

// errRejected makes caddycmd.Main exit with status 1. It is never printed:
// the verdict on stdout already says why.
var errRejected = errors.New("token rejected")

// exitStatus prints a usage error and hands the exit status to
// caddycmd.Main, which exits 1 on any error and with the status of its own
// (unexported) exit error otherwise; only WrapCommandFuncForCobra makes
// one. The error is printed as is rather than logged, as Caddy commands
// usually do, because its list of candidate handlers spans lines.
func exitStatus(cmd *cobra.Command, code int, err error) error {
	cmd.SilenceErrors = true
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "caddy clerk-token: %v\n", err)
	}
	switch code {
	case 0:
		return nil
	case 1:
		return errRejected
	}
	return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) { return code, nil })(cmd, nil)
}

type clerkTokenOptions struct {
	config, adapter, site, path, now string
}

// runClerkToken is the whole command minus cobra: it returns the exit
// status and, for status 2, the usage error.
func runClerkToken(ctx context.Context, o clerkTokenOptions, args []string, stdin io.Reader, stdout io.Writer) (int, error) {
	if len(args) != 1 {
		return 2, fmt.Errorf("want one token argument (or - to read it from stdin), got %d arguments", len(args))
	}
	if o.config == "" && (o.adapter != "" || o.site != "" || o.path != "") {
		return 2, errors.New("--adapter, --site and --path need --config")
	}
	if o.config == "-" && args[0] == "-" {
		return 2, errors.New("the config and the token cannot both come from stdin")
	}
	now := time.Now()
	if o.now != "" {
		var err error
		if now, err = time.Parse(time.RFC3339, o.now); err != nil {
			return 2, fmt.Errorf("--now %q is not an RFC 3339 time such as 2026-11-26T06:10:00Z", o.now)
		}
	}
	token, err := readToken(args[0], stdin)
	if err != nil {
		return 2, err
	}
	if o.config == "" {
		if inspectToken(stdout, token, now) != nil {
			return 1, nil
		}
		return 0, nil
	}
	// Like every usage error, a config that does not load is reported
	// before anything is printed.
	cfgJSON, _, _, err := caddycmd.LoadConfig(o.config, o.adapter)
	if err != nil {
		return 2, err
	}
	return checkToken(ctx, stdout, cfgJSON, o.site, o.path, token, now)
}

// readToken takes the token from the argument, or from stdin for "-", and
// drops a "Bearer " prefix pasted along with it.
func readToken(arg string, stdin io.Reader) (string, error) {
	if arg == "-" {
		// 1 MiB is far above any token: the verifier refuses more than 16 KiB.
		b, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return "", fmt.Errorf("reading the token from stdin: %v", err)
		}
		arg = string(b)
	}
	token := strings.TrimSpace(arg)
	if tok, ok, err := bearerToken(token); err == nil && ok {
		token = tok
	}
	if token == "" {
		return "", errors.New("the token is empty")
	}
	return token, nil
}

// catM2M is the cat header of Clerk's machine tokens. The verifier does not
// need it (any category it does not know is refused); the report names it.
const catM2M = "cl_B7d4PD333AAA"

// unverified is a token taken apart without checking anything: what it
// says, for display and for explaining a verdict, never for trusting.
type unverified struct {
	header    map[string]json.RawMessage
	payload   []byte
	claims    *claims // nil when the payload is not Clerk-shaped claims
	claimsErr error   // why claims is nil
}

func decodeUnverified(token string) (*unverified, error) {
	rawHeader, rest, ok := strings.Cut(token, ".")
	rawPayload, rawSig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(rawSig, ".") {
		return nil, errors.New("not a JWT: a JWT has exactly three dot-separated segments")
	}
	u := &unverified{}
	if err := decodeSegment(rawHeader, &u.header); err != nil {
		return nil, fmt.Errorf("header is %v", err)
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(rawPayload)
	if err != nil {
		return nil, errors.New("payload is not base64url")
	}
	if !json.Valid(payload) {
		return nil, errors.New("payload is not JSON")
	}
	u.payload = payload
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		u.claimsErr = err
	} else {
		u.claims = &c
	}
	return u, nil
}

// headerString returns a header parameter that is a JSON string; "" for
// anything else, and for a token that did not decode (u == nil).
func (u *unverified) headerString(name string) string {
	if u == nil {
		return ""
	}
	return rawString(u.header[name])
}

// Token kinds as the report names them.
const (
	kindOAuth   = "OAuth"
	kindM2M     = "M2M"
	kindUnknown = "unknown"
)

// kind tells what sort of token this is, the way the verifier decides
// (typ, then cat, then sid), and how it was told.
func (u *unverified) kind() (kind, how string) {
	switch u.headerString("typ") {
	case "at+jwt", "application/at+jwt":
		return kindOAuth, "typ " + u.headerString("typ") + ": an OAuth access token, never accepted"
	}
	sub := ""
	if u.claims != nil && u.claims.Sub != nil {
		sub = *u.claims.Sub
	}
	if u.headerString("cat") == catM2M || strings.HasPrefix(sub, "mch_") {
		return kindM2M, "a machine-to-machine token, never accepted"
	}
	class, err := classFromCategory(u.header["cat"])
	switch {
	case err != nil:
		return kindUnknown, "cat is not a category Clerk uses for sessions or templates, never accepted"
	case class != "":
		return class, "from the cat header"
	case u.claims != nil && u.claims.Sid != "":
		return TokenTypeSession, "no cat header; it has a sid"
	}
	return TokenTypeTemplate, "no cat header and no sid"
}

// identity decodes the Clerk claims with the handler's own code, so the
// report shows the org, permissions, features and plans the handler would
// see. Absent sub and exp are read as empty: nothing is verified here.
func (u *unverified) identity(class, rolesClaim string) *Identity {
	c := *u.claims
	if c.Sub == nil {
		c.Sub = new(string)
	}
	if c.Exp == nil {
		c.Exp = new(float64)
	}
	return newIdentity(&c, u.payload, class, rolesClaim)
}

// catLine shows the cat header with its meaning.
func catLine(raw json.RawMessage) string {
	meaning := "unknown category"
	switch rawString(raw) {
	case catSession:
		meaning = "session token"
	case catTemplate:
		meaning = "JWT template token"
	case catM2M:
		meaning = "machine-to-machine (M2M) token"
	case catIgnore:
		meaning = "ignore: session if there is a sid, else JWT template"
	}
	if len(raw) == 0 {
		return "(absent: session if there is a sid, else JWT template)"
	}
	return showRaw(raw) + " (" + meaning + ")"
}

// showRaw renders a JSON value for the report: strings bare, anything else
// as JSON.
func showRaw(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(absent)"
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// inspectToken prints what the token says, verifying nothing. It returns
// an error when the token cannot be decoded as a Clerk token at all.
func inspectToken(w io.Writer, token string, now time.Time) error {
	u, err := decodeUnverified(token)
	if err != nil {
		fmt.Fprintf(w, "Cannot decode the token: %v\n", err)
		return err
	}
	fmt.Fprintln(w, "Header (decoded, NOT verified)")
	for _, name := range []string{"alg", "kid", "typ", "cat"} {
		v := showRaw(u.header[name])
		if name == "cat" {
			v = catLine(u.header[name])
		}
		fmt.Fprintf(w, "  %-4s %s\n", name, v)
	}
	if crit, ok := u.header["crit"]; ok {
		fmt.Fprintf(w, "  crit %s (refused: clerk_auth supports no critical extensions)\n", crit)
	}

	var pretty bytes.Buffer
	_ = json.Indent(&pretty, u.payload, "  ", "  ") // cannot fail: decodeUnverified checked json.Valid
	fmt.Fprintf(w, "\nClaims\n  %s\n", pretty.Bytes())
	if u.claims == nil {
		fmt.Fprintf(w, "\nNot Clerk claims: %v\n", u.claimsErr)
		return fmt.Errorf("claims: %v", u.claimsErr)
	}
	c := u.claims

	fmt.Fprintf(w, "\nTimes (now %s)\n", now.UTC().Format(time.RFC3339))
	for _, t := range []struct {
		name string
		sec  *float64
	}{{"exp", c.Exp}, {"nbf", c.Nbf.ptr()}, {"iat", c.Iat.ptr()}} {
		if t.sec == nil {
			fmt.Fprintf(w, "  %s  (absent)\n", t.name)
			continue
		}
		at := unixTime(*t.sec)
		fmt.Fprintf(w, "  %s  %s (%s)\n", t.name, at.Format(time.RFC3339), relative(at, now))
	}

	kind, how := u.kind()
	id := u.identity(kind, defaultRoles)
	version := "v1"
	if isV2(c.Version) {
		version = "v2"
	}
	fmt.Fprintln(w, "\nToken")
	row := func(k, v string) { fmt.Fprintf(w, "  %-12s %s\n", k, v) }
	row("class", kind+" ("+how+")")
	row("claims", version)
	sub := "(absent)"
	if c.Sub != nil {
		sub = *c.Sub
	}
	row("sub", sub)
	row("sid", orAbsent(c.Sid))
	row("iss", orAbsent(c.Iss))
	row("azp", orAbsent(c.Azp))
	if len(c.Aud) > 0 {
		row("aud", showRaw(c.Aud))
	}
	row("sts", orAbsent(id.SessionStatus))
	if id.Actor != "" {
		row("act", id.Actor+" (impersonating the user)")
	}
	if id.OrgID == "" {
		row("org", "(no active organization)")
	} else {
		row("org", fmt.Sprintf("%s (slug %s, role %s)", id.OrgID, orAbsent(id.OrgSlug), orAbsent(id.OrgRole)))
		row("permissions", listOrNone(id.OrgPermissions))
		if p := id.PermissionsProblem(); p != "" {
			row("", "treated as none: "+p)
		}
	}
	row("features", scopedString(id.Features))
	row("plans", scopedString(id.Plans))
	if len(id.Roles()) > 0 {
		row("roles", listOrNone(id.Roles())+" (claim "+defaultRoles+")")
	}
	return nil
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "(none)"
	}
	return strings.Join(l, ", ")
}

// list renders configured values the way the fixes quote them.
func list(l []string) string { return "[" + strings.Join(l, ", ") + "]" }

func scopedString(s Scoped) string {
	var parts []string
	if len(s.Org) > 0 {
		parts = append(parts, "org "+list(s.Org))
	}
	if len(s.User) > 0 {
		parts = append(parts, "user "+list(s.User))
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, ", ")
}

// relative says when t is from now's point of view: "in 42s", "3m ago".
func relative(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d > -time.Second/2 && d < time.Second/2:
		return "now"
	case d > 0:
		return "in " + human(d)
	}
	return human(-d) + " ago"
}

// human renders a duration as people say it: 42s, 3m, 3m12s, 2h5m, 3d.
func human(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	if d >= time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	s := d.String() // 42s, 3m0s, 3m12s, 2h0m0s, 2h5m0s
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// clerkRoute is a clerk_auth handler found in a config, with the matcher
// sets of every route on the way to it, outermost first.
type clerkRoute struct {
	n      int // 1-based, in config order, to tell candidates apart
	server string
	match  [][]map[string]json.RawMessage
	raw    json.RawMessage
}

type cfgRoute struct {
	Match  []map[string]json.RawMessage `json:"match"`
	Handle []json.RawMessage            `json:"handle"`
}

// findClerkRoutes lists the clerk_auth handlers of apps.http, looking into
// subroutes (where the Caddyfile puts every site's handlers).
func findClerkRoutes(cfgJSON []byte) ([]clerkRoute, error) {
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []cfgRoute `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return nil, fmt.Errorf("the config is not Caddy JSON (for a Caddyfile, use --adapter caddyfile): %v", err)
	}
	names := make([]string, 0, len(cfg.Apps.HTTP.Servers))
	for name := range cfg.Apps.HTTP.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	var found []clerkRoute
	for _, name := range names {
		if err := walkRoutes(name, cfg.Apps.HTTP.Servers[name].Routes, nil, &found); err != nil {
			return nil, fmt.Errorf("server %s: %v", name, err)
		}
	}
	return found, nil
}

func walkRoutes(server string, routes []cfgRoute, outer [][]map[string]json.RawMessage, found *[]clerkRoute) error {
	for _, r := range routes {
		match := append(slices.Clip(outer), r.Match)
		for _, raw := range r.Handle {
			var h struct {
				Handler string     `json:"handler"`
				Routes  []cfgRoute `json:"routes"`
			}
			if err := json.Unmarshal(raw, &h); err != nil {
				return err
			}
			switch h.Handler {
			case "clerk_auth":
				*found = append(*found, clerkRoute{n: len(*found) + 1, server: server, match: match, raw: raw})
			case "subroute":
				if err := walkRoutes(server, h.Routes, match, found); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// matcherValues gathers the values of one matcher (host, path) on the way
// to the handler, for display.
func (r *clerkRoute) matcherValues(name string) []string {
	var out []string
	for _, level := range r.match {
		for _, set := range level {
			var v []string
			if json.Unmarshal(set[name], &v) == nil {
				out = append(out, v...)
			}
		}
	}
	return out
}

func (r *clerkRoute) String() string {
	host, path := "any host", "any path"
	if h := r.matcherValues("host"); len(h) > 0 {
		host = "host " + strings.Join(h, " ")
	}
	if p := r.matcherValues("path"); len(p) > 0 {
		path = "path " + strings.Join(p, " ")
	}
	return fmt.Sprintf("clerk_auth #%d (server %s: %s, %s)", r.n, r.server, host, path)
}

// applies reports whether the route leads req to the handler, judging only
// the host matchers (if useHost) and path matchers (if usePath): other
// matchers depend on the request and are assumed to pass. byHost says
// whether a host matcher was needed, i.e. the route is specific to the site.
func (r *clerkRoute) applies(req *http.Request, useHost, usePath bool) (ok, byHost bool, err error) {
	for _, level := range r.match {
		if len(level) == 0 {
			continue
		}
		levelOK := false
		for _, set := range level {
			setOK, setByHost, err := setApplies(set, req, useHost, usePath)
			if err != nil {
				return false, false, err
			}
			if setOK {
				levelOK = true
				byHost = byHost || setByHost
				break
			}
		}
		if !levelOK {
			return false, false, nil
		}
	}
	return true, byHost, nil
}

// setApplies runs Caddy's own host and path matchers of one matcher set.
func setApplies(set map[string]json.RawMessage, req *http.Request, useHost, usePath bool) (ok, byHost bool, err error) {
	if raw, has := set["host"]; has && useHost {
		var m caddyhttp.MatchHost
		if err := json.Unmarshal(raw, &m); err != nil {
			return false, false, fmt.Errorf("host matcher: %v", err)
		}
		if err := m.Provision(caddy.Context{}); err != nil {
			return false, false, err
		}
		if !m.Match(req) {
			return false, false, nil
		}
		byHost = true
	}
	if raw, has := set["path"]; has && usePath {
		var m caddyhttp.MatchPath
		if err := json.Unmarshal(raw, &m); err != nil {
			return false, false, fmt.Errorf("path matcher: %v", err)
		}
		if err := m.Provision(caddy.Context{}); err != nil {
			return false, false, err
		}
		if !m.Match(req) {
			return false, false, nil
		}
	}
	return true, byHost, nil
}

// pickRoute chooses the handler a request for site and path would meet. A
// site-specific route wins over a catch-all one, as Caddy orders a site's
// routes before the catch-all site's.
func pickRoute(routes []clerkRoute, site, reqPath string) (*clerkRoute, error) {
	if len(routes) == 0 {
		return nil, errors.New("the config has no clerk_auth handler")
	}
	candidates := func() string {
		var b strings.Builder
		for i := range routes {
			b.WriteString("\n  " + routes[i].String())
		}
		return b.String()
	}
	if site == "" && reqPath == "" {
		if len(routes) == 1 {
			return &routes[0], nil
		}
		return nil, fmt.Errorf("the config has %d clerk_auth handlers; choose one with --site (and --path):%s", len(routes), candidates())
	}

	host := site
	if u, err := url.Parse(site); err == nil && u.Host != "" {
		host = u.Host // a URL such as https://api.example.com
	}
	useHost, usePath := site != "", reqPath != ""
	if !usePath {
		reqPath = "/"
	}
	req := (&http.Request{Host: host, URL: &url.URL{Path: reqPath}}).
		WithContext(context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	var matched, specific []*clerkRoute
	for i := range routes {
		ok, byHost, err := routes[i].applies(req, useHost, usePath)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", &routes[i], err)
		}
		if ok {
			matched = append(matched, &routes[i])
			if byHost {
				specific = append(specific, &routes[i])
			}
		}
	}
	if len(specific) > 0 {
		matched = specific
	}
	switch len(matched) {
	case 0:
		return nil, fmt.Errorf("no clerk_auth handler applies to site %q, path %q; the config has:%s", site, reqPath, candidates())
	case 1:
		return matched[0], nil
	}
	var b strings.Builder
	for _, r := range matched {
		b.WriteString("\n  " + r.String())
	}
	return nil, fmt.Errorf("%d clerk_auth handlers apply to site %q, path %q; narrow it down with --site and --path:%s", len(matched), site, reqPath, b.String())
}

// provisionClerkHandler loads a clerk_auth handler from its JSON the way
// Caddy loads a config's handlers: strict decoding, Provision, Validate.
// Cancelling ctx cleans it up.
func provisionClerkHandler(ctx caddy.Context, raw json.RawMessage) (*Handler, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	delete(fields, "handler") // the module's name, which Caddy strips before decoding
	body, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	mod, err := ctx.LoadModuleByID("http.handlers.clerk_auth", body)
	if err != nil {
		return nil, err
	}
	return mod.(*Handler), nil
}

// checkToken prints what token says, then verifies it with the clerk_auth
// handler of cfgJSON that a request for site and reqPath would meet and
// prints the verdict. It returns the exit status: 0 valid, 1 rejected, 2
// with the usage error, in which case nothing is printed.
func checkToken(ctx context.Context, w io.Writer, cfgJSON []byte, site, reqPath, token string, now time.Time) (int, error) {
	routes, err := findClerkRoutes(cfgJSON)
	if err != nil {
		return 2, err
	}
	route, err := pickRoute(routes, site, reqPath)
	if err != nil {
		return 2, err
	}
	cctx, cancel := caddy.NewContext(caddy.Context{Context: ctx})
	defer cancel()
	h, err := provisionClerkHandler(cctx, route.raw)
	if err != nil {
		return 2, fmt.Errorf("%s: %v", route, err)
	}
	h.verifier.now = func() time.Time { return now }
	_ = inspectToken(w, token, now) // a token that does not decode is explained by the verdict
	describeHandler(w, route, h)

	d := &diagnosis{h: h, now: now}
	d.tok, _ = decodeUnverified(token) // nil is fine: the verifier says why
	id, err := h.verifier.verify(ctx, token)
	if err != nil {
		if !errors.As(err, &d.ve) {
			d.ve = &VerifyError{Reason: ReasonTokenInvalid, Err: err}
		}
	} else if d.unmet = h.requirements.check(id); d.unmet.reason != "" {
		d.ve = &VerifyError{Reason: d.unmet.reason}
	}
	d.id = id

	if d.ve == nil {
		fmt.Fprintf(w, "\nVALID\n  status  200: the request goes on as %s\n", id.UserID)
		if p := id.PermissionsProblem(); p != "" {
			fmt.Fprintf(w, "  note    org permissions are treated as none: %s\n", p)
		}
		return 0, nil
	}
	if ks, ok := h.verifier.keys.(*jwks.Set); ok {
		d.jwksURL = ks.URL()
		d.kids = ks.KIDs()
		if d.ve.Reason == ReasonJWKSUnavailable {
			// The key set only logs why its fetch failed; one more attempt
			// gives the error to show, without the URL the fix already names.
			d.fetchErr = ks.FetchOnce()
			if ue := (*url.Error)(nil); errors.As(d.fetchErr, &ue) {
				d.fetchErr = ue.Err
			}
		}
	}
	fmt.Fprintf(w, "\nREJECTED: %s\n  status  %s\n", d.ve.Reason, d.status())
	if d.ve.Err != nil {
		fmt.Fprintf(w, "  detail  %v\n", d.ve.Err)
	}
	fmt.Fprintf(w, "  fix     %s\n", d.fix())
	return 1, nil
}

// describeHandler prints which handler the token is checked against and
// the settings a rejection can hinge on. Secrets are never printed.
func describeHandler(w io.Writer, route *clerkRoute, h *Handler) {
	v := h.verifier
	fmt.Fprintf(w, "\nChecked against %s\n", route)
	row := func(k, val string) { fmt.Fprintf(w, "  %-19s %s\n", k, val) }
	row("issuer", strings.Join(v.issuers, " "))
	row("keys", keySource(v.keys))
	if len(v.authorizedParties) > 0 {
		row("authorized_parties", strings.Join(v.authorizedParties, " "))
	}
	if len(v.audiences) > 0 {
		row("audience", strings.Join(v.audiences, " "))
	}
	row("leeway", human(v.leeway))
	for _, req := range []struct {
		name  string
		lines [][]string
	}{
		{"roles", h.requirements.roles}, {"org_role", h.requirements.orgRoles},
		{"org_permission", h.requirements.orgPermissions}, {"feature", h.requirements.features},
		{"plan", h.requirements.plans},
	} {
		for _, l := range req.lines {
			row(req.name, strings.Join(l, " "))
		}
	}
	for _, c := range h.requirements.claims {
		row("claim", c.path+" "+strings.Join(c.values, " "))
	}
}

func keySource(k keyProvider) string {
	switch k := k.(type) {
	case staticKey:
		return "jwt_key (networkless)"
	case *jwks.Set:
		if k.HasHeader() {
			return "Backend API " + k.URL() + " (with secret_key)"
		}
		return "JWKS " + k.URL()
	}
	return fmt.Sprintf("%T", k)
}

// diagnosis is what a rejection is explained from.
type diagnosis struct {
	h        *Handler
	tok      *unverified  // nil when the token does not decode
	id       *Identity    // set when only a requirement failed
	ve       *VerifyError // the rejection
	unmet    unmet        // the failed requirement line, if that is the rejection
	now      time.Time
	jwksURL  string   // "" for jwt_key
	kids     []string // the key ids in the JWKS
	fetchErr error    // a fresh JWKS fetch's outcome, for jwks-unavailable
}

// status is what the handler answers, as answerFor says.
func (d *diagnosis) status() string {
	a := answerFor(d.ve.Reason)
	s := fmt.Sprintf("%d %s", a.status, http.StatusText(a.status))
	switch {
	case a.status == http.StatusForbidden:
	case d.h.Optional:
		return "none: optional is set, so the request goes on anonymously with {http.auth.clerk.reason} " + d.ve.Reason
	case a.signIn && d.h.signIn != nil:
		s += " (a browser loading a page gets 307 to sign_in_url)"
	}
	return s
}

// claims are the token's claims as far as they decode, for quoting.
func (d *diagnosis) tokenClaims() *claims {
	if d.tok == nil || d.tok.claims == nil {
		return &claims{}
	}
	return d.tok.claims
}

// since is how long ago sec (a NumericDate) was, for the time fixes.
func (d *diagnosis) since(sec *float64) time.Duration {
	if sec == nil {
		return 0
	}
	return d.now.Sub(unixTime(*sec))
}

// fix says, in one line, what to change so the token passes. Every reason
// code has one.
func (d *diagnosis) fix() string {
	v, c := d.h.verifier, d.tokenClaims()
	kid := ""
	if d.tok != nil {
		kid = d.tok.headerString("kid")
	}
	switch d.ve.Reason {
	case ReasonTokenMissing:
		return "no token was sent: send the session token (await getToken() in the frontend) as Authorization: Bearer <token>, or let the browser send the __session cookie"
	case ReasonTokenInvalid:
		return "the token is malformed: pass the JWT exactly as Clerk issued it (getToken(), or the __session cookie): three base64url segments, typ JWT or absent, no crit header"
	case ReasonTokenExpired:
		return fmt.Sprintf("token expired %s ago (leeway %s): get a fresh token; Clerk session tokens live 60s and Clerk's frontend SDK refreshes them",
			human(d.since(c.Exp)), human(v.leeway))
	case ReasonNotActiveYet:
		return fmt.Sprintf("nbf is %s from now (leeway %s): this machine's clock and Clerk's disagree; sync this clock (NTP), or raise leeway (at most %s)",
			human(-d.since(c.Nbf.ptr())), human(v.leeway), human(maxLeeway))
	case ReasonIATInFuture:
		return fmt.Sprintf("iat is %s from now (leeway %s): this machine's clock and Clerk's disagree; sync this clock (NTP), or raise leeway (at most %s)",
			human(-d.since(c.Iat.ptr())), human(v.leeway), human(maxLeeway))
	case ReasonInvalidSignature:
		return fmt.Sprintf("the signature does not verify with key %q from %s: the token was altered, or another Clerk instance signed it; point the key source at the instance that issued the token",
			kid, keySource(v.keys))
	case ReasonInvalidAlgorithm:
		return fmt.Sprintf("alg %q: Clerk signs with RS256 and clerk_auth accepts only RS256/384/512 (as the JWKS key pins it): this token was not made by Clerk",
			d.tok.headerString("alg"))
	case ReasonVerificationFailed:
		return "a registered claim is missing or mistyped (sub must be a string; exp, nbf, iat numbers; aud a string or array): if a JWT template sets these claims, fix the template"
	case ReasonInvalidAuthorizedPart:
		if c.Azp == "" {
			return fmt.Sprintf("the token has no azp but authorized_parties is %s: browser session tokens carry the page's origin; for tokens without one, drop authorized_parties on this route",
				list(v.authorizedParties))
		}
		return fmt.Sprintf("azp %s is not in authorized_parties %s: if %s is your frontend, add it to authorized_parties; otherwise the token was requested from another site",
			c.Azp, list(v.authorizedParties), c.Azp)
	case ReasonInvalidIssuer:
		return fmt.Sprintf("iss is %s but the config expects %s: set issuer (or publishable_key) to the instance that issued the token",
			orAbsent(c.Iss), strings.Join(v.issuers, " or "))
	case ReasonInvalidAudience:
		if len(c.Aud) == 0 || string(c.Aud) == "null" {
			return fmt.Sprintf("the token has no aud but audience is %s: Clerk session tokens carry none; use a JWT template that sets aud, or drop audience",
				list(v.audiences))
		}
		return fmt.Sprintf("aud %s is not in audience %s: set the JWT template's aud to one of them, or add it to audience",
			showRaw(c.Aud), list(v.audiences))
	case ReasonTypeMismatch:
		return d.typeFix()
	case ReasonSessionPending:
		return "the session is pending (sts pending): the user has session tasks left, such as choosing an organization; finish them in the frontend and get a new token, or set allow_pending"
	case ReasonKIDMismatch:
		if kid == "" {
			return "the token has no kid, so no key of the JWKS can be chosen: Clerk's tokens always carry one; to verify without kid, use jwt_key"
		}
		return fmt.Sprintf("the token's kid %s is not in the JWKS at %s (it has %s): the token comes from another Clerk instance or keys rotated",
			kid, d.jwksURL, list(d.kids))
	case ReasonJWKSUnavailable:
		if d.fetchErr == nil {
			return fmt.Sprintf("%s could not be fetched in time, but a retry just now worked: a passing network problem; try again", d.jwksURL)
		}
		return fmt.Sprintf("could not fetch %s: %v: check that this machine reaches it (DNS, proxy, firewall) and the key settings; jwt_key verifies without fetching",
			d.jwksURL, d.fetchErr)
	}
	return d.requirementFix()
}

// typeFix explains token-type-mismatch by what the token is.
func (d *diagnosis) typeFix() string {
	kind := kindUnknown
	if d.tok != nil {
		kind, _ = d.tok.kind()
	}
	switch kind {
	case kindOAuth:
		return "this is an OAuth access token (typ at+jwt): clerk_auth accepts session and JWT-template tokens only; send a session token"
	case kindM2M:
		return "this is a machine-to-machine (M2M) token: clerk_auth accepts session and JWT-template tokens only; M2M tokens are verified with Clerk's Backend API"
	case TokenTypeSession, TokenTypeTemplate:
		// A session or template token is only refused by accept.
		var accepted []string
		for class := range d.h.verifier.accept {
			accepted = append(accepted, class)
		}
		sort.Strings(accepted)
		return fmt.Sprintf("this route accepts %s tokens only and this is a %s token: add accept %s, or send a %s token",
			strings.Join(accepted, " and "), kind, kind, strings.Join(accepted, " or "))
	}
	return fmt.Sprintf("the cat header %q is not a category Clerk uses for session or JWT-template tokens: send a session token", d.tok.headerString("cat"))
}

// requirementFix explains the 403 reasons, quoting the first configured
// line the identity fails.
func (d *diagnosis) requirementFix() string {
	id := d.id
	if id == nil {
		return ""
	}
	want := list(d.unmet.values)
	noOrg := fmt.Sprintf("the token has no active organization; the route requires one of %s: make an organization active in the frontend (setActive) and get a new token", want)
	switch d.ve.Reason {
	case ReasonMissingRole:
		return fmt.Sprintf("the token's roles (claim %s) are %s; the route requires one of %s: give the user the role and put it in the token (e.g. \"roles\": \"{{user.public_metadata.roles}}\" in the session token or JWT template)",
			d.h.verifier.rolesClaim, list(id.Roles()), want)
	case ReasonMissingOrgRole:
		if id.OrgID == "" {
			return noOrg
		}
		return fmt.Sprintf("the token's org role is %s; the route requires one of %s: give the user one of these roles in organization %s",
			id.OrgRole, want, orAbsent(id.OrgSlug))
	case ReasonMissingPermission:
		if id.OrgID == "" {
			return noOrg
		}
		s := fmt.Sprintf("the token's org permissions are %s; the route requires one of %s: grant one to the user's org role %s",
			list(id.OrgPermissions), want, id.OrgRole)
		if p := id.PermissionsProblem(); p != "" {
			s += " (the token's permissions could not be decoded: " + p + ")"
		}
		return s
	case ReasonMissingFeature:
		return fmt.Sprintf("the token's features are %s; the route requires one of %s: the user's or organization's plan must include one (Clerk Billing)",
			scopedString(id.Features), want)
	case ReasonMissingPlan:
		return fmt.Sprintf("the token's plans are %s; the route requires one of %s: subscribe the user or organization to one (Clerk Billing)",
			scopedString(id.Plans), want)
	case ReasonClaimMismatch:
		got := "absent"
		if v, ok := id.claim(d.unmet.claim); ok {
			got = claimString(v)
		}
		return fmt.Sprintf("claim %s is %s; the route requires one of %s: set it in the session token or JWT template (or the user's metadata it comes from)",
			d.unmet.claim, got, want)
	}
	return ""
}
