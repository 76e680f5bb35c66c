package clerkauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
)

// claims is the typed view of a Clerk token payload. sub, exp, nbf, iat and
// sid are strictly typed, so a wrong type fails the token as Clerk's SDK
// does (token-verification-failed). iss, azp and aud are kept raw and typed
// by the check that owns each (checkClaims), so a wrong type there gets that
// check's reason code, as in Clerk's SDK. Clerk-specific claims are read
// leniently (lenientString, or kept raw): an odd value only means "absent".
type claims struct {
	Sub *string         `json:"sub"`
	Exp *float64        `json:"exp"`
	Nbf optionalDate    `json:"nbf"`
	Iat optionalDate    `json:"iat"`
	Iss json.RawMessage `json:"iss"`
	Azp json.RawMessage `json:"azp"`
	Sid string          `json:"sid"`
	Aud json.RawMessage `json:"aud"`

	// Claims layout version: 2 for the compact form, absent for v1.
	Version json.RawMessage `json:"v"`

	// Organization, v1 form.
	OrgID          lenientString  `json:"org_id"`
	OrgSlug        lenientString  `json:"org_slug"`
	OrgRole        lenientString  `json:"org_role"`
	OrgPermissions lenientStrings `json:"org_permissions"`

	// Organization, v2 form.
	Org json.RawMessage `json:"o"`

	// Billing: comma lists of "scope:slug". Read whatever the version, as
	// Clerk's has() does.
	Features lenientString `json:"fea"`
	Plans    lenientString `json:"pla"`

	SessionStatus lenientString   `json:"sts"`
	Actor         json.RawMessage `json:"act"`
}

// optionalDate is an optional NumericDate claim (nbf, iat). Absent is fine,
// but a present value must be a number: JSON null included, which
// encoding/json would otherwise read as absent and Clerk's SDK refuses.
type optionalDate struct {
	set bool
	sec float64
}

// ptr returns the date, or nil when it is absent.
func (d optionalDate) ptr() *float64 {
	if !d.set {
		return nil
	}
	return &d.sec
}

func (d *optionalDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return errors.New("is null, want a NumericDate")
	}
	d.set = true
	return json.Unmarshal(b, &d.sec)
}

type orgV2 struct {
	ID   lenientString `json:"id"`
	Slug lenientString `json:"slg"`
	Role lenientString `json:"rol"`
	Per  lenientString `json:"per"`
	Fpm  lenientString `json:"fpm"`
}

// actClaim is the impersonation claim; only who impersonates matters here.
type actClaim struct {
	Sub lenientString `json:"sub"`
}

// lenientString is a Clerk-specific claim: a JSON string gives its value,
// any other JSON value reads as absent ("") rather than failing the token.
// Decoding in place also spares a RawMessage copy and a second decode.
type lenientString string

func (s *lenientString) UnmarshalJSON(b []byte) error {
	*s = lenientString(rawString(b))
	return nil
}

// lenientStrings is an array claim of strings; other elements, or a value
// that is not an array, are skipped.
type lenientStrings []string

func (s *lenientStrings) UnmarshalJSON(b []byte) error {
	*s = stringList(b)
	return nil
}

// Identity is what a verified token proves, as read by IdentityFrom and
// rendered by the {http.auth.user.*} placeholders. It is immutable once
// built and may be shared between requests (the token cache does).
type Identity struct {
	UserID          string // `sub`: user_... (never empty)
	SessionID       string // `sid`: sess_..., "" for JWT templates
	Issuer          string // `iss`, as in the token
	AuthorizedParty string // `azp`: the origin that asked for the token
	TokenType       string // TokenTypeSession or TokenTypeTemplate
	OrgID           string
	OrgSlug         string
	OrgRole         string   // always "org:"-prefixed
	OrgPermissions  []string // "org:<feature>:<permission>"
	Features        Scoped   // from `fea`
	Plans           Scoped   // from `pla`
	SessionStatus   string   // `sts`: "active", "pending", or "" when the instance does not emit it
	Actor           string   // `act.sub`: the impersonator, "" when nobody impersonates
	ExpiresAt       time.Time

	// permissionsProblem says why v2 org permissions were left empty
	// although the token carried some (see PermissionsProblem).
	permissionsProblem string

	payload    []byte
	parseOnce  sync.Once
	parsedJSON map[string]any

	rolesClaim string
	rolesOnce  sync.Once
	roles      []string
}

