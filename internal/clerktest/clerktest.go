// Package clerktest is a fake Clerk instance for tests and local development
// ONLY. It must never be used in production: its keys are throwaway and live
// in memory, its "secret key" is random, and its token minter exists to forge
// expired, unsigned, wrongly signed and otherwise malicious tokens on purpose.
//
// An Issuer serves a JSON Web Key Set on a loopback address (127.0.0.1
// unless NewAt names another; never on other interfaces) from two endpoints, mirroring the two places a Clerk verifier
// may fetch keys from:
//
//   - the Frontend API: GET {URL}/.well-known/jwks.json (no authentication);
//   - the Backend API: GET {URL}/v1/jwks with "Authorization: Bearer sk_test_…".
//
// With EnableSignIn it also serves a development sign-in page, standing in
// for Clerk's Account Portal in local demos: it sets the __session cookie for
// whoever presses a button.
//
// Like Clerk, it keeps its own client session (a cookie on its origin) and
// hands fresh session tokens back to the app through the handshake: the
// Frontend API's GET {URL}/v1/client/handshake and, for the nonce format, the
// Backend API's GET {URL}/v1/clients/handshake_payload. It issues opaque
// machine tokens and verifies them at the Backend API's POST endpoints, and
// serves the users and organizations a test sets up at the Backend API's
// GET /v1/users/{id} and /v1/organizations/{id}.
//
// SendWebhook delivers Clerk events signed as Clerk's Svix delivery signs
// them, so that tests and the demo can revoke a session or ban a user.
//
// Both JWKS endpoints can be made slow, broken or hostile with SetFault, and the
// key set can be rotated while serving. Mint produces RS256 session tokens
// shaped like Clerk's (v1 and v2), JWT-template and M2M tokens, and, through
// its options and the lower-level Sign and SegmentsJSON, every malformed
// variant a verifier has to reject.
package clerktest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Token categories carried in the "cat" header of Clerk-issued JWTs. A
// verifier uses them to tell a session token from other tokens signed by the
// same instance key.
const (
	CatSession  = "cl_B7d4PD111AAA" // session token
	CatTemplate = "cl_B7d4PD222AAA" // JWT template token
	CatM2M      = "cl_B7d4PD333AAA" // machine-to-machine JWT
	CatIgnore   = "cl_I7d4PD111III" // "ignore" category
)

// Paths of the two JWKS endpoints, relative to Issuer.URL.
const (
	JWKSPath    = "/.well-known/jwks.json"
	APIJWKSPath = "/v1/jwks"
)

// DefaultAZP is the "azp" claim minted into session and template tokens: the
// origin of a typical local frontend dev server.
const DefaultAZP = "http://localhost:3000"

// Issuer is a fake Clerk instance: an HTTP server on 127.0.0.1 serving its
// public keys, plus a token minter signing with the matching private key.
// All methods are safe for concurrent use, including while requests are
// being served.
type Issuer struct {
	// URL is the base URL of the instance, e.g. "http://127.0.0.1:41234".
	// It is also the "iss" claim of every token Mint produces by default.
	URL string

	secretKey     string
	webhookSecret string // whsec_…, see SendWebhook
	srv           *http.Server
	served        chan struct{} // closed when the Serve goroutine has returned

	fetches   atomic.Int64
	fault     atomic.Pointer[Fault]
	signIn    atomic.Pointer[SignInPage] // nil until EnableSignIn
	hs        handshakeState
	machines  machineState
	resources resourceState

	// life guards the transition to closed so that no handler can register
	// in inflight after Close has started waiting on it.
	life      sync.Mutex
	closed    bool
	done      chan struct{} // closed by Close; releases delayed and hanging handlers
	inflight  sync.WaitGroup
	closeOnce sync.Once

	mu     sync.RWMutex
	keys   []Key             // the served key set, in JWKS order
	signer Key               // the key Mint signs with; normally also in keys
	leased []*rsa.PrivateKey // keys taken from the pool, returned on Close
	now    func() time.Time
}

// New starts a fake Clerk instance on an ephemeral port of 127.0.0.1 with one
// RSA-2048 key whose kid is "ins_test_<random>". The caller must Close it;
// tests should prefer Start, which does that automatically.
func New() (*Issuer, error) {
	// Binding the loopback address explicitly (rather than ":0") keeps the
	// fake, whose keys mint valid tokens for anyone, off every real network.
	return NewAt("127.0.0.1:0")
}

