// Package clerkauth is a Caddy HTTP handler that verifies Clerk-issued JWTs
// at the edge and hands the verified identity to the rest of the route as
// placeholders and spoof-proof request headers.
package clerkauth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// keySets holds one keySet per key source, shared by every handler and
// across config reloads: a reload provisions the new handlers (which find
// the existing set) before cleaning up the old ones.
var keySets = caddy.NewUsagePool()

const (
	defaultLeeway = 5 * time.Second
	maxLeeway     = 5 * time.Minute
	defaultRoles  = "roles"
)

// Handler verifies a Clerk session token (or JWT-template token) sent as
// `Authorization: Bearer <token>` or in the `__session` cookie.
//
// A request without a token gets 401 with `WWW-Authenticate: Bearer`; an
// invalid token gets 401 with `error="invalid_token"`; a valid token that
// fails a requirement (roles) gets 403 with `error="insufficient_scope"`; and
// when no signing keys can be had, 503 with Retry-After. All of them are
// returned as handler errors, so `handle_errors` can render them, and the
// reason code is in `{http.auth.clerk.reason}`.
//
// On success the identity is available as `{http.auth.user.id}` (the Clerk
// user id, also logged as user_id), `{http.auth.user.session_id}`,
// `{http.auth.user.org_id}`, `{http.auth.user.org_slug}`,
// `{http.auth.user.org_role}`, `{http.auth.user.org_permissions}`,
// `{http.auth.user.roles}`, `{http.auth.user.token_type}`,
// `{http.auth.user.azp}` and `{http.auth.user.claims.<dotted.path>}`. On an
// anonymous request (see Optional) they are all empty.
//
// CORS preflight requests pass through unauthenticated.
type Handler struct {
	// Issuers whose tokens are accepted: the token's `iss` must equal one of
	// them exactly (a trailing slash is ignored). This is Clerk's Frontend
	// API URL, e.g. `https://clerk.example.com` or
	// `https://verb-noun-00.clerk.accounts.dev`. Required. Plain http is only
	// allowed for loopback hosts (local development).
	Issuers []string `json:"issuers,omitempty"`

	// URL of the JSON Web Key Set with the signing keys. Default:
	// `<first issuer>/.well-known/jwks.json`. The key set is fetched in the
	// background and shared by every handler with the same URL.
	JWKSURL string `json:"jwks_url,omitempty"`

	// If set, the token's `aud` (string or array) must contain one of these.
	// A token without `aud` is then rejected. Clerk session tokens carry no
	// `aud`; JWT templates can.
	Audiences []string `json:"audiences,omitempty"`

	// If set, the token's `azp` (the origin of the page that requested it)
	// must be present and equal one of these, e.g. `https://app.example.com`.
	// Clerk recommends this against tokens leaking between subdomains.
	AuthorizedParties []string `json:"authorized_parties,omitempty"`

	// Allowed clock skew for `exp`, `nbf` and `iat`. Default: 5s, as Clerk's
	// SDK. At most 5m: a larger skew would keep expired tokens alive.
	Leeway *caddy.Duration `json:"leeway,omitempty"`

	// Roles of which the user must hold at least one, read from RolesClaim.
	// A valid token without any of them gets 403.
	Roles []string `json:"roles,omitempty"`

	// Dotted path of the claim holding roles: an array of strings, or one
	// comma/space separated string. Default: `roles`. Use a JWT template or
	// session token customisation to put e.g. `{{user.public_metadata.roles}}`
	// there.
	RolesClaim string `json:"roles_claim,omitempty"`

	// If true, a missing or invalid token does not reject the request: it
	// continues anonymously, with empty identity placeholders and the reason
	// in `{http.auth.clerk.reason}`. An authenticated user who fails a
	// requirement is still rejected.
	Optional bool `json:"optional,omitempty"`

	// Request headers set from the identity. On every request through this
	// handler, each field (and any header a CGI/WSGI server would read as the
	// same variable, e.g. `X_User_Id` for `X-User-Id`) is first deleted from
	// the client's request; then, when authenticated, it is set to its value
	// with placeholders expanded. This is the spoof-proof way to hand the
	// identity to any handler or upstream.
	ForwardHeaders []ForwardHeader `json:"forward_headers,omitempty"`

	verifier     *verifier
	requirements requirements
	keySetKey    string
	ownedHeaders []string
	logger       *zap.Logger
}

