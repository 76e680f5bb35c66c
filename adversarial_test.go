package clerkauth

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// The adversarial suite attacks one real Caddy (see module_test.go for how
// caddytest runs it) with everything a client can put in a request: forged,
// re-signed, malformed and oversized tokens, look-alike issuers and parties,
// tokens in the wrong place, and forged identity headers. Every case checks
// three things: the status, the reason code ({http.auth.clerk.reason}, read
// from a handle_errors response header or, for requests that pass, from a
// header_up), and that the recording upstream saw nothing forged: no client
// copy of an identity header or of its CGI look-alikes, no literal
// placeholder, and exactly the verified identity. A second "attacker" server
// hosts a JWKS and a certificate for the key-injection cases and must never
// receive a request.

const (
	advIssuer = "https://clerk.example.com" // the configured issuer; keys come from the fake via jwks_url
	advAZP    = "https://app.example.com"   // the configured authorized party
	advMarker = "forged"                    // in every client-forged value; must never reach the upstream
	advUser   = clerktest.DefaultSubject
)

// advOwned are the headers clerk_auth's forward_header owns in every route.
var advOwned = []string{"X-User-Id", "X-Org-Id", "X-Plan"}

// advUpstream records, for every request, the headers and (after reading the
// body) the trailers it received.
type advUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []advSeen
}

type advSeen struct {
	method           string
	header, trailers http.Header
}

func startAdvUpstream(t *testing.T) *advUpstream {
	t.Helper()
	u := &advUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, advSeen{r.Method, r.Header.Clone(), r.Trailer.Clone()})
		u.mu.Unlock()
		fmt.Fprint(w, "upstream")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *advUpstream) take() []advSeen {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

// advAttacker is the attacker's server: it serves a JWKS and a certificate
// for the attacker's key, and counts every request. A verifier that follows
// jku/x5u, or fetches anything a token names, would show up here.
type advAttacker struct {
	*httptest.Server
	hits atomic.Int64
}

func startAdvAttacker(t *testing.T, key *rsa.PrivateKey, kid string, certPEM []byte) *advAttacker {
	t.Helper()
	a := &advAttacker{}
	jwks := fmt.Sprintf(`{"keys":[{"use":"sig","kty":"RSA","kid":%q,"alg":"RS256","n":%q,"e":"AQAB"}]}`,
		kid, base64.RawURLEncoding.EncodeToString(key.N.Bytes()))
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		if strings.HasSuffix(r.URL.Path, ".pem") {
			_, _ = w.Write(certPEM)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, jwks)
	}))
	t.Cleanup(a.Close)
	return a
}

// advCase is one attack. Zero values mean: GET /req/x, 401, no identity.
type advCase struct {
	name   string
	method string      // default GET
	path   string      // default /req/x
	header http.Header // sent verbatim (names are not canonicalised)
	// raw, if set, is sent as is over TCP: for requests Go's client refuses
	// to send (NUL bytes, trailing whitespace, trailers, huge headers).
	raw []byte
	// send, if set, replaces the request altogether (several requests).
	send func(t *testing.T, s *advSuite) (*http.Response, string)

	status int    // default 401
	reason string // {http.auth.clerk.reason}
	user   string // the X-User-Id the upstream must see; "" = none
	org    string // the X-Org-Id the upstream must see; "" = none
	plan   string // the X-Plan the upstream must see; "" = none

	noForge bool // do not add the forged identity headers
}

type advSuite struct {
	tester   *caddytest.Tester
	up       *advUpstream
	attacker *advAttacker
}

// advForge adds client-forged copies of every owned header, with their
// look-alikes and duplicates, and of the header_up fields.
func advForge(h http.Header) {
	add := func(name string, vals ...string) { h[name] = append(h[name], vals...) }
	add("X-User-Id", "user_"+advMarker, "user_"+advMarker+"_2")
	add("X_User_Id", "user_"+advMarker+"_underscore")
	add("x-user_id", "user_"+advMarker+"_mixed")
	add("X-USER-ID", "user_"+advMarker+"_upper")
	add("X-Org-Id", "org_"+advMarker)
	add("x_org_id", "org_"+advMarker+"_underscore")
	add("X-Plan", "plan_"+advMarker)
	add("X-Auth-Reason", advMarker)
	add("X-Claims-Sub", advMarker)
}

func (s *advSuite) run(t *testing.T, tc advCase) {
	t.Helper()
	s.up.take()
	attackerBefore := s.attacker.hits.Load()

	start := time.Now()
	var resp *http.Response
	var body string
	switch {
	case tc.send != nil:
		resp, body = tc.send(t, s)
	case tc.raw != nil:
		resp, body = advRaw(t, tc.raw)
	default:
		h := http.Header{}
		for k, v := range tc.header {
			h[k] = append([]string(nil), v...)
		}
		if !tc.noForge {
			advForge(h)
		}
		resp, body = advDo(t, s.tester, tc.method, tc.path, h)
	}
	// Every answer, rejections of huge requests included, must come fast:
	// a generous bound, since only "it does not hang or crawl" matters.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %s", d)
	}

	want := tc.status
	if want == 0 {
		want = http.StatusUnauthorized
	}
	if resp.StatusCode != want {
		t.Errorf("status %d, want %d (body %q)", resp.StatusCode, want, advShort(body))
	}
	seen := s.up.take()
	if resp.StatusCode != http.StatusOK {
		if got := resp.Header.Get("X-Reason"); got != tc.reason {
			t.Errorf("reason %q, want %q", got, tc.reason)
		}
		if len(seen) != 0 {
			t.Errorf("a rejected request reached the upstream: %v", seen[0].header)
		}
	} else {
		if len(seen) != 1 {
			t.Fatalf("upstream got %d requests, want 1", len(seen))
		}
		if got := seen[0].header.Get("X-Auth-Reason"); got != tc.reason {
			t.Errorf("reason forwarded by header_up %q, want %q", got, tc.reason)
		}
		advCheckIdentity(t, seen[0], map[string]string{"X-User-Id": tc.user, "X-Org-Id": tc.org, "X-Plan": tc.plan})
	}
	for _, r := range seen {
		advCheckForgery(t, r)
	}
	if n := s.attacker.hits.Load() - attackerBefore; n != 0 {
		t.Errorf("the attacker's server received %d requests", n)
	}
	// Nothing the client sent as a credential is ever echoed back: a
	// reflected token would end up in caches, logs or a page.
	for _, name := range []string{"Authorization", "Cookie"} {
		for _, v := range tc.header[name] {
			if len(v) < 24 {
				continue
			}
			if strings.Contains(body, v[len(v)-20:]) {
				t.Errorf("the response body echoes the %s value", name)
			}
			for k, hv := range resp.Header {
				if strings.Contains(strings.Join(hv, " "), v[len(v)-20:]) {
					t.Errorf("response header %s echoes the %s value", k, name)
				}
			}
		}
	}
}

// advCheckIdentity: each owned header is there exactly once with the
// verified value, or absent when there is none.
func advCheckIdentity(t *testing.T, r advSeen, want map[string]string) {
	t.Helper()
	for name, v := range want {
		got := r.header.Values(name)
		if v == "" && len(got) != 0 || v != "" && (len(got) != 1 || got[0] != v) {
			t.Errorf("upstream %s = %q, want %q", name, got, v)
		}
	}
}

// advCheckForgery: no look-alike of an owned header, no forged value, and
// no literal placeholder, in the headers or the trailers.
func advCheckForgery(t *testing.T, r advSeen) {
	t.Helper()
	for where, h := range map[string]http.Header{"header": r.header, "trailer": r.trailers} {
		for name, vals := range h {
			for _, o := range advOwned {
				if sameHeaderVariable(name, o) && name != o {
					t.Errorf("look-alike %s %s = %q reached the upstream", where, name, vals)
				}
			}
			for _, v := range vals {
				if strings.Contains(v, advMarker) {
					t.Errorf("forged %s %s = %q reached the upstream", where, name, v)
				}
				if strings.Contains(v, "{http.") {
					t.Errorf("literal placeholder in %s %s = %q reached the upstream", where, name, v)
				}
			}
		}
	}
}

func advDo(t *testing.T, tester *caddytest.Tester, method, path string, h http.Header) (*http.Response, string) {
	t.Helper()
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = "/req/x"
	}
	return do(t, tester, method, path, h)
}

