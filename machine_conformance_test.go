package clerkauth

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// The machine-token differential test: every shape of
// machine_shapes_test.go (a JWT and the token classes its route accepts)
// goes through our verifier, with `accept` set to the route's classes, and
// through Clerk's official authenticateRequest (@clerk/backend, run by
// conformance/machine.mjs under node) with the matching acceptsToken, the
// token sent as a bearer token. Both sides share the PEM key, authorized
// parties, clock skew, clock and (second run) audience. They must agree on
// the decision and the reason, and on an accepted token's class, subject,
// token id, scopes and OAuth client id, except where a documented difference explains it: the
// machine table below, or, for a session token on a route that takes
// session tokens (where Clerk's verifyToken decides), the token table of
// conformance_test.go. SECURITY.md lists the
// machine table (TestSecurityMDMachineDifferencesInSync).
//
// Opaque machine tokens (ak_, mt_, oat_) are out of scope: Clerk verifies
// them through the Backend API.

func TestMachineConformanceWithClerkSDK(t *testing.T) {
	conformanceReady(t)
	iss := clerktest.Start(t)
	iss.SetNow(func() time.Time { return testNow })
	shapes := buildMachineShapes(t, iss)
	if len(shapes) < 100 {
		t.Fatalf("%d machine shapes, want at least 100", len(shapes))
	}
	counts := compareMachineWithClerk(t, iss, nil, shapes)
	if counts["agree-accept"] < 40 || counts["agree-reject"] < 150 {
		t.Errorf("agreement %v: the shapes or the setup are broken", counts)
	}
}

// TestMachineAudienceConformanceWithClerkSDK configures an audience on both
// sides, which each class checks its own way.
func TestMachineAudienceConformanceWithClerkSDK(t *testing.T) {
	conformanceReady(t)
	iss := clerktest.Start(t)
	iss.SetNow(func() time.Time { return testNow })
	counts := compareMachineWithClerk(t, iss, []string{machineAudience}, buildMachineAudienceShapes(t, iss))
	if counts["agree-accept"] < 8 || counts["agree-reject"] < 8 {
		t.Errorf("agreement %v: the shapes or the setup are broken", counts)
	}
}

// machineDecision is one side's answer on one shape; equal decisions agree.
type machineDecision struct {
	OK        bool
	Reason    string
	TokenType string // Clerk's TokenType of an accepted token
	Subject   string
	// A machine token's id (jti), scopes (%q of the list) and OAuth
	// client id; empty for sessions.
	TokenID, Scopes, ClientID string
}

// compareMachineWithClerk runs shapes through both sides, logs the
// agreement table and fails on every disagreement that no documented
// difference explains. It returns the table's counts.
func compareMachineWithClerk(t *testing.T, iss *clerktest.Issuer, audiences []string, shapes []machineShape) map[string]int {
	t.Helper()
	ours := runOurMachine(iss, audiences, shapes)
	clerk := runClerkMachine(t, iss, audiences, shapes)

	counts := map[string]int{}
	var undocumented, explained []string
	for i, s := range shapes {
		o, k := ours[i], clerk[i]
		var dir direction
		switch {
		case o == k && o.OK:
			counts["agree-accept"]++
			continue
		case o == k:
			counts["agree-reject"]++
			continue
		case !o.OK && !k.OK:
			dir = reasonDiffers
		case o.OK && k.OK:
			dir = subDiffers
		case o.OK:
			dir = weAccept
		default:
			dir = weReject
		}
		tv := newTokenView(s.token, iss.URL, audiences)
		if name := explainMachine(&s, tv, dir, o, k); name != "" {
			counts["documented: "+name]++
			explained = append(explained, fmt.Sprintf("  %-28s %s", name, s.desc))
			continue
		}
		undocumented = append(undocumented, fmt.Sprintf("%s (%s):\n    ours  %+v\n    clerk %+v", s.desc, dir, o, k))
	}

	reportAgreement(t, fmt.Sprintf("machine-token agreement over %d shapes", len(shapes)), counts, explained, undocumented)
	return counts
}

