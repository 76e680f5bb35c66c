package clerkauth

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// Attacks on where the token travels: the Authorization header, the session
// cookie, and places it must never be read from.

// authorizationCases: how the Authorization header is read. The scheme
// is case-insensitive and followed by 1*SP (RFC 9110 §11.4, RFC 6750 §2.1);
// anything that is not exactly one bearer token is an error, never a guess.
func authorizationCases(f *forger) []attackCase {
	auth := func(v ...string) http.Header { return http.Header{"Authorization": v} }
	return []attackCase{
		{name: "lowercase bearer", header: auth("bearer " + f.valid), status: 200, user: validUser},
		{name: "uppercase BEARER", header: auth("BEARER " + f.valid), status: 200, user: validUser},
		{name: "double space", header: auth("Bearer  " + f.valid), status: 200, user: validUser},
		{name: "trailing whitespace", raw: rawRequest("GET", "/req/x", "Authorization: Bearer "+f.valid+" \t"), status: 200, user: validUser},
		// Clerk's SDK accepts a bare token without a scheme; so do we.
		{name: "no scheme", header: auth(f.valid), status: 200, user: validUser},
		{name: "tab after the scheme", header: auth("Bearer\t" + f.valid), reason: ReasonTokenInvalid},
		{name: "scheme only", header: auth("Bearer"), reason: ReasonTokenInvalid},
		{name: "scheme and spaces", raw: rawRequest("GET", "/req/x", "Authorization: Bearer    "), reason: ReasonTokenInvalid},
		{name: "two tokens", header: auth("Bearer " + f.valid + " " + f.valid), reason: ReasonTokenInvalid},
		{name: "comma-joined tokens", header: auth("Bearer " + f.valid + ", Bearer " + f.valid), reason: ReasonTokenInvalid},
		{name: "scheme repeated", header: auth("Bearer Bearer " + f.valid), reason: ReasonTokenInvalid},
		{name: "two Authorization headers", header: auth("Bearer "+f.valid, "Bearer "+f.valid), reason: ReasonTokenInvalid},
		{name: "Authorization and a lowercase duplicate", raw: rawRequest("GET", "/req/x", "Authorization: Bearer "+f.valid, "authorization: Bearer "+f.mint(clerktest.WithClaims(map[string]any{"sub": "user_second"}))), reason: ReasonTokenInvalid},
		{name: "valid Bearer and a Basic header", header: auth("Bearer "+f.valid, "Basic dXNlcjpwYXNz"), reason: ReasonTokenInvalid},
		{name: "Basic", header: auth("Basic dXNlcjpwYXNz"), reason: ReasonTokenMissing},
		{name: "JWT under Basic", header: auth("Basic " + f.valid), reason: ReasonTokenMissing},
		{name: "JWT under another scheme", header: auth("Token " + f.valid), reason: ReasonTokenMissing},
		{name: "scheme with a colon", header: auth("Bearer: " + f.valid), reason: ReasonTokenMissing},
		{name: "token in Proxy-Authorization", header: http.Header{"Proxy-Authorization": {"Bearer " + f.valid}}, reason: ReasonTokenMissing},
		{name: "token in X-Forwarded-Authorization", header: http.Header{"X-Forwarded-Authorization": {"Bearer " + f.valid}}, reason: ReasonTokenMissing},
	}
}

