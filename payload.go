package clerkauth

import (
	"fmt"
	"strconv"
)

// claims is the typed view of a Clerk token payload, as decode reads it.
// sub, exp, nbf, iat and sid are strictly typed, so a wrong type fails the
// token as Clerk's SDK does (token-verification-failed). iss, azp and aud
// are kept raw and typed by the check that owns each (checkClaims), so a
// wrong type there gets that check's reason code, as in Clerk's SDK.
// Clerk-specific claims are read leniently: an odd value only means
// "absent". Strings and raw values are substrings of the payload.
type claims struct {
	Sub string // "" when absent or null
	Exp optionalDate
	Nbf optionalDate
	Iat optionalDate
	Iss string // raw JSON, "" when absent; likewise Azp, Aud
	Azp string
	Aud string
	Sid string

	// Claims layout version, raw: 2 for the compact form, absent for v1.
	Version string

	// Organization, v1 form.
	OrgID          string
	OrgSlug        string
	OrgRole        string
	OrgPermissions string // raw

	// Organization, v2 form: the raw "o", and its members if an object.
	Org string
	org orgV2

	// Billing: comma lists of "scope:slug". Read whatever the version, as
	// Clerk's has() does.
	Features string
	Plans    string

	SessionStatus string
	Actor         string // raw "act"
	actorSub      string // act.sub: who impersonates

	// Machine tokens: the JWT id, and the scopes as M2M ("scopes", space
	// separated) and OAuth ("scp" array, else "scope") tokens carry them.
	Jti      string
	Scopes   string // raw
	Scp      string // raw
	Scope    string // raw
	ClientID string
}

// The member names each decoder reads, for refuseVariant.
var (
	claimNames = newMemberNames("sub", "exp", "nbf", "iat", "iss", "azp", "aud", "sid", "v",
		"org_id", "org_slug", "org_role", "org_permissions", "o", "fea", "pla", "sts", "act",
		"jti", "scopes", "scp", "scope", "client_id")
	orgV2Names = newMemberNames("id", "slg", "rol", "per", "fpm")
	actNames   = newMemberNames("sub")
)

// decode reads a payload (see walkObject). The "o" and "act" objects are
// read by name too, so they get the same member checks as the top level.
func (c *claims) decode(payload string) error {
	if err := walkObject(payload, c.member); err != nil {
		return err
	}
	if isObject(c.Org) {
		if err := walkObject(c.Org, c.org.member); err != nil {
			return fmt.Errorf("o: %w", err)
		}
	}
	if isObject(c.Actor) {
		if err := walkObject(c.Actor, c.actMember); err != nil {
			return fmt.Errorf("act: %w", err)
		}
	}
	return nil
}

func (c *claims) member(name, value string) error {
	var err error
	switch name {
	case "sub":
		c.Sub, err = typedString(name, value)
	case "exp":
		if value != "null" { // as absent: "exp claim is missing"
			err = c.Exp.decode(name, value)
		}
	case "nbf":
		err = c.Nbf.decode(name, value)
	case "iat":
		err = c.Iat.decode(name, value)
	case "iss":
		c.Iss = value
	case "azp":
		c.Azp = value
	case "aud":
		c.Aud = value
	case "sid":
		c.Sid, err = typedString(name, value)
	case "v":
		c.Version = value
	case "org_id":
		c.OrgID = rawString(value)
	case "org_slug":
		c.OrgSlug = rawString(value)
	case "org_role":
		c.OrgRole = rawString(value)
	case "org_permissions":
		c.OrgPermissions = value
	case "o":
		c.Org = value
	case "fea":
		c.Features = rawString(value)
	case "pla":
		c.Plans = rawString(value)
	case "sts":
		c.SessionStatus = rawString(value)
	case "act":
		c.Actor = value
	case "jti":
		c.Jti = rawString(value)
	case "scopes":
		c.Scopes = value
	case "scp":
		c.Scp = value
	case "scope":
		c.Scope = value
	case "client_id":
		c.ClientID = rawString(value)
	default:
		return claimNames.refuseVariant(name)
	}
	return err
}

// actMember reads the impersonation claim; only who impersonates matters.
func (c *claims) actMember(name, value string) error {
	if name == "sub" {
		c.actorSub = rawString(value)
		return nil
	}
	return actNames.refuseVariant(name)
}

// optionalDate is a NumericDate claim (exp, nbf, iat). Absent is fine, but
// a present nbf or iat must be a number: JSON null included, which
// encoding/json would read as absent and Clerk's SDK refuses.
type optionalDate struct {
	set bool
	sec float64
}

// decode reads a NumericDate as encoding/json reads a float64: a number
// beyond float64 (1e400) is an error, not infinity.
func (d *optionalDate) decode(name, value string) error {
	if c := value[0]; c != '-' && (c < '0' || c > '9') {
		return fmt.Errorf("member %q is not a number", name)
	}
	sec, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return fmt.Errorf("member %q is out of range", name)
	}
	d.set, d.sec = true, sec
	return nil
}

// ptr returns the date, or nil when it is absent.
func (d optionalDate) ptr() *float64 {
	if !d.set {
		return nil
	}
	return &d.sec
}

// orgV2 is the compact organization claim "o", read leniently.
type orgV2 struct {
	ID   string // id
	Slug string // slg
	Role string // rol
	Per  string // per
	Fpm  string // fpm
}

func (o *orgV2) member(name, value string) error {
	switch name {
	case "id":
		o.ID = rawString(value)
	case "slg":
		o.Slug = rawString(value)
	case "rol":
		o.Role = rawString(value)
	case "per":
		o.Per = rawString(value)
	case "fpm":
		o.Fpm = rawString(value)
	default:
		return orgV2Names.refuseVariant(name)
	}
	return nil
}

func isObject(raw string) bool { return raw != "" && raw[0] == '{' }

// isV2 reports whether the "v" claim is the number 2. Clerk's parser
// switches on exactly that; anything else reads as v1.
func isV2(raw string) bool {
	if raw == "" || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return false
	}
	v, err := strconv.ParseFloat(raw, 64)
	return err == nil && v == 2
}

// stringClaim reads a registered claim that must be a string when present:
// its value, and whether it is present with another type. null reads as
// absent, as Clerk's checks treat it.
func stringClaim(raw string) (s string, mistyped bool) {
	if raw == "" || raw == "null" {
		return "", false
	}
	s, ok := stringValue(raw)
	return s, !ok
}

// stringList returns the strings of a JSON array, skipping other elements
// and empty strings; nil for a value that is not an array, and an empty
// list for null (as encoding/json reads null into a list).
func stringList(raw string) []string {
	if raw == "null" {
		return []string{}
	}
	n := 0
	if !eachElement(raw, func(string) { n++ }) {
		return nil
	}
	out := make([]string, 0, n)
	eachElement(raw, func(e string) {
		if s := rawString(e); s != "" {
			out = append(out, s)
		}
	})
	return out
}
