package clerkapi

// Endpoints, the "endpoint" an Observer is told of: method and path as the
// pinned SDK calls them. They are the whole set, so a metric labelled with
// them stays bounded.
const (
	EndpointHandshakePayload = "GET /v1/clients/handshake_payload"
	EndpointAPIKeyVerify     = "POST /api_keys/verify"
	EndpointM2MTokenVerify   = "POST /m2m_tokens/verify"
	EndpointOAuthTokenVerify = "POST /oauth_applications/access_tokens/verify"
	EndpointGetUser          = "GET /v1/users/{user_id}"
	EndpointGetOrganization  = "GET /v1/organizations/{organization_id}"
)

// Resources enrichment caches, the "resource" an Observer's EnrichLookup
// is told of.
const (
	ResourceUser         = "user"
	ResourceOrganization = "organization"
)

// Outcomes of an enrichment look-up, the "result" an Observer's
// EnrichLookup is told of.
const (
	// LookupHit: a fresh entry answered, or a "not found" still kept.
	LookupHit = "hit"
	// LookupStale: an entry past its TTL but within MaxStale answered,
	// while a background call refreshes it.
	LookupStale = "stale"
	// LookupMiss: no entry could answer; the caller joined a request in
	// flight or made one, which the bucket may refuse.
	LookupMiss = "miss"
)

// Results of a request sent to Clerk, the "result" an Observer's Call is
// told of. They are the whole set, one per kind of Error plus success.
const (
	// ResultOK: Clerk answered 2xx with what was asked, a verified token,
	// a handshake payload's directives, a user or an organization.
	ResultOK = "ok"
	// ResultInvalid: Clerk said the value is unknown or invalid (400, 404,
	// 422), or answered a token as revoked or expired (ErrNotFound): for
	// enrichment, a user or organization that does not exist.
	ResultInvalid = "invalid"
	// ResultUnauthorized: Clerk refused the secret key (401,
	// ErrUnauthorized).
	ResultUnauthorized = "unauthorized"
	// ResultUnavailable: no usable answer: Clerk's own 429, a 5xx or any
	// other status, a timeout, a network error, a malformed or oversized
	// answer (ErrUnavailable).
	ResultUnavailable = "unavailable"
)

// Observer is told what a Client does, for metrics. Every field is
// optional. The funcs run on the request path, concurrently, with
// arguments drawn only from the constants above (never a token, nonce or
// key): they must be safe for concurrent use and quick, e.g. a counter's
// Inc.
type Observer struct {
	// Call is told of every request sent to Clerk, once its answer is
	// read: its endpoint (Endpoint*) and result (Result*). Calls shared by
	// several callers are told of once; calls the bucket refused or values
	// that could not be valid are not requests, and are not told of.
	Call func(endpoint, result string)
	// MachineLookup is told, for every VerifyMachineToken of a token that
	// could be valid, whether the cache answered it (hit) or not (a miss
	// joins a request in flight or makes one, which the bucket may
	// refuse).
	MachineLookup func(hit bool)
	// EnrichLookup is told, for every GetUser or GetOrganization of an id
	// that could be valid, its resource (Resource*) and how the cache
	// answered (Lookup*).
	EnrichLookup func(resource, result string)
	// Limited is told of every request the token bucket refused
	// (ErrRateLimited), by endpoint (Endpoint*): the calls dropped to keep
	// within Clerk's rate limit.
	Limited func(endpoint string)
}

// Indexes of the results, for counters kept in arrays.
const (
	resultOK = iota
	resultInvalid
	resultUnauthorized
	resultUnavailable
	resultCount
)

var resultLabels = [resultCount]string{ResultOK, ResultInvalid, ResultUnauthorized, ResultUnavailable}

// resultOf is the result of a request that err ended; nil is success.
func resultOf(err error) int {
	switch {
	case err == nil:
		return resultOK
	case isKind(err, ErrNotFound):
		return resultInvalid
	case isKind(err, ErrUnauthorized):
		return resultUnauthorized
	default:
		return resultUnavailable
	}
}

func (o *Observer) call(endpoint string, result int) {
	if o.Call != nil {
		o.Call(endpoint, resultLabels[result])
	}
}

func (o *Observer) machineLookup(hit bool) {
	if o.MachineLookup != nil {
		o.MachineLookup(hit)
	}
}

func (o *Observer) enrichLookup(resource, result string) {
	if o.EnrichLookup != nil {
		o.EnrichLookup(resource, result)
	}
}

func (o *Observer) limited(endpoint string) {
	if o.Limited != nil {
		o.Limited(endpoint)
	}
}
