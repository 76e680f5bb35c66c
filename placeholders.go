package clerkauth

import (
	"context"
	"net/http"
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
	id     *Identity // nil: anonymous
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
	name, ok := strings.CutPrefix(key, userPrefix)
	if !ok {
		return nil, false
	}
	if st.id == nil {
		return "", true
	}
	return st.id.placeholder(name), true
}

// placeholder returns the value of {http.auth.user.<name>}.
func (id *Identity) placeholder(name string) string {
	switch name {
	case "id":
		return id.UserID
	case "session_id":
		return id.SessionID
	case "org_id":
		return id.OrgID
	case "org_slug":
		return id.OrgSlug
	case "org_role":
		return id.OrgRole
	case "org_permissions":
		return strings.Join(id.OrgPermissions, ",")
	case "roles":
		return strings.Join(id.Roles(), ",")
	case "features":
		return id.Features.String()
	case "plans":
		return id.Plans.String()
	case "session_status":
		return id.SessionStatus
	case "actor":
		return id.Actor
	case "issuer":
		return id.Issuer
	case "expires_at":
		return id.ExpiresAt.Format(time.RFC3339)
	case "token_type":
		return id.TokenType
	case "azp":
		return id.AuthorizedParty
	}
	if path, ok := strings.CutPrefix(name, "claims."); ok {
		v, _ := id.claim(path)
		return claimString(v)
	}
	return ""
}

// String renders a billing claim for a placeholder: "o:<slug>" for each
// organization entry, then "u:<slug>" for each user entry, comma-joined,
// the same shape as Clerk's fea/pla claims.
func (s Scoped) String() string {
	var b strings.Builder
	for _, part := range []struct {
		scope string
		list  []string
	}{{"o:", s.Org}, {"u:", s.User}} {
		for _, v := range part.list {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(part.scope)
			b.WriteString(v)
		}
	}
	return b.String()
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
