package clerkauth

import (
	"errors"
	"net/http"

	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// The request path: a token found, verified (or its class refused), checked
// against revocations and requirements, enriched, asserted, and handed to
// the rest of the route; or a refusal answered as answerFor says.

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Client copies of the owned headers go first, on every path, so no
	// upstream can ever see a forged identity, anonymous requests included.
	stripOwned(r, h.ownedHeaders)

	// The state goes before the preflight exit too: it is what makes every
	// {http.auth.*} placeholder known, so a header_up expands to "" on a
	// preflight instead of forwarding the literal "{http.auth.user.id}".
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	st, r := stateFor(r, repl)
	st.id, st.reason, st.enrich = nil, "", nil

	if !h.authenticatePreflights && isPreflight(r) {
		return next.ServeHTTP(w, r)
	}

	// One reading of the clock serves the cookie rules, the handshake and
	// the denylist of this request.
	now := h.verifier.now()
	token, carrier, err := tokenFromRequest(r, h.instance, now)
	var id *Identity
	switch {
	case err != nil:
		err = &VerifyError{Reason: ReasonTokenInvalid, Err: err}
	case carrier == carrierCookie && !h.allowCrossSiteCookies && !isSafeMethod(r.Method) && crossSite(r, h.trustedOrigins):
		// Browsers attach cookies to requests other sites' pages make;
		// SameSite=Lax still lets through those of sibling origins (other
		// ports, other subdomains), so the request's own headers decide.
		err = &VerifyError{Reason: ReasonCrossSiteCookie, Err: errors.New("the session cookie came with a state-changing request from another origin")}
	case h.sessions != nil && (carrier != carrierHeader || handshake.Eligible(r.Method, r.Header) && !h.machineHeader(token)):
		// Cookie sessions and page loads follow Clerk's authenticateRequest,
		// handshake included; other header tokens are verified as they are.
		vd := h.sessions.serve(w, r, h.verifier, publicURL(r), now)
		if vd.done {
			return nil
		}
		id, carrier = vd.id, vd.carrier
		if vd.ve != nil {
			err = vd.ve
		}
	case token == "":
		err = &VerifyError{Reason: ReasonTokenMissing, Err: errors.New("no bearer token or __session cookie")}
	case carrier == carrierHeader:
		// Clerk reads machine tokens from the Authorization header only.
		id, err = h.verifyHeaderToken(r.Context(), token)
	default:
		id, err = h.verifier.verify(r.Context(), token)
	}
	if err == nil && carrier == carrierCookie && isMachineClass(id.TokenType) {
		// Clerk reads machine tokens from the Authorization header only; a
		// machine's JWT in a browser's session cookie is no session.
		id, err = nil, reject(ReasonTypeMismatch, "%s tokens are read from the Authorization header only", className(id.TokenType))
	}
	if err == nil {
		// Checked on every request, so the token cache cannot outlive a
		// revocation.
		if ve := h.revocation(id, now); ve != nil {
			id, err = nil, ve
		}
	}
	if err != nil {
		var ve *VerifyError
		if !errors.As(err, &ve) {
			ve = &VerifyError{Reason: ReasonTokenInvalid, Err: err}
		}
		st.reason = ve.Reason
		h.logReject(r, ve, carrier)
		if h.Optional {
			metrics.requests.WithLabelValues(requestAnonymous, ve.Reason).Inc()
			return next.ServeHTTP(w, r)
		}
		metrics.requests.WithLabelValues(requestRejected, ve.Reason).Inc()
		return h.refuse(w, r, ve)
	}

	if reason := h.requirements.check(id).reason; reason != "" {
		return h.refuseVerified(w, r, &VerifyError{Reason: reason, Err: errors.New("requirement not met")}, carrier)
	}

	if problem := id.PermissionsProblem(); problem != "" {
		h.logger.Warn("organization permissions could not be decoded; treating the user as holding none",
			zap.String("user_id", id.Subject), zap.String("problem", problem))
	}
	if h.enricher != nil {
		if st.enrich, err = h.enricher.enrich(r.Context(), id); err != nil {
			return h.refuseVerified(w, r, err.(*VerifyError), carrier)
		}
	}
	if h.minter != nil {
		token, err := h.minter.assertionFor(id, st.enrich, r)
		if err != nil {
			h.logger.Error("no identity assertion could be signed", zap.Error(err))
			return h.refuseVerified(w, r, &VerifyError{Reason: ReasonAssertionUnavailable, Err: err}, carrier)
		}
		r.Header.Set(h.minter.header, token)
	}
	st.id = id
	for i, fh := range h.ForwardHeaders {
		var v string
		if name := h.forwardFields[i]; name != "" {
			v = st.userField(name)
		} else {
			v = repl.ReplaceAll(fh.Value, "")
		}
		if v != "" {
			r.Header.Set(fh.Field, v)
		}
	}
	allowedRequests.Inc()
	return next.ServeHTTP(w, r)
}

// refuseVerified refuses a request whose token verified, for a reason
// Optional does not waive: a requirement, or data it cannot go on without.
func (h *Handler) refuseVerified(w http.ResponseWriter, r *http.Request, ve *VerifyError, carrier string) error {
	metrics.requests.WithLabelValues(requestRejected, ve.Reason).Inc()
	stateOf(r).reason = ve.Reason
	h.logReject(r, ve, carrier)
	return h.refuse(w, r, ve)
}

// refuse answers a request that does not go on, as answerFor says; a
// browser loading a page is sent to sign in instead, when configured.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, ve *VerifyError) error {
	a := answerFor(ve.Reason)
	w.Header().Set("Cache-Control", "no-store")
	if a.signIn && h.signIn != nil && isDocumentRequest(r) {
		http.Redirect(w, r, signInRedirect(h.signIn, r), http.StatusTemporaryRedirect)
		return nil
	}
	if a.challenge != "" {
		w.Header().Set("WWW-Authenticate", a.challenge)
	}
	if a.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfterFor(ve))
	}
	return caddyhttp.Error(a.status, ve)
}
