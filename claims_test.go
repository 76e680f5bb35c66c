package clerkauth

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// identityOf mints a token with opts and verifies it through v, so the
// identity is decoded exactly as in production.
func identityOf(t *testing.T, iss *clerktest.Issuer, v *verifier, opts ...clerktest.Option) *Identity {
	t.Helper()
	id, err := v.verify(context.Background(), iss.Mint(opts...))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return id
}

func v2Org(per, fpm string) clerktest.Option {
	return clerktest.V2(clerktest.OrgV2{ID: "org_1", Slug: "acme", Role: "admin", Per: per, Fpm: fpm})
}

func fea(list string) clerktest.Option {
	return clerktest.WithClaims(map[string]any{"fea": list})
}

func TestClaimsOrgPermissionsV2(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)

	// 70 permission names and a mask with bits 0 and 69 set: above 2^64,
	// where a uint64 (or Clerk's Go SDK's Atoi) would overflow.
	var names []string
	for k := range 70 {
		names = append(names, fmt.Sprintf("p%d", k))
	}
	mask70 := new(big.Int).SetBit(big.NewInt(1), 69, 1).String()
	// Bits 0, 2 and 100 over three names: bit 100 has no name.
	mask101 := new(big.Int).SetBit(big.NewInt(5), 100, 1).String()

	cases := []struct {
		name    string
		opts    []clerktest.Option
		want    []string
		problem string // substring of PermissionsProblem; "" = none
	}{
		{
			name: "reference example",
			opts: []clerktest.Option{v2Org("manage,read", "3,2"), fea("o:dashboard,o:teams")},
			want: []string{"org:dashboard:manage", "org:dashboard:read", "org:teams:read"},
		},
		{
			name: "bit k is per[k], LSB first (21 = 0b10101)",
			opts: []clerktest.Option{v2Org("read,create,update,delete,revoke", "21"), fea("o:invoices")},
			want: []string{"org:invoices:read", "org:invoices:update", "org:invoices:revoke"},
		},
		{
			name: "full alignment with a zero mask for a user feature",
			opts: []clerktest.Option{v2Org("read,manage", "3,0"), fea("ou:memberships,u:impersonation")},
			want: []string{"org:memberships:read", "org:memberships:manage"},
		},
		{
			name: "full alignment skips the mask of a user-only feature",
			opts: []clerktest.Option{v2Org("read,manage", "3,2"), fea("u:impersonation,o:dashboard")},
			want: []string{"org:dashboard:manage"},
		},
		{
			name: "org-subset alignment when a user feature comes first",
			opts: []clerktest.Option{v2Org("read,manage", "2"), fea("u:impersonation,o:dashboard")},
			want: []string{"org:dashboard:manage"},
		},
		{
			name: "org-subset alignment counts ou and uo as org",
			opts: []clerktest.Option{v2Org("read,manage", "1,2,3"), fea("u:a,o:b,ou:c,u:d,uo:e")},
			want: []string{"org:b:read", "org:c:manage", "org:e:read", "org:e:manage"},
		},
		{
			name: "full alignment keeps positions of malformed entries",
			opts: []clerktest.Option{v2Org("read", "1,1,1"), fea("nocolon,x:dash,o:teams")},
			want: []string{"org:teams:read"},
		},
		{
			name: "spaces around elements are trimmed",
			opts: []clerktest.Option{v2Org(" read , manage ", " 2 , 1 "), fea(" o:a , o:b ")},
			want: []string{"org:a:manage", "org:b:read"},
		},
		{
			name: "mask above 2^64",
			opts: []clerktest.Option{v2Org(strings.Join(names, ","), mask70), fea("o:big")},
			want: []string{"org:big:p0", "org:big:p69"},
		},
		{
			name: "bits beyond per are ignored",
			opts: []clerktest.Option{v2Org("a,b,c", mask101), fea("o:f")},
			want: []string{"org:f:a", "org:f:c"},
		},
		{
			name: "empty permission name grants nothing",
			opts: []clerktest.Option{v2Org("a,,c", "7"), fea("o:f")},
			want: []string{"org:f:a", "org:f:c"},
		},
		{
			name: "no per",
			opts: []clerktest.Option{v2Org("", "3"), fea("o:f")},
		},
		{
			name: "no fpm",
			opts: []clerktest.Option{v2Org("read", ""), fea("o:f")},
		},
		{
			name:    "fpm matches neither alignment",
			opts:    []clerktest.Option{v2Org("read", "1,1"), fea("u:a,o:b,o:c,o:d")},
			problem: "o.fpm has 2 masks but fea has 4 features, 3 of them org-scoped",
		},
		{
			name:    "fpm without fea",
			opts:    []clerktest.Option{v2Org("read", "1")},
			problem: "o.fpm has 1 masks but fea has 0 features",
		},
		{
			name:    "non-decimal mask",
			opts:    []clerktest.Option{v2Org("read", "1,x1"), fea("o:a,o:b")},
			problem: `mask 2 ("x1") is not a decimal number`,
		},
		{
			name:    "signed mask",
			opts:    []clerktest.Option{v2Org("read", "+1"), fea("o:a")},
			problem: "not a decimal number",
		},
		{
			name:    "hex mask",
			opts:    []clerktest.Option{v2Org("read", "0x1"), fea("o:a")},
			problem: "not a decimal number",
		},
		{
			name:    "empty mask",
			opts:    []clerktest.Option{v2Org("read", "1,"), fea("o:a,o:b")},
			problem: "not a decimal number",
		},
		{
			name:    "bad mask of a user-only feature still fails closed",
			opts:    []clerktest.Option{v2Org("read", "1,-1"), fea("o:a,u:b")},
			problem: "not a decimal number",
		},
		{
			name: "no problem recorded without an active org",
			opts: []clerktest.Option{fea("o:a"), clerktest.WithClaims(map[string]any{"v": 2, "o": map[string]any{"id": "", "per": "read", "fpm": "1,1"}})},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := identityOf(t, iss, v, tc.opts...)
			if !slices.Equal(id.OrgPermissions, tc.want) {
				t.Errorf("OrgPermissions %q, want %q", id.OrgPermissions, tc.want)
			}
			got := id.PermissionsProblem()
			switch {
			case tc.problem == "" && got != "":
				t.Errorf("unexpected problem %q", got)
			case tc.problem != "" && !strings.Contains(got, tc.problem):
				t.Errorf("problem %q, want it to contain %q", got, tc.problem)
			}
		})
	}
}

