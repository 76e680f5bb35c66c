package clerkauth

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// unsetVar is a placeholder for an environment variable no test sets.
const unsetVar = "{env.CLERK_TEST_UNSET_XYZ}"

// TestProvisionRefusesEmptyExpansion: a setting that is configured but
// expands to nothing fails provisioning, naming the setting and the
// placeholder. Left as it was, an empty authorized party or audience would
// match a token without azp or aud, an empty key would quietly switch the
// key source, and an empty URL would fall back to a default.
func TestProvisionRefusesEmptyExpansion(t *testing.T) {
	const pk = "pk_test_Y2xlcmsuY2xlcmsuZGV2JA" // clerk.clerk.dev
	ok := []string{"https://clerk.example.com"}
	tests := []struct {
		name    string
		setting string // as the error must name it
		h       Handler
	}{
		{"only issuer", "issuer", Handler{Issuers: []string{unsetVar}}},
		{"second issuer", "issuer", Handler{Issuers: []string{ok[0], unsetVar}}},
		{"publishable_key", "publishable_key", Handler{PublishableKey: unsetVar, Issuers: ok}},
		{"only audience", "audience", Handler{Issuers: ok, Audiences: []string{unsetVar}}},
		{"second audience", "audience", Handler{Issuers: ok, Audiences: []string{"api", unsetVar}}},
		{"only authorized party", "authorized_parties", Handler{Issuers: ok, AuthorizedParties: []string{unsetVar}}},
		{"second authorized party", "authorized_parties", Handler{Issuers: ok, AuthorizedParties: []string{"https://app.example.com", unsetVar}}},
		{"roles", "roles", Handler{Issuers: ok, Roles: [][]string{{unsetVar}}}},
		{"org_role", "org_role", Handler{Issuers: ok, OrgRoles: [][]string{{"admin", unsetVar}}}},
		{"org_permission", "org_permission", Handler{Issuers: ok, OrgPermissions: [][]string{{unsetVar}}}},
		{"feature", "feature", Handler{Issuers: ok, Features: [][]string{{unsetVar}}}},
		{"plan on a second line", "plan", Handler{Issuers: ok, Plans: [][]string{{"pro"}, {unsetVar}}}},
		{"claim", "claim metadata.tier", Handler{Issuers: ok, Claims: []ClaimRequirement{{Path: "metadata.tier", Values: []string{unsetVar}}}}},
		{"sign_in_url", "sign_in_url", Handler{Issuers: ok, SignInURL: unsetVar}},
		{"jwks_url", "jwks_url", Handler{Issuers: ok, JWKSURL: unsetVar}},
		{"api_url", "api_url", Handler{PublishableKey: pk, SecretKey: "sk_test_abc", APIURL: unsetVar}},
		{"jwt_key", "jwt_key", Handler{PublishableKey: pk, JWTKey: unsetVar}},
		{"secret_key", "secret_key", Handler{PublishableKey: pk, SecretKey: unsetVar}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			err := provisionHandler(t, &h)
			want := tc.setting + ` "` + unsetVar + `" expands to nothing`
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Provision error %v, want one containing %q", err, want)
			}
			if h.keySetKey != "" {
				t.Errorf("Provision failed but still took a key set (%q)", h.keySetKey)
			}
		})
	}

	// A literal empty value in a JSON list is as empty as an unset variable.
	h := Handler{Issuers: ok, AuthorizedParties: []string{""}}
	if err := provisionHandler(t, &h); err == nil || !strings.Contains(err.Error(), "authorized_parties: an empty value") {
		t.Fatalf("literal empty authorized party: error %v", err)
	}
}

// TestValidateRefusesEmptyAuthorizedParties is the same refusal as
// `caddy validate` shows it: the Caddyfile adapts, and provisioning the
// config fails with the placeholder in the message.
func TestValidateRefusesEmptyAuthorizedParties(t *testing.T) {
	caddyfile := `:8080 {
	clerk_auth {
		issuer ` + closedPortURL(t) + `
		authorized_parties ` + unsetVar + `
	}
	respond ok
}
`
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("adapter warnings: %v", warnings)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	err = caddy.Validate(&cfg)
	want := `authorized_parties "` + unsetVar + `" expands to nothing`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("caddy validate: error %v, want one containing %q", err, want)
	}
}

// TestProvisionJWKSTimers: the key set timers go down to 1s (100ms for
// jwks_timeout), short enough to play a Clerk outage through a staging
// Caddy; below the production-sensible values a warning names the setting
// and the value to use in production.
func TestProvisionJWKSTimers(t *testing.T) {
	issuer := []string{closedPortURL(t)}
	d := func(v time.Duration) caddy.Duration { return caddy.Duration(v) }
	accepted := []struct {
		name  string
		h     Handler
		warns map[string]time.Duration // setting → production-sensible value
	}{
		{"every timer at its least", Handler{JWKSRefresh: d(time.Second), JWKSMaxStale: d(time.Second), JWKSMinInterval: d(time.Second), JWKSTimeout: d(100 * time.Millisecond)},
			map[string]time.Duration{"jwks_refresh": time.Minute, "jwks_max_stale": time.Minute}},
		{"refresh for staging", Handler{JWKSRefresh: d(5 * time.Second)}, map[string]time.Duration{"jwks_refresh": time.Minute}},
		{"production-sensible values", Handler{JWKSRefresh: d(time.Minute), JWKSMaxStale: d(time.Minute), JWKSMinInterval: d(time.Second), JWKSTimeout: d(100 * time.Millisecond)}, nil},
		{"defaults", Handler{}, nil},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			h := tc.h
			h.Issuers = issuer
			h.logger = zap.New(core)
			t.Cleanup(func() {
				if err := h.Cleanup(); err != nil {
					t.Errorf("Cleanup: %v", err)
				}
			})
			if err := h.provision(caddy.NewReplacer()); err != nil {
				t.Fatalf("provision: %v", err)
			}
			got := map[string]time.Duration{}
			for _, e := range logs.All() {
				fields := e.ContextMap()
				setting, _ := fields["setting"].(string)
				if !strings.Contains(e.Message, "production") {
					t.Errorf("warning %q does not say what it is about", e.Message)
				}
				got[setting], _ = fields["production_minimum"].(time.Duration)
			}
			if !maps.Equal(got, tc.warns) {
				t.Errorf("warnings %v, want %v", got, tc.warns)
			}
		})
	}

	refused := []struct {
		name string
		h    Handler
		want string
	}{
		{"jwks_refresh", Handler{JWKSRefresh: d(999 * time.Millisecond)}, "jwks_refresh 999ms is too short: use at least 1s"},
		{"jwks_max_stale", Handler{JWKSRefresh: d(time.Second), JWKSMaxStale: d(999 * time.Millisecond)}, "jwks_max_stale 999ms is too short: use at least 1s"},
		{"jwks_min_interval", Handler{JWKSMinInterval: d(999 * time.Millisecond)}, "jwks_min_interval 999ms is too short: use at least 1s"},
		{"jwks_timeout", Handler{JWKSTimeout: d(99 * time.Millisecond)}, "jwks_timeout 99ms is too short: use at least 100ms"},
	}
	for _, tc := range refused {
		t.Run(tc.name+" too short", func(t *testing.T) {
			h := tc.h
			h.Issuers = issuer
			err := provisionHandler(t, &h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
