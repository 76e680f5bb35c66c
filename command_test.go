package clerkauth

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// checkedAt is the clock of the clerk-token tests: tokens are minted 18s
// before it, so a default token expires "in 42s".
var checkedAt = time.Date(2026, 11, 26, 6, 9, 18, 0, time.UTC)

// mintedAt is when mintToken's tokens are issued.
var mintedAt = checkedAt.Add(-18 * time.Second)

// mintToken mints a token issued at mintedAt.
func mintToken(iss *clerktest.Issuer, opts ...clerktest.Option) string {
	return iss.Mint(append([]clerktest.Option{clerktest.IssuedAt(mintedAt)}, opts...)...)
}

// adaptCaddyfile adapts a Caddyfile as `caddy clerk-token --config` would.
func adaptCaddyfile(t *testing.T, caddyfile string) []byte {
	t.Helper()
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, caddyfile)
	}
	return cfg
}

// sitesCaddyfile has one site per situation, all verifying against issuer.
func sitesCaddyfile(issuer string) string {
	return strings.ReplaceAll(`{
	admin off
}

api.example.com {
	clerk_auth {
		issuer ISS
		authorized_parties http://localhost:3000
	}
	respond ok
}

roles.example.com {
	clerk_auth {
		issuer ISS
		roles admin
	}
	respond ok
}

org.example.com {
	clerk_auth {
		issuer ISS
		org_role admin
	}
	respond ok
}

paths.example.com {
	clerk_auth /admin/* {
		issuer ISS
		roles admin
	}
	clerk_auth /billing/* {
		issuer ISS
		plan pro
	}
	respond ok
}

optional.example.com {
	clerk_auth {
		issuer ISS
		optional
	}
	respond ok
}
`, "ISS", issuer)
}

// writeFile writes content to path and returns path.
func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantOutput checks that out has every string of want and none of notWant.
func wantOutput(t *testing.T, out string, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, w := range notWant {
		if strings.Contains(out, w) {
			t.Errorf("output has %q:\n%s", w, out)
		}
	}
}

func TestClerkTokenRun(t *testing.T) {
	iss := clerktest.Start(t)
	dir := t.TempDir()
	caddyfile := writeFile(t, filepath.Join(dir, "Caddyfile"), sitesCaddyfile(iss.URL))
	broken := writeFile(t, filepath.Join(dir, "Caddyfile.broken"), "api.example.com {\n\tclerk_auth {\n\t\tbogus\n\t}\n}\n")
	token := mintToken(iss)
	now := checkedAt.Format(time.RFC3339)
	cases := []struct {
		name     string
		o        clerkTokenOptions
		args     []string
		stdin    string
		wantCode int
		want     string // in the usage error for 2, else in stdout
	}{
		{"decode only", clerkTokenOptions{now: now}, []string{token}, "", 0, "class        session"},
		{"decode only, undecodable", clerkTokenOptions{}, []string{"abc"}, "", 1, "Cannot decode the token"},
		{"token from stdin with Bearer", clerkTokenOptions{config: caddyfile, site: "api.example.com", now: now}, []string{"-"}, "Bearer " + token + "\n", 0, "VALID"},
		{"rejected", clerkTokenOptions{config: caddyfile, site: "roles.example.com", now: now}, []string{token}, "", 1, "REJECTED: missing-role"},
		{"no token", clerkTokenOptions{}, nil, "", 2, "want one token argument"},
		{"two tokens", clerkTokenOptions{}, []string{token, token}, "", 2, "got 2 arguments"},
		{"empty stdin", clerkTokenOptions{}, []string{"-"}, "\n", 2, "the token is empty"},
		{"site without config", clerkTokenOptions{site: "api.example.com"}, []string{token}, "", 2, "need --config"},
		{"both from stdin", clerkTokenOptions{config: "-"}, []string{"-"}, "", 2, "cannot both come from stdin"},
		{"bad --now", clerkTokenOptions{now: "yesterday"}, []string{token}, "", 2, "not an RFC 3339 time"},
		{"config missing", clerkTokenOptions{config: filepath.Join(dir, "nope.json")}, []string{token}, "", 2, "reading config from file"},
		{"config does not adapt", clerkTokenOptions{config: broken}, []string{token}, "", 2, "unrecognized clerk_auth subdirective"},
		{"ambiguous site", clerkTokenOptions{config: caddyfile}, []string{token}, "", 2, "choose one with --site"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := runClerkToken(context.Background(), tc.o, tc.args, strings.NewReader(tc.stdin), &out)
			if code != tc.wantCode {
				t.Fatalf("exit %d (%v), want %d\n%s", code, err, tc.wantCode, out.String())
			}
			got := out.String()
			if code == 2 {
				if err == nil {
					t.Fatal("exit 2 without a usage error")
				}
				got = err.Error()
				if out.Len() > 0 {
					t.Errorf("a usage error printed a report:\n%s", out.String())
				}
			} else if err != nil {
				t.Errorf("exit %d with error %v", code, err)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("%q lacks %q", got, tc.want)
			}
			if strings.Contains(got, iss.SecretKey()) {
				t.Error("the report shows a secret key")
			}
		})
	}
}

// TestClerkTokenCommand runs the real `caddy clerk-token`, built from
// ./cmd/caddy, to prove the plugin registers it and that exit statuses
// reach the shell.
func TestClerkTokenCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build Caddy with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "caddy")
	if out, err := exec.Command(goTool, "build", "-o", bin, "./cmd/caddy").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	iss := clerktest.Start(t)
	caddyfile := writeFile(t, filepath.Join(dir, "Caddyfile"), sitesCaddyfile(iss.URL))
	valid := iss.Mint()
	cases := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		want     string // in stdout for 0 and 1, in stderr for 2
	}{
		{"valid", []string{"--config", caddyfile, "--site", "api.example.com", valid}, "", 0, "VALID"},
		{"valid from stdin", []string{"--config", caddyfile, "--site", "api.example.com", "-"}, valid, 0, "VALID"},
		{"rejected", []string{"-c", caddyfile, "--site", "roles.example.com", valid}, "", 1, "REJECTED: missing-role"},
		{"decode only", []string{valid}, "", 0, "class        session"},
		{"no token", []string{"--config", caddyfile}, "", 2, "want one token argument"},
		{"bad flag", []string{"--bogus", valid}, "", 2, "unknown flag: --bogus"},
		{"ambiguous site", []string{"--config", caddyfile, valid}, "", 2, "choose one with --site"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"clerk-token"}, tc.args...)...)
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			got := stdout.String()
			if code == 2 {
				got = stderr.String()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("lacks %q:\nstdout:\n%s\nstderr:\n%s", tc.want, stdout.String(), stderr.String())
			}
		})
	}
}
