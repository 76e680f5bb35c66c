package clerkauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// ctNow is the command tests' clock: tokens are minted 18s before it, so a
// default token expires "in 42s".
var ctNow = time.Date(2026, 11, 26, 6, 9, 18, 0, time.UTC)

var ctIssued = ctNow.Add(-18 * time.Second)

// ctMint mints a token issued at ctIssued.
func ctMint(iss *clerktest.Issuer, opts ...clerktest.Option) string {
	return iss.Mint(append([]clerktest.Option{clerktest.IssuedAt(ctIssued)}, opts...)...)
}

// ctAdapt adapts a Caddyfile as `caddy clerk-token --config` would.
func ctAdapt(t *testing.T, caddyfile string) []byte {
	t.Helper()
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, caddyfile)
	}
	return cfg
}

func TestClerkTokenInspect(t *testing.T) {
	iss := clerktest.Start(t)
	other, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	exp := ctIssued.Add(clerktest.DefaultLifetime).Format(time.RFC3339)
	cases := []struct {
		name    string
		token   string
		wantErr bool
		want    []string
		notWant []string
	}{
		{
			name:  "v1 session",
			token: ctMint(iss, clerktest.V1Org("org_1", "acme", "org:admin", "org:teams:manage"), claimsOpt("roles", []string{"admin"})),
			want: []string{
				"alg  RS256", "kid  " + iss.KID(), "typ  JWT", "cat  cl_B7d4PD111AAA (session token)",
				`"sub": "user_test"`,
				"exp  " + exp + " (in 42s)", "iat  " + ctIssued.Format(time.RFC3339) + " (18s ago)", "nbf", "(28s ago)",
				"class        session (from the cat header)", "claims       v1",
				"iss          " + iss.URL, "azp          http://localhost:3000", "sid          sess_test",
				"org          org_1 (slug acme, role org:admin)", "permissions  org:teams:manage",
				"roles        admin (claim roles)",
			},
		},
		{
			name: "v2 session with fpm, billing, sts and act",
			token: ctMint(iss,
				clerktest.V2(clerktest.OrgV2{ID: "org_2", Slug: "beta", Role: "admin", Per: "manage,read", Fpm: "3,2"}),
				claimsOpt("fea", "o:dashboard,o:teams,u:beta", "pla", "u:pro", "sts", "active", "act", map[string]any{"sub": "user_support"})),
			want: []string{
				"claims       v2", "org          org_2 (slug beta, role org:admin)",
				"permissions  org:dashboard:manage, org:dashboard:read, org:teams:read",
				"features     org [dashboard, teams], user [beta]", "plans        user [pro]",
				"sts          active", "act          user_support (impersonating the user)",
			},
		},
		{
			name:  "v2 with masks that fit no reading",
			token: ctMint(iss, clerktest.V2(clerktest.OrgV2{ID: "org_2", Slug: "beta", Role: "admin", Per: "manage", Fpm: "1,1,1"}), claimsOpt("fea", "o:a")),
			want:  []string{"permissions  (none)", "treated as none: o.fpm has 3 masks"},
		},
		{
			name:  "template",
			token: ctMint(iss, clerktest.Template(), claimsOpt("aud", "your-api")),
			want:  []string{"(JWT template token)", "class        template (from the cat header)", "aud          your-api", "sid          (absent)"},
		},
		{
			name:  "template told apart by the missing sid",
			token: ctMint(iss, clerktest.WithHeader(map[string]any{"cat": nil}), claimsOpt("sid", nil)),
			want:  []string{"cat  (absent: session if there is a sid, else JWT template)", "class        template (no cat header and no sid)"},
		},
		{
			name:  "M2M",
			token: ctMint(iss, clerktest.M2M()),
			want:  []string{"(machine-to-machine (M2M) token)", "class        M2M (a machine-to-machine token, never accepted)"},
		},
		{
			name:  "OAuth",
			token: ctMint(iss, clerktest.WithHeader(map[string]any{"typ": "at+jwt"})),
			want:  []string{"typ  at+jwt", "class        OAuth (typ at+jwt"},
		},
		{
			name:  "expired and forged: decoding trusts nothing",
			token: ctMint(iss, clerktest.Lifetime(-3*time.Minute), clerktest.WithKey(other)),
			want:  []string{"Header (decoded, NOT verified)", "(3m18s ago)"},
		},
		{
			name:    "two segments",
			token:   "eyJhbGciOiJSUzI1NiJ9.e30",
			wantErr: true,
			want:    []string{"Cannot decode the token: not a JWT: a JWT has exactly three dot-separated segments"},
			notWant: []string{"Header"},
		},
		{
			name:    "header not base64url",
			token:   "!!.e30.sig",
			wantErr: true,
			want:    []string{"Cannot decode the token: header is not base64url"},
		},
		{
			name:    "payload not JSON",
			token:   "eyJhbGciOiJSUzI1NiJ9.bm9wZQ.sig",
			wantErr: true,
			want:    []string{"Cannot decode the token: payload is not JSON"},
		},
		{
			name:    "claims of the wrong type",
			token:   ctMint(iss, claimsOpt("exp", "tomorrow")),
			wantErr: true,
			want:    []string{`"exp": "tomorrow"`, "Not Clerk claims:"},
			notWant: []string{"Times"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := inspectToken(&out, tc.token, ctNow)
			if (err != nil) != tc.wantErr {
				t.Errorf("error %v, want error: %v", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestClerkTokenHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		42 * time.Second:                   "42s",
		3 * time.Minute:                    "3m",
		3*time.Minute + 10*time.Second:     "3m10s",
		2 * time.Hour:                      "2h",
		2*time.Hour + 5*time.Minute + 29e9: "2h5m",
		50 * time.Hour:                     "2d",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%s) = %q, want %q", d, got, want)
		}
	}
}

// ctCaddyfile has one site per situation, all verifying against iss.
func ctCaddyfile(issuer string) string {
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

func TestClerkTokenCheck(t *testing.T) {
	iss := clerktest.Start(t)
	otherKey, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ctAdapt(t, ctCaddyfile(iss.URL))
	cases := []struct {
		name, site, path, token string
		want                    []string // the first is the verdict: VALID (exit 0) or REJECTED (exit 1)
	}{
		{"valid", "api.example.com", "", ctMint(iss), []string{"VALID", "status  200: the request goes on as user_test",
			"(server srv0: host api.example.com, any path)", "keys                JWKS " + iss.JWKSURL()}},
		{"site given as a URL with a port", "https://API.example.com:8443", "", ctMint(iss), []string{"VALID"}},
		{"expired", "api.example.com", "", ctMint(iss, clerktest.IssuedAt(ctNow.Add(-4*time.Minute))),
			[]string{"REJECTED: token-expired", "status  401 Unauthorized",
				"fix     token expired 3m ago (leeway 5s): get a fresh token; Clerk session tokens live 60s"}},
		{"not active yet", "api.example.com", "", ctMint(iss, clerktest.IssuedAt(ctNow.Add(2*time.Minute))),
			[]string{"REJECTED: token-not-active-yet", "nbf is 1m50s from now (leeway 5s)"}},
		{"wrong issuer", "api.example.com", "", ctMint(iss, claimsOpt("iss", "https://a.clerk.accounts.dev")),
			[]string{"REJECTED: token-invalid-issuer", "iss is https://a.clerk.accounts.dev but the config expects " + iss.URL +
				": set issuer (or publishable_key) to the instance that issued the token"}},
		{"wrong azp", "api.example.com", "", ctMint(iss, claimsOpt("azp", "https://x.example")),
			[]string{"REJECTED: token-invalid-authorized-parties", "azp https://x.example is not in authorized_parties [http://localhost:3000]"}},
		{"no azp", "api.example.com", "", ctMint(iss, claimsOpt("azp", nil)),
			[]string{"the token has no azp but authorized_parties is [http://localhost:3000]"}},
		{"forged signature", "api.example.com", "", ctMint(iss, clerktest.WithKey(otherKey)),
			[]string{"REJECTED: token-invalid-signature", fmt.Sprintf("the signature does not verify with key %q from JWKS %s", iss.KID(), iss.JWKSURL())}},
		{"unknown kid", "api.example.com", "", ctMint(iss, headerOpt("kid", "ins_x")),
			[]string{"REJECTED: jwk-kid-mismatch", "the token's kid ins_x is not in the JWKS at " + iss.JWKSURL() +
				" (it has [" + iss.KID() + "]): the token comes from another Clerk instance or keys rotated"}},
		{"pending", "api.example.com", "", ctMint(iss, claimsOpt("sts", "pending")),
			[]string{"REJECTED: session-pending", "status  401", "or set allow_pending"}},
		{"M2M", "api.example.com", "", ctMint(iss, clerktest.M2M()),
			[]string{"REJECTED: token-type-mismatch", "this is a machine-to-machine (M2M) token"}},
		{"malformed", "api.example.com", "", "abc",
			[]string{"Cannot decode the token", "REJECTED: token-invalid", "the token is malformed"}},
		{"missing role", "roles.example.com", "", ctMint(iss, claimsOpt("roles", []string{"viewer"})),
			[]string{"REJECTED: missing-role", "status  403 Forbidden", "roles               admin",
				"the token's roles (claim roles) are [viewer]; the route requires one of [admin]"}},
		{"missing org role", "org.example.com", "", ctMint(iss, clerktest.V1Org("org_1", "acme", "org:member")),
			[]string{"REJECTED: missing-org-role", "the token's org role is org:member; the route requires one of [org:admin]"}},
		{"no active org", "org.example.com", "", ctMint(iss),
			[]string{"REJECTED: missing-org-role", "the token has no active organization; the route requires one of [org:admin]"}},
		{"path picks the handler", "paths.example.com", "/billing/invoices", ctMint(iss, claimsOpt("roles", "admin")),
			[]string{"host paths.example.com, path /billing/*", "REJECTED: missing-plan", "the token's plans are (none); the route requires one of [pro]"}},
		{"path picks the other handler", "paths.example.com", "/admin/users", ctMint(iss, claimsOpt("roles", "admin")),
			[]string{"VALID", "path /admin/*"}},
		{"optional", "optional.example.com", "", ctMint(iss, clerktest.Lifetime(-time.Hour)),
			[]string{"REJECTED: token-expired", "status  none: optional is set, so the request goes on anonymously"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := checkToken(context.Background(), &out, cfg, tc.site, tc.path, tc.token, ctNow)
			wantCode := 1
			if tc.want[0] == "VALID" {
				wantCode = 0
			}
			if code != wantCode || err != nil {
				t.Errorf("exit %d (%v), want %d", code, err, wantCode)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestClerkTokenCheckJWKSUnavailable(t *testing.T) {
	closed := cfClosedPortURL(t)
	cfg := ctAdapt(t, ":8080 {\n\tclerk_auth {\n\t\tissuer "+closed+"\n\t}\n}\n")
	iss := clerktest.Start(t)
	var out bytes.Buffer
	code, err := checkToken(context.Background(), &out, cfg, "", "", ctMint(iss, claimsOpt("iss", closed)), ctNow)
	if code != 1 || err != nil {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	for _, w := range []string{"REJECTED: jwks-unavailable", "status  503 Service Unavailable",
		"fix     could not fetch " + closed + "/.well-known/jwks.json: dial tcp "} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}

func TestClerkTokenCheckUsageErrors(t *testing.T) {
	iss := clerktest.Start(t)
	token := ctMint(iss)
	cfg := ctAdapt(t, ctCaddyfile(iss.URL))
	cases := []struct {
		name, site, path string
		cfg              []byte
		want             string
	}{
		{"not JSON", "", "", []byte("api.example.com {\n}"), "the config is not Caddy JSON (for a Caddyfile, use --adapter caddyfile)"},
		{"no clerk_auth", "", "", ctAdapt(t, ":8080 {\n\trespond ok\n}\n"), "the config has no clerk_auth handler"},
		{"several handlers, no site", "", "", cfg, "the config has 6 clerk_auth handlers; choose one with --site (and --path):\n  clerk_auth #1 (server srv0: host "},
		{"ambiguous path", "paths.example.com", "", cfg, "2 clerk_auth handlers apply to site \"paths.example.com\", path \"/\"; narrow it down with --site and --path"},
		{"unknown site", "nope.example.com", "", cfg, "no clerk_auth handler applies to site \"nope.example.com\""},
		{"handler fails to provision", "", "", ctAdapt(t, ":8080 {\n\tclerk_auth {\n\t\tissuer http://clerk.example.com\n\t}\n}\n"),
			"must use https (plain http is only allowed for localhost)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := checkToken(context.Background(), &out, tc.cfg, tc.site, tc.path, token, ctNow)
			if code != 2 || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("exit %d, error %v; want 2 and an error containing %q", code, err, tc.want)
			}
			if out.Len() > 0 {
				t.Errorf("a usage error printed a report:\n%s", out.String())
			}
		})
	}
}

func TestClerkTokenRun(t *testing.T) {
	iss := clerktest.Start(t)
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(ctCaddyfile(iss.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "Caddyfile.broken")
	if err := os.WriteFile(broken, []byte("api.example.com {\n\tclerk_auth {\n\t\tbogus\n\t}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	token := ctMint(iss)
	now := ctNow.Format(time.RFC3339)
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

// TestClerkTokenFixForEveryReason makes sure every reason code the README
// documents has a fix and a status, so no rejection is left unexplained.
func TestClerkTokenFixForEveryReason(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "Reason codes:")
	para, _, _ := strings.Cut(after, "\n\n")
	reasons := regexp.MustCompile("`([a-z]+(?:-[a-z]+)+)`").FindAllStringSubmatch(para, -1)
	if !ok || len(reasons) < 20 {
		t.Fatalf("README's \"Reason codes:\" paragraph lists %d codes; this test reads it", len(reasons))
	}

	iss := clerktest.Start(t)
	cctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	cfg, err := json.Marshal(Handler{
		Issuers: []string{iss.URL}, JWTKey: iss.PublicKeyPEM(), Accept: []string{"template"}, Audiences: []string{"api"}, AuthorizedParties: []string{"https://app.example.com"},
		Roles: [][]string{{"admin"}}, OrgRoles: [][]string{{"admin"}}, OrgPermissions: [][]string{{"teams:manage"}},
		Features: [][]string{{"o:dashboard"}}, Plans: [][]string{{"pro"}}, Claims: []ClaimRequirement{{Path: "metadata.tier", Values: []string{"gold"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := provisionClerkHandler(cctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := decodeUnverified(ctMint(iss, clerktest.V1Org("org_1", "acme", "org:member"), claimsOpt("metadata", map[string]any{"tier": "silver"})))
	if err != nil {
		t.Fatal(err)
	}
	id := tok.identity(TokenTypeSession, defaultRoles)
	for _, m := range reasons {
		reason := m[1]
		t.Run(reason, func(t *testing.T) {
			d := &diagnosis{h: h, tok: tok, id: id, now: ctNow, ve: &VerifyError{Reason: reason},
				jwksURL: iss.JWKSURL(), kids: []string{iss.KID()}, fetchErr: errors.New("connection refused")}
			fix, status := d.fix(), d.status()
			if fix == "" {
				t.Errorf("no fix for %s", reason)
			}
			if !regexp.MustCompile(`^(401|403|503) `).MatchString(status) {
				t.Errorf("status %q", status)
			}
			t.Logf("%s: %s: %s", reason, status, fix)
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
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(ctCaddyfile(iss.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
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
