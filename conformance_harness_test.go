package clerkauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// differentialParties is the authorized_parties list of both verifiers.
var differentialParties = []string{clerktest.DefaultAZP, "https://app.example.com"}

// differentialConfig is what a differential run sets beyond the PEM key,
// the authorized parties, the clock skew and the clock, which every run
// shares.
type differentialConfig struct {
	// clerkIssuer gives Clerk's verifyToken the issuer too. Ours always
	// checks iss; Clerk's request handling never passes an issuer, so the
	// main run leaves it out.
	clerkIssuer bool
	audiences   []string // audience on both sides; nil = none
}

// verifierDecision is one verifier's decision on one token.
type verifierDecision struct {
	OK     bool    `json:"ok"`
	Reason string  `json:"reason"`
	Sub    *string `json:"sub"`
}

// runOurs verifies every token with our verifier, set up as the Caddyfile
// `jwt_key <pem>`, `issuer <corpus issuer>`, `authorized_parties ...` (and
// `audience ...`) would.
func runOurs(iss *clerktest.Issuer, cfg differentialConfig, cases []corpusToken) []verifierDecision {
	v := newVerifier(staticKey{pub: &iss.PrivateKey().PublicKey}, verifierConfig{
		issuers:           []string{iss.URL},
		audiences:         cfg.audiences,
		authorizedParties: differentialParties,
		leeway:            defaultLeeway,
	})
	v.now = func() time.Time { return testNow }
	out := make([]verifierDecision, len(cases))
	for i, c := range cases {
		id, err := v.verify(context.Background(), c.token)
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) {
				out[i] = verifierDecision{Reason: "not a VerifyError: " + err.Error()}
				continue
			}
			out[i] = verifierDecision{Reason: ve.Reason}
			continue
		}
		out[i] = verifierDecision{OK: true, Sub: &id.Subject}
	}
	return out
}

// runClerk runs conformance/verify.mjs over the corpus.
func runClerk(t *testing.T, iss *clerktest.Issuer, cfg differentialConfig, cases []corpusToken) []verifierDecision {
	type tok struct {
		ID    int    `json:"id"`
		Token string `json:"token"`
	}
	corpus := struct {
		PEM               string   `json:"pem"`
		AuthorizedParties []string `json:"authorizedParties"`
		ClockSkewInMs     int64    `json:"clockSkewInMs"`
		Now               int64    `json:"now"`
		Issuer            string   `json:"issuer,omitempty"`
		Audience          []string `json:"audience,omitempty"`
		Tokens            []tok    `json:"tokens"`
	}{PEM: iss.PublicKeyPEM(), AuthorizedParties: differentialParties, ClockSkewInMs: defaultLeeway.Milliseconds(),
		Now: testNow.UnixMilli(), Audience: cfg.audiences}
	if cfg.clerkIssuer {
		corpus.Issuer = iss.URL
	}
	for i, c := range cases {
		corpus.Tokens = append(corpus.Tokens, tok{i, c.token})
	}
	in, err := json.Marshal(corpus)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "corpus.json")
	if err := os.WriteFile(path, in, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("conformance", "verify.mjs"), path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node conformance/verify.mjs: %v\n%s", err, stderr.Bytes())
	}
	var results []struct {
		ID int `json:"id"`
		verifierDecision
	}
	if err := json.Unmarshal(stdout, &results); err != nil {
		t.Fatalf("verify.mjs output is not JSON: %v\n%.2000s", err, stdout)
	}
	if len(results) != len(cases) {
		t.Fatalf("verify.mjs answered %d tokens, want %d", len(results), len(cases))
	}
	out := make([]verifierDecision, len(cases))
	for i, r := range results {
		if r.ID != i {
			t.Fatalf("verify.mjs answer %d is for token %d", i, r.ID)
		}
		out[i] = r.verifierDecision
	}
	return out
}

// conformanceReady skips the test where Clerk's SDK cannot run, unless
// CLERK_CONFORMANCE=require (CI) makes that a failure.
func conformanceReady(t *testing.T) {
	t.Helper()
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not on PATH"
	} else if _, err := os.Stat(filepath.Join("conformance", "node_modules", "@clerk", "backend", "package.json")); err != nil {
		missing = "conformance/node_modules is missing (run: npm ci --prefix conformance)"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CLERK_CONFORMANCE") == "require" {
		t.Fatalf("CLERK_CONFORMANCE=require but %s", missing)
	}
	t.Skipf("skipping the differential test against @clerk/backend: %s", missing)
}

// explain returns the first documented difference that accounts for a
// disagreement going dir on tv, or nil.
func explain(tv *tokenView, dir direction, ours, clerk verifierDecision) *difference {
	reasonOK := func(allowed []string, o verifierDecision) bool {
		return o.OK || allowed == nil || slices.Contains(allowed, o.Reason)
	}
	for i := range differences {
		d := &differences[i]
		if d.dirs&dir != 0 && reasonOK(d.ourReasons, ours) && reasonOK(d.clerkReasons, clerk) && d.match(tv) {
			return d
		}
	}
	return nil
}

func derefOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// clerkSDKVersion is the installed @clerk/backend version, for the log.
func clerkSDKVersion(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("conformance", "node_modules", "@clerk", "backend", "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	return pkg.Version
}