// advRawRequest builds an HTTP/1.1 request from header lines given as is,
// with forged identity headers, as run adds to the others.
func advRawRequest(method, path string, lines ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n", method, path, caddyPort)
	forged := []string{"X-User-Id: user_" + advMarker, "x_user_id: user_" + advMarker, "x-org-id: org_" + advMarker}
	for _, l := range append(forged, lines...) {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// advRaw sends req over a fresh connection and reads one response. It
// writes concurrently: the server may answer (431) and stop reading before
// a huge request is fully sent.
func advRaw(t *testing.T, req []byte) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", caddyPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = conn.Write(req) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func advShort(s string) string { return truncate(s, 120) }

// advSegments splits a compact JWS.
func advSegments(tok string) (h, p, s string) {
	parts := strings.SplitN(tok, ".", 3)
	return parts[0], parts[1], parts[2]
}

func TestAdversarial(t *testing.T) {
	iss := clerktest.Start(t)
	other := clerktest.Start(t) // another Clerk instance: the attacker's own, real, tokens
	up := startAdvUpstream(t)

	attackerKey, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	const attackerKID = "attacker-key"
	certDER := advSelfSigned(t, attackerKey)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	attacker := startAdvAttacker(t, attackerKey, attackerKID, certPEM)
	t.Setenv("ADV_CLERK_JWT_KEY", iss.PublicKeyPEM())

	route := func(path, extra string, keys string) string {
		if keys == "" {
			keys = "jwks_url " + iss.JWKSURL()
		}
		return fmt.Sprintf(`
	route %s {
		clerk_auth {
			issuer %s
			%s
			authorized_parties %s
			forward_header X-User-Id {http.auth.user.id}
			forward_header X-Org-Id {http.auth.user.org_id}
			forward_header X-Plan {http.auth.user.claims.metadata.plan}
			%s
		}
		reverse_proxy %s {
			header_up X-Auth-Reason {http.auth.clerk.reason}
			header_up X-Claims-Sub {http.auth.user.claims.sub}
		}
	}`, path, advIssuer, keys, advAZP, extra, strings.TrimPrefix(up.URL, "http://"))
	}
	tester := startCaddy(t, fmt.Sprintf(`
:%d {%s%s%s%s%s%s%s%s%s
	handle_errors {
		header X-Reason {http.auth.clerk.reason}
		respond "{err.status_code} {http.auth.clerk.reason}"
	}
}`, caddyPort,
		route("/req/*", "", ""),
		route("/opt/*", "optional", ""),
		route("/opt-admin/*", "optional\n\t\t\troles admin", ""),
		route("/admin/*", "roles admin", ""),
		route("/session/*", "accept session", ""),
		route("/leeway0/*", "leeway 0", ""),
		route("/leeway5m/*", "leeway 5m", ""),
		route("/claim-sub/*", "claim sub user_a", ""),
		route("/pem/*", "", "jwt_key {env.ADV_CLERK_JWT_KEY}"),
	))
	s := &advSuite{tester: tester, up: up, attacker: attacker}

	// mint is a valid token for the configured issuer and party, alive long
	// enough (10 min) for the suite never to race its expiry; options
	// override any of it.
	mint := func(opts ...clerktest.Option) string {
		base := []clerktest.Option{
			clerktest.Lifetime(10 * time.Minute),
			clerktest.WithClaims(map[string]any{"iss": advIssuer, "azp": advAZP}),
		}
		return iss.Mint(append(base, opts...)...)
	}
	claimsOf := func(kv ...any) clerktest.Option {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return clerktest.WithClaims(m)
	}
	headerOf := func(kv ...any) clerktest.Option {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return clerktest.WithHeader(m)
	}
	// baseHeader and baseClaims are the JSON of a valid token, for cases
	// that need members encoding/json would never write (duplicates, odd
	// numbers): rawToken signs them byte for byte with the issuer's key.
	now := time.Now()
	baseHeader := fmt.Sprintf(`"alg":"RS256","kid":%q,"typ":"JWT","cat":%q`, iss.KID(), clerktest.CatSession)
	baseClaims := fmt.Sprintf(`"iss":%q,"azp":%q,"sid":"sess_adv","iat":%d,"nbf":%d,"exp":%d`,
		advIssuer, advAZP, now.Unix(), now.Unix()-10, now.Add(10*time.Minute).Unix())
	rawToken := func(headerMembers, claimMembers string) string {
		return clerktest.SegmentsJSON("{"+headerMembers+"}", "{"+claimMembers+"}", iss.PrivateKey())
	}
	valid := mint()

	groups := []struct {
		name  string
		cases []advCase
	}{
		{"alg", advAlgCases(iss, mint, headerOf, claimsOf)},
		{"key injection", advKeyInjectionCases(iss, mint, headerOf, attacker, attackerKey, attackerKID, certDER, other)},
		{"crit", []advCase{
			// RFC 7515 §4.1.11: a crit extension the verifier does not
			// understand must fail the token. b64:false (RFC 7797) would
			// change what the signature covers.
			{name: "crit exp", header: bearer(mint(headerOf("crit", []string{"exp"}))), reason: ReasonTokenInvalid},
			{name: "crit b64 false", header: bearer(mint(headerOf("crit", []string{"b64"}, "b64", false))), reason: ReasonTokenInvalid},
			{name: "crit empty list", header: bearer(mint(headerOf("crit", []string{}))), reason: ReasonTokenInvalid},
			{name: "crit null", header: bearer(rawToken(baseHeader+`,"crit":null`, `"sub":"user_test",`+baseClaims)), reason: ReasonTokenInvalid},
		}},
		{"kid", advKIDCases(iss, mint, headerOf)},
		{"signature", advSignatureCases(iss, other, mint, claimsOf, valid)},
		{"segments and encoding", advEncodingCases(iss, mint, rawToken, baseHeader, baseClaims, valid)},
		{"authorization header", advAuthorizationCases(mint, valid)},
		{"header and cookie", advCookieCases(mint, claimsOf, valid)},
		{"query string and body", advQueryCases(valid)},
		{"claim types", advClaimTypeCases(mint, claimsOf, rawToken, baseHeader, baseClaims)},
		{"time", advTimeCases(mint, claimsOf)},
		{"issuer look-alikes", advIssuerCases(mint, claimsOf)},
		{"azp look-alikes", advAZPCases(mint, claimsOf)},
		{"token class", advClassCases(mint, claimsOf, headerOf)},
		{"duplicate members", advDuplicateCases(rawToken, baseHeader, baseClaims)},
		{"forged identity headers", advForgeryCases(mint, claimsOf, valid)},
		{"header injection through claims", advInjectionCases(mint, claimsOf)},
		{"oversized", advOversizeCases(t, mint, claimsOf)},
	}
	total := 0
	for _, g := range groups {
		total += len(g.cases)
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) { s.run(t, tc) })
			}
		})
	}
	t.Logf("%d adversarial cases in %d groups", total, len(groups))
	if n := attacker.hits.Load(); n != 0 {
		t.Errorf("the attacker's server received %d requests in all", n)
	}
}

type (
	advMint func(...clerktest.Option) string
	advKV   func(...any) clerktest.Option
)

