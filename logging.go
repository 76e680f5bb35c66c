package clerkauth

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
)

// logReject logs a refused or anonymous request at debug level: the reason
// and where the token came from, never the token.
func (h *Handler) logReject(r *http.Request, ve *VerifyError, carrier string) {
	if c := h.logger.Check(zapcore.DebugLevel, "request not authenticated"); c != nil {
		c.Write(
			zap.String("reason", ve.Reason),
			zap.String("token_carrier", carrier),
			zap.String("detail", ve.Error()),
			zap.String("uri", loggedURI(r.RequestURI)),
		)
	}
}

// redactedParams are the query parameters whose values are credentials:
// the handshake's return-leg payload (a nonce the secret key turns into a
// session, or a JWT carrying one) and a development dev-browser token.
var redactedParams = []string{handshake.CookieHandshake, handshake.CookieHandshakeNonce, handshake.CookieDevBrowser}

// loggedURI is uri as logs may show it: the values of redactedParams
// replaced, names matched after percent-decoding as the handshake reads
// them, everything else as received.
func loggedURI(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	parts := strings.Split(query, "&")
	for i, part := range parts {
		name, _, _ := strings.Cut(part, "=")
		decoded, err := url.QueryUnescape(name)
		if err != nil {
			decoded = name
		}
		if slices.Contains(redactedParams, decoded) {
			parts[i] = name + "=REDACTED"
		}
	}
	return path + "?" + strings.Join(parts, "&")
}
