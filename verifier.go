package clerkauth

import (
	"context"
	"crypto/rsa"
	"slices"
	"strings"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
)

// sessionPending is the sts of a session with unfinished tasks.
const sessionPending = "pending"

// Clerk's token categories (the `cat` header).
const (
	catSession  = "cl_B7d4PD111AAA"
	catTemplate = "cl_B7d4PD222AAA"
	catIgnore   = "cl_I7d4PD111III"
)

// Token classes, as exposed in {http.auth.user.token_type}.
const (
	TokenTypeSession  = "session"
	TokenTypeTemplate = "template"
)

// maxTokenSize bounds the work done on a token before anything is verified.
// Clerk's session token must fit a 4 KiB cookie; templates are larger but
// nowhere near this.
const maxTokenSize = 16 << 10

// keyProvider yields the verification key for a token. It is the seam between
// the verifier and the way keys are obtained (a shared JWKS cache, or a PEM).
type keyProvider interface {
	// Key returns the RSA key for kid and, when the key set pins one, the
	// only algorithm that key may be used with ("" = any RS*). An error
	// wrapping jwks.ErrUnknownKID means there are keys, but not for kid;
	// any other means there are none to be had.
	Key(ctx context.Context, kid string) (*rsa.PublicKey, string, error)
	// Current reports whether pub is still kid's key and still fit for use
	// (not past the stale limit): the cache asks it on every hit, so that a
	// key rotated out, or keys too old to trust, end cached tokens too. It
	// must be cheap and never touch the network.
	Current(kid string, pub *rsa.PublicKey) bool
}

// refetcher is a key source that can refresh a key that failed a signature
// check, for keys rotated under an unchanged kid.
type refetcher interface {
	Refetch(ctx context.Context, kid string) (*rsa.PublicKey, string, error)
}

// verifierConfig is what a verifier checks tokens against.
type verifierConfig struct {
	issuers           []string // normalised: no trailing slash
	audiences         []string
	authorizedParties []string
	leeway            time.Duration
	rolesClaim        string          // "" = defaultRoles
	accept            map[string]bool // token classes accepted; nil = all
	allowPending      bool
	cacheSize         int // verified tokens to remember; 0 = no cache
}

// verifier checks Clerk-issued JWTs. It holds no Caddy types, so it can be
// tested and benchmarked on its own; the HTTP handler adapts it to Caddy.
type verifier struct {
	verifierConfig
	keys keyProvider
	now  func() time.Time

	// cache remembers verified tokens; nil when token_cache is off.
	cache *verifiedCache
	// observeCache, if set, is told whether each lookup hit the cache.
	observeCache func(hit bool)
}

// newVerifier is the one way to build a verifier, for the handler and for
// every test, so none of them can miss a default.
func newVerifier(keys keyProvider, cfg verifierConfig) *verifier {
	if cfg.rolesClaim == "" {
		cfg.rolesClaim = defaultRoles
	}
	v := &verifier{verifierConfig: cfg, keys: keys, now: timeNow}
	if cfg.cacheSize > 0 {
		v.cache = newVerifiedCache(cfg.cacheSize)
		v.observeCache = observeTokenCache
	}
	return v
}

// jwtHeader is the JOSE header, as its member method reads it.
type jwtHeader struct {
	Alg  string
	Kid  string
	Typ  string // raw JSON, "" when absent, and compared as written
	Cat  string // raw JSON
	Crit string // raw JSON
}

var headerNames = newMemberNames("alg", "kid", "typ", "cat", "crit")

func (h *jwtHeader) member(name, value string) error {
	var err error
	switch name {
	case "alg":
		h.Alg, err = typedString(name, value)
	case "kid":
		h.Kid, err = typedString(name, value)
	case "typ":
		h.Typ = value
	case "cat":
		h.Cat = value
	case "crit":
		h.Crit = value
	default:
		return headerNames.refuseVariant(name)
	}
	return err
}

// verify checks token and returns the identity it proves, from the cache of
// verified tokens when it can. A cached token counts only while the key that
// verified it is still current: a key rotated out of the set, or keys past
// jwks_max_stale, send it through verifyFresh, which then gives exactly the
// answer an uncached token gets.
func (v *verifier) verify(ctx context.Context, token string) (*Identity, error) {
	if v.cache == nil {
		id, _, err := v.verifyFresh(ctx, token)
		return id, err
	}
	now := v.now()
	e, hit := v.cache.get(token, now)
	hit = hit && v.keys.Current(e.kid, e.key)
	if v.observeCache != nil {
		v.observeCache(hit)
	}
	if hit {
		return e.id, nil
	}
	id, window, err := v.verifyFresh(ctx, token)
	if err == nil {
		v.cache.put(token, window, now)
	}
	return id, err
}