// advAlgCases: the token must never choose how it is verified. "none" would
// skip the signature; HS* keyed with the public key (which anyone can
// download) is the classic RS→HS key confusion; other asymmetric algs would
// need keys Clerk does not have, or verify with the RSA key in another
// scheme.
func advAlgCases(iss *clerktest.Issuer, mint advMint, headerOf, claimsOf advKV) []advCase {
	pub := &iss.PrivateKey().PublicKey
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(iss.JWKS(), &set); err != nil || len(set.Keys) == 0 {
		panic(fmt.Sprintf("issuer JWKS: %v", err))
	}
	hs := func(alg string, secret []byte) string {
		return mint(clerktest.WithAlg(alg), clerktest.WithHMACSecret(secret), claimsOf("sub", "user_admin"))
	}
	// A token that says RS256 but carries an HMAC made with the PEM.
	lying, err := clerktest.Sign(
		map[string]any{"alg": "RS256", "kid": iss.KID(), "typ": "JWT", "cat": clerktest.CatSession},
		map[string]any{"sub": "user_admin", "iss": advIssuer, "azp": advAZP, "sid": "s", "exp": time.Now().Add(time.Hour).Unix()},
		"HS256", []byte(iss.PublicKeyPEM()))
	if err != nil {
		panic(err)
	}
	_, p, sig := advSegments(mint())
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"alg":"none","kid":%q,"typ":"JWT"}`, iss.KID())))
	return []advCase{
		{name: "none", header: bearer(mint(clerktest.WithAlg("none"))), reason: ReasonInvalidAlgorithm},
		{name: "None", header: bearer(mint(clerktest.WithAlg("None"))), reason: ReasonInvalidAlgorithm},
		{name: "NONE", header: bearer(mint(clerktest.WithAlg("NONE"))), reason: ReasonInvalidAlgorithm},
		{name: "empty alg", header: bearer(mint(clerktest.WithAlg(""))), reason: ReasonInvalidAlgorithm},
		{name: "no alg member", header: bearer(mint(headerOf("alg", nil))), reason: ReasonInvalidAlgorithm},
		{name: "none header over a valid RS256 signature", header: bearer(noneHeader + "." + p + "." + sig), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the PEM public key", header: bearer(hs("HS256", []byte(iss.PublicKeyPEM()))), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the PEM without newline", header: bearer(hs("HS256", []byte(strings.TrimSpace(iss.PublicKeyPEM())))), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the PKIX DER", header: bearer(hs("HS256", pkix)), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the PKCS1 DER", header: bearer(hs("HS256", x509.MarshalPKCS1PublicKey(pub))), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the JWK", header: bearer(hs("HS256", set.Keys[0])), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the JWKS document", header: bearer(hs("HS256", iss.JWKS())), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the modulus", header: bearer(hs("HS256", pub.N.Bytes())), reason: ReasonInvalidAlgorithm},
		{name: "HS512 keyed with the PEM", header: bearer(hs("HS512", []byte(iss.PublicKeyPEM()))), reason: ReasonInvalidAlgorithm},
		{name: "HS256 keyed with the PEM on the networkless route", path: "/pem/x", header: bearer(hs("HS256", []byte(iss.PublicKeyPEM()))), reason: ReasonInvalidAlgorithm},
		{name: "RS256 header over an HMAC of the PEM", header: bearer(lying), reason: ReasonInvalidSignature},
		{name: "RS256 header over an HMAC of the PEM, networkless", path: "/pem/x", header: bearer(lying), reason: ReasonInvalidSignature},
		{name: "ES256", header: bearer(mint(clerktest.WithAlg("ES256"))), reason: ReasonInvalidAlgorithm},
		{name: "ES384", header: bearer(mint(clerktest.WithAlg("ES384"))), reason: ReasonInvalidAlgorithm},
		{name: "EdDSA", header: bearer(mint(clerktest.WithAlg("EdDSA"))), reason: ReasonInvalidAlgorithm},
		// A genuine PSS signature by the issuer's own key: still refused,
		// Clerk signs with PKCS #1 v1.5 only.
		{name: "PS256 by the issuer key", header: bearer(mint(clerktest.WithAlg("PS256"))), reason: ReasonInvalidAlgorithm},
		{name: "PS256 by the issuer key, networkless", path: "/pem/x", header: bearer(mint(clerktest.WithAlg("PS256"))), reason: ReasonInvalidAlgorithm},
		// The JWKS pins the key to RS256: another hash is refused.
		{name: "RS512 by the issuer key pinned to RS256", header: bearer(mint(clerktest.WithAlg("RS512"))), reason: ReasonInvalidAlgorithm},
		{name: "alg lowercase rs256", header: bearer(mint(headerOf("alg", "rs256"))), reason: ReasonInvalidAlgorithm},
		{name: "alg with trailing space", header: bearer(mint(headerOf("alg", "RS256 "))), reason: ReasonInvalidAlgorithm},
		{name: "alg as an array", header: bearer(mint(headerOf("alg", []string{"RS256"}))), reason: ReasonTokenInvalid},
	}
}

// advKeyInjectionCases: jwk, jku, x5u and x5c let a token carry or point at
// its own verification key. Honouring any of them lets anyone sign: the key
// must come from the configured key set only, and nothing a token names
// may ever be fetched (SSRF), so the attacker's server must see no request.
func advKeyInjectionCases(iss *clerktest.Issuer, mint advMint, headerOf advKV, attacker *advAttacker,
	key *rsa.PrivateKey, kid string, certDER []byte, other *clerktest.Issuer) []advCase {
	jwk := map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()), "e": "AQAB"}
	x5c := []string{base64.StdEncoding.EncodeToString(certDER)}
	jku := attacker.URL + "/jwks.json"
	x5u := attacker.URL + "/cert.pem"
	signed := func(kv ...any) string {
		return mint(clerktest.WithKey(key), headerOf(kv...), clerktest.WithClaims(map[string]any{"sub": "user_admin"}))
	}
	return []advCase{
		{name: "embedded jwk, attacker kid", header: bearer(signed("jwk", jwk, "kid", kid)), reason: ReasonKIDMismatch},
		{name: "embedded jwk, issuer kid", header: bearer(signed("jwk", jwk)), reason: ReasonInvalidSignature},
		{name: "embedded jwk, no kid", header: bearer(signed("jwk", jwk, "kid", nil)), reason: ReasonKIDMismatch},
		{name: "jku to the attacker, attacker kid", header: bearer(signed("jku", jku, "kid", kid)), reason: ReasonKIDMismatch},
		{name: "jku to the attacker, issuer kid", header: bearer(signed("jku", jku)), reason: ReasonInvalidSignature},
		{name: "x5u to the attacker, attacker kid", header: bearer(signed("x5u", x5u, "kid", kid)), reason: ReasonKIDMismatch},
		{name: "x5u to the attacker, issuer kid", header: bearer(signed("x5u", x5u)), reason: ReasonInvalidSignature},
		{name: "x5c attacker certificate, issuer kid", header: bearer(signed("x5c", x5c)), reason: ReasonInvalidSignature},
		{name: "x5c attacker certificate, no kid", header: bearer(signed("x5c", x5c, "kid", nil)), reason: ReasonKIDMismatch},
		{name: "all four at once", header: bearer(signed("jwk", jwk, "jku", jku, "x5u", x5u, "x5c", x5c, "x5t", "AAAA")), reason: ReasonInvalidSignature},
		// The networkless key ignores kid, so only the signature can fail.
		{name: "all four at once, networkless", path: "/pem/x", header: bearer(signed("jwk", jwk, "jku", jku, "x5u", x5u, "x5c", x5c, "kid", kid)), reason: ReasonInvalidSignature},
		// A real token of another Clerk instance (the attacker's own, or
		// another tenant's) with our issuer's iss: its kid is not ours.
		{name: "token of another Clerk instance", header: bearer(other.Mint(clerktest.WithClaims(map[string]any{"iss": advIssuer, "azp": advAZP}), clerktest.Lifetime(10*time.Minute))), reason: ReasonKIDMismatch},
		{name: "another instance's key under our kid", header: bearer(mint(clerktest.WithKey(other.PrivateKey()))), reason: ReasonInvalidSignature},
		{name: "another instance's key under our kid, networkless", path: "/pem/x", header: bearer(mint(clerktest.WithKey(other.PrivateKey()))), reason: ReasonInvalidSignature},
		{name: "issuer kid in a jku URL", header: bearer(signed("jku", jku+"?kid="+iss.KID(), "kid", jku)), reason: ReasonKIDMismatch},
	}
}

// advKIDCases: kid is attacker-controlled input to a cache lookup and to the
// refetch logic. Path- or URL-like kids must not be resolved as anything,
// long ones must not be costly, and a flood of unknown kids must not turn
// into a flood of JWKS fetches.
func advKIDCases(iss *clerktest.Issuer, mint advMint, headerOf advKV) []advCase {
	kid := func(v any) http.Header { return bearer(mint(headerOf("kid", v))) }
	cases := []advCase{
		{name: "wrong kid", header: kid("ins_test_nope"), reason: ReasonKIDMismatch},
		{name: "missing kid", header: bearer(mint(headerOf("kid", nil))), reason: ReasonKIDMismatch},
		{name: "empty kid", header: kid(""), reason: ReasonKIDMismatch},
		{name: "path traversal kid", header: kid("../../etc/passwd"), reason: ReasonKIDMismatch},
		{name: "encoded path traversal kid", header: kid("..%2f..%2fetc%2fpasswd"), reason: ReasonKIDMismatch},
		{name: "URL kid", header: kid("https://evil.example/jwks.json#" + iss.KID()), reason: ReasonKIDMismatch},
		{name: "kid with control characters", header: kid(iss.KID() + "\x00\r\nX-User-Id: user_admin"), reason: ReasonKIDMismatch},
		{name: "kid differing in case", header: kid(strings.ToUpper(iss.KID())), reason: ReasonKIDMismatch},
		{name: "kid with trailing space", header: kid(iss.KID() + " "), reason: ReasonKIDMismatch},
		{name: "8 KiB kid", header: kid(strings.Repeat("k", 8<<10)), reason: ReasonKIDMismatch},
		{name: "numeric kid", header: kid(1), reason: ReasonTokenInvalid},
		{name: "kid object", header: kid(map[string]any{"kid": iss.KID()}), reason: ReasonTokenInvalid},
		// A genuine token whose kid is right except for a unicode
		// look-alike character (Cyrillic "і").
		{name: "homoglyph kid", header: kid(strings.Replace(iss.KID(), "i", "\u0456", 1)), reason: ReasonKIDMismatch},
	}
	// The refetch an unknown kid may trigger is throttled (once per 10 s)
	// and shared: 30 distinct unknown kids cost at most one fetch, plus one
	// if the 10 s window happens to roll over mid-flood.
	cases = append(cases, advCase{
		name: "flood of unknown kids",
		send: func(t *testing.T, s *advSuite) (*http.Response, string) {
			before := iss.Fetches()
			var resp *http.Response
			var body string
			for i := range 30 {
				resp, body = advDo(t, s.tester, "", "", kid(fmt.Sprintf("ins_flood_%d", i)))
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Reason") != ReasonKIDMismatch {
					t.Fatalf("request %d: %d %q", i, resp.StatusCode, resp.Header.Get("X-Reason"))
				}
			}
			if n := iss.Fetches() - before; n > 2 {
				t.Errorf("30 unknown kids caused %d JWKS fetches, want at most 2", n)
			}
			return resp, body
		},
		reason: ReasonKIDMismatch,
	})
	return cases
}

// advSignatureCases: the signature is the only thing an attacker cannot
// produce. Stripping, truncating, re-encoding or transplanting it, or
// changing any signed byte, must fail; and its base64 must have exactly one
// spelling, or one token would have many (token malleability: replay
// detection and caches keyed by token would be bypassed).
func advSignatureCases(iss, other *clerktest.Issuer, mint advMint, claimsOf advKV, valid string) []advCase {
	h, p, sig := advSegments(valid)
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		panic(err)
	}
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)/2] ^= 1
	admin := mint(claimsOf("sub", "user_admin", "roles", []string{"admin"}))
	_, adminPayload, _ := advSegments(admin)
	_, _, otherSig := advSegments(mint(claimsOf("sub", "user_other")))

	// The last base64 character of a 256-byte signature carries 2 bits;
	// the other 4 must be zero. Setting one yields the same bytes for a
	// lenient decoder.
	last := sig[len(sig)-1]
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	malleable := sig[:len(sig)-1] + string(alphabet[strings.IndexByte(alphabet, last)|1])

	// The same signature in the standard alphabet: mint until it has a
	// character that differs between the two.
	std := valid
	for !strings.ContainsAny(std[strings.LastIndex(std, ".")+1:], "-_") {
		std = mint()
	}
	sh, sp, ss := advSegments(std)
	std = sh + "." + sp + "." + strings.NewReplacer("-", "+", "_", "/").Replace(ss)

	tamperedHeader := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(
		`{"alg":"RS256","cat":%q,"kid":%q,"typ":"JWT","x":1}`, clerktest.CatSession, iss.KID())))
	return []advCase{
		{name: "stripped signature", header: bearer(h + "." + p + "."), reason: ReasonInvalidSignature},
		{name: "truncated signature bytes", header: bearer(h + "." + p + "." + base64.RawURLEncoding.EncodeToString(raw[:len(raw)-8])), reason: ReasonInvalidSignature},
		{name: "signature cut mid-character", header: bearer(valid[:len(valid)-1]), reason: ReasonTokenInvalid},
		{name: "signature with extra bytes", header: bearer(h + "." + p + "." + base64.RawURLEncoding.EncodeToString(append(raw, 0))), reason: ReasonInvalidSignature},
		{name: "one bit flipped", header: bearer(h + "." + p + "." + base64.RawURLEncoding.EncodeToString(flipped)), reason: ReasonInvalidSignature},
		{name: "signature from another token", header: bearer(h + "." + p + "." + otherSig), reason: ReasonInvalidSignature},
		{name: "payload of an admin token under this signature", path: "/admin/x", header: bearer(h + "." + adminPayload + "." + sig), reason: ReasonInvalidSignature},
		{name: "payload tampered after signing", header: bearer(h + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"user_admin"}`)) + "." + sig), reason: ReasonInvalidSignature},
		{name: "header tampered after signing", header: bearer(tamperedHeader + "." + p + "." + sig), reason: ReasonInvalidSignature},
		{name: "signature by another instance's key", header: bearer(mint(clerktest.WithKey(other.PrivateKey()))), reason: ReasonInvalidSignature},
		{name: "non-canonical last signature character", header: bearer(h + "." + p + "." + malleable), reason: ReasonTokenInvalid},
		{name: "padded signature", header: bearer(valid + "=="), reason: ReasonTokenInvalid},
		{name: "standard base64 signature", header: bearer(std), reason: ReasonTokenInvalid},
		{name: "signature and payload swapped", header: bearer(h + "." + sig + "." + p), reason: ReasonInvalidSignature},
	}
}

