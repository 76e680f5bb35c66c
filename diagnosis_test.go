package clerkauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

func TestClerkTokenCheck(t *testing.T) {
	iss := clerktest.Start(t)
	otherKey, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg := adaptCaddyfile(t, sitesCaddyfile(iss.URL))
	cases := []struct {
		name, site, path, token string
		want                    []string // the first is the verdict: VALID (exit 0) or REJECTED (exit 1)
	}{
		{"valid", "api.example.com", "", mintToken(iss), []string{"VALID", "status  200: the request goes on as user_test",
			"(server srv0: host api.example.com, any path)", "keys                JWKS " + iss.JWKSURL()}},
		{"site given as a URL with a port", "https://API.example.com:8443", "", mintToken(iss), []string{"VALID"}},
		{"expired", "api.example.com", "", mintToken(iss, clerktest.IssuedAt(checkedAt.Add(-4*time.Minute))),
			[]string{"REJECTED: token-expired", "status  401 Unauthorized",
				"fix     token expired 3m ago (leeway 5s): get a fresh token; Clerk session tokens live 60s"}},
		{"not active yet", "api.example.com", "", mintToken(iss, clerktest.IssuedAt(checkedAt.Add(2*time.Minute))),
			[]string{"REJECTED: token-not-active-yet", "nbf is 1m50s from now (leeway 5s)"}},
		{"wrong issuer", "api.example.com", "", mintToken(iss, claimsOpt("iss", "https://a.clerk.accounts.dev")),
			[]string{"REJECTED: token-invalid-issuer", "iss is https://a.clerk.accounts.dev but the config expects " + iss.URL +
				": set issuer (or publishable_key) to the instance that issued the token"}},
		{"wrong azp", "api.example.com", "", mintToken(iss, claimsOpt("azp", "https://x.example")),
			[]string{"REJECTED: token-invalid-authorized-parties", "azp https://x.example is not in authorized_parties [http://localhost:3000]"}},
		{"no azp", "api.example.com", "", mintToken(iss, claimsOpt("azp", nil)),
			[]string{"the token has no azp but authorized_parties is [http://localhost:3000]"}},
		{"azp not a string", "api.example.com", "", mintToken(iss, claimsOpt("azp", []string{"http://localhost:3000"})),
			[]string{"REJECTED: token-invalid-authorized-parties", `azp is ["http://localhost:3000"], not a string`}},
		{"iss not a string", "api.example.com", "", mintToken(iss, claimsOpt("iss", 42)),
			[]string{"REJECTED: token-invalid-issuer", "iss is 42 but the config expects " + iss.URL}},
		{"forged signature", "api.example.com", "", mintToken(iss, clerktest.WithKey(otherKey)),
			[]string{"REJECTED: token-invalid-signature", fmt.Sprintf("the signature does not verify with key %q from JWKS %s", iss.KID(), iss.JWKSURL())}},
		{"unknown kid", "api.example.com", "", mintToken(iss, headerOpt("kid", "ins_x")),
			[]string{"REJECTED: jwk-kid-mismatch", "the token's kid ins_x is not in the JWKS at " + iss.JWKSURL() +
				" (it has [" + iss.KID() + "]): the token comes from another Clerk instance or keys rotated"}},
		{"pending", "api.example.com", "", mintToken(iss, claimsOpt("sts", "pending")),
			[]string{"REJECTED: session-pending", "status  401", "or set allow_pending"}},
		{"M2M", "api.example.com", "", mintToken(iss, clerktest.M2M()),
			[]string{"REJECTED: token-type-mismatch", "token's class is m2m_token: add accept m2m_token"}},
		{"malformed", "api.example.com", "", "abc",
			[]string{"Cannot decode the token", "REJECTED: token-invalid", "the token is malformed"}},
		{"missing role", "roles.example.com", "", mintToken(iss, claimsOpt("roles", []string{"viewer"})),
			[]string{"REJECTED: missing-role", "status  403 Forbidden", "roles               admin",
				"the token's roles (claim roles) are [viewer]; the route requires one of [admin]"}},
		{"missing org role", "org.example.com", "", mintToken(iss, clerktest.V1Org("org_1", "acme", "org:member")),
			[]string{"REJECTED: missing-org-role", "the token's org role is org:member; the route requires one of [org:admin]"}},
		{"no active org", "org.example.com", "", mintToken(iss),
			[]string{"REJECTED: missing-org-role", "the token has no active organization; the route requires one of [org:admin]"}},
		{"path picks the handler", "paths.example.com", "/billing/invoices", mintToken(iss, claimsOpt("roles", "admin")),
			[]string{"host paths.example.com, path /billing/*", "REJECTED: missing-plan", "the token's plans are (none); the route requires one of [pro]"}},
		{"path picks the other handler", "paths.example.com", "/admin/users", mintToken(iss, claimsOpt("roles", "admin")),
			[]string{"VALID", "path /admin/*"}},
		{"optional", "optional.example.com", "", mintToken(iss, clerktest.Lifetime(-time.Hour)),
			[]string{"REJECTED: token-expired", "status  none: optional is set, so the request goes on anonymously"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := checkToken(context.Background(), &out, cfg, tc.site, tc.path, tc.token, checkedAt)
			wantCode := 1
			if tc.want[0] == "VALID" {
				wantCode = 0
			}
			if code != wantCode || err != nil {
				t.Errorf("exit %d (%v), want %d", code, err, wantCode)
			}
			wantOutput(t, out.String(), tc.want, nil)
		})
	}
}

