package clerkauth

import (
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// Identity is what a verified token proves, as read by IdentityFrom and
// rendered by the {http.auth.user.*} placeholders. It is immutable once
// built and may be shared between requests (the token cache does).
type Identity struct {
	// Subject is who the token speaks for, never empty: the user
	// (user_...) of a session or template token; for a machine token the
	// subject Clerk verified: user_... or org_... (API keys), mch_... (M2M
	// tokens), user_... (OAuth access tokens).
	Subject         string
	SessionID       string // `sid`: sess_..., "" for JWT templates and machine tokens
	Issuer          string // `iss`, as in the token; "" for opaque machine tokens
	AuthorizedParty string // `azp`: the origin that asked for the token
	TokenType       string // one of the TokenType* classes
	// Machine token details; empty for sessions and templates.
	TokenID        string   // the key's or token's id (ak_..., mt_..., oat_...), or a JWT's jti
	Scopes         []string // granted scopes; an M2M token's are the machine ids it may call
	KeyName        string   // an API key's name
	ClientID       string   // an OAuth access token's OAuth application
	OrgID          string
	OrgSlug        string
	OrgRole        string   // always "org:"-prefixed
	OrgPermissions []string // "org:<feature>:<permission>"
	Features       Scoped   // from `fea`
	Plans          Scoped   // from `pla`
	SessionStatus  string   // `sts`: "active", "pending", or "" when the instance does not emit it
	Actor          string   // `act.sub`: the impersonator, "" when nobody impersonates
	ExpiresAt      time.Time
	// IssuedAt is the token's `iat`, which a denial from a Clerk webhook
	// compares with the time of its event. Zero when the token has no iat,
	// and for machine identities: a denial refuses those whatever their
	// age.
	IssuedAt time.Time

	// permissionsProblem says why v2 org permissions were left empty
	// although the token carried some (see PermissionsProblem).
	permissionsProblem string

	assertionHolder

	payload    string
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

func newIdentity(c *claims, payload string, class, rolesClaim string) *Identity {
	id := &Identity{
		Subject:         c.Sub,
		SessionID:       c.Sid,
		Issuer:          rawString(c.Iss),
		AuthorizedParty: rawString(c.Azp),
		TokenType:       class,
		SessionStatus:   c.SessionStatus,
		Actor:           c.actorSub,
		ExpiresAt:       unixTime(c.Exp.sec),
		payload:         payload,
		rolesClaim:      rolesClaim,
	}
	if c.Iat.set {
		id.IssuedAt = unixTime(c.Iat.sec)
	}
	features := parseScoped(c.Features)
	id.Features = splitByScope(features)
	id.Plans = splitByScope(parseScoped(c.Plans))
	if isV2(c.Version) {
		// As Clerk's parser: a v2 token's org lives in "o" only; stray v1
		// org_* claims next to it are not looked at.
		id.setOrgV2(c, features)
	} else {
		id.OrgID = c.OrgID
		id.OrgSlug = c.OrgSlug
		id.OrgRole = orgPrefixed(c.OrgRole)
		id.OrgPermissions = stringList(c.OrgPermissions)
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
func (id *Identity) setOrgV2(c *claims, features []scopedEntry) {
	if !isObject(c.Org) {
		return
	}
	o := &c.org
	id.OrgID = o.ID
	id.OrgSlug = o.Slug
	id.OrgRole = orgPrefixed(o.Role)
	id.OrgPermissions, id.permissionsProblem = orgPermissionsV2(o.Per, o.Fpm, features)
}

// PermissionsProblem is why the org permissions of a v2 token could not be
// decoded (o.fpm not matching fea, or a mask that is not a number), or ""
// if there was no problem. OrgPermissions is then empty, so permission
// requirements fail closed; the handler logs this so the cause is visible.
func (id *Identity) PermissionsProblem() string { return id.permissionsProblem }

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
	out := make([]scopedEntry, strings.Count(list, ",")+1)
	i := -1
	for p := range strings.SplitSeq(list, ",") {
		i++
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
	var org, user int
	for _, e := range entries {
		if e.org {
			org++
		}
		if e.user {
			user++
		}
	}
	var s Scoped
	if org > 0 {
		s.Org = make([]string, 0, org)
	}
	if user > 0 {
		s.User = make([]string, 0, user)
	}
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
		dec := json.NewDecoder(strings.NewReader(id.payload))
		dec.UseNumber() // keep numbers exactly as the issuer wrote them
		_ = dec.Decode(&id.parsedJSON)
	})
	return lookupPath(id.parsedJSON, path)
}

// lookupPath returns the value at a dotted path of a decoded JSON object;
// ok is false when it is missing or null.
func lookupPath(doc any, path string) (any, bool) {
	cur := doc
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
// booleans in JSON form, arrays as a listValue, objects as JSON.
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
		return listValue(parts)
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

// orgPrefixed normalises an org role or permission the way Clerk's has()
// does: any run of leading "org:" collapses into exactly one.
func orgPrefixed(s string) string {
	if s == "" {
		return ""
	}
	rest := s
	for strings.HasPrefix(rest, "org:") {
		rest = rest[len("org:"):]
	}
	if len(s)-len(rest) == len("org:") {
		return s // already as it should be: no new string
	}
	return "org:" + rest
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
