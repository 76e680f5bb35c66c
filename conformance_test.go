package clerkauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// The differential test: every token of a generated corpus goes through our
// verifier and through Clerk's official verifyToken (@clerk/backend, run by
// conformance/verify.mjs under node), configured alike: the same RSA-2048
// PEM key, authorized parties, clock skew and fixed clock. Wherever the two
// decide differently, the difference must be one of the documented ones
// below; SECURITY.md lists the same table (TestSecurityMDDifferencesInSync).
//
// The table lives here because SECURITY.md names this file as its source;
// conformance_corpus_test.go builds the tokens, and
// conformance_harness_test.go runs both verifiers over them.

func TestConformanceWithClerkSDK(t *testing.T) {
	conformanceReady(t)
	iss := clerktest.Start(t)
	iss.SetNow(func() time.Time { return testNow })
	cases := buildCorpus(t, iss)
	if len(cases) < 300 {
		t.Fatalf("corpus has %d tokens, want at least 300", len(cases))
	}
	if n := compareWithClerk(t, iss, differentialConfig{}, cases)["agree-accept"]; n < 50 {
		t.Errorf("only %d tokens accepted by both: the corpus or the setup is broken", n)
	}
}

// TestConformanceClaimTypesWithClerkSDK gives both verifiers an issuer and
// an audience, which Clerk's verifyToken checks only when given them, so
// that the iss, azp and aud checks, and the reason codes they give a claim
// of the wrong type, are compared on both sides.
func TestConformanceClaimTypesWithClerkSDK(t *testing.T) {
	conformanceReady(t)
	iss := clerktest.Start(t)
	iss.SetNow(func() time.Time { return testNow })
	counts := compareWithClerk(t, iss, differentialConfig{clerkIssuer: true, audiences: []string{claimTypesAudience}}, buildClaimTypeCorpus(t, iss))
	if counts["agree-accept"] < 2 || counts["agree-reject"] < 16 {
		t.Errorf("agreement %v: the corpus or the setup is broken", counts)
	}
}

// compareWithClerk runs cases through both verifiers configured by cfg,
// logs the agreement table and fails on every difference, in decision or
// in reason code, that no documented difference explains. It returns the
// table's counts.
func compareWithClerk(t *testing.T, iss *clerktest.Issuer, cfg differentialConfig, cases []corpusToken) map[string]int {
	t.Helper()
	ours := runOurs(iss, cfg, cases)
	clerk := runClerk(t, iss, cfg, cases)

	counts := map[string]int{}
	var undocumented, explained []string
	for i, c := range cases {
		o, k := ours[i], clerk[i]
		var dir direction
		switch {
		case o.OK && k.OK && *o.Sub == derefOr(k.Sub, "<none>"):
			counts["agree-accept"]++
			continue
		case !o.OK && !k.OK && o.Reason == k.Reason:
			counts["agree-reject"]++
			continue
		case !o.OK && !k.OK:
			dir = reasonDiffers
		case o.OK && k.OK:
			dir = subDiffers
		case o.OK:
			dir = weAccept
		default:
			dir = weReject
		}
		tv := newTokenView(c.token, iss.URL, cfg.audiences)
		if d := explain(tv, dir, o, k); d != nil {
			counts["documented: "+d.name]++
			explained = append(explained, fmt.Sprintf("  %-26s %s", d.name, c.desc))
			continue
		}
		undocumented = append(undocumented, fmt.Sprintf("%s (%s): ours ok=%t reason=%q sub=%q; clerk ok=%t reason=%q sub=%q",
			c.desc, dir, o.OK, o.Reason, derefOr(o.Sub, ""), k.OK, k.Reason, derefOr(k.Sub, "")))
	}

	reportAgreement(t, fmt.Sprintf("token agreement over %d tokens", len(cases)), counts, explained, undocumented)
	return counts
}

// Which way a difference goes.
type direction uint8

const (
	weReject      direction = 1 << iota // we reject, Clerk's verifyToken accepts
	weAccept                            // we accept, Clerk rejects
	subDiffers                          // both accept, for different identities
	reasonDiffers                       // both reject, with different reason codes
)

func (d direction) String() string {
	switch d {
	case weReject:
		return "we reject, Clerk accepts"
	case weAccept:
		return "we accept, Clerk rejects"
	case subDiffers:
		return "both accept, different identity"
	case reasonDiffers:
		return "both reject, different reasons"
	}
	return fmt.Sprintf("direction(%d)", d)
}