// Clerk's TokenType names.
const (
	clerkSessionToken = "session_token"
	clerkAPIKey       = "api_key"
	clerkM2MToken     = "m2m_token"
	clerkOAuthToken   = "oauth_token"
)

// clerkTokenType is Clerk's name for one of our classes: Clerk has one
// session_token class for session and JWT-template tokens.
func clerkTokenType(class string) string {
	switch class {
	case TokenTypeSession, TokenTypeTemplate:
		return clerkSessionToken
	case TokenTypeAPIKey:
		return clerkAPIKey
	case TokenTypeM2M:
		return clerkM2MToken
	case TokenTypeOAuth:
		return clerkOAuthToken
	}
	panic("no Clerk token type for class " + class)
}

// clerkAccepts is the acceptsToken of a route that accepts our classes.
func clerkAccepts(accept []string) []string {
	var out []string
	for _, class := range accept {
		if tt := clerkTokenType(class); !slices.Contains(out, tt) {
			out = append(out, tt)
		}
	}
	return out
}

// runOurMachine verifies each shape's token with our verifier, `accept` set
// to the shape's classes.
func runOurMachine(iss *clerktest.Issuer, audiences []string, shapes []machineShape) []machineDecision {
	verifiers := map[string]*verifier{}
	out := make([]machineDecision, len(shapes))
	for i, s := range shapes {
		key := strings.Join(s.accept, ",")
		v := verifiers[key]
		if v == nil {
			accept := map[string]bool{}
			for _, class := range s.accept {
				accept[class] = true
			}
			v = newDifferentialVerifier(iss, differentialConfig{audiences: audiences, accept: accept})
			verifiers[key] = v
		}
		id, reason := ourVerdict(v, s.token)
		if id == nil {
			out[i] = machineDecision{Reason: reason}
			continue
		}
		out[i] = machineDecision{OK: true, TokenType: clerkTokenType(id.TokenType), Subject: id.Subject}
		if isMachineClass(id.TokenType) {
			out[i].TokenID, out[i].Scopes, out[i].ClientID = id.TokenID, fmt.Sprintf("%q", id.Scopes), id.ClientID
		}
	}
	return out
}

// runClerkMachine runs conformance/machine.mjs over the shapes.
func runClerkMachine(t *testing.T, iss *clerktest.Issuer, audiences []string, shapes []machineShape) []machineDecision {
	type shape struct {
		ID           int      `json:"id"`
		Token        string   `json:"token"`
		AcceptsToken []string `json:"acceptsToken"`
	}
	input := struct {
		Now               int64    `json:"now"`
		PEM               string   `json:"pem"`
		SecretKey         string   `json:"secretKey"`
		PublishableKey    string   `json:"publishableKey"`
		AuthorizedParties []string `json:"authorizedParties"`
		Audience          []string `json:"audience"`
		Shapes            []shape  `json:"shapes"`
	}{testNow.UnixMilli(), iss.PublicKeyPEM(), iss.SecretKey(), iss.PublishableKey(false), differentialParties, audiences, nil}
	for i, s := range shapes {
		input.Shapes = append(input.Shapes, shape{i, s.token, clerkAccepts(s.accept)})
	}
	type verdict struct {
		Status    string  `json:"status"`
		Reason    string  `json:"reason"`
		TokenType string  `json:"tokenType"`
		Subject   *string `json:"subject"`
		TokenID   *string `json:"tokenId"`
		Scopes    any     `json:"scopes"`
		ClientID  *string `json:"clientId"`
		Exception string  `json:"exception"`
	}
	out := make([]machineDecision, len(shapes))
	for i, v := range runNodeScript[verdict](t, "machine.mjs", input, len(shapes)) {
		switch {
		case v.Exception != "":
			name, _, _ := strings.Cut(v.Exception, ":")
			out[i] = machineDecision{Reason: "exception:" + name}
		case v.Status == "signed-in":
			out[i] = machineDecision{OK: true, TokenType: v.TokenType, Subject: derefOr(v.Subject, "<none>"),
				TokenID: derefOr(v.TokenID, ""), ClientID: derefOr(v.ClientID, "")}
			if v.TokenType != clerkSessionToken {
				out[i].Scopes = clerkScopes(v.Scopes)
			}
		default:
			out[i] = machineDecision{Reason: verifierReason(v.Reason)}
		}
	}
	return out
}

