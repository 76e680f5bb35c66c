package clerkauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
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
	// accept is our token classes (verifierConfig.accept; nil = all).
	// Clerk's is the acceptsToken of each machine shape.
	accept map[string]bool
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
	v := newDifferentialVerifier(iss, cfg)
	out := make([]verifierDecision, len(cases))
	for i, c := range cases {
		id, reason := ourVerdict(v, c.token)
		if id == nil {
			out[i] = verifierDecision{Reason: reason}
			continue
		}
		out[i] = verifierDecision{OK: true, Sub: &id.Subject}
	}
	return out
}

// newDifferentialVerifier is our verifier as a differential run configures
// it: the corpus issuer's PEM key and URL, the shared authorized parties,
// the default leeway, the clock pinned to testNow, and cfg.
func newDifferentialVerifier(iss *clerktest.Issuer, cfg differentialConfig) *verifier {
	v := newVerifier(staticKey{pub: &iss.PrivateKey().PublicKey}, verifierConfig{
		issuers:           []string{iss.URL},
		audiences:         cfg.audiences,
		authorizedParties: differentialParties,
		leeway:            defaultLeeway,
		accept:            cfg.accept,
	})
	v.now = func() time.Time { return testNow }
	return v
}

// ourVerdict verifies token with v: the identity it proves, or else the
// reason code of the rejection.
func ourVerdict(v *verifier, token string) (*Identity, string) {
	id, err := v.verify(context.Background(), token)
	if err == nil {
		return id, ""
	}
	var ve *VerifyError
	if !errors.As(err, &ve) {
		return nil, "not a VerifyError: " + err.Error()
	}
	return nil, ve.Reason
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
	return runNodeScript[verifierDecision](t, "verify.mjs", corpus, len(cases))
}

// runNodeScript runs conformance/<script> under node over input, handed to
// it as a JSON file, and decodes its answer: a JSON array of n objects, the
// i-th with "id" i.
func runNodeScript[T any](t *testing.T, script string, input any, n int) []T {
	t.Helper()
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(path, in, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("conformance", script), path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node conformance/%s: %v\n%s", script, err, stderr.Bytes())
	}
	var ids []struct {
		ID int `json:"id"`
	}
	var out []T
	if err := json.Unmarshal(stdout, &ids); err != nil {
		t.Fatalf("%s output is not JSON: %v\n%.2000s", script, err, stdout)
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("%s output does not decode: %v\n%.2000s", script, err, stdout)
	}
	if len(out) != n {
		t.Fatalf("%s answered %d items, want %d", script, len(out), n)
	}
	for i, r := range ids {
		if r.ID != i {
			t.Fatalf("%s answer %d is for item %d", script, i, r.ID)
		}
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
	for i := range differences {
		d := &differences[i]
		if d.dirs&dir != 0 && reasonAllowed(d.ourReasons, ours.OK, ours.Reason) &&
			reasonAllowed(d.clerkReasons, clerk.OK, clerk.Reason) && d.match(tv) {
			return d
		}
	}
	return nil
}

// reasonAllowed reports whether a side's decision fits a documented
// difference's reasons for it: an acceptance always does; a rejection when
// the difference names no reasons or names this one, so that a token
// rejected for another cause is not explained away.
func reasonAllowed(allowed []string, ok bool, reason string) bool {
	return ok || allowed == nil || slices.Contains(allowed, reason)
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

// reportAgreement logs a differential run's agreement table (what was
// compared, counts by outcome, the documented differences by case) and
// fails t on every undocumented difference.
func reportAgreement(t *testing.T, what string, counts map[string]int, explained, undocumented []string) {
	t.Helper()
	var table strings.Builder
	fmt.Fprintf(&table, "%s, against @clerk/backend %s:\n", what, clerkSDKVersion(t))
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&table, "  %-40s %4d\n", k, counts[k])
	}
	slices.Sort(explained)
	fmt.Fprintf(&table, "documented differences, by case:\n%s\n", strings.Join(explained, "\n"))
	t.Log("\n" + table.String())
	for _, u := range undocumented {
		t.Errorf("undocumented difference: %s", u)
	}
}
