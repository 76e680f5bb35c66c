package clerkauth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Provision checks the configuration and attaches the key source. It never
// waits for the network: the first JWKS fetch runs in the background.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	// Each config load has a new registry; the collectors are package-level,
	// so their counts carry over reloads.
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		if err := registerMetrics(reg); err != nil {
			return fmt.Errorf("clerk_auth: metrics: %w", err)
		}
	}
	repl := caddy.NewReplacer()
	if err := h.provision(repl); err != nil {
		return fmt.Errorf("clerk_auth: %w", err)
	}
	// The assertion keys and the denylist live in Caddy's storage, which
	// only the context has.
	if err := h.attachKeyRing(ctx); err != nil {
		return fmt.Errorf("clerk_auth: %w", err)
	}
	if err := h.attachCluster(ctx); err != nil {
		return fmt.Errorf("clerk_auth: %w", err)
	}
	return nil
}

// provision runs one step per concern; each step expands its own
// placeholders with repl and says in its error which setting to fix.
func (h *Handler) provision(repl *caddy.Replacer) error {
	for _, step := range []func(*caddy.Replacer) error{
		h.provisionInstance,
		h.provisionBackendAPI,
		h.provisionRequirements,
		h.provisionSignIn,
		h.provisionForwardHeaders,
		h.provisionPreflight,
		h.provisionCrossSiteCookies,
		// Checked before the verifier takes a key set, so that a mistake
		// in them starts no JWKS fetch.
		h.provisionEnrich,
		h.provisionAssertion,
		h.provisionDenylist,
		h.provisionVerifier,
		h.provisionMachines,
		h.provisionSessions,
	} {
		if err := step(repl); err != nil {
			return err
		}
	}
	return nil
}

// provisionInstance reads the publishable key, which names the instance.
func (h *Handler) provisionInstance(repl *caddy.Replacer) error {
	pk, err := expand(repl, "publishable_key", h.PublishableKey)
	if err != nil || pk == "" {
		return err
	}
	parsed, err := parsePublishableKey(pk)
	if err != nil {
		return fmt.Errorf("publishable_key: %v", err)
	}
	h.publishable = parsed
	h.instance = parsed.instance()
	return nil
}

func (h *Handler) provisionRequirements(repl *caddy.Replacer) error {
	claimReqs := make([]claimRequirement, len(h.Claims))
	for i, c := range h.Claims {
		values, err := expandAll(repl, "claim "+c.Path, c.Values)
		if err != nil {
			return err
		}
		claimReqs[i] = claimRequirement{path: c.Path, values: values}
	}
	var lines [6][][]string
	for i, l := range []struct {
		directive string
		lines     [][]string
	}{
		{"roles", h.Roles}, {"org_role", h.OrgRoles}, {"org_permission", h.OrgPermissions},
		{"feature", h.Features}, {"plan", h.Plans}, {"scope", h.Scopes},
	} {
		var err error
		if lines[i], err = expandLines(repl, l.directive, l.lines); err != nil {
			return err
		}
	}
	var err error
	h.requirements, err = newRequirements(lines[0], lines[1], lines[2], lines[3], lines[4], lines[5], claimReqs)
	return err
}

func (h *Handler) provisionSignIn(repl *caddy.Replacer) error {
	raw, err := expand(repl, "sign_in_url", h.SignInURL)
	if err != nil || raw == "" {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("sign_in_url %q must be an absolute http(s) URL, e.g. https://accounts.example.com/sign-in", raw)
	}
	h.signIn = u
	return nil
}

func (h *Handler) provisionForwardHeaders(*caddy.Replacer) error {
	for _, fh := range h.ForwardHeaders {
		if err := checkOwnedName("forward_header", fh.Field); err != nil {
			return err
		}
		h.ownedHeaders = append(h.ownedHeaders, fh.Field)
		h.forwardFields = append(h.forwardFields, identityField(fh.Value))
	}
	return nil
}

func (h *Handler) provisionPreflight(*caddy.Replacer) error {
	mode, err := choice("preflight", h.Preflight, preflightPass, preflightAuthenticate)
	h.authenticatePreflights = mode == preflightAuthenticate
	return err
}