// clerkScopes is a machine auth object's scopes as our Identity holds
// them: Clerk's M2M token takes a string `aud` as its scopes as it is,
// where we take it as a list of one.
func clerkScopes(scopes any) string {
	var list []string
	switch sc := scopes.(type) {
	case string:
		list = []string{sc}
	case []any:
		for _, e := range sc {
			list = append(list, fmt.Sprint(e))
		}
	}
	return fmt.Sprintf("%q", list)
}

// verifierReason undoes authenticateRequest's renaming of the time
// failures of a session token, which it reports under the handshake's
// names; the verifier reports them as verifyToken does.
func verifierReason(reason string) string {
	switch {
	case strings.HasPrefix(reason, "session-token-expired-refresh-"):
		return ReasonTokenExpired
	case reason == "session-token-nbf":
		return ReasonNotActiveYet
	case reason == "session-token-iat-in-the-future":
		return ReasonIATInFuture
	}
	return reason
}

// clerkClassOf is the class Clerk's getMachineTokenType gives a JWT: M2M
// for an `mch_` subject, OAuth for `typ` at+jwt, else a session token.
func clerkClassOf(tv *tokenView) string {
	sub, _ := tv.payload["sub"].(string)
	typ, _ := tv.header["typ"].(string)
	switch {
	case strings.HasPrefix(sub, "mch_"):
		return clerkM2MToken
	case typ == "at+jwt" || typ == "application/at+jwt":
		return clerkOAuthToken
	}
	return clerkSessionToken
}

// sessionClassOf is our class of a token on the session path: by `cat`,
// and by `sid` when the category does not say.
func sessionClassOf(tv *tokenView) string {
	switch tv.header["cat"] {
	case catTemplate:
		return TokenTypeTemplate
	case catSession:
		return TokenTypeSession
	}
	if sid, _ := tv.payload["sid"].(string); sid != "" {
		return TokenTypeSession
	}
	return TokenTypeTemplate
}

// machineDifference is one documented way our verifier departs from
// Clerk's authenticateRequest on a route's accepted classes. A
// disagreement is explained by it when it goes one of dirs, each side's
// reason is one it allows, and match holds for the shape.
type machineDifference struct {
	name  string
	dirs  direction
	shape string // which tokens on which routes, in words: what match implements
	ours  string
	clerk string
	why   string
	match func(s *machineShape, tv *tokenView) bool
	// The reasons the rejecting side may give (nil: any).
	ourReasons, clerkReasons []string
}

