package clerkauth

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// claims is the typed view of a Clerk token payload. The registered claims
// are strictly typed, so a wrong type fails the token as Clerk's SDK does
// (token-verification-failed); Clerk-specific claims are kept raw and read
// leniently, so an odd value there only means "absent".
type claims struct {
	Sub *string         `json:"sub"`
	Exp *float64        `json:"exp"`
	Nbf *float64        `json:"nbf"`
	Iat *float64        `json:"iat"`
	Iss string          `json:"iss"`
	Azp string          `json:"azp"`
	Sid string          `json:"sid"`
	Aud json.RawMessage `json:"aud"`

	// Organization, v1 form.
	OrgID          json.RawMessage `json:"org_id"`
	OrgSlug        json.RawMessage `json:"org_slug"`
	OrgRole        json.RawMessage `json:"org_role"`
	OrgPermissions json.RawMessage `json:"org_permissions"`

	// Organization, v2 form ("v": 2).
	Org json.RawMessage `json:"o"`
}

type orgV2 struct {
	ID   json.RawMessage `json:"id"`
	Slug json.RawMessage `json:"slg"`
	Role json.RawMessage `json:"rol"`
}

// Identity is what a verified token proves. It is immutable once built and
// may be shared between requests.
type Identity struct {
	UserID          string
	SessionID       string
	Issuer          string
	AuthorizedParty string
	TokenType       string
	OrgID           string
	OrgSlug         string
	OrgRole         string // always "org:"-prefixed
	OrgPermissions  []string
	Roles           []string
	ExpiresAt       time.Time

	payload    []byte
	parseOnce  sync.Once
	parsedJSON map[string]any
}

func newIdentity(c *claims, payload []byte, class, rolesClaim string) *Identity {
	id := &Identity{
		UserID:          *c.Sub,
		SessionID:       c.Sid,
		Issuer:          c.Iss,
		AuthorizedParty: c.Azp,
		TokenType:       class,
		ExpiresAt:       unixTime(*c.Exp),
		payload:         payload,
	}
	if len(c.Org) > 0 {
		var o orgV2
		if json.Unmarshal(c.Org, &o) == nil {
			id.OrgID = rawString(o.ID)
			id.OrgSlug = rawString(o.Slug)
			id.OrgRole = orgPrefixed(rawString(o.Role))
		}
	} else {
		id.OrgID = rawString(c.OrgID)
		id.OrgSlug = rawString(c.OrgSlug)
		id.OrgRole = orgPrefixed(rawString(c.OrgRole))
		id.OrgPermissions = stringList(c.OrgPermissions)
	}
	if id.OrgID == "" {
		// Org claims mean nothing without an active org (Clerk's has() fails
		// them too); drop them rather than forward half an org.
		id.OrgSlug, id.OrgRole, id.OrgPermissions = "", "", nil
	}
	if v, ok := id.claim(rolesClaim); ok {
		id.Roles = rolesFrom(v)
	}
	return id
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

// rawString returns a JSON string's value, or "" for any other JSON type.
func rawString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
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
