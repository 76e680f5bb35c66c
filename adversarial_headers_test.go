package clerkauth

import (
	"net/http"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// Attacks on what reaches the upstream: forged identity headers, and
// headers smuggled through claim values.

// forgedHeaderCases: forward_header must be the only source of the identity
// headers, in every mode: a client copy (or a CGI look-alike such as
// X_User_Id, which becomes the same HTTP_X_USER_ID variable) must never
// reach the upstream. run() adds the forged copies to every request of the
// suite; these cases cover each mode once more, explicitly.
func forgedHeaderCases(f *forger) []attackCase {
	org := f.mint(clerktest.V1Org("org_1", "acme", "org:admin"))
	// Many copies: a strip loop that stopped after the first match, or
	// kept the last copy, would let one through.
	many := http.Header{"Authorization": {"Bearer " + f.valid}}
	for range 150 {
		many["X_User_Id"] = append(many["X_User_Id"], "user_"+forgedMarker)
		many["X-User-Id"] = append(many["X-User-Id"], "user_"+forgedMarker)
	}
	preflight := func(path string) attackCase {
		return attackCase{
			name: "CORS preflight on " + path, method: http.MethodOptions, path: path, status: 200,
			header: http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}},
		}
	}
	trailer := func(path, auth, declared string) []byte {
		lines := []string{"Transfer-Encoding: chunked"}
		if declared != "" {
			lines = append(lines, "Trailer: "+declared)
		}
		if auth != "" {
			lines = append(lines, "Authorization: Bearer "+auth)
		}
		req := string(rawRequest("POST", path, lines...))
		return []byte(req + "4\r\nbody\r\n0\r\nX-User-Id: user_" + forgedMarker + "\r\nX_User_Id: user_" + forgedMarker + "\r\nX-Org-Id: org_" + forgedMarker + "\r\n\r\n")
	}
	return []attackCase{
		{name: "required, valid token", header: bearer(f.valid), status: 200, user: validUser},
		{name: "required, valid token with an org", header: bearer(org), status: 200, user: validUser, org: "org_1"},
		{name: "required, no token", reason: ReasonTokenMissing},
		{name: "required, invalid token", header: bearer("x.y.z"), reason: ReasonTokenInvalid},
		{name: "optional, anonymous", path: "/opt/x", status: 200, reason: ReasonTokenMissing},
		{name: "optional, invalid token", path: "/opt/x", header: bearer("x.y.z"), status: 200, reason: ReasonTokenInvalid},
		{name: "optional, forged signature", path: "/opt/x", header: bearer(f.mint(clerktest.WithKey(freshRSAKey()))), status: 200, reason: ReasonInvalidSignature},
		{name: "optional, valid token", path: "/opt/x", header: bearer(f.valid), status: 200, user: validUser},
		{name: "optional, failing requirement", path: "/opt-admin/x", header: bearer(f.valid), status: 403, reason: ReasonMissingRole},
		{name: "optional, meeting requirement", path: "/opt-admin/x", header: bearer(f.mint(claimsOpt("roles", []string{"admin"}))), status: 200, user: validUser},
		{name: "failing requirement", path: "/admin/x", header: bearer(f.valid), status: 403, reason: ReasonMissingRole},
		{name: "meeting requirement", path: "/admin/x", header: bearer(f.mint(claimsOpt("roles", "admin"))), status: 200, user: validUser},
		{name: "300 forged copies", header: many, noForge: true, status: 200, user: validUser},
		{name: "look-alikes only, no token", header: http.Header{"X_USER_ID": {"user_" + forgedMarker}, "x_user-id": {"user_" + forgedMarker}}, noForge: true, reason: ReasonTokenMissing},
		// A preflight passes unauthenticated; it must still lose the
		// forged headers, and header_up placeholders must expand to
		// nothing rather than be forwarded literally.
		preflight("/req/x"),
		preflight("/opt/x"),
		preflight("/admin/x"),
		{name: "OPTIONS without preflight headers", method: http.MethodOptions, reason: ReasonTokenMissing},
		// A client naming the identity headers in Connection would make
		// reverse_proxy drop them as hop-by-hop (RFC 9110 §7.6.1): the
		// upstream would get a verified request without its identity.
		{name: "identity headers named in Connection", header: http.Header{"Authorization": {"Bearer " + org}, "Connection": {"X-User-Id, X-Org-Id, x_user_id"}}, status: 200, user: validUser, org: "org_1"},
		{name: "identity headers named in Connection, optional", path: "/opt/x", header: http.Header{"Authorization": {"Bearer " + org}, "Connection": {"keep-alive, X-User-Id", "X-Org-Id"}}, status: 200, user: validUser, org: "org_1"},
		// Trailers arrive after the handler ran: forged identity fields
		// in them must not be forwarded either.
		{name: "forged trailers, valid token", raw: trailer("/req/x", f.valid, "X-User-Id, X_User_Id, X-Org-Id"), status: 200, user: validUser},
		{name: "forged trailers, optional and anonymous", raw: trailer("/opt/x", "", "X-User-Id, X_User_Id, X-Org-Id"), status: 200, reason: ReasonTokenMissing},
		{name: "forged trailers under another declared name", raw: trailer("/req/x", f.valid, "X-Checksum"), status: 200, user: validUser},
		{name: "forged trailers, undeclared", raw: trailer("/req/x", f.valid, ""), status: 200, user: validUser},
	}
}

// claimInjectionCases: claim values are forwarded in headers. A claim the user
// controls (unsafe metadata copied into the session token) holding CR/LF
// must not smuggle a header to the upstream.
func claimInjectionCases(f *forger) []attackCase {
	plan := func(v string) http.Header {
		return bearer(f.mint(claimsOpt("metadata", map[string]any{"plan": v})))
	}
	return []attackCase{
		{name: "plain claim value is forwarded", header: plan("pro"), status: 200, user: validUser, plan: "pro"},
		// Placeholders percent-encode control characters: the value
		// arrives in one header, never as a smuggled second one, and the
		// request goes through (Go's transport would answer 502 to a raw
		// CR, LF or NUL).
		{name: "CRLF in a forwarded claim", header: plan("pro\r\nX-User-Id: user_admin"), status: 200, user: validUser, plan: "pro%0D%0AX-User-Id: user_admin"},
		{name: "LF in a forwarded claim", header: plan("pro\nX-User-Id: user_admin"), status: 200, user: validUser, plan: "pro%0AX-User-Id: user_admin"},
		{name: "NUL in a forwarded claim", header: plan("pro\x00"), status: 200, user: validUser, plan: "pro%00"},
		{name: "CRLF in sub", header: bearer(f.mint(claimsOpt("sub", "user_a\r\nX-Org-Id: org_admin"))), status: 200, user: "user_a%0D%0AX-Org-Id: org_admin"},
	}
}
