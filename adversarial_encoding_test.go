package clerkauth

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// Attacks on how a token is parsed: its segments and base64, its JSON, the
// types of its claims, and its size.

// encodingCases: a JWT is exactly three unpadded base64url segments of a
// JSON object, a JSON object and a signature. Anything else must fail
// before any key is looked up, never be "repaired" into a valid token.
func encodingCases(f *forger) []attackCase {
	h, p, sig := jwsSegments(f.valid)
	// A header whose base64url has '-' or '_': its standard spelling differs.
	var stdHeader string
	for i := 0; ; i++ {
		tok := f.raw(f.baseHeader+fmt.Sprintf(`,"x":"%d>>>???"`, i), `"sub":"user_test",`+f.baseClaims)
		th, tp, ts := jwsSegments(tok)
		if strings.ContainsAny(th, "-_") {
			stdHeader = strings.NewReplacer("-", "+", "_", "/").Replace(th) + "." + tp + "." + ts
			break
		}
	}
	return []attackCase{
		{name: "one segment", header: bearer(h), reason: ReasonTokenInvalid},
		{name: "two segments", header: bearer(h + "." + p), reason: ReasonTokenInvalid},
		{name: "four segments", header: bearer(f.valid + "." + sig), reason: ReasonTokenInvalid},
		{name: "five segments (JWE shape)", header: bearer(h + "..." + p + "." + sig), reason: ReasonTokenInvalid},
		{name: "empty segments", header: bearer(".."), reason: ReasonTokenInvalid},
		{name: "invalid base64 characters in the header", header: bearer("!!!" + h + "." + p + "." + sig), reason: ReasonTokenInvalid},
		{name: "padded header", header: bearer(h + "=." + p + "." + sig), reason: ReasonTokenInvalid},
		// '=' is not a compact-JWS character: refused before any decoding.
		{name: "padded payload", header: bearer(h + "." + p + "==." + sig), reason: ReasonTokenInvalid},
		{name: "standard base64 header", header: bearer(stdHeader), reason: ReasonTokenInvalid},
		{name: "header is not JSON", header: bearer(clerktest.SegmentsJSON("RS256", `{"sub":"user_test"}`, f.iss.PrivateKey())), reason: ReasonTokenInvalid},
		{name: "header with trailing garbage", header: bearer(f.raw(f.baseHeader+`}x{"a":1`, `"sub":"user_test",`+f.baseClaims)), reason: ReasonTokenInvalid},
		{name: "payload is not JSON", header: bearer(clerktest.SegmentsJSON("{"+f.baseHeader+"}", "user_test", f.iss.PrivateKey())), reason: ReasonVerificationFailed},
		{name: "payload is an array", header: bearer(clerktest.SegmentsJSON("{"+f.baseHeader+"}", `[{"sub":"user_test"}]`, f.iss.PrivateKey())), reason: ReasonVerificationFailed},
		{name: "payload with trailing garbage", header: bearer(f.raw(f.baseHeader, `"sub":"user_test",`+f.baseClaims+`}{"sub":"user_admin"`)), reason: ReasonVerificationFailed},
		{name: "space inside the token", header: bearer(h + "." + p + " ." + sig), reason: ReasonTokenInvalid},
		{name: "tab inside the token", header: bearer(h + "." + p + "\t." + sig), reason: ReasonTokenInvalid},
		{name: "non-ASCII byte after the token", header: bearer(f.valid + "\xff"), reason: ReasonTokenInvalid},
		{name: "non-breaking space after Bearer", header: http.Header{"Authorization": {"Bearer\u00a0" + f.valid}}, reason: ReasonTokenInvalid},
		// NUL and bare CR are not allowed in a field value (RFC 9110 §5.5):
		// Go's server answers 400 before any handler runs.
		{name: "NUL byte in the token", raw: rawRequest("GET", "/req/x", "Authorization: Bearer "+h+"."+p+"\x00."+sig), status: http.StatusBadRequest},
		{name: "NUL byte after the token", raw: rawRequest("GET", "/req/x", "Authorization: Bearer "+f.valid+"\x00"), status: http.StatusBadRequest},
		{name: "CR inside the token", raw: rawRequest("GET", "/req/x", "Authorization: Bearer "+h+"\r."+p+"."+sig), status: http.StatusBadRequest},
		{name: "NUL byte in the session cookie", raw: rawRequest("GET", "/req/x", "Cookie: __session="+f.valid+"\x00"), status: http.StatusBadRequest},
	}
}

