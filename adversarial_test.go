package clerkauth

import (
	"crypto/rsa"
	"fmt"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// The adversarial suite attacks one real Caddy (see harness_test.go for how
// caddytest runs it) with everything a client can put in a request: forged,
// re-signed, malformed and oversized tokens, look-alike issuers and parties,
// tokens in the wrong place, and forged identity headers. Every case checks
// three things: the status, the reason code ({http.auth.clerk.reason}, read
// from a handle_errors response header or, for requests that pass, from a
// header_up), and that the recording upstream saw nothing forged: no client
// copy of an identity header or of its CGI look-alikes, no literal
// placeholder, and exactly the verified identity. A second "attacker" server
// hosts a JWKS and a certificate for the key-injection cases and must never
// receive a request.
//
// This file holds the driver; adversarial_harness_test.go runs one case and
// checks it, and the adversarial_*_test.go files hold the cases by family.

const (
	targetIssuer = "https://clerk.example.com" // the configured issuer; keys come from the fake via jwks_url
	targetAZP    = "https://app.example.com"   // the configured authorized party
	forgedMarker = "forged"                    // in every client-forged value; must never reach the upstream
	validUser    = clerktest.DefaultSubject    // the subject of every valid token the suite mints
)

// identityHeaders are the headers clerk_auth's forward_header owns in every
// route.
var identityHeaders = []string{"X-User-Id", "X-Org-Id", "X-Plan"}

func TestAdversarial(t *testing.T) {
	f := newForger(t)
	up := startUpstream(t)
	t.Setenv("TEST_CLERK_JWT_KEY", f.iss.PublicKeyPEM())

	route := func(path, extra string, keys string) string {
		if keys == "" {
			keys = "jwks_url " + f.iss.JWKSURL()
		}
		return fmt.Sprintf(`
	route %s {
		clerk_auth {
			issuer %s
			%s
			authorized_parties %s
			forward_header X-User-Id {http.auth.user.id}
			forward_header X-Org-Id {http.auth.user.org_id}
			forward_header X-Plan {http.auth.user.claims.metadata.plan}
			%s
		}
		reverse_proxy %s {
			header_up X-Auth-Reason {http.auth.clerk.reason}
			header_up X-Claims-Sub {http.auth.user.claims.sub}
		}
	}`, path, targetIssuer, keys, targetAZP, extra, up.addr())
	}
	tester := startCaddy(t, fmt.Sprintf(`
:%d {%s%s%s%s%s%s%s%s%s
	handle_errors {
		header X-Reason {http.auth.clerk.reason}
		respond "{err.status_code} {http.auth.clerk.reason}"
	}
}`, caddyPort,
		route("/req/*", "", ""),
		route("/opt/*", "optional", ""),
		route("/opt-admin/*", "optional\n\t\t\troles admin", ""),
		route("/admin/*", "roles admin", ""),
		route("/session/*", "accept session", ""),
		route("/leeway0/*", "leeway 0", ""),
		route("/leeway5m/*", "leeway 5m", ""),
		route("/claim-sub/*", "claim sub user_a", ""),
		route("/pem/*", "", "jwt_key {env.TEST_CLERK_JWT_KEY}"),
	))
	s := &attackSuite{tester: tester, up: up, attacker: f.attacker}

	groups := []struct {
		name  string
		cases []attackCase
	}{
		{"alg", algCases(f)},
		{"key injection", keyInjectionCases(f)},
		{"crit", critCases(f)},
		{"kid", kidCases(f)},
		{"signature", signatureCases(f)},
		{"segments and encoding", encodingCases(f)},
		{"authorization header", authorizationCases(f)},
		{"header and cookie", cookieCases(f)},
		{"query string and body", queryCases(f)},
		{"claim types", claimTypeCases(f)},
		{"time", timeCases(f)},
		{"issuer look-alikes", issuerCases(f)},
		{"azp look-alikes", azpCases(f)},
		{"token class", tokenClassCases(f)},
		{"duplicate members", duplicateMemberCases(f)},
		{"forged identity headers", forgedHeaderCases(f)},
		{"header injection through claims", claimInjectionCases(f)},
		{"oversized", oversizeCases(t, f)},
	}
	total := 0
	for _, g := range groups {
		total += len(g.cases)
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) { s.run(t, tc) })
			}
		})
	}
	t.Logf("%d adversarial cases in %d groups", total, len(groups))
	if n := f.attacker.hits.Load(); n != 0 {
		t.Errorf("the attacker's server received %d requests in all", n)
	}
}

// forger makes the suite's tokens: valid ones for the configured issuer and
// party, and the material of forgeries.
type forger struct {
	iss      *clerktest.Issuer // the configured issuer
	other    *clerktest.Issuer // another Clerk instance: the attacker's own, real, tokens
	attacker *attackerServer
	valid    string // a valid token
	// baseHeader and baseClaims are the JSON members of a valid token, for
	// cases that need members encoding/json would never write (duplicates,
	// odd numbers): raw signs them byte for byte with the issuer's key.
	baseHeader, baseClaims string
}

func newForger(t *testing.T) *forger {
	f := &forger{
		iss:      clerktest.Start(t),
		other:    clerktest.Start(t),
		attacker: startAttackerServer(t),
	}
	now := time.Now()
	f.baseHeader = fmt.Sprintf(`"alg":"RS256","kid":%q,"typ":"JWT","cat":%q`, f.iss.KID(), clerktest.CatSession)
	f.baseClaims = fmt.Sprintf(`"iss":%q,"azp":%q,"sid":"sess_adv","iat":%d,"nbf":%d,"exp":%d`,
		targetIssuer, targetAZP, now.Unix(), now.Unix()-10, now.Add(10*time.Minute).Unix())
	f.valid = f.mint()
	return f
}

// mint is a valid token for the configured issuer and party, alive long
// enough (10 min) for the suite never to race its expiry; options override
// any of it.
func (f *forger) mint(opts ...clerktest.Option) string {
	base := []clerktest.Option{
		clerktest.Lifetime(10 * time.Minute),
		clerktest.WithClaims(map[string]any{"iss": targetIssuer, "azp": targetAZP}),
	}
	return f.iss.Mint(append(base, opts...)...)
}

// raw signs the header and claim members given, byte for byte, with the
// issuer's key.
func (f *forger) raw(headerMembers, claimMembers string) string {
	return clerktest.SegmentsJSON("{"+headerMembers+"}", "{"+claimMembers+"}", f.iss.PrivateKey())
}

// freshRSAKey is a key nobody configured: whatever it signs is forged.
func freshRSAKey() *rsa.PrivateKey {
	k, err := clerktest.NewRSAKey(2048)
	if err != nil {
		panic(err)
	}
	return k
}
