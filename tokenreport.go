package clerkauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// unverified is a token taken apart without checking anything: what it
// says, for display and for explaining a verdict, never for trusting.
type unverified struct {
	header    map[string]string // raw JSON values
	payload   string
	claims    *claims // nil when the payload is not claims the verifier reads
	claimsErr error   // why claims is nil
}

// decodeUnverified splits token as the verifier does and decodes its
// header as strictly, but takes any JSON payload, so the report can show
// what the verifier would refuse; claims are read as the verifier reads
// them, if they can be.
func decodeUnverified(token string) (*unverified, error) {
	rawHeader, rawPayload, _, ok := splitJWT(token)
	if !ok {
		return nil, errors.New("not a JWT: a JWT has exactly three dot-separated segments")
	}
	u := &unverified{header: map[string]string{}}
	header, err := decodeSegment(nil, rawHeader)
	if err == nil {
		err = walkObject(header, func(name, value string) error {
			u.header[name] = value
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("header is %v", err)
	}
	if u.payload, err = decodeSegment(nil, rawPayload); err != nil {
		return nil, errors.New("payload is not base64url")
	}
	if !json.Valid([]byte(u.payload)) {
		return nil, errors.New("payload is not JSON")
	}
	var c claims
	if err := c.decode(u.payload); err != nil {
		u.claimsErr = err
	} else {
		u.claims = &c
	}
	return u, nil
}

// headerString returns a header parameter that is a JSON string; "" for
// anything else, and for a token that did not decode (u == nil).
func (u *unverified) headerString(name string) string {
	if u == nil {
		return ""
	}
	return rawString(u.header[name])
}

// kindUnknown is the kind of a token whose category is none Clerk uses.
const kindUnknown = "unknown"

// kind tells what class of token this is, by the verifier's own classify,
// and how it was told.
func (u *unverified) kind() (kind, how string) {
	hdr := jwtHeader{Typ: u.header["typ"], Cat: u.header["cat"]}
	c := u.claims
	if c == nil {
		c = new(claims)
	}
	form := unverifiedForm(u.payload, c, u.claimsErr)
	class, err := classify(&hdr, form)
	cat := rawString(u.header["cat"])
	switch {
	case err != nil:
		return kindUnknown, "cat is not a category Clerk uses for sessions or templates, never accepted"
	case class == TokenTypeM2M:
		return class, "sub starts with " + machineSubjectPrefix + ": a machine-to-machine token"
	case class == TokenTypeOAuth:
		return class, "typ " + u.headerString("typ") + ": an OAuth access token"
	case cat != "" && cat != catIgnore:
		return class, "from the cat header"
	case form.sid:
		return TokenTypeSession, "no cat header; it has a sid"
	}
	return TokenTypeTemplate, "no cat header and no sid"
}

// identity decodes the Clerk claims with the handler's own code, so the
// report shows the org, permissions, features and plans the handler would
// see. Absent sub and exp are read as empty: nothing is verified here.
func (u *unverified) identity(class, rolesClaim string) *Identity {
	return newIdentity(u.claims, u.payload, class, rolesClaim)
}

// catLine shows the cat header with its meaning.
func catLine(raw string) string {
	meaning := "unknown category"
	switch rawString(raw) {
	case catSession:
		meaning = "session token"
	case catTemplate:
		meaning = "JWT template token"
	case catM2M:
		meaning = "machine-to-machine (M2M) token"
	case catIgnore:
		meaning = "ignore: session if there is a sid, else JWT template"
	}
	if len(raw) == 0 {
		return "(absent: session if there is a sid, else JWT template)"
	}
	return showRaw(raw) + " (" + meaning + ")"
}

// showRaw renders a JSON value for the report: strings bare, anything else
// as JSON on one line; both escaped where not printable.
func showRaw(raw string) string {
	if raw == "" {
		return "(absent)"
	}
	if s, ok := stringValue(raw); ok {
		return shown(s)
	}
	var compact bytes.Buffer
	if json.Compact(&compact, []byte(raw)) != nil {
		return shownJSON([]byte(raw))
	}
	return shownJSON(compact.Bytes())
}

// inspectToken prints what the token says, verifying nothing. It returns
// an error when the token cannot be decoded as a Clerk token at all.
func inspectToken(w io.Writer, token string, now time.Time) error {
	if kind, ok := opaqueKind(token); ok {
		fmt.Fprintf(w, "An opaque %s token: only Clerk's Backend API can say what it stands for (clerk_auth asks it with secret_key)\n", kind)
		return nil
	}
	u, err := decodeUnverified(token)
	if err != nil {
		fmt.Fprintf(w, "Cannot decode the token: %s\n", shown(err.Error()))
		return err
	}
	fmt.Fprintln(w, "Header (decoded, NOT verified)")
	for _, name := range []string{"alg", "kid", "typ", "cat"} {
		v := showRaw(u.header[name])
		if name == "cat" {
			v = catLine(u.header[name])
		}
		fmt.Fprintf(w, "  %-4s %s\n", name, v)
	}
	if crit, ok := u.header["crit"]; ok {
		fmt.Fprintf(w, "  crit %s (refused: clerk_auth supports no critical extensions)\n", showRaw(crit))
	}

	var pretty bytes.Buffer
	_ = json.Indent(&pretty, []byte(u.payload), "  ", "  ") // cannot fail: decodeUnverified checked json.Valid
	fmt.Fprintf(w, "\nClaims\n  %s\n", shownJSON(pretty.Bytes()))
	if u.claims == nil {
		fmt.Fprintf(w, "\nNot Clerk claims: %s\n", shown(u.claimsErr.Error()))
		return fmt.Errorf("claims: %v", u.claimsErr)
	}
	c := u.claims

	fmt.Fprintf(w, "\nTimes (now %s)\n", now.UTC().Format(time.RFC3339))
	for _, t := range []struct {
		name string
		sec  *float64
	}{{"exp", c.Exp.ptr()}, {"nbf", c.Nbf.ptr()}, {"iat", c.Iat.ptr()}} {
		if t.sec == nil {
			fmt.Fprintf(w, "  %s  (absent)\n", t.name)
			continue
		}
		at := unixTime(*t.sec)
		fmt.Fprintf(w, "  %s  %s (%s)\n", t.name, at.Format(time.RFC3339), relative(at, now))
	}

	kind, how := u.kind()
	id := u.identity(kind, defaultRoles)
	version := "v1"
	if isV2(c.Version) {
		version = "v2"
	}
	fmt.Fprintln(w, "\nToken")
	row := func(k, v string) { fmt.Fprintf(w, "  %-12s %s\n", k, v) }
	row("class", kind+" ("+how+")")
	row("claims", version)
	row("sub", orAbsent(c.Sub))
	row("sid", orAbsent(c.Sid))
	row("iss", orAbsent(showRaw(c.Iss)))
	row("azp", orAbsent(showRaw(c.Azp)))
	if c.Aud != "" {
		row("aud", showRaw(c.Aud))
	}
	row("sts", orAbsent(id.SessionStatus))
	if id.Actor != "" {
		row("act", shown(id.Actor)+" (impersonating the user)")
	}
	if id.OrgID == "" {
		row("org", "(no active organization)")
	} else {
		row("org", fmt.Sprintf("%s (slug %s, role %s)", shown(id.OrgID), orAbsent(id.OrgSlug), orAbsent(id.OrgRole)))
		row("permissions", listOrNone(id.OrgPermissions))
		if p := id.PermissionsProblem(); p != "" {
			row("", "treated as none: "+shown(p))
		}
	}
	row("features", scopedString(id.Features))
	row("plans", scopedString(id.Plans))
	if len(id.Roles()) > 0 {
		row("roles", listOrNone(id.Roles())+" (claim "+defaultRoles+")")
	}
	return nil
}

// orAbsent renders a string claim, escaped where not printable.
func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return shown(s)
}

// listOrNone renders a list claim, each value escaped where not printable.
func listOrNone(l []string) string {
	if len(l) == 0 {
		return "(none)"
	}
	return strings.Join(shownAll(l), ", ")
}

// list renders values, from the token or the config, the way the fixes
// quote them, each escaped where not printable.
func list(l []string) string { return "[" + strings.Join(shownAll(l), ", ") + "]" }

func shownAll(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = shown(s)
	}
	return out
}

func scopedString(s Scoped) string {
	var parts []string
	if len(s.Org) > 0 {
		parts = append(parts, "org "+list(s.Org))
	}
	if len(s.User) > 0 {
		parts = append(parts, "user "+list(s.User))
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, ", ")
}

// relative says when t is from now's point of view: "in 42s", "3m ago".
func relative(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d > -time.Second/2 && d < time.Second/2:
		return "now"
	case d > 0:
		return "in " + human(d)
	}
	return human(-d) + " ago"
}

// human renders a duration as people say it: 42s, 3m, 3m12s, 2h5m, 3d.
func human(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	if d >= time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	s := d.String() // 42s, 3m0s, 3m12s, 2h0m0s, 2h5m0s
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}
