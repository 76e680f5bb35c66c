package clerkauth

import (
	"fmt"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// Attacks with well-formed, correctly signed tokens whose claims must still
// be refused: times, look-alike issuers and parties, other token classes.

// timeCases: exp/nbf/iat against the real clock (exact boundaries are in
// verifier_test.go, on a fixed clock). Margins are wide enough that a slow
// machine cannot flip a result: a rejected token only gets more rejected
// as time passes, an accepted one has minutes to spare.
func timeCases(f *forger) []attackCase {
	now := time.Now()
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	c := func(path string, kv ...any) attackCase {
		return attackCase{path: path, header: bearer(f.mint(claimsOpt(kv...)))}
	}
	with := func(tc attackCase, name string, status int, reason string) attackCase {
		tc.name, tc.status, tc.reason = name, status, reason
		if status == 200 {
			tc.user = validUser
		}
		return tc
	}
	return []attackCase{
		with(c("/leeway0/x", "exp", at(-10*time.Second)), "leeway 0: expired 10s ago", 401, ReasonTokenExpired),
		with(c("/leeway0/x", "exp", at(-time.Second)), "leeway 0: expired 1s ago", 401, ReasonTokenExpired),
		with(c("/leeway0/x", "exp", float64(at(-10*time.Second))+0.5), "leeway 0: fractional exp in the past", 401, ReasonTokenExpired),
		with(c("/leeway0/x", "exp", float64(at(10*time.Minute))+0.5), "leeway 0: fractional exp in the future", 200, ""),
		with(c("/leeway0/x", "nbf", at(10*time.Minute)), "leeway 0: nbf in the future", 401, ReasonNotActiveYet),
		with(c("/leeway0/x", "iat", at(10*time.Minute)), "leeway 0: iat in the future", 401, ReasonIATInFuture),
		with(c("/leeway0/x", "exp", at(10*time.Minute), "nbf", at(-time.Minute), "iat", at(-time.Minute)), "leeway 0: valid window", 200, ""),
		with(c("/req/x", "exp", at(-30*time.Second)), "default leeway: expired 30s ago", 401, ReasonTokenExpired),
		with(c("/req/x", "nbf", at(10*time.Minute)), "default leeway: nbf in 10 min", 401, ReasonNotActiveYet),
		with(c("/req/x", "iat", at(10*time.Minute)), "default leeway: iat in 10 min", 401, ReasonIATInFuture),
		with(c("/leeway5m/x", "exp", at(-time.Minute)), "leeway 5m: expired 1 min ago passes", 200, ""),
		with(c("/leeway5m/x", "exp", at(-10*time.Minute)), "leeway 5m: expired 10 min ago", 401, ReasonTokenExpired),
		with(c("/leeway5m/x", "nbf", at(time.Minute)), "leeway 5m: nbf in 1 min passes", 200, ""),
		with(c("/leeway5m/x", "iat", at(30*time.Minute)), "leeway 5m: iat in 30 min", 401, ReasonIATInFuture),
		// The time checks run after the signature: a forged, expired
		// token learns it is forged, not that it is expired.
		{name: "forged and expired", path: "/leeway0/x", header: bearer(f.mint(clerktest.WithKey(freshRSAKey()), claimsOpt("exp", at(-time.Hour)))), reason: ReasonInvalidSignature},
	}
}

// issuerCases: iss must equal the configured issuer exactly. A
// comparison by prefix, suffix, host parsing or case folding would accept
// tokens minted for look-alike origins (another tenant sharing the key set,
// or a JWKS proxy).
func issuerCases(f *forger) []attackCase {
	bad := []string{
		"https://clerk.example.com.evil",
		"https://clerk.example.com.",
		"https://Clerk.Example.com",
		"HTTPS://clerk.example.com",
		"http://clerk.example.com",
		"https://clerk.example.com//",
		"https://clerk.example.com@evil.example",
		"https://evil.example@clerk.example.com",
		"https://clerk.example.com:443",
		"https://clerk.example.com/x",
		"https://clerk.example.com?",
		"https://clerk.example.com#",
		" https://clerk.example.com",
		"https://clerk.example.com%2f",
		"https://evil.clerk.example.com",
		"https://clerk.example.co",
		"clerk.example.com",
		"",
	}
	var cases []attackCase
	for _, iss := range bad {
		cases = append(cases, attackCase{name: fmt.Sprintf("%q", iss), header: bearer(f.mint(claimsOpt("iss", iss))), reason: ReasonInvalidIssuer})
	}
	return append(cases,
		attackCase{name: "missing iss", header: bearer(f.mint(claimsOpt("iss", nil))), reason: ReasonInvalidIssuer},
		// Documented: one trailing slash is ignored, as Clerk's issuers are
		// sometimes written with one.
		attackCase{name: "trailing slash passes", header: bearer(f.mint(claimsOpt("iss", targetIssuer+"/"))), status: 200, user: validUser},
	)
}

// azpCases: azp must equal a configured party exactly, or a token
// obtained on a look-alike origin (a subdomain taken over, an attacker page
// on the same Clerk instance) would be accepted here.
func azpCases(f *forger) []attackCase {
	bad := []string{
		"https://app.example.com.evil",
		"https://app.example.com/",
		"HTTPS://APP.EXAMPLE.COM",
		"http://app.example.com",
		"https://app.example.com:443",
		"https://evil.app.example.com",
		"https://app.example.com@evil.example",
		"https://evil.example#https://app.example.com",
		"app.example.com",
		"",
	}
	var cases []attackCase
	for _, azp := range bad {
		cases = append(cases, attackCase{name: fmt.Sprintf("%q", azp), header: bearer(f.mint(claimsOpt("azp", azp))), reason: ReasonInvalidAuthorizedPart})
	}
	return append(cases,
		attackCase{name: "missing azp", header: bearer(f.mint(claimsOpt("azp", nil))), reason: ReasonInvalidAuthorizedPart},
		attackCase{name: "azp list containing the party", header: bearer(f.mint(claimsOpt("azp", []string{targetAZP}))), reason: ReasonInvalidAuthorizedPart},
	)
}

// tokenClassCases: the same instance key signs session tokens, JWT templates
// (minted for other audiences, often long-lived), M2M and OAuth tokens. A
// route that takes sessions only must refuse the others.
func tokenClassCases(f *forger) []attackCase {
	p := "/session/x"
	return []attackCase{
		{name: "session token passes", path: p, header: bearer(f.mint()), status: 200, user: validUser},
		{name: "template token", path: p, header: bearer(f.mint(clerktest.Template())), reason: ReasonTypeMismatch},
		{name: "template token without cat", path: p, header: bearer(f.mint(clerktest.Template(), headerOpt("cat", nil))), reason: ReasonTypeMismatch},
		{name: "template token with the ignore cat", path: p, header: bearer(f.mint(clerktest.Template(), headerOpt("cat", clerktest.CatIgnore))), reason: ReasonTypeMismatch},
		{name: "M2M token", path: p, header: bearer(f.mint(clerktest.M2M())), reason: ReasonTypeMismatch},
		{name: "M2M token on the default route", header: bearer(f.mint(clerktest.M2M())), reason: ReasonTypeMismatch},
		{name: "machine subject in a session token", header: bearer(f.mint(claimsOpt("sub", "mch_1"))), reason: ReasonTypeMismatch},
		{name: "OAuth access token typ", path: p, header: bearer(f.mint(headerOpt("typ", "at+jwt"))), reason: ReasonTypeMismatch},
		{name: "unknown cat", path: p, header: bearer(f.mint(headerOpt("cat", "cl_B7d4PD999AAA"))), reason: ReasonTypeMismatch},
		{name: "numeric cat", path: p, header: bearer(f.mint(headerOpt("cat", 1))), reason: ReasonTokenInvalid},
		{name: "typ lowercase", header: bearer(f.mint(headerOpt("typ", "jwt"))), reason: ReasonTokenInvalid},
		{name: "template token passes the default route", header: bearer(f.mint(clerktest.Template())), status: 200, user: validUser},
		// A verdict reached on a lenient route must not carry over to a
		// stricter one (a verified-token cache shared between handlers
		// would do that): the same token, first where it passes, then
		// where it must not.
		{name: "template accepted on / is still refused on /session", send: afterPassing("/req/x", p, f.mint(clerktest.Template())), reason: ReasonTypeMismatch},
		{name: "token within 5m leeway is still expired on /req", send: afterPassing("/leeway5m/x", "/req/x", f.mint(claimsOpt("exp", time.Now().Add(-time.Minute).Unix()))), reason: ReasonTokenExpired},
		{name: "token accepted on /req is still refused on /admin", send: afterPassing("/req/x", "/admin/x", f.mint()), status: 403, reason: ReasonMissingRole},
	}
}
