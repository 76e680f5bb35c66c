package clerkauth

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
)

func caddyDuration(d time.Duration) *caddy.Duration {
	cd := caddy.Duration(d)
	return &cd
}

func TestCaddyfileUnmarshal(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  Handler
	}{
		{
			name:  "bare directive",
			input: `clerk_auth`,
			want:  Handler{},
		},
		{
			name: "Clerk-native subdirectives",
			input: `clerk_auth {
				publishable_key {env.CLERK_PUBLISHABLE_KEY}
				jwt_key "{file./etc/clerk.pem}"
				secret_key {env.CLERK_SECRET_KEY}
				api_url https://api.clerk.com
				accept session
				accept template
				allow_pending
				sign_in_url https://accounts.example.com/sign-in
			}`,
			want: Handler{
				PublishableKey: "{env.CLERK_PUBLISHABLE_KEY}",
				JWTKey:         "{file./etc/clerk.pem}",
				SecretKey:      "{env.CLERK_SECRET_KEY}",
				APIURL:         "https://api.clerk.com",
				Accept:         []string{"session", "template"},
				AllowPending:   true,
				SignInURL:      "https://accounts.example.com/sign-in",
			},
		},
		{
			name: "key set tuning",
			input: `clerk_auth {
				jwks_refresh 10m
				jwks_min_interval 1m
				jwks_timeout 2s
				jwks_max_stale 12h
			}`,
			want: Handler{
				JWKSRefresh:     caddy.Duration(10 * time.Minute),
				JWKSMinInterval: caddy.Duration(time.Minute),
				JWKSTimeout:     caddy.Duration(2 * time.Second),
				JWKSMaxStale:    caddy.Duration(12 * time.Hour),
			},
		},
		{
			name: "requirement lines",
			input: `clerk_auth {
				org_role admin owner
				org_role org:billing
				org_permission org:teams:manage
				feature o:dashboard u:beta
				plan pro
				claim metadata.tier gold platinum
				claim email_verified true
			}`,
			want: Handler{
				OrgRoles:       [][]string{{"admin", "owner"}, {"org:billing"}},
				OrgPermissions: [][]string{{"org:teams:manage"}},
				Features:       [][]string{{"o:dashboard", "u:beta"}},
				Plans:          [][]string{{"pro"}},
				Claims: []ClaimRequirement{
					{Path: "metadata.tier", Values: []string{"gold", "platinum"}},
					{Path: "email_verified", Values: []string{"true"}},
				},
			},
		},
		{
			name:  "empty block",
			input: "clerk_auth {\n}",
			want:  Handler{},
		},
		{
			name: "issuer",
			input: `clerk_auth {
				issuer https://clerk.example.com
			}`,
			want: Handler{Issuers: []string{"https://clerk.example.com"}},
		},
		{
			name: "issuer values on one line and repeated lines add up",
			input: `clerk_auth {
				issuer https://a.example.com https://b.example.com
				issuer https://c.example.com
			}`,
			want: Handler{Issuers: []string{"https://a.example.com", "https://b.example.com", "https://c.example.com"}},
		},
		{
			name: "issuer placeholder kept verbatim for provision time",
			input: `clerk_auth {
				issuer {env.CLERK_ISSUER}
			}`,
			want: Handler{Issuers: []string{"{env.CLERK_ISSUER}"}},
		},
		{
			name: "jwks_url",
			input: `clerk_auth {
				issuer https://clerk.example.com
				jwks_url https://keys.example.com/jwks.json
			}`,
			want: Handler{
				Issuers: []string{"https://clerk.example.com"},
				JWKSURL: "https://keys.example.com/jwks.json",
			},
		},
		{
			name: "audience values add up",
			input: `clerk_auth {
				audience api-one api-two
				audience api-three
			}`,
			want: Handler{Audiences: []string{"api-one", "api-two", "api-three"}},
		},
		{
			name: "authorized_parties values add up",
			input: `clerk_auth {
				authorized_parties https://app.example.com https://admin.example.com
				authorized_parties http://localhost:3000
			}`,
			want: Handler{AuthorizedParties: []string{"https://app.example.com", "https://admin.example.com", "http://localhost:3000"}},
		},
		{
			name: "leeway seconds",
			input: `clerk_auth {
				leeway 10s
			}`,
			want: Handler{Leeway: caddyDuration(10 * time.Second)},
		},
		{
			name: "leeway minutes",
			input: `clerk_auth {
				leeway 1m
			}`,
			want: Handler{Leeway: caddyDuration(time.Minute)},
		},
		{
			name: "leeway compound",
			input: `clerk_auth {
				leeway 1m30s
			}`,
			want: Handler{Leeway: caddyDuration(90 * time.Second)},
		},
		{
			// An explicit zero must be distinguishable from "unset" (5s default).
			name: "leeway zero is set, not nil",
			input: `clerk_auth {
				leeway 0
			}`,
			want: Handler{Leeway: caddyDuration(0)},
		},
		{
			// Range checks belong to Provision, so the Caddyfile and JSON
			// paths report them identically.
			name: "leeway out of range still parses",
			input: `clerk_auth {
				leeway 1d
			}`,
			want: Handler{Leeway: caddyDuration(24 * time.Hour)},
		},
		{
			name: "roles lines stay separate",
			input: `clerk_auth {
				roles admin editor
				roles viewer
			}`,
			want: Handler{Roles: [][]string{{"admin", "editor"}, {"viewer"}}},
		},
		{
			name: "roles_claim",
			input: `clerk_auth {
				roles_claim public_metadata.roles
			}`,
			want: Handler{RolesClaim: "public_metadata.roles"},
		},
		{
			name: "optional",
			input: `clerk_auth {
				optional
			}`,
			want: Handler{Optional: true},
		},
		{
			name: "preflight authenticate",
			input: `clerk_auth {
				preflight authenticate
			}`,
			want: Handler{Preflight: "authenticate"},
		},
		{
			name: "preflight pass",
			input: `clerk_auth {
				preflight pass
			}`,
			want: Handler{Preflight: "pass"},
		},
		{
			name: "cross_site_cookies allow",
			input: `clerk_auth {
				cross_site_cookies allow
			}`,
			want: Handler{CrossSiteCookies: "allow"},
		},
		{
			name: "forward_header repeated keeps order",
			input: `clerk_auth {
				forward_header X-User-Id {http.auth.user.id}
				forward_header X-Org-Id {http.auth.user.org_id}
				forward_header X-Who "user {http.auth.user.id} of {http.auth.user.org_slug}"
			}`,
			want: Handler{ForwardHeaders: []ForwardHeader{
				{Field: "X-User-Id", Value: "{http.auth.user.id}"},
				{Field: "X-Org-Id", Value: "{http.auth.user.org_id}"},
				{Field: "X-Who", Value: "user {http.auth.user.id} of {http.auth.user.org_slug}"},
			}},
		},
		{
			name: "machine tokens",
			input: `clerk_auth {
				secret_key {env.CLERK_SECRET_KEY}
				accept session api_key
				accept m2m_token oauth_token
				machine_cache_ttl 5m
				backend_api_rate 2.5 10
				scope read:orders write:orders
				scope admin
			}`,
			want: Handler{
				SecretKey:       "{env.CLERK_SECRET_KEY}",
				Accept:          []string{"session", "api_key", "m2m_token", "oauth_token"},
				MachineCacheTTL: caddy.Duration(5 * time.Minute),
				BackendAPIRate:  2.5,
				BackendAPIBurst: 10,
				Scopes:          [][]string{{"read:orders", "write:orders"}, {"admin"}},
			},
		},
		{
			// The burst keeps its default (0 here, 40 at provision time).
			name: "backend_api_rate without a burst",
			input: `clerk_auth {
				backend_api_rate 20
			}`,
			want: Handler{BackendAPIRate: 20},
		},
		{
			// Range checks belong to Provision, as for leeway.
			name: "machine_cache_ttl and backend_api_rate out of range still parse",
			input: `clerk_auth {
				machine_cache_ttl 2h
				backend_api_rate 5000 20000
			}`,
			want: Handler{MachineCacheTTL: caddy.Duration(2 * time.Hour), BackendAPIRate: 5000, BackendAPIBurst: 20000},
		},
		{
			name: "everything",
			input: `clerk_auth {
				issuer https://clerk.example.com
				jwks_url https://clerk.example.com/.well-known/jwks.json
				audience your-api
				authorized_parties https://app.example.com
				leeway 10s
				roles admin
				roles_claim metadata.roles
				optional
				forward_header X-User-Id {http.auth.user.id}
			}`,
			want: Handler{
				Issuers:           []string{"https://clerk.example.com"},
				JWKSURL:           "https://clerk.example.com/.well-known/jwks.json",
				Audiences:         []string{"your-api"},
				AuthorizedParties: []string{"https://app.example.com"},
				Leeway:            caddyDuration(10 * time.Second),
				Roles:             [][]string{{"admin"}},
				RolesClaim:        "metadata.roles",
				Optional:          true,
				ForwardHeaders:    []ForwardHeader{{Field: "X-User-Id", Value: "{http.auth.user.id}"}},
			},
		},
		{
			name: "identity assertion and enrichment",
			input: `clerk_auth {
				secret_key {env.CLERK_SECRET_KEY}
				enrich user
				enrich org
				enrich_required
				identity_assertion X-Clerk-Identity {
					audience https://billing.internal
					issuer https://gateway.example.com
					ttl 2m
				}
				forward_header X-Email {http.auth.user.email}
			}`,
			want: Handler{
				SecretKey:      "{env.CLERK_SECRET_KEY}",
				Enrich:         []string{"user", "org"},
				EnrichRequired: true,
				IdentityAssertion: &IdentityAssertion{Header: "X-Clerk-Identity", Audience: "https://billing.internal",
					Issuer: "https://gateway.example.com", TTL: caddy.Duration(2 * time.Minute)},
				ForwardHeaders: []ForwardHeader{{Field: "X-Email", Value: "{http.auth.user.email}"}},
			},
		},
		{
			name:  "identity assertion without a block",
			input: "clerk_auth {\n\tenrich user org\n\tidentity_assertion X-Clerk-Identity\n}",
			want:  Handler{Enrich: []string{"user", "org"}, IdentityAssertion: &IdentityAssertion{Header: "X-Clerk-Identity"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Handler
			if err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("UnmarshalCaddyfile:\n got: %s\nwant: %s", jsonString(t, got), jsonString(t, tc.want))
			}
		})
	}
}

func TestCaddyfileUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		// every string must appear in the error message
		want []string
	}{
		{
			name:  "zero jwks_timeout",
			input: "clerk_auth {\n\tjwks_timeout 0s\n}",
			want:  []string{`jwks_timeout "0s": use a positive duration`},
		},
		{
			name:  "jwks_refresh twice",
			input: "clerk_auth {\n\tjwks_refresh 1h\n\tjwks_refresh 2h\n}",
			want:  []string{"jwks_refresh is given twice"},
		},
		{
			name:  "claim without a value",
			input: "clerk_auth {\n\tclaim metadata.tier\n}",
			want:  []string{"claim needs a claim path and at least one value"},
		},
		{
			name:  "preflight with an unknown word",
			input: "clerk_auth {\n\tpreflight skip\n}",
			want:  []string{`preflight "skip": use pass or authenticate`, "Testfile:2"},
		},
		{
			name:  "preflight without a value",
			input: "clerk_auth {\n\tpreflight\n}",
			want:  []string{"wrong argument count"},
		},
		{
			name:  "preflight twice",
			input: "clerk_auth {\n\tpreflight pass\n\tpreflight authenticate\n}",
			want:  []string{"preflight is given twice"},
		},
		{
			name:  "cross_site_cookies with an unknown word",
			input: "clerk_auth {\n\tcross_site_cookies yes\n}",
			want:  []string{`cross_site_cookies "yes": use refuse or allow`, "Testfile:2"},
		},
		{
			name:  "cross_site_cookies with two values",
			input: "clerk_auth {\n\tcross_site_cookies refuse allow\n}",
			want:  []string{"wrong argument count"},
		},
		{
			name:  "allow_pending with a value",
			input: "clerk_auth {\n\tallow_pending yes\n}",
			want:  []string{"allow_pending takes no value"},
		},
		{
			name:  "publishable_key twice",
			input: "clerk_auth {\n\tpublishable_key pk_test_a\n\tpublishable_key pk_test_b\n}",
			want:  []string{"publishable_key is given twice"},
		},
		{
			name:  "org_role without a value",
			input: "clerk_auth {\n\torg_role\n}",
			want:  []string{"org_role needs at least one value"},
		},
		{
			name: "unknown subdirective is named with its line",
			input: `clerk_auth {
				issuer https://clerk.example.com
				issuers https://clerk.example.com
			}`,
			want: []string{`unrecognized clerk_auth subdirective "issuers"`, "Testfile:3"},
		},
		{
			name:  "argument on the directive line",
			input: `clerk_auth extra`,
			want:  []string{"wrong argument count", "'extra'"},
		},
		{
			name: "argument on the directive line before a block",
			input: `clerk_auth https://clerk.example.com {
				issuer https://clerk.example.com
			}`,
			want: []string{"wrong argument count", "'https://clerk.example.com'", "Testfile:1"},
		},
		{
			name:  "issuer without value",
			input: "clerk_auth {\n\tissuer\n}",
			want:  []string{"issuer needs at least one value", "Testfile:2"},
		},
		{
			name:  "audience without value",
			input: "clerk_auth {\n\taudience\n}",
			want:  []string{"audience needs at least one value"},
		},
		{
			name:  "authorized_parties without value",
			input: "clerk_auth {\n\tauthorized_parties\n}",
			want:  []string{"authorized_parties needs at least one value"},
		},
		{
			name:  "roles without value",
			input: "clerk_auth {\n\troles\n}",
			want:  []string{"roles needs at least one value"},
		},
		{
			name:  "jwks_url without value",
			input: "clerk_auth {\n\tjwks_url\n}",
			want:  []string{"wrong argument count", "'jwks_url'", "Testfile:2"},
		},
		{
			name:  "leeway without value",
			input: "clerk_auth {\n\tleeway\n}",
			want:  []string{"wrong argument count", "'leeway'"},
		},
		{
			name:  "roles_claim without value",
			input: "clerk_auth {\n\troles_claim\n}",
			want:  []string{"wrong argument count", "'roles_claim'"},
		},
		{
			name:  "forward_header without value",
			input: "clerk_auth {\n\tforward_header\n}",
			want:  []string{"forward_header needs a field name and a value"},
		},
		{
			name:  "forward_header with only a field",
			input: "clerk_auth {\n\tforward_header X-User-Id\n}",
			want:  []string{"forward_header needs a field name and a value", "Testfile:2"},
		},
		{
			name:  "forward_header with three args",
			input: "clerk_auth {\n\tforward_header X-User-Id {http.auth.user.id} extra\n}",
			want:  []string{"forward_header needs a field name and a value"},
		},
		{
			name:  "jwks_url with two values",
			input: "clerk_auth {\n\tjwks_url https://a.example.com/jwks.json https://b.example.com/jwks.json\n}",
			want:  []string{"wrong argument count", "Testfile:2"},
		},
		{
			name:  "leeway with two values",
			input: "clerk_auth {\n\tleeway 5s 10s\n}",
			want:  []string{"wrong argument count"},
		},
		{
			name:  "roles_claim with two values",
			input: "clerk_auth {\n\troles_claim metadata.roles roles\n}",
			want:  []string{"wrong argument count"},
		},
		{
			name:  "optional with a value",
			input: "clerk_auth {\n\toptional true\n}",
			want:  []string{"optional takes no value", `"true"`},
		},
		{
			name:  "machine_cache_ttl zero",
			input: "clerk_auth {\n\tmachine_cache_ttl 0s\n}",
			want:  []string{`machine_cache_ttl "0s": use a positive duration`, "Testfile:2"},
		},
		{
			name:  "machine_cache_ttl not a duration",
			input: "clerk_auth {\n\tmachine_cache_ttl 30\n}",
			want:  []string{`machine_cache_ttl "30": use a positive duration such as 30s or 15m`},
		},
		{
			name:  "machine_cache_ttl twice",
			input: "clerk_auth {\n\tmachine_cache_ttl 1m\n\tmachine_cache_ttl 2m\n}",
			want:  []string{"machine_cache_ttl is given twice", "Testfile:3"},
		},
		{
			name:  "machine_cache_ttl without value",
			input: "clerk_auth {\n\tmachine_cache_ttl\n}",
			want:  []string{"wrong argument count", "'machine_cache_ttl'"},
		},
		{
			name:  "backend_api_rate without value",
			input: "clerk_auth {\n\tbackend_api_rate\n}",
			want:  []string{"backend_api_rate needs calls per second and optionally a burst, e.g. backend_api_rate 20 40", "Testfile:2"},
		},
		{
			name:  "backend_api_rate with three values",
			input: "clerk_auth {\n\tbackend_api_rate 1 2 3\n}",
			want:  []string{"backend_api_rate needs calls per second and optionally a burst"},
		},
		{
			name:  "backend_api_rate zero",
			input: "clerk_auth {\n\tbackend_api_rate 0 10\n}",
			want:  []string{`backend_api_rate "0": use a positive number of calls per second`},
		},
		{
			name:  "backend_api_rate negative",
			input: "clerk_auth {\n\tbackend_api_rate -5\n}",
			want:  []string{`backend_api_rate "-5"`},
		},
		{
			name:  "backend_api_rate NaN",
			input: "clerk_auth {\n\tbackend_api_rate NaN\n}",
			want:  []string{`backend_api_rate "NaN": use a positive number of calls per second`},
		},
		{
			name:  "backend_api_rate infinite",
			input: "clerk_auth {\n\tbackend_api_rate inf 10\n}",
			want:  []string{`backend_api_rate "inf": use a positive number of calls per second`},
		},
		{
			name:  "backend_api_rate with a unit",
			input: "clerk_auth {\n\tbackend_api_rate 20/s\n}",
			want:  []string{`backend_api_rate "20/s": use a positive number of calls per second`},
		},
		{
			name:  "backend_api_rate burst not whole",
			input: "clerk_auth {\n\tbackend_api_rate 20 1.5\n}",
			want:  []string{`backend_api_rate burst "1.5": use a positive whole number of calls`},
		},
		{
			name:  "backend_api_rate burst zero",
			input: "clerk_auth {\n\tbackend_api_rate 20 0\n}",
			want:  []string{`backend_api_rate burst "0"`},
		},
		{
			name:  "backend_api_rate twice",
			input: "clerk_auth {\n\tbackend_api_rate 20\n\tbackend_api_rate 30\n}",
			want:  []string{"backend_api_rate is given twice", "Testfile:3"},
		},
		{
			name:  "scope without value",
			input: "clerk_auth {\n\tscope\n}",
			want:  []string{"scope needs at least one value", "Testfile:2"},
		},
		{
			name:  "accept without value",
			input: "clerk_auth {\n\taccept\n}",
			want:  []string{"accept needs at least one value"},
		},
		{
			name:  "leeway not a duration",
			input: "clerk_auth {\n\tleeway soon\n}",
			want:  []string{"leeway:", `"soon"`, "Testfile:2"},
		},
		{
			name:  "leeway without unit",
			input: "clerk_auth {\n\tleeway 10\n}",
			want:  []string{"leeway:", `"10"`},
		},
		{
			name:  "identity_assertion without a header",
			input: "clerk_auth {\n\tidentity_assertion {\n\t\taudience a\n\t}\n}",
			want:  []string{"identity_assertion needs the header to set", "Testfile:2"},
		},
		{
			name:  "identity_assertion with two headers",
			input: "clerk_auth {\n\tidentity_assertion X-A X-B\n}",
			want:  []string{"identity_assertion needs the header to set"},
		},
		{
			name:  "identity_assertion twice",
			input: "clerk_auth {\n\tidentity_assertion X-A {\n\t\taudience a\n\t}\n\tidentity_assertion X-B\n}",
			want:  []string{"identity_assertion is given twice", "Testfile:5"},
		},
		{
			name:  "identity_assertion unknown subdirective",
			input: "clerk_auth {\n\tidentity_assertion X-A {\n\t\taud a\n\t}\n}",
			want:  []string{`unrecognized identity_assertion subdirective "aud"`, "Testfile:3"},
		},
		{
			name:  "identity_assertion audience twice",
			input: "clerk_auth {\n\tidentity_assertion X-A {\n\t\taudience a\n\t\taudience b\n\t}\n}",
			want:  []string{"audience is given twice", "Testfile:4"},
		},
		{
			name:  "identity_assertion audience without value",
			input: "clerk_auth {\n\tidentity_assertion X-A {\n\t\taudience\n\t}\n}",
			want:  []string{"wrong argument count", "Testfile:3"},
		},
		{
			name:  "identity_assertion ttl not a duration",
			input: "clerk_auth {\n\tidentity_assertion X-A {\n\t\tttl soon\n\t}\n}",
			want:  []string{`ttl "soon": use a positive duration`},
		},
		{
			name:  "identity_assertion ttl zero",
			input: "clerk_auth {\n\tidentity_assertion X-A {\n\t\tttl 0s\n\t}\n}",
			want:  []string{`ttl "0s": use a positive duration`},
		},
		{
			name:  "enrich without value",
			input: "clerk_auth {\n\tenrich\n}",
			want:  []string{"enrich needs at least one value", "Testfile:2"},
		},
		{
			name:  "enrich_required with a value",
			input: "clerk_auth {\n\tenrich_required yes\n}",
			want:  []string{`enrich_required takes no value, got "yes"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil {
				t.Fatalf("UnmarshalCaddyfile: want an error containing %q, got none (handler %s)", tc.want, jsonString(t, h))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("UnmarshalCaddyfile error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestProvisionRejectsBadConfig(t *testing.T) {
	okIssuer := []string{"https://clerk.example.com"}
	tests := []struct {
		name string
		h    Handler
		want []string
	}{
		{
			name: "no issuer",
			h:    Handler{},
			want: []string{"clerk_auth: issuer or publishable_key is required"},
		},
		{
			name: "empty issuer list",
			h:    Handler{Issuers: []string{}},
			want: []string{"issuer or publishable_key is required"},
		},
		{
			name: "issuer without scheme",
			h:    Handler{Issuers: []string{"clerk.example.com"}},
			want: []string{`issuer "clerk.example.com"`, "must be an absolute URL"},
		},
		{
			name: "relative issuer",
			h:    Handler{Issuers: []string{"/clerk"}},
			want: []string{`issuer "/clerk"`, "must be an absolute URL"},
		},
		{
			name: "issuer not a URL",
			h:    Handler{Issuers: []string{"not a url"}},
			want: []string{`issuer "not a url"`, "must be an absolute URL"},
		},
		{
			name: "issuer unparsable",
			h:    Handler{Issuers: []string{"://clerk.example.com"}},
			want: []string{`issuer "://clerk.example.com"`, "missing protocol scheme"},
		},
		{
			name: "issuer with a query",
			h:    Handler{Issuers: []string{"https://clerk.example.com?a=b"}},
			want: []string{"must not contain a ?query"},
		},
		{
			name: "issuer with a fragment",
			h:    Handler{Issuers: []string{"https://clerk.example.com#x"}},
			want: []string{"#fragment"},
		},
		{
			name: "issuer with user info",
			h:    Handler{Issuers: []string{"https://user:pw@clerk.example.com"}},
			want: []string{"user info"},
		},
		{
			name: "issuer with a port but no host",
			h:    Handler{Issuers: []string{"https://:443"}},
			want: []string{"must be an absolute URL"},
		},
		{
			name: "issuer in uppercase",
			h:    Handler{Issuers: []string{"HTTPS://CLERK.example.com"}},
			want: []string{"must be lowercase", "https://clerk.example.com"},
		},
		{
			name: "issuer scheme without host",
			h:    Handler{Issuers: []string{"https://"}},
			want: []string{"must be an absolute URL"},
		},
		{
			// An unset env placeholder expands to "", which must not slip
			// through as "no issuer restriction".
			name: "issuer placeholder expanding to nothing",
			h:    Handler{Issuers: []string{"{env.CLERK_TEST_SURELY_UNSET_VARIABLE}"}},
			want: []string{`issuer "{env.CLERK_TEST_SURELY_UNSET_VARIABLE}" expands to nothing`},
		},
		{
			name: "http issuer on a public host",
			h:    Handler{Issuers: []string{"http://clerk.example.com"}},
			want: []string{`issuer "http://clerk.example.com"`, "must use https"},
		},
		{
			name: "http issuer on a private address",
			h:    Handler{Issuers: []string{"http://10.0.0.1:8080"}},
			want: []string{"must use https"},
		},
		{
			name: "http issuer on a host that merely starts with localhost",
			h:    Handler{Issuers: []string{"http://localhost.example.com"}},
			want: []string{"must use https"},
		},
		{
			name: "ftp issuer",
			h:    Handler{Issuers: []string{"ftp://clerk.example.com"}},
			want: []string{`issuer "ftp://clerk.example.com"`, `scheme "ftp" is not https`},
		},
		{
			name: "second issuer bad",
			h:    Handler{Issuers: []string{"https://clerk.example.com", "http://clerk.example.org"}},
			want: []string{`issuer "http://clerk.example.org"`, "must use https"},
		},
		{
			name: "jwks_url relative",
			h:    Handler{Issuers: okIssuer, JWKSURL: "/.well-known/jwks.json"},
			want: []string{`jwks_url "/.well-known/jwks.json"`, "must be an absolute URL"},
		},
		{
			name: "jwks_url plain http on a public host",
			h:    Handler{Issuers: okIssuer, JWKSURL: "http://clerk.example.com/.well-known/jwks.json"},
			want: []string{"jwks_url", "must use https"},
		},
		{
			name: "jwks_url unparsable",
			h:    Handler{Issuers: okIssuer, JWKSURL: "https://clerk.example.com/%zz"},
			want: []string{"jwks_url", "invalid URL escape"},
		},
		{
			name: "jwks_url file scheme",
			h:    Handler{Issuers: okIssuer, JWKSURL: "file:///etc/jwks.json"},
			want: []string{"jwks_url", "must be an absolute URL"},
		},
		{
			name: "leeway above 5m",
			h:    Handler{Issuers: okIssuer, Leeway: caddyDuration(5*time.Minute + time.Second)},
			want: []string{"leeway 5m1s is out of range", "0 to 5m0s"},
		},
		{
			name: "leeway of a day",
			h:    Handler{Issuers: okIssuer, Leeway: caddyDuration(24 * time.Hour)},
			want: []string{"leeway 24h0m0s is out of range"},
		},
		{
			name: "negative leeway",
			h:    Handler{Issuers: okIssuer, Leeway: caddyDuration(-time.Second)},
			want: []string{"leeway -1s is out of range"},
		},
		{
			name: "roles_claim with leading dot",
			h:    Handler{Issuers: okIssuer, RolesClaim: ".roles"},
			want: []string{`roles_claim ".roles" is not a dotted claim path`},
		},
		{
			name: "roles_claim with empty segment",
			h:    Handler{Issuers: okIssuer, RolesClaim: "a..b"},
			want: []string{`roles_claim "a..b" is not a dotted claim path`},
		},
		{
			name: "roles_claim with trailing dot",
			h:    Handler{Issuers: okIssuer, RolesClaim: "metadata."},
			want: []string{`roles_claim "metadata."`},
		},
		{
			name: "forward_header field with a space",
			h:    Handler{Issuers: okIssuer, ForwardHeaders: []ForwardHeader{{Field: "X User", Value: "{http.auth.user.id}"}}},
			want: []string{`forward_header "X User" is not a valid header field name`},
		},
		{
			name: "forward_header field with a colon",
			h:    Handler{Issuers: okIssuer, ForwardHeaders: []ForwardHeader{{Field: "X-User-Id:", Value: "{http.auth.user.id}"}}},
			want: []string{`forward_header "X-User-Id:" is not a valid header field name`},
		},
		{
			name: "forward_header empty field",
			h:    Handler{Issuers: okIssuer, ForwardHeaders: []ForwardHeader{{Field: "", Value: "{http.auth.user.id}"}}},
			want: []string{`forward_header "" is not a valid header field name`},
		},
		{
			name: "forward_header replacing the token's header",
			h:    Handler{Issuers: okIssuer, ForwardHeaders: []ForwardHeader{{Field: "authorization", Value: "{http.auth.user.id}"}}},
			want: []string{`forward_header "authorization" would replace the request's own Authorization header`},
		},
		{
			name: "identity_assertion as a cookie look-alike",
			h:    Handler{Issuers: okIssuer, IdentityAssertion: &IdentityAssertion{Header: "COOKIE", Audience: "a"}},
			want: []string{`identity_assertion "COOKIE" would replace the request's own Cookie header`},
		},
		{
			name: "forward_header field with a newline",
			h:    Handler{Issuers: okIssuer, ForwardHeaders: []ForwardHeader{{Field: "X-User\r\nX-Admin", Value: "1"}}},
			want: []string{"is not a valid header field name"},
		},
		{
			name: "preflight with an unknown word",
			h:    Handler{Issuers: okIssuer, Preflight: "Authenticate"},
			want: []string{`preflight "Authenticate": use pass or authenticate`},
		},
		{
			name: "cross_site_cookies with an unknown word",
			h:    Handler{Issuers: okIssuer, CrossSiteCookies: "off"},
			want: []string{`cross_site_cookies "off": use refuse or allow`},
		},
		{
			name: "second forward_header bad",
			h: Handler{Issuers: okIssuer, ForwardHeaders: []ForwardHeader{
				{Field: "X-User-Id", Value: "{http.auth.user.id}"},
				{Field: "X-Org(Id)", Value: "{http.auth.user.org_id}"},
			}},
			want: []string{`forward_header "X-Org(Id)"`},
		},
		{
			name: "identity_assertion without audience",
			h:    Handler{Issuers: okIssuer, IdentityAssertion: &IdentityAssertion{Header: "X-Clerk-Identity"}},
			want: []string{"identity_assertion needs an audience"},
		},
		{
			name: "identity_assertion bad header name",
			h:    Handler{Issuers: okIssuer, IdentityAssertion: &IdentityAssertion{Header: "X-Clerk Identity", Audience: "a"}},
			want: []string{`identity_assertion "X-Clerk Identity" is not a valid header field name`},
		},
		{
			name: "identity_assertion header with a newline",
			h:    Handler{Issuers: okIssuer, IdentityAssertion: &IdentityAssertion{Header: "X-A\r\nX-B", Audience: "a"}},
			want: []string{"is not a valid header field name"},
		},
		{
			name: "identity_assertion ttl below 1s",
			h:    Handler{Issuers: okIssuer, IdentityAssertion: &IdentityAssertion{Header: "X-A", Audience: "a", TTL: caddy.Duration(999 * time.Millisecond)}},
			want: []string{"identity_assertion ttl 999ms: use 1s to 30m0s"},
		},
		{
			name: "identity_assertion ttl above 30m",
			h:    Handler{Issuers: okIssuer, IdentityAssertion: &IdentityAssertion{Header: "X-A", Audience: "a", TTL: caddy.Duration(31 * time.Minute)}},
			want: []string{"identity_assertion ttl 31m0s: use 1s to 30m0s"},
		},
		{
			name: "enrich without secret_key",
			h:    Handler{Issuers: okIssuer, Enrich: []string{"user"}},
			want: []string{"enrich needs secret_key"},
		},
		{
			name: "enrich bogus",
			h:    Handler{Issuers: okIssuer, Enrich: []string{"user", "users"}},
			want: []string{`enrich "users": use user and/or org`},
		},
		{
			name: "enrich_required without enrich",
			h:    Handler{Issuers: okIssuer, EnrichRequired: true},
			want: []string{"enrich_required needs enrich user and/or enrich org"},
		},
		{
			name: "denylist_sync under a second",
			h:    Handler{Issuers: okIssuer, DenylistSync: caddy.Duration(500 * time.Millisecond)},
			want: []string{"clerk_auth: denylist_sync 500ms: use 1s to 5m"},
		},
		{
			name: "denylist_sync over five minutes",
			h:    Handler{Issuers: okIssuer, DenylistSync: caddy.Duration(6 * time.Minute)},
			want: []string{"clerk_auth: denylist_sync 6m0s: use 1s to 5m"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			err := provisionHandler(t, &h)
			if err == nil {
				t.Fatalf("Provision: want an error containing %q, got none", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Provision error %q does not contain %q", err, w)
				}
			}
			if h.keySetKey != "" {
				t.Errorf("Provision failed but still took a key set (%q)", h.keySetKey)
			}
		})
	}
}

