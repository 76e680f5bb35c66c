// Package clerkauth is a Caddy HTTP handler that verifies Clerk-issued JWTs
// at the edge and hands the verified identity to the rest of the route as
// placeholders and spoof-proof request headers.
package clerkauth

import (
	"net/url"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// timeNow is the handlers' clock; tests replace it to move time without
// sleeping.
var timeNow = time.Now

// keySetClock is the clock of key sets created from now on; nil is the real
// one. Tests set it to age keys past jwks_max_stale without waiting.
var keySetClock jwks.Clock

// keySets holds one *jwks.Set per key source, shared by every handler and
// across config reloads: a reload provisions the new handlers (which find
// the existing set) before cleaning up the old ones.
var keySets = caddy.NewUsagePool()

const (
	defaultAPIURL = "https://api.clerk.com"
	defaultLeeway = 5 * time.Second
	maxLeeway     = 5 * time.Minute
	defaultRoles  = "roles"
)

// Handler verifies a Clerk session token (or JWT-template token) sent as
// `Authorization: Bearer <token>` or in the `__session` cookie, and, on
// routes that accept them, Clerk's machine tokens (API keys, M2M tokens,
// OAuth access tokens) in the Authorization header.
//
// A request without a token gets 401 with `WWW-Authenticate: Bearer`; an
// invalid token gets 401 with `error="invalid_token"`; a valid token that
// fails a requirement (roles, org_role, org_permission, feature, plan,
// scope, claim) gets 403 with `error="insufficient_scope"`; and when no
// signing keys can be had, or the Backend API cannot answer for an opaque
// machine token, 503 with Retry-After. All of them are returned as handler
// errors, so `handle_errors` can render them, and the reason code is in
// `{http.auth.clerk.reason}`. With SignInURL, browsers navigating to a page
// are redirected to sign in instead of seeing a 401.
//
// On success the identity is available as `{http.auth.user.id}` (the
// subject: the Clerk user id of a session, or the user_, org_ or mch_
// subject of a machine token; also logged as user_id),
// `{http.auth.user.session_id}`,
// `{http.auth.user.org_id}`, `{http.auth.user.org_slug}`,
// `{http.auth.user.org_role}`, `{http.auth.user.org_permissions}`,
// `{http.auth.user.roles}`, `{http.auth.user.features}`,
// `{http.auth.user.plans}`, `{http.auth.user.session_status}`,
// `{http.auth.user.actor}`, `{http.auth.user.issuer}`,
// `{http.auth.user.expires_at}`, `{http.auth.user.token_type}`,
// `{http.auth.user.azp}` and `{http.auth.user.claims.<dotted.path>}`.
// Machine tokens add `{http.auth.user.token_id}` (ak_, mt_ or oat_ id, or
// the JWT's jti), `{http.auth.user.machine_id}` (an M2M token's mch_
// subject), `{http.auth.user.scopes}`, `{http.auth.user.name}` (an API
// key's name) and `{http.auth.user.client_id}` (an OAuth application);
// their `claims.*` are the key's or token's custom claims. On an
// anonymous request (see Optional) they are all empty. The list
// placeholders (roles, org_permissions, features, plans, scopes, and array claims)
// join their elements with commas, each element with `%`, `,`, `"`, space
// and control characters percent-encoded, so none reads as two. Their
// exact forms are JSON arrays: `{http.auth.user.roles_json}`,
// `{http.auth.user.org_permissions_json}`,
// `{http.auth.user.features_json}`, `{http.auth.user.plans_json}` and
// `{http.auth.user.scopes_json}`;
// `{http.auth.user.claims_json.<dotted.path>}` is any claim as JSON.
// Control characters in the other values are percent-encoded too, so every
// value is a valid header value.
//
// CORS preflight requests pass through unauthenticated, unless Preflight
// says otherwise.
//
// String settings may hold placeholders such as `{env.CLERK_JWT_KEY}`,
// expanded once at provision time. A setting that is given but expands to
// nothing is a configuration error, never an absent setting: an empty
// authorized party or audience would match tokens without azp or aud.
type Handler struct {
	// The Clerk publishable key (`pk_test_...` or `pk_live_...`). It names
	// the instance, so on its own it is a complete configuration: the issuer
	// `https://<frontend api>` (a `:port` kept) and its JWKS URL are derived
	// from it, and the instance's suffixed `__session_<suffix>` cookie is
	// read too. An explicit Issuers or JWKSURL overrides the derived value.
	// Any key Clerk's SDK accepts is accepted, unless its Frontend API can
	// never be an https URL.
	PublishableKey string `json:"publishable_key,omitempty"`

	// Issuers whose tokens are accepted: the token's `iss` must equal one of
	// them exactly (a trailing slash is ignored). This is Clerk's Frontend
	// API URL, e.g. `https://clerk.example.com` or
	// `https://verb-noun-00.clerk.accounts.dev`. Required unless
	// PublishableKey is set. Plain http is only allowed for loopback hosts.
	Issuers []string `json:"issuers,omitempty"`

	// URL of the JSON Web Key Set with the signing keys. Default:
	// `<first issuer>/.well-known/jwks.json`. The key set is fetched in the
	// background and shared by every handler with the same URL.
	JWKSURL string `json:"jwks_url,omitempty"`

	// The instance's PEM public key (Clerk's `CLERK_JWT_KEY`, Dashboard → API
	// keys → JWT public key), for networkless verification: no JWKS is ever
	// fetched and the token's `kid` is not needed. Accepted with or without
	// the BEGIN/END lines and with literal `\n`; `{env.*}` and `{file.*}`
	// placeholders work. Any RSA key of at least 2048 bits.
	JWTKey string `json:"jwt_key,omitempty"`

	// A Clerk secret key (`sk_test_...`/`sk_live_...`), to fetch the keys
	// from the Backend API (`<api_url>/v1/jwks`) instead of the Frontend
	// API. Must belong to the same kind of instance as PublishableKey. It is
	// never logged.
	SecretKey string `json:"secret_key,omitempty"`

	// Base URL of Clerk's Backend API, used with SecretKey. Default:
	// `https://api.clerk.com`.
	APIURL string `json:"api_url,omitempty"`

	// How often the shared key set is refreshed in the background.
	// Default: 15m. Only a successful response replaces the keys. At least
	// 1s, for outage tests in staging; below 1m a warning is logged.
	JWKSRefresh caddy.Duration `json:"jwks_refresh,omitempty"`

	// The least time between two key fetches triggered by requests (a token
	// with an unknown kid, or a signature that fails with a cached key,
	// which is how a key rotated under the same kid shows). Concurrent
	// triggers share one fetch. Default: 30s. At least 1s. This bounds what
	// a flood of forged tokens can make Caddy ask of Clerk.
	JWKSMinInterval caddy.Duration `json:"jwks_min_interval,omitempty"`

	// Timeout of one key fetch attempt. Default: 5s, at least 100ms. Failed
	// attempts are retried with exponential backoff and jitter.
	JWKSTimeout caddy.Duration `json:"jwks_timeout,omitempty"`

	// While fetches fail, the last good keys are used up to this age.
	// Default: 24h. Past it requests fail closed with 503 (never 401: a
	// Clerk outage must not look like a sign-out). At least 1s and not
	// below JWKSRefresh; below 1m a warning is logged.
	JWKSMaxStale caddy.Duration `json:"jwks_max_stale,omitempty"`

	// If set, the token's `aud` (a string or an array of strings) must
	// contain one of these. A token without `aud`, or with one of another
	// type, is then rejected. Clerk session tokens carry no `aud`; JWT
	// templates can.
	Audiences []string `json:"audiences,omitempty"`

	// If set, the token's `azp` (the origin of the page that requested it)
	// must be present and equal one of these, e.g. `https://app.example.com`.
	// Clerk recommends this against tokens leaking between subdomains.
	AuthorizedParties []string `json:"authorized_parties,omitempty"`

	// Allowed clock skew for `exp`, `nbf` and `iat`. Default: 5s, as Clerk's
	// SDK. At most 5m: a larger skew would keep expired tokens alive.
	Leeway *caddy.Duration `json:"leeway,omitempty"`

	// Token classes accepted: `session` (Clerk session tokens), `template`
	// (JWT-template tokens), `api_key` (Clerk API keys, `ak_...`),
	// `m2m_token` (machine-to-machine tokens, `mt_...` or a JWT) and
	// `oauth_token` (OAuth access tokens, `oat_...` or an `at+jwt` JWT).
	// Default: `session` and `template`. A token of another class is refused
	// with `token-type-mismatch` before anything else is checked; no class
	// ever passes as another. Machine tokens are read from the
	// Authorization header only. The JWT forms are verified locally with
	// the same keys; the opaque forms through the Backend API, which needs
	// SecretKey (required with `api_key`).
	Accept []string `json:"accept,omitempty"`

	// How long Clerk's answer for an opaque machine token is reused, so a
	// client's steady traffic costs one Backend API call per token per
	// period rather than one per request. It is also how long a token
	// revoked in Clerk keeps working here. An answer never outlives the
	// token's own expiry; a refusal (unknown, revoked, expired token) is
	// reused for 10s. Default: 30s; 1s to 1h.
	MachineCacheTTL caddy.Duration `json:"machine_cache_ttl,omitempty"`

	// The most Backend API calls per second this Caddy makes for one secret
	// key (opaque machine tokens and handshake nonces together), and the
	// burst above that rate. Past it, a request that needs a call gets 503
	// with Retry-After: made-up tokens cannot turn into billed calls, nor
	// eat the instance's Clerk rate limit (1000 requests per 10s in
	// production, 100 in development, for all its servers). Default: 20
	// per second with a burst of 40. Routes with the same secret key and
	// the same budget share it.
	BackendAPIRate  float64 `json:"backend_api_rate,omitempty"`
	BackendAPIBurst int     `json:"backend_api_burst,omitempty"`

	// Accept sessions whose status (`sts`) is `pending` (the user has tasks
	// left, such as choosing an organization). By default they are treated
	// as signed out, as Clerk's `treatPendingAsSignedOut` does: 401 with
	// reason `session-pending`.
	AllowPending bool `json:"allow_pending,omitempty"`

	// Requirements. Each entry is one Caddyfile line; every line must pass,
	// and within a line any one value suffices. A valid token that fails a
	// requirement gets 403.
	//
	// Roles lists role lines, checked against RolesClaim.
	Roles [][]string `json:"roles,omitempty"`

	// Dotted path of the claim holding roles: an array of strings, or one
	// comma/space separated string. Default: `roles`. Put e.g.
	// `{{user.public_metadata.roles}}` there with Clerk's session token
	// customisation or a JWT template.
	RolesClaim string `json:"roles_claim,omitempty"`

	// Organization role lines, as Clerk's `has({role})`: `admin` and
	// `org:admin` are the same; requires an active organization.
	OrgRoles [][]string `json:"org_roles,omitempty"`

	// Organization permission lines, as Clerk's `has({permission})`:
	// `teams:manage` and `org:teams:manage` are the same.
	OrgPermissions [][]string `json:"org_permissions,omitempty"`

	// Clerk Billing feature lines, as `has({feature})`: `o:`/`org:`/
	// `organization:` for the organization, `u:`/`user:` for the user, no
	// scope for either.
	Features [][]string `json:"features,omitempty"`

	// Clerk Billing plan lines, as `has({plan})`, with the same scopes.
	Plans [][]string `json:"plans,omitempty"`

	// Scope lines: a machine token's granted scopes must hold one of each
	// line's values. Sessions and templates carry no scopes, so they never
	// pass a scope line.
	Scopes [][]string `json:"scopes,omitempty"`

	// Claim requirements: the claim at Path equals one of Values, or (for an
	// array claim) contains one.
	Claims []ClaimRequirement `json:"claims,omitempty"`

	// If true, a missing or invalid token does not reject the request: it
	// continues anonymously, with empty identity placeholders and the reason
	// in `{http.auth.clerk.reason}`. An authenticated user who fails a
	// requirement is still rejected.
	Optional bool `json:"optional,omitempty"`

	// How many verified tokens to remember, so the signature check runs
	// once per token rather than once per request (browsers reuse a Clerk
	// token for its whole lifetime). Every hit re-checks the token's time
	// window, and the cache belongs to this handler, so it never changes
	// what is accepted. Default: 10000. 0 turns the cache off.
	TokenCache *int `json:"token_cache,omitempty"`

	// Where browsers sign in. An unauthenticated GET for a page (a document
	// or iframe navigation, or an `Accept: text/html` request) is redirected
	// with 307 to `<url>?redirect_url=<the original URL>`; API requests still
	// get 401. Typically your Account Portal sign-in page. The original URL
	// has the scheme and host the request arrived with or, when it came from
	// one of the server's `trusted_proxies`, the first `X-Forwarded-Proto`
	// and `X-Forwarded-Host`.
	SignInURL string `json:"sign_in_url,omitempty"`

	// Request headers set from the identity. On every request through this
	// handler, each field (and any header a CGI/WSGI/PHP server would read as
	// the same variable, e.g. `X_User_Id` or `X.User.Id` for `X-User-Id`) is
	// first deleted from the client's request; then, when authenticated, it
	// is set to its value with placeholders expanded. This is the spoof-proof
	// way to hand the identity to any handler or upstream.
	ForwardHeaders []ForwardHeader `json:"forward_headers,omitempty"`

	// What a CORS preflight gets: `pass` (the default) or `authenticate`. A
	// preflight is an OPTIONS with `Origin` and
	// `Access-Control-Request-Method` and no body; browsers send it without
	// credentials before a cross-origin call. With `pass` it goes on
	// unauthenticated: the upstream gets an OPTIONS with the owned headers
	// stripped and every identity placeholder empty, and must not act on
	// it. With `authenticate` it is checked like any other request, so a
	// browser's preflight gets 401: for routes no other origin calls.
	Preflight string `json:"preflight,omitempty"`

	// Whether a session cookie counts on a cross-site state-changing
	// request: `refuse` (the default) or `allow`. With `refuse`, a request
	// with any method but GET, HEAD, OPTIONS and TRACE whose token comes
	// from the cookie is unauthenticated, with reason `cross-site-cookie`,
	// when the browser says it is cross-site (`Sec-Fetch-Site:
	// cross-site`) or its Origin is neither the request's own origin (read
	// as for SignInURL, trusted proxies' forwarded headers included) nor
	// one of AuthorizedParties (`Origin: null` included). A token in the
	// Authorization header is never affected: other sites' pages cannot
	// make a browser send it. This is CSRF protection that does not rely on
	// the browser's SameSite handling alone; `allow` leaves it to the app.
	CrossSiteCookies string `json:"cross_site_cookies,omitempty"`

	// Backend API data to fetch for authenticated requests: `user` (the
	// user's email address, names, username, image and public metadata)
	// and/or `org` (the active organization's name, slug, image and public
	// metadata). It becomes `{http.auth.user.email}`,
	// `{http.auth.user.first_name}`, `{http.auth.user.last_name}`,
	// `{http.auth.user.username}`, `{http.auth.user.image_url}`,
	// `{http.auth.user.public_metadata.<path>}`, `{http.auth.org.name}`,
	// `{http.auth.org.slug}`, `{http.auth.org.image_url}` and
	// `{http.auth.org.public_metadata.<path>}`, and enters the identity
	// assertion. Needs SecretKey. Answers are cached per user and per
	// organization (5m, then served stale while one call refreshes them)
	// and draw on the same call budget as machine tokens. Nothing is
	// fetched unless configured.
	Enrich []string `json:"enrich,omitempty"`

	// Without it, a request whose data the Backend API cannot give (down,
	// rate-limited) goes on without it, and that is logged. With it, such a
	// request gets 503 with Retry-After (`enrich-unavailable`).
	EnrichRequired bool `json:"enrich_required,omitempty"`

	// How often this Caddy reads, from Caddy's storage, the sessions and
	// users that Clerk revoked (announced by a webhook to clerk_webhook on
	// any Caddy sharing the storage). Such a session or user gets 401
	// (`session-revoked`, `user-revoked`) on every request, cached tokens
	// included. Default: 5s, the most a revocation takes to reach this
	// Caddy; 1s to 5m.
	DenylistSync caddy.Duration `json:"denylist_sync,omitempty"`

	// A signed identity assertion for the upstream; see IdentityAssertion.
	IdentityAssertion *IdentityAssertion `json:"identity_assertion,omitempty"`

	// Clerk's handshake for browser sessions: `on` or `off`. It is on when
	// the instance is known from PublishableKey and SecretKey is set (`on`
	// without them is a configuration error). Then a page load whose
	// session cookie has expired, or that Clerk's cookie rules call stale,
	// is sent through the instance's Frontend API (307 to
	// `/v1/client/handshake`), which renews the session cookie and sends
	// the browser back, as Clerk's own SDKs do; API requests still get 401.
	Handshake string `json:"handshake,omitempty"`

	// Where the Frontend API is served from the application's own domain,
	// for Clerk's Frontend API proxy: an absolute https URL, or a path such
	// as `/__clerk` on the request's own origin. The handshake redirect
	// then goes there instead of the publishable key's Frontend API host.
	ProxyURL string `json:"proxy_url,omitempty"`

	verifier     *verifier
	machines     *machineVerifier
	enricher     *enricher      // nil without enrich
	minter       *minter        // nil without identity_assertion
	denied       *denylist.List // the storage's shared denylist
	denylistSync time.Duration
	clusterKey   string           // the clusters entry this handler holds
	ringKey      string           // the assertionRings entry this handler holds
	backend      *backendAPI      // nil without secret_key
	api          *clerkapi.Client // from apiClients; nil until a step needs it
	apiClientKey string           // the apiClients entry this handler holds
	sessions     *sessions        // nil when the handshake is off
	requirements requirements
	publishable  *publishableKey
	instance     *handshake.Instance // from the publishable key; nil without one
	signIn       *url.URL
	keySetKey    string
	ownedHeaders []string
	// authenticatePreflights is Preflight == "authenticate".
	authenticatePreflights bool
	// allowCrossSiteCookies is CrossSiteCookies == "allow".
	allowCrossSiteCookies bool
	// trustedOrigins are the AuthorizedParties that are origins, canonical:
	// cross-site requests from them may still use the session cookie.
	trustedOrigins []string
	// forwardFields[i] names the identity field when ForwardHeaders[i] is
	// just one {http.auth.user.*} placeholder (the usual case), so the
	// value is read directly instead of parsed by the replacer per request.
	forwardFields []string
	logger        *zap.Logger
}

// ForwardHeader is one header set from the verified identity.
type ForwardHeader struct {
	// The header field name, e.g. `X-User-Id`.
	Field string `json:"field"`
	// The value, usually a placeholder such as `{http.auth.user.id}`.
	Value string `json:"value"`
}

// ClaimRequirement requires a claim to hold one of some values.
type ClaimRequirement struct {
	// Dotted path of the claim, e.g. `metadata.tier`.
	Path string `json:"path"`
	// Accepted values.
	Values []string `json:"values"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.clerk_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
