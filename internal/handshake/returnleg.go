package handshake

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The return leg: the Frontend API sends the browser back with Set-Cookie
// directives, inside a JWT (__clerk_handshake) or behind a nonce
// (__clerk_handshake_nonce, resolved by the caller through the Backend
// API). These helpers need no network.

// ReturnLegError is a handshake token or directive refused, with Clerk's
// reason code. It never contains the token or a cookie value.
type ReturnLegError struct {
	Reason string
	Detail string
}

func (e *ReturnLegError) Error() string { return e.Reason + ": " + e.Detail }

// handshakeAlgs are the algorithms Clerk's assertHeaderAlgorithm accepts.
var handshakeAlgs = []string{"RS256", "RS384", "RS512"}

// HandshakeDirectives verifies a __clerk_handshake JWT as Clerk's
// verifyHandshakeToken does and returns its handshake claim: decode, typ
// absent or "JWT", alg RS256/RS384/RS512, cat absent or the session or
// ignore category, then verifySignature, which must check the signature
// against the instance's key set (by kid). Like Clerk, it checks no time
// claim. A handshake claim that is not an array yields no directives; an
// array holding anything but strings is refused. verifySignature's error
// is wrapped into the returned one, so it must not quote the token.
func HandshakeDirectives(token string, verifySignature func(token string) error) ([]string, error) {
	p, ok := peek(token)
	if !ok {
		return nil, &ReturnLegError{ReasonTokenInvalid, "the handshake token is not a JWT"}
	}
	if typ, present := p.header["typ"]; present && typ != "JWT" {
		return nil, &ReturnLegError{ReasonTokenInvalid, "the handshake token's typ is not JWT"}
	}
	if alg, _ := p.header["alg"].(string); !slices.Contains(handshakeAlgs, alg) {
		return nil, &ReturnLegError{ReasonInvalidAlgorithm, "the handshake token's alg is not RS256, RS384 or RS512"}
	}
	if nonSessionCategory(p) {
		// AISEC-85: a JWT template signed by the same key could otherwise
		// smuggle in a handshake claim.
		return nil, &ReturnLegError{ReasonTokenInvalid, "invalid handshake token category"}
	}
	if err := verifySignature(token); err != nil {
		return nil, &ReturnLegError{ReasonInvalidSignature, "handshake signature is invalid: " + err.Error()}
	}
	list, ok := p.payload["handshake"].([]any)
	if !ok {
		return nil, nil
	}
	out := make([]string, 0, len(list))
	for i, v := range list {
		d, ok := v.(string)
		if !ok {
			return nil, &ReturnLegError{ReasonTokenInvalid, fmt.Sprintf("handshake directive %d is a %T, not a string", i, v)}
		}
		out = append(out, d)
	}
	return out, nil
}

// Limits on what a handshake may set: a browser keeps about 4 KiB per
// cookie, and Clerk sets a handful of cookies.
const (
	maxDirectiveLen = 8 << 10
	maxDirectives   = 32
)

// SafeDirectives keeps the directives that may go out as Set-Cookie headers,
// in order, and says why each other one was dropped. A directive is kept
// when it has no CR, LF or NUL (nor any other control character but tab),
// is at most 8 KiB, parses with net/http's Set-Cookie parser, and names one
// of this instance's Clerk cookies: __session, __client_uat,
// __clerk_db_jwt (plain or with this instance's suffix), __refresh_<suffix>,
// __clerk_handshake, __clerk_handshake_nonce or __clerk_redirect_count.
// Clerk applies every directive verbatim; restricting the names keeps a
// forged or replayed payload from planting arbitrary cookies on the
// application's domain. Dropped reasons name the cookie, never its value.
func SafeDirectives(directives []string, inst *Instance) (kept []string, dropped []string) {
	allowed := map[string]bool{
		CookieHandshake: true, CookieHandshakeNonce: true, CookieRedirectCount: true,
		suffixed(CookieRefresh, inst.CookieSuffix): true,
	}
	for _, name := range []string{CookieSession, CookieClientUAT, CookieDevBrowser} {
		allowed[name] = true
		allowed[suffixed(name, inst.CookieSuffix)] = true
	}
	for i, d := range directives {
		if i >= maxDirectives {
			dropped = append(dropped, fmt.Sprintf("directive %d: more than %d directives", i, maxDirectives))
			continue
		}
		if why := unsafeDirective(d, allowed); why != "" {
			dropped = append(dropped, fmt.Sprintf("directive %d: %s", i, why))
			continue
		}
		kept = append(kept, d)
	}
	return kept, dropped
}

func unsafeDirective(d string, allowed map[string]bool) string {
	if len(d) > maxDirectiveLen {
		return fmt.Sprintf("longer than %d bytes", maxDirectiveLen)
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return "contains a control character"
		}
	}
	c, err := http.ParseSetCookie(d)
	if err != nil {
		return "not a valid Set-Cookie value"
	}
	if !allowed[c.Name] {
		return fmt.Sprintf("sets %q, not one of this instance's Clerk cookies", c.Name)
	}
	return ""
}

// SessionFromDirectives is the new session token a handshake carries, as
// Clerk's resolveHandshake picks it: the value of the LAST directive whose
// name starts with __session, the name being the text before the first '='
// and the value the text between the first and second '=' of the part
// before the first ';'. ok is false when there is none or it is empty,
// which Clerk answers with signed-out session-token-missing (the directives
// still apply: that is how a sign-out reaches the app).
func SessionFromDirectives(directives []string) (token string, ok bool) {
	for _, d := range directives {
		first, _, _ := strings.Cut(d, ";")
		parts := strings.SplitN(first, "=", 3)
		if strings.HasPrefix(parts[0], CookieSession) {
			token = ""
			if len(parts) > 1 {
				token = parts[1]
			}
		}
	}
	return token, token != ""
}

// CleanURL is where a development return leg sends the browser: the URL
// without __clerk_handshake, __clerk_help, __clerk_db_jwt and
// __clerk_handshake_nonce, the rest of the query re-serialized as Clerk's
// SDK does.
func CleanURL(u *url.URL) string {
	c := withoutParams(u, returnLegParams...)
	s := href(c)
	if u.Fragment != "" {
		s += "#" + u.EscapedFragment()
	}
	return s
}

// returnLegParams are the query parameters a return leg leaves behind.
var returnLegParams = []string{paramHandshake, paramHandshakeHelp, paramDevBrowser, paramHandshakeNonce}

// HasReturnLegParams reports whether u carries any parameter CleanURL
// removes.
func HasReturnLegParams(u *url.URL) bool {
	return slices.ContainsFunc(parseForm(u.RawQuery), func(p pair) bool {
		return slices.Contains(returnLegParams, p.name)
	})
}
