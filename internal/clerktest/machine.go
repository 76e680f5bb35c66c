package clerktest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Paths of the Backend API machine-token verify endpoints, relative to
// Issuer.URL. Like Clerk's, they have no /v1; all three take POST with a
// JSON body and require SecretKey.
const (
	APIKeyVerifyPath     = "/api_keys/verify"                         // {"secret": "ak_…"}
	M2MTokenVerifyPath   = "/m2m_tokens/verify"                       // {"token": "mt_…"}
	OAuthTokenVerifyPath = "/oauth_applications/access_tokens/verify" // {"access_token": "oat_…"}
)

// maxMachineTokens bounds the tokens the fake remembers, oldest dropped
// first, as maxNonces does for nonces.
const maxMachineTokens = 4096

// machineToken is one issued opaque token as the Backend API knows it.
type machineToken struct {
	object     string
	id         string
	subject    string
	scopes     []string
	name       string         // API keys
	clientID   string         // OAuth tokens
	claims     map[string]any // API keys and M2M tokens; nil for none
	expiration time.Time      // zero: never
	revoked    bool
	created    time.Time
}

// MachineFault makes the three verify endpoints misbehave. The zero
// MachineFault is "no fault".
type MachineFault struct {
	// Fault applies as on the JWKS endpoints, before the secret key is
	// checked: Status 429 or 500, Delay for a slow API, Hang, CloseConn,
	// Body for a malformed answer.
	Fault
	// RetryAfter, if set, is sent as the Retry-After header of every
	// answer while the fault is set, e.g. "7" with Status 429.
	RetryAfter string
	// FlagsOnly answers a revoked or expired token with 200 and
	// "revoked"/"expired" set, instead of Clerk's 404: the answer a
	// verifier must still refuse.
	FlagsOnly bool
}

// MachineStats counts the requests to each verify endpoint, whatever
// their outcome.
type MachineStats struct {
	APIKeyCalls, M2MTokenCalls, OAuthTokenCalls int64
}

type machineState struct {
	mu     sync.Mutex
	tokens map[string]*machineToken // by the token itself
	order  []string

	fault                 atomic.Pointer[MachineFault]
	apiKey, m2m, oauthTok atomic.Int64
}

// IssueAPIKey creates an API key for subject ("user_…" or "org_…") and
// returns its secret, "ak_" and 43 base64url characters. claims may be
// nil; a zero expiration never expires.
func (i *Issuer) IssueAPIKey(subject string, scopes []string, name string, claims map[string]any, expiration time.Time) string {
	return i.issue("ak_", &machineToken{object: "api_key", subject: subject, scopes: scopes, name: name, claims: claims, expiration: expiration})
}

// IssueM2MToken creates an opaque M2M token for the machine subject
// ("mch_…"), allowed to call the machines in scopes, and returns it: "mt_"
// and 43 base64url characters.
func (i *Issuer) IssueM2MToken(subject string, scopes []string, claims map[string]any, expiration time.Time) string {
	return i.issue("mt_", &machineToken{object: "machine_to_machine_token", subject: subject, scopes: scopes, claims: claims, expiration: expiration})
}

// IssueOAuthToken creates an opaque OAuth access token that OAuth
// application clientID obtained for the user subject, and returns it: "oat_"
// and 43 base64url characters.
func (i *Issuer) IssueOAuthToken(subject, clientID string, scopes []string, expiration time.Time) string {
	return i.issue("oat_", &machineToken{object: "clerk_idp_oauth_access_token", subject: subject, scopes: scopes, clientID: clientID, expiration: expiration})
}

func (i *Issuer) issue(prefix string, t *machineToken) string {
	token := prefix + randomB64()
	// An id shares the token's prefix, as Clerk's do ("mt_test123" in
	// its fixtures), but never its value: ids end up in logs.
	t.id = prefix + rand.Text()
	if t.scopes == nil {
		t.scopes = []string{}
	}
	t.created = i.clock()()
	m := &i.machines
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens = make(map[string]*machineToken)
	}
	m.tokens[token] = t
	m.order = append(m.order, token)
	for len(m.order) > maxMachineTokens {
		delete(m.tokens, m.order[0])
		m.order = m.order[1:]
	}
	return token
}

func randomB64() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func (i *Issuer) clock() func() time.Time {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.now
}