// machineDifferences is the single source of the machine-token table in
// SECURITY.md.
var machineDifferences = []machineDifference{
	{
		name:  "template-class",
		dirs:  weAccept | reasonDiffers,
		shape: "a JWT-template token (the template `cat`) on a route whose `accept` has `template`",
		ours:  "verifies it as a `template` token",
		clerk: "refuses it (`token-type-mismatch`): `authenticateRequest` takes no category but the session one on its session path",
		why:   "JWT templates are Clerk's tokens for calling your own backend; `accept template` is how a route asks for them. Routes that leave `template` out refuse them as Clerk does.",
		match: func(s *machineShape, tv *tokenView) bool {
			return slices.Contains(s.accept, TokenTypeTemplate) && clerkClassOf(tv) == clerkSessionToken && tv.header["cat"] == catTemplate
		},
		clerkReasons: []string{ReasonTypeMismatch},
	},
	{
		name:  "session-template-split",
		dirs:  weReject | reasonDiffers,
		shape: "a session token on a route whose `accept` has `template` but not `session`, or a template token without a category (no `sid`) on one with `session` but not `template`",
		ours:  "refuses it (`token-type-mismatch`)",
		clerk: "has one `session_token` class for both, so accepts it (or refuses it for another cause)",
		why:   "`accept` tells session tokens (revoked with the session, a minute long) from templates (long-lived, not revocable); a route that names one class gets only that one.",
		match: func(s *machineShape, tv *tokenView) bool {
			hasSession, hasTemplate := slices.Contains(s.accept, TokenTypeSession), slices.Contains(s.accept, TokenTypeTemplate)
			if clerkClassOf(tv) != clerkSessionToken || hasSession == hasTemplate {
				return false
			}
			return (sessionClassOf(tv) == TokenTypeSession) != hasSession
		},
		ourReasons: []string{ReasonTypeMismatch},
	},
	{
		name:  "machine-issuer-checked",
		dirs:  weReject,
		shape: "an M2M or OAuth JWT whose `iss` is missing or not one of the configured issuers",
		ours:  "refuses it (`token-verification-failed`)",
		clerk: "accepts it: machine JWTs are verified without an issuer",
		why:   "The same as `issuer-checked` for session tokens: only `iss` ties a token signed by a shared or reused key to the instance the site trusts.",
		match: func(_ *machineShape, tv *tokenView) bool {
			iss, ok := tv.payload["iss"].(string)
			return clerkClassOf(tv) != clerkSessionToken && (!ok || strings.TrimSuffix(iss, "/") != tv.issuer)
		},
		ourReasons: []string{ReasonVerificationFailed},
	},
	{
		name:  "m2m-audience-checked",
		dirs:  weReject,
		shape: "`audience` is set and an M2M JWT's `aud` is missing, empty, or not a string or an array of strings",
		ours:  "refuses it (`token-verification-failed`)",
		clerk: "accepts it: M2M JWTs get verifyToken's audience check, which skips an `aud` of any other shape (OAuth JWTs get a strict one, as here)",
		why:   "A configured audience is a requirement, as for session tokens (`audience-checked`): a token that does not name it was not minted for this API.",
		match: func(_ *machineShape, tv *tokenView) bool {
			return clerkClassOf(tv) == clerkM2MToken && len(tv.audiences) > 0 && !namesAudience(tv.payload["aud"], tv.audiences)
		},
		ourReasons: []string{ReasonVerificationFailed},
	},
	{
		name:  "machine-rs384-rs512-with-jwt-key",
		dirs:  weAccept,
		shape: "an M2M or OAuth JWT with `alg` RS384 or RS512, verified with `jwt_key`",
		ours:  "accepts it when the configured key signed it",
		clerk: "refuses it (`token-verification-failed`): the key it builds from the PEM is for RS256 only",
		why:   "As `rs384-rs512-with-jwt-key` for session tokens: the same key with a longer hash, the algorithm family pinned.",
		match: func(_ *machineShape, tv *tokenView) bool {
			return clerkClassOf(tv) != clerkSessionToken && (tv.header["alg"] == "RS384" || tv.header["alg"] == "RS512")
		},
		clerkReasons: []string{ReasonVerificationFailed},
	},
	{
		name:  "oauth-empty-subject",
		dirs:  weReject,
		shape: "an OAuth JWT whose `sub` is the empty string",
		ours:  "refuses it (`token-verification-failed`)",
		clerk: "accepts it, for a user with no id",
		why:   "As `empty-subject` for session tokens: a request authenticated as nobody would reach the upstream looking anonymous.",
		match: func(_ *machineShape, tv *tokenView) bool {
			sub, ok := tv.payload["sub"].(string)
			return clerkClassOf(tv) == clerkOAuthToken && ok && sub == ""
		},
		ourReasons: []string{ReasonVerificationFailed},
	},
	{
		name:  "scopes-without-empty-entries",
		dirs:  subDiffers,
		shape: "an M2M or OAuth JWT whose scopes hold an empty entry: `scopes`/`scope` with two spaces in a row, leading or trailing, or empty; an M2M `aud` array with an empty string",
		ours:  "drops the empty entries from `{http.auth.user.scopes}`",
		clerk: "keeps them: it splits on single spaces",
		why:   "An empty string is no scope and no `scope` line can name one; leaving it in would put an empty element into a comma-joined header for the upstream to trip on.",
		match: func(_ *machineShape, tv *tokenView) bool {
			return slices.Contains(payloadScopes(tv), "")
		},
	},
}

