package clerkauth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"

	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
)

// Reason codes, as set in {http.auth.clerk.reason}, logged, counted in
// metrics and carried by VerifyError. Where Clerk's SDK has a name for a
// failure we use it, so the codes read the same as Clerk's docs. The set is
// closed and stable: alert on it, branch on it in handle_errors.
const (
	// The token is missing, malformed, or fails verification: 401.
	ReasonTokenMissing          = "token-missing"
	ReasonTokenInvalid          = "token-invalid"
	ReasonTokenExpired          = "token-expired"
	ReasonNotActiveYet          = "token-not-active-yet"
	ReasonIATInFuture           = "token-iat-in-the-future"
	ReasonInvalidSignature      = "token-invalid-signature"
	ReasonInvalidAlgorithm      = "token-invalid-algorithm"
	ReasonVerificationFailed    = "token-verification-failed"
	ReasonInvalidAuthorizedPart = "token-invalid-authorized-parties"
	ReasonInvalidIssuer         = "token-invalid-issuer"
	ReasonInvalidAudience       = "token-invalid-audience"
	ReasonTypeMismatch          = "token-type-mismatch"
	ReasonKIDMismatch           = "jwk-kid-mismatch"
	ReasonSessionPending        = "session-pending"
	// Clerk revoked, ended or removed the token's session, or deleted or
	// banned its user, after the token was issued (clerk_webhook).
	ReasonSessionRevoked = "session-revoked"
	ReasonUserRevoked    = "user-revoked"
	// The session cookie came with a state-changing request from another
	// origin (cross_site_cookies refuse): it is not used.
	ReasonCrossSiteCookie = "cross-site-cookie"

	// No signing keys could be had: 503, never 401.
	ReasonJWKSUnavailable = "jwks-unavailable"
	// The Backend API could not resolve a handshake nonce for now (down,
	// rate-limited): 503, never a sign-out.
	ReasonHandshakeUnavailable = "handshake-unavailable"
	// The Backend API could not verify an opaque machine token for now
	// (down, slow, rate-limited by Clerk or by our own call budget): 503
	// with Retry-After. Clerk's SDK says unexpected-error and signs out.
	ReasonBackendUnavailable = "backend-api-unavailable"
	// enrich_required, and the Backend API could not give the user's or
	// organization's data for now: 503 with Retry-After.
	ReasonEnrichUnavailable = "enrich-unavailable"
	// No identity assertion could be signed: its keys could not be read
	// from or made in Caddy's storage. 503, never an unsigned request.
	ReasonAssertionUnavailable = "assertion-unavailable"
	// Clerk refused the secret key while verifying an opaque machine token:
	// a configuration fault, so 503, not a verdict on the token.
	ReasonSecretKeyInvalid = "secret-key-invalid"

	// A valid token fails a requirement: 403.
	ReasonMissingRole       = "missing-role"
	ReasonMissingOrgRole    = "missing-org-role"
	ReasonMissingPermission = "missing-permission"
	ReasonMissingFeature    = "missing-feature"
	ReasonMissingPlan       = "missing-plan"
	ReasonMissingScope      = "missing-scope"
	ReasonClaimMismatch     = "claim-mismatch"
)

// retryAfter is the Retry-After of a 503: long enough for one background
// fetch attempt, short enough that clients come back soon.
const retryAfter = "5"

// retryAfterFor is the Retry-After of a 503: what Clerk asked for when it
// said (a 429 from the Backend API, or our own budget's wait), in whole
// seconds rounded up, else retryAfter.
func retryAfterFor(ve *VerifyError) string {
	// clerkapi.RetryAfter is at least 1s for any outage, asked for or not:
	// only a wait someone named may replace retryAfter, or clients of a
	// Clerk that is down would come back, uncached, every second.
	var e *clerkapi.Error
	if !errors.As(ve.Err, &e) || e.RetryAfter <= 0 {
		return retryAfter
	}
	if d, ok := clerkapi.RetryAfter(ve.Err); ok {
		return strconv.Itoa(int((d + time.Second - 1) / time.Second))
	}
	return retryAfter
}

// VerifyError is a rejected request: Reason is the stable code, Err the
// detail for logs. Neither ever contains the token itself. ServeHTTP returns
// it wrapped in a caddyhttp.HandlerError, so handle_errors routes and other
// modules can read the reason with errors.As.
type VerifyError struct {
	Reason string
	Err    error
}

func (e *VerifyError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *VerifyError) Unwrap() error { return e.Err }

func reject(reason, format string, args ...any) *VerifyError {
	return &VerifyError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// answer is how a reason is told to the client. The handler and the token
// doctor both read it here, so the doctor's verdict is the handler's.
type answer struct {
	status    int
	challenge string // WWW-Authenticate, or ""
	// signIn: a browser loading a page may be sent to sign_in_url instead.
	signIn bool
}

// answerFor maps a reason to its status and challenge (RFC 6750 §3).
func answerFor(reason string) answer {
	switch reason {
	case ReasonTokenMissing, handshake.ReasonUATWithoutToken, handshake.ReasonSessionTokenMissing:
		// Clerk's cookie reasons that also mean "no session token".
		return answer{status: http.StatusUnauthorized, challenge: "Bearer", signIn: true}
	case ReasonJWKSUnavailable, ReasonHandshakeUnavailable, ReasonBackendUnavailable, ReasonSecretKeyInvalid,
		ReasonEnrichUnavailable, ReasonAssertionUnavailable:
		// Not a 401: a Clerk outage must not look like a sign-out.
		return answer{status: http.StatusServiceUnavailable}
	case ReasonCrossSiteCookie:
		// Never a page load (those are GETs), so never a sign-in redirect.
		return answer{status: http.StatusUnauthorized,
			challenge: `Bearer error="invalid_token", error_description="` + reason + `"`}
	case ReasonMissingRole, ReasonMissingOrgRole, ReasonMissingPermission, ReasonMissingFeature,
		ReasonMissingPlan, ReasonMissingScope, ReasonClaimMismatch:
		return answer{status: http.StatusForbidden,
			challenge: `Bearer error="insufficient_scope", error_description="` + reason + `"`}
	}
	return answer{status: http.StatusUnauthorized,
		challenge: `Bearer error="invalid_token", error_description="` + reason + `"`, signIn: true}
}
