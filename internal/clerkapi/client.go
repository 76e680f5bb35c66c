// Package clerkapi is a small typed client for the few Clerk Backend API
// endpoints clerk_auth calls at request time: the handshake payload, the
// verify endpoints of opaque machine tokens, and the users and
// organizations that enrichment hands to upstreams. Every call is treated as a
// budget: Clerk bills and rate-limits them per instance, so calls for the
// same value share one request, a process-wide token bucket bounds the call
// rate, and values that cannot be valid never leave the process.
//
// The secret key, and the nonces and tokens it resolves, never appear in an
// error or anywhere else this package produces.
package clerkapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Protocol constants of the pinned @clerk/backend 3.25.0
// (dist/chunk-*.mjs: API_URL, SUPPORTED_BAPI_VERSION, buildRequest).
const (
	// DefaultBaseURL is Clerk's Backend API.
	DefaultBaseURL = "https://api.clerk.com"
	// APIVersion is sent as Clerk-API-Version on every call, as the SDK
	// does: it pins the shape of the answers this package decodes.
	APIVersion = "2026-05-12"
	// UserAgent names this plugin, not Clerk's SDK, so that Clerk can tell
	// its traffic apart.
	UserAgent = "caddy-clerk-auth"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one call, connection to last body byte. A page
	// load waits on it, so it is short; a slow Clerk becomes a 503.
	DefaultTimeout = 5 * time.Second
	// DefaultRate is the calls per second the bucket refills. Clerk allows
	// 100 requests per 10 s to a development instance and 1,000 to a
	// production one, shared with every other server using the same secret
	// key; 20/s leaves a production instance four fifths of its budget and
	// still serves a handshake per page load for a busy site (each signed-in
	// user needs at most one per token lifetime, 60 s).
	DefaultRate = 20.0
	// DefaultBurst lets a short spike through (a deploy that makes every
	// open tab hand-shake at once) without letting a flood through.
	DefaultBurst = 40
	// MaxBodyBytes caps what is read from one answer. A handshake payload
	// is a handful of Set-Cookie lines, a verified machine token a few
	// hundred bytes plus its custom claims: a few KiB at most.
	MaxBodyBytes = 64 << 10
	// MaxResourceBodyBytes caps a user or organization answer instead: a
	// user carries every email address, phone number and external account
	// with its profile data, and its three metadata objects. An answer
	// over the cap is unavailable on every look-up, spending the budget,
	// so the cap is far above any real user's size.
	MaxResourceBodyBytes = 1 << 20
)

// Config configures a Client. Only SecretKey is required.
type Config struct {
	// SecretKey is the instance's "sk_…" key, sent as a bearer token.
	SecretKey string
	// BaseURL is the Backend API's origin, DefaultBaseURL if empty.
	BaseURL string
	// Timeout bounds each call; DefaultTimeout if zero.
	Timeout time.Duration
	// HTTPClient sends the calls; nil means one that does not follow
	// redirects (a redirect would carry the secret elsewhere).
	HTTPClient *http.Client
	// Rate and Burst size the token bucket every call of this Client
	// draws from; DefaultRate and DefaultBurst if zero.
	Rate  float64
	Burst int
	// Now is the clock of the bucket and of the caches; time.Now if nil.
	Now func() time.Time
	// Machine configures the machine-token result cache.
	Machine MachineCacheConfig
	// Enrich configures the user and organization caches.
	Enrich EnrichCacheConfig
	// Observer is told of calls, cache look-ups and refusals, for metrics.
	Observer Observer
}

// Client calls the Backend API of one Clerk instance. It is safe for
// concurrent use; share one per secret key, since its bucket and its
// shared calls only bound the traffic of its own callers.
type Client struct {
	secret   string
	base     string
	http     *http.Client
	timeout  time.Duration
	bucket   *bucket
	flights  flights[[]string]
	stats    counters
	observer Observer
	now      func() time.Time

	machineFlights flights[Machine]
	machines       *machineCache
	machineStats   machineCounters

	users *enricher[*User]
	orgs  *enricher[*Organization]
}

