package clerkauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
)

// Opaque machine tokens (ak_, mt_, oat_) are verified through the Backend
// API; their JWT forms are verified by the verifier like any other JWT.
// This file holds what turns either into an Identity, and the opaque path.

// orgSubjectPrefix marks an API key that belongs to an organization.
const orgSubjectPrefix = "org_"

// newMachineIdentity is the identity of a verified M2M or OAuth JWT, read
// as Clerk's M2MToken and IdPOAuthAccessToken fromJwtPayload read it. The
// whole payload stays readable as {http.auth.user.claims.*}.
func newMachineIdentity(c *claims, payload, class string) *Identity {
	id := &Identity{
		Subject:   c.Sub,
		Issuer:    rawString(c.Iss),
		TokenType: class,
		TokenID:   c.Jti,
		ExpiresAt: unixTime(c.Exp.sec),
		payload:   payload,
	}
	switch class {
	case TokenTypeM2M:
		// The space-separated scopes, else the audience: the machines
		// this one may call.
		switch {
		case isJSONString(c.Scopes):
			id.Scopes = strings.Fields(rawString(c.Scopes))
		case isJSONString(c.Aud):
			id.Scopes = []string{rawString(c.Aud)}
		default:
			id.Scopes = stringList(c.Aud)
		}
	case TokenTypeOAuth:
		id.ClientID = c.ClientID
		if c.Scp != "" && c.Scp != "null" {
			id.Scopes = stringList(c.Scp)
		} else {
			id.Scopes = strings.Fields(rawString(c.Scope))
		}
	}
	return id
}

func isJSONString(raw string) bool { return raw != "" && raw[0] == '"' }

// opaqueIdentity is the identity of an opaque token Clerk verified. Its
// custom claims are what {http.auth.user.claims.*} reads.
func opaqueIdentity(m clerkapi.Machine) *Identity {
	id := &Identity{
		Subject:   m.Subject,
		TokenType: string(m.Kind),
		TokenID:   m.ID,
		Scopes:    m.Scopes,
		KeyName:   m.Name,
		ClientID:  m.ClientID,
		ExpiresAt: m.Expiration,
		payload:   string(m.Claims),
	}
	if m.Kind == clerkapi.APIKey && strings.HasPrefix(m.Subject, orgSubjectPrefix) {
		// As Clerk's auth object: an organization's key acts for it, so
		// org requirements see the organization (with no role in it).
		id.OrgID = m.Subject
	}
	return id
}

// MachineID is the machine an M2M token speaks for (its mch_ subject), ""
// for every other class.
func (id *Identity) MachineID() string {
	if id.TokenType == TokenTypeM2M {
		return id.Subject
	}
	return ""
}

// isJWTShaped reports what Clerk's isJwtFormat does: three non-empty
// base64url segments. Such a string is verified as a JWT even when it
// starts like an opaque token.
func isJWTShaped(token string) bool {
	header, payload, sig, ok := splitJWT(token)
	return ok && header != "" && payload != "" && sig != "" && indexNotTokenChar(token) < 0
}

// opaqueKind is the class of an opaque machine token by its prefix, as
// Clerk's getMachineTokenType tells them; ok is false for anything else.
func opaqueKind(token string) (clerkapi.MachineKind, bool) {
	// The prefix first: a session token has none, and so skips the scan
	// of every byte that isJWTShaped makes.
	kind, ok := clerkapi.KindOf(token)
	if !ok || isJWTShaped(token) {
		return "", false
	}
	return kind, true
}

// verifyHeaderToken verifies a token from the Authorization header: an
// opaque machine token through the Backend API, anything else as a JWT.
func (h *Handler) verifyHeaderToken(ctx context.Context, token string) (*Identity, error) {
	if kind, ok := opaqueKind(token); ok {
		return h.machines.verify(ctx, kind, token)
	}
	return h.verifier.verify(ctx, token)
}

// machineHeader reports whether a header token is a machine token this
// route takes, which Clerk verifies as such and never hands to the
// browser-session path (handshake included).
func (h *Handler) machineHeader(token string) bool {
	if _, ok := opaqueKind(token); ok {
		return true
	}
	return h.machines.takesJWTs && machineJWT(token)
}

// machineJWT reports whether token is a JWT of a machine class, as the
// verifier would classify it. Clerk never sends such a header token
// through the browser-session path, whatever the request looks like.
func machineJWT(token string) bool {
	u, err := decodeUnverified(token)
	if err != nil {
		return false
	}
	kind, _ := u.kind()
	return isMachineClass(kind)
}