// advEncodingCases: a JWT is exactly three unpadded base64url segments of a
// JSON object, a JSON object and a signature. Anything else must fail
// before any key is looked up, never be "repaired" into a valid token.
func advEncodingCases(iss *clerktest.Issuer, mint advMint, rawToken func(string, string) string, baseHeader, baseClaims, valid string) []advCase {
	h, p, sig := advSegments(valid)
	// A header whose base64url has '-' or '_': its standard spelling differs.
	var stdHeader string
	for i := 0; ; i++ {
		tok := rawToken(baseHeader+fmt.Sprintf(`,"x":"%d>>>???"`, i), `"sub":"user_test",`+baseClaims)
		th, tp, ts := advSegments(tok)
		if strings.ContainsAny(th, "-_") {
			stdHeader = strings.NewReplacer("-", "+", "_", "/").Replace(th) + "." + tp + "." + ts
			break
		}
	}
	return []advCase{
		{name: "one segment", header: bearer(h), reason: ReasonTokenInvalid},
		{name: "two segments", header: bearer(h + "." + p), reason: ReasonTokenInvalid},
		{name: "four segments", header: bearer(valid + "." + sig), reason: ReasonTokenInvalid},
		{name: "five segments (JWE shape)", header: bearer(h + "..." + p + "." + sig), reason: ReasonTokenInvalid},
		{name: "empty segments", header: bearer(".."), reason: ReasonTokenInvalid},
		{name: "invalid base64 characters in the header", header: bearer("!!!" + h + "." + p + "." + sig), reason: ReasonTokenInvalid},
		{name: "padded header", header: bearer(h + "=." + p + "." + sig), reason: ReasonTokenInvalid},
		// '=' is not a compact-JWS character: refused before any decoding.
		{name: "padded payload", header: bearer(h + "." + p + "==." + sig), reason: ReasonTokenInvalid},
		{name: "standard base64 header", header: bearer(stdHeader), reason: ReasonTokenInvalid},
		{name: "header is not JSON", header: bearer(clerktest.SegmentsJSON("RS256", `{"sub":"user_test"}`, iss.PrivateKey())), reason: ReasonTokenInvalid},
		{name: "header with trailing garbage", header: bearer(rawToken(baseHeader+`}x{"a":1`, `"sub":"user_test",`+baseClaims)), reason: ReasonTokenInvalid},
		{name: "payload is not JSON", header: bearer(clerktest.SegmentsJSON("{"+baseHeader+"}", "user_test", iss.PrivateKey())), reason: ReasonVerificationFailed},
		{name: "payload is an array", header: bearer(clerktest.SegmentsJSON("{"+baseHeader+"}", `[{"sub":"user_test"}]`, iss.PrivateKey())), reason: ReasonVerificationFailed},
		{name: "payload with trailing garbage", header: bearer(rawToken(baseHeader, `"sub":"user_test",`+baseClaims+`}{"sub":"user_admin"`)), reason: ReasonVerificationFailed},
		{name: "space inside the token", header: bearer(h + "." + p + " ." + sig), reason: ReasonTokenInvalid},
		{name: "tab inside the token", header: bearer(h + "." + p + "\t." + sig), reason: ReasonTokenInvalid},
		{name: "non-ASCII byte after the token", header: bearer(valid + "\xff"), reason: ReasonTokenInvalid},
		{name: "non-breaking space after Bearer", header: http.Header{"Authorization": {"Bearer\u00a0" + valid}}, reason: ReasonTokenInvalid},
		// NUL and bare CR are not allowed in a field value (RFC 9110 §5.5):
		// Go's server answers 400 before any handler runs.
		{name: "NUL byte in the token", raw: advRawRequest("GET", "/req/x", "Authorization: Bearer "+h+"."+p+"\x00."+sig), status: http.StatusBadRequest},
		{name: "NUL byte after the token", raw: advRawRequest("GET", "/req/x", "Authorization: Bearer "+valid+"\x00"), status: http.StatusBadRequest},
		{name: "CR inside the token", raw: advRawRequest("GET", "/req/x", "Authorization: Bearer "+h+"\r."+p+"."+sig), status: http.StatusBadRequest},
		{name: "NUL byte in the session cookie", raw: advRawRequest("GET", "/req/x", "Cookie: __session="+valid+"\x00"), status: http.StatusBadRequest},
	}
}