func (h *Handler) provisionCrossSiteCookies(repl *caddy.Replacer) error {
	mode, err := choice("cross_site_cookies", h.CrossSiteCookies, crossSiteCookiesRefuse, crossSiteCookiesAllow)
	if err != nil {
		return err
	}
	h.allowCrossSiteCookies = mode == crossSiteCookiesAllow
	parties, err := expandAll(repl, "authorized_parties", h.AuthorizedParties)
	h.trustedOrigins = canonicalOrigins(parties)
	return err
}

// provisionVerifier builds the verifier: the token rules, the key source and
// the verified-token cache.
func (h *Handler) provisionVerifier(repl *caddy.Replacer) error {
	issuers, err := h.issuers(repl)
	if err != nil {
		return err
	}
	leeway := defaultLeeway
	if h.Leeway != nil {
		leeway = time.Duration(*h.Leeway)
	}
	if leeway < 0 || leeway > maxLeeway {
		return fmt.Errorf("leeway %s is out of range: use 0 to %s (Clerk's default is %s)", leeway, maxLeeway, defaultLeeway)
	}
	rolesClaim := h.RolesClaim
	if rolesClaim == "" {
		rolesClaim = defaultRoles
	}
	if !validClaimPath(rolesClaim) {
		return fmt.Errorf("roles_claim %q is not a dotted claim path like metadata.roles", rolesClaim)
	}
	accept, err := acceptedClasses(h.Accept)
	if err != nil {
		return err
	}
	cacheSize := defaultTokenCacheSize
	if h.TokenCache != nil {
		cacheSize = *h.TokenCache
	}
	if cacheSize < 0 {
		return fmt.Errorf("token_cache %d: use a number of entries, or off", cacheSize)
	}
	audiences, err := expandAll(repl, "audience", h.Audiences)
	if err != nil {
		return err
	}
	authorizedParties, err := expandAll(repl, "authorized_parties", h.AuthorizedParties)
	if err != nil {
		return err
	}
	keys, err := h.keyProvider(repl, issuers)
	if err != nil {
		return err
	}
	h.verifier = newVerifier(keys, verifierConfig{
		issuers:           issuers,
		audiences:         audiences,
		authorizedParties: authorizedParties,
		leeway:            leeway,
		rolesClaim:        rolesClaim,
		accept:            accept,
		allowPending:      h.AllowPending,
		cacheSize:         cacheSize,
	})
	return nil
}

// issuers returns the normalised issuer allow-list: the configured issuers,
// else the one the publishable key names.
func (h *Handler) issuers(repl *caddy.Replacer) ([]string, error) {
	raw := h.Issuers
	if len(raw) == 0 {
		if h.publishable == nil {
			return nil, errors.New("issuer or publishable_key is required (your Clerk Frontend API URL, e.g. https://clerk.example.com, or pk_live_...)")
		}
		raw = []string{h.publishable.issuer()}
	}
	issuers := make([]string, len(raw))
	for i, r := range raw {
		expanded, err := expandValue(repl, "issuer", r)
		if err != nil {
			return nil, err
		}
		iss := strings.TrimSuffix(expanded, "/")
		if err := checkIssuer(iss); err != nil {
			return nil, fmt.Errorf("issuer %q (from %q): %v", iss, r, err)
		}
		issuers[i] = iss
	}
	return issuers, nil
}

// Cleanup releases this handler's hold on the shared key set and Backend
// API client.
func (h *Handler) Cleanup() error {
	var errs []error
	if h.keySetKey != "" {
		_, err := keySets.Delete(h.keySetKey)
		errs = append(errs, err)
	}
	if h.apiClientKey != "" {
		_, err := apiClients.Delete(h.apiClientKey)
		errs = append(errs, err)
	}
	if h.clusterKey != "" {
		_, err := clusters.Delete(h.clusterKey)
		errs = append(errs, err)
	}
	if h.ringKey != "" {
		_, err := assertionRings.Delete(h.ringKey)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
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

// choice checks the value of a setting that takes one of a few words;
// empty means the first, the default.
func choice(name, value string, words ...string) (string, error) {
	if value == "" {
		return words[0], nil
	}
	if slices.Contains(words, value) {
		return value, nil
	}
	return "", fmt.Errorf("%s %q: use %s", name, value, strings.Join(words, " or "))
}
