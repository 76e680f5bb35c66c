package clerkauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// validateCaddyfile adapts a Caddyfile and provisions it without serving,
// as `caddy validate` does, and returns the first error of either step.
func validateCaddyfile(t *testing.T, caddyfile string) error {
	t.Helper()
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// TestValidateMachineConfig: `caddy validate` refuses each machine-token
// setting out of its range, at adapt time or at provision time, with a
// message that names the setting and what to use instead; the bounds
// themselves pass.
func TestValidateMachineConfig(t *testing.T) {
	const secret = "sk_test_abc"
	api := closedPortURL(t) // nothing is fetched while validating
	withSecret := "secret_key " + secret + "\n\t\tapi_url " + api
	tests := []struct {
		name  string
		lines string
		want  string // "" = valid
	}{
		{"api_key without secret_key", "accept api_key", "accept api_key needs secret_key: Clerk API keys are verified with the Backend API"},
		{"unknown class", "accept session api_keys", `accept "api_keys": token classes are session, template, api_key, m2m_token, oauth_token`},
		{"machine_cache_ttl 0s", "machine_cache_ttl 0s", `machine_cache_ttl "0s": use a positive duration`},
		{"machine_cache_ttl below 1s", "machine_cache_ttl 500ms", "machine_cache_ttl 500ms: use 1s to 1h0m0s; it is how long a token revoked in Clerk keeps working here"},
		{"machine_cache_ttl above 1h", "machine_cache_ttl 2h", "machine_cache_ttl 2h0m0s: use 1s to 1h0m0s"},
		{"backend_api_rate 0", withSecret + "\n\t\tbackend_api_rate 0", `backend_api_rate "0": use a positive number of calls per second`},
		{"backend_api_rate not a number", withSecret + "\n\t\tbackend_api_rate fast", `backend_api_rate "fast"`},
		{"backend_api_rate above 1000", withSecret + "\n\t\tbackend_api_rate 5000", "backend_api_rate 5000 40: use 0.1 to 1000 calls per second and a burst of 1 to 10000"},
		{"backend_api_rate above 1000 without secret_key", "backend_api_rate 5000", "backend_api_rate 5000 40: use 0.1 to 1000 calls per second"},
		{"backend_api_rate below 0.1", withSecret + "\n\t\tbackend_api_rate 0.05", "backend_api_rate 0.05 40: use 0.1 to 1000 calls per second"},
		{"burst 0", withSecret + "\n\t\tbackend_api_rate 10 0", `backend_api_rate burst "0": use a positive whole number of calls`},
		{"burst above 10000", withSecret + "\n\t\tbackend_api_rate 10 20000", "backend_api_rate 10 20000: use 0.1 to 1000 calls per second and a burst of 1 to 10000"},
		{"backend_api_rate with three values", withSecret + "\n\t\tbackend_api_rate 1 2 3", "backend_api_rate needs calls per second and optionally a burst"},
		{"scope without a value", "accept api_key\n\t\tscope\n\t\t" + withSecret, "scope needs at least one value"},
		{"scope on a session route", "scope read", "scope lines need a machine token class: add accept api_key, m2m_token or oauth_token"},

		{"api_key with secret_key", "accept api_key\n\t\t" + withSecret, ""},
		{"m2m_token without secret_key: JWTs only", "accept m2m_token oauth_token", ""},
		{"machine_cache_ttl bounds", "machine_cache_ttl 1s", ""},
		{"machine_cache_ttl upper bound", "machine_cache_ttl 1h", ""},
		{"backend_api_rate bounds", withSecret + "\n\t\tbackend_api_rate 1000 10000", ""},
		{"backend_api_rate lower bounds", withSecret + "\n\t\tbackend_api_rate 0.1 1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validateCaddyfile(t, ":8080 {\n\tclerk_auth {\n\t\tissuer "+api+"\n\t\t"+tc.lines+"\n\t}\n\trespond ok\n}\n")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("caddy validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("caddy validate: error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error repeats the secret key: %v", err)
			}
		})
	}
}
