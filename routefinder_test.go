package clerkauth

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// TestClerkTokenCheckUsageErrors covers the configs in which checkToken
// finds no one handler to check against: a usage error, and no report.
func TestClerkTokenCheckUsageErrors(t *testing.T) {
	iss := clerktest.Start(t)
	token := mintToken(iss)
	cfg := adaptCaddyfile(t, sitesCaddyfile(iss.URL))
	cases := []struct {
		name, site, path string
		cfg              []byte
		want             string
	}{
		{"not JSON", "", "", []byte("api.example.com {\n}"), "the config is not Caddy JSON (for a Caddyfile, use --adapter caddyfile)"},
		{"no clerk_auth", "", "", adaptCaddyfile(t, ":8080 {\n\trespond ok\n}\n"), "the config has no clerk_auth handler"},
		{"several handlers, no site", "", "", cfg, "the config has 6 clerk_auth handlers; choose one with --site (and --path):\n  clerk_auth #1 (server srv0: host "},
		{"ambiguous path", "paths.example.com", "", cfg, "2 clerk_auth handlers apply to site \"paths.example.com\", path \"/\"; narrow it down with --site and --path"},
		{"unknown site", "nope.example.com", "", cfg, "no clerk_auth handler applies to site \"nope.example.com\""},
		{"handler fails to provision", "", "", adaptCaddyfile(t, ":8080 {\n\tclerk_auth {\n\t\tissuer http://clerk.example.com\n\t}\n}\n"),
			"must use https (plain http is only allowed for localhost)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := checkToken(context.Background(), &out, tc.cfg, tc.site, tc.path, token, checkedAt)
			if code != 2 || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("exit %d, error %v; want 2 and an error containing %q", code, err, tc.want)
			}
			if out.Len() > 0 {
				t.Errorf("a usage error printed a report:\n%s", out.String())
			}
		})
	}
}
