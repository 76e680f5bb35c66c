package clerkauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
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

// confAuthorizedParties is the authorized_parties list of both verifiers.
var confAuthorizedParties = []string{clerktest.DefaultAZP, "https://app.example.com"}

// Which way a difference goes.
type direction uint8

const (
	weReject   direction = 1 << iota // we reject, Clerk's verifyToken accepts
	weAccept                         // we accept, Clerk rejects
	subDiffers                       // both accept, for different users
)

func (d direction) String() string {
	switch d {
	case weReject:
		return "we reject, Clerk accepts"
	case weAccept:
		return "we accept, Clerk rejects"
	case subDiffers:
		return "both accept, different sub"
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
		ours:  "rejects (`token-invalid-issuer`, or `token-verification-failed` when `iss` is not a string)",
		clerk: "accepts: `verifyToken` does not check `iss`",
		why:   "Every token class of every Clerk instance is signed with an instance key; with a JWKS shared by several instances, or a key reused across environments, only `iss` ties the token to the instance the site trusts.",
		match: func(tv *tokenView) bool {
			iss, ok := tv.payload["iss"].(string)
			return !ok || strings.TrimSuffix(iss, "/") != tv.issuer
		},
		ourReasons: []string{ReasonInvalidIssuer, ReasonVerificationFailed},
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
		dirs:         weAccept,
		token:        "`alg` is RS384 or RS512, signed by the configured key, verified with `jwt_key`",
		ours:         "accepts: the PEM key is used with any of RS256/RS384/RS512",
		clerk:        "rejects (`token-verification-failed`): the JWK it builds from the PEM has `alg: RS256` hard-coded",
		why:          "Same key, same RSASSA-PKCS1-v1_5 padding, a longer hash: nothing an attacker without the private key can use. The algorithm family stays pinned (no HMAC, PSS, ECDSA, EdDSA or none). Clerk itself lists RS384/RS512 as valid algorithms and only refuses them here as a side effect of how it converts the PEM.",
		match:        func(tv *tokenView) bool { return tv.header["alg"] == "RS384" || tv.header["alg"] == "RS512" },
		clerkReasons: []string{ReasonVerificationFailed},
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
		dirs:  weReject,
		token: "a header member or claim we read also appears under a case variant of its name (`SUB`, `EXP`, `TYP`, ...)",
		ours:  "rejects (`token-invalid` / `token-verification-failed`)",
		clerk: "reads the exact lower-case name and ignores the variant",
		why:   "encoding/json matches member names case-insensitively; refusing variants keeps it from reading `SUB` where every other parser reads `sub`, so one token can never name two users.",
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
		dirs:  weReject,
		token: "a top-level member name appears twice in the header or the payload (`sub`, `exp`, `alg`, ...)",
		ours:  "rejects (`token-invalid` / `token-verification-failed`)",
		clerk: "keeps the last value (`JSON.parse`)",
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
		why:        "encoding/json replaces each invalid byte instead, so the two would read different users out of one token. Clerk never emits invalid UTF-8.",
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
	headerJSON, payloadJSON []byte
	header, payload         map[string]any // nil when not a JSON object
}

func newTokenView(raw, issuer string) *tokenView {
	tv := &tokenView{raw: raw, issuer: issuer}
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

func wrongType(m map[string]any, name string) bool {
	v, ok := m[name]
	if !ok || v == nil {
		return false
	}
	_, isString := v.(string)
	return !isString
}

// hasRepeatedMember reports a top-level member name given twice, using the
// verifier's own check with a map target (repeats only).
func hasRepeatedMember(obj []byte) bool {
	var m map[string]any
	return json.Unmarshal(obj, &m) == nil && checkMembers(obj, m) != nil
}

// The member names the verifier reads by struct, from the structs
// themselves, so the table follows the code.
var (
	headerMembers = memberNames(&jwtHeader{})
	claimMembers  = memberNames(&claims{})
)

func memberNames(v any) []string {
	var out []string
	for _, name := range fieldNames(reflect.TypeOf(v)) {
		out = append(out, name)
	}
	return out
}

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

// explain returns the first documented difference that accounts for a
// disagreement going dir on tv, or nil.
func explain(tv *tokenView, dir direction, ours, clerk confOutcome) *difference {
	reasonOK := func(allowed []string, o confOutcome) bool {
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

// confOutcome is one verifier's decision on one token.
type confOutcome struct {
	OK     bool    `json:"ok"`
	Reason string  `json:"reason"`
	Sub    *string `json:"sub"`
}

type confCase struct {
	desc, token string
}

// corpusBuilder accumulates the corpus; every token is described so that a
// failure says which edge it was.
type corpusBuilder struct {
	t     *testing.T
	iss   *clerktest.Issuer
	cases []confCase
	descs map[string]bool
}

func (b *corpusBuilder) add(desc, token string) {
	b.t.Helper()
	if b.descs[desc] {
		b.t.Fatalf("corpus: duplicate description %q", desc)
	}
	b.descs[desc] = true
	b.cases = append(b.cases, confCase{desc, token})
}

func (b *corpusBuilder) mint(desc string, opts ...clerktest.Option) {
	b.t.Helper()
	b.add(desc, b.iss.Mint(opts...))
}

// segments signs header and payload JSON given byte for byte (RS256).
func (b *corpusBuilder) segments(desc, header, payload string) {
	b.t.Helper()
	b.add(desc, clerktest.SegmentsJSON(header, payload, b.iss.PrivateKey()))
}

// signRaw signs already-encoded segments exactly as given (RS256), for
// spellings no encoder produces: padding, CR/LF, the standard alphabet.
func (b *corpusBuilder) signRaw(desc, rawHeader, rawPayload string) {
	b.t.Helper()
	input := rawHeader + "." + rawPayload
	d := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, b.iss.PrivateKey(), crypto.SHA256, d[:])
	if err != nil {
		b.t.Fatal(err)
	}
	b.add(desc, input+"."+base64.RawURLEncoding.EncodeToString(sig))
}

// headerJSON is the header Clerk sends, as JSON members without braces.
func (b *corpusBuilder) headerJSON() string {
	return fmt.Sprintf(`"alg":"RS256","cat":%q,"kid":%q,"typ":"JWT"`, catSession, b.iss.KID())
}

// payloadJSON is a valid session payload without the named claims, as JSON
// members without braces.
func (b *corpusBuilder) payloadJSON(omit ...string) string {
	now := testNow.Unix()
	members := []struct{ k, v string }{
		{"azp", strconv.Quote(clerktest.DefaultAZP)},
		{"exp", strconv.FormatInt(now+60, 10)},
		{"iat", strconv.FormatInt(now, 10)},
		{"iss", strconv.Quote(b.iss.URL)},
		{"nbf", strconv.FormatInt(now-10, 10)},
		{"sid", strconv.Quote(clerktest.DefaultSessionID)},
		{"sub", strconv.Quote(clerktest.DefaultSubject)},
	}
	var parts []string
	for _, m := range members {
		if !slices.Contains(omit, m.k) {
			parts = append(parts, strconv.Quote(m.k)+":"+m.v)
		}
	}
	return strings.Join(parts, ",")
}

func obj(members ...string) string {
	var kept []string
	for _, m := range members {
		if m != "" {
			kept = append(kept, m)
		}
	}
	return "{" + strings.Join(kept, ",") + "}"
}

// buildCorpus generates tokens across every header and claim edge we know
// of. Times are relative to testNow, the clock both verifiers are pinned to.
func buildCorpus(t *testing.T, iss *clerktest.Issuer) []confCase {
	b := &corpusBuilder{t: t, iss: iss, descs: map[string]bool{}}
	now := testNow.Unix()
	pem := []byte(iss.PublicKeyPEM())
	good := iss.Mint()
	hdr, pay := b.headerJSON(), b.payloadJSON()

	// Token classes.
	b.mint("v1 session")
	b.mint("template", clerktest.Template())
	b.mint("template with sid", clerktest.Template(), claimsOpt("sid", "sess_x"))
	b.mint("template with aud and custom claims", clerktest.Template(),
		claimsOpt("aud", "api", "roles", []string{"admin"}, "metadata", map[string]any{"tier": "gold"}))
	b.mint("M2M (cat and mch_ sub)", clerktest.M2M())
	b.mint("M2M cat, user sub", clerktest.M2M(), claimsOpt("sub", "user_x", "azp", clerktest.DefaultAZP))
	b.mint("mch_ sub, session cat", claimsOpt("sub", "mch_123"))
	b.mint("mch_ sub, no cat", claimsOpt("sub", "mch_123"), headerOpt("cat", nil))
	b.mint("MCH_ sub (other case)", claimsOpt("sub", "MCH_123"))
	b.mint("OAuth typ at+jwt", headerOpt("typ", "at+jwt"))
	b.mint("OAuth typ application/at+jwt", headerOpt("typ", "application/at+jwt"))

	// alg: only RS256/384/512 exist for Clerk; everything else is refused.
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
		"none", "None", "NONE", "nOnE", "", "rs256", "RS256 ", "RS1", "HS1"} {
		b.mint("alg "+strconv.Quote(alg)+" signed as such", clerktest.WithAlg(alg))
	}
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		b.mint(alg+" keyed with the PEM (key confusion)", clerktest.WithAlg(alg), clerktest.WithHMACSecret(pem))
		b.mint(alg+" keyed with the trimmed PEM", clerktest.WithAlg(alg),
			clerktest.WithHMACSecret(bytes.TrimSpace(pem)))
	}
	b.mint("header says RS256, signed PS256", clerktest.WithAlg("PS256"), headerOpt("alg", "RS256"))
	b.mint("header says RS256, signed RS512", clerktest.WithAlg("RS512"), headerOpt("alg", "RS256"))
	b.mint("header says RS384, signed RS256", headerOpt("alg", "RS384"))
	b.mint("header says none, signed RS256", headerOpt("alg", "none"))
	for desc, v := range map[string]any{"missing": nil, "number": 256, "array": []string{"RS256"}, "object": map[string]any{}} {
		b.mint("alg "+desc, headerOpt("alg", v))
	}
	other, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	b.mint("signed by another key", clerktest.WithKey(other))
	b.mint("RS512 signed by another key", clerktest.WithAlg("RS512"), clerktest.WithKey(other))
	b.mint("signed by another key, kid unchanged", clerktest.WithKey(other), headerOpt("kid", iss.KID()))

	// typ.
	for desc, v := range map[string]any{"missing": nil, "jwt": "jwt", "JWS": "JWS", "empty": "", "JWT with space": "JWT ",
		"application/jwt": "application/jwt", "number": 1, "array": []string{"JWT"}, "true": true} {
		b.mint("typ "+desc, headerOpt("typ", v))
	}
	b.segments("typ null", obj(b.headerJSON(), `"typ":null`), obj(pay))
	b.segments("typ escaped J\\u0057T", obj(`"alg":"RS256"`, `"typ":"J\u0057T"`), obj(pay))
	b.segments("typ with spaces around the value", `{"alg":"RS256", "typ" : "JWT" }`, obj(pay))

	// cat.
	for desc, v := range map[string]any{"missing": nil, "ignore": clerktest.CatIgnore, "template": clerktest.CatTemplate,
		"unknown category": "cl_B7d4PD444AAA", "empty": "", "upper-cased session": strings.ToUpper(catSession),
		"number": 1, "array": []string{catSession}} {
		b.mint("cat "+desc, headerOpt("cat", v))
	}
	b.mint("cat ignore, no sid (template by claims)", headerOpt("cat", clerktest.CatIgnore), claimsOpt("sid", nil))
	b.mint("cat missing, no sid", headerOpt("cat", nil), claimsOpt("sid", nil))
	b.segments("cat null", obj(`"alg":"RS256"`, `"typ":"JWT"`, `"cat":null`), obj(pay))

	// kid: the PEM key is used whatever kid says, on both sides.
	for desc, v := range map[string]any{"missing": nil, "empty": "", "other instance": "ins_other", "number": 1,
		"array": []string{"a"}, "long": strings.Repeat("k", 2000), "path": "../../etc/passwd", "unicode": "ключ"} {
		b.mint("kid "+desc, headerOpt("kid", v))
	}
	b.segments("kid null", obj(`"alg":"RS256"`, `"typ":"JWT"`, `"kid":null`), obj(pay))

	// crit and unknown header parameters.
	for desc, v := range map[string]any{"[exp]": []string{"exp"}, "empty array": []string{}, "string": "x", "[b64]": []string{"b64"}} {
		b.mint("crit "+desc, headerOpt("crit", v))
	}
	b.segments("crit null", obj(hdr, `"crit":null`), obj(pay))
	b.mint("unknown header params oiat and x5u", headerOpt("oiat", now, "x5u", "https://evil.example/keys"))
	b.mint("jku pointing elsewhere", headerOpt("jku", "https://evil.example/jwks.json"))
	b.mint("embedded jwk", headerOpt("jwk", map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"}))

	// sub.
	for desc, v := range map[string]any{"missing": nil, "number": 42, "empty": "", "array": []string{"user_x"},
		"object": map[string]any{"id": "user_x"}, "true": true, "unicode": "user_ü", "long": "user_" + strings.Repeat("x", 4000),
		"with NUL": "user_\x00x", "with newline": "user_\nx"} {
		b.mint("sub "+desc, claimsOpt("sub", v))
	}
	b.segments("sub null", obj(hdr), obj(b.payloadJSON("sub"), `"sub":null`))
	b.segments("sub lone surrogate escape", obj(hdr), obj(b.payloadJSON("sub"), `"sub":"user_\ud800"`))
	b.segments("sub with invalid UTF-8", obj(hdr), obj(b.payloadJSON("sub"), "\"sub\":\"user_\xe2\x82\""))
	b.segments("sub with a lone continuation byte", obj(hdr), obj(b.payloadJSON("sub"), "\"sub\":\"user_\x80\x80\""))

	// Time claims: offsets from now across the 5 s leeway boundaries, then
	// values no clock produces. exp fails at <= now-5, nbf and iat at > now+5.
	offsets := []float64{-86400, -6, -5.5, -5.001, -5, -4.999, -4.5, -4, -1, -0.5, 0, 0.5, 1, 4, 4.5, 4.999, 5, 5.001, 5.5, 6, 60, 86400}
	for _, name := range timeClaims {
		for _, off := range offsets {
			b.mint(fmt.Sprintf("%s now%+g", name, off), claimsOpt(name, float64(now)+off))
		}
		for _, v := range []float64{0, -1, 1, 1e-300, 1e300, -1e300, 8.64e12, 8.64e12 + 1, -8.64e12, -8.64e12 - 1, 9.2e18, math.MaxFloat64} {
			b.mint(fmt.Sprintf("%s %g", name, v), claimsOpt(name, v))
		}
		for desc, v := range map[string]any{"string": strconv.FormatInt(now+60, 10), "true": true, "array": []int64{now + 60},
			"object": map[string]any{"t": now + 60}} {
			b.mint(name+" "+desc, claimsOpt(name, v))
		}
		for _, lit := range []string{"null", "1e400", "-1e400", "-0", "1.8e9", "9007199254740993", "1.80000006e9", "1800000060.0000001"} {
			b.segments(name+" literal "+lit, obj(hdr), obj(b.payloadJSON(name), fmt.Sprintf("%q:%s", name, lit)))
		}
		b.mint(name+" missing", claimsOpt(name, nil))
	}
	b.mint("exp before nbf", claimsOpt("exp", now+10, "nbf", now+20))
	b.mint("only sub and exp", claimsOpt("iat", nil, "nbf", nil, "sid", nil), headerOpt("cat", nil))
	b.mint("exp far future (10 years)", claimsOpt("exp", now+10*365*86400))
	b.mint("expired an hour ago, iat two hours ago", claimsOpt("iat", now-7200, "nbf", now-7200, "exp", now-3600))

	// azp.
	for desc, v := range map[string]any{"missing": nil, "empty": "", "second authorized party": "https://app.example.com",
		"trailing slash": "https://app.example.com/", "look-alike suffix": "https://app.example.com.evil.com",
		"look-alike prefix": "https://evil-app.example.com", "upper-case scheme": "HTTP://localhost:3000",
		"trailing space": clerktest.DefaultAZP + " ", "other port": "http://localhost:3001", "number": 42,
		"array": []string{clerktest.DefaultAZP}, "true": true} {
		b.mint("azp "+desc, claimsOpt("azp", v))
	}
	b.segments("azp null", obj(hdr), obj(b.payloadJSON("azp"), `"azp":null`))

	// iss.
	for desc, v := range map[string]any{"missing": nil, "empty": "", "trailing slash": iss.URL + "/",
		"double trailing slash": iss.URL + "//", "other instance": "https://clerk.other.example", "with path": iss.URL + "/x",
		"upper-case": strings.ToUpper(iss.URL), "https variant": strings.Replace(iss.URL, "http:", "https:", 1),
		"number": 42, "array": []string{iss.URL}} {
		b.mint("iss "+desc, claimsOpt("iss", v))
	}
	b.segments("iss null", obj(hdr), obj(b.payloadJSON("iss"), `"iss":null`))

	// aud: no audience is configured on either side, so it is never read.
	for desc, v := range map[string]any{"string": "api", "array": []string{"a", "b"}, "empty array": []string{},
		"number": 42, "object": map[string]any{"x": 1}} {
		b.mint("aud "+desc, claimsOpt("aud", v))
	}

	// sid and other session claims.
	for desc, v := range map[string]any{"missing": nil, "number": 7, "empty": "", "array": []string{"s"}} {
		b.mint("sid "+desc, claimsOpt("sid", v))
	}
	for desc, v := range map[string]any{"pending": "pending", "active": "active", "PENDING": "PENDING", "number": 1,
		"array": []string{"pending"}} {
		b.mint("sts "+desc, claimsOpt("sts", v))
	}
	b.mint("v2 pending session", clerktest.V2(clerktest.OrgV2{ID: "org_1", Slug: "acme", Role: "admin"}), claimsOpt("sts", "pending"))
	b.mint("impersonated (act)", claimsOpt("act", map[string]any{"sub": "user_admin"}))

	// v2 claims and org permissions: never part of the verify decision.
	for i, c := range []struct{ per, fpm, fea string }{
		{"manage,read", "3", "o:dashboard"},
		{"manage,read", "3,2", "o:a,u:b"},
		{"manage,read", "1", "u:a,o:b"},
		{"x", "abc", "o:a"},
		{"x", "-1", "o:a"},
		{"x", "1,1,1", "o:a"},
		{"x", "340282366920938463463374607431768211455", "o:a"},
		{"", "", ""},
	} {
		b.mint(fmt.Sprintf("v2 org permissions #%d", i), clerktest.V2(clerktest.OrgV2{ID: "org_1", Slug: "acme", Role: "admin", Per: c.per, Fpm: c.fpm}),
			claimsOpt("fea", c.fea, "pla", "u:pro"))
	}
	b.mint("v2 without org", clerktest.V2(clerktest.OrgV2{}))
	b.mint("v2 with v1 org claims too", clerktest.V2(clerktest.OrgV2{ID: "org_1"}), clerktest.V1Org("org_2", "b", "org:admin", "org:x:y"))
	for desc, v := range map[string]any{"3": 3, "string 2": "2", "0": 0} {
		b.mint("v "+desc, clerktest.V2(clerktest.OrgV2{ID: "org_1"}), claimsOpt("v", v))
	}
	b.mint("o not an object", claimsOpt("v", 2, "o", "org_1"))
	b.mint("fea not a string", claimsOpt("v", 2, "fea", []string{"o:a"}))
	b.mint("v1 org", clerktest.V1Org("org_1", "acme", "org:admin", "org:billing:manage"))

	// Duplicate members: JSON.parse and encoding/json both keep the last.
	b.segments("duplicate sub", obj(hdr), obj(pay, `"sub":"user_second"`))
	b.segments("duplicate exp, last expired", obj(hdr), obj(pay, fmt.Sprintf(`"exp":%d`, now-100)))
	b.segments("duplicate exp, first expired", obj(hdr), obj(fmt.Sprintf(`"exp":%d`, now-100), pay))
	b.segments("duplicate iss, last foreign", obj(hdr), obj(pay, `"iss":"https://clerk.other.example"`))
	b.segments("duplicate azp, first foreign", obj(hdr), obj(`"azp":"https://evil.example"`, pay))
	b.segments("duplicate alg, last none", obj(hdr, `"alg":"none"`), obj(pay))
	b.segments("duplicate alg, first none", obj(`"alg":"none"`, hdr), obj(pay))
	b.segments("duplicate typ, last at+jwt", obj(hdr, `"typ":"at+jwt"`), obj(pay))
	b.segments("duplicate cat, last M2M", obj(hdr, fmt.Sprintf("%q:%q", "cat", clerktest.CatM2M)), obj(pay))
	b.segments("duplicate cat, first M2M", obj(fmt.Sprintf("%q:%q", "cat", clerktest.CatM2M), hdr), obj(pay))

	// Case variants: JavaScript sees different members, encoding/json the same.
	b.segments("Sub instead of sub", obj(hdr), obj(b.payloadJSON("sub"), `"Sub":"user_upper"`))
	b.segments("sub then SUB", obj(hdr), obj(pay, `"SUB":"user_upper"`))
	b.segments("EXP expired after exp", obj(hdr), obj(pay, fmt.Sprintf(`"EXP":%d`, now-100)))
	b.segments("Exp instead of exp", obj(hdr), obj(b.payloadJSON("exp"), fmt.Sprintf(`"Exp":%d`, now+60)))
	b.segments("ISS foreign after iss", obj(hdr), obj(pay, `"ISS":"https://clerk.other.example"`))
	b.segments("Alg instead of alg", obj(fmt.Sprintf(`"Alg":"RS256","typ":"JWT","kid":%q`, iss.KID())), obj(pay))
	b.segments("TYP at+jwt after typ", obj(hdr, `"TYP":"at+jwt"`), obj(pay))
	b.segments("Cat M2M after cat", obj(hdr, fmt.Sprintf(`"Cat":%q`, clerktest.CatM2M)), obj(pay))
	b.segments("Crit present", obj(hdr, `"Crit":["exp"]`), obj(pay))
	b.segments("Sts pending", obj(hdr), obj(pay, `"Sts":"pending"`))

	// JSON that is not a plain object, or not JSON.
	for desc, p := range map[string]string{"array": `[1,2]`, "null": `null`, "number": `42`, "string": `"x"`,
		"empty object": `{}`, "not JSON": `garbage`, "empty": ``, "trailing comma": obj(pay)[:len(obj(pay))-1] + ",}",
		"trailing garbage": obj(pay) + " x", "two objects": obj(pay) + obj(pay), "surrounding whitespace": " \n\t" + obj(pay) + "\r\n ",
		"BOM": "\uFEFF" + obj(pay), "deep nesting": obj(pay, `"deep":`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)),
		"__proto__ member": obj(pay, `"__proto__":{"sub":"user_proto"}`), "NUL member name": obj(pay, "\"a\\u0000\":1"),
		"single quotes": strings.ReplaceAll(obj(pay), `"`, `'`)} {
		b.segments("payload "+desc, obj(hdr), p)
	}
	for desc, h := range map[string]string{"array": `["RS256"]`, "null": `null`, "number": `1`, "empty object": `{}`,
		"not JSON": `RS256`, "BOM": "\uFEFF" + obj(hdr), "trailing garbage": obj(hdr) + "x", "invalid UTF-8 member": obj(hdr, "\"x\":\"\xff\"")} {
		b.segments("header "+desc, h, obj(pay))
	}

	// Signatures and segments.
	parts := strings.Split(good, ".")
	sig := parts[2]
	b.add("signature truncated by one char", parts[0]+"."+parts[1]+"."+sig[:len(sig)-1])
	b.add("signature truncated by 3 bytes", truncateSignature(good))
	b.add("signature empty", parts[0]+"."+parts[1]+".")
	b.add("signature one char", parts[0]+"."+parts[1]+".A")
	b.add("signature with one flipped char", parts[0]+"."+parts[1]+"."+flipChar(sig, len(sig)/2))
	b.add("signature last char changed (non-canonical trailing bits)", parts[0]+"."+parts[1]+"."+sig[:len(sig)-1]+nextB64(sig[len(sig)-1]))
	b.add("signature extended by AAAA", good+"AAAA")
	b.add("signature with == padding", good+"==")
	b.add("signature in standard base64", parts[0]+"."+parts[1]+"."+base64.RawStdEncoding.EncodeToString(mustB64(t, sig)))
	b.add("signature of another token", swapPayload(good, iss.Mint(claimsOpt("sub", "user_other"))))
	b.add("payload swapped from a forged token", swapPayload(good, iss.Mint(claimsOpt("sub", "user_admin"), clerktest.WithKey(other))))
	b.add("signature doubled", good+sig)
	b.add("two segments", parts[0]+"."+parts[1])
	b.add("four segments (trailing dot)", good+".")
	b.add("four segments", good+"."+sig)
	b.add("one segment", parts[1])
	b.add("empty token", "")
	b.add("only dots", "..")
	b.add("leading space", " "+good)
	b.add("trailing space", good+" ")
	b.add("trailing tab", good+"\t")
	b.add("trailing NUL", good+"\x00")
	b.add("NUL inside the signature", parts[0]+"."+parts[1]+"."+sig[:10]+"\x00"+sig[10:])
	b.add("Bearer prefix kept", "Bearer "+good)
	b.add("trailing LF", good+"\n")
	b.add("CRLF inside the signature", parts[0]+"."+parts[1]+"."+sig[:20]+"\r\n"+sig[20:])
	b.signRaw("LF inside the signed payload", parts[0], parts[1][:8]+"\n"+parts[1][8:])
	b.signRaw("padded header, signed as padded", padB64(parts[0]), parts[1])
	b.signRaw("padded payload, signed as padded", parts[0], padB64(parts[1]))
	b.signRaw("payload in standard base64, signed as such", parts[0], stdB64(t, b.payloadJSON(), `"x":"???>>>"`))
	b.signRaw("header with a non-canonical last char", nonCanonical(t, obj(hdr)), parts[1])
	b.signRaw("percent-encoded payload", parts[0], strings.ReplaceAll(parts[1], "A", "%41"))

	// Size: a template can be large, but not unboundedly.
	b.mint("15 KiB template", clerktest.Template(), claimsOpt("blob", strings.Repeat("x", 11<<10)))
	b.mint("17 KiB template", clerktest.Template(), claimsOpt("blob", strings.Repeat("x", 13<<10)))
	b.mint("64 KiB template", clerktest.Template(), claimsOpt("blob", strings.Repeat("x", 48<<10)))
	return b.cases
}

func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// nextB64 is the base64url character after c: as the last character of a
// segment it changes only bits that fall outside the decoded bytes, unless
// the length is a multiple of 4.
func nextB64(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return string(alphabet[(strings.IndexByte(alphabet, c)+1)%64])
}

func mustB64(t *testing.T, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func padB64(s string) string { return s + strings.Repeat("=", (4-len(s)%4)%4) }

// stdB64 encodes the JSON object of members with the standard alphabet,
// after finding a value for which it contains '+' or '/'.
func stdB64(t *testing.T, members ...string) string {
	for i := 0; i < 64; i++ {
		s := base64.RawStdEncoding.EncodeToString([]byte(obj(append(members, fmt.Sprintf(`"pad":"%s"`, strings.Repeat("?", i)))...)))
		if strings.ContainsAny(s, "+/") {
			return s
		}
	}
	t.Fatal("no standard-alphabet encoding with + or /")
	return ""
}

// nonCanonical encodes s with a last character whose unused low bits are
// set: loose decoders read the same bytes, strict ones refuse it.
func nonCanonical(t *testing.T, s string) string {
	for pad := ""; len(pad) < 3; pad += " " {
		enc := base64.RawURLEncoding.EncodeToString([]byte(s + pad))
		if len(enc)%4 != 0 {
			return enc[:len(enc)-1] + nextB64(enc[len(enc)-1])
		}
	}
	t.Fatal("no encoding with spare bits")
	return ""
}

// runOurs verifies every token with our verifier, set up as the Caddyfile
// `jwt_key <pem>`, `issuer <corpus issuer>`, `authorized_parties ...` would.
func runOurs(iss *clerktest.Issuer, cases []confCase) []confOutcome {
	v := newVerifier(staticKey{pub: &iss.PrivateKey().PublicKey}, verifierConfig{
		issuers:           []string{iss.URL},
		authorizedParties: confAuthorizedParties,
		leeway:            defaultLeeway,
	})
	v.now = func() time.Time { return testNow }
	out := make([]confOutcome, len(cases))
	for i, c := range cases {
		id, err := v.verify(context.Background(), c.token)
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) {
				out[i] = confOutcome{Reason: "not a VerifyError: " + err.Error()}
				continue
			}
			out[i] = confOutcome{Reason: ve.Reason}
			continue
		}
		out[i] = confOutcome{OK: true, Sub: &id.UserID}
	}
	return out
}

// runClerk runs conformance/verify.mjs over the corpus.
func runClerk(t *testing.T, iss *clerktest.Issuer, cases []confCase) []confOutcome {
	type tok struct {
		ID    int    `json:"id"`
		Token string `json:"token"`
	}
	corpus := struct {
		PEM               string   `json:"pem"`
		AuthorizedParties []string `json:"authorizedParties"`
		ClockSkewInMs     int64    `json:"clockSkewInMs"`
		Now               int64    `json:"now"`
		Tokens            []tok    `json:"tokens"`
	}{iss.PublicKeyPEM(), confAuthorizedParties, defaultLeeway.Milliseconds(), testNow.UnixMilli(), nil}
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
		confOutcome
	}
	if err := json.Unmarshal(stdout, &results); err != nil {
		t.Fatalf("verify.mjs output is not JSON: %v\n%.2000s", err, stdout)
	}
	if len(results) != len(cases) {
		t.Fatalf("verify.mjs answered %d tokens, want %d", len(results), len(cases))
	}
	out := make([]confOutcome, len(cases))
	for i, r := range results {
		if r.ID != i {
			t.Fatalf("verify.mjs answer %d is for token %d", i, r.ID)
		}
		out[i] = r.confOutcome
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

func TestConformanceWithClerkSDK(t *testing.T) {
	conformanceReady(t)
	iss := clerktest.Start(t)
	iss.SetNow(func() time.Time { return testNow })
	cases := buildCorpus(t, iss)
	if len(cases) < 300 {
		t.Fatalf("corpus has %d tokens, want at least 300", len(cases))
	}
	ours := runOurs(iss, cases)
	clerk := runClerk(t, iss, cases)

	counts := map[string]int{}
	reasonPairs := map[string]int{}
	var undocumented, explained []string
	for i, c := range cases {
		o, k := ours[i], clerk[i]
		var dir direction
		switch {
		case o.OK && k.OK && *o.Sub == derefOr(k.Sub, "<none>"):
			counts["agree-accept"]++
			continue
		case !o.OK && !k.OK:
			counts["agree-reject"]++
			if o.Reason != k.Reason {
				reasonPairs[fmt.Sprintf("%-34s %s", o.Reason, k.Reason)]++
			}
			continue
		case o.OK && k.OK:
			dir = subDiffers
		case o.OK:
			dir = weAccept
		default:
			dir = weReject
		}
		tv := newTokenView(c.token, iss.URL)
		if d := explain(tv, dir, o, k); d != nil {
			counts["documented: "+d.name]++
			explained = append(explained, fmt.Sprintf("  %-26s %s", d.name, c.desc))
			continue
		}
		undocumented = append(undocumented, fmt.Sprintf("%s (%s): ours ok=%t reason=%q sub=%q; clerk ok=%t reason=%q sub=%q",
			c.desc, dir, o.OK, o.Reason, derefOr(o.Sub, ""), k.OK, k.Reason, derefOr(k.Sub, "")))
	}

	var table strings.Builder
	fmt.Fprintf(&table, "agreement with @clerk/backend %s over %d tokens:\n", clerkSDKVersion(t), len(cases))
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&table, "  %-40s %4d\n", k, counts[k])
	}
	fmt.Fprintf(&table, "reason mismatches among agree-reject (ours, Clerk's):\n")
	for _, k := range slices.Sorted(maps.Keys(reasonPairs)) {
		fmt.Fprintf(&table, "  %s  %d\n", k, reasonPairs[k])
	}
	slices.Sort(explained)
	fmt.Fprintf(&table, "documented differences, by token:\n%s\n", strings.Join(explained, "\n"))
	t.Log("\n" + table.String())
	if counts["agree-accept"] < 50 {
		t.Errorf("only %d tokens accepted by both: the corpus or the setup is broken", counts["agree-accept"])
	}
	for _, u := range undocumented {
		t.Errorf("undocumented difference: %s", u)
	}
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
	doc, err := os.ReadFile("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), diffBegin)
	_, after, ok2 := strings.Cut(rest, diffEnd)
	if !ok1 || !ok2 {
		t.Fatalf("SECURITY.md lacks the markers %q and %q", diffBegin, diffEnd)
	}
	want := before + diffBegin + renderDifferences() + diffEnd + after
	if want == string(doc) {
		return
	}
	if *updateSecurityMD {
		if err := os.WriteFile("SECURITY.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Error("SECURITY.md's list of differences from Clerk's SDK is out of date: go test -run TestSecurityMDDifferencesInSync -update-security-md")
}

func TestDifferencesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range differences {
		if d.name == "" || seen[d.name] || d.dirs == 0 || d.match == nil || d.token == "" || d.ours == "" || d.clerk == "" || d.why == "" {
			t.Errorf("difference %q is incomplete or duplicated", d.name)
		}
		seen[d.name] = true
		for _, f := range []string{d.token, d.ours, d.clerk, d.why} {
			if strings.ContainsAny(f, "|\n") {
				t.Errorf("difference %q: %q would break the Markdown table", d.name, f)
			}
		}
	}
}

// TestVerifyRefusesParserAmbiguities pins, without node, the refusals that
// keep our reading of a token the same as every other parser's: each of
// these tokens is correctly signed.
func TestVerifyRefusesParserAmbiguities(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)
	now := testNow.Unix()
	b := &corpusBuilder{t: t, iss: iss, descs: map[string]bool{}}
	hdr, pay := obj(b.headerJSON()), b.payloadJSON()
	good := iss.Mint()
	key := iss.PrivateKey()
	tests := []struct {
		name, token, reason string
	}{
		{"trailing LF", good + "\n", ReasonTokenInvalid},
		{"CRLF in the signature", good[:len(good)-10] + "\r\n" + good[len(good)-10:], ReasonTokenInvalid},
		{"nbf null", clerktest.SegmentsJSON(hdr, obj(b.payloadJSON("nbf"), `"nbf":null`), key), ReasonVerificationFailed},
		{"iat null", clerktest.SegmentsJSON(hdr, obj(b.payloadJSON("iat"), `"iat":null`), key), ReasonVerificationFailed},
		{"SUB after sub", clerktest.SegmentsJSON(hdr, obj(pay, `"SUB":"user_upper"`), key), ReasonVerificationFailed},
		{"Exp instead of exp", clerktest.SegmentsJSON(hdr, obj(b.payloadJSON("exp"), fmt.Sprintf(`"Exp":%d`, now+60)), key), ReasonVerificationFailed},
		{"Kelvin-sign kid", clerktest.SegmentsJSON(obj(hdr, `"\u212Aid":"x"`), obj(pay), key), ReasonTokenInvalid},
		{"PER in o", clerktest.SegmentsJSON(hdr, obj(pay, `"v":2,"o":{"id":"org_1","PER":"admin","fpm":"1"},"fea":"o:a"`), key), ReasonVerificationFailed},
		{"Alg instead of alg", clerktest.SegmentsJSON(`{"Alg":"RS256"}`, obj(pay), key), ReasonTokenInvalid},
		{"invalid UTF-8 in sub", clerktest.SegmentsJSON(hdr, obj(b.payloadJSON("sub"), "\"sub\":\"user_\xe2\x82\""), key), ReasonVerificationFailed},
		{"invalid UTF-8 in the header", clerktest.SegmentsJSON(obj(b.headerJSON(), "\"x\":\"\xff\""), obj(pay), key), ReasonTokenInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.verify(context.Background(), tc.token)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Reason != tc.reason {
				t.Fatalf("err = %v, want reason %s", err, tc.reason)
			}
		})
	}
	// Escaped spellings of the exact names are the same member to every
	// parser, and stay accepted.
	if _, err := v.verify(context.Background(), clerktest.SegmentsJSON(hdr, obj(b.payloadJSON("sub"), `"\u0073ub":"user_x"`), key)); err != nil {
		t.Fatalf("escaped sub: %v", err)
	}
}