// verifyFresh checks token from scratch. The order follows Clerk's
// verifyJwt: structure, header, signature, and only then claims, so a forged
// token learns nothing about which claim would have failed. It also returns
// the time window in which the token stays valid, for the cache.
func (v *verifier) verifyFresh(ctx context.Context, token string) (*Identity, cacheEntry, error) {
	if len(token) > maxTokenSize {
		return nil, cacheEntry{}, reject(ReasonTokenInvalid, "token is %d bytes, above the %d byte limit", len(token), maxTokenSize)
	}
	if i := indexNotTokenChar(token); i >= 0 {
		// Go's base64 decoder skips CR and LF even in Strict mode, so
		// without this "<token>\n" would verify: one token, many spellings.
		return nil, cacheEntry{}, reject(ReasonTokenInvalid, "byte %d is not base64url or '.'", i)
	}
	rawHeader, rawPayload, rawSig, ok := splitJWT(token)
	if !ok {
		return nil, cacheEntry{}, reject(ReasonTokenInvalid, "a JWT has exactly three dot-separated segments")
	}

	// One stack buffer serves the header, the signing input and the payload
	// in turn, sparing an allocation for each; what Clerk issues fits it.
	var buf [2048]byte
	var hdr jwtHeader
	rawJSON, err := decodeSegment(buf[:0], rawHeader)
	if err == nil {
		err = walkObject(rawJSON, hdr.member)
	}
	if err != nil {
		return nil, cacheEntry{}, reject(ReasonTokenInvalid, "header: %v", err)
	}
	if hdr.Crit != "" {
		// RFC 7515 §4.1.11: extensions we do not understand must be refused.
		return nil, cacheEntry{}, reject(ReasonTokenInvalid, "header has crit parameters, which are not supported")
	}
	switch hdr.Typ {
	case "", `"JWT"`:
	case `"at+jwt"`, `"application/at+jwt"`:
		return nil, cacheEntry{}, reject(ReasonTypeMismatch, "OAuth access tokens are not session tokens")
	default:
		return nil, cacheEntry{}, reject(ReasonTokenInvalid, "header typ must be JWT or absent")
	}
	class, err := classFromCategory(hdr.Cat)
	if err != nil {
		return nil, cacheEntry{}, err
	}
	hash, ok := jwks.Hash(hdr.Alg)
	if !ok {
		return nil, cacheEntry{}, reject(ReasonInvalidAlgorithm, "alg %q is not one of RS256, RS384, RS512", truncate(hdr.Alg, 16))
	}

	pub, err := v.checkSigned(ctx, &hdr, hash, token, len(rawHeader)+1+len(rawPayload), rawSig, buf[:0])
	if err != nil {
		return nil, cacheEntry{}, err
	}

	payload, err := decodeSegment(buf[:0], rawPayload)
	if err != nil {
		return nil, cacheEntry{}, reject(ReasonTokenInvalid, "payload is not base64url")
	}
	var c claims
	if err := c.decode(payload); err != nil {
		return nil, cacheEntry{}, reject(ReasonVerificationFailed, "claims: %v", err)
	}
	id, err := v.checkClaims(&c, payload, class)
	if err != nil {
		return nil, cacheEntry{}, err
	}
	e := v.window(&c, id)
	e.kid, e.key = hdr.Kid, pub
	return id, e, nil
}

// window is when the verified token passes the time checks, with leeway.
func (v *verifier) window(c *claims, id *Identity) cacheEntry {
	e := cacheEntry{id: id, expires: unixTime(c.Exp.sec).Add(v.leeway)}
	for _, t := range []optionalDate{c.Nbf, c.Iat} {
		if t.set {
			if nb := unixTime(t.sec).Add(-v.leeway); nb.After(e.notBefore) {
				e.notBefore = nb
			}
		}
	}
	return e
}