// A config with identity_assertion is checked like any other, and the
// check makes no keys in its storage.
func TestClerkTokenCheckIdentityAssertion(t *testing.T) {
	iss := clerktest.Start(t)
	storage := t.TempDir()
	cfg := adaptCaddyfile(t, fmt.Sprintf(`{
	storage file_system %s
}
api.example.com {
	clerk_auth {
		issuer %s
		identity_assertion X-Clerk-Identity {
			audience https://api.internal
		}
	}
}
`, storage, iss.URL))
	var out bytes.Buffer
	code, err := checkToken(context.Background(), &out, cfg, "api.example.com", "", mintToken(iss), checkedAt)
	if code != 0 || err != nil {
		t.Errorf("exit %d (%v), want 0", code, err)
	}
	wantOutput(t, out.String(), []string{"VALID"}, nil)
	if entries, err := os.ReadDir(storage); err != nil || len(entries) != 0 {
		t.Errorf("the storage holds %d entries (%v) after the check, want none", len(entries), err)
	}
}

func TestClerkTokenCheckJWKSUnavailable(t *testing.T) {
	closed := closedPortURL(t)
	cfg := adaptCaddyfile(t, ":8080 {\n\tclerk_auth {\n\t\tissuer "+closed+"\n\t}\n}\n")
	iss := clerktest.Start(t)
	var out bytes.Buffer
	code, err := checkToken(context.Background(), &out, cfg, "", "", mintToken(iss, claimsOpt("iss", closed)), checkedAt)
	if code != 1 || err != nil {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	wantOutput(t, out.String(), []string{"REJECTED: jwks-unavailable", "status  503 Service Unavailable",
		"fix     could not fetch " + closed + "/.well-known/jwks.json: dial tcp "}, nil)
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
	cctx, cancel := caddy.NewContext(storageContext(t))
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
	tok, err := decodeUnverified(mintToken(iss, clerktest.V1Org("org_1", "acme", "org:member"), claimsOpt("metadata", map[string]any{"tier": "silver"})))
	if err != nil {
		t.Fatal(err)
	}
	id := tok.identity(TokenTypeSession, defaultRoles)
	for _, m := range reasons {
		reason := m[1]
		t.Run(reason, func(t *testing.T) {
			d := &diagnosis{h: h, tok: tok, id: id, now: checkedAt, ve: &VerifyError{Reason: reason},
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