// Scoped is a billing claim (features or plans) split by who holds each
// entry: the active organization, the user, or both (scope "ou"/"uo").
type Scoped struct {
	Org  []string
	User []string
}

func newIdentity(c *claims, payload []byte, class, rolesClaim string) *Identity {
	id := &Identity{
		UserID:          *c.Sub,
		SessionID:       c.Sid,
		Issuer:          rawString(c.Iss),
		AuthorizedParty: rawString(c.Azp),
		TokenType:       class,
		SessionStatus:   string(c.SessionStatus),
		Actor:           actorSub(c.Actor),
		ExpiresAt:       unixTime(*c.Exp),
		payload:         payload,
		rolesClaim:      rolesClaim,
	}
	features := parseScoped(string(c.Features))
	id.Features = splitByScope(features)
	id.Plans = splitByScope(parseScoped(string(c.Plans)))
	if isV2(c.Version) {
		// As Clerk's parser: a v2 token's org lives in "o" only; stray v1
		// org_* claims next to it are not looked at.
		id.setOrgV2(c.Org, features)
	} else {
		id.OrgID = string(c.OrgID)
		id.OrgSlug = string(c.OrgSlug)
		id.OrgRole = orgPrefixed(string(c.OrgRole))
		id.OrgPermissions = c.OrgPermissions
	}
	if id.OrgID == "" {
		// Org claims mean nothing without an active org (Clerk's has() fails
		// them too); drop them rather than forward half an org.
		id.OrgSlug, id.OrgRole, id.OrgPermissions, id.permissionsProblem = "", "", nil, ""
	}
	return id
}

// setOrgV2 reads the compact "o" claim. Its role has no "org:" prefix and
// its permissions are bitmasks over fea (see orgPermissionsV2).
func (id *Identity) setOrgV2(raw json.RawMessage, features []scopedEntry) {
	var o orgV2
	if len(raw) == 0 || json.Unmarshal(raw, &o) != nil {
		return
	}
	id.OrgID = string(o.ID)
	id.OrgSlug = string(o.Slug)
	id.OrgRole = orgPrefixed(string(o.Role))
	id.OrgPermissions, id.permissionsProblem = orgPermissionsV2(string(o.Per), string(o.Fpm), features)
}

// PermissionsProblem is why the org permissions of a v2 token could not be
// decoded (o.fpm not matching fea, or a mask that is not a number), or ""
// if there was no problem. OrgPermissions is then empty, so permission
// requirements fail closed; the handler logs this so the cause is visible.
func (id *Identity) PermissionsProblem() string { return id.permissionsProblem }

// isV2 reports whether the "v" claim is the number 2. Clerk's parser
// switches on exactly that; anything else reads as v1.
func isV2(raw json.RawMessage) bool {
	var v float64
	return len(raw) > 0 && json.Unmarshal(raw, &v) == nil && v == 2
}

// actorSub returns act.sub, or "" when act is absent or malformed.
func actorSub(raw json.RawMessage) string {
	var act actClaim
	if len(raw) == 0 || json.Unmarshal(raw, &act) != nil {
		return ""
	}
	return string(act.Sub)
}

// scopedEntry is one "scope:slug" element of fea or pla.
type scopedEntry struct {
	slug      string
	org, user bool // both false: malformed or unknown scope, ignored
}

