package clerkapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kinds of failure, for errors.Is. Every error a call returns is an *Error
// whose Kind is one of them.
var (
	// ErrNotFound: Clerk says the value does not exist or is invalid (400,
	// 404 or 422), or the value cannot be valid and was never sent. The
	// end user's problem: a signed-out answer, never a retry.
	ErrNotFound = errors.New("not found or invalid")
	// ErrUnauthorized: Clerk refused the secret key (401). A configuration
	// problem, never the end user's fault.
	ErrUnauthorized = errors.New("the secret key was refused")
	// ErrUnavailable: Clerk could not answer (429, 5xx, any other status,
	// timeout, network error, an unreadable or oversized answer), or the
	// local bucket refused the call. Answer 503 with Retry-After, never 401.
	ErrUnavailable = errors.New("the Backend API is unavailable")
	// ErrRateLimited is the local bucket's refusal; it is also ErrUnavailable.
	ErrRateLimited = errors.New("the Backend API call budget is spent")
)

// maxRetryAfter caps what Clerk's Retry-After may ask for: a caller passes
// it on to browsers, and an absurd value would lock them out.
const maxRetryAfter = time.Hour

// Error is a failed call. Its message names the endpoint, status and Clerk's
// error code, never the secret key or the value being resolved.
type Error struct {
	Kind     error  // ErrNotFound, ErrUnauthorized, ErrUnavailable or ErrRateLimited
	Endpoint string // e.g. "GET /v1/clients/handshake_payload"
	Status   int    // Clerk's HTTP status; 0 if none was received
	Code     string // Clerk's errors[0].code, if it had a plain one
	// RetryAfter is how long Clerk (its Retry-After header) or the bucket
	// asks to wait; 0 if neither said.
	RetryAfter time.Duration

	detail string
	cause  error // a transport error, stripped of the request URL
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clerkapi: %s: %v", e.Endpoint, e.Kind)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (code=%s)", e.Code)
	}
	if e.detail != "" {
		b.WriteString(": " + e.detail)
	}
	if e.cause != nil {
		b.WriteString(": " + e.cause.Error())
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Unwrap makes errors.Is see the Kind, ErrUnavailable for ErrRateLimited,
// and a transport cause such as context.DeadlineExceeded.
func (e *Error) Unwrap() []error {
	errs := []error{e.Kind}
	if e.Kind == ErrRateLimited {
		errs = append(errs, ErrUnavailable)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// RetryAfter is how long err asks the caller to wait, rounded up to whole
// seconds as a Retry-After header needs, and at least one second for any
// ErrUnavailable; ok is false for errors that a retry cannot fix.
func RetryAfter(err error) (wait time.Duration, ok bool) {
	if !errors.Is(err, ErrUnavailable) {
		return 0, false
	}
	var e *Error
	if errors.As(err, &e) {
		wait = e.RetryAfter
	}
	// Round up: a shortened wait would come back too early.
	return max(time.Second, (wait + time.Second - 1).Truncate(time.Second)), true
}

// transportError describes a request that got no usable answer. The
// *url.Error wrapper is dropped: its message holds the URL, and so the
// value being resolved.
func transportError(endpoint string, err error) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	detail := "no answer"
	if errors.Is(err, context.DeadlineExceeded) {
		detail = "timed out"
	}
	return &Error{Kind: ErrUnavailable, Endpoint: endpoint, detail: detail, cause: err}
}

// statusError classifies a non-2xx answer.
func statusError(endpoint string, resp *http.Response, body []byte) *Error {
	e := &Error{Endpoint: endpoint, Status: resp.StatusCode, Code: errorCode(body)}
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity:
		e.Kind = ErrNotFound
	case http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
	default:
		e.Kind = ErrUnavailable
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// clerkCode is what an errors[0].code of Clerk's looks like; anything else
// is left out of messages, since it could echo what was sent.
var clerkCode = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

func errorCode(body []byte) string {
	var doc struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &doc) != nil || len(doc.Errors) == 0 || !clerkCode.MatchString(doc.Errors[0].Code) {
		return ""
	}
	return doc.Errors[0].Code
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3);
// anything unreadable or in the past is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