// difference is one documented way our verifier departs from Clerk's
// verifyToken. A disagreement is explained by it when it goes one of dirs
// and match holds for the token.
type difference struct {
	name  string
	dirs  direction
	token string // which tokens, in words: the predicate match implements
	ours  string
	clerk string
	why   string
	match func(tv *tokenView) bool
	// The reasons the rejecting side may give (nil: any), so that a token
	// rejected for another cause is not explained away by this entry.
	ourReasons, clerkReasons []string
}

// differences is the single source of the table in SECURITY.md.
var differences = []difference{
	{
		name:  "issuer-checked",
		dirs:  weReject,
		token: "`iss` is missing, not a string, or not one of the configured issuers",
		ours:  "rejects (`token-invalid-issuer`)",
		clerk: "accepts: `verifyToken` checks `iss` only when given an `issuer`, which Clerk's own request handling never passes (given one, it refuses the same tokens with the same reason)",
		why:   "Every token class of every Clerk instance is signed with an instance key; with a JWKS shared by several instances, or a key reused across environments, only `iss` ties the token to the instance the site trusts.",
		match: func(tv *tokenView) bool {
			iss, ok := tv.payload["iss"].(string)
			return !ok || strings.TrimSuffix(iss, "/") != tv.issuer
		},
		ourReasons: []string{ReasonInvalidIssuer},
	},
	{
		name:  "audience-checked",
		dirs:  weReject | reasonDiffers,
		token: "`audience` is set and `aud` is missing, `null`, empty, not a string or an array of strings, or names none of the audiences",
		ours:  "rejects (`token-invalid-audience`)",
		clerk: "accepts an `aud` that is missing, empty or of another type (it checks only a string or an array of strings), and rejects a mismatch with `token-verification-failed`",
		why:   "A configured audience is a requirement: a token that does not name it was not minted for this API, whatever shape its `aud` has. Clerk's SDK has no reason code for the audience; ours names the claim that failed, as it does for `iss` and `azp`.",
		match: func(tv *tokenView) bool {
			return len(tv.audiences) > 0 && !namesAudience(tv.payload["aud"], tv.audiences)
		},
		ourReasons:   []string{ReasonInvalidAudience},
		clerkReasons: []string{ReasonVerificationFailed},
	},
	{
		name:  "machine-subject",
		dirs:  weReject,
		token: "`sub` starts with `mch_` (an M2M token without the M2M `cat`)",
		ours:  "rejects (`token-type-mismatch`)",
		clerk: "accepts: only `authenticateRequest` looks at `sub` to spot machine tokens",
		why:   "A machine token is not a user session; Clerk's own request handler refuses it on the session paths, and so do we, whatever the header says.",
		match: func(tv *tokenView) bool {
			sub, _ := tv.payload["sub"].(string)
			return strings.HasPrefix(sub, "mch_")
		},
		ourReasons: []string{ReasonTypeMismatch},
	},
	{
		name:  "non-session-category",
		dirs:  weReject,
		token: "header `cat` is present but not the session, template or ignore category (unknown categories, `null`, non-strings)",
		ours:  "rejects (`token-type-mismatch`, or `token-invalid` for a non-string `cat`)",
		clerk: "accepts: `verifyToken` only refuses the M2M category",
		why:   "Fail closed: a category Clerk adds later (OAuth, ...) is not a session until we know it is. Clerk's `authenticateRequest` also refuses every non-session category on the session paths.",
		match: func(tv *tokenView) bool {
			cat, present := tv.header["cat"]
			if !present {
				return false
			}
			s, _ := cat.(string)
			return s != catSession && s != catTemplate && s != catIgnore
		},
		ourReasons: []string{ReasonTypeMismatch, ReasonTokenInvalid},
	},
	{
		name:  "token-class-reason",
		dirs:  reasonDiffers,
		token: "an M2M token (the M2M `cat`) or an OAuth access token (`typ` `at+jwt`)",
		ours:  "rejects (`token-type-mismatch`)",
		clerk: "rejects (`token-invalid`)",
		why:   "The token is well formed and signed by the instance, but of a class the route does not take; `token-type-mismatch` says so for every such class (M2M subject, category, `accept`), so `handle_errors` and the metrics can tell it from a malformed token.",
		match: func(tv *tokenView) bool {
			typ, _ := tv.header["typ"].(string)
			return tv.header["cat"] == catM2M || typ == "at+jwt" || typ == "application/at+jwt"
		},
		ourReasons:   []string{ReasonTypeMismatch},
		clerkReasons: []string{ReasonTokenInvalid},
	},
	{
		name:       "pending-session",
		dirs:       weReject,
		token:      "`sts` is `pending` (the user has session tasks left) and `allow_pending` is off",
		ours:       "rejects (`session-pending`)",
		clerk:      "accepts: `verifyToken` does not read `sts`",
		why:        "Clerk's `auth()` treats pending sessions as signed out by default (`treatPendingAsSignedOut`); the gateway applies the same default.",
		match:      func(tv *tokenView) bool { return tv.payload["sts"] == sessionPending },
		ourReasons: []string{ReasonSessionPending},
	},
	{
		name:  "out-of-range-time",
		dirs:  weReject,
		token: "`exp`, `nbf` or `iat` outside what a JavaScript Date can hold (more than 8.64e12 s from the epoch, or not finite such as `1e400`)",
		ours:  "compares the number as it is: rejects an `exp` far in the past or an `nbf`/`iat` far in the future (`1e400` fails to decode: `token-verification-failed`)",
		clerk: "accepts: the Date arithmetic yields NaN and every comparison with NaN is false",
		why:   "A time check that passes because the number is absurd is a bug, not a policy.",
		match: func(tv *tokenView) bool {
			return slices.ContainsFunc(timeClaims, func(name string) bool {
				v, ok := tv.number(name)
				return ok && !jsDateFinite(v)
			})
		},
		ourReasons: []string{ReasonTokenExpired, ReasonNotActiveYet, ReasonIATInFuture, ReasonVerificationFailed},
	},
	{
		name:  "fractional-time",
		dirs:  weReject | weAccept,
		token: "`exp`, `nbf` or `iat` has a fractional part that puts it on the other side of a leeway boundary once truncated to whole seconds",
		ours:  "compares the exact NumericDate (RFC 7519 allows fractions)",
		clerk: "truncates to whole seconds toward zero first (`Date.setUTCSeconds`)",
		why:   "RFC 7519 NumericDates may be fractional; the exact comparison is the correct one. Clerk emits whole seconds, so this never matters for real tokens.",
		match: func(tv *tokenView) bool {
			now := float64(testNow.Unix())
			skew := defaultLeeway.Seconds()
			fails := map[string]func(float64) bool{
				"exp": func(v float64) bool { return v <= now-skew },
				"nbf": func(v float64) bool { return v > now+skew },
				"iat": func(v float64) bool { return v > now+skew },
			}
			for _, name := range timeClaims {
				if v, ok := tv.number(name); ok && v != math.Trunc(v) && fails[name](v) != fails[name](math.Trunc(v)) {
					return true
				}
			}
			return false
		},
		ourReasons:   []string{ReasonNotActiveYet, ReasonIATInFuture},
		clerkReasons: []string{ReasonTokenExpired},
	},
	{
		name:       "padded-base64",
		dirs:       weReject,
		token:      "a segment carries base64 `=` padding",
		ours:       "rejects (`token-invalid`)",
		clerk:      "accepts: segments are decoded loosely",
		why:        "JWS compact serialization is unpadded (RFC 7515 §2); accepting padding gives one token several spellings, which defeats exact-match caches, revocation lists and log correlation.",
		match:      func(tv *tokenView) bool { return strings.Contains(tv.raw, "=") },
		ourReasons: []string{ReasonTokenInvalid},
	},
	{
		name:       "crit-header",
		dirs:       weReject,
		token:      "the header has a `crit` member (any value, `null` and `[]` included)",
		ours:       "rejects (`token-invalid`)",
		clerk:      "accepts: `crit` is ignored",
		why:        "RFC 7515 §4.1.11: a recipient that does not understand the listed extensions must reject the token. Clerk never sets `crit`.",
		match:      func(tv *tokenView) bool { _, ok := tv.header["crit"]; return ok },
		ourReasons: []string{ReasonTokenInvalid},
	},
	{
		name:       "oversized-token",
		dirs:       weReject,
		token:      "the token is longer than 16 KiB (`maxTokenSize`)",
		ours:       "rejects (`token-invalid`) before decoding anything",
		clerk:      "decodes and verifies tokens of any size",
		why:        "Bounded work per request: a session token must fit a 4 KiB cookie, and nothing Clerk issues comes near 16 KiB.",
		match:      func(tv *tokenView) bool { return len(tv.raw) > maxTokenSize },
		ourReasons: []string{ReasonTokenInvalid},
	},
	{
		name:         "rs384-rs512-with-jwt-key",
		dirs:         weAccept | reasonDiffers,
		token:        "`alg` is RS384 or RS512, verified with `jwt_key`",
		ours:         "accepts when the configured key signed it: the PEM key is used with any of RS256/RS384/RS512 (a bad signature is `token-invalid-signature`)",
		clerk:        "rejects (`token-verification-failed`), whatever the signature: the JWK it builds from the PEM has `alg: RS256` hard-coded",
		why:          "Same key, same RSASSA-PKCS1-v1_5 padding, a longer hash: nothing an attacker without the private key can use. The algorithm family stays pinned (no HMAC, PSS, ECDSA, EdDSA or none). Clerk itself lists RS384/RS512 as valid algorithms and only refuses them here as a side effect of how it converts the PEM.",
		match:        func(tv *tokenView) bool { return tv.header["alg"] == "RS384" || tv.header["alg"] == "RS512" },
		clerkReasons: []string{ReasonVerificationFailed},
	},
	{
		name:  "malformed-header-reason",
		dirs:  reasonDiffers,
		token: "the header is not a JSON object, or its `alg` is not a string",
		ours:  "rejects (`token-invalid`; a `null` header has no members, so no `alg`: `token-invalid-algorithm`)",
		clerk: "rejects (`token-invalid-algorithm`, or throws a `TypeError` on a `null` header)",
		why:   "A header that is not an object of string parameters is malformed (RFC 7515 §4), which `token-invalid` says; `token-invalid-algorithm` would send whoever reads the logs after the algorithm.",
		match: func(tv *tokenView) bool {
			_, isString := tv.header["alg"].(string)
			return tv.header == nil || !isString
		},
		ourReasons:   []string{ReasonTokenInvalid, ReasonInvalidAlgorithm},
		clerkReasons: []string{ReasonInvalidAlgorithm, "exception:TypeError"},
	},
	{
		name:         "malformed-payload-reason",
		dirs:         reasonDiffers,
		token:        "the payload is not a JSON object (not JSON, trailing data, `null`)",
		ours:         "rejects (`token-verification-failed`), once the signature verifies",
		clerk:        "rejects (`token-invalid`) before checking the signature, or throws a `TypeError` on a `null` payload",
		why:          "Nothing in the payload is looked at before the signature verifies, so a forged token learns nothing; a signed payload that is not a claims object is a claims failure, reported as every other one.",
		match:        func(tv *tokenView) bool { return tv.payload == nil || !json.Valid(tv.payloadJSON) },
		ourReasons:   []string{ReasonVerificationFailed},
		clerkReasons: []string{ReasonTokenInvalid, "exception:TypeError"},
	},
	{
		name:  "typed-members",
		dirs:  weReject,
		token: "header `kid` or claim `sid` is present with a JSON type other than string (and not `null`)",
		ours:  "rejects (`token-invalid` for the header, `token-verification-failed` for claims)",
		clerk: "accepts: it ignores `kid` with a PEM key and never reads `sid`",
		why:   "Members we read must have the type the spec gives them; a token Clerk did not shape is refused rather than half-read.",
		match: func(tv *tokenView) bool {
			return wrongType(tv.header, "kid") || wrongType(tv.payload, "sid")
		},
		ourReasons: []string{ReasonTokenInvalid, ReasonVerificationFailed},
	},
	{
		name:  "typ-as-written",
		dirs:  weReject,
		token: "`typ` is `JWT` spelled with JSON escapes (e.g. `\"J\\u0057T\"`)",
		ours:  "rejects (`token-invalid`): `typ` is compared as written",
		clerk: "accepts: it compares the decoded string",
		why:   "Clerk writes `\"typ\":\"JWT\"` literally; comparing the raw JSON spares a decode per request, and any other spelling fails closed.",
		match: func(tv *tokenView) bool {
			return tv.header["typ"] == "JWT" && !bytes.Contains(tv.headerJSON, []byte(`"JWT"`))
		},
		ourReasons: []string{ReasonTokenInvalid},
	},
	{
		name:  "utf8-bom",
		dirs:  weReject,
		token: "the header or payload JSON starts with a UTF-8 byte order mark",
		ours:  "rejects (`token-invalid` / `token-verification-failed`): not JSON",
		clerk: "accepts: `TextDecoder` drops the BOM before `JSON.parse`",
		why:   "RFC 8259 §8.1: JSON text must not begin with a BOM. Clerk never writes one.",
		match: func(tv *tokenView) bool {
			bom := []byte("\uFEFF")
			return bytes.HasPrefix(tv.headerJSON, bom) || bytes.HasPrefix(tv.payloadJSON, bom)
		},
		ourReasons: []string{ReasonTokenInvalid, ReasonVerificationFailed},
	},
	{
		name:  "case-variant-member",
		dirs:  weReject | reasonDiffers,
		token: "a header member or claim we read also appears under a case variant of its name (`SUB`, `EXP`, `TYP`, ...)",
		ours:  "rejects (`token-invalid` / `token-verification-failed`)",
		clerk: "reads the exact lower-case name and ignores the variant",
		why:   "encoding/json, which a Go service re-reading the token may use, matches member names case-insensitively; refusing variants keeps it from reading `SUB` where every other parser reads `sub`, so one token can never name two users.",
		match: func(tv *tokenView) bool {
			return hasCaseVariant(tv.header, headerMembers) || hasCaseVariant(tv.payload, claimMembers)
		},
		ourReasons: []string{ReasonTokenInvalid, ReasonVerificationFailed},
	},
	{
		name:  "empty-subject",
		dirs:  weReject,
		token: "`sub` is the empty string",
		ours:  "rejects (`token-verification-failed`)",
		clerk: "accepts: it only checks that `sub` is a string",
		why:   "an authenticated request without a user id would reach the upstream looking anonymous (forward_header skips empty values) while passing every requirement that does not name the user.",
		match: func(tv *tokenView) bool {
			sub, ok := tv.payload["sub"].(string)
			return ok && sub == ""
		},
		ourReasons: []string{ReasonVerificationFailed},
	},
	{
		name:  "repeated-member",
		dirs:  weReject | reasonDiffers,
		token: "a top-level member name appears twice in the header or the payload (`sub`, `exp`, `alg`, ...)",
		ours:  "rejects (`token-invalid` / `token-verification-failed`)",
		clerk: "keeps the last value (`JSON.parse`) and judges the token by it",
		why:   "parsers disagree on which copy wins (first, last, or an error), so one signed token could name one user to us and another to a log or an upstream that re-parses it.",
		match: func(tv *tokenView) bool {
			return hasRepeatedMember(tv.headerJSON) || hasRepeatedMember(tv.payloadJSON)
		},
		ourReasons: []string{ReasonTokenInvalid, ReasonVerificationFailed},
	},
	{
		name:       "invalid-utf8",
		dirs:       weReject,
		token:      "the header or payload is not valid UTF-8",
		ours:       "rejects (`token-invalid` / `token-verification-failed`)",
		clerk:      "accepts: `TextDecoder` replaces each maximal invalid sequence with one U+FFFD",
		why:        "encoding/json (behind the claim placeholders, and in Go services) replaces each invalid byte instead, so the two would read different users out of one token. Clerk never emits invalid UTF-8.",
		match:      func(tv *tokenView) bool { return !utf8.Valid(tv.headerJSON) || !utf8.Valid(tv.payloadJSON) },
		ourReasons: []string{ReasonTokenInvalid, ReasonVerificationFailed},
	},
}