// NewAt is New on a chosen address, e.g. "127.0.0.1:8081" for a development
// server with a stable URL. The host must be a loopback IP address, for the
// same reason New binds 127.0.0.1; port 0 picks a free port.
func NewAt(addr string) (*Issuer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("clerktest: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("clerktest: address %q: the fake issuer only listens on a loopback IP such as 127.0.0.1", addr)
	}
	priv, err := leaseKey()
	if err != nil {
		return nil, fmt.Errorf("clerktest: generating key: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		releaseKeys([]*rsa.PrivateKey{priv})
		return nil, fmt.Errorf("clerktest: listening on loopback: %w", err)
	}
	k := Key{KID: newKID(), Private: priv}
	i := &Issuer{
		URL:           "http://" + ln.Addr().String(),
		secretKey:     "sk_test_" + rand.Text(),
		webhookSecret: newWebhookSecret(),
		served:        make(chan struct{}),
		done:          make(chan struct{}),
		keys:          []Key{k},
		signer:        k,
		leased:        []*rsa.PrivateKey{priv},
		now:           time.Now,
	}
	mux := http.NewServeMux()
	mux.HandleFunc(JWKSPath, i.jwksHandler(false))
	mux.HandleFunc(APIJWKSPath, i.jwksHandler(true))
	mux.HandleFunc(SignInPath, i.signInHandler)
	mux.HandleFunc(SignOutPath, i.signOutHandler)
	mux.HandleFunc(RevokePath, i.revokeHandler)
	mux.HandleFunc(HandshakePath, i.handshakeHandler)
	mux.HandleFunc(HandshakePayloadPath, i.payloadHandler)
	mux.HandleFunc(APIKeyVerifyPath, i.verifyHandler("secret", "ak_", &i.machines.apiKey, "API key not found"))
	mux.HandleFunc(M2MTokenVerifyPath, i.verifyHandler("token", "mt_", &i.machines.m2m, "Machine token not found"))
	mux.HandleFunc(OAuthTokenVerifyPath, i.verifyHandler("access_token", "oat_", &i.machines.oauthTok, "OAuth token not found"))
	mux.HandleFunc(UsersPath+"{id}", i.resourceHandler(&i.resources.userCalls, i.userJSON))
	mux.HandleFunc(OrganizationsPath+"{id}", i.resourceHandler(&i.resources.orgCalls, i.organizationJSON))
	i.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(i.served)
		// Serve only ever returns ErrServerClosed after Close, or an accept
		// error on a listener nobody else touches; neither is actionable.
		_ = i.srv.Serve(ln)
	}()
	return i, nil
}

// Close stops the server, drops open connections (so clients blocked on a
// Hang or Delay fault see an error rather than a late answer), and waits for
// every in-flight handler to return. It is idempotent.
//
// Close returns the instance's generated keys to a process-wide pool so that
// later instances start fast; a later Issuer may therefore sign with the same
// RSA key as a closed one, always under a different kid and URL. Do not keep
// minting with an Issuer after closing it.
func (i *Issuer) Close() {
	i.closeOnce.Do(func() {
		i.life.Lock()
		i.closed = true
		i.life.Unlock()
		// Close connections first: a hanging handler released by done
		// afterwards then has nobody left to write a response to.
		_ = i.srv.Close()
		close(i.done)
		i.inflight.Wait()
		<-i.served

		i.mu.Lock()
		leased := i.leased
		i.leased = nil
		i.mu.Unlock()
		releaseKeys(leased)
	})
}

// JWKSURL is the Frontend API key set URL, URL + "/.well-known/jwks.json".
func (i *Issuer) JWKSURL() string { return i.URL + JWKSPath }

// APIURL is the Backend API base URL; its key set is at APIURL()+"/v1/jwks"
// and requires SecretKey as a bearer token.
func (i *Issuer) APIURL() string { return i.URL }

// SecretKey is the "sk_test_…" secret the Backend API endpoint accepts.
func (i *Issuer) SecretKey() string { return i.secretKey }

// LiveSecretKey is the same secret for a production instance
// ("sk_live_…"), accepted alike, to go with PublishableKey(true).
func (i *Issuer) LiveSecretKey() string {
	return "sk_live_" + strings.TrimPrefix(i.secretKey, "sk_test_")
}

// PublishableKey is a publishable key naming this Issuer's host and port as
// the Frontend API: pk_live_ for a production instance, else pk_test_.
func (i *Issuer) PublishableKey(live bool) string {
	kind := "pk_test_"
	if live {
		kind = "pk_live_"
	}
	return kind + base64.RawStdEncoding.EncodeToString([]byte(strings.TrimPrefix(i.URL, "http://")+"$"))
}