func TestClaimsIdentityOrg(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)

	type org struct {
		id, slug, role string
		perms          []string
	}
	cases := []struct {
		name string
		opts []clerktest.Option
		want org
	}{
		{
			name: "v1",
			opts: []clerktest.Option{clerktest.V1Org("org_1", "acme", "org:admin", "org:teams:read", "org:teams:manage")},
			want: org{"org_1", "acme", "org:admin", []string{"org:teams:read", "org:teams:manage"}},
		},
		{
			name: "v1 role without prefix",
			opts: []clerktest.Option{clerktest.V1Org("org_1", "acme", "admin")},
			want: org{"org_1", "acme", "org:admin", []string{}},
		},
		{
			name: "v2",
			opts: []clerktest.Option{v2Org("read", "1"), fea("o:teams")},
			want: org{"org_1", "acme", "org:admin", []string{"org:teams:read"}},
		},
		{
			name: "v2 role already prefixed collapses",
			opts: []clerktest.Option{clerktest.V2(clerktest.OrgV2{ID: "org_1", Role: "org:org:admin"})},
			want: org{id: "org_1", role: "org:admin"},
		},
		{
			name: "v2 without rol",
			opts: []clerktest.Option{clerktest.WithClaims(map[string]any{"v": 2, "o": map[string]any{"id": "org_1", "slg": "acme"}})},
			want: org{id: "org_1", slug: "acme"},
		},
		{
			name: "v2 without o has no org",
			opts: []clerktest.Option{clerktest.V2(clerktest.OrgV2{})},
		},
		{
			name: "v2 ignores v1 org claims",
			opts: []clerktest.Option{clerktest.V2(clerktest.OrgV2{}), clerktest.V1Org("org_1", "acme", "org:admin", "org:a:b")},
		},
		{
			name: "o without v2 is not read",
			opts: []clerktest.Option{clerktest.WithClaims(map[string]any{"o": map[string]any{"id": "org_1", "rol": "admin"}})},
		},
		{
			name: "v 2.0 is v2",
			opts: []clerktest.Option{clerktest.WithClaims(map[string]any{"v": 2.0, "o": map[string]any{"id": "org_1", "rol": "admin"}})},
			want: org{id: "org_1", role: "org:admin"},
		},
		{
			name: "o with an empty id drops the rest",
			opts: []clerktest.Option{fea("o:a"),
				clerktest.WithClaims(map[string]any{"v": 2, "o": map[string]any{"id": "", "slg": "acme", "rol": "admin", "per": "read", "fpm": "1"}})},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := identityOf(t, iss, v, tc.opts...)
			got := org{id.OrgID, id.OrgSlug, id.OrgRole, id.OrgPermissions}
			if got.id != tc.want.id || got.slug != tc.want.slug || got.role != tc.want.role || !slices.Equal(got.perms, tc.want.perms) {
				t.Errorf("org %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestClaimsFeaturesAndPlans(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)

	cases := []struct {
		name          string
		claims        map[string]any
		features      Scoped
		plans         Scoped
		orgPermission []string
	}{
		{
			name:     "every scope",
			claims:   map[string]any{"fea": "o:a,u:b,ou:c,uo:d", "pla": "u:free,o:pro"},
			features: Scoped{Org: []string{"a", "c", "d"}, User: []string{"b", "c", "d"}},
			plans:    Scoped{Org: []string{"pro"}, User: []string{"free"}},
		},
		{
			name:     "malformed and unknown scopes are ignored",
			claims:   map[string]any{"fea": "nocolon,x:a,:b,o:,O:c,ou:d,,o:e"},
			features: Scoped{Org: []string{"d", "e"}, User: []string{"d"}},
		},
		{
			name:     "slug ends at a second colon, as in Clerk",
			claims:   map[string]any{"fea": "o:a:b"},
			features: Scoped{Org: []string{"a"}},
		},
		{
			name:   "empty claims",
			claims: map[string]any{"fea": "", "pla": ""},
		},
		{
			name:   "wrong types read as absent",
			claims: map[string]any{"fea": []string{"o:a"}, "pla": 5},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := identityOf(t, iss, v, clerktest.WithClaims(tc.claims))
			if !scopedEqual(id.Features, tc.features) {
				t.Errorf("Features %+v, want %+v", id.Features, tc.features)
			}
			if !scopedEqual(id.Plans, tc.plans) {
				t.Errorf("Plans %+v, want %+v", id.Plans, tc.plans)
			}
		})
	}

	t.Run("read without v2, as Clerk's has() does", func(t *testing.T) {
		id := identityOf(t, iss, v, clerktest.Template(), fea("u:beta"))
		if !slices.Equal(id.Features.User, []string{"beta"}) {
			t.Errorf("Features %+v", id.Features)
		}
	})
}

func scopedEqual(a, b Scoped) bool {
	return slices.Equal(a.Org, b.Org) && slices.Equal(a.User, b.User)
}

func TestClaimsSessionStatusAndActor(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)
	v.allowPending = true // decode pending sessions rather than reject them

	cases := []struct {
		name          string
		claims        map[string]any
		status, actor string
	}{
		{name: "absent"},
		{name: "pending", claims: map[string]any{"sts": "pending"}, status: "pending"},
		{name: "active", claims: map[string]any{"sts": "active"}, status: "active"},
		{
			name:   "impersonated",
			claims: map[string]any{"act": map[string]any{"iss": "https://dashboard.clerk.com", "sid": "sess_x", "sub": "user_admin"}},
			actor:  "user_admin",
		},
		{name: "sts wrong type", claims: map[string]any{"sts": true}},
		{name: "act wrong type", claims: map[string]any{"act": "user_admin"}},
		{name: "act.sub wrong type", claims: map[string]any{"act": map[string]any{"sub": 7}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := identityOf(t, iss, v, clerktest.WithClaims(tc.claims))
			if id.SessionStatus != tc.status || id.Actor != tc.actor {
				t.Errorf("SessionStatus %q Actor %q, want %q %q", id.SessionStatus, id.Actor, tc.status, tc.actor)
			}
		})
	}
}

// Wrong types in Clerk-specific claims never fail the token: they read as
// absent, so requirements on them fail closed.
func TestClaimsWrongTypesReadAsAbsent(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)

	cases := []struct {
		name   string
		claims map[string]any
	}{
		{"o is a string", map[string]any{"v": 2, "o": "org_1"}},
		{"o is an array", map[string]any{"v": 2, "o": []any{"org_1"}}},
		{"o.id is a number", map[string]any{"v": 2, "o": map[string]any{"id": 5, "rol": "admin"}}},
		{"o is null", map[string]any{"v": 2, "o": json.RawMessage("null")}},
		{"v is a string", map[string]any{"v": "2", "o": map[string]any{"id": "org_1"}}},
		{"v1 org_id is a number", map[string]any{"org_id": 1, "org_role": "org:admin"}},
		{"v1 org_id is an object", map[string]any{"org_id": map[string]any{"id": "org_1"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := identityOf(t, iss, v, clerktest.WithClaims(tc.claims))
			if id.OrgID != "" || id.OrgRole != "" || id.OrgPermissions != nil || id.PermissionsProblem() != "" {
				t.Errorf("org %q role %q perms %q problem %q from a malformed claim", id.OrgID, id.OrgRole, id.OrgPermissions, id.PermissionsProblem())
			}
		})
	}

	t.Run("per and fpm of wrong types", func(t *testing.T) {
		id := identityOf(t, iss, v, fea("o:a"), clerktest.WithClaims(map[string]any{
			"v": 2, "o": map[string]any{"id": "org_1", "rol": "admin", "per": []string{"read"}, "fpm": 1},
		}))
		if id.OrgID != "org_1" || id.OrgRole != "org:admin" {
			t.Errorf("org %q role %q: the rest of o must survive", id.OrgID, id.OrgRole)
		}
		if id.OrgPermissions != nil || id.PermissionsProblem() != "" {
			t.Errorf("perms %q problem %q", id.OrgPermissions, id.PermissionsProblem())
		}
	})
}

func TestOrgPrefixed(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"admin", "org:admin"},
		{"org:admin", "org:admin"},
		{"org:org:admin", "org:admin"},
		{"org:", "org:"},
		{"org:org:", "org:"},
		{"Org:admin", "org:Org:admin"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := orgPrefixed(tc.in); got != tc.want {
				t.Errorf("orgPrefixed(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	// Clerk's v1 org_role already carries the prefix: no new string then.
	if allocs := testing.AllocsPerRun(10, func() { orgRoleSink = orgPrefixed("org:admin") }); allocs != 0 {
		t.Errorf("orgPrefixed of a prefixed role allocated %v times", allocs)
	}
}

// orgRoleSink keeps TestOrgPrefixed's result on the heap, as an Identity's
// role is: a string that does not escape would be built on the stack.
var orgRoleSink string
