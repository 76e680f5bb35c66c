package clerkapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// MachineKind is a class of opaque machine token, named as Clerk's
// TokenType names it.
type MachineKind string

// The opaque machine-token classes the Backend API verifies.
const (
	APIKey     MachineKind = "api_key"
	M2MToken   MachineKind = "m2m_token"
	OAuthToken MachineKind = "oauth_token"
)

// machineEndpoint is what the pinned SDK sends for one kind: the path
// (built with skipApiVersionInUrl, so without /v1), the JSON field that
// carries the token, the "object" of a valid answer, and the token prefix.
type machineEndpoint struct {
	kind     MachineKind
	endpoint string
	path     string
	field    string
	object   string
	prefix   string
}

var machineEndpoints = [...]machineEndpoint{
	{APIKey, EndpointAPIKeyVerify, "/api_keys/verify", "secret", "api_key", "ak_"},
	{M2MToken, EndpointM2MTokenVerify, "/m2m_tokens/verify", "token", "machine_to_machine_token", "mt_"},
	{OAuthToken, EndpointOAuthTokenVerify, "/oauth_applications/access_tokens/verify", "access_token", "clerk_idp_oauth_access_token", "oat_"},
}

func endpointOf(kind MachineKind) (int, bool) {
	for i, e := range machineEndpoints {
		if e.kind == kind {
			return i, true
		}
	}
	return 0, false
}

// KindOf is the class of an opaque machine token by its prefix, as the
// SDK's getMachineTokenType tells them apart; ok is false for anything
// else (a JWT, a session token).
func KindOf(token string) (kind MachineKind, ok bool) {
	for _, e := range machineEndpoints {
		if strings.HasPrefix(token, e.prefix) {
			return e.kind, true
		}
	}
	return "", false
}

// Bounds of an opaque machine token, prefix included. Clerk documents no
// format; its SDK fixtures hold 37 to 44 characters after the prefix
// ("mt_8XOIucKvqHVr5tYP123456789abcdefghij",
// "ak_LCWGdaM8mv8K4PC/57IICZQXAeWfCgF30DZaFXHoGn9="), so a secret shorter
// than MinMachineTokenBody cannot be one of Clerk's random ones, and
// MaxMachineTokenLen leaves ten times room above them.
const (
	MinMachineTokenBody = 16
	MaxMachineTokenLen  = 512
)