// Fetches is the number of requests received by either JWKS endpoint,
// whatever their outcome (faulted, unauthorized and wrong-method included).
func (i *Issuer) Fetches() int64 { return i.fetches.Load() }

// SetNow sets the clock Mint uses for default iat/nbf/exp. nil restores
// time.Now.
func (i *Issuer) SetNow(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	i.mu.Lock()
	i.now = now
	i.mu.Unlock()
}

// JWKS returns the key set currently served, exactly as the endpoints serve
// it when no fault is set. Useful for verifiers configured with a static key
// set instead of a URL.
func (i *Issuer) JWKS() []byte {
	b, err := json.Marshal(jwkSet{Keys: i.jwks()})
	if err != nil {
		panic("clerktest: marshaling JWKS: " + err.Error()) // only strings inside
	}
	return b
}

// jwk is one entry of a Clerk JWKS, with fields in the order Clerk emits them.
type jwk struct {
	Use string `json:"use"`
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

func (i *Issuer) jwks() []jwk {
	i.mu.RLock()
	defer i.mu.RUnlock()
	out := make([]jwk, 0, len(i.keys))
	for _, k := range i.keys {
		pub := k.Private.PublicKey
		out = append(out, jwk{
			Use: "sig",
			Kty: "RSA",
			Kid: k.KID,
			Alg: "RS256",
			N:   b64(pub.N.Bytes()),
			E:   b64(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	return out
}

// enter registers a handler as in flight, or reports false once Close has
// started, so that Close can wait for every handler it let in.
func (i *Issuer) enter() bool {
	i.life.Lock()
	defer i.life.Unlock()
	if i.closed {
		return false
	}
	i.inflight.Add(1)
	return true
}

func (i *Issuer) jwksHandler(requireSecret bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		i.fetches.Add(1)
		if !i.enter() {
			return
		}
		defer i.inflight.Done()

		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", "Only GET is supported."))
			return
		}
		if f := i.fault.Load(); f != nil && i.serveFault(w, r, f) {
			return
		}
		if requireSecret && !i.authorized(r) {
			writeJSON(w, http.StatusUnauthorized, errorBody("clerk_key_invalid",
				"The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct."))
			return
		}
		writeJSON(w, http.StatusOK, i.JWKS())
	}
}

// authorized checks the Backend API bearer secret in constant time.
func (i *Issuer) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	token = strings.TrimSpace(token)
	return subtle.ConstantTimeCompare([]byte(token), []byte(i.secretKey)) == 1 ||
		subtle.ConstantTimeCompare([]byte(token), []byte(i.LiveSecretKey())) == 1
}

// refuseBackendCall answers, as Clerk's Backend API would, a call that
// goes no further: the wrong method, an injected fault (with retryAfter as
// its Retry-After), or no valid secret key. It reports whether it answered.
func (i *Issuer) refuseBackendCall(w http.ResponseWriter, r *http.Request, method string, fault *Fault, retryAfter string) bool {
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", "Only "+method+" is supported."))
		return true
	}
	if fault != nil {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		if i.serveFault(w, r, fault) {
			return true
		}
	}
	if !i.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, errorBody("clerk_key_invalid",
			"The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct."))
		return true
	}
	return false
}

// errorBody is a Clerk Backend API error document.
func errorBody(code, msg string) []byte {
	type apiError struct {
		Code        string `json:"code"`
		Message     string `json:"message"`
		LongMessage string `json:"long_message"`
	}
	b, err := json.Marshal(struct {
		Errors []apiError `json:"errors"`
	}{[]apiError{{code, msg, msg}}})
	if err != nil {
		panic("clerktest: marshaling error body: " + err.Error()) // only strings inside
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A write error means the client went away; there is nobody to tell.
	_, _ = w.Write(body)
}

// PublicKeyPEM is the signing key's public half as a PKIX "PUBLIC KEY" PEM
// block, the form Clerk's networkless verification ("JWT key") takes. It is
// also the classic HMAC secret of an RS256→HS256 key-confusion attack.
func (i *Issuer) PublicKeyPEM() string {
	der, err := x509.MarshalPKIXPublicKey(&i.PrivateKey().PublicKey)
	if err != nil {
		panic("clerktest: marshaling public key: " + err.Error()) // cannot fail for RSA
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