func TestProvisionAcceptsValidConfig(t *testing.T) {
	base := closedPortURL(t)
	jwksURL := base + "/.well-known/jwks.json"
	tests := []struct {
		name        string
		h           Handler
		wantIssuers []string
		wantJWKS    string
		wantLeeway  time.Duration
	}{
		{
			name:        "http loopback issuer with port",
			h:           Handler{Issuers: []string{base}},
			wantIssuers: []string{base},
			wantJWKS:    jwksURL,
			wantLeeway:  defaultLeeway,
		},
		{
			name:        "trailing slash is dropped",
			h:           Handler{Issuers: []string{base + "/"}},
			wantIssuers: []string{base},
			wantJWKS:    jwksURL,
			wantLeeway:  defaultLeeway,
		},
		{
			// jwks_url points at the closed port so no test reaches port 80
			// or the network.
			name:        "http localhost issuer",
			h:           Handler{Issuers: []string{"http://localhost"}, JWKSURL: jwksURL},
			wantIssuers: []string{"http://localhost"},
			wantJWKS:    jwksURL,
			wantLeeway:  defaultLeeway,
		},
		{
			name:        "http IPv6 loopback issuer",
			h:           Handler{Issuers: []string{"http://[::1]:3000"}, JWKSURL: jwksURL},
			wantIssuers: []string{"http://[::1]:3000"},
			wantJWKS:    jwksURL,
			wantLeeway:  defaultLeeway,
		},
		{
			name:        "https issuers, one with a trailing slash",
			h:           Handler{Issuers: []string{"https://clerk.example.com/", "https://verb-noun-00.clerk.accounts.dev"}, JWKSURL: jwksURL},
			wantIssuers: []string{"https://clerk.example.com", "https://verb-noun-00.clerk.accounts.dev"},
			wantJWKS:    jwksURL,
			wantLeeway:  defaultLeeway,
		},
		{
			name:        "leeway exactly 5m",
			h:           Handler{Issuers: []string{base}, Leeway: caddyDuration(5 * time.Minute)},
			wantIssuers: []string{base},
			wantJWKS:    jwksURL,
			wantLeeway:  5 * time.Minute,
		},
		{
			name:        "leeway 0",
			h:           Handler{Issuers: []string{base}, Leeway: caddyDuration(0)},
			wantIssuers: []string{base},
			wantJWKS:    jwksURL,
			wantLeeway:  0,
		},
		{
			name: "every option",
			h: Handler{
				Issuers:           []string{base},
				JWKSURL:           jwksURL,
				Audiences:         []string{"your-api"},
				AuthorizedParties: []string{"https://app.example.com"},
				Leeway:            caddyDuration(10 * time.Second),
				Roles:             [][]string{{"admin"}},
				RolesClaim:        "public_metadata.roles",
				Optional:          true,
				ForwardHeaders: []ForwardHeader{
					{Field: "X-User-Id", Value: "{http.auth.user.id}"},
					{Field: "X_Org.Id~1", Value: "{http.auth.user.org_id}"},
				},
			},
			wantIssuers: []string{base},
			wantJWKS:    jwksURL,
			wantLeeway:  10 * time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			if err := provisionHandler(t, &h); err != nil {
				t.Fatalf("Provision: unexpected error: %v", err)
			}
			if h.verifier == nil {
				t.Fatal("Provision succeeded without building a verifier")
			}
			if !reflect.DeepEqual(h.verifier.issuers, tc.wantIssuers) {
				t.Errorf("issuers = %q, want %q", h.verifier.issuers, tc.wantIssuers)
			}
			if ks, _ := h.verifier.keys.(*jwks.Set); ks == nil || ks.URL() != tc.wantJWKS {
				t.Errorf("key set %q, want one for %q", h.keySetKey, tc.wantJWKS)
			}
			if h.verifier.leeway != tc.wantLeeway {
				t.Errorf("leeway = %s, want %s", h.verifier.leeway, tc.wantLeeway)
			}
		})
	}
}

