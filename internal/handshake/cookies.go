package handshake

import (
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Cookie names Clerk reads on the application's domain.
const (
	CookieSession        = "__session"
	CookieClientUAT      = "__client_uat"
	CookieDevBrowser     = "__clerk_db_jwt"
	CookieRefresh        = "__refresh"
	CookieHandshake      = "__clerk_handshake"
	CookieHandshakeNonce = "__clerk_handshake_nonce"
	CookieRedirectCount  = "__clerk_redirect_count"
)

// Cookies are a request's cookies as Clerk's SDK reads them. An empty value
// counts as absent, as it does in Clerk's `getCookie(name) || undefined`.
type Cookies map[string]string

// ParseCookies reads the Cookie header the way Clerk's SDK does (the cookie
// package, v1.1.1): pairs split on ';', the name and value trimmed of
// spaces and tabs, a value with '%' percent-decoded when that yields UTF-8,
// and the FIRST occurrence of a name wins. Unlike net/http it keeps values
// with characters RFC 6265 forbids, so that both sides see the same cookie.
// Several Cookie header lines are joined with "; " (HTTP/2 crumbs).
func ParseCookies(h http.Header) Cookies {
	s := strings.Join(h.Values("Cookie"), "; ")
	out := Cookies{}
	for s != "" {
		pair, rest, _ := strings.Cut(s, ";")
		s = rest
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			// cookie@1.1.1 skips ahead to the segment holding the next '=';
			// a segment without one is ignored either way.
			continue
		}
		name = strings.Trim(name, " \t")
		if _, seen := out[name]; seen {
			continue
		}
		out[name] = percentDecode(strings.Trim(value, " \t"))
	}
	return out
}

// percentDecode is decodeURIComponent, leaving the value as it is when that
// would throw.
func percentDecode(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	d, err := url.PathUnescape(v)
	if err != nil || !utf8.ValidString(d) {
		return v
	}
	return d
}

func (c Cookies) get(name string) string { return c[name] }

func suffixed(name, suffix string) string { return name + "_" + suffix }

// UsesSuffixedCookies is Clerk's usesSuffixedCookies: whether this
// instance's __session, __client_uat and __clerk_db_jwt are the suffixed
// ones (__session_<suffix>, ...), which clerk-js sets when several Clerk
// apps share a domain. The rules run in Clerk's order; the first that
// matches decides. The tokens are read WITHOUT verification: this only
// chooses which cookie is then verified.
func UsesSuffixedCookies(c Cookies, inst *Instance, now time.Time) bool {
	suffixedUAT := c.get(suffixed(CookieClientUAT, inst.CookieSuffix))
	uat := c.get(CookieClientUAT)
	suffixedSession := c.get(suffixed(CookieSession, inst.CookieSuffix))
	session := c.get(CookieSession)

	var sessionJWT, suffixedJWT peeked
	var sessionOK, suffixedOK bool
	if session != "" {
		sessionJWT, sessionOK = peek(session)
		if !sessionOK || !sessionJWT.truthyClaim("iss") {
			// 1. This app's plain session without iss: Clerk then answers
			// signed-out (token-invalid) rather than loop through handshakes.
			return false
		}
		if !belongsTo(sessionJWT, inst.FrontendAPI) {
			// 2. The plain session is another Clerk instance's.
			return true
		}
	}
	if suffixedUAT == "" && suffixedSession == "" {
		// 3. This instance never set suffixed cookies.
		return false
	}
	if suffixedSession != "" {
		suffixedJWT, suffixedOK = peek(suffixedSession)
	}
	// uat values compare as strings: absent is not "0".
	if suffixedUAT != "0" && uat != "0" && sessionJWT.claimNumberOrZero("iat") > suffixedJWT.claimNumberOrZero("iat") {
		// 4. The plain session is the newer one.
		return false
	}
	if suffixedUAT == "0" && uat != "0" {
		// 5. Signed in through the plain cookies only.
		return false
	}
	if !inst.Live && suffixedUAT != "0" && uat == "0" && suffixedOK {
		// 6. Development: an expired suffixed session loses. Clerk truncates
		// now with `>> 0`, i.e. to whole seconds.
		if exp, ok := suffixedJWT.claimNumber("exp"); ok && exp <= float64(now.Unix()) {
			return false
		}
	}
	if suffixedUAT == "" && suffixedSession != "" {
		// 7. The Frontend API has suffixed cookies turned off.
		return false
	}
	return true
}

// belongsTo is Clerk's tokenBelongsToInstance: the unverified iss, with
// every http:// and https:// removed, is the publishable key's Frontend API
// host (never the proxy).
func belongsTo(p peeked, frontendAPI string) bool {
	iss, ok := p.payload["iss"].(string)
	if !ok {
		return false
	}
	return stripSchemes(iss) == frontendAPI
}

// stripSchemes is iss.replace(/https?:\/\//gi, "").
func stripSchemes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if n := schemeAt(s[i:]); n > 0 {
			i += n
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func schemeAt(s string) int {
	for _, p := range []string{"https://", "http://"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return len(p)
		}
	}
	return 0
}

// instanceCookie is Clerk's getSuffixedOrUnSuffixedCookie.
func instanceCookie(c Cookies, inst *Instance, useSuffixed bool, name string) string {
	if useSuffixed {
		return c.get(suffixed(name, inst.CookieSuffix))
	}
	return c.get(name)
}

// SessionCookie is this instance's session token from the cookies ("" when
// there is none): __session_<suffix> or __session, as UsesSuffixedCookies
// decides.
func SessionCookie(c Cookies, inst *Instance, now time.Time) string {
	return instanceCookie(c, inst, UsesSuffixedCookies(c, inst, now), CookieSession)
}
