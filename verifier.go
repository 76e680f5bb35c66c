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
	accept            map[string]bool // token classes accepted; nil = defaultAccept
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
	if cfg.accept == nil {
		cfg.accept, _ = acceptedClasses(nil)
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
// authenticateRequest and verifyJwt: structure, header, the token's class
// (refused if the route does not take it, whatever the signature),
// signature, and only then claims, so a forged token learns nothing about
// which claim would have failed. It also returns the time window in which
// the token stays valid, for the cache.
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

	// One stack buffer serves the header and then the signing input,
	// sparing an allocation for each; what Clerk issues fits it.
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

	// The payload is read before the signature only to tell the token's
	// class, as Clerk's authenticateRequest does: nothing in it is trusted,
	// and its errors are reported after the signature verifies.
	payload, payloadErr := decodeSegment(buf[:0], rawPayload)
	var c claims
	claimsErr := payloadErr
	if claimsErr == nil {
		claimsErr = c.decode(payload)
	}
	var form tokenForm
	if payloadErr == nil && rawSig != "" && rawHeader != "" {
		// Clerk tells machine tokens only in its JWT format (three non-empty
		// segments) and from a payload that parses; strict claim errors are
		// reported later, after the signature.
		form = unverifiedForm(payload, &c, claimsErr)
	}
	class, err := classify(&hdr, form)
	if err != nil {
		return nil, cacheEntry{}, err
	}
	if !v.accept[class] {
		return nil, cacheEntry{}, reject(ReasonTypeMismatch, "%s tokens are not accepted here", className(class))
	}
	if class == TokenTypeM2M && hdr.Cat != "" && hdr.Cat != `"`+catM2M+`"` {
		// Clerk refuses the category before anything else, with this reason.
		// Present means present: null and "" are categories too.
		return nil, cacheEntry{}, reject(ReasonTokenInvalid, "an M2M token's cat must be absent or the M2M category")
	}

	id, e, err := v.verifySigned(ctx, token, &hdr, rawHeader, rawPayload, rawSig, buf[:0], class, &c, payload, payloadErr, claimsErr)
	if err != nil && isMachineClass(class) {
		err = machineFailure(err)
	}
	return id, e, err
}

// verifySigned is verifyFresh from the typ check on, once the token's class
// is known and accepted.
func (v *verifier) verifySigned(ctx context.Context, token string, hdr *jwtHeader, rawHeader, rawPayload, rawSig string, buf []byte,
	class string, c *claims, payload string, payloadErr, claimsErr error) (*Identity, cacheEntry, error) {
	switch {
	case class == TokenTypeOAuth:
		// classify saw an RFC 9068 typ.
	case hdr.Typ == "", hdr.Typ == `"JWT"`:
	default:
		return nil, cacheEntry{}, reject(ReasonTokenInvalid, "header typ must be JWT or absent")
	}
	hash, ok := jwks.Hash(hdr.Alg)
	if !ok {
		return nil, cacheEntry{}, reject(ReasonInvalidAlgorithm, "alg %q is not one of RS256, RS384, RS512", truncate(hdr.Alg, 16))
	}

	pub, err := v.checkSigned(ctx, hdr, hash, token, len(rawHeader)+1+len(rawPayload), rawSig, buf)
	if err != nil {
		return nil, cacheEntry{}, err
	}

	if payloadErr != nil {
		return nil, cacheEntry{}, reject(ReasonTokenInvalid, "payload is not base64url")
	}
	if claimsErr != nil {
		return nil, cacheEntry{}, reject(ReasonVerificationFailed, "claims: %v", claimsErr)
	}
	id, err := v.checkClaims(c, payload, class)
	if err != nil {
		return nil, cacheEntry{}, err
	}
	e := v.window(c, id)
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
// check so a wrong type gets that check's reason code. Machine tokens skip
// azp, as Clerk passes no authorized parties for them, and the pending
// session rule, which only sessions have.
func (v *verifier) checkClaims(c *claims, payload string, class string) (*Identity, error) {
	if c.Sub == "" {
		return nil, reject(ReasonVerificationFailed, "sub claim is missing or empty")
	}
	machine := isMachineClass(class)
	if len(v.audiences) > 0 {
		if err := checkAudience(c.Aud, v.audiences); err != nil {
			return nil, err
		}
		if class == TokenTypeOAuth && emptyAudience(c.Aud) {
			// Clerk's OAuth audience check: every aud must name something.
			return nil, reject(ReasonInvalidAudience, "an OAuth token's aud values must not be empty")
		}
	}
	if !machine {
		if err := v.checkAuthorizedParty(c.Azp); err != nil {
			return nil, err
		}
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
	if machine {
		return newMachineIdentity(c, payload, class), nil
	}
	id := newIdentity(c, payload, class, v.rolesClaim)
	if id.SessionStatus == sessionPending && !v.allowPending {
		// Clerk's treatPendingAsSignedOut: the user has tasks left.
		return nil, reject(ReasonSessionPending, "the session is pending (sts=pending)")
	}
	return id, nil
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

// emptyAudience reports an aud array holding an empty string.
func emptyAudience(raw string) bool {
	empty := false
	eachElement(raw, func(e string) { empty = empty || e == `""` })
	return empty
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
