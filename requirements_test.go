package clerkauth

import (
	"reflect"
	"strings"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// reqSpec is the configuration of one requirements under test.
type reqSpec struct {
	roles, orgRoles, orgPermissions, features, plans, scopes [][]string
	claims                                                   []claimRequirement
}

func (s reqSpec) build() (requirements, error) {
	return newRequirements(s.roles, s.orgRoles, s.orgPermissions, s.features, s.plans, s.scopes, s.claims)
}

// line is one configured line: any of values.
func line(values ...string) [][]string { return [][]string{values} }

func TestRequirementsNormalise(t *testing.T) {
	req, err := reqSpec{
		roles:          [][]string{{"admin", "org:admin"}, {"ops"}},
		orgRoles:       line("admin", "org:member", "org:org:viewer"),
		orgPermissions: line("teams:manage", "org:teams:read", "org:org:org:x:y"),
		features:       line("o:a", "org:b", "organization:c", "u:d", "user:e", "f", "org:g:h"),
		plans:          line("user:free", "pro"),
		claims:         []claimRequirement{{path: "metadata.tier", values: []string{"gold", "org:x"}}},
	}.build()
	if err != nil {
		t.Fatal(err)
	}
	want := requirements{
		roles:          [][]string{{"admin", "org:admin"}, {"ops"}}, // roles are compared as written
		orgRoles:       line("org:admin", "org:member", "org:viewer"),
		orgPermissions: line("org:teams:manage", "org:teams:read", "org:x:y"),
		features:       line("org:a", "org:b", "org:c", "user:d", "user:e", "f", "org:g"),
		plans:          line("user:free", "pro"),
		claims:         []claimRequirement{{path: "metadata.tier", values: []string{"gold", "org:x"}}},
	}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("normalised to\n%+v\nwant\n%+v", req, want)
	}
}