// ForwardHeader is one header set from the verified identity.
type ForwardHeader struct {
	// The header field name, e.g. `X-User-Id`.
	Field string `json:"field"`
	// The value, usually a placeholder such as `{http.auth.user.id}`.
	Value string `json:"value"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.clerk_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision checks the configuration and attaches the shared key set. It
// never waits for the network: the first JWKS fetch runs in the background.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	repl := caddy.NewReplacer()

	if len(h.Issuers) == 0 {
		return errors.New("clerk_auth: issuer is required (your Clerk Frontend API URL, e.g. https://clerk.example.com)")
	}
	issuers := make([]string, len(h.Issuers))
	for i, raw := range h.Issuers {
		iss := strings.TrimSuffix(repl.ReplaceAll(raw, ""), "/")
		if err := checkIssuer(iss); err != nil {
			return fmt.Errorf("clerk_auth: issuer %q (from %q): %v", iss, raw, err)
		}
		issuers[i] = iss
	}

	jwksURL := repl.ReplaceAll(h.JWKSURL, "")
	if jwksURL == "" {
		jwksURL = issuers[0] + "/.well-known/jwks.json"
	}
	if err := checkURL(jwksURL); err != nil {
		return fmt.Errorf("clerk_auth: jwks_url %q: %v", jwksURL, err)
	}

	leeway := defaultLeeway
	if h.Leeway != nil {
		leeway = time.Duration(*h.Leeway)
	}
	if leeway < 0 || leeway > maxLeeway {
		return fmt.Errorf("clerk_auth: leeway %s is out of range: use 0 to %s (Clerk's default is %s)", leeway, maxLeeway, defaultLeeway)
	}

	rolesClaim := h.RolesClaim
	if rolesClaim == "" {
		rolesClaim = defaultRoles
	}
	if strings.HasPrefix(rolesClaim, ".") || strings.HasSuffix(rolesClaim, ".") || strings.Contains(rolesClaim, "..") {
		return fmt.Errorf("clerk_auth: roles_claim %q is not a dotted claim path like metadata.roles", rolesClaim)
	}

	for _, fh := range h.ForwardHeaders {
		if !validHeaderName(fh.Field) {
			return fmt.Errorf("clerk_auth: forward_header %q is not a valid header field name", fh.Field)
		}
		h.ownedHeaders = append(h.ownedHeaders, fh.Field)
	}

	h.keySetKey = jwksURL
	val, _, err := keySets.LoadOrNew(h.keySetKey, func() (caddy.Destructor, error) {
		ks := newKeySet(jwksURL, nil, defaultKeySetOptions, h.logger.Named("jwks"))
		ks.start()
		return ks, nil
	})
	if err != nil {
		return fmt.Errorf("clerk_auth: key set: %v", err)
	}

	h.verifier = &verifier{
		issuers:           issuers,
		audiences:         expandAll(repl, h.Audiences),
		authorizedParties: expandAll(repl, h.AuthorizedParties),
		leeway:            leeway,
		rolesClaim:        rolesClaim,
		keys:              val.(*keySet),
		now:               time.Now,
	}
	h.requirements = requirements{roles: expandAll(repl, h.Roles)}
	return nil
}

// Cleanup releases this handler's hold on the shared key set.
func (h *Handler) Cleanup() error {
	if h.keySetKey == "" {
		return nil
	}
	_, err := keySets.Delete(h.keySetKey)
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Client copies of the owned headers go first, on every path, so no
	// upstream can ever see a forged identity, anonymous requests included.
	stripHeaders(r.Header, h.ownedHeaders)

	if isPreflight(r) {
		return next.ServeHTTP(w, r)
	}

	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	st, r := stateFor(r, repl)
	st.id, st.reason = nil, ""

	token, carrier, err := tokenFromRequest(r)
	var id *Identity
	switch {
	case err != nil:
		err = &VerifyError{Reason: ReasonTokenInvalid, Err: err}
	case token == "":
		err = &VerifyError{Reason: ReasonTokenMissing, Err: errors.New("no bearer token or __session cookie")}
	default:
		id, err = h.verifier.verify(r.Context(), token)
	}
	if err != nil {
		var ve *VerifyError
		if !errors.As(err, &ve) {
			ve = &VerifyError{Reason: ReasonTokenInvalid, Err: err}
		}
		st.reason = ve.Reason
		h.logReject(r, ve, carrier)
		if h.Optional {
			return next.ServeHTTP(w, r)
		}
		return h.unauthenticated(w, ve)
	}

	if reason := h.requirements.check(id); reason != "" {
		st.reason = reason
		h.logReject(r, &VerifyError{Reason: reason, Err: errors.New("requirement not met")}, carrier)
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="`+reason+`"`)
		return caddyhttp.Error(http.StatusForbidden, fmt.Errorf("clerk_auth: %s", reason))
	}

	st.id = id
	for _, fh := range h.ForwardHeaders {
		if v := repl.ReplaceAll(fh.Value, ""); v != "" {
			r.Header.Set(fh.Field, v)
		}
	}
	return next.ServeHTTP(w, r)
}

