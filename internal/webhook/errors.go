package webhook

import (
	"errors"
	"net/http"
)

// Outcomes other than success. Each error a Verifier returns wraps exactly
// one of them; all but ErrDuplicate are refusals.
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
	// ErrDuplicate: an authentic delivery, within the tolerance window, of
	// an svix-id already accepted: Svix retrying a message whose answer
	// was lost, or a captured delivery sent again. It is no refusal: the
	// caller answers it as received (Status is 200) and must not apply
	// its Actions again; Verify returns the event with it.
	ErrDuplicate = errors.New("webhook already received")
	// ErrBusy: the set of remembered ids is full of unexpired ones; Svix
	// retries later.
	ErrBusy = errors.New("too many webhooks to remember")
)

// Status is the HTTP status that answers err: 200 for a duplicate (its
// sender learns it was received, which it was), 400 for a malformed
// delivery, 401 for one that is not authentic (signature or stale), 413
// for a body over the cap, 503 when busy, and 500 for an error of no kind
// above.
func Status(err error) int {
	switch {
	case err == nil, errors.Is(err, ErrDuplicate):
		return http.StatusOK
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, ErrStale), errors.Is(err, ErrSignature):
		return http.StatusUnauthorized
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
