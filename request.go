package clerkauth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
)

// Where a token was found, for logs ("token carrier" in Clerk's terms).
const (
	carrierHeader = "header"
	carrierCookie = "cookie"
)

var errAmbiguousAuthorization = errors.New("more than one Authorization header")

// tokenFromRequest finds the token the way Clerk's SDK does: the
// Authorization header wins, else the __session cookie. A header with another
// scheme (Basic, ...) carries no token and is not an error. The query string
// is never read: tokens there end up in access logs and browser history.
func tokenFromRequest(r *http.Request, inst *handshake.Instance, now time.Time) (token, carrier string, err error) {
	switch auth := r.Header.Values("Authorization"); len(auth) {
	case 0:
	case 1:
		if tok, ok, err := bearerToken(auth[0]); err != nil {
			return "", carrierHeader, err
		} else if ok {
			return tok, carrierHeader, nil
		}
	default:
		return "", carrierHeader, errAmbiguousAuthorization
	}
	if tok := sessionCookie(r, inst, now); tok != "" {
		if strings.ContainsAny(tok, " \t") {
			// Clerk's cookie parser keeps inner spaces and tabs; a JWT has none.
			return "", carrierCookie, errors.New("the session cookie does not hold a single token")
		}
		return tok, carrierCookie, nil
	}
	return "", "", nil
}

// bearerToken parses one Authorization value. The scheme is matched
// case-insensitively (RFC 9110 §11.1) and must be followed by exactly one
// token; a bare JWT with no scheme is accepted too, as Clerk's SDK does.
func bearerToken(v string) (token string, ok bool, err error) {
	v = strings.TrimSpace(v)
	scheme, rest, hasSpace := strings.Cut(v, " ")
	if !hasSpace {
		if strings.Count(v, ".") == 2 {
			if strings.Contains(v, "\t") {
				// "Bearer\ta.b.c": RFC 9110 separates the scheme with SP
				// only, and a JWT has no whitespace.
				return "", false, errors.New("Authorization value is not a single token")
			}
			return v, true, nil
		}
		if _, ok := clerkapi.KindOf(v); ok {
			// As Clerk's parser: a value without a scheme is the token.
			return v, true, nil
		}
		if strings.EqualFold(v, "Bearer") {
			return "", false, errors.New("Bearer scheme without a token")
		}
		return "", false, nil
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	rest = strings.TrimLeft(rest, " ")
	// Two IndexByte scans beat ContainsAny on a long token.
	if rest == "" || strings.IndexByte(rest, ' ') >= 0 || strings.IndexByte(rest, '\t') >= 0 {
		return "", false, errors.New("Bearer credentials must be exactly one token")
	}
	return rest, true, nil
}

// isDocumentRequest tells a browser navigating to a page, which should be
// sent to sign in, from an API call, which should get a 401. Same rule as
// Clerk's handshake eligibility.
func isDocumentRequest(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	if dest := r.Header.Get("Sec-Fetch-Dest"); dest != "" {
		return dest == "document" || dest == "iframe"
	}
	return strings.HasPrefix(r.Header.Get("Accept"), "text/html")
}

// signInRedirect is signIn with redirect_url set to the absolute URL of r,
// so the sign-in page can send the user back.
func signInRedirect(signIn *url.URL, r *http.Request) string {
	back := requestOrigin(r) + r.URL.RequestURI()
	if public := publicURL(r); handshake.HasReturnLegParams(public) {
		// A spent handshake nonce or token must not come back after sign-in:
		// it would fail again and send the user to sign in once more.
		back = handshake.CleanURL(public)
	}
	u := *signIn
	q := u.Query()
	q.Set("redirect_url", back)
	u.RawQuery = q.Encode()
	return u.String()
}

// The preflight settings: pass CORS preflights unauthenticated (the
// default), or authenticate them like any other request.
const (
	preflightPass         = "pass"
	preflightAuthenticate = "authenticate"
)

// isPreflight reports a CORS preflight, which browsers send without
// credentials: rejecting it would break every cross-origin API call.
// Browsers never give one a body, so an OPTIONS that has one is not a
// preflight whatever its headers say, and cannot carry data to the upstream
// unauthenticated.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions &&
		r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != "" &&
		!mayHaveBody(r)
}

// mayHaveBody reports a request with a body: a Content-Length above 0, a
// Transfer-Encoding, or an HTTP/2 stream left open without a
// Content-Length (net/http then sets ContentLength to -1; an HTTP/2 request
// without a body ends its stream with the headers, and gets 0). HTTP/3
// reports -1 whenever Content-Length is absent, body or not, so there only
// a Content-Length above 0 counts.
func mayHaveBody(r *http.Request) bool {
	return r.ContentLength > 0 || len(r.TransferEncoding) > 0 ||
		r.ProtoMajor == 2 && r.ContentLength < 0
}

// sessionCookie is the session token in r's cookies, chosen and read as
// Clerk's SDK does (internal/handshake): with a publishable key, the
// instance's suffixed __session_<suffix> where Clerk's rules pick it.
func sessionCookie(r *http.Request, inst *handshake.Instance, now time.Time) string {
	cookies := handshake.ParseCookies(r.Header)
	if inst == nil {
		return cookies[handshake.CookieSession]
	}
	return handshake.SessionCookie(cookies, inst, now)
}