// duplicateMemberCases: JSON with repeated member names. encoding/json keeps
// the last value of a repeated name AND matches names case-insensitively
// (with Unicode folding: "ſub" is "sub"), while the claim placeholders and
// the claim requirement read the payload as a map, case-sensitively. Without
// a check, {"sub":"user_a","Sub":"user_b"} forwards X-User-Id user_b while
// `claim sub user_a` and {http.auth.user.claims.sub} see user_a; parsers
// that keep the first value (or reject) disagree with both. All these
// tokens carry a valid issuer signature, so only the parse is attacked:
// they must be rejected.
func duplicateMemberCases(f *forger) []attackCase {
	payload := func(members string) http.Header { return bearer(f.raw(f.baseHeader, members+","+f.baseClaims)) }
	header := func(members string) http.Header {
		return bearer(f.raw(members, `"sub":"user_test",`+f.baseClaims))
	}
	return []attackCase{
		{name: "sub twice", header: payload(`"sub":"user_a","sub":"user_b"`), reason: ReasonVerificationFailed},
		{name: "sub and Sub", header: payload(`"sub":"user_a","Sub":"user_b"`), reason: ReasonVerificationFailed},
		{name: "sub and SUB against a sub requirement", path: "/claim-sub/x", header: payload(`"sub":"user_a","SUB":"user_b"`), reason: ReasonVerificationFailed},
		{name: "sub and the long-s ſub", header: payload(`"sub":"user_a","ſub":"user_b"`), reason: ReasonVerificationFailed},
		{name: "only SUB", header: payload(`"SUB":"user_b"`), reason: ReasonVerificationFailed},
		{name: "sub and an escaped s\\u0075b", header: payload(`"sub":"user_a","s\u0075b":"user_b"`), reason: ReasonVerificationFailed},
		{name: "exp twice, past then future", header: bearer(f.raw(f.baseHeader, `"sub":"user_test","iss":"`+targetIssuer+`","azp":"`+targetAZP+`","exp":1,"exp":9999999999`)), reason: ReasonVerificationFailed},
		{name: "iss and ISS", header: payload(`"sub":"user_test","iss":"https://evil.example","ISS":"` + targetIssuer + `"`), reason: ReasonVerificationFailed},
		{name: "alg twice, none then RS256", header: header(`"alg":"none",` + f.baseHeader), reason: ReasonTokenInvalid},
		{name: "alg and ALG", header: header(f.baseHeader + `,"ALG":"RS256"`), reason: ReasonTokenInvalid},
		{name: "kid twice", header: header(`"kid":"attacker",` + f.baseHeader), reason: ReasonTokenInvalid},
		{name: "kid and the Kelvin-sign \u212aid", header: header(f.baseHeader + `,"\u212aid":"attacker"`), reason: ReasonTokenInvalid},
		{name: "crit hidden as CRIT", header: header(f.baseHeader + `,"CRIT":["exp"]`), reason: ReasonTokenInvalid},
		// Repeats inside nested objects are the issuer's business and
		// never decide the identity: the token passes, and the only
		// reader of nested claims (the map behind the claim placeholders
		// and requirements) consistently keeps the last value.
		{name: "nested repeat is not a top-level repeat", header: payload(`"sub":"user_test","metadata":{"plan":"a","plan":"b"}`), status: 200, user: validUser, plan: "b"},
	}
}

