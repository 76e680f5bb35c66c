package clerkauth

import (
	"fmt"
	"slices"
	"strings"
)

// requirements are the authorization rules a verified identity must meet,
// Clerk's has() moved to the edge. Each field holds configured lines: every
// line must pass (AND), and one value of a line is enough (any-of). So a
// role line and a permission line must both hold, as in Clerk's fix for
// has({role, permission}) (#8372). Values are normalised by newRequirements;
// build requirements with it, not by hand.
type requirements struct {
	roles          [][]string         // `roles` lines (from the roles claim)
	orgRoles       [][]string         // `org_role` lines, "org:"-prefixed
	orgPermissions [][]string         // `org_permission` lines, "org:"-prefixed
	features       [][]string         // `feature` lines, "org:slug", "user:slug" or "slug"
	plans          [][]string         // `plan` lines, same form as features
	scopes         [][]string         // `scope` lines: a machine token's granted scopes
	claims         []claimRequirement // `claim <dotted.path> <value>...` lines
}

// claimRequirement is met when the claim at path equals one of values or,
// for an array claim, holds one of them.
type claimRequirement struct {
	path   string
	values []string
}

// newRequirements validates and normalises configured lines once, at
// provision time, so check only compares strings. Errors name the directive
// and the value; the caller adds its own prefix.
func newRequirements(roles, orgRoles, orgPermissions, features, plans, scopes [][]string, claims []claimRequirement) (requirements, error) {
	var req requirements
	var err error
	if req.roles, err = normaliseLines("roles", roles, asIs); err != nil {
		return requirements{}, err
	}
	if req.orgRoles, err = normaliseLines("org_role", orgRoles, orgValue); err != nil {
		return requirements{}, err
	}
	if req.orgPermissions, err = normaliseLines("org_permission", orgPermissions, orgValue); err != nil {
		return requirements{}, err
	}
	if req.features, err = normaliseLines("feature", features, billingValue); err != nil {
		return requirements{}, err
	}
	if req.plans, err = normaliseLines("plan", plans, billingValue); err != nil {
		return requirements{}, err
	}
	if req.scopes, err = normaliseLines("scope", scopes, asIs); err != nil {
		return requirements{}, err
	}
	for _, c := range claims {
		if !validClaimPath(c.path) {
			return requirements{}, fmt.Errorf("claim %q: not a dotted claim path like metadata.plan", c.path)
		}
		values, err := normaliseLine("claim "+c.path, c.values, asIs)
		if err != nil {
			return requirements{}, err
		}
		req.claims = append(req.claims, claimRequirement{path: c.path, values: values})
	}
	return req, nil
}

func normaliseLines(directive string, lines [][]string, norm func(directive, value string) (string, error)) ([][]string, error) {
	var out [][]string
	for _, line := range lines {
		values, err := normaliseLine(directive, line, norm)
		if err != nil {
			return nil, err
		}
		out = append(out, values)
	}
	return out, nil
}

