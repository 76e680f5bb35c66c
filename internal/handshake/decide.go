// Package handshake is the decision logic of Clerk's authenticateRequest
// (@clerk/backend 3.25.0) for browser sessions: given a request, it says
// signed in, signed out, or redirect through the Frontend API's handshake,
// with Clerk's reason, and builds the redirect byte for byte as Clerk's SDK
// does. It does no I/O: tokens are verified through a callback, and the
// return leg's network half (the nonce) belongs to the caller.
//
// Not implemented: satellite domains, organization sync (Clerk's
// active-organization-mismatch), and refresh through __refresh, which
// needs a Backend API call per expired token (see refreshNotAtEdge).
package handshake

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Instance is the Clerk instance the requests belong to, from its
// publishable key and configuration. Satellite instances are not supported.
type Instance struct {
	// FrontendAPI is the host the publishable key decodes to, e.g.
	// clerk.example.com. It is also the expected iss host of session tokens.
	FrontendAPI string
	// Live is a pk_live_ key (production); otherwise the instance is a
	// development one, with a dev browser.
	Live bool
	// CookieSuffix is the key's cookie suffix, as in __session_<suffix>.
	CookieSuffix string
	// ProxyURL, if set, serves the Frontend API instead of FrontendAPI in
	// the handshake redirect: an absolute http(s) URL, or a path starting
	// with "/" on the request's own origin.
	ProxyURL string
	// AuthorizedParties are origins other than the request's own that may
	// receive a development instance's __clerk_redirect_url redirect.
	AuthorizedParties []string
}

// Request is what Decide reads of a request.
type Request struct {
	// URL is the public, absolute URL the browser asked for: the caller
	// resolves scheme and host under its own trusted-proxy policy.
	URL    *url.URL
	Method string
	// Header supplies Cookie, Authorization, Sec-Fetch-Dest, Accept and
	// Referer.
	Header http.Header
	Now    time.Time
}

// Verify verifies a session token and returns "" if it is valid, or the
// Clerk reason it is not (token-expired, token-not-active-yet,
// token-iat-in-the-future, token-invalid-signature, ...). Decide calls it at
// most once per request.
type Verify func(token string) (reason string)

// Outcome is how a request ends, named as Clerk's AuthStatus.
type Outcome uint8

// The outcomes of Decide.
const (
	SignedOut Outcome = iota
	SignedIn
	Handshake
)

func (o Outcome) String() string {
	switch o {
	case SignedIn:
		return "signed-in"
	case Handshake:
		return "handshake"
	}
	return "signed-out"
}

// Where the token of a signed-in request was found.
const (
	CarrierCookie = "cookie"
	CarrierHeader = "header"
)

// Decision is the verdict on one request.
type Decision struct {
	Outcome Outcome
	// Reason is Clerk's reason for a sign-out or a handshake; "" when
	// signed in. A sign-out keeps the reason the handshake would have had
	// when the request may not be redirected (API calls, the loop guard).
	Reason string
	// Token is the verified session token, when signed in; Carrier says
	// where it came from.
	Token   string
	Carrier string
	// Location is the handshake redirect (a 307 with Cache-Control:
	// no-store), and SetCookie the __clerk_redirect_count cookie to send
	// with it.
	Location  string
	SetCookie string
	// LoopStopped: the request would have been a handshake, but the
	// redirect-loop guard stopped it.
	LoopStopped bool
}

// Decide runs Clerk's authenticateRequest decision on a request with no
// handshake payload (see HandshakePayload), in Clerk's order.
func Decide(inst *Instance, req *Request, verify Verify) Decision {
	s := newState(inst, req)
	if s.headerToken != "" {
		return s.headerPath(verify)
	}
	return s.cookiePath(verify)
}

// state is what Clerk's AuthenticateContext derives from a request.
type state struct {
	inst          *Instance
	req           *Request
	cookies       Cookies
	query         []pair
	suffixed      bool
	sessionCookie string
	headerToken   string
	clientUAT     float64
	devBrowser    string
	count         float64
}

func newState(inst *Instance, req *Request) *state {
	s := &state{inst: inst, req: req, cookies: ParseCookies(req.Header), query: parseForm(req.URL.RawQuery)}
	s.suffixed = UsesSuffixedCookies(s.cookies, inst, req.Now)
	s.sessionCookie = instanceCookie(s.cookies, inst, s.suffixed, CookieSession)
	s.headerToken = BearerToken(headerValue(req.Header, "Authorization"))
	s.clientUAT = jsParseInt(instanceCookie(s.cookies, inst, s.suffixed, CookieClientUAT))
	s.devBrowser = s.queryValue(paramDevBrowser)
	if s.devBrowser == "" {
		s.devBrowser = instanceCookie(s.cookies, inst, s.suffixed, CookieDevBrowser)
	}
	s.count = redirectCount(s.cookies)
	return s
}

// BearerToken is the token of an Authorization value as Clerk's SDK reads
// it: split at the first space, a lone word is the token itself, and only
// the Bearer scheme carries one. Unlike Clerk, the scheme is matched
// case-insensitively (RFC 9110 §11.1), as the rest of clerk_auth does.
func BearerToken(v string) string {
	if v == "" {
		return ""
	}
	scheme, rest, _ := strings.Cut(v, " ")
	token, _, _ := strings.Cut(rest, " ")
	if token == "" {
		return scheme
	}
	if strings.EqualFold(scheme, "Bearer") {
		return token
	}
	return ""
}