var timeClaims = []string{"exp", "nbf", "iat"}

// tokenView is a token decoded as leniently as anyone might (padding, CR/LF
// and a BOM tolerated, duplicate members last-wins), for the predicates.
type tokenView struct {
	raw                     string
	issuer                  string
	audiences               []string // the configured audience; nil = none
	headerJSON, payloadJSON []byte
	header, payload         map[string]any // nil when not a JSON object
}

func newTokenView(raw, issuer string, audiences []string) *tokenView {
	tv := &tokenView{raw: raw, issuer: issuer, audiences: audiences}
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return tv
	}
	tv.headerJSON, tv.header = lenientSegment(segs[0])
	tv.payloadJSON, tv.payload = lenientSegment(segs[1])
	return tv
}

func lenientSegment(seg string) ([]byte, map[string]any) {
	seg = strings.NewReplacer("\r", "", "\n", "", "=", "").Replace(seg)
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(b, []byte("\uFEFF"))))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return b, nil
	}
	return b, m
}

// number returns a claim that is a JSON number as JavaScript would read it:
// out-of-range literals become ±Inf.
func (tv *tokenView) number(name string) (float64, bool) {
	n, ok := tv.payload[name].(json.Number)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true
}

// jsDateFinite reports whether new Date(0).setUTCSeconds(v) is a valid date:
// v is truncated to whole seconds, and ECMAScript time values end at 8.64e15
// ms either side of the epoch.
func jsDateFinite(v float64) bool {
	return !math.IsInf(v, 0) && !math.IsNaN(v) && math.Abs(math.Trunc(v)*1000) <= 8.64e15
}

