package clerktest

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Paths of the handshake endpoints, relative to Issuer.URL.
const (
	// HandshakePath is the Frontend API endpoint a handshake redirects the
	// browser to.
	HandshakePath = "/v1/client/handshake"
	// HandshakePayloadPath is the Backend API endpoint that resolves a
	// handshake nonce; it requires SecretKey.
	HandshakePayloadPath = "/v1/clients/handshake_payload"
)

// Query parameters of the return leg, appended to redirect_url.
const (
	HandshakeTokenParam = "__clerk_handshake"
	HandshakeNonceParam = "__clerk_handshake_nonce"
)

// NonceLifetime is how long a handshake nonce can be resolved. Clerk does
// not document it; a browser comes back within a second.
const NonceLifetime = 5 * time.Minute

// maxNonces bounds the nonces kept for the Backend API, oldest dropped
// first, so that a test hammering the endpoint cannot grow memory.
const maxNonces = 4096

type nonceEntry struct {
	directives []string
	minted     time.Time
}

// HandshakeFault makes the Frontend API handshake endpoint misbehave. The
// zero HandshakeFault is "no fault".
type HandshakeFault struct {
	// Fault applies before anything else, as on the JWKS endpoints: Status
	// 500 or CloseConn for an endpoint that is down, Delay or Hang for a
	// slow one.
	Fault
	// TokenKey signs the __clerk_handshake JWT instead of the Issuer's
	// key (the header kid stays the Issuer's): a forged handshake.
	TokenKey *rsa.PrivateKey
	// TokenCat is the header "cat" of the __clerk_handshake JWT instead of
	// CatSession, e.g. CatTemplate, which verifiers must refuse.
	TokenCat string
	// UnknownNonce redirects with a nonce the Backend API never heard of.
	UnknownNonce bool
	// ExpiredSessions hands out session tokens that expired long ago
	// (issued an hour earlier, with Clerk's 60-second lifetime), as a
	// Frontend API whose clock is far behind the app's would: the app
	// hand-shakes again with each one, until its redirect-loop guard stops
	// it.
	ExpiredSessions bool
}

// SetHandshakeFault makes the handshake endpoint misbehave as f describes,
// from the next request on. The JWKS endpoints are not affected. It panics
// if f.Status is not a valid HTTP status code.
func (i *Issuer) SetHandshakeFault(f HandshakeFault) {
	f.Fault = checkedFault("SetHandshakeFault", f.Fault)
	i.hs.fault.Store(&f)
}

// ClearHandshakeFault restores normal handshakes.
func (i *Issuer) ClearHandshakeFault() { i.hs.fault.Store(nil) }

// HandshakeStats counts the traffic of the handshake endpoints.
type HandshakeStats struct {
	Requests       int64 // requests to HandshakePath, whatever their outcome
	Redirects      int64 // of them, 307s back to the app with a payload
	PayloadCalls   int64 // requests to HandshakePayloadPath, whatever their outcome
	PayloadsServed int64 // of them, 200s with the directives of a nonce
}

// HandshakeStats returns the counters so far.
func (i *Issuer) HandshakeStats() HandshakeStats {
	return HandshakeStats{
		Requests:       i.hs.requests.Load(),
		Redirects:      i.hs.redirects.Load(),
		PayloadCalls:   i.hs.payloadCalls.Load(),
		PayloadsServed: i.hs.payloadsServed.Load(),
	}
}

// HandshakeRequest is one request as the handshake endpoint received it.
// A Frontend API proxy (Clerk's proxy_url setup) must forward the browser's
// request with the headers Clerk requires; tests read them here.
type HandshakeRequest struct {
	Host     string      // the Host header the request arrived with
	Path     string      // the URL path, after any proxy prefix was stripped
	RawQuery string      // the query as received
	Header   http.Header // a copy of every header
}

// maxSeen bounds the recorded handshake requests, oldest dropped first.
const maxSeen = 64

// HandshakeRequests returns the latest requests to HandshakePath, oldest
// first, whatever their outcome (at most the last 64).
func (i *Issuer) HandshakeRequests() []HandshakeRequest {
	i.hs.mu.Lock()
	defer i.hs.mu.Unlock()
	out := slices.Clone(i.hs.seen)
	for k := range out {
		out[k].Header = out[k].Header.Clone()
	}
	return out
}

func (i *Issuer) recordHandshake(r *http.Request) {
	i.hs.mu.Lock()
	defer i.hs.mu.Unlock()
	i.hs.seen = append(i.hs.seen, HandshakeRequest{Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone()})
	if n := len(i.hs.seen) - maxSeen; n > 0 {
		i.hs.seen = slices.Delete(i.hs.seen, 0, n)
	}
}

// HandshakeURL is the Frontend API handshake endpoint, URL + HandshakePath.
func (i *Issuer) HandshakeURL() string { return i.URL + HandshakePath }