// TestProvisionDoesNotWaitForJWKS points the key set at a server that
// accepts connections and never answers: Provision must return at once, the
// fetch must still start in the background, and Cleanup must cut it short.
func TestProvisionDoesNotWaitForJWKS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		held      []net.Conn
		firstConn = make(chan struct{})
		once      sync.Once
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			once.Do(func() { close(firstConn) })
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})

	h := &Handler{Issuers: []string{"http://" + ln.Addr().String()}}
	ctx := storageContext(t)

	provisioned := make(chan error, 1)
	go func() { provisioned <- h.Provision(ctx) }()
	select {
	case err := <-provisioned:
		if err != nil {
			t.Fatalf("Provision: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Provision blocked on a JWKS server that never answers")
	}

	cleaned := make(chan error, 1)
	defer func() {
		go func() { cleaned <- h.Cleanup() }()
		select {
		case err := <-cleaned:
			if err != nil {
				t.Errorf("Cleanup: %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Error("Cleanup did not stop a JWKS fetch that was waiting on the server")
		}
	}()

	select {
	case <-firstConn:
	case <-time.After(5 * time.Second):
		t.Error("Provision returned but no JWKS fetch reached the server")
	}
}

// TestCaddyfileAdapt adapts each testdata/caddyfile_adapt/*.caddyfiletest:
// a Caddyfile, a line of dashes, then either the exact JSON it must adapt to
// or a text the adapt error must contain.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "caddyfile_adapt", "*.caddyfiletest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/caddyfile_adapt/*.caddyfiletest fixtures")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".caddyfiletest"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, expected, ok := strings.Cut(strings.ReplaceAll(string(data), "\r\n", "\n"), "----------")
			if !ok {
				t.Fatalf("%s: no ---------- separator between Caddyfile and expectation", file)
			}
			input = strings.TrimSpace(input) + "\n"
			expected = strings.TrimSpace(expected)

			if strings.HasPrefix(expected, "{") {
				caddytest.AssertAdapt(t, input, "caddyfile", expected)
				return
			}
			_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
			if err == nil {
				t.Fatalf("adapt: want an error containing %q, got none", expected)
			}
			if !strings.Contains(err.Error(), expected) {
				t.Errorf("adapt error %q does not contain %q", err, expected)
			}
		})
	}
}