// advAuthorizationCases: how the Authorization header is read. The scheme
// is case-insensitive and followed by 1*SP (RFC 9110 §11.4, RFC 6750 §2.1);
// anything that is not exactly one bearer token is an error, never a guess.
func advAuthorizationCases(mint advMint, valid string) []advCase {
	auth := func(v ...string) http.Header { return http.Header{"Authorization": v} }
	return []advCase{
		{name: "lowercase bearer", header: auth("bearer " + valid), status: 200, user: advUser},
		{name: "uppercase BEARER", header: auth("BEARER " + valid), status: 200, user: advUser},
		{name: "double space", header: auth("Bearer  " + valid), status: 200, user: advUser},
		{name: "trailing whitespace", raw: advRawRequest("GET", "/req/x", "Authorization: Bearer "+valid+" \t"), status: 200, user: advUser},
		// Clerk's SDK accepts a bare token without a scheme; so do we.
		{name: "no scheme", header: auth(valid), status: 200, user: advUser},
		{name: "tab after the scheme", header: auth("Bearer\t" + valid), reason: ReasonTokenInvalid},
		{name: "scheme only", header: auth("Bearer"), reason: ReasonTokenInvalid},
		{name: "scheme and spaces", raw: advRawRequest("GET", "/req/x", "Authorization: Bearer    "), reason: ReasonTokenInvalid},
		{name: "two tokens", header: auth("Bearer " + valid + " " + valid), reason: ReasonTokenInvalid},
		{name: "comma-joined tokens", header: auth("Bearer " + valid + ", Bearer " + valid), reason: ReasonTokenInvalid},
		{name: "scheme repeated", header: auth("Bearer Bearer " + valid), reason: ReasonTokenInvalid},
		{name: "two Authorization headers", header: auth("Bearer "+valid, "Bearer "+valid), reason: ReasonTokenInvalid},
		{name: "Authorization and a lowercase duplicate", raw: advRawRequest("GET", "/req/x", "Authorization: Bearer "+valid, "authorization: Bearer "+mint(clerktest.WithClaims(map[string]any{"sub": "user_second"}))), reason: ReasonTokenInvalid},
		{name: "valid Bearer and a Basic header", header: auth("Bearer "+valid, "Basic dXNlcjpwYXNz"), reason: ReasonTokenInvalid},
		{name: "Basic", header: auth("Basic dXNlcjpwYXNz"), reason: ReasonTokenMissing},
		{name: "JWT under Basic", header: auth("Basic " + valid), reason: ReasonTokenMissing},
		{name: "JWT under another scheme", header: auth("Token " + valid), reason: ReasonTokenMissing},
		{name: "scheme with a colon", header: auth("Bearer: " + valid), reason: ReasonTokenMissing},
		{name: "token in Proxy-Authorization", header: http.Header{"Proxy-Authorization": {"Bearer " + valid}}, reason: ReasonTokenMissing},
		{name: "token in X-Forwarded-Authorization", header: http.Header{"X-Forwarded-Authorization": {"Bearer " + valid}}, reason: ReasonTokenMissing},
	}
}

// advCookieCases: the header wins over the cookie, without fallback. If an
// invalid header fell back to a valid cookie, a cross-site request riding
// the victim's cookie could not be told from an API call; if a valid header
// were overridden by a cookie, the caller would act as someone else.
func advCookieCases(mint advMint, claimsOf advKV, valid string) []advCase {
	cookie := mint(claimsOf("sub", "user_cookie"))
	hdr := mint(claimsOf("sub", "user_header"))
	both := func(auth, cookies string) http.Header {
		h := http.Header{"Cookie": {cookies}}
		if auth != "" {
			h["Authorization"] = []string{auth}
		}
		return h
	}
	expired := mint(claimsOf("exp", time.Now().Add(-time.Hour).Unix()))
	return []advCase{
		{name: "valid cookie, invalid header", header: both("Bearer x.y.z", "__session="+cookie), reason: ReasonTokenInvalid},
		{name: "valid cookie, forged-signature header", header: both("Bearer "+mint(clerktest.WithKey(freshRSAKey())), "__session="+cookie), reason: ReasonInvalidSignature},
		{name: "valid cookie, expired header", header: both("Bearer "+expired, "__session="+cookie), reason: ReasonTokenExpired},
		{name: "valid cookie, empty Bearer", header: both("Bearer", "__session="+cookie), reason: ReasonTokenInvalid},
		{name: "invalid cookie, valid header", header: both("Bearer "+hdr, "__session=x.y.z"), status: 200, user: "user_header"},
		{name: "two valid identities: the header's wins", header: both("Bearer "+hdr, "__session="+cookie), status: 200, user: "user_header"},
		// A Basic header carries no bearer token, so the cookie is read:
		// documented behaviour (Clerk's SDK does the same).
		{name: "Basic header, valid cookie", header: both("Basic dXNlcjpwYXNz", "__session="+cookie), status: 200, user: "user_cookie"},
		{name: "Basic header, invalid cookie", header: both("Basic dXNlcjpwYXNz", "__session=x.y.z"), reason: ReasonTokenInvalid},
		{name: "cookie only", header: both("", "__session="+valid), status: 200, user: advUser},
		{name: "first of two session cookies is invalid", header: both("", "__session=x.y.z; __session="+cookie), reason: ReasonTokenInvalid},
		{name: "first of two session cookies is valid", header: both("", "__session="+cookie+"; __session=x.y.z"), status: 200, user: "user_cookie"},
		{name: "cookie name in another case", header: both("", "__Session="+cookie), reason: ReasonTokenMissing},
		{name: "look-alike cookie name", header: both("", "__session_x="+cookie+"; session="+cookie+"; __clerk_db_jwt="+cookie), reason: ReasonTokenMissing},
		{name: "expired cookie on the optional route", path: "/opt/x", header: both("", "__session="+expired), status: 200, reason: ReasonTokenExpired},
	}
}

func freshRSAKey() *rsa.PrivateKey {
	k, err := clerktest.NewRSAKey(2048)
	if err != nil {
		panic(err)
	}
	return k
}

// advQueryCases: tokens in URLs leak into access logs, Referer headers and
// browser history, so they are never read, in any mode.
func advQueryCases(valid string) []advCase {
	form := func(path string) func(*testing.T, *advSuite) (*http.Response, string) {
		return func(t *testing.T, s *advSuite) (*http.Response, string) {
			req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d%s", caddyPort, path),
				strings.NewReader("__session="+valid+"&token="+valid+"&access_token="+valid))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := s.tester.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, string(b)
		}
	}
	return []advCase{
		{name: "__session", path: "/req/x?__session=" + valid, reason: ReasonTokenMissing},
		{name: "token", path: "/req/x?token=" + valid, reason: ReasonTokenMissing},
		{name: "access_token", path: "/req/x?access_token=" + valid, reason: ReasonTokenMissing},
		{name: "authorization", path: "/req/x?authorization=Bearer%20" + valid, reason: ReasonTokenMissing},
		{name: "__clerk_db_jwt", path: "/req/x?__clerk_db_jwt=" + valid, reason: ReasonTokenMissing},
		{name: "all of them on the optional route", path: "/opt/x?__session=" + valid + "&token=" + valid + "&access_token=" + valid, status: 200, reason: ReasonTokenMissing},
		{name: "form body", send: form("/req/x"), reason: ReasonTokenMissing},
		{name: "form body on the optional route", send: form("/opt/x"), status: 200, reason: ReasonTokenMissing},
	}
}