// payloadScopes are the scopes Clerk's fromJwtPayload reads from a machine
// JWT: an M2M token's `scopes` split on single spaces, else its `aud`; an
// OAuth token's `scp`, else its `scope` split on single spaces.
func payloadScopes(tv *tokenView) []string {
	var list []string
	split := func(name string) bool {
		v, ok := tv.payload[name].(string)
		if ok {
			list = strings.Split(v, " ")
		}
		return ok
	}
	strs := func(v any) {
		switch v := v.(type) {
		case string:
			list = []string{v}
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					list = append(list, s)
				}
			}
		}
	}
	switch clerkClassOf(tv) {
	case clerkM2MToken:
		if !split("scopes") {
			strs(tv.payload["aud"])
		}
	case clerkOAuthToken:
		if scp, ok := tv.payload["scp"]; ok && scp != nil {
			strs(scp)
		} else {
			split("scope")
		}
	}
	return list
}

// explainMachine names the documented difference that accounts for a
// disagreement going dir on shape s, or returns "".
func explainMachine(s *machineShape, tv *tokenView, dir direction, ours, clerk machineDecision) string {
	for i := range machineDifferences {
		d := &machineDifferences[i]
		if d.dirs&dir != 0 && reasonAllowed(d.ourReasons, ours.OK, ours.Reason) &&
			reasonAllowed(d.clerkReasons, clerk.OK, clerk.Reason) && d.match(s, tv) {
			return d.name
		}
	}
	if clerkClassOf(tv) != clerkSessionToken || !slices.Contains(clerkAccepts(s.accept), clerkSessionToken) {
		return ""
	}
	// A session token on a session route: Clerk's verifyToken decided it,
	// and the token table holds.
	o := verifierDecision{OK: ours.OK, Reason: ours.Reason}
	k := verifierDecision{OK: clerk.OK, Reason: clerk.Reason}
	if d := explain(tv, dir, o, k); d != nil {
		return d.name
	}
	return ""
}

const (
	machineDiffBegin = "<!-- BEGIN machine differences: generated from machine_conformance_test.go; refresh with go test -run TestSecurityMDMachineDifferencesInSync -update-security-md -->\n"
	machineDiffEnd   = "<!-- END machine differences -->\n"
)

func renderMachineDifferences() string {
	var s strings.Builder
	s.WriteString("| Name | Token and route | caddy-clerk-auth | Clerk `authenticateRequest` | Why |\n| --- | --- | --- | --- | --- |\n")
	for _, d := range machineDifferences {
		fmt.Fprintf(&s, "| `%s` | %s | %s | %s | %s |\n", d.name, d.shape, d.ours, d.clerk, d.why)
	}
	return s.String()
}

func TestSecurityMDMachineDifferencesInSync(t *testing.T) {
	checkSecurityMDSection(t, machineDiffBegin, machineDiffEnd, renderMachineDifferences(), "TestSecurityMDMachineDifferencesInSync")
}

func TestMachineDifferencesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range machineDifferences {
		checkDifferenceRow(t, seen, d.name, d.dirs != 0 && d.match != nil, d.shape, d.ours, d.clerk, d.why)
	}
	for _, d := range differences {
		if seen[d.name] {
			t.Errorf("difference %q is in both tables", d.name)
		}
	}
}
