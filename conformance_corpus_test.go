package clerkauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// corpusToken is one token of the corpus and the edge it exercises.
type corpusToken struct {
	desc, token string
}

// corpusBuilder accumulates the corpus; every token is described so that a
// failure says which edge it was.
type corpusBuilder struct {
	t     *testing.T
	iss   *clerktest.Issuer
	cases []corpusToken
	descs map[string]bool
}

func (b *corpusBuilder) add(desc, token string) {
	b.t.Helper()
	if b.descs[desc] {
		b.t.Fatalf("corpus: duplicate description %q", desc)
	}
	b.descs[desc] = true
	b.cases = append(b.cases, corpusToken{desc, token})
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
func buildCorpus(t *testing.T, iss *clerktest.Issuer) []corpusToken {
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
		"array": []string{clerktest.DefaultAZP}, "true": true, "object": map[string]any{"azp": clerktest.DefaultAZP}} {
		b.mint("azp "+desc, claimsOpt("azp", v))
	}
	b.segments("azp null", obj(hdr), obj(b.payloadJSON("azp"), `"azp":null`))

	// iss.
	for desc, v := range map[string]any{"missing": nil, "empty": "", "trailing slash": iss.URL + "/",
		"double trailing slash": iss.URL + "//", "other instance": "https://clerk.other.example", "with path": iss.URL + "/x",
		"upper-case": strings.ToUpper(iss.URL), "https variant": strings.Replace(iss.URL, "http:", "https:", 1),
		"number": 42, "array": []string{iss.URL}, "object": map[string]any{"iss": iss.URL}, "true": true} {
		b.mint("iss "+desc, claimsOpt("iss", v))
	}
	b.segments("iss null", obj(hdr), obj(b.payloadJSON("iss"), `"iss":null`))

	// aud: no audience is configured on either side, so it is never read
	// (buildClaimTypeCorpus configures one).
	for desc, v := range map[string]any{"string": "api", "array": []string{"a", "b"}, "empty array": []string{},
		"number": 42, "object": map[string]any{"x": 1}, "true": true, "array with a non-string": []any{"api", 1}} {
		b.mint("aud "+desc, claimsOpt("aud", v))
	}
	b.segments("aud null", obj(hdr), obj(pay, `"aud":null`))

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

// claimTypesAudience is the audience of TestConformanceClaimTypesWithClerkSDK.
const claimTypesAudience = "api"

// buildClaimTypeCorpus generates tokens, valid but for one claim, whose
// iss, azp or aud is absent, null, empty or of the wrong JSON type, for a
// run with issuer and audience configured on both sides. Every other token
// carries aud claimTypesAudience.
func buildClaimTypeCorpus(t *testing.T, iss *clerktest.Issuer) []corpusToken {
	b := &corpusBuilder{t: t, iss: iss, descs: map[string]bool{}}
	hdr := obj(b.headerJSON())
	aud := claimsOpt("aud", claimTypesAudience)
	audMember := fmt.Sprintf("%q:%q", "aud", claimTypesAudience)

	b.mint("valid, aud a string", aud)
	b.mint("valid, aud an array naming the audience", claimsOpt("aud", []string{"other", claimTypesAudience}))
	for name, good := range map[string]string{"iss": iss.URL, "azp": clerktest.DefaultAZP} {
		for desc, v := range map[string]any{"array": []string{good}, "number": 42, "object": map[string]any{name: good},
			"true": true, "empty": "", "missing": nil, "empty array": []string{}} {
			b.mint(name+" "+desc, aud, claimsOpt(name, v))
		}
		b.segments(name+" null", hdr, obj(b.payloadJSON(name), audMember, fmt.Sprintf("%q:null", name)))
	}
	for desc, v := range map[string]any{"number": 42, "object": map[string]any{"aud": claimTypesAudience},
		"array with a non-string": []any{claimTypesAudience, 1}, "array of numbers": []int{1}, "array with null": []any{claimTypesAudience, nil},
		"empty array": []string{}, "empty": "", "true": true, "missing": nil, "other audience": "other", "array of other audiences": []string{"other"}} {
		b.mint("aud "+desc, claimsOpt("aud", v))
	}
	b.segments("aud null", hdr, obj(b.payloadJSON(), `"aud":null`))
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