// Revoke revokes an issued opaque token, as Clerk's revoke endpoints do:
// from the next verification on it is refused. It reports whether the
// token was known.
func (i *Issuer) Revoke(token string) bool {
	m := &i.machines
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[token]
	if ok {
		t.revoked = true
	}
	return ok
}

// SetMachineFault makes the verify endpoints misbehave as f describes, from
// the next request on. It panics if f.Status is not a valid HTTP status.
func (i *Issuer) SetMachineFault(f MachineFault) {
	f.Fault = checkedFault("SetMachineFault", f.Fault)
	i.machines.fault.Store(&f)
}

// ClearMachineFault restores normal answers.
func (i *Issuer) ClearMachineFault() { i.machines.fault.Store(nil) }

// MachineStats returns the verify endpoints' counters so far.
func (i *Issuer) MachineStats() MachineStats {
	return MachineStats{
		APIKeyCalls:     i.machines.apiKey.Load(),
		M2MTokenCalls:   i.machines.m2m.Load(),
		OAuthTokenCalls: i.machines.oauthTok.Load(),
	}
}

// verifyHandler serves one verify endpoint: the token is read from field
// of the JSON body; prefix and object pick the kind it accepts.
func (i *Issuer) verifyHandler(field, prefix string, calls *atomic.Int64, notFound string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !i.enter() {
			return
		}
		defer i.inflight.Done()

		f := i.machines.fault.Load()
		var fault *Fault
		retryAfter := ""
		if f != nil {
			fault, retryAfter = &f.Fault, f.RetryAfter
		}
		if i.refuseBackendCall(w, r, http.MethodPost, fault, retryAfter) {
			return
		}
		var body map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody("malformed_request", "The request body is not a JSON object."))
			return
		}
		token, _ := body[field].(string)
		if token == "" {
			writeJSON(w, http.StatusUnprocessableEntity, errorBody("form_param_missing", field+" must be included."))
			return
		}
		doc, ok := i.verifiedJSON(token, prefix, f != nil && f.FlagsOnly)
		if !ok {
			writeJSON(w, http.StatusNotFound, errorBody("resource_not_found", notFound))
			return
		}
		writeJSON(w, http.StatusOK, doc)
	}
}

// verifiedJSON is the answer for token, shaped as Clerk's (JSON.ts); ok is
// false for a 404: unknown, of another kind, or revoked or expired unless
// flagsOnly.
func (i *Issuer) verifiedJSON(token, prefix string, flagsOnly bool) ([]byte, bool) {
	now := i.clock()()
	m := &i.machines
	m.mu.Lock()
	t, ok := m.tokens[token]
	var doc map[string]any
	if ok && strings.HasPrefix(token, prefix) {
		doc = t.json(now)
	}
	m.mu.Unlock()
	if doc == nil || ((doc["revoked"] == true || doc["expired"] == true) && !flagsOnly) {
		return nil, false
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic("clerktest: marshaling a machine token: " + err.Error()) // claims came from the test
	}
	return b, true
}

// json is t as the verify endpoint answers it; timestamps are Unix
// milliseconds, as the pinned SDK documents for API keys and M2M tokens.
func (t *machineToken) json(now time.Time) map[string]any {
	var expiration any
	expired := false
	if !t.expiration.IsZero() {
		expiration = t.expiration.UnixMilli()
		expired = !now.Before(t.expiration)
	}
	var revocationReason any
	if t.revoked {
		revocationReason = "revoked by clerktest"
	}
	created := t.created.UnixMilli()
	doc := map[string]any{
		"object":            t.object,
		"id":                t.id,
		"subject":           t.subject,
		"scopes":            t.scopes,
		"revoked":           t.revoked,
		"revocation_reason": revocationReason,
		"expired":           expired,
		"expiration":        expiration,
		"created_at":        created,
		"updated_at":        created,
	}
	switch t.object {
	case "api_key":
		doc["type"] = "api_key"
		doc["name"] = t.name
		doc["claims"] = t.claims
		doc["created_by"] = nil
		doc["description"] = nil
		doc["last_used_at"] = nil
	case "machine_to_machine_token":
		doc["claims"] = t.claims
	case "clerk_idp_oauth_access_token":
		doc["type"] = "oauth:access_token"
		doc["client_id"] = t.clientID
	}
	return doc
}