// parseScoped splits a fea/pla claim into its elements, keeping their
// positions: o.fpm may index this list. The slug ends at a second ':', as
// in Clerk's split(':')[1]. An element without ':' or with a scope other
// than o, u, ou, uo is kept as an inert entry rather than failing the
// token: Clerk ignores unknown scopes, and one odd entry must not cost the
// user the others.
func parseScoped(list string) []scopedEntry {
	if list == "" {
		return nil
	}
	parts := strings.Split(list, ",")
	out := make([]scopedEntry, len(parts))
	for i, p := range parts {
		scope, rest, ok := strings.Cut(strings.TrimSpace(p), ":")
		slug, _, _ := strings.Cut(rest, ":")
		if !ok || slug == "" {
			continue
		}
		e := &out[i]
		switch scope {
		case "o":
			e.org = true
		case "u":
			e.user = true
		case "ou", "uo":
			e.org, e.user = true, true
		default:
			continue
		}
		e.slug = slug
	}
	return out
}

// splitByScope gathers the slugs held by the org and by the user.
func splitByScope(entries []scopedEntry) Scoped {
	var s Scoped
	for _, e := range entries {
		if e.org {
			s.Org = append(s.Org, e.slug)
		}
		if e.user {
			s.User = append(s.User, e.slug)
		}
	}
	return s
}

// Roles returns the roles held in the configured roles claim. They are read
// on first use: walking the raw payload costs more than the rest of the
// claim decoding, and most routes never ask.
func (id *Identity) Roles() []string {
	id.rolesOnce.Do(func() {
		if v, ok := id.claim(id.rolesClaim); ok {
			id.roles = rolesFrom(v)
		}
	})
	return id.roles
}

// claim returns the value at a dotted path in the payload ("metadata.roles").
// The payload is parsed on first use only: most requests never ask.
func (id *Identity) claim(path string) (any, bool) {
	id.parseOnce.Do(func() {
		dec := json.NewDecoder(bytes.NewReader(id.payload))
		dec.UseNumber() // keep numbers exactly as the issuer wrote them
		_ = dec.Decode(&id.parsedJSON)
	})
	var cur any = id.parsedJSON
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// claimString renders a claim for a placeholder: strings as is, numbers and
// booleans in JSON form, arrays comma-joined, objects as JSON.
func claimString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = claimString(e)
		}
		return strings.Join(parts, ",")
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// rolesFrom accepts an array of strings or one string of comma/space
// separated roles; anything else yields no roles (fail closed).
func rolesFrom(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// stringClaim reads a registered claim that must be a string when present:
// its value, and whether it is present with another type. null reads as
// absent, as Clerk's checks treat it.
func stringClaim(raw json.RawMessage) (s string, mistyped bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if raw[0] != '"' {
		return "", true
	}
	return rawString(raw), false
}

// rawString returns a JSON string's value, or "" for any other JSON type.
func rawString(raw json.RawMessage) string {
	// Most claim strings are plain ASCII without escapes: slice them out
	// instead of running the decoder (raw is already valid JSON).
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && plainJSONString(raw[1:n-1]) {
		return string(raw[1 : n-1])
	}
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// plainJSONString reports string contents that decode to themselves: no
// escapes, no quotes, nothing outside printable ASCII.
func plainJSONString(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// stringList returns the strings of a JSON array, skipping other elements.
func stringList(raw json.RawMessage) []string {
	var items []json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s := rawString(it); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// orgPrefixed normalises an org role or permission the way Clerk's has()
// does: any run of leading "org:" collapses into exactly one.
func orgPrefixed(s string) string {
	if s == "" {
		return ""
	}
	for strings.HasPrefix(s, "org:") {
		s = s[len("org:"):]
	}
	return "org:" + s
}

// unixTime converts a NumericDate, clamping values time.Time cannot hold.
func unixTime(sec float64) time.Time {
	const limit = 1 << 40 // about year 36812
	switch {
	case sec > limit:
		sec = limit
	case sec < -limit:
		sec = -limit
	}
	whole := int64(sec)
	return time.Unix(whole, int64((sec-float64(whole))*1e9)).UTC()
}

// validClaimPath accepts dotted claim paths such as metadata.roles.
func validClaimPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, ".") && !strings.HasSuffix(p, ".") && !strings.Contains(p, "..")
}
