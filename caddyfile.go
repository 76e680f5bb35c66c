package clerkauth

import (
	"math"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("clerk_auth", parseCaddyfile)
	// Authentication belongs before everything that serves or proxies, the
	// same slot as basic_auth, so users never have to write an order. The
	// assertion keys and the webhook endpoint go first of all: neither
	// Clerk's webhook deliveries nor an upstream fetching the keys have a
	// Clerk token. Each insertion lands right before basic_auth, so this
	// order of calls puts them before clerk_auth.
	httpcaddyfile.RegisterDirectiveOrder("clerk_webhook", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("clerk_identity_jwks", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("clerk_auth", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	clerk_auth [<matcher>] {
//		publishable_key     <pk_test_...|pk_live_...>
//		issuer              <url>...
//		jwks_url            <url>
//		jwks_refresh        <duration>
//		jwks_min_interval   <duration>
//		jwks_timeout        <duration>
//		jwks_max_stale      <duration>
//		jwt_key             <pem>
//		secret_key          <sk_test_...|sk_live_...>
//		api_url             <url>
//		audience            <aud>...
//		authorized_parties  <origin>...
//		leeway              <duration>
//		accept              session|template|api_key|m2m_token|oauth_token...
//		machine_cache_ttl   <duration>
//		backend_api_rate    <calls-per-second> [<burst>]
//		allow_pending
//		roles               <role>...
//		roles_claim         <dotted.path>
//		org_role            <role>...
//		org_permission      <permission>...
//		feature             <feature>...
//		plan                <plan>...
//		scope               <scope>...
//		claim               <dotted.path> <value>...
//		optional
//		token_cache         <entries>|off
//		sign_in_url         <url>
//		forward_header      <field> <value>
//		preflight           pass|authenticate
//		cross_site_cookies  refuse|allow
//		handshake           on|off
//		proxy_url           <url>|<path>
//		denylist_sync       <duration>
//		enrich              user|org...
//		enrich_required
//		identity_assertion  <header> {
//			audience <aud>
//			issuer   <iss>
//			ttl      <duration>
//		}
//	}
//
// issuer, audience, authorized_parties and accept may be repeated; their
// values add up. The requirement lines (roles, org_role, org_permission,
// feature, plan, scope, claim) may be repeated: every line must pass, and within a
// line any one value suffices. forward_header may be repeated, once per
// header; enrich may be repeated, its values adding up. The other
// subdirectives may be given once.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "publishable_key":
			err = single(d, &h.PublishableKey)
		case "issuer":
			err = appendValues(d, &h.Issuers)
		case "jwks_url":
			err = single(d, &h.JWKSURL)
		case "jwks_refresh":
			err = parseDuration(d, &h.JWKSRefresh)
		case "jwks_min_interval":
			err = parseDuration(d, &h.JWKSMinInterval)
		case "jwks_timeout":
			err = parseDuration(d, &h.JWKSTimeout)
		case "jwks_max_stale":
			err = parseDuration(d, &h.JWKSMaxStale)
		case "jwt_key":
			err = single(d, &h.JWTKey)
		case "secret_key":
			err = secretValue(d, &h.SecretKey)
		case "api_url":
			err = single(d, &h.APIURL)
		case "audience":
			err = appendValues(d, &h.Audiences)
		case "authorized_parties":
			err = appendValues(d, &h.AuthorizedParties)
		case "leeway":
			err = h.parseLeeway(d)
		case "accept":
			err = appendValues(d, &h.Accept)
		case "allow_pending":
			err = setFlag(d, &h.AllowPending)
		case "roles":
			err = appendLine(d, &h.Roles)
		case "roles_claim":
			err = single(d, &h.RolesClaim)
		case "org_role":
			err = appendLine(d, &h.OrgRoles)
		case "org_permission":
			err = appendLine(d, &h.OrgPermissions)
		case "feature":
			err = appendLine(d, &h.Features)
		case "plan":
			err = appendLine(d, &h.Plans)
		case "scope":
			err = appendLine(d, &h.Scopes)
		case "machine_cache_ttl":
			err = parseDuration(d, &h.MachineCacheTTL)
		case "backend_api_rate":
			err = h.parseBackendAPIRate(d)
		case "claim":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("claim needs a claim path and at least one value, e.g. claim metadata.tier gold silver")
			}
			h.Claims = append(h.Claims, ClaimRequirement{Path: args[0], Values: args[1:]})
		case "optional":
			err = setFlag(d, &h.Optional)
		case "token_cache":
			err = h.parseTokenCache(d)
		case "sign_in_url":
			err = single(d, &h.SignInURL)
		case "preflight":
			err = singleChoice(d, &h.Preflight, preflightPass, preflightAuthenticate)
		case "cross_site_cookies":
			err = singleChoice(d, &h.CrossSiteCookies, crossSiteCookiesRefuse, crossSiteCookiesAllow)
		case "handshake":
			err = singleChoice(d, &h.Handshake, handshakeOn, handshakeOff)
		case "proxy_url":
			err = single(d, &h.ProxyURL)
		case "enrich":
			err = appendValues(d, &h.Enrich)
		case "denylist_sync":
			err = parseDuration(d, &h.DenylistSync)
		case "enrich_required":
			err = setFlag(d, &h.EnrichRequired)
		case "identity_assertion":
			err = h.parseIdentityAssertion(d)
		case "forward_header":
			var fh ForwardHeader
			if !d.AllArgs(&fh.Field, &fh.Value) {
				return d.Errf("forward_header needs a field name and a value, e.g. forward_header X-User-Id {http.auth.user.id}")
			}
			h.ForwardHeaders = append(h.ForwardHeaders, fh)
		default:
			return d.Errf("unrecognized clerk_auth subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) parseLeeway(d *caddyfile.Dispenser) error {
	var raw string
	if h.Leeway != nil {
		return d.Errf("leeway is given twice")
	}
	if !d.AllArgs(&raw) {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(raw)
	if err != nil {
		return d.Errf("leeway: %v", err)
	}
	leeway := caddy.Duration(dur)
	h.Leeway = &leeway
	return nil
}

func (h *Handler) parseBackendAPIRate(d *caddyfile.Dispenser) error {
	if h.BackendAPIRate != 0 {
		return d.Errf("backend_api_rate is given twice")
	}
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return d.Errf("backend_api_rate needs calls per second and optionally a burst, e.g. backend_api_rate 20 40")
	}
	rate, err := strconv.ParseFloat(args[0], 64)
	// NaN and Inf parse, but json.Marshal cannot write them: the adapter
	// would drop the whole handler with a mere warning.
	if err != nil || !(rate > 0) || math.IsInf(rate, 0) {
		return d.Errf("backend_api_rate %q: use a positive number of calls per second", args[0])
	}
	h.BackendAPIRate = rate
	if len(args) == 2 {
		burst, err := strconv.Atoi(args[1])
		if err != nil || burst < 1 {
			return d.Errf("backend_api_rate burst %q: use a positive whole number of calls", args[1])
		}
		h.BackendAPIBurst = burst
	}
	return nil
}

func (h *Handler) parseIdentityAssertion(d *caddyfile.Dispenser) error {
	if h.IdentityAssertion != nil {
		return d.Errf("identity_assertion is given twice")
	}
	a := new(IdentityAssertion)
	if !d.AllArgs(&a.Header) {
		return d.Errf("identity_assertion needs the header to set, e.g. identity_assertion X-Clerk-Identity { audience https://api.internal }")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "audience":
			err = single(d, &a.Audience)
		case "issuer":
			err = single(d, &a.Issuer)
		case "ttl":
			err = parseDuration(d, &a.TTL)
		default:
			return d.Errf("unrecognized identity_assertion subdirective %q: use audience, issuer or ttl", d.Val())
		}
		if err != nil {
			return err
		}
	}
	h.IdentityAssertion = a
	return nil
}

func (h *Handler) parseTokenCache(d *caddyfile.Dispenser) error {
	var raw string
	if h.TokenCache != nil {
		return d.Errf("token_cache is given twice")
	}
	if !d.AllArgs(&raw) {
		return d.ArgErr()
	}
	size := 0
	if raw != "off" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return d.Errf("token_cache %q: use a number of entries, or off", raw)
		}
		size = n
	}
	h.TokenCache = &size
	return nil
}

// parseDuration reads the one duration of a subdirective given once.
func parseDuration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var raw string
	if *dst != 0 {
		return d.Errf("%s is given twice", name)
	}
	if !d.AllArgs(&raw) {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(raw)
	if err != nil || dur <= 0 {
		return d.Errf("%s %q: use a positive duration such as 30s or 15m", name, raw)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// setFlag reads a subdirective that takes no value.
func setFlag(d *caddyfile.Dispenser, dst *bool) error {
	name := d.Val()
	if d.NextArg() {
		return d.Errf("%s takes no value, got %q", name, d.Val())
	}
	*dst = true
	return nil
}

// appendValues adds a line's values to a list.
func appendValues(d *caddyfile.Dispenser, dst *[]string) error {
	vals, err := atLeastOne(d)
	*dst = append(*dst, vals...)
	return err
}

// appendLine adds a line's values as one more requirement line.
func appendLine(d *caddyfile.Dispenser, dst *[][]string) error {
	vals, err := atLeastOne(d)
	if err == nil {
		*dst = append(*dst, vals)
	}
	return err
}

// single reads the one value of a subdirective that may appear only once.
func single(d *caddyfile.Dispenser, dst *string) error {
	if *dst != "" {
		return d.Errf("%s is given twice", d.Val())
	}
	if !d.AllArgs(dst) {
		return d.ArgErr()
	}
	return nil
}

// secretValue reads the one value of a subdirective that holds a secret
// (secret_key, signing_secret). Unlike single, a wrong number of values is
// reported without the value: Caddy's ArgErr names the last token read,
// which would be the secret.
func secretValue(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if *dst != "" {
		return d.Errf("%s is given twice", name)
	}
	if !d.AllArgs(dst) {
		*dst = ""
		return d.Errf("%s takes exactly one value (not repeated here: it is a secret)", name)
	}
	return nil
}

// singleChoice reads the one value of a subdirective that takes one of a
// few words.
func singleChoice(d *caddyfile.Dispenser, dst *string, words ...string) error {
	name := d.Val()
	if err := single(d, dst); err != nil {
		return err
	}
	if _, err := choice(name, *dst, words...); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

func atLeastOne(d *caddyfile.Dispenser) ([]string, error) {
	name := d.Val()
	vals := d.RemainingArgs()
	if len(vals) == 0 {
		return nil, d.Errf("%s needs at least one value", name)
	}
	return vals, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
