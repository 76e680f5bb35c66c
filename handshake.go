package clerkauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
	"github.com/caddyserver/caddy/v2"
)

// sessions runs Clerk's handshake for browser sessions: the decision of
// authenticateRequest (internal/handshake) on cookie-carried tokens and on
// page loads, the redirect through the Frontend API, and the return leg,
// resolved through the Backend API (internal/clerkapi).
type sessions struct {
	inst   *handshake.Instance
	api    *clerkapi.Client
	logger *zap.Logger
}

// verdict is the browser-session path's answer to one request: either the
// request goes on (id set, or ve set for a refusal the handler answers as
// usual), or done says the response was written (a redirect).
type verdict struct {
	id      *Identity
	ve      *VerifyError
	carrier string
	done    bool
}

// serve decides r by Clerk's rules. It writes the handshake redirect and the
// return leg's Set-Cookie headers itself; everything else goes back to the
// handler as an identity or a VerifyError.
func (s *sessions) serve(w http.ResponseWriter, r *http.Request, v *verifier, public *url.URL, now time.Time) verdict {
	cookies := handshake.ParseCookies(r.Header)
	if nonce, token := handshake.HandshakePayload(public, cookies); nonce != "" || token != "" {
		if vd, ok := s.returnLeg(w, r, v, public, nonce, token); ok {
			return vd
		}
		// An unusable payload (a sibling app's cookie, a forged token) is
		// dropped, as Clerk's SDK does: the request is decided on its
		// original cookies, and the loop guard bounds what follows.
	}

	var id *Identity
	var ve *VerifyError
	d := handshake.Decide(s.inst, &handshake.Request{URL: public, Method: r.Method, Header: r.Header, Now: now},
		func(token string) string {
			id, ve = verifyAsVerifyError(r.Context(), v, token)
			if ve != nil {
				return ve.Reason
			}
			return ""
		})
	switch d.Outcome {
	case handshake.SignedIn:
		return verdict{id: id, carrier: d.Carrier}
	case handshake.Handshake:
		metrics.handshakes.WithLabelValues(d.Reason).Inc()
		if d.SetCookie != "" {
			w.Header().Add("Set-Cookie", d.SetCookie)
		}
		redirect(w, d.Location)
		return verdict{done: true, carrier: d.Carrier}
	}
	if d.LoopStopped {
		s.logger.Warn("handshake redirect loop stopped: the Frontend API keeps answering without a usable session; check that the publishable and secret keys belong to the same instance",
			zap.String("reason", d.Reason))
	}
	// A token that was verified and failed keeps the verifier's reason (a
	// key outage stays a 503); Clerk's table reasons name the rest.
	if ve != nil {
		return verdict{ve: ve, carrier: d.Carrier}
	}
	reason := d.Reason
	if reason == handshake.ReasonTokenAndUATMissing {
		// An ordinary anonymous visitor: answered as every request without
		// a token is.
		reason = ReasonTokenMissing
	}
	return verdict{ve: &VerifyError{Reason: reason, Err: errors.New("browser session: " + d.Reason)}, carrier: d.Carrier}
}

