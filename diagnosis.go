package clerkauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
)

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
	cctx, cancel, err := configContext(ctx, cfgJSON)
	if err != nil {
		return 2, err
	}
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
	id, err := h.verifyHeaderToken(ctx, token)
	if err != nil {
		if !errors.As(err, &d.ve) {
			d.ve = &VerifyError{Reason: ReasonTokenInvalid, Err: err}
		}
	} else if d.ve = h.revocation(id, now); d.ve == nil {
		if d.unmet = h.requirements.check(id); d.unmet.reason != "" {
			d.ve = &VerifyError{Reason: d.unmet.reason}
		}
	}
	d.id = id

	if d.ve == nil {
		fmt.Fprintf(w, "\nVALID\n  status  200: the request goes on as %s\n", shown(id.Subject))
		if p := id.PermissionsProblem(); p != "" {
			fmt.Fprintf(w, "  note    org permissions are treated as none: %s\n", shown(p))
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
		fmt.Fprintf(w, "  detail  %s\n", shown(d.ve.Err.Error()))
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
			human(d.since(c.Exp.ptr())), human(v.leeway))
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
		return "a registered claim is missing or mistyped (sub and sid must be strings; exp, nbf, iat numbers): if a JWT template sets these claims, fix the template"
	case ReasonInvalidAuthorizedPart:
		azp, mistyped := stringClaim(c.Azp)
		switch {
		case mistyped:
			return fmt.Sprintf("azp is %s, not a string: Clerk sets azp to the page's origin; if a JWT template sets azp, make it a string", c.Azp)
		case azp == "":
			return fmt.Sprintf("the token has no azp but authorized_parties is %s: browser session tokens carry the page's origin; for tokens without one, drop authorized_parties on this route",
				list(v.authorizedParties))
		}
		return fmt.Sprintf("azp %s is not in authorized_parties %s: if %s is your frontend, add it to authorized_parties; otherwise the token was requested from another site",
			shown(azp), list(v.authorizedParties), shown(azp))
	case ReasonInvalidIssuer:
		return fmt.Sprintf("iss is %s but the config expects %s: set issuer (or publishable_key) to the instance that issued the token",
			orAbsent(showRaw(c.Iss)), strings.Join(v.issuers, " or "))
	case ReasonInvalidAudience:
		if c.Aud == "" || c.Aud == "null" {
			return fmt.Sprintf("the token has no aud but audience is %s: Clerk session tokens carry none; use a JWT template that sets aud, or drop audience",
				list(v.audiences))
		}
		return fmt.Sprintf("aud %s is not in audience %s: set the JWT template's aud to one of them, or add it to audience",
			showRaw(c.Aud), list(v.audiences))
	case ReasonTypeMismatch:
		return d.typeFix()
	case ReasonCrossSiteCookie:
		return "the request, not the token, is refused: a state-changing request from another origin's page brought the token in the __session cookie; send it as Authorization: Bearer <token> (getToken()), add that page's origin to authorized_parties, or, with CSRF protection of your own, set cross_site_cookies allow"
	case ReasonSessionPending:
		return "the session is pending (sts pending): the user has session tasks left, such as choosing an organization; finish them in the frontend and get a new token, or set allow_pending"
	case ReasonKIDMismatch:
		if kid == "" {
			return "the token has no kid, so no key of the JWKS can be chosen: Clerk's tokens always carry one; to verify without kid, use jwt_key"
		}
		return fmt.Sprintf("the token's kid %s is not in the JWKS at %s (it has %s): the token comes from another Clerk instance or keys rotated",
			shown(kid), d.jwksURL, list(d.kids))
	case ReasonSessionRevoked:
		return "Clerk revoked, ended or removed this session after the token was issued (a webhook to clerk_webhook said so): sign in again for a new session"
	case ReasonUserRevoked:
		return "Clerk deleted or banned this user after the token was issued (a webhook to clerk_webhook said so): the user cannot sign in until deny_for has passed and Clerk lets them"
	case ReasonBackendUnavailable:
		return "Clerk's Backend API could not verify this opaque token just now (down, slow, rate-limited, or this Caddy's backend_api_rate budget spent): retry after Retry-After; check api_url and this machine's access to it, or raise backend_api_rate within Clerk's limits"
	case ReasonSecretKeyInvalid:
		return "Clerk refused secret_key while verifying this opaque token: set secret_key to a current key of the instance that issued the token (Dashboard → API keys)"
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
	if kind != kindUnknown {
		// A token of a known class is only refused by accept.
		var accepted []string
		for class := range d.h.verifier.accept {
			accepted = append(accepted, class)
		}
		sort.Strings(accepted)
		return fmt.Sprintf("this route accepts %s tokens only and this token's class is %s: add accept %s, or send a %s token",
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
			shown(id.OrgRole), want, orAbsent(id.OrgSlug))
	case ReasonMissingPermission:
		if id.OrgID == "" {
			return noOrg
		}
		s := fmt.Sprintf("the token's org permissions are %s; the route requires one of %s: grant one to the user's org role %s",
			list(id.OrgPermissions), want, shown(id.OrgRole))
		if p := id.PermissionsProblem(); p != "" {
			s += " (the token's permissions could not be decoded: " + shown(p) + ")"
		}
		return s
	case ReasonMissingFeature:
		return fmt.Sprintf("the token's features are %s; the route requires one of %s: the user's or organization's plan must include one (Clerk Billing)",
			scopedString(id.Features), want)
	case ReasonMissingPlan:
		return fmt.Sprintf("the token's plans are %s; the route requires one of %s: subscribe the user or organization to one (Clerk Billing)",
			scopedString(id.Plans), want)
	case ReasonMissingScope:
		return fmt.Sprintf("the token's scopes are %s; the route requires one of %s: grant the key or token one of them in Clerk, or send one that has it",
			list(id.Scopes), want)
	case ReasonClaimMismatch:
		got := "absent"
		if v, ok := id.claim(d.unmet.claim); ok {
			got = shown(claimString(v))
		}
		return fmt.Sprintf("claim %s is %s; the route requires one of %s: set it in the session token or JWT template (or the user's metadata it comes from)",
			d.unmet.claim, got, want)
	}
	return ""
}
