package webhook

import (
	"errors"
	"net/http"
)

// Refusals. Each error a Verifier returns wraps exactly one of them.
var (
	// ErrTooLarge: the body is over Options.MaxBodySize. Nothing was
	// verified.
	ErrTooLarge = errors.New("webhook body too large")
	// ErrMalformed: a header is missing or malformed, or the signed body is
	// not a Clerk event.
	ErrMalformed = errors.New("malformed webhook")
	// ErrStale: the timestamp is outside the tolerance window, so the
	// delivery may be a replay of an id already forgotten.
	ErrStale = errors.New("webhook timestamp outside the tolerance window")
	// ErrSignature: no v1 signature matches the secret.
	ErrSignature = errors.New("webhook signature does not match")
	// ErrReplay: an event with this svix-id was already accepted.
	ErrReplay = errors.New("webhook already received")
	// ErrBusy: the set of remembered ids is full of unexpired ones; Svix
	// retries later.
	ErrBusy = errors.New("too many webhooks to remember")
)

// Status is the HTTP status that answers err: 400 for a malformed
// delivery, 401 for one that is not authentic (signature, stale or
// replayed), 413 for a body over the cap, 503 when busy, and 500 for an
// error of no kind above.
func Status(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, ErrStale), errors.Is(err, ErrSignature), errors.Is(err, ErrReplay):
		return http.StatusUnauthorized
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
