package clerkauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
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