// returnLeg applies a handshake payload. ok is false when the payload
// cannot be used and the request should be decided without it.
func (s *sessions) returnLeg(w http.ResponseWriter, r *http.Request, v *verifier, public *url.URL, nonce, token string) (verdict, bool) {
	format := "token"
	var directives []string
	var err error
	if nonce != "" {
		format = "nonce"
		directives, err = s.api.HandshakePayload(r.Context(), nonce)
		switch {
		case errors.Is(err, clerkapi.ErrUnavailable):
			metrics.handshakeReturns.WithLabelValues(format, "unavailable").Inc()
			// The refusal's Retry-After comes from retryAfterFor, as for
			// every Backend API outage.
			return verdict{ve: &VerifyError{Reason: ReasonHandshakeUnavailable, Err: err}}, true
		case errors.Is(err, clerkapi.ErrUnauthorized):
			s.logger.Error("the Backend API refused secret_key while resolving a handshake: check that it belongs to this instance")
		}
	} else {
		directives, err = handshake.HandshakeDirectives(token, func(t string) error {
			return v.checkSignature(r.Context(), t)
		})
	}
	if err != nil {
		metrics.handshakeReturns.WithLabelValues(format, "refused").Inc()
		s.logger.Info("handshake payload not usable; deciding the request without it",
			zap.String("format", format), zap.Error(err))
		if nonce != "" {
			// Clerk's SDK: a nonce that does not resolve yields no
			// directives, hence no session.
			return verdict{ve: &VerifyError{Reason: handshake.ReasonSessionTokenMissing, Err: err}}, true
		}
		return verdict{}, false
	}
	kept, dropped := handshake.SafeDirectives(directives, s.inst)
	if len(dropped) > 0 {
		s.logger.Warn("handshake directives dropped", zap.Strings("why", dropped))
	}
	for _, d := range kept {
		w.Header().Add("Set-Cookie", d)
	}
	metrics.handshakeReturns.WithLabelValues(format, "applied").Inc()
	if q := public.Query(); q.Has(handshake.CookieHandshakeNonce) || q.Has(handshake.CookieHandshake) {
		// The payload came in the URL: send the browser to the clean URL,
		// where it arrives with the new cookies.
		redirect(w, handshake.CleanURL(public))
		return verdict{done: true}, true
	}
	session, ok := handshake.SessionFromDirectives(kept)
	if !ok {
		return verdict{ve: &VerifyError{Reason: handshake.ReasonSessionTokenMissing, Err: errors.New("the handshake set no session")}}, true
	}
	id, ve := verifyAsVerifyError(r.Context(), v, session)
	return verdict{id: id, ve: ve, carrier: carrierCookie}, true
}

// verifyAsVerifyError verifies token, with every failure as a VerifyError.
func verifyAsVerifyError(ctx context.Context, v *verifier, token string) (*Identity, *VerifyError) {
	id, err := v.verify(ctx, token)
	if err == nil {
		return id, nil
	}
	var ve *VerifyError
	if !errors.As(err, &ve) {
		ve = &VerifyError{Reason: ReasonTokenInvalid, Err: err}
	}
	return nil, ve
}

// redirect answers 307 to location, never cached: Chrome keeps 307s of
// inactive tabs, which turns a one-off handshake into a loop.
func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// The values of Handshake.
const (
	handshakeOn  = "on"
	handshakeOff = "off"
)

// provisionSessions turns the handshake on where Clerk's SDK would do it:
// the instance is known from the publishable key, and a secret key can
// resolve the nonces the Frontend API hands back.
func (h *Handler) provisionSessions(repl *caddy.Replacer) error {
	if _, err := choice("handshake", h.Handshake, handshakeOn, handshakeOff); err != nil {
		return err
	}
	proxy, err := expand(repl, "proxy_url", h.ProxyURL)
	if err != nil {
		return err
	}
	if proxy != "" && !strings.HasPrefix(proxy, "/") {
		if err := checkURL(proxy); err != nil {
			return fmt.Errorf("proxy_url %q: %v (or a path such as /__clerk on the site's own origin)", proxy, err)
		}
	}
	if h.Handshake == handshakeOff || (h.Handshake == "" && (h.publishable == nil || h.backend == nil)) {
		return nil
	}
	switch {
	case h.publishable == nil:
		return errors.New("handshake on needs publishable_key: it names the Frontend API the browser is sent through")
	case h.backend == nil:
		return errors.New("handshake on needs secret_key: Clerk's Frontend API answers with a nonce that only the Backend API resolves")
	}
	api, err := h.apiClient()
	if err != nil {
		return err
	}
	inst := *h.instance
	inst.ProxyURL = strings.TrimSuffix(proxy, "/")
	inst.AuthorizedParties = h.verifier.authorizedParties
	h.sessions = &sessions{
		inst:   &inst,
		api:    api,
		logger: h.logger.Named("handshake"),
	}
	return nil
}