// queryValue is searchParams.get: the first value of name, "" if none.
func (s *state) queryValue(name string) string {
	for _, p := range s.query {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

func (s *state) queryHas(name string) bool {
	return slices.ContainsFunc(s.query, func(p pair) bool { return p.name == name })
}

// headerPath is authenticateRequestWithTokenInHeader: cookies are ignored,
// except that an expired header token on a page load gets a handshake.
func (s *state) headerPath(verify Verify) Decision {
	tok := s.headerToken
	if p, ok := peek(tok); ok && (isMachineJWT(tok, p) || nonSessionCategory(p)) {
		return signedOut(ReasonTypeMismatch)
	}
	if reason := verify(tok); reason != "" {
		return s.verifyFailed(reason)
	}
	return Decision{Outcome: SignedIn, Token: tok, Carrier: CarrierHeader}
}

// cookiePath is authenticateRequestWithTokenInCookie from row 1 on (the
// handshake payload, row 0, is the caller's).
func (s *state) cookiePath(verify Verify) Decision {
	if d, ok := s.primarySync(); ok {
		return d
	}
	if !s.inst.Live && s.queryHas(paramDevBrowser) {
		return s.maybeHandshake(ReasonDevBrowserSync, "")
	}
	if !s.inst.Live && s.devBrowser == "" {
		return s.maybeHandshake(ReasonDevBrowserMissing, "")
	}
	hasClient, hasSession := s.clientUAT != 0, s.sessionCookie != ""
	switch {
	case !hasClient && !hasSession:
		return signedOut(ReasonTokenAndUATMissing)
	case !hasClient:
		return s.maybeHandshake(ReasonTokenWithoutUAT, "")
	case !hasSession:
		return s.maybeHandshake(ReasonUATWithoutToken, "")
	}
	tok := s.sessionCookie
	p, ok := peek(tok)
	if !ok {
		return signedOut(ReasonTokenInvalid)
	}
	if isMachineJWT(tok, p) || nonSessionCategory(p) {
		return signedOut(ReasonTypeMismatch)
	}
	if iat, ok := p.claimNumber("iat"); ok && iat < s.clientUAT {
		// Minted before the client's last sign-in change (a sign-out or a
		// session switch in another tab): stale.
		return s.maybeHandshake(ReasonIATBeforeUAT, "")
	}
	if reason := verify(tok); reason != "" {
		return s.verifyFailed(reason)
	}
	if s.crossOriginSync() {
		return s.maybeHandshake(ReasonCrossOriginSync, "")
	}
	return Decision{Outcome: SignedIn, Token: tok, Carrier: CarrierCookie}
}

func signedOut(reason string) Decision { return Decision{Outcome: SignedOut, Reason: reason} }

// verifyFailed is handleSessionTokenError: only the time-based failures,
// which a fresh token cures, lead to a handshake.
func (s *state) verifyFailed(reason string) Decision {
	switch reason {
	case VerifyExpired:
		return s.maybeHandshake(expiredReason(s.refreshCause()), "")
	case VerifyNotActive:
		return s.maybeHandshake(ReasonSessionTokenNBF, "")
	case VerifyIATInFuture:
		return s.maybeHandshake(ReasonSessionTokenIATInFuture, "")
	}
	return signedOut(reason)
}

// refreshCause is why the expired token was not refreshed through the
// (suffixed only) __refresh cookie.
func (s *state) refreshCause() string {
	switch {
	case s.req.Method != http.MethodGet:
		return refreshNonGet
	case s.cookies.get(suffixed(CookieRefresh, s.inst.CookieSuffix)) == "":
		return refreshNoCookie
	}
	return refreshNotAtEdge
}

// maybeHandshake is handleMaybeHandshakeStatus: a request that may not be
// redirected, or that has been redirected LoopLimit times already, is
// signed out with the same reason. location overrides the Frontend API
// handshake URL.
func (s *state) maybeHandshake(reason, location string) Decision {
	if !Eligible(s.req.Method, s.req.Header) {
		return signedOut(reason)
	}
	if location == "" {
		var ok bool
		location, ok = handshakeURL(s.frontendAPI(), s.req.URL, reason, s.suffixed, s.sessionToken(), s.devBrowser, s.inst.Live)
		if !ok {
			return signedOut(reason)
		}
	}
	// Clerk stops only at exactly LoopLimit, so a counter above it
	// redirects again; here it is a ceiling.
	if s.count >= LoopLimit {
		return Decision{Outcome: SignedOut, Reason: reason, LoopStopped: true}
	}
	return Decision{Outcome: Handshake, Reason: reason, Location: location, SetCookie: redirectCountCookie(s.count)}
}

// sessionToken is what the handshake hands the Frontend API as __session:
// the instance's session cookie, else the header token.
func (s *state) sessionToken() string {
	if s.sessionCookie != "" {
		return s.sessionCookie
	}
	return s.headerToken
}

// frontendAPI is where the handshake goes: the proxy if there is one (a
// path is on the request's origin), else the key's Frontend API host.
func (s *state) frontendAPI() string {
	switch {
	case strings.HasPrefix(s.inst.ProxyURL, "/"):
		return origin(s.req.URL) + s.inst.ProxyURL
	case s.inst.ProxyURL != "":
		return s.inst.ProxyURL
	}
	return s.inst.FrontendAPI
}

// HandshakePayload is the return leg's payload, if the request carries one:
// the query parameter, else the (unsuffixed) cookie. When both a nonce and a
// token are present Clerk resolves the nonce.
func HandshakePayload(u *url.URL, c Cookies) (nonce, token string) {
	q := parseForm(u.RawQuery)
	first := func(name string) string {
		i := slices.IndexFunc(q, func(p pair) bool { return p.name == name })
		if i >= 0 && q[i].value != "" {
			return q[i].value
		}
		return c.get(name)
	}
	return first(paramHandshakeNonce), first(paramHandshake)
}