// namesAudience reports whether aud, as decoded into tokenView, is a string
// or an array of strings that holds one of want.
func namesAudience(aud any, want []string) bool {
	switch aud := aud.(type) {
	case string:
		return slices.Contains(want, aud)
	case []any:
		named := false
		for _, a := range aud {
			s, ok := a.(string)
			if !ok {
				return false
			}
			named = named || slices.Contains(want, s)
		}
		return named
	}
	return false
}

func wrongType(m map[string]any, name string) bool {
	v, ok := m[name]
	if !ok || v == nil {
		return false
	}
	_, isString := v.(string)
	return !isString
}

// hasRepeatedMember reports a top-level member name given twice in a
// valid JSON object, using the verifier's own reader.
func hasRepeatedMember(obj []byte) bool {
	return json.Valid(obj) && errors.Is(walkObject(string(obj), func(string, string) error { return nil }), errRepeatedMember)
}

// The member names the verifier reads, from its own decoders, so the table
// follows the code.
var (
	headerMembers = slices.Collect(maps.Values(headerNames.folded))
	claimMembers  = slices.Collect(maps.Values(claimNames.folded))
)

func hasCaseVariant(m map[string]any, names []string) bool {
	for k := range m {
		for _, n := range names {
			if k != n && strings.EqualFold(k, n) {
				return true
			}
		}
	}
	return false
}