// handshakeHandler serves GET HandshakePath?redirect_url=…&format=…, the
// fake of Clerk's Frontend API handshake: it reads its own client session
// from ClientCookie and sends the browser back to redirect_url with fresh
// cookies for the app, as a nonce (format=nonce, Clerk's development shape)
// or a signed JWT (any other format).
func (i *Issuer) handshakeHandler(w http.ResponseWriter, r *http.Request) {
	i.hs.requests.Add(1)
	i.recordHandshake(r)
	if !i.enter() {
		return
	}
	defer i.inflight.Done()

	if r.Method != http.MethodGet {
		// Clerk's Frontend API answers 405 too, which is why SDKs only
		// hand-shake GETs.
		w.Header().Set("Allow", "GET")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", "Only GET is supported."))
		return
	}
	f := i.hs.fault.Load()
	if f != nil && i.serveFault(w, r, &f.Fault) {
		return
	}
	q := r.URL.Query()
	back, err := absoluteHTTP(q.Get("redirect_url"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("form_param_format_invalid", err.Error()))
		return
	}
	directives := signedOutDirectives()
	if s := i.clientFor(r); s != nil {
		var skew []Option
		if f != nil && f.ExpiredSessions {
			i.mu.RLock()
			now := i.now
			i.mu.RUnlock()
			skew = []Option{IssuedAt(now().Add(-time.Hour)), Lifetime(DefaultLifetime)}
		}
		directives = signedInDirectives(i.mintFor(s, back.Scheme+"://"+back.Host, skew...), s.uat)
	}

	var param string
	if q.Get("format") == "nonce" {
		nonce := rand.Text()
		if f == nil || !f.UnknownNonce {
			i.storeNonce(nonce, directives)
		}
		param = HandshakeNonceParam + "=" + nonce
	} else {
		param = HandshakeTokenParam + "=" + i.handshakeToken(directives, f)
	}
	// Appended to the query as received: the app compares and strips it,
	// and must find every other parameter untouched.
	if back.RawQuery == "" {
		back.RawQuery = param
	} else {
		back.RawQuery += "&" + param
	}
	i.hs.redirects.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", back.String())
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// absoluteHTTP parses the app URL a handshake returns to.
func absoluteHTTP(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("redirect_url is missing")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("redirect_url %q is not an absolute http(s) URL", raw)
	}
	return u, nil
}

// signedInDirectives are the Set-Cookie values handing the app a fresh
// session token.
func signedInDirectives(token string, uat int64) []string {
	return []string{
		SessionCookie + "=" + token + "; Path=/; SameSite=Lax",
		ClientUATCookie + "=" + strconv.FormatInt(uat, 10) + "; Path=/; SameSite=Lax",
	}
}

// signedOutDirectives clear the app's session: how a sign-out elsewhere
// reaches it.
func signedOutDirectives() []string {
	return []string{
		SessionCookie + "=; Path=/; Max-Age=0; SameSite=Lax",
		ClientUATCookie + "=0; Path=/; SameSite=Lax",
	}
}

// handshakeToken is the __clerk_handshake JWT: {"handshake": directives},
// signed like a session token, with f's forgeries applied.
func (i *Issuer) handshakeToken(directives []string, f *HandshakeFault) string {
	i.mu.RLock()
	signer := i.signer
	i.mu.RUnlock()
	key, cat := signer.Private, CatSession
	if f != nil && f.TokenKey != nil {
		key = f.TokenKey
	}
	if f != nil && f.TokenCat != "" {
		cat = f.TokenCat
	}
	header := map[string]any{"alg": "RS256", "cat": cat, "kid": signer.KID, "typ": "JWT"}
	tok, err := Sign(header, map[string]any{"handshake": directives}, "RS256", key)
	if err != nil {
		panic("clerktest: signing a handshake token: " + err.Error()) // RS256 with an RSA key cannot fail
	}
	return tok
}

func (i *Issuer) storeNonce(nonce string, directives []string) {
	i.mu.RLock()
	now := i.now
	i.mu.RUnlock()
	i.hs.mu.Lock()
	defer i.hs.mu.Unlock()
	if i.hs.nonces == nil {
		i.hs.nonces = make(map[string]nonceEntry)
	}
	i.hs.nonces[nonce] = nonceEntry{directives: directives, minted: now()}
	i.hs.order = append(i.hs.order, nonce)
	for len(i.hs.order) > maxNonces {
		delete(i.hs.nonces, i.hs.order[0])
		i.hs.order = i.hs.order[1:]
	}
}

// takeNonce returns the directives of a live nonce and forgets it: nonces
// are single-use here (Clerk does not say; a replayed nonce would hand the
// session to whoever saw the URL).
func (i *Issuer) takeNonce(nonce string) ([]string, bool) {
	i.mu.RLock()
	now := i.now
	i.mu.RUnlock()
	i.hs.mu.Lock()
	defer i.hs.mu.Unlock()
	e, ok := i.hs.nonces[nonce]
	delete(i.hs.nonces, nonce)
	if !ok || now().Sub(e.minted) > NonceLifetime {
		return nil, false
	}
	return e.directives, true
}
