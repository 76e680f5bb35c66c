package clerkauth

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

const (
	userPrefix     = "http.auth.user."
	reasonVariable = "http.auth.clerk.reason"
)

// authState is one request's outcome. Placeholders are resolved from it
// lazily, when something (header_up, a log, a template) asks for them, so a
// request pays only for the values it uses.
type authState struct {
	id     *Identity   // nil: anonymous
	enrich *enrichment // nil: none configured or none to be had
	reason string
}

type authStateKey struct{}

// stateFor returns the request's authState, installing it and its
// placeholder provider on first use. Several clerk_auth handlers on one
// request share the one state, so the last verdict is what placeholders show
// and no earlier, stale identity can shadow it.
func stateFor(r *http.Request, repl *caddy.Replacer) (*authState, *http.Request) {
	if st, ok := r.Context().Value(authStateKey{}).(*authState); ok {
		return st, r
	}
	st := new(authState)
	repl.Map(st.placeholder)
	return st, r.WithContext(context.WithValue(r.Context(), authStateKey{}, st))
}

// stateOf is the request's authState, which ServeHTTP installed.
func stateOf(r *http.Request) *authState {
	return r.Context().Value(authStateKey{}).(*authState)
}

// IdentityFrom returns the identity that clerk_auth verified for r, for
// handlers later in the route (as caddyauth's User is read from the
// replacer). It is nil on anonymous requests, on CORS preflights, and when
// no clerk_auth handler ran before. With several clerk_auth handlers on one
// route, the last verdict wins. The Identity must not be modified.
func IdentityFrom(r *http.Request) *Identity {
	st, ok := r.Context().Value(authStateKey{}).(*authState)
	if !ok {
		return nil
	}
	return st.id
}

// placeholder is a caddy.ReplacerFunc. Every http.auth.user.* key is known:
// on an anonymous request it is the empty string, so a header_up can never
// forward a literal "{http.auth.user.id}".
func (st *authState) placeholder(key string) (any, bool) {
	if key == reasonVariable {
		return st.reason, true
	}
	if name, ok := strings.CutPrefix(key, orgPrefix); ok {
		if st.id == nil {
			return "", true
		}
		return escapeControls(st.enrich.orgField(name)), true
	}
	name, ok := strings.CutPrefix(key, userPrefix)
	if !ok {
		return nil, false
	}
	if st.id == nil {
		return "", true
	}
	return st.userField(name), true
}

// userField is {http.auth.user.<name>} of an authenticated request: the
// enrichment fields, then the identity's.
func (st *authState) userField(name string) string {
	if v, ok := st.enrich.userField(name); ok {
		return escapeControls(v)
	}
	return st.id.placeholder(name)
}

// placeholder returns the value of {http.auth.user.<name>}. It is always a
// valid header value: lists encode their elements (listValue), and control
// characters, which no header may carry and which would make Go fail the
// proxied request, are percent-encoded in the other values too.
func (id *Identity) placeholder(name string) string {
	return escapeControls(id.placeholderText(name))
}

func (id *Identity) placeholderText(name string) string {
	switch name {
	case "id":
		return id.Subject
	case "session_id":
		return id.SessionID
	case "org_id":
		return id.OrgID
	case "org_slug":
		return id.OrgSlug
	case "org_role":
		return id.OrgRole
	case "org_permissions":
		return listValue(id.OrgPermissions)
	case "org_permissions_json":
		return jsonList(id.OrgPermissions)
	case "roles":
		return listValue(id.Roles())
	case "roles_json":
		return jsonList(id.Roles())
	case "features":
		return id.Features.String()
	case "features_json":
		return jsonList(id.Features.entries())
	case "plans":
		return id.Plans.String()
	case "plans_json":
		return jsonList(id.Plans.entries())
	case "session_status":
		return id.SessionStatus
	case "actor":
		return id.Actor
	case "issuer":
		return id.Issuer
	case "expires_at":
		if id.ExpiresAt.IsZero() {
			return "" // an API key without expiry
		}
		return id.ExpiresAt.Format(time.RFC3339)
	case "token_type":
		return id.TokenType
	case "azp":
		return id.AuthorizedParty
	case "token_id":
		return id.TokenID
	case "machine_id":
		return id.MachineID()
	case "scopes":
		return listValue(id.Scopes)
	case "scopes_json":
		return jsonList(id.Scopes)
	case "name":
		return id.KeyName
	case "client_id":
		return id.ClientID
	}
	if path, ok := strings.CutPrefix(name, "claims."); ok {
		v, _ := id.claim(path)
		return claimString(v)
	}
	if path, ok := strings.CutPrefix(name, "claims_json."); ok {
		if v, ok := id.claim(path); ok {
			return jsonText(v)
		}
	}
	return ""
}

// String renders a billing claim as its placeholder does: "o:<slug>" for
// each organization entry, then "u:<slug>" for each user entry, as a
// listValue, the same shape as Clerk's fea/pla claims.
func (s Scoped) String() string { return listValue(s.entries()) }

func (s Scoped) entries() []string {
	out := make([]string, 0, len(s.Org)+len(s.User))
	for _, v := range s.Org {
		out = append(out, "o:"+v)
	}
	for _, v := range s.User {
		out = append(out, "u:"+v)
	}
	return out
}

// listValue joins a list placeholder's elements with commas. In each
// element '%', ',', '"', space and control characters are percent-encoded,
// so no element reads as two (or merges with its neighbour) to an
// upstream that splits on commas, trims the spaces around them or honours
// quoted strings, as RFC 9110 list parsers do. Encoding rather than
// dropping such elements loses nothing: a plain list is unchanged, and
// splitting on ',' then percent-decoding each element is exact.
func listValue(elems []string) string {
	if !slices.ContainsFunc(elems, func(e string) bool { return strings.IndexFunc(e, isListSpecial) >= 0 }) {
		return strings.Join(elems, ",")
	}
	var b strings.Builder
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		for j := 0; j < len(e); j++ {
			if c := e[j]; isListSpecial(rune(c)) {
				percentEncode(&b, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// isListSpecial reports the bytes listValue encodes; every one is ASCII, so
// testing the bytes of a UTF-8 string and testing its runes agree.
func isListSpecial(r rune) bool {
	return r == '%' || r == ',' || r == '"' || r == ' ' || r < 0x20 || r == 0x7f
}

// escapeControls percent-encodes the control characters of a single
// value. Clerk never issues them; a custom claim could hold them.
func escapeControls(s string) string {
	i := 0
	for i < len(s) && !isControl(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for j := i; j < len(s); j++ {
		if c := s[j]; isControl(c) {
			percentEncode(&b, c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isControl(c byte) bool { return c < 0x20 || c == 0x7f }

func percentEncode(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&0xf])
}

// jsonList renders a list as a JSON array of strings, the exact form of a
// list placeholder; no roles is [], where the anonymous request has "".
func jsonList(elems []string) string {
	if elems == nil {
		elems = []string{}
	}
	return jsonText(elems)
}

// jsonText renders v as compact JSON. JSON escapes every control
// character, so the text is a valid header value. Header values are not
// HTML, so <, > and & are left as they are.
func jsonText(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// identityField returns "id" for "{http.auth.user.id}", and "" for any
// value that is not exactly one identity placeholder.
func identityField(value string) string {
	inner, ok := strings.CutPrefix(value, "{"+userPrefix)
	if !ok {
		return ""
	}
	name, ok := strings.CutSuffix(inner, "}")
	if !ok || name == "" || strings.ContainsAny(name, "{}") {
		return ""
	}
	return name
}