func TestRequirementsRejectBadConfig(t *testing.T) {
	cases := []struct {
		name string
		spec reqSpec
		want string // substring of the error
	}{
		{"empty roles line", reqSpec{roles: [][]string{{}}}, "roles: a line needs at least one value"},
		{"empty org_role line", reqSpec{orgRoles: [][]string{{"admin"}, nil}}, "org_role: a line needs at least one value"},
		{"empty role value", reqSpec{roles: line("admin", "")}, "roles: empty value"},
		{"empty permission value", reqSpec{orgPermissions: line("")}, "org_permission: empty value"},
		{"org role of only prefixes", reqSpec{orgRoles: line("org:org:")}, `org_role "org:org:": names nothing`},
		{"permission of only a prefix", reqSpec{orgPermissions: line("org:")}, `org_permission "org:": names nothing`},
		{"feature with unknown scope", reqSpec{features: line("dashboard", "team:dashboard")}, `feature "team:dashboard": unknown scope "team": use o:, org: or organization:`},
		{"feature with empty scope", reqSpec{features: line(":dashboard")}, `unknown scope ""`},
		{"plan with unknown scope", reqSpec{plans: line("organisation:pro")}, `plan "organisation:pro": unknown scope "organisation"`},
		{"scope is case-sensitive", reqSpec{plans: line("User:pro")}, `unknown scope "User"`},
		{"feature without slug", reqSpec{features: line("org:")}, `feature "org:": no slug`},
		{"plan without slug", reqSpec{plans: line("u::x")}, `plan "u::x": no slug`},
		{"empty feature value", reqSpec{features: line("")}, "feature: empty value"},
		{"empty plan line", reqSpec{plans: [][]string{{}}}, "plan: a line needs at least one value"},
		{"claim without path", reqSpec{claims: []claimRequirement{{values: []string{"x"}}}}, `claim "": not a dotted claim path`},
		{"claim path with leading dot", reqSpec{claims: []claimRequirement{{path: ".a", values: []string{"x"}}}}, "not a dotted claim path"},
		{"claim path with trailing dot", reqSpec{claims: []claimRequirement{{path: "a.", values: []string{"x"}}}}, "not a dotted claim path"},
		{"claim path with empty segment", reqSpec{claims: []claimRequirement{{path: "a..b", values: []string{"x"}}}}, "not a dotted claim path"},
		{"claim without values", reqSpec{claims: []claimRequirement{{path: "tier"}}}, "claim tier: a line needs at least one value"},
		{"claim with an empty value", reqSpec{claims: []claimRequirement{{path: "tier", values: []string{"gold", ""}}}}, "claim tier: empty value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.spec.build()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestRequirementsHas runs Clerk's has() cases (reference §9.1) against
// identities decoded from real tokens.
func TestRequirementsHas(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)

	withClaims := func(kv map[string]any) []clerktest.Option { return []clerktest.Option{clerktest.WithClaims(kv)} }
	v1Admin := []clerktest.Option{clerktest.V1Org("org_1", "acme", "org:admin", "org:teams:manage")}
	v2Admin := []clerktest.Option{
		clerktest.V2(clerktest.OrgV2{ID: "org_2", Slug: "beta", Role: "admin", Per: "manage,read", Fpm: "1,2"}),
		fea("o:teams,o:billing"),
	}
	v2Misaligned := []clerktest.Option{
		clerktest.V2(clerktest.OrgV2{ID: "org_2", Role: "admin", Per: "manage,read", Fpm: "1"}),
		fea("o:teams,o:billing"),
	}
	noOrg := []clerktest.Option(nil)
	orgClaimsWithoutOrg := withClaims(map[string]any{"org_role": "org:admin", "org_permissions": []string{"org:teams:manage"}})
	billing := withClaims(map[string]any{"fea": "o:dashboard,u:beta,ou:shared", "pla": "u:free,o:pro"})
	metadata := withClaims(map[string]any{
		"roles": []string{"admin", "ops"},
		"metadata": map[string]any{
			"tier": "gold", "seats": 3, "ratio": 1.0, "verified": true, "off": false,
			"tags": []any{"a", "b", 7}, "none": nil, "empty": []any{}, "nested": map[string]any{"k": "v"},
		},
	})

	cases := []struct {
		name  string
		token []clerktest.Option
		spec  reqSpec
		want  string // reason; "" = pass
	}{
		{"nothing configured", noOrg, reqSpec{}, ""},
		{"nothing configured, with an org", v2Admin, reqSpec{}, ""},

		{"role admin is org:admin (v1)", v1Admin, reqSpec{orgRoles: line("admin")}, ""},
		{"role org:admin matches unprefixed v2 rol", v2Admin, reqSpec{orgRoles: line("org:admin")}, ""},
		{"role org:org:admin collapses", v2Admin, reqSpec{orgRoles: line("org:org:admin")}, ""},
		{"other role", v2Admin, reqSpec{orgRoles: line("member")}, ReasonMissingOrgRole},
		{"role any-of", v1Admin, reqSpec{orgRoles: line("member", "admin")}, ""},
		{"role without an org", noOrg, reqSpec{orgRoles: line("admin")}, ReasonMissingOrgRole},
		{"role claim without org_id", orgClaimsWithoutOrg, reqSpec{orgRoles: line("admin")}, ReasonMissingOrgRole},

		{"permission without prefix (v1)", v1Admin, reqSpec{orgPermissions: line("teams:manage")}, ""},
		{"permission decoded from fpm (v2)", v2Admin, reqSpec{orgPermissions: line("org:billing:read")}, ""},
		{"permission org:org: collapses", v2Admin, reqSpec{orgPermissions: line("org:org:teams:manage")}, ""},
		{"permission not granted by its mask", v2Admin, reqSpec{orgPermissions: line("teams:read")}, ReasonMissingPermission},
		{"permission any-of", v2Admin, reqSpec{orgPermissions: line("teams:read", "billing:read")}, ""},
		{"permission without an org", noOrg, reqSpec{orgPermissions: line("teams:manage")}, ReasonMissingPermission},
		{"permission claim without org_id", orgClaimsWithoutOrg, reqSpec{orgPermissions: line("teams:manage")}, ReasonMissingPermission},
		{"permission with misaligned fpm fails closed", v2Misaligned, reqSpec{orgPermissions: line("teams:manage")}, ReasonMissingPermission},

		// #8372: a role and a permission must both hold.
		{"role and permission both hold", v1Admin, reqSpec{orgRoles: line("admin"), orgPermissions: line("teams:manage")}, ""},
		{"role holds, permission does not", v1Admin, reqSpec{orgRoles: line("admin"), orgPermissions: line("teams:delete")}, ReasonMissingPermission},
		{"permission holds, role does not", v1Admin, reqSpec{orgRoles: line("member"), orgPermissions: line("teams:manage")}, ReasonMissingOrgRole},

		{"feature without scope, org-held", billing, reqSpec{features: line("dashboard")}, ""},
		{"feature without scope, user-held", billing, reqSpec{features: line("beta")}, ""},
		{"feature o:", billing, reqSpec{features: line("o:dashboard")}, ""},
		{"feature org:", billing, reqSpec{features: line("org:dashboard")}, ""},
		{"feature organization:", billing, reqSpec{features: line("organization:dashboard")}, ""},
		{"feature u: of an org feature", billing, reqSpec{features: line("u:dashboard")}, ReasonMissingFeature},
		{"feature user: of an org feature", billing, reqSpec{features: line("user:dashboard")}, ReasonMissingFeature},
		{"feature u:", billing, reqSpec{features: line("u:beta")}, ""},
		{"feature user:", billing, reqSpec{features: line("user:beta")}, ""},
		{"feature org: of a user feature", billing, reqSpec{features: line("org:beta")}, ReasonMissingFeature},
		{"feature ou held by org", billing, reqSpec{features: line("org:shared")}, ""},
		{"feature ou held by user", billing, reqSpec{features: line("user:shared")}, ""},
		{"feature: only the text before a second colon counts", billing, reqSpec{features: line("org:dashboard:anything")}, ""},
		{"feature not held", billing, reqSpec{features: line("reports")}, ReasonMissingFeature},
		{"feature any-of", billing, reqSpec{features: line("reports", "user:beta")}, ""},
		{"feature, empty claim", withClaims(map[string]any{"fea": ""}), reqSpec{features: line("dashboard")}, ReasonMissingFeature},
		{"feature, missing claim", noOrg, reqSpec{features: line("dashboard")}, ReasonMissingFeature},
		{"feature, unknown scope in the claim", withClaims(map[string]any{"fea": "x:dashboard"}), reqSpec{features: line("dashboard")}, ReasonMissingFeature},

		{"plan without scope", billing, reqSpec{plans: line("free")}, ""},
		{"plan user:", billing, reqSpec{plans: line("user:free")}, ""},
		{"plan org:", billing, reqSpec{plans: line("org:pro")}, ""},
		{"plan in the wrong scope", billing, reqSpec{plans: line("org:free")}, ReasonMissingPlan},
		{"plan, missing claim", noOrg, reqSpec{plans: line("free")}, ReasonMissingPlan},
		{"plan is not a feature", billing, reqSpec{plans: line("dashboard")}, ReasonMissingPlan},

		{"claim string", metadata, reqSpec{claims: claimReq("metadata.tier", "gold")}, ""},
		{"claim string mismatch", metadata, reqSpec{claims: claimReq("metadata.tier", "silver")}, ReasonClaimMismatch},
		{"claim any-of", metadata, reqSpec{claims: claimReq("metadata.tier", "silver", "gold")}, ""},
		{"claim number", metadata, reqSpec{claims: claimReq("metadata.seats", "3")}, ""},
		{"claim number compares as written", metadata, reqSpec{claims: claimReq("metadata.seats", "3.0")}, ReasonClaimMismatch},
		{"claim bool true", metadata, reqSpec{claims: claimReq("metadata.verified", "true")}, ""},
		{"claim bool false", metadata, reqSpec{claims: claimReq("metadata.off", "false")}, ""},
		{"claim bool mismatch", metadata, reqSpec{claims: claimReq("metadata.verified", "false")}, ReasonClaimMismatch},
		{"claim array contains", metadata, reqSpec{claims: claimReq("metadata.tags", "b")}, ""},
		{"claim array number element", metadata, reqSpec{claims: claimReq("metadata.tags", "7")}, ""},
		{"claim array lacks", metadata, reqSpec{claims: claimReq("metadata.tags", "c")}, ReasonClaimMismatch},
		{"claim array is not its joined form", metadata, reqSpec{claims: claimReq("metadata.tags", "a,b,7")}, ReasonClaimMismatch},
		{"claim empty array", metadata, reqSpec{claims: claimReq("metadata.empty", "a")}, ReasonClaimMismatch},
		{"claim null", metadata, reqSpec{claims: claimReq("metadata.none", "null")}, ReasonClaimMismatch},
		{"claim missing", metadata, reqSpec{claims: claimReq("metadata.absent", "gold")}, ReasonClaimMismatch},
		{"claim path through a scalar", metadata, reqSpec{claims: claimReq("metadata.tier.x", "gold")}, ReasonClaimMismatch},
		{"claim nested", metadata, reqSpec{claims: claimReq("metadata.nested.k", "v")}, ""},
		{"top-level claim", metadata, reqSpec{claims: claimReq("sub", clerktest.DefaultSubject)}, ""},

		{"roles any-of", metadata, reqSpec{roles: line("viewer", "ops")}, ""},
		{"roles missing", metadata, reqSpec{roles: line("viewer")}, ReasonMissingRole},
		{"roles AND across lines", metadata, reqSpec{roles: [][]string{{"admin"}, {"ops"}}}, ""},
		{"roles one line fails", metadata, reqSpec{roles: [][]string{{"admin"}, {"viewer"}}}, ReasonMissingRole},
		{"roles without roles claim", noOrg, reqSpec{roles: line("admin")}, ReasonMissingRole},

		{"claim lines AND", metadata, reqSpec{claims: append(claimReq("metadata.tier", "gold"), claimReq("metadata.seats", "4")...)}, ReasonClaimMismatch},
		{"every kind holds", append(append([]clerktest.Option{}, v2Admin...), clerktest.WithClaims(map[string]any{"roles": "admin", "pla": "o:pro", "tier": "gold"})),
			reqSpec{
				roles: line("admin"), orgRoles: line("admin"), orgPermissions: line("teams:manage"),
				features: line("org:teams"), plans: line("pro"), claims: claimReq("tier", "gold"),
			}, ""},
		{"first failing line is reported", noOrg,
			reqSpec{roles: line("admin"), features: line("dashboard"), claims: claimReq("sub", "nobody")}, ReasonMissingRole},
		{"a passing line does not excuse a failing one", billing,
			reqSpec{features: line("dashboard"), plans: line("enterprise")}, ReasonMissingPlan},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := tc.spec.build()
			if err != nil {
				t.Fatalf("newRequirements: %v", err)
			}
			id := identityOf(t, iss, v, tc.token...)
			if got := req.check(id).reason; got != tc.want {
				t.Errorf("check = %q, want %q (identity org %q role %q perms %q features %+v plans %+v roles %q)",
					got, tc.want, id.OrgID, id.OrgRole, id.OrgPermissions, id.Features, id.Plans, id.Roles())
			}
		})
	}
}

func claimReq(path string, values ...string) []claimRequirement {
	return []claimRequirement{{path: path, values: values}}
}

// check does not rely on newIdentity having dropped the org claims of an
// identity without an org: like has(), it fails org roles and permissions
// whenever no org is active, however the Identity was built.
func TestRequirementsNeedAnActiveOrg(t *testing.T) {
	id := &Identity{OrgRole: "org:admin", OrgPermissions: []string{"org:teams:manage"}}
	for _, tc := range []struct {
		name string
		spec reqSpec
		want string
	}{
		{"org_role", reqSpec{orgRoles: line("admin")}, ReasonMissingOrgRole},
		{"org_permission", reqSpec{orgPermissions: line("teams:manage")}, ReasonMissingPermission},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := tc.spec.build()
			if err != nil {
				t.Fatal(err)
			}
			if got := req.check(id).reason; got != tc.want {
				t.Errorf("check = %q, want %q", got, tc.want)
			}
		})
	}
}