// normaliseLine copies one line through norm. An empty line would be an
// any-of over nothing, which no identity can pass: a configuration mistake
// (often a placeholder that expanded to nothing), so it is refused here
// rather than turning every request into a 403.
func normaliseLine(directive string, line []string, norm func(directive, value string) (string, error)) ([]string, error) {
	if len(line) == 0 {
		return nil, fmt.Errorf("%s: a line needs at least one value", directive)
	}
	out := make([]string, len(line))
	for i, v := range line {
		if v == "" {
			return nil, fmt.Errorf("%s: empty value", directive)
		}
		n, err := norm(directive, v)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

func asIs(_, v string) (string, error) { return v, nil }

// orgValue normalises an org role or permission as Clerk's prefixWithOrg,
// so `admin`, `org:admin` and `org:org:admin` are one role and
// `teams:manage` is `org:teams:manage`.
func orgValue(directive, v string) (string, error) {
	n := orgPrefixed(v)
	if n == "org:" {
		return "", fmt.Errorf("%s %q: names nothing after the org: prefix", directive, v)
	}
	return n, nil
}

// billingValue normalises a feature or plan, `scope:slug` or `slug`, to
// "org:slug", "user:slug" or "slug" (either holder). As in Clerk's has(),
// only the text between the first and a second ':' is the slug, so
// `org:a:b` checks `a`: token slugs are read the same way (parseScoped),
// so the two agree. Unlike has(), which throws at request time, an unknown
// scope is refused here, at provision time.
func billingValue(directive, v string) (string, error) {
	scope, rest, scoped := strings.Cut(v, ":")
	if !scoped {
		return v, nil
	}
	slug, _, _ := strings.Cut(rest, ":")
	if slug == "" {
		return "", fmt.Errorf("%s %q: no slug after the scope", directive, v)
	}
	switch scope {
	case "o", "org", "organization":
		return "org:" + slug, nil
	case "u", "user":
		return "user:" + slug, nil
	}
	return "", fmt.Errorf("%s %q: unknown scope %q: use o:, org: or organization: for the active organization, u: or user: for the user, or no scope for either",
		directive, v, scope)
}

// unmet is the first requirement line an identity fails; reason is "" when
// every line passes.
type unmet struct {
	reason string
	claim  string   // the claim path, for ReasonClaimMismatch
	values []string // the line's values: any one would have passed
}

// check returns the first line id fails, in configuration order. With
// nothing configured it passes: unlike has({}), which is false, clerk_auth
// then only asks for a valid token.
func (req *requirements) check(id *Identity) unmet {
	for _, line := range req.roles {
		if !anyOf(id.Roles(), line) {
			return unmet{reason: ReasonMissingRole, values: line}
		}
	}
	// Org roles and permissions need an active org, as in has(); OrgRole is
	// already "org:"-prefixed (newIdentity), as are the wanted values.
	for _, line := range req.orgRoles {
		if id.OrgID == "" || !slices.Contains(line, id.OrgRole) {
			return unmet{reason: ReasonMissingOrgRole, values: line}
		}
	}
	for _, line := range req.orgPermissions {
		if id.OrgID == "" || !anyOf(id.OrgPermissions, line) {
			return unmet{reason: ReasonMissingPermission, values: line}
		}
	}
	for _, line := range req.features {
		if !anyScoped(&id.Features, line) {
			return unmet{reason: ReasonMissingFeature, values: line}
		}
	}
	for _, line := range req.plans {
		if !anyScoped(&id.Plans, line) {
			return unmet{reason: ReasonMissingPlan, values: line}
		}
	}
	// Only machine tokens carry scopes: a session never meets a scope line.
	for _, line := range req.scopes {
		if !anyOf(id.Scopes, line) {
			return unmet{reason: ReasonMissingScope, values: line}
		}
	}
	for i := range req.claims {
		if c := &req.claims[i]; !c.met(id) {
			return unmet{reason: ReasonClaimMismatch, claim: c.path, values: c.values}
		}
	}
	return unmet{}
}

// anyScoped reports whether held has one of the normalised values in want.
// A value without scope may be held by the org or by the user; merging the
// two is safe because org entries only exist while an org is active.
func anyScoped(held *Scoped, want []string) bool {
	for _, w := range want {
		scope, slug, scoped := strings.Cut(w, ":")
		switch {
		case !scoped:
			if slices.Contains(held.Org, w) || slices.Contains(held.User, w) {
				return true
			}
		case scope == "org":
			if slices.Contains(held.Org, slug) {
				return true
			}
		default: // "user"
			if slices.Contains(held.User, slug) {
				return true
			}
		}
	}
	return false
}

// met compares the claim's text (claimString): strings as is, numbers as
// the issuer wrote them (so 1.0 is not 1), booleans as true/false. An
// array is met by any element; a missing or null claim never is.
func (c *claimRequirement) met(id *Identity) bool {
	v, ok := id.claim(c.path)
	if !ok {
		return false
	}
	if elems, isArray := v.([]any); isArray {
		for _, e := range elems {
			if slices.Contains(c.values, claimString(e)) {
				return true
			}
		}
		return false
	}
	return slices.Contains(c.values, claimString(v))
}

// anyOf reports whether have and want share an element.
func anyOf(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}
