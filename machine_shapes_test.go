package clerkauth

import (
	"encoding/json"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// The shapes of the machine-token differential test
// (machine_conformance_test.go): every JWT token class, and the forms that
// sit between classes, presented to routes that accept each single class
// and mixes of them; then M2M and OAuth JWTs broken one property at a
// time; then, with an audience configured, every form of `aud`. Times are
// relative to testNow, the clock both sides are pinned to.

// machineShape is one token presented to one route.
type machineShape struct {
	desc   string
	token  string
	accept []string // our token classes; Clerk's acceptsToken follows (clerkAccepts)
}

// machineAudience is the audience of the second configuration.
const machineAudience = "https://api.example.com"

// machineRoutes are the accept sets the class-confusion shapes are
// presented to.
var machineRoutes = []struct {
	name   string
	accept []string
}{
	{"session", []string{TokenTypeSession}},
	{"template", []string{TokenTypeTemplate}},
	{"session+template", []string{TokenTypeSession, TokenTypeTemplate}},
	{"m2m", []string{TokenTypeM2M}},
	{"oauth", []string{TokenTypeOAuth}},
	{"api_key", []string{TokenTypeAPIKey}},
	{"m2m+oauth", []string{TokenTypeM2M, TokenTypeOAuth}},
	{"session+m2m", []string{TokenTypeSession, TokenTypeM2M}},
	{"template+oauth", []string{TokenTypeTemplate, TokenTypeOAuth}},
	{"all", []string{TokenTypeSession, TokenTypeTemplate, TokenTypeAPIKey, TokenTypeM2M, TokenTypeOAuth}},
}

type machineShapeBuilder struct {
	t      *testing.T
	iss    *clerktest.Issuer
	shapes []machineShape
	descs  map[string]bool
}

func (b *machineShapeBuilder) add(desc string, accept []string, token string) {
	b.t.Helper()
	if b.descs[desc] {
		b.t.Fatalf("machine shapes: duplicate description %q", desc)
	}
	b.descs[desc] = true
	b.shapes = append(b.shapes, machineShape{desc: desc, token: token, accept: accept})
}

// mint adds a token minted with opts, issued at testNow, to the route.
func (b *machineShapeBuilder) mint(desc string, accept []string, opts ...clerktest.Option) {
	b.t.Helper()
	b.add(desc, accept, b.iss.Mint(append([]clerktest.Option{clerktest.IssuedAt(testNow)}, opts...)...))
}

// classConfusionTokens are the tokens of every class, and the forms between
// classes that Clerk's getMachineTokenType and category checks tell apart.
func classConfusionTokens() []struct {
	name string
	opts []clerktest.Option
} {
	return []struct {
		name string
		opts []clerktest.Option
	}{
		{"session", nil},
		{"session without cat", []clerktest.Option{headerOpt("cat", nil)}},
		{"session with ignore cat", []clerktest.Option{headerOpt("cat", clerktest.CatIgnore)}},
		{"session with empty cat", []clerktest.Option{headerOpt("cat", "")}},
		{"session with null cat", []clerktest.Option{headerOpt("cat", json.RawMessage("null"))}},
		{"template", []clerktest.Option{clerktest.Template()}},
		{"template with sid", []clerktest.Option{clerktest.Template(), claimsOpt("sid", "sess_x")}},
		{"template without cat (no sid)", []clerktest.Option{clerktest.Template(), headerOpt("cat", nil)}},
		{"M2M", []clerktest.Option{clerktest.M2M()}},
		{"M2M without cat", []clerktest.Option{clerktest.M2M(), headerOpt("cat", nil)}},
		{"M2M with session cat", []clerktest.Option{clerktest.M2M(), headerOpt("cat", clerktest.CatSession)}},
		{"M2M with template cat", []clerktest.Option{clerktest.M2M(), headerOpt("cat", clerktest.CatTemplate)}},
		{"M2M cat on a user sub", []clerktest.Option{clerktest.M2M(), claimsOpt("sub", clerktest.DefaultSubject)}},
		{"session with mch_ sub", []clerktest.Option{claimsOpt("sub", "mch_x")}},
		{"OAuth", []clerktest.Option{clerktest.OAuth()}},
		{"OAuth application/at+jwt", []clerktest.Option{clerktest.OAuth(), headerOpt("typ", "application/at+jwt")}},
		{"OAuth with session cat", []clerktest.Option{clerktest.OAuth(), headerOpt("cat", clerktest.CatSession)}},
		{"OAuth with M2M cat", []clerktest.Option{clerktest.OAuth(), headerOpt("cat", clerktest.CatM2M)}},
		{"OAuth with template cat", []clerktest.Option{clerktest.OAuth(), headerOpt("cat", clerktest.CatTemplate)}},
		{"M2M with at+jwt typ", []clerktest.Option{clerktest.M2M(), headerOpt("typ", "at+jwt")}},
		{"OAuth with mch_ sub", []clerktest.Option{clerktest.OAuth(), claimsOpt("sub", "mch_x")}},
		{"unknown cat", []clerktest.Option{headerOpt("cat", "cl_B7d4PD999ZZZ")}},
	}
}

// buildMachineShapes is the shapes of the first configuration: no audience.
func buildMachineShapes(t *testing.T, iss *clerktest.Issuer) []machineShape {
	b := &machineShapeBuilder{t: t, iss: iss, descs: map[string]bool{}}
	forger, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	now := testNow.Unix()
	m2m, oauth := []string{TokenTypeM2M}, []string{TokenTypeOAuth}
	all := machineRoutes[len(machineRoutes)-1].accept

	// Every class and in-between form, to every route.
	for _, tok := range classConfusionTokens() {
		for _, r := range machineRoutes {
			b.mint(tok.name+" to "+r.name, r.accept, tok.opts...)
		}
	}

	// M2M JWTs, one property off, to an M2M route and to a route taking
	// everything; OAuth JWTs likewise.
	for _, c := range []struct {
		class  string
		accept []string
		base   clerktest.Option
	}{
		{"M2M", m2m, clerktest.M2M()},
		{"M2M", all, clerktest.M2M()},
		{"OAuth", oauth, clerktest.OAuth()},
		{"OAuth", all, clerktest.OAuth()},
	} {
		route := "m2m"
		switch {
		case len(c.accept) > 1:
			route = "all"
		case c.class == "OAuth":
			route = "oauth"
		}
		mint := func(desc string, opts ...clerktest.Option) {
			t.Helper()
			b.mint(c.class+" "+desc+" to "+route, c.accept, append([]clerktest.Option{c.base}, opts...)...)
		}
		// Category and type.
		mint("with ignore cat", headerOpt("cat", clerktest.CatIgnore))
		mint("with unknown cat", headerOpt("cat", "cl_B7d4PD999ZZZ"))
		mint("with null cat", headerOpt("cat", json.RawMessage("null")))
		mint("with numeric cat", headerOpt("cat", 333))
		mint("with empty cat", headerOpt("cat", ""))
		mint("with typ JWT", headerOpt("typ", "JWT"))
		mint("without typ", headerOpt("typ", nil))
		mint("with typ jwt", headerOpt("typ", "jwt"))
		mint("with typ JOSE", headerOpt("typ", "JOSE"))
		mint("with typ AT+JWT", headerOpt("typ", "AT+JWT"))
		mint("with null typ", headerOpt("typ", json.RawMessage("null")))
		mint("with empty typ", headerOpt("typ", ""))
		// Signature and algorithm.
		mint("signed by another key", clerktest.WithKey(forger))
		mint("RS384", clerktest.WithAlg("RS384"))
		mint("RS512", clerktest.WithAlg("RS512"))
		mint("PS256", clerktest.WithAlg("PS256"))
		mint("ES256", clerktest.WithAlg("ES256"))
		mint("HS256 with the PEM as secret", clerktest.WithAlg("HS256"), clerktest.WithHMACSecret([]byte(iss.PublicKeyPEM())))
		mint("alg none", clerktest.WithAlg("none"))
		mint("with an unknown kid", headerOpt("kid", "ins_unknown"))
		// Times.
		mint("expired", claimsOpt("exp", now-60))
		mint("expired within leeway", claimsOpt("exp", now-3))
		mint("without exp", claimsOpt("exp", nil))
		mint("with exp a string", claimsOpt("exp", "tomorrow"))
		mint("nbf in the future", claimsOpt("nbf", now+60))
		mint("nbf within leeway", claimsOpt("nbf", now+3))
		mint("iat in the future", claimsOpt("iat", now+60, "nbf", nil))
		mint("iat within leeway", claimsOpt("iat", now+3, "nbf", nil))
		// Issuer, party, audience, ids.
		mint("from another issuer", claimsOpt("iss", "https://clerk.evil.example"))
		mint("without iss", claimsOpt("iss", nil))
		mint("with an unauthorized azp", claimsOpt("azp", "https://evil.example"))
		mint("with an aud (none configured)", claimsOpt("aud", "https://other.example"))
		mint("without jti", claimsOpt("jti", nil))
	}

	// Identity claims of each machine class.
	b.mint("M2M with scopes to m2m", m2m, clerktest.M2M(), claimsOpt("scopes", "mch_a mch_b"))
	b.mint("M2M with scopes and aud to m2m", m2m, clerktest.M2M(), claimsOpt("scopes", "mch_a", "aud", []string{"mch_b"}))
	b.mint("M2M with aud an array to m2m", m2m, clerktest.M2M(), claimsOpt("aud", []string{"mch_a", "mch_b"}))
	b.mint("M2M with scopes spaced twice to m2m", m2m, clerktest.M2M(), claimsOpt("scopes", "mch_a  mch_b"))
	b.mint("M2M with empty scopes to m2m", m2m, clerktest.M2M(), claimsOpt("scopes", ""))
	b.mint("M2M with sub mch_ only to m2m", m2m, clerktest.M2M(), claimsOpt("sub", "mch_"))
	b.mint("M2M with sid to m2m", m2m, clerktest.M2M(), claimsOpt("sid", "sess_x"))
	b.mint("OAuth without sub to oauth", oauth, clerktest.OAuth(), claimsOpt("sub", nil))
	b.mint("OAuth with empty sub to oauth", oauth, clerktest.OAuth(), claimsOpt("sub", ""))
	b.mint("OAuth with numeric sub to oauth", oauth, clerktest.OAuth(), claimsOpt("sub", 42))
	b.mint("OAuth without client_id to oauth", oauth, clerktest.OAuth(), claimsOpt("client_id", nil))
	b.mint("OAuth with scp to oauth", oauth, clerktest.OAuth(), claimsOpt("scp", []string{"read", "write"}, "scope", nil))
	b.mint("OAuth with scp and scope to oauth", oauth, clerktest.OAuth(), claimsOpt("scp", []string{"email"}))
	b.mint("OAuth without scope to oauth", oauth, clerktest.OAuth(), claimsOpt("scope", nil))
	b.mint("OAuth with scope spaced twice to oauth", oauth, clerktest.OAuth(), claimsOpt("scope", "read  write"))
	b.mint("OAuth with sid to oauth", oauth, clerktest.OAuth(), claimsOpt("sid", "sess_x"))
	b.mint("OAuth with an org sub to oauth", oauth, clerktest.OAuth(), claimsOpt("sub", "org_x"))

	// Session-path failures on a route that takes every class.
	b.mint("session expired to all", all, claimsOpt("exp", now-60))
	b.mint("session nbf in the future to all", all, claimsOpt("nbf", now+60))
	b.mint("session with an unauthorized azp to all", all, claimsOpt("azp", "https://evil.example"))
	b.mint("session signed by another key to all", all, clerktest.WithKey(forger))
	b.mint("template expired to all", all, clerktest.Template(), claimsOpt("exp", now-60))
	b.mint("template without cat expired to all", all, clerktest.Template(), headerOpt("cat", nil), claimsOpt("exp", now-60))
	b.mint("session expired to m2m", m2m, claimsOpt("exp", now-60))
	b.mint("M2M expired to session", []string{TokenTypeSession}, clerktest.M2M(), claimsOpt("exp", now-60))
	b.mint("OAuth signed by another key to session", []string{TokenTypeSession}, clerktest.OAuth(), clerktest.WithKey(forger))
	b.mint("M2M signed by another key to oauth", oauth, clerktest.M2M(), clerktest.WithKey(forger))
	return b.shapes
}

// buildMachineAudienceShapes is the shapes of the second configuration:
// audience machineAudience. Every form of `aud` goes to each class's own
// route, and a valid one to a route taking every class.
func buildMachineAudienceShapes(t *testing.T, iss *clerktest.Issuer) []machineShape {
	b := &machineShapeBuilder{t: t, iss: iss, descs: map[string]bool{}}
	all := machineRoutes[len(machineRoutes)-1].accept
	auds := []struct {
		name string
		aud  any
	}{
		{"aud the audience", machineAudience},
		{"aud an array naming the audience", []string{"https://other.example", machineAudience}},
		{"aud another audience", "https://other.example"},
		{"aud an array without the audience", []string{"https://other.example"}},
		{"no aud", nil},
		{"aud empty", ""},
		{"aud an empty array", []string{}},
		{"aud an array with an empty string", []string{"", machineAudience}},
		{"aud a number", 42},
		{"aud an array with a number", []any{machineAudience, 42}},
	}
	for _, c := range []struct {
		class  string
		accept []string
		base   clerktest.Option
	}{
		{"session", []string{TokenTypeSession}, nil},
		{"template", []string{TokenTypeTemplate}, clerktest.Template()},
		{"M2M", []string{TokenTypeM2M}, clerktest.M2M()},
		{"OAuth", []string{TokenTypeOAuth}, clerktest.OAuth()},
	} {
		mint := func(desc string, accept []string, aud any) {
			t.Helper()
			opts := []clerktest.Option{claimsOpt("aud", aud)}
			if c.base != nil {
				opts = append(opts, c.base)
			}
			b.mint(c.class+" with "+desc, accept, opts...)
		}
		for _, a := range auds {
			mint(a.name, c.accept, a.aud)
		}
		mint("aud the audience to all", all, machineAudience)
		mint("another audience to all", all, "https://other.example")
	}
	return b.shapes
}