// cookieCases: the header wins over the cookie, without fallback. If an
// invalid header fell back to a valid cookie, a cross-site request riding
// the victim's cookie could not be told from an API call; if a valid header
// were overridden by a cookie, the caller would act as someone else.
func cookieCases(f *forger) []attackCase {
	cookie := f.mint(claimsOpt("sub", "user_cookie"))
	hdr := f.mint(claimsOpt("sub", "user_header"))
	both := func(auth, cookies string) http.Header {
		h := http.Header{"Cookie": {cookies}}
		if auth != "" {
			h["Authorization"] = []string{auth}
		}
		return h
	}
	expired := f.mint(claimsOpt("exp", time.Now().Add(-time.Hour).Unix()))
	return []attackCase{
		{name: "valid cookie, invalid header", header: both("Bearer x.y.z", "__session="+cookie), reason: ReasonTokenInvalid},
		{name: "valid cookie, forged-signature header", header: both("Bearer "+f.mint(clerktest.WithKey(freshRSAKey())), "__session="+cookie), reason: ReasonInvalidSignature},
		{name: "valid cookie, expired header", header: both("Bearer "+expired, "__session="+cookie), reason: ReasonTokenExpired},
		{name: "valid cookie, empty Bearer", header: both("Bearer", "__session="+cookie), reason: ReasonTokenInvalid},
		{name: "invalid cookie, valid header", header: both("Bearer "+hdr, "__session=x.y.z"), status: 200, user: "user_header"},
		{name: "two valid identities: the header's wins", header: both("Bearer "+hdr, "__session="+cookie), status: 200, user: "user_header"},
		// A Basic header carries no bearer token, so the cookie is read:
		// documented behaviour (Clerk's SDK does the same).
		{name: "Basic header, valid cookie", header: both("Basic dXNlcjpwYXNz", "__session="+cookie), status: 200, user: "user_cookie"},
		{name: "Basic header, invalid cookie", header: both("Basic dXNlcjpwYXNz", "__session=x.y.z"), reason: ReasonTokenInvalid},
		{name: "cookie only", header: both("", "__session="+f.valid), status: 200, user: validUser},
		{name: "first of two session cookies is invalid", header: both("", "__session=x.y.z; __session="+cookie), reason: ReasonTokenInvalid},
		{name: "first of two session cookies is valid", header: both("", "__session="+cookie+"; __session=x.y.z"), status: 200, user: "user_cookie"},
		{name: "cookie name in another case", header: both("", "__Session="+cookie), reason: ReasonTokenMissing},
		{name: "look-alike cookie name", header: both("", "__session_x="+cookie+"; session="+cookie+"; __clerk_db_jwt="+cookie), reason: ReasonTokenMissing},
		{name: "expired cookie on the optional route", path: "/opt/x", header: both("", "__session="+expired), status: 200, reason: ReasonTokenExpired},
	}
}

// queryCases: tokens in URLs leak into access logs, Referer headers and
// browser history, so they are never read, in any mode.
func queryCases(f *forger) []attackCase {
	form := func(path string) func(*testing.T, *attackSuite) (*http.Response, string) {
		return func(t *testing.T, s *attackSuite) (*http.Response, string) {
			req, err := http.NewRequest(http.MethodPost, caddyURL(path),
				strings.NewReader("__session="+f.valid+"&token="+f.valid+"&access_token="+f.valid))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return roundTrip(t, s.tester, req)
		}
	}
	return []attackCase{
		{name: "__session", path: "/req/x?__session=" + f.valid, reason: ReasonTokenMissing},
		{name: "token", path: "/req/x?token=" + f.valid, reason: ReasonTokenMissing},
		{name: "access_token", path: "/req/x?access_token=" + f.valid, reason: ReasonTokenMissing},
		{name: "authorization", path: "/req/x?authorization=Bearer%20" + f.valid, reason: ReasonTokenMissing},
		{name: "__clerk_db_jwt", path: "/req/x?__clerk_db_jwt=" + f.valid, reason: ReasonTokenMissing},
		{name: "all of them on the optional route", path: "/opt/x?__session=" + f.valid + "&token=" + f.valid + "&access_token=" + f.valid, status: 200, reason: ReasonTokenMissing},
		{name: "form body", send: form("/req/x"), reason: ReasonTokenMissing},
		{name: "form body on the optional route", send: form("/opt/x"), status: 200, reason: ReasonTokenMissing},
	}
}