// advClaimTypeCases: registered claims of the wrong type must fail the
// token, not be coerced (a string exp read as 0 or as "never", an array
// sub joined into a user id).
func advClaimTypeCases(mint advMint, claimsOf advKV, rawToken func(string, string) string, baseHeader, baseClaims string) []advCase {
	c := func(kv ...any) http.Header { return bearer(mint(claimsOf(kv...))) }
	raw := func(members string) http.Header { return bearer(rawToken(baseHeader, members)) }
	return []advCase{
		{name: "numeric sub", header: c("sub", 42), reason: ReasonVerificationFailed},
		{name: "array sub", header: c("sub", []string{"user_a", "user_b"}), reason: ReasonVerificationFailed},
		{name: "object sub", header: c("sub", map[string]any{"id": "user_a"}), reason: ReasonVerificationFailed},
		{name: "boolean sub", header: c("sub", true), reason: ReasonVerificationFailed},
		{name: "null sub", header: raw(`"sub":null,` + baseClaims), reason: ReasonVerificationFailed},
		// An empty sub would pass as an authenticated request with no
		// identity: X-User-Id absent, as for an anonymous one.
		{name: "empty sub", header: c("sub", ""), reason: ReasonVerificationFailed},
		{name: "string exp", header: c("exp", "9999999999"), reason: ReasonVerificationFailed},
		{name: "boolean exp", header: c("exp", true), reason: ReasonVerificationFailed},
		{name: "exp beyond float64", header: raw(`"sub":"user_test","iss":"` + advIssuer + `","azp":"` + advAZP + `","exp":1e400`), reason: ReasonVerificationFailed},
		{name: "exp as a huge integer literal", header: raw(`"sub":"user_test","iss":"` + advIssuer + `","azp":"` + advAZP + `","exp":-99999999999999999999999999999999`), reason: ReasonTokenExpired},
		{name: "negative exp", header: c("exp", -1), reason: ReasonTokenExpired},
		{name: "zero exp", header: c("exp", 0), reason: ReasonTokenExpired},
		{name: "missing exp", header: c("exp", nil), reason: ReasonVerificationFailed},
		{name: "string iat", header: c("iat", "0"), reason: ReasonVerificationFailed},
		{name: "object nbf", header: c("nbf", map[string]any{}), reason: ReasonVerificationFailed},
		{name: "numeric iss", header: c("iss", 1), reason: ReasonVerificationFailed},
		{name: "array iss", header: c("iss", []string{advIssuer}), reason: ReasonVerificationFailed},
		{name: "array azp", header: c("azp", []string{advAZP}), reason: ReasonVerificationFailed},
		{name: "numeric sid", header: c("sid", 1), reason: ReasonVerificationFailed},
		// Accepted: valid types, odd but harmless values.
		{name: "exp far in the future", header: c("exp", 1e300), status: 200, user: advUser},
		{name: "negative iat and nbf", header: c("iat", -1e300, "nbf", -1), status: 200, user: advUser},
	}
}

// advTimeCases: exp/nbf/iat against the real clock (exact boundaries are in
// verifier_test.go, on a fixed clock). Margins are wide enough that a slow
// machine cannot flip a result: a rejected token only gets more rejected
// as time passes, an accepted one has minutes to spare.
func advTimeCases(mint advMint, claimsOf advKV) []advCase {
	now := time.Now()
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	c := func(path string, kv ...any) advCase {
		return advCase{path: path, header: bearer(mint(claimsOf(kv...)))}
	}
	with := func(tc advCase, name string, status int, reason string) advCase {
		tc.name, tc.status, tc.reason = name, status, reason
		if status == 200 {
			tc.user = advUser
		}
		return tc
	}
	return []advCase{
		with(c("/leeway0/x", "exp", at(-10*time.Second)), "leeway 0: expired 10s ago", 401, ReasonTokenExpired),
		with(c("/leeway0/x", "exp", at(-time.Second)), "leeway 0: expired 1s ago", 401, ReasonTokenExpired),
		with(c("/leeway0/x", "exp", float64(at(-10*time.Second))+0.5), "leeway 0: fractional exp in the past", 401, ReasonTokenExpired),
		with(c("/leeway0/x", "exp", float64(at(10*time.Minute))+0.5), "leeway 0: fractional exp in the future", 200, ""),
		with(c("/leeway0/x", "nbf", at(10*time.Minute)), "leeway 0: nbf in the future", 401, ReasonNotActiveYet),
		with(c("/leeway0/x", "iat", at(10*time.Minute)), "leeway 0: iat in the future", 401, ReasonIATInFuture),
		with(c("/leeway0/x", "exp", at(10*time.Minute), "nbf", at(-time.Minute), "iat", at(-time.Minute)), "leeway 0: valid window", 200, ""),
		with(c("/req/x", "exp", at(-30*time.Second)), "default leeway: expired 30s ago", 401, ReasonTokenExpired),
		with(c("/req/x", "nbf", at(10*time.Minute)), "default leeway: nbf in 10 min", 401, ReasonNotActiveYet),
		with(c("/req/x", "iat", at(10*time.Minute)), "default leeway: iat in 10 min", 401, ReasonIATInFuture),
		with(c("/leeway5m/x", "exp", at(-time.Minute)), "leeway 5m: expired 1 min ago passes", 200, ""),
		with(c("/leeway5m/x", "exp", at(-10*time.Minute)), "leeway 5m: expired 10 min ago", 401, ReasonTokenExpired),
		with(c("/leeway5m/x", "nbf", at(time.Minute)), "leeway 5m: nbf in 1 min passes", 200, ""),
		with(c("/leeway5m/x", "iat", at(30*time.Minute)), "leeway 5m: iat in 30 min", 401, ReasonIATInFuture),
		// The time checks run after the signature: a forged, expired
		// token learns it is forged, not that it is expired.
		{name: "forged and expired", path: "/leeway0/x", header: bearer(mint(clerktest.WithKey(freshRSAKey()), claimsOf("exp", at(-time.Hour)))), reason: ReasonInvalidSignature},
	}
}

// advIssuerCases: iss must equal the configured issuer exactly. A
// comparison by prefix, suffix, host parsing or case folding would accept
// tokens minted for look-alike origins (another tenant sharing the key set,
// or a JWKS proxy).
func advIssuerCases(mint advMint, claimsOf advKV) []advCase {
	bad := []string{
		"https://clerk.example.com.evil",
		"https://clerk.example.com.",
		"https://Clerk.Example.com",
		"HTTPS://clerk.example.com",
		"http://clerk.example.com",
		"https://clerk.example.com//",
		"https://clerk.example.com@evil.example",
		"https://evil.example@clerk.example.com",
		"https://clerk.example.com:443",
		"https://clerk.example.com/x",
		"https://clerk.example.com?",
		"https://clerk.example.com#",
		" https://clerk.example.com",
		"https://clerk.example.com%2f",
		"https://evil.clerk.example.com",
		"https://clerk.example.co",
		"clerk.example.com",
		"",
	}
	var cases []advCase
	for _, iss := range bad {
		cases = append(cases, advCase{name: fmt.Sprintf("%q", iss), header: bearer(mint(claimsOf("iss", iss))), reason: ReasonInvalidIssuer})
	}
	return append(cases,
		advCase{name: "missing iss", header: bearer(mint(claimsOf("iss", nil))), reason: ReasonInvalidIssuer},
		// Documented: one trailing slash is ignored, as Clerk's issuers are
		// sometimes written with one.
		advCase{name: "trailing slash passes", header: bearer(mint(claimsOf("iss", advIssuer+"/"))), status: 200, user: advUser},
	)
}

