package clerkapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// handshakePayloadPath is ClientAPI.getHandshakePayload's endpoint in the
// pinned SDK: clients base path, versioned URL.
const handshakePayloadPath = "/v1/clients/handshake_payload"

// MaxNonceLen bounds a handshake nonce. Clerk documents no format; its
// nonces travel in a URL query and a cookie, so anything longer than this,
// or outside ValidNonce's alphabet, is taken for forged.
const MaxNonceLen = 256

// ValidNonce reports whether s could be a handshake nonce: 1 to MaxNonceLen
// characters from RFC 3986's unreserved set (letters, digits, "-._~"), the
// characters a value put in a URL by Frontend API needs no escaping for.
// HandshakePayload never sends anything else to Clerk.
func ValidNonce(s string) bool {
	if len(s) == 0 || len(s) > MaxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// HandshakePayload resolves the nonce of a handshake's return leg
// (__clerk_handshake_nonce) into its Set-Cookie directives, through
// GET /v1/clients/handshake_payload?nonce=…. The directives are returned
// verbatim and in order, as the SDK applies them.
//
// A nonce that fails ValidNonce is ErrNotFound without a call. Concurrent
// calls for one nonce share a request.
func (c *Client) HandshakePayload(ctx context.Context, nonce string) ([]string, error) {
	if !ValidNonce(nonce) {
		c.stats.refused.Add(1)
		return nil, &Error{Kind: ErrNotFound, Endpoint: EndpointHandshakePayload, detail: "the nonce cannot be valid, so it was not sent"}
	}
	k := call{
		endpoint: EndpointHandshakePayload,
		method:   http.MethodGet,
		path:     handshakePayloadPath,
		query:    url.Values{"nonce": {nonce}},
	}
	d, err, _ := c.flights.do(ctx, callKey(k.endpoint, nonce), nil, func(ctx context.Context) ([]string, error) {
		return exchange(ctx, c, k, decodeDirectives)
	})
	if err = ownError(k.endpoint, err); err != nil {
		return nil, err
	}
	// Each caller gets its own slice: they all shared one answer.
	return slices.Clone(d), nil
}

// decodeDirectives checks a 2xx answer of the handshake payload endpoint
// and returns its directives.
func decodeDirectives(body []byte) ([]string, error) {
	var doc struct {
		Directives *[]string `json:"directives"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Directives == nil {
		return nil, &Error{Kind: ErrUnavailable, Endpoint: EndpointHandshakePayload, Status: http.StatusOK,
			detail: `the answer is not {"directives": [strings]}`}
	}
	for _, d := range *doc.Directives {
		// Each one becomes a Set-Cookie header: a line break would be a
		// header injection, and an empty one means nothing.
		if d == "" || strings.ContainsAny(d, "\r\n\x00") {
			return nil, &Error{Kind: ErrUnavailable, Endpoint: EndpointHandshakePayload, Status: http.StatusOK,
				detail: "a directive is empty or holds a line break"}
		}
	}
	return *doc.Directives, nil
}
