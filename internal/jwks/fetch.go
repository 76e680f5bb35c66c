package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"

	"go.uber.org/zap"
)

// Results of a fetch attempt, as Options.OnFetch is told them.
const (
	FetchOK        = "ok"        // a good answer that changed the keys
	FetchUnchanged = "unchanged" // a good answer with the keys already in hand
	FetchError     = "error"     // anything else: the last good keys stay
)

// Triggers of a fetch attempt, as Options.OnFetch is told them.
const (
	TriggerStartup   = "startup"   // the first fetch of a set, and its retries
	TriggerRefresh   = "refresh"   // the periodic refresh, and its retries
	TriggerKIDMiss   = "kid_miss"  // a token whose kid is not in the set
	TriggerSignature = "signature" // a signature that failed with a cached key
)

// maxJWKSBody bounds a key set response: a real one is a few KiB.
const maxJWKSBody = 1 << 20

// maxErrorBody bounds what is read of a non-200 answer: enough to find
// Clerk's error code, and no more from a server that is misbehaving anyway.
const maxErrorBody = 64 << 10

// redactURL drops the parts of a URL where a secret could hide (user info,
// query, fragment), so the result is safe for logs and metric labels.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// attempt makes one fetch and accounts for it through OnFetch and in logs.
// An attempt cut short by Destruct is not a failure and is not accounted.
func (s *Set) attempt(trigger string, n int) error {
	keys, err := s.download()
	if s.ctx.Err() != nil {
		return context.Canceled
	}
	if err != nil {
		s.opts.OnFetch(FetchError, trigger)
		s.logFailure(err, trigger, n)
		return err
	}
	result := FetchUnchanged
	if s.install(keys) {
		result = FetchOK
	}
	s.opts.OnFetch(result, trigger)
	return nil
}

// FetchOnce makes one attempt and installs its keys if the answer is good,
// bypassing the throttle and accounting for nothing: it is for diagnostics
// (caddy clerk-token), which want the error itself. It works whether or not
// the Set was started, but not once it is destructed.
func (s *Set) FetchOnce() error {
	keys, err := s.download()
	if err == nil {
		s.install(keys)
	}
	return err
}

// download makes one attempt bounded by the fetch timeout, body included,
// and returns the usable keys only if the whole answer is good.
func (s *Set) download() (map[string]rsaKey, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, newStatusError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBody {
		return nil, fmt.Errorf("response is larger than %d bytes", maxJWKSBody)
	}
	return parseJWKS(body)
}

// statusError is a non-200 answer. It keeps the status, and whether Clerk
// said the secret key is invalid, but never the body or the request headers.
type statusError struct {
	status        int
	invalidSecret bool
}

func (e *statusError) Error() string {
	if e.invalidSecret {
		return fmt.Sprintf("HTTP status %d: Clerk says the secret key is invalid", e.status)
	}
	return fmt.Sprintf("HTTP status %d", e.status)
}

// clerkAPIError is the part of a Clerk Backend API error that matters here.
type clerkAPIError struct {
	Code string `json:"code"`
}

// newStatusError recognises Clerk's Backend API answer to a wrong secret
// key: a 401 whose body has an error with code "clerk_key_invalid".
func newStatusError(resp *http.Response) *statusError {
	e := &statusError{status: resp.StatusCode}
	if resp.StatusCode != http.StatusUnauthorized {
		return e
	}
	var doc struct {
		Errors []clerkAPIError `json:"errors"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(body, &doc) == nil {
		e.invalidSecret = slices.Contains(doc.Errors, clerkAPIError{Code: "clerk_key_invalid"})
	}
	return e
}

func (s *Set) logFailure(err error, trigger string, attempt int) {
	fields := []zap.Field{zap.String("url", s.source), zap.String("trigger", trigger), zap.Int("attempt", attempt)}
	var se *statusError
	if errors.As(err, &se) {
		fields = append(fields, zap.Int("status", se.status))
		if se.invalidSecret {
			s.logger.Error("Clerk rejected the secret key used to fetch the JWKS: check the configured secret key; retrying slowly", fields...)
			return
		}
	}
	// A *url.Error repeats the URL, query included: log only its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s.logger.Warn("fetching JWKS failed", append(fields, zap.Error(err))...)
}

// install puts a good answer in service and reports whether it changed the
// keys. Either way it renews the keys' age: the issuer vouched for them.
func (s *Set) install(keys map[string]rsaKey) bool {
	s.mu.Lock()
	d := diffKeys(s.keys, keys)
	if d.changed() {
		s.keys = keys
	}
	s.fetchedAt = s.opts.Clock.Now()
	s.mu.Unlock()
	if !d.changed() {
		return false
	}
	s.logger.Info("JWKS key set changed",
		zap.String("url", s.source),
		zap.Strings("added", d.added),
		zap.Strings("removed", d.removed),
		zap.Strings("replaced", d.replaced))
	return true
}