// provisionHandler provisions h the way Caddy would and releases it again when the
// test ends, whether or not Provision succeeded.
func provisionHandler(t *testing.T, h *Handler) error {
	t.Helper()
	ctx := storageContext(t)
	t.Cleanup(func() {
		if err := h.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return h.Provision(ctx)
}

// closedPortURL returns an http URL on a loopback port nobody listens on,
// so background JWKS fetches fail at once without touching the network.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProvisionClerkKeys covers the Clerk-native key configuration: what
// the publishable key derives, which key source wins, and the mistakes that
// must stop `caddy validate`.
func TestProvisionClerkKeys(t *testing.T) {
	const pk = "pk_test_Y2xlcmsuY2xlcmsuZGV2JA" // clerk.clerk.dev
	iss := clerktest.Start(t)
	pemFile := filepath.Join(t.TempDir(), "clerk.pem")
	if err := os.WriteFile(pemFile, []byte(iss.PublicKeyPEM()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_CLERK_JWT_KEY_ESCAPED", strings.ReplaceAll(iss.PublicKeyPEM(), "\n", `\n`))
	// A Frontend API on a port nothing listens on: the derived https key
	// set fails at once, without the network.
	portFAPI := strings.TrimPrefix(closedPortURL(t), "http://")
	portPK := "pk_test_" + b64std(portFAPI+"$")
	ok := []struct {
		name        string
		h           Handler
		wantIssuers []string
		wantKeySet  string // "" = networkless
	}{
		{"publishable key alone", Handler{PublishableKey: pk}, []string{"https://clerk.clerk.dev"}, "https://clerk.clerk.dev/.well-known/jwks.json"},
		{"publishable key with a port", Handler{PublishableKey: portPK}, []string{"https://" + portFAPI}, "https://" + portFAPI + "/.well-known/jwks.json|"},
		{"padded publishable key", Handler{PublishableKey: "pk_live_ZmFrZS1jbGVyay10ZXN0LmNsZXJrLmFjY291bnRzLmRldiQ="},
			[]string{"https://fake-clerk-test.clerk.accounts.dev"}, "https://fake-clerk-test.clerk.accounts.dev/.well-known/jwks.json"},
		{"explicit issuer overrides", Handler{PublishableKey: pk, Issuers: []string{iss.URL}}, []string{iss.URL}, iss.JWKSURL()},
		{"explicit jwks_url overrides", Handler{PublishableKey: pk, JWKSURL: iss.JWKSURL()}, []string{"https://clerk.clerk.dev"}, iss.JWKSURL()},
		{"networkless key", Handler{PublishableKey: pk, JWTKey: iss.PublicKeyPEM()}, []string{"https://clerk.clerk.dev"}, ""},
		{"networkless key from a file", Handler{PublishableKey: pk, JWTKey: "{file." + pemFile + "}"}, []string{"https://clerk.clerk.dev"}, ""},
		{"networkless key from env with literal \\n", Handler{PublishableKey: pk, JWTKey: "{env.TEST_CLERK_JWT_KEY_ESCAPED}"}, []string{"https://clerk.clerk.dev"}, ""},
		{"secret key", Handler{PublishableKey: pk, SecretKey: "sk_test_abc", APIURL: iss.APIURL()}, []string{"https://clerk.clerk.dev"}, iss.APIURL() + "/v1/jwks|"},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			if err := provisionHandler(t, &h); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.verifier.issuers, tc.wantIssuers) {
				t.Errorf("issuers %v, want %v", h.verifier.issuers, tc.wantIssuers)
			}
			if tc.wantKeySet == "" {
				if _, isStatic := h.verifier.keys.(staticKey); !isStatic || h.keySetKey != "" {
					t.Errorf("key source %T (%q), want the networkless key", h.verifier.keys, h.keySetKey)
				}
			} else if !strings.HasPrefix(h.keySetKey, tc.wantKeySet) {
				t.Errorf("key set %q, want %q", h.keySetKey, tc.wantKeySet)
			}
			if strings.Contains(h.keySetKey, "sk_test_abc") {
				t.Error("the key set's pool key holds the secret key in clear")
			}
		})
	}

	bad := []struct {
		name string
		h    Handler
		want string
	}{
		{"jwks_refresh too short", Handler{PublishableKey: pk, JWKSRefresh: caddy.Duration(999 * time.Millisecond)}, "jwks_refresh 999ms is too short: use at least 1s"},
		{"jwks_max_stale below jwks_refresh", Handler{PublishableKey: pk, JWKSRefresh: caddy.Duration(time.Hour), JWKSMaxStale: caddy.Duration(30 * time.Minute)}, "jwks_max_stale 30m0s is shorter than jwks_refresh 1h0m0s"},
		{"malformed publishable key", Handler{PublishableKey: "pk_test_nope"}, "publishable_key: "},
		{"secret key as publishable key", Handler{PublishableKey: "sk_test_abc"}, "must start with pk_test_ or pk_live_"},
		{"two key sources", Handler{PublishableKey: pk, JWTKey: iss.PublicKeyPEM(), JWKSURL: iss.JWKSURL()}, "alternative key source"},
		{"secret key and jwks_url", Handler{PublishableKey: pk, SecretKey: "sk_test_abc", JWKSURL: iss.JWKSURL()}, "alternative key source"},
		{"live secret with a test publishable key", Handler{PublishableKey: pk, SecretKey: "sk_live_abc"}, "use keys of the same Clerk instance"},
		{"bad jwt_key", Handler{PublishableKey: pk, JWTKey: "not a key"}, "jwt_key is not a PEM"},
		{"bad api_url", Handler{PublishableKey: pk, SecretKey: "sk_test_abc", APIURL: "http://api.clerk.com"}, "api_url"},
		{"unknown token class", Handler{PublishableKey: pk, Accept: []string{"m2m"}}, `accept "m2m"`},
		{"relative sign_in_url", Handler{PublishableKey: pk, SignInURL: "/sign-in"}, "sign_in_url"},
		{"feature with an unknown scope", Handler{PublishableKey: pk, Features: [][]string{{"team:x"}}}, "team:x"},
		{"bad claim path", Handler{PublishableKey: pk, Claims: []ClaimRequirement{{Path: "a..b", Values: []string{"x"}}}}, `claim "a..b"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			err := provisionHandler(t, &h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sk_live_abc") || strings.Contains(err.Error(), "sk_test_abc") {
				t.Fatalf("error repeats the secret key: %v", err)
			}
		})
	}
}

// TestIdentityJWKSCaddyfile: clerk_identity_jwks takes a matcher and
// nothing else: its keys are those of Caddy's storage.
func TestIdentityJWKSCaddyfile(t *testing.T) {
	tests := []struct {
		name, input, want string // want "" = accepted
	}{
		{"bare", "clerk_identity_jwks", ""},
		{"empty block", "clerk_identity_jwks {\n}", ""},
		{"argument", "clerk_identity_jwks storage", "wrong argument count"},
		{"option", "clerk_identity_jwks {\n\trotate_every 1h\n}", "clerk_identity_jwks takes no options"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var j IdentityJWKS
			err := j.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("UnmarshalCaddyfile error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