// unauthenticated answers a request whose token is missing or invalid, or
// that could not be checked for want of keys.
func (h *Handler) unauthenticated(w http.ResponseWriter, ve *VerifyError) error {
	w.Header().Set("Cache-Control", "no-store")
	switch ve.Reason {
	case ReasonTokenMissing:
		w.Header().Set("WWW-Authenticate", "Bearer")
	case ReasonJWKSUnavailable:
		// Not a 401: a Clerk outage must not look like a sign-out to clients.
		w.Header().Set("Retry-After", "5")
		return caddyhttp.Error(http.StatusServiceUnavailable, ve)
	default:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+ve.Reason+`"`)
	}
	return caddyhttp.Error(http.StatusUnauthorized, ve)
}

func (h *Handler) logReject(r *http.Request, ve *VerifyError, carrier string) {
	if c := h.logger.Check(zapcore.DebugLevel, "request not authenticated"); c != nil {
		c.Write(
			zap.String("reason", ve.Reason),
			zap.String("token_carrier", carrier),
			zap.String("detail", ve.Error()),
			zap.String("uri", r.RequestURI),
		)
	}
}

// checkURL accepts an absolute https URL, or http on a loopback host for
// local development: keys fetched over plain http from anywhere else could
// be swapped by anyone on the path.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Hostname() == "" {
		return errors.New("must be an absolute URL such as https://clerk.example.com")
	}
	if u.User != nil || u.Fragment != "" {
		return errors.New("must not contain user info or a #fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (plain http is only allowed for localhost)")
	}
	return fmt.Errorf("scheme %q is not https", u.Scheme)
}

// checkIssuer also refuses what can never equal a token's iss: Clerk's
// issuers are bare lowercase origins (or a proxy URL with a path).
func checkIssuer(raw string) error {
	if err := checkURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	if u.RawQuery != "" || u.ForceQuery {
		return errors.New("must not contain a ?query")
	}
	if u.Scheme+"://"+strings.ToLower(u.Host) != raw[:len(u.Scheme)+3+len(u.Host)] {
		return fmt.Errorf("must be lowercase, as in tokens: %s://%s", u.Scheme, strings.ToLower(u.Host))
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func expandAll(repl *caddy.Replacer, in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = repl.ReplaceAll(s, "")
	}
	return out
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