// advAZPCases: azp must equal a configured party exactly, or a token
// obtained on a look-alike origin (a subdomain taken over, an attacker page
// on the same Clerk instance) would be accepted here.
func advAZPCases(mint advMint, claimsOf advKV) []advCase {
	bad := []string{
		"https://app.example.com.evil",
		"https://app.example.com/",
		"HTTPS://APP.EXAMPLE.COM",
		"http://app.example.com",
		"https://app.example.com:443",
		"https://evil.app.example.com",
		"https://app.example.com@evil.example",
		"https://evil.example#https://app.example.com",
		"app.example.com",
		"",
	}
	var cases []advCase
	for _, azp := range bad {
		cases = append(cases, advCase{name: fmt.Sprintf("%q", azp), header: bearer(mint(claimsOf("azp", azp))), reason: ReasonInvalidAuthorizedPart})
	}
	return append(cases,
		advCase{name: "missing azp", header: bearer(mint(claimsOf("azp", nil))), reason: ReasonInvalidAuthorizedPart},
		advCase{name: "azp list containing the party", header: bearer(mint(claimsOf("azp", []string{advAZP}))), reason: ReasonVerificationFailed},
	)
}

// advClassCases: the same instance key signs session tokens, JWT templates
// (minted for other audiences, often long-lived), M2M and OAuth tokens. A
// route that takes sessions only must refuse the others.
func advClassCases(mint advMint, claimsOf, headerOf advKV) []advCase {
	p := "/session/x"
	return []advCase{
		{name: "session token passes", path: p, header: bearer(mint()), status: 200, user: advUser},
		{name: "template token", path: p, header: bearer(mint(clerktest.Template())), reason: ReasonTypeMismatch},
		{name: "template token without cat", path: p, header: bearer(mint(clerktest.Template(), headerOf("cat", nil))), reason: ReasonTypeMismatch},
		{name: "template token with the ignore cat", path: p, header: bearer(mint(clerktest.Template(), headerOf("cat", clerktest.CatIgnore))), reason: ReasonTypeMismatch},
		{name: "M2M token", path: p, header: bearer(mint(clerktest.M2M())), reason: ReasonTypeMismatch},
		{name: "M2M token on the default route", header: bearer(mint(clerktest.M2M())), reason: ReasonTypeMismatch},
		{name: "machine subject in a session token", header: bearer(mint(claimsOf("sub", "mch_1"))), reason: ReasonTypeMismatch},
		{name: "OAuth access token typ", path: p, header: bearer(mint(headerOf("typ", "at+jwt"))), reason: ReasonTypeMismatch},
		{name: "unknown cat", path: p, header: bearer(mint(headerOf("cat", "cl_B7d4PD999AAA"))), reason: ReasonTypeMismatch},
		{name: "numeric cat", path: p, header: bearer(mint(headerOf("cat", 1))), reason: ReasonTokenInvalid},
		{name: "typ lowercase", header: bearer(mint(headerOf("typ", "jwt"))), reason: ReasonTokenInvalid},
		{name: "template token passes the default route", header: bearer(mint(clerktest.Template())), status: 200, user: advUser},
		// A verdict reached on a lenient route must not carry over to a
		// stricter one (a verified-token cache shared between handlers
		// would do that): the same token, first where it passes, then
		// where it must not.
		{name: "template accepted on / is still refused on /session", send: advTwice("/req/x", p, mint(clerktest.Template())), reason: ReasonTypeMismatch},
		{name: "token within 5m leeway is still expired on /req", send: advTwice("/leeway5m/x", "/req/x", mint(claimsOf("exp", time.Now().Add(-time.Minute).Unix()))), reason: ReasonTokenExpired},
		{name: "token accepted on /req is still refused on /admin", send: advTwice("/req/x", "/admin/x", mint()), status: 403, reason: ReasonMissingRole},
	}
}

// advTwice sends token to first, where it must pass, then to second; the
// case's expectations apply to the second answer.
func advTwice(first, second, token string) func(*testing.T, *advSuite) (*http.Response, string) {
	return func(t *testing.T, s *advSuite) (*http.Response, string) {
		resp, body := advDo(t, s.tester, "", first, bearer(token))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d (%q), want 200", first, resp.StatusCode, advShort(body))
		}
		for _, r := range s.up.take() {
			advCheckForgery(t, r)
		}
		return advDo(t, s.tester, "", second, bearer(token))
	}
}

// advDuplicateCases: JSON with repeated member names. encoding/json keeps
// the last value of a repeated name AND matches names case-insensitively
// (with Unicode folding: "ſub" is "sub"), while the claim placeholders and
// the claim requirement read the payload as a map, case-sensitively. Without
// a check, {"sub":"user_a","Sub":"user_b"} forwards X-User-Id user_b while
// `claim sub user_a` and {http.auth.user.claims.sub} see user_a; parsers
// that keep the first value (or reject) disagree with both. All these
// tokens carry a valid issuer signature, so only the parse is attacked:
// they must be rejected.
func advDuplicateCases(rawToken func(string, string) string, baseHeader, baseClaims string) []advCase {
	payload := func(members string) http.Header { return bearer(rawToken(baseHeader, members+","+baseClaims)) }
	header := func(members string) http.Header {
		return bearer(rawToken(members, `"sub":"user_test",`+baseClaims))
	}
	return []advCase{
		{name: "sub twice", header: payload(`"sub":"user_a","sub":"user_b"`), reason: ReasonVerificationFailed},
		{name: "sub and Sub", header: payload(`"sub":"user_a","Sub":"user_b"`), reason: ReasonVerificationFailed},
		{name: "sub and SUB against a sub requirement", path: "/claim-sub/x", header: payload(`"sub":"user_a","SUB":"user_b"`), reason: ReasonVerificationFailed},
		{name: "sub and the long-s ſub", header: payload(`"sub":"user_a","ſub":"user_b"`), reason: ReasonVerificationFailed},
		{name: "only SUB", header: payload(`"SUB":"user_b"`), reason: ReasonVerificationFailed},
		{name: "sub and an escaped s\\u0075b", header: payload(`"sub":"user_a","s\u0075b":"user_b"`), reason: ReasonVerificationFailed},
		{name: "exp twice, past then future", header: bearer(rawToken(baseHeader, `"sub":"user_test","iss":"`+advIssuer+`","azp":"`+advAZP+`","exp":1,"exp":9999999999`)), reason: ReasonVerificationFailed},
		{name: "iss and ISS", header: payload(`"sub":"user_test","iss":"https://evil.example","ISS":"` + advIssuer + `"`), reason: ReasonVerificationFailed},
		{name: "alg twice, none then RS256", header: header(`"alg":"none",` + baseHeader), reason: ReasonTokenInvalid},
		{name: "alg and ALG", header: header(baseHeader + `,"ALG":"RS256"`), reason: ReasonTokenInvalid},
		{name: "kid twice", header: header(`"kid":"attacker",` + baseHeader), reason: ReasonTokenInvalid},
		{name: "kid and the Kelvin-sign \u212aid", header: header(baseHeader + `,"\u212aid":"attacker"`), reason: ReasonTokenInvalid},
		{name: "crit hidden as CRIT", header: header(baseHeader + `,"CRIT":["exp"]`), reason: ReasonTokenInvalid},
		// Repeats inside nested objects are the issuer's business and
		// never decide the identity: the token passes, and the only
		// reader of nested claims (the map behind the claim placeholders
		// and requirements) consistently keeps the last value.
		{name: "nested repeat is not a top-level repeat", header: payload(`"sub":"user_test","metadata":{"plan":"a","plan":"b"}`), status: 200, user: advUser, plan: "b"},
	}
}