// checkClaims applies the claim rules in the order of Clerk's verifyJwt
// (sub, aud, azp, iss, exp, nbf, iat), each claim's type judged by its own
// check so a wrong type gets that check's reason code. The checks Clerk
// leaves to authenticateRequest come with sub (a machine subject) and last
// (token class, pending session).
func (v *verifier) checkClaims(c *claims, payload string, class string) (*Identity, error) {
	if c.Sub == "" {
		return nil, reject(ReasonVerificationFailed, "sub claim is missing or empty")
	}
	if strings.HasPrefix(c.Sub, "mch_") {
		return nil, reject(ReasonTypeMismatch, "machine (M2M) tokens are not session tokens")
	}
	if len(v.audiences) > 0 {
		if err := checkAudience(c.Aud, v.audiences); err != nil {
			return nil, err
		}
	}
	if err := v.checkAuthorizedParty(c.Azp); err != nil {
		return nil, err
	}
	iss, mistyped := stringClaim(c.Iss)
	if mistyped {
		return nil, reject(ReasonInvalidIssuer, "iss claim is not a string")
	}
	if !slices.Contains(v.issuers, strings.TrimSuffix(iss, "/")) {
		return nil, reject(ReasonInvalidIssuer, "iss %q is not a configured issuer", truncate(iss, 80))
	}
	if !c.Exp.set {
		return nil, reject(ReasonVerificationFailed, "exp claim is missing")
	}
	now := v.now()
	skew := v.leeway.Seconds()
	nowSec := float64(now.UnixNano()) / 1e9
	if c.Exp.sec <= nowSec-skew {
		return nil, reject(ReasonTokenExpired, "expired %s ago", durationSince(c.Exp.sec, nowSec))
	}
	if c.Nbf.set && c.Nbf.sec > nowSec+skew {
		return nil, reject(ReasonNotActiveYet, "not valid for another %s", durationSince(nowSec, c.Nbf.sec))
	}
	if c.Iat.set && c.Iat.sec > nowSec+skew {
		return nil, reject(ReasonIATInFuture, "issued %s in the future", durationSince(nowSec, c.Iat.sec))
	}
	if class == "" {
		// Template tokens carry no sid; Clerk uses that to tell them apart
		// from sessions when the cat header is absent (older instances).
		class = TokenTypeTemplate
		if c.Sid != "" {
			class = TokenTypeSession
		}
	}
	if v.accept != nil && !v.accept[class] {
		return nil, reject(ReasonTypeMismatch, "%s tokens are not accepted here", class)
	}
	id := newIdentity(c, payload, class, v.rolesClaim)
	if id.SessionStatus == sessionPending && !v.allowPending {
		// Clerk's treatPendingAsSignedOut: the user has tasks left.
		return nil, reject(ReasonSessionPending, "the session is pending (sts=pending)")
	}
	return id, nil
}

// classFromCategory maps the `cat` header to a token class: "" means "decide
// from the claims". Any category that is not a session or template (M2M,
// OAuth, or one Clerk adds later) is refused: fail closed.
func classFromCategory(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	cat, err := typedString("cat", raw)
	if err != nil {
		return "", reject(ReasonTokenInvalid, "header cat is not a string")
	}
	switch cat {
	case catSession:
		return TokenTypeSession, nil
	case catTemplate:
		return TokenTypeTemplate, nil
	case catIgnore:
		return "", nil
	}
	return "", reject(ReasonTypeMismatch, "token category %q is not a session or JWT template", truncate(cat, 32))
}

// checkAuthorizedParty checks azp against authorized_parties. azp is read
// into the identity, so it must be a string when present even where no
// authorized parties are configured.
func (v *verifier) checkAuthorizedParty(raw string) error {
	azp, mistyped := stringClaim(raw)
	switch {
	case mistyped:
		return reject(ReasonInvalidAuthorizedPart, "azp claim is not a string")
	case len(v.authorizedParties) == 0 || slices.Contains(v.authorizedParties, azp):
		return nil
	case azp == "":
		return reject(ReasonInvalidAuthorizedPart, "azp claim is missing")
	}
	return reject(ReasonInvalidAuthorizedPart, "azp %q is not an authorized party", truncate(azp, 80))
}

// checkAudience requires aud to be a string, or an array of strings, that
// names one of want. Clerk's SDK skips an aud of any other type; a
// configured audience is a requirement here, so anything else fails it.
func checkAudience(raw string, want []string) error {
	if raw == "" || raw == "null" {
		return reject(ReasonInvalidAudience, "aud claim is missing")
	}
	if one, ok := stringValue(raw); ok {
		if slices.Contains(want, one) {
			return nil
		}
		return reject(ReasonInvalidAudience, "aud %q is not an accepted audience", truncate(one, 80))
	}
	n, matched, mistyped := 0, false, false
	isArray := eachElement(raw, func(e string) {
		a, ok := stringValue(e)
		n, matched, mistyped = n+1, matched || ok && slices.Contains(want, a), mistyped || !ok
	})
	switch {
	case !isArray || mistyped:
		return reject(ReasonInvalidAudience, "aud must be a string or an array of strings")
	case matched:
		return nil
	}
	return reject(ReasonInvalidAudience, "none of the %d aud values is an accepted audience", n)
}

// truncate keeps attacker-controlled strings short in errors and logs.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func durationSince(from, to float64) time.Duration {
	d := to - from
	if d > 1e9 {
		d = 1e9
	}
	return time.Duration(d * float64(time.Second)).Round(time.Millisecond)
}
