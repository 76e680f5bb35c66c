package clerkauth

// requirements are the authorization rules a verified identity must meet.
// Every configured rule must pass; the values within one rule are any-of.
type requirements struct {
	roles []string
}

// check returns "" when id meets every requirement, else the reason code of
// the first one it fails.
func (req *requirements) check(id *Identity) string {
	if len(req.roles) > 0 && !anyOf(id.Roles, req.roles) {
		return ReasonMissingRole
	}
	return ""
}

// anyOf reports whether have and want share an element.
func anyOf(have, want []string) bool {
	for _, w := range want {
		if contains(have, w) {
			return true
		}
	}
	return false
}