// advForgeryCases: forward_header must be the only source of the identity
// headers, in every mode: a client copy (or a CGI look-alike such as
// X_User_Id, which becomes the same HTTP_X_USER_ID variable) must never
// reach the upstream. run() adds the forged copies to every request of the
// suite; these cases cover each mode once more, explicitly.
func advForgeryCases(mint advMint, claimsOf advKV, valid string) []advCase {
	org := mint(clerktest.V1Org("org_1", "acme", "org:admin"))
	// Many copies: a strip loop that stopped after the first match, or
	// kept the last copy, would let one through.
	many := http.Header{"Authorization": {"Bearer " + valid}}
	for range 150 {
		many["X_User_Id"] = append(many["X_User_Id"], "user_"+advMarker)
		many["X-User-Id"] = append(many["X-User-Id"], "user_"+advMarker)
	}
	preflight := func(path string) advCase {
		return advCase{
			name: "CORS preflight on " + path, method: http.MethodOptions, path: path, status: 200,
			header: http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}},
		}
	}
	trailer := func(path, auth, declared string) []byte {
		lines := []string{"Transfer-Encoding: chunked"}
		if declared != "" {
			lines = append(lines, "Trailer: "+declared)
		}
		if auth != "" {
			lines = append(lines, "Authorization: Bearer "+auth)
		}
		req := string(advRawRequest("POST", path, lines...))
		return []byte(req + "4\r\nbody\r\n0\r\nX-User-Id: user_" + advMarker + "\r\nX_User_Id: user_" + advMarker + "\r\nX-Org-Id: org_" + advMarker + "\r\n\r\n")
	}
	return []advCase{
		{name: "required, valid token", header: bearer(valid), status: 200, user: advUser},
		{name: "required, valid token with an org", header: bearer(org), status: 200, user: advUser, org: "org_1"},
		{name: "required, no token", reason: ReasonTokenMissing},
		{name: "required, invalid token", header: bearer("x.y.z"), reason: ReasonTokenInvalid},
		{name: "optional, anonymous", path: "/opt/x", status: 200, reason: ReasonTokenMissing},
		{name: "optional, invalid token", path: "/opt/x", header: bearer("x.y.z"), status: 200, reason: ReasonTokenInvalid},
		{name: "optional, forged signature", path: "/opt/x", header: bearer(mint(clerktest.WithKey(freshRSAKey()))), status: 200, reason: ReasonInvalidSignature},
		{name: "optional, valid token", path: "/opt/x", header: bearer(valid), status: 200, user: advUser},
		{name: "optional, failing requirement", path: "/opt-admin/x", header: bearer(valid), status: 403, reason: ReasonMissingRole},
		{name: "optional, meeting requirement", path: "/opt-admin/x", header: bearer(mint(claimsOf("roles", []string{"admin"}))), status: 200, user: advUser},
		{name: "failing requirement", path: "/admin/x", header: bearer(valid), status: 403, reason: ReasonMissingRole},
		{name: "meeting requirement", path: "/admin/x", header: bearer(mint(claimsOf("roles", "admin"))), status: 200, user: advUser},
		{name: "300 forged copies", header: many, noForge: true, status: 200, user: advUser},
		{name: "look-alikes only, no token", header: http.Header{"X_USER_ID": {"user_" + advMarker}, "x_user-id": {"user_" + advMarker}}, noForge: true, reason: ReasonTokenMissing},
		// A preflight passes unauthenticated; it must still lose the
		// forged headers, and header_up placeholders must expand to
		// nothing rather than be forwarded literally.
		preflight("/req/x"),
		preflight("/opt/x"),
		preflight("/admin/x"),
		{name: "OPTIONS without preflight headers", method: http.MethodOptions, reason: ReasonTokenMissing},
		// A client naming the identity headers in Connection would make
		// reverse_proxy drop them as hop-by-hop (RFC 9110 §7.6.1): the
		// upstream would get a verified request without its identity.
		{name: "identity headers named in Connection", header: http.Header{"Authorization": {"Bearer " + org}, "Connection": {"X-User-Id, X-Org-Id, x_user_id"}}, status: 200, user: advUser, org: "org_1"},
		{name: "identity headers named in Connection, optional", path: "/opt/x", header: http.Header{"Authorization": {"Bearer " + org}, "Connection": {"keep-alive, X-User-Id", "X-Org-Id"}}, status: 200, user: advUser, org: "org_1"},
		// Trailers arrive after the handler ran: forged identity fields
		// in them must not be forwarded either.
		{name: "forged trailers, valid token", raw: trailer("/req/x", valid, "X-User-Id, X_User_Id, X-Org-Id"), status: 200, user: advUser},
		{name: "forged trailers, optional and anonymous", raw: trailer("/opt/x", "", "X-User-Id, X_User_Id, X-Org-Id"), status: 200, reason: ReasonTokenMissing},
		{name: "forged trailers under another declared name", raw: trailer("/req/x", valid, "X-Checksum"), status: 200, user: advUser},
		{name: "forged trailers, undeclared", raw: trailer("/req/x", valid, ""), status: 200, user: advUser},
	}
}

// advInjectionCases: claim values are forwarded in headers. A claim the user
// controls (unsafe metadata copied into the session token) holding CR/LF
// must not smuggle a header to the upstream.
func advInjectionCases(mint advMint, claimsOf advKV) []advCase {
	plan := func(v string) http.Header {
		return bearer(mint(claimsOf("metadata", map[string]any{"plan": v})))
	}
	return []advCase{
		{name: "plain claim value is forwarded", header: plan("pro"), status: 200, user: advUser, plan: "pro"},
		// Go's transport refuses invalid field values: the proxy answers
		// 502 and the upstream gets nothing, rather than a smuggled header.
		{name: "CRLF in a forwarded claim", header: plan("pro\r\nX-User-Id: user_admin"), status: http.StatusBadGateway},
		{name: "LF in a forwarded claim", header: plan("pro\nX-User-Id: user_admin"), status: http.StatusBadGateway},
		{name: "NUL in a forwarded claim", header: plan("pro\x00"), status: http.StatusBadGateway},
		{name: "CRLF in sub", header: bearer(mint(claimsOf("sub", "user_a\r\nX-Org-Id: org_admin"))), status: http.StatusBadGateway},
	}
}

// advOversizeCases: huge tokens and headers must be refused early and
// cheaply. Caddy's server limits the header block (16 KiB + Go's slack,
// answered with 431 before any handler); below that, clerk_auth refuses
// tokens over maxTokenSize before parsing them.
func advOversizeCases(t *testing.T, mint advMint, claimsOf advKV) []advCase {
	pad := func(n int) string {
		return mint(claimsOf("pad", strings.Repeat("p", n)))
	}
	over := pad(maxTokenSize * 3 / 4) // base64 grows it by 4/3: just over the limit
	for len(over) <= maxTokenSize {
		over = pad(len(over))
	}
	under := pad(maxTokenSize/2 + maxTokenSize/5)
	if len(under) >= maxTokenSize {
		t.Fatalf("padding arithmetic: %d", len(under))
	}
	huge := func(size int, header string) []byte {
		return advRawRequest("GET", "/req/x", header+strings.Repeat("a", size))
	}
	mib := huge(1<<20, "Authorization: Bearer ")
	return []advCase{
		{name: "token just under the limit passes", header: bearer(under), status: 200, user: advUser},
		{name: "token just over the limit", header: bearer(over), reason: ReasonTokenInvalid},
		{name: "64 KiB Authorization", raw: huge(64<<10, "Authorization: Bearer "), status: http.StatusRequestHeaderFieldsTooLarge},
		{name: "1 MiB Authorization", raw: mib, status: http.StatusRequestHeaderFieldsTooLarge},
		{name: "1 MiB session cookie", raw: huge(1<<20, "Cookie: __session="), status: http.StatusRequestHeaderFieldsTooLarge},
		{name: "1 MiB of headers", raw: advRawRequest("GET", "/req/x", strings.Repeat("X-User-Id: user_"+advMarker+"\r\n", (1<<20)/30)+"X-End: 1"), status: http.StatusRequestHeaderFieldsTooLarge},
		// Memory: ten 1 MiB requests must not cost anything near 10 MiB
		// of allocations: the server stops reading at its limit.
		{name: "1 MiB requests allocate boundedly", status: http.StatusRequestHeaderFieldsTooLarge, send: func(t *testing.T, _ *advSuite) (*http.Response, string) {
			const n = 10
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var resp *http.Response
			var body string
			for range n {
				resp, body = advRaw(t, mib)
			}
			runtime.ReadMemStats(&after)
			if d := after.TotalAlloc - before.TotalAlloc; d > n*(1<<20)/2 {
				t.Errorf("%d requests of 1 MiB allocated %d KiB in all", n, d>>10)
			} else {
				t.Logf("%d requests of 1 MiB allocated %d KiB in all", n, d>>10)
			}
			return resp, body
		}},
	}
}

// advSelfSigned is a certificate for the attacker's key, for x5c/x5u.
func advSelfSigned(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "clerk.example.com"},
		DNSNames:     []string{"clerk.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
