package clerkauth

import (
	"errors"
	"net/http"
	"net/url"
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
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	back := scheme + "://" + r.Host + r.URL.RequestURI()
	u := *signIn
	q := u.Query()
	q.Set("redirect_url", back)
	u.RawQuery = q.Encode()
	return u.String()
}

// isPreflight reports a CORS preflight, which browsers send without
// credentials: rejecting it would break every cross-origin API call.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions &&
		r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// sameHeaderVariable reports whether header names a and b become the same
// variable in a CGI/WSGI server (HTTP_X_USER_ID): case and '-' vs '_' do not
// matter there, so a client could smuggle X_User_Id past a check for X-User-Id.
func sameHeaderVariable(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldHeaderByte(a[i]) != foldHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 'A'
	}
	return c
}

// stripHeaders deletes every client-sent header that some upstream could
// read as one of the owned names.
func stripHeaders(h http.Header, owned []string) {
	for name := range h {
		for _, o := range owned {
			if sameHeaderVariable(name, o) {
				delete(h, name)
				break
			}
		}
	}
}
