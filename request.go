package clerkauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Where a token was found, for logs ("token carrier" in Clerk's terms).
const (
	carrierHeader = "header"
	carrierCookie = "cookie"
)

// sessionCookie is the cookie clerk-js sets on the application's domain.
const sessionCookie = "__session"

var errAmbiguousAuthorization = errors.New("more than one Authorization header")

// tokenFromRequest finds the token the way Clerk's SDK does: the
// Authorization header wins, else the __session cookie. A header with another
// scheme (Basic, ...) carries no token and is not an error. The query string
// is never read: tokens there end up in access logs and browser history.
func tokenFromRequest(r *http.Request, pk *publishableKey, now time.Time) (token, carrier string, err error) {
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
	if tok := sessionCookieFor(r, pk, now); tok != "" {
		if strings.Contains(tok, " ") {
			// Go's cookie parser keeps inner spaces; a JWT has none.
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

// clientUATCookie holds the unix time of the client's last sign-in change;
// "0" or absent means signed out.
const clientUATCookie = "__client_uat"

// sessionCookieFor picks the session cookie the way Clerk's SDK does when
// several Clerk apps share a domain: clerk-js then sets both the plain
// __session and the instance's suffixed __session_<suffix>, and
// usesSuffixedCookies() decides which pair (session + __client_uat) is
// this instance's. Without a publishable key only the plain cookie exists.
func sessionCookieFor(r *http.Request, pk *publishableKey, now time.Time) string {
	plain := cookieValue(r, sessionCookie)
	if pk == nil {
		return plain
	}
	if useSuffixedCookies(r, pk, plain, now) {
		return cookieValue(r, sessionCookie+"_"+pk.suffix)
	}
	return plain
}

func useSuffixedCookies(r *http.Request, pk *publishableKey, plain string, now time.Time) bool {
	suffixed := cookieValue(r, sessionCookie+"_"+pk.suffix)
	suffixedUAT, hasSuffixedUAT := uatCookie(r, clientUATCookie+"_"+pk.suffix)
	plainUAT, _ := uatCookie(r, clientUATCookie)
	plainClaims := peekClaims(plain)

	switch {
	case plain != "" && plainClaims.Iss == "":
		// 1. A plain session without iss (or undecodable) is this app's:
		// Clerk then reports signed-out rather than looping a handshake.
		return false
	case plain != "" && stripScheme(plainClaims.Iss) != pk.frontendAPI:
		// 2. The plain session belongs to another Clerk instance.
		return true
	case !hasSuffixedUAT && suffixed == "":
		// 3. This instance never set suffixed cookies.
		return false
	}
	suffixedClaims := peekClaims(suffixed)
	switch {
	case suffixedUAT != 0 && plainUAT != 0 && plainClaims.Iat > suffixedClaims.Iat:
		// 4. The plain session is the newer one.
		return false
	case suffixedUAT == 0 && plainUAT != 0:
		// 5. Signed in through plain cookies only.
		return false
	case !pk.live && suffixedUAT != 0 && plainUAT == 0 && suffixedClaims.Exp != 0 &&
		suffixedClaims.Exp <= float64(now.Unix()):
		// 6. Development only: a stale suffixed session loses to the plain one.
		return false
	case suffixed != "" && !hasSuffixedUAT:
		// 7. The Frontend API has suffixed cookies turned off.
		return false
	}
	return true
}

// cookieValue returns the first cookie named name. Go splits the header on
// ';' and '=' without percent-decoding, which is what Clerk requires.
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// uatCookie reads a __client_uat cookie as Clerk does: parseInt(v) || 0.
func uatCookie(r *http.Request, name string) (int64, bool) {
	c, err := r.Cookie(name)
	if err != nil {
		return 0, false
	}
	n, _ := strconv.ParseInt(c.Value, 10, 64)
	return n, true
}

type peekedClaims struct {
	Iss string  `json:"iss"`
	Iat float64 `json:"iat"`
	Exp float64 `json:"exp"`
}

// peekClaims decodes a token's payload WITHOUT verifying it. It only ever
// chooses between two cookies; whatever is chosen is then fully verified.
func peekClaims(token string) peekedClaims {
	var c peekedClaims
	_, payload, _, ok := splitJWT(token)
	if !ok {
		return c
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return c
	}
	_ = json.Unmarshal(b, &c)
	return c
}

func stripScheme(u string) string {
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return rest
	}
	return strings.TrimPrefix(u, "http://")
}