// ValidMachineToken reports whether token could be an opaque token of
// kind: its prefix, MinMachineTokenBody to MaxMachineTokenLen characters,
// and RFC 6750's b64token alphabet (letters, digits, "-._~+/", then "="
// padding only at the end), which admits both base64 alphabets the SDK's
// fixtures use and everything an Authorization: Bearer header can carry.
// VerifyMachineToken never sends anything else to Clerk.
func ValidMachineToken(kind MachineKind, token string) bool {
	i, ok := endpointOf(kind)
	if !ok || !strings.HasPrefix(token, machineEndpoints[i].prefix) || len(token) > MaxMachineTokenLen {
		return false
	}
	body := token[len(machineEndpoints[i].prefix):]
	if len(body) < MinMachineTokenBody {
		return false
	}
	padded := false
	for j := 0; j < len(body); j++ {
		c := body[j]
		switch {
		case c == '=':
			padded = true
			continue
		case padded:
			return false
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return body[0] != '='
}

// Machine is a machine token that Clerk verified. Its slices and Claims
// are shared with the cache and every other caller: read them, never
// modify them.
type Machine struct {
	// Kind is the class Clerk verified the token as.
	Kind MachineKind
	// ID is Clerk's id of the key or token (an M2M token's is "mt_…").
	ID string
	// Subject is "user_…" or "org_…" (API keys), "mch_…" (M2M tokens) or
	// "user_…" (OAuth tokens).
	Subject string
	// Scopes are the granted scopes; for an M2M token, the machine IDs it
	// may call.
	Scopes []string
	// Name is an API key's name; empty for the other kinds.
	Name string
	// ClientID is an OAuth token's OAuth application; empty otherwise.
	ClientID string
	// Audience is an OAuth token's "aud", which the pinned SDK checks
	// against a configured audience; nil if Clerk sent none.
	Audience []string
	// Claims is the custom claims JSON object of an API key or M2M token,
	// nil if it has none.
	Claims json.RawMessage
	// Expiration is when the token stops being valid; zero if never.
	Expiration time.Time
	// Revoked and Expired are as Clerk answered; VerifyMachineToken only
	// returns Machines with both false.
	Revoked, Expired bool
}

// machineJSON is the answer of every verify endpoint (snake_case, mapped
// by "object" in the SDK's Deserializer); fields a kind lacks stay empty.
type machineJSON struct {
	Object     string          `json:"object"`
	ID         string          `json:"id"`
	Subject    string          `json:"subject"`
	Scopes     []string        `json:"scopes"`
	Name       string          `json:"name"`
	ClientID   string          `json:"client_id"`
	Audience   []string        `json:"aud"`
	Claims     json.RawMessage `json:"claims"`
	Revoked    bool            `json:"revoked"`
	Expired    bool            `json:"expired"`
	Expiration *int64          `json:"expiration"`
}

// secondsBelow tells the units of "expiration" apart. The pinned SDK's
// JSDoc says milliseconds for API keys and M2M tokens but seconds for
// OAuth tokens, and Go SDK fixtures use seconds: a value below 1e11 is
// seconds (as milliseconds it would be 1973; as seconds it runs to 5138).
const secondsBelow = 100_000_000_000

func expirationTime(v *int64) time.Time {
	switch {
	case v == nil || *v <= 0:
		return time.Time{}
	case *v < secondsBelow:
		return time.Unix(*v, 0)
	default:
		return time.UnixMilli(*v)
	}
}

// decodeMachine checks a 2xx answer of e and maps it. Clerk answers
// revoked, expired and unknown tokens with 404, and the SDK never looks at
// the flags; an answer that sets them anyway is refused as not found.
func decodeMachine(e machineEndpoint, body []byte) (Machine, error) {
	var doc machineJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || dec.More() || doc.Object != e.object || doc.ID == "" || doc.Subject == "" {
		return Machine{}, &Error{Kind: ErrUnavailable, Endpoint: e.endpoint, Status: http.StatusOK,
			detail: `the answer is not a verified ` + e.object + ` object with an id and a subject`}
	}
	if doc.Revoked || doc.Expired {
		return Machine{}, &Error{Kind: ErrNotFound, Endpoint: e.endpoint, Status: http.StatusOK,
			detail: "Clerk answered the token as revoked or expired"}
	}
	claims := doc.Claims
	if len(claims) == 0 || string(claims) == "null" {
		claims = nil
	} else if claims[0] != '{' {
		return Machine{}, &Error{Kind: ErrUnavailable, Endpoint: e.endpoint, Status: http.StatusOK,
			detail: "the answer's claims are not a JSON object"}
	}
	return Machine{
		Kind:       e.kind,
		ID:         doc.ID,
		Subject:    doc.Subject,
		Scopes:     doc.Scopes,
		Name:       doc.Name,
		ClientID:   doc.ClientID,
		Audience:   doc.Audience,
		Claims:     claims,
		Expiration: expirationTime(doc.Expiration),
	}, nil
}

// VerifyMachineToken verifies an opaque machine token of kind through
// the Backend API endpoint the pinned SDK uses, POST /api_keys/verify,
// /m2m_tokens/verify or /oauth_applications/access_tokens/verify with the
// token in a JSON body.
//
// A token that fails ValidMachineToken is ErrNotFound without a call.
// Results are cached (see MachineCacheConfig), concurrent calls for one
// token share one request, and each request draws from the bucket.
//
// maxAge is how old a cached valid answer may be for this caller: it is
// reused only while now < fetched+maxAge, and as always before the token's
// expiration and the cache's TTL. maxAge <= 0 means the TTL, and one
// above it is capped at it. Callers sharing a Client thus share its
// budget and cache yet each bound their own revocation delay. An unknown,
// revoked or expired answer is reused for NegativeTTL whatever maxAge is;
// an answer a request fetched while the caller waited is always taken.
//
// Errors: ErrNotFound for an unknown, revoked or expired token (Clerk's
// reason "token-invalid"), ErrUnauthorized if Clerk refuses the secret
// key, ErrUnavailable (and ErrRateLimited) when no answer can be had.
func (c *Client) VerifyMachineToken(ctx context.Context, kind MachineKind, token string, maxAge time.Duration) (Machine, error) {
	i, known := endpointOf(kind)
	if !known || !ValidMachineToken(kind, token) {
		c.stats.refused.Add(1)
		c.machineStats.refused.Add(1)
		endpoint := "verify " + string(kind)
		if known {
			endpoint = machineEndpoints[i].endpoint
		}
		return Machine{}, &Error{Kind: ErrNotFound, Endpoint: endpoint, detail: "the token cannot be valid, so it was not sent"}
	}
	e := machineEndpoints[i]
	key := callKey(e.endpoint, token)
	if m, err, ok := c.machines.get(key, maxAge); ok {
		c.lookedUp(true)
		return m, err
	}
	m, err, hit := c.machineFlights.do(ctx, key,
		func() (Machine, error, bool) { return c.machines.get(key, maxAge) },
		func(ctx context.Context) (Machine, error) {
			k := call{endpoint: e.endpoint, method: http.MethodPost, path: e.path, body: requestBody(e.field, token)}
			m, err := exchange(ctx, c, k, func(body []byte) (Machine, error) { return decodeMachine(e, body) })
			c.machineStats.counted(i, err)
			c.machines.put(key, m, err)
			return m, err
		})
	c.lookedUp(hit)
	return m, ownError(e.endpoint, err)
}

func (c *Client) lookedUp(hit bool) {
	if hit {
		c.machineStats.hits.Add(1)
	} else {
		c.machineStats.misses.Add(1)
	}
	c.observer.machineLookup(hit)
}

// requestBody is {"<field>": token}, as the SDK's JSON.stringify sends it.
func requestBody(field, token string) []byte {
	b, err := json.Marshal(map[string]string{field: token})
	if err != nil {
		panic("clerkapi: marshaling a string map: " + err.Error()) // cannot fail
	}
	return b
}