// machineVerifier verifies opaque machine tokens through a shared Backend
// API client.
type machineVerifier struct {
	client    *clerkapi.Client
	accept    map[string]bool // nil = the default classes, no machine class
	takesJWTs bool            // accept has m2m_token or oauth_token
	audiences []string
	maxAge    time.Duration // machine_cache_ttl
	leeway    time.Duration
	now       func() time.Time
}

// defaultMachineCacheTTL is machine_cache_ttl's default: see the field.
const defaultMachineCacheTTL = 30 * time.Second

// provisionMachines sets up the opaque machine-token path. api_key has no
// JWT form, so accepting it without secret_key is a mistake; M2M and OAuth
// tokens may come as JWTs only, so for them a missing key is only
// worth a warning.
func (h *Handler) provisionMachines(*caddy.Replacer) error {
	ttl := time.Duration(h.MachineCacheTTL)
	if ttl == 0 {
		ttl = defaultMachineCacheTTL
	}
	if ttl < time.Second || ttl > maxMachineCacheTTL {
		return fmt.Errorf("machine_cache_ttl %s: use 1s to %s; it is how long a token revoked in Clerk keeps working here", ttl, maxMachineCacheTTL)
	}
	accept := h.verifier.accept
	h.machines = &machineVerifier{accept: accept, takesJWTs: accept[TokenTypeM2M] || accept[TokenTypeOAuth],
		audiences: h.verifier.audiences, maxAge: ttl, leeway: h.verifier.leeway, now: h.verifier.now}
	if !accept[TokenTypeAPIKey] && !accept[TokenTypeM2M] && !accept[TokenTypeOAuth] {
		if len(h.Scopes) > 0 {
			// Only machine tokens carry scopes: every request would get 403.
			return errors.New("scope lines need a machine token class: add accept api_key, m2m_token or oauth_token")
		}
		return nil
	}
	if h.backend == nil {
		if accept[TokenTypeAPIKey] {
			return errors.New("accept api_key needs secret_key: Clerk API keys are verified with the Backend API")
		}
		h.logger.Warn("without secret_key only the JWT forms of M2M and OAuth tokens are accepted; opaque mt_ and oat_ tokens get 401")
		return nil
	}
	api, err := h.apiClient()
	if err != nil {
		return err
	}
	h.machines.client = api
	return nil
}

// verify checks an opaque token of kind. A class the route does not take
// is refused before any call, so a flood of tokens of another class costs
// Clerk nothing. Clerk's failures are 503s, never 401s: an outage or a
// refused secret key is not a bad token.
func (m *machineVerifier) verify(ctx context.Context, kind clerkapi.MachineKind, token string) (*Identity, error) {
	class := string(kind)
	if !m.accept[class] {
		return nil, reject(ReasonTypeMismatch, "%s tokens are not accepted here", className(class))
	}
	if m.client == nil {
		return nil, reject(ReasonTokenInvalid, "opaque %s tokens are verified with the Backend API, which needs secret_key", className(class))
	}
	got, err := m.client.VerifyMachineToken(ctx, kind, token, m.maxAge)
	switch {
	case err == nil:
	case errors.Is(err, clerkapi.ErrNotFound):
		return nil, &VerifyError{Reason: ReasonTokenInvalid, Err: err}
	case errors.Is(err, clerkapi.ErrUnauthorized):
		return nil, &VerifyError{Reason: ReasonSecretKeyInvalid, Err: err}
	default:
		return nil, &VerifyError{Reason: ReasonBackendUnavailable, Err: err}
	}
	if !got.Expiration.IsZero() && !m.now().Before(got.Expiration.Add(m.leeway)) {
		// Clerk answers expired tokens with 404; a cached answer can outlive
		// the token by the cache's own slack, never by more than this.
		return nil, reject(ReasonTokenInvalid, "the %s token expired at %s", className(class), got.Expiration.UTC().Format(time.RFC3339))
	}
	if kind == clerkapi.OAuthToken && len(m.audiences) > 0 {
		// Clerk checks an opaque OAuth token's aud as a JWT's, strictly.
		if !namesOneOf(got.Audience, m.audiences) {
			return nil, reject(ReasonVerificationFailed, "none of the OAuth token's %d aud values is an accepted audience", len(got.Audience))
		}
	}
	return opaqueIdentity(got), nil
}

func namesOneOf(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h != "" && h == w {
				return true
			}
		}
	}
	return false
}
