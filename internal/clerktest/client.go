package clerktest

import (
	"crypto/rand"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// Cookies of a signed-in browser. The app's two are set on the app's host
// (the sign-in page and the app share 127.0.0.1, and cookies ignore ports);
// ClientCookie is the fake Frontend API's own, like Clerk's __client.
const (
	// ClientUATCookie holds the Unix seconds of the client's last sign-in
	// or sign-out; "0" means signed out.
	ClientUATCookie = "__client_uat"
	// ClientCookie identifies the client session at the handshake endpoint.
	ClientCookie = "__client"
	// ClientCookiePath scopes ClientCookie to the Frontend API endpoints,
	// so that the app on the same host never receives it.
	ClientCookiePath = "/v1/client"
)

// clientSession is one signed-in browser as the Frontend API knows it.
type clientSession struct {
	userID string
	sid    string
	uat    int64    // Unix seconds of the sign-in: the __client_uat value
	opts   []Option // minting options of every token of this session

	cookieValue string // the ClientCookie value it is stored under
}

// handshakeState is the Issuer's client sessions and handshake bookkeeping;
// its zero value is ready.
type handshakeState struct {
	mu      sync.Mutex
	clients map[string]*clientSession // by ClientCookie value
	nonces  map[string]nonceEntry
	order   []string // nonces oldest first, to bound the store

	fault        atomic.Pointer[HandshakeFault]
	payloadFault atomic.Pointer[PayloadFault]

	// seen are the latest requests to the handshake endpoint, oldest
	// first, at most maxSeen: what a Frontend API proxy forwarded.
	seen []HandshakeRequest

	requests, redirects, payloadCalls, payloadsServed atomic.Int64
}

// SignInClient starts a client session for userID, as the sign-in page does
// when a button is pressed, and returns its ClientCookie: send it to
// HandshakeURL to get fresh tokens for that user. opts apply to every token
// minted for the session, after "sub", "sid" and "azp" (the redirect_url's
// origin); e.g. Lifetime(5*time.Second). Its __client_uat is the Issuer's
// clock now, in Unix seconds.
func (i *Issuer) SignInClient(userID string, opts ...Option) *http.Cookie {
	return i.newClientSession(userID, opts).cookie()
}

// SignOutClient ends the client session of c, a ClientCookie: the next
// handshake with it hands out signed-out directives. Unknown sessions are
// ignored.
func (i *Issuer) SignOutClient(c *http.Cookie) {
	if c == nil {
		return
	}
	i.hs.mu.Lock()
	delete(i.hs.clients, c.Value)
	i.hs.mu.Unlock()
}

func (i *Issuer) newClientSession(userID string, opts []Option) *clientSession {
	i.mu.RLock()
	now := i.now
	i.mu.RUnlock()
	s := &clientSession{
		userID:      userID,
		sid:         "sess_" + rand.Text(),
		uat:         now().Unix(),
		opts:        append([]Option(nil), opts...),
		cookieValue: "client_" + rand.Text(),
	}
	i.hs.mu.Lock()
	if i.hs.clients == nil {
		i.hs.clients = make(map[string]*clientSession)
	}
	i.hs.clients[s.cookieValue] = s
	i.hs.mu.Unlock()
	return s
}

// clientFor is the live session of the request's ClientCookie, or nil.
func (i *Issuer) clientFor(r *http.Request) *clientSession {
	c, err := r.Cookie(ClientCookie)
	if err != nil {
		return nil
	}
	i.hs.mu.Lock()
	defer i.hs.mu.Unlock()
	return i.hs.clients[c.Value]
}

// mintFor mints a session token of s for an app at origin, as Clerk does
// on sign-in and on every refresh: same sid, azp the app's origin. extra
// apply last, after the session's own options.
func (i *Issuer) mintFor(s *clientSession, origin string, extra ...Option) string {
	opts := append([]Option{WithClaims(map[string]any{
		"sub": s.userID,
		"sid": s.sid,
		// Clerk sets azp to the origin of the page that asked for the
		// token, which is what authorized_parties checks.
		"azp": origin,
	})}, s.opts...)
	return i.Mint(append(opts, extra...)...)
}

func (s *clientSession) cookie() *http.Cookie {
	return &http.Cookie{
		Name:     ClientCookie,
		Value:    s.cookieValue,
		Path:     ClientCookiePath,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// appCookies are what the sign-in page sets on the app's host, as clerk-js
// would: the session token and the client's uat.
func appCookies(token string, uat int64) []*http.Cookie {
	return []*http.Cookie{{
		Name:  SessionCookie,
		Value: token,
		Path:  "/",
		// No Max-Age: the token's exp, not the cookie's, ends the session,
		// so an expired token is still sent and clerk_auth can hand-shake
		// or redirect. HttpOnly because no script here needs it (clerk-js,
		// which refreshes it, would).
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}, {
		// Not HttpOnly: clerk-js reads it.
		Name:     ClientUATCookie,
		Value:    strconv.FormatInt(uat, 10),
		Path:     "/",
		SameSite: http.SameSiteLaxMode,
	}}
}

// signedOutCookies undo appCookies and the client cookie.
func signedOutCookies() []*http.Cookie {
	return []*http.Cookie{
		{Name: SessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode},
		{Name: ClientUATCookie, Value: "0", Path: "/", SameSite: http.SameSiteLaxMode},
		{Name: ClientCookie, Path: ClientCookiePath, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode},
	}
}