type counters struct {
	calls, limited, refused atomic.Int64
}

// Stats counts what a Client did with the calls asked of it.
type Stats struct {
	Calls   int64 // requests sent to Clerk
	Shared  int64 // calls answered by another caller's request in flight
	Limited int64 // calls refused by the bucket (ErrRateLimited)
	Refused int64 // calls refused before any request: a value that cannot be valid
}

// New checks cfg and returns a Client. Its error never contains the secret.
func New(cfg Config) (*Client, error) {
	if cfg.SecretKey == "" {
		return nil, errors.New("clerkapi: the secret key is empty")
	}
	if !printableASCII(cfg.SecretKey) {
		return nil, errors.New("clerkapi: the secret key contains spaces or characters that cannot go in an HTTP header")
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("clerkapi: base URL %q must be an absolute http(s) URL without query, fragment or user info", base)
	}
	if cfg.Rate < 0 || cfg.Burst < 0 || cfg.Timeout < 0 {
		return nil, errors.New("clerkapi: Rate, Burst and Timeout must not be negative")
	}
	machine, err := cfg.Machine.withDefaults()
	if err != nil {
		return nil, err
	}
	enrich, err := cfg.Enrich.withDefaults()
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	rate, burst := cfg.Rate, cfg.Burst
	if rate == 0 {
		rate = DefaultRate
	}
	if burst == 0 {
		burst = DefaultBurst
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Client{
		secret:   cfg.SecretKey,
		base:     strings.TrimRight(base, "/"),
		http:     client,
		timeout:  timeout,
		bucket:   newBucket(rate, burst, now),
		machines: newMachineCache(machine, now),
		observer: cfg.Observer,
		now:      now,
	}
	c.users = newEnricher(userResource, enrich, c)
	c.orgs = newEnricher(organizationResource, enrich, c)
	return c, nil
}

// Stats returns the Client's counters so far.
func (c *Client) Stats() Stats {
	return Stats{
		Calls: c.stats.calls.Load(),
		Shared: c.flights.joined.Load() + c.machineFlights.joined.Load() +
			c.users.flights.joined.Load() + c.orgs.flights.joined.Load(),
		Limited: c.stats.limited.Load(),
		Refused: c.stats.refused.Load(),
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// call is one Backend API request as an endpoint describes it. query or
// body holds the secret value being resolved, so neither is ever put in an
// error.
type call struct {
	endpoint string // one of the Endpoint* constants, for errors and the Observer
	method   string
	path     string
	query    url.Values
	body     []byte // JSON; nil for none
	maxBody  int    // what may be read of the answer; MaxBodyBytes if 0
}

// send performs one request, with the bucket already charged, and returns
// the body of a 2xx answer. Every failure is an *Error.
func (c *Client) send(ctx context.Context, k call) ([]byte, error) {
	target := c.base + k.path
	if len(k.query) > 0 {
		target += "?" + k.query.Encode()
	}
	var body io.Reader
	if k.body != nil {
		body = bytes.NewReader(k.body)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, target, body)
	if err != nil {
		// Only a bad method or base could fail here, and New checked the base.
		return nil, &Error{Kind: ErrUnavailable, Endpoint: k.endpoint, detail: "cannot build the request"}
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	req.Header.Set("Clerk-API-Version", APIVersion)
	req.Header.Set("User-Agent", UserAgent)
	// The SDK sends it on every call, GET included.
	req.Header.Set("Content-Type", "application/json")
	c.stats.calls.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(k.endpoint, err)
	}
	defer resp.Body.Close()
	limit := k.maxBody
	if limit == 0 {
		limit = MaxBodyBytes
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, transportError(k.endpoint, err)
	}
	if len(answer) > limit {
		return nil, &Error{Kind: ErrUnavailable, Endpoint: k.endpoint, Status: resp.StatusCode,
			detail: fmt.Sprintf("answer larger than %d bytes", limit)}
	}
	if resp.StatusCode/100 == 2 {
		return answer, nil
	}
	return nil, statusError(k.endpoint, resp, answer)
}