var updateSecurityMD = flag.Bool("update-security-md", false, "rewrite the differences section of SECURITY.md from the differences table")

const (
	diffBegin = "<!-- BEGIN differences: generated from conformance_test.go; refresh with go test -run TestSecurityMDDifferencesInSync -update-security-md -->\n"
	diffEnd   = "<!-- END differences -->\n"
)

// renderDifferences is the SECURITY.md table of differences.
func renderDifferences() string {
	var s strings.Builder
	s.WriteString("| Name | Token | caddy-clerk-auth | Clerk `verifyToken` | Why |\n| --- | --- | --- | --- | --- |\n")
	for _, d := range differences {
		fmt.Fprintf(&s, "| `%s` | %s | %s | %s | %s |\n", d.name, d.token, d.ours, d.clerk, d.why)
	}
	return s.String()
}

func TestSecurityMDDifferencesInSync(t *testing.T) {
	checkSecurityMDSection(t, diffBegin, diffEnd, renderDifferences(), "TestSecurityMDDifferencesInSync")
}

// checkSecurityMDSection checks that SECURITY.md holds table between begin
// and end, or writes it there with -update-security-md; test names the
// test that refreshes it.
func checkSecurityMDSection(t *testing.T, begin, end, table, test string) {
	t.Helper()
	doc, err := os.ReadFile("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), begin)
	_, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("SECURITY.md lacks the markers %q and %q", begin, end)
	}
	want := before + begin + table + end + after
	if want == string(doc) {
		return
	}
	if *updateSecurityMD {
		if err := os.WriteFile("SECURITY.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("a table of differences from Clerk's SDK in SECURITY.md is out of date: go test -run %s -update-security-md", test)
}

func TestDifferencesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range differences {
		checkDifferenceRow(t, seen, d.name, d.dirs != 0 && d.match != nil, d.token, d.ours, d.clerk, d.why)
	}
}

// checkDifferenceRow checks one row of a table of differences: named
// uniquely (seen holds the names so far), complete, and with cells that
// keep the Markdown table whole.
func checkDifferenceRow(t *testing.T, seen map[string]bool, name string, complete bool, cells ...string) {
	t.Helper()
	if name == "" || seen[name] || !complete || slices.Contains(cells, "") {
		t.Errorf("difference %q is incomplete or duplicated", name)
	}
	seen[name] = true
	for _, c := range cells {
		if strings.ContainsAny(c, "|\n") {
			t.Errorf("difference %q: %q would break the Markdown table", name, c)
		}
	}
}