// claimTypeCases: registered claims of the wrong type must fail the
// token, not be coerced (a string exp read as 0 or as "never", an array
// sub joined into a user id).
func claimTypeCases(f *forger) []attackCase {
	c := func(kv ...any) http.Header { return bearer(f.mint(claimsOpt(kv...))) }
	raw := func(members string) http.Header { return bearer(f.raw(f.baseHeader, members)) }
	return []attackCase{
		{name: "numeric sub", header: c("sub", 42), reason: ReasonVerificationFailed},
		{name: "array sub", header: c("sub", []string{"user_a", "user_b"}), reason: ReasonVerificationFailed},
		{name: "object sub", header: c("sub", map[string]any{"id": "user_a"}), reason: ReasonVerificationFailed},
		{name: "boolean sub", header: c("sub", true), reason: ReasonVerificationFailed},
		{name: "null sub", header: raw(`"sub":null,` + f.baseClaims), reason: ReasonVerificationFailed},
		// An empty sub would pass as an authenticated request with no
		// identity: X-User-Id absent, as for an anonymous one.
		{name: "empty sub", header: c("sub", ""), reason: ReasonVerificationFailed},
		{name: "string exp", header: c("exp", "9999999999"), reason: ReasonVerificationFailed},
		{name: "boolean exp", header: c("exp", true), reason: ReasonVerificationFailed},
		{name: "exp beyond float64", header: raw(`"sub":"user_test","iss":"` + targetIssuer + `","azp":"` + targetAZP + `","exp":1e400`), reason: ReasonVerificationFailed},
		{name: "exp as a huge integer literal", header: raw(`"sub":"user_test","iss":"` + targetIssuer + `","azp":"` + targetAZP + `","exp":-99999999999999999999999999999999`), reason: ReasonTokenExpired},
		{name: "negative exp", header: c("exp", -1), reason: ReasonTokenExpired},
		{name: "zero exp", header: c("exp", 0), reason: ReasonTokenExpired},
		{name: "missing exp", header: c("exp", nil), reason: ReasonVerificationFailed},
		{name: "string iat", header: c("iat", "0"), reason: ReasonVerificationFailed},
		{name: "object nbf", header: c("nbf", map[string]any{}), reason: ReasonVerificationFailed},
		// iss and azp of the wrong type fail their own checks, with their
		// reason codes, as in Clerk's SDK.
		{name: "numeric iss", header: c("iss", 1), reason: ReasonInvalidIssuer},
		{name: "array iss", header: c("iss", []string{targetIssuer}), reason: ReasonInvalidIssuer},
		{name: "object iss", header: c("iss", map[string]any{"iss": targetIssuer}), reason: ReasonInvalidIssuer},
		{name: "array azp", header: c("azp", []string{targetAZP}), reason: ReasonInvalidAuthorizedPart},
		{name: "numeric azp", header: c("azp", 1), reason: ReasonInvalidAuthorizedPart},
		{name: "numeric sid", header: c("sid", 1), reason: ReasonVerificationFailed},
		// Accepted: valid types, odd but harmless values.
		{name: "exp far in the future", header: c("exp", 1e300), status: 200, user: validUser},
		{name: "negative iat and nbf", header: c("iat", -1e300, "nbf", -1), status: 200, user: validUser},
	}
}

// oversizeCases: huge tokens and headers must be refused early and
// cheaply. Caddy's server limits the header block (16 KiB + Go's slack,
// answered with 431 before any handler); below that, clerk_auth refuses
// tokens over maxTokenSize before parsing them.
func oversizeCases(t *testing.T, f *forger) []attackCase {
	pad := func(n int) string {
		return f.mint(claimsOpt("pad", strings.Repeat("p", n)))
	}
	over := pad(maxTokenSize * 3 / 4) // base64 grows it by 4/3: just over the limit
	for len(over) <= maxTokenSize {
		over = pad(len(over))
	}
	under := pad(maxTokenSize/2 + maxTokenSize/5)
	if len(under) >= maxTokenSize {
		t.Fatalf("padding arithmetic: %d", len(under))
	}
	huge := func(size int, header string) []byte {
		return rawRequest("GET", "/req/x", header+strings.Repeat("a", size))
	}
	mib := huge(1<<20, "Authorization: Bearer ")
	return []attackCase{
		{name: "token just under the limit passes", header: bearer(under), status: 200, user: validUser},
		{name: "token just over the limit", header: bearer(over), reason: ReasonTokenInvalid},
		{name: "64 KiB Authorization", raw: huge(64<<10, "Authorization: Bearer "), status: http.StatusRequestHeaderFieldsTooLarge},
		{name: "1 MiB Authorization", raw: mib, status: http.StatusRequestHeaderFieldsTooLarge},
		{name: "1 MiB session cookie", raw: huge(1<<20, "Cookie: __session="), status: http.StatusRequestHeaderFieldsTooLarge},
		{name: "1 MiB of headers", raw: rawRequest("GET", "/req/x", strings.Repeat("X-User-Id: user_"+forgedMarker+"\r\n", (1<<20)/30)+"X-End: 1"), status: http.StatusRequestHeaderFieldsTooLarge},
		// Memory: ten 1 MiB requests must not cost anything near 10 MiB
		// of allocations: the server stops reading at its limit.
		{name: "1 MiB requests allocate boundedly", status: http.StatusRequestHeaderFieldsTooLarge, send: func(t *testing.T, _ *attackSuite) (*http.Response, string) {
			const n = 10
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var resp *http.Response
			var body string
			for range n {
				resp, body = sendRaw(t, mib)
			}
			runtime.ReadMemStats(&after)
			if d := after.TotalAlloc - before.TotalAlloc; d > n*(1<<20)/2 {
				t.Errorf("%d requests of 1 MiB allocated %d KiB in all", n, d>>10)
			} else {
				t.Logf("%d requests of 1 MiB allocated %d KiB in all", n, d>>10)
			}
			return resp, body
		}},
	}
}
