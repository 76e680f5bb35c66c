package clerkauth

import (
	"net/url"
	"strconv"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// The request shapes of the handshake differential test
// (handshake_conformance_test.go): every rule of Clerk's cookie decision
// table, the header path, handshake eligibility, the loop guard, suffixed
// cookies, the development dev browser and primary sync, the cross-origin
// referrer, and proxy URLs.

const (
	liveFAPIHost = "clerk.example.com"
	devFAPIHost  = "happy-hippo-1.clerk.accounts.dev"
	livePage     = "https://app.example.com/dashboard?tab=1"
	devPage      = "http://localhost:3000/p?x=1"
)

// fetchDestinations are the ways a request says what it is for: page loads (the first
// three) and API calls.
var fetchDestinations = []struct {
	name    string
	headers [][2]string
}{
	{"document", [][2]string{{"Sec-Fetch-Dest", "document"}}},
	{"iframe", [][2]string{{"Sec-Fetch-Dest", "iframe"}}},
	{"Accept html", [][2]string{{"Accept", "text/html,application/xhtml+xml"}}},
	{"fetch", [][2]string{{"Sec-Fetch-Dest", "empty"}, {"Accept", "*/*"}}},
	{"Accept json", [][2]string{{"Accept", "application/json"}}},
	{"no hints", nil},
	{"fetch accepting html", [][2]string{{"Sec-Fetch-Dest", "empty"}, {"Accept", "text/html"}}},
}

type shapeBuilder struct {
	iss    *clerktest.Issuer
	shapes []requestShape
}

func (b *shapeBuilder) add(desc, instance, rawURL, method string, headers ...[2]string) {
	b.shapes = append(b.shapes, requestShape{desc: desc, instance: instance, url: rawURL, method: method, headers: headers})
}

// page adds a GET with Sec-Fetch-Dest: document and these cookies.
func (b *shapeBuilder) page(desc, instance, rawURL, cookies string, more ...[2]string) {
	h := append([][2]string{{"Sec-Fetch-Dest", "document"}, {"Cookie", cookies}}, more...)
	b.add(desc, instance, rawURL, "GET", h...)
}

// token mints a session token of the instance at host, issued at
// testNow+age.
func (b *shapeBuilder) token(host string, age time.Duration, opts ...clerktest.Option) string {
	opts = append([]clerktest.Option{clerktest.IssuedAt(testNow.Add(age)), clerktest.WithClaims(map[string]any{"iss": "https://" + host})}, opts...)
	return b.iss.Mint(opts...)
}

func buildHandshakeShapes(iss *clerktest.Issuer) []requestShape {
	b := &shapeBuilder{iss: iss}
	liveSfx := cookieSuffix(handshakeInstances["live"].publishableKey)
	devSfx := cookieSuffix(handshakeInstances["dev"].publishableKey)
	forger, err := clerktest.NewRSAKey(2048)
	if err != nil {
		panic(err)
	}
	unix := func(d time.Duration) string { return strconv.FormatInt(testNow.Add(d).Unix(), 10) }
	uatOld, uatNew := unix(-100*time.Second), unix(-10*time.Second)

	valid := b.token(liveFAPIHost, -30*time.Second)
	newer := b.token(liveFAPIHost, -5*time.Second)
	expired := b.token(liveFAPIHost, -time.Hour)
	nbf := b.token(liveFAPIHost, -30*time.Second, clerktest.WithClaims(map[string]any{"nbf": testNow.Add(time.Hour).Unix()}))
	iatFuture := b.token(liveFAPIHost, time.Hour, clerktest.WithClaims(map[string]any{"nbf": nil}))
	badSig := b.token(liveFAPIHost, -30*time.Second, clerktest.WithKey(forger))
	wrongAZP := b.token(liveFAPIHost, -30*time.Second, clerktest.WithClaims(map[string]any{"azp": "https://evil.example"}))
	m2m := b.token(liveFAPIHost, -30*time.Second, clerktest.M2M())
	template := b.token(liveFAPIHost, -30*time.Second, clerktest.Template())
	oauth := b.token(liveFAPIHost, -30*time.Second, clerktest.WithHeader(map[string]any{"typ": "at+jwt", "cat": nil}))
	other := b.token("clerk.other.com", -30*time.Second)
	devValid := b.token(devFAPIHost, -30*time.Second)
	devExpired := b.token(devFAPIHost, -time.Hour)

	uat := "__client_uat=" + uatOld
	sUAT, sSession := "__client_uat_"+liveSfx+"=", "__session_"+liveSfx+"="
	cookieStates := []struct{ name, cookies string }{
		{"no cookies", ""},
		{"uat 0", "__client_uat=0"},
		{"uat not a number", "__client_uat=abc"},
		{"uat only", uat},
		{"session only", "__session=" + valid},
		{"session, uat 0", "__client_uat=0; __session=" + valid},
		{"signed in", uat + "; __session=" + valid},
		{"iat before uat", "__client_uat=" + uatNew + "; __session=" + valid},
		{"expired", uat + "; __session=" + expired},
		{"expired with __refresh_<suffix>", uat + "; __refresh_" + liveSfx + "=r; __session=" + expired},
		{"expired with unsuffixed __refresh", uat + "; __refresh=r; __session=" + expired},
		{"nbf in the future", uat + "; __session=" + nbf},
		{"iat in the future", uat + "; __session=" + iatFuture},
		{"bad signature", uat + "; __session=" + badSig},
		{"azp not authorized", uat + "; __session=" + wrongAZP},
		{"session not a JWT", uat + "; __session=garbage"},
		{"session of three junk segments", uat + "; __session=a.b.c"},
		{"M2M token in the cookie", uat + "; __session=" + m2m},
		{"JWT template in the cookie", uat + "; __session=" + template},
		{"OAuth token in the cookie", uat + "; __session=" + oauth},
		{"suffixed signed in", sUAT + uatOld + "; " + sSession + valid},
		{"suffixed expired", sUAT + uatOld + "; " + sSession + expired},
		{"suffixed uat only", sUAT + uatOld},
		{"plain session of another instance", "__session=" + other + "; __client_uat=" + uatOld + "; " + sSession + valid + "; " + sUAT + uatOld},
		{"plain session newer than suffixed", "__session=" + newer + "; __client_uat=" + uatOld + "; " + sSession + expired + "; " + sUAT + uatOld},
		{"suffixed newer than plain", "__session=" + expired + "; __client_uat=" + uatOld + "; " + sSession + newer + "; " + sUAT + uatOld},
		{"suffixed uat 0, plain signed in", sUAT + "0; " + uat + "; __session=" + valid},
		{"suffixed session without suffixed uat", sSession + valid + "; " + uat},
		{"plain session undecodable, suffixed valid", "__session=x.y; " + sSession + valid + "; " + sUAT + uatOld},
		{"first of two sessions wins (valid)", uat + "; __session=" + valid + "; __session=garbage"},
		{"first of two sessions wins (garbage)", uat + "; __session=garbage; __session=" + valid},
		{"percent-encoded uat", "__client_uat=" + url.PathEscape(uatOld) + "%20; __session=" + valid},
		{"stale handshake cookie", "__clerk_handshake=garbage; " + uat + "; __session=" + valid},
	}
	for _, c := range cookieStates {
		b.page(c.name+" / page load", "live", livePage, c.cookies)
		b.add(c.name+" / fetch", "live", livePage, "GET", [2]string{"Sec-Fetch-Dest", "empty"}, [2]string{"Cookie", c.cookies})
		b.add(c.name+" / POST document", "live", livePage, "POST", [2]string{"Sec-Fetch-Dest", "document"}, [2]string{"Cookie", c.cookies})
	}

	// Eligibility: every destination, for rules that lead to a handshake.
	for _, c := range []struct{ name, cookies string }{{"uat only", uat}, {"expired", uat + "; __session=" + expired}, {"session only", "__session=" + valid}} {
		for _, d := range fetchDestinations[1:] {
			b.add(c.name+" / "+d.name, "live", livePage, "GET", append([][2]string{{"Cookie", c.cookies}}, d.headers...)...)
		}
	}

	// The loop guard.
	for _, n := range []string{"0", "1", "2", "3", "4", "5", "abc", "-1", "2.5"} {
		b.page("uat only / redirect count "+n, "live", livePage, uat+"; __clerk_redirect_count="+n)
		b.page("expired / redirect count "+n, "live", livePage, uat+"; __clerk_redirect_count="+n+"; __session="+expired)
	}

	// The header path.
	headerTokens := []struct{ name, token string }{
		{"valid", valid}, {"expired", expired}, {"nbf in the future", nbf}, {"iat in the future", iatFuture},
		{"bad signature", badSig}, {"M2M", m2m}, {"JWT template", template},
	}
	for _, ht := range headerTokens {
		auth := [2]string{"Authorization", "Bearer " + ht.token}
		for _, d := range []int{0, 2, 3} {
			b.add("header "+ht.name+" / "+fetchDestinations[d].name, "live", livePage, "GET", append([][2]string{auth}, fetchDestinations[d].headers...)...)
		}
		b.add("header "+ht.name+" / POST document", "live", livePage, "POST", auth, [2]string{"Sec-Fetch-Dest", "document"})
	}
	doc := [2]string{"Sec-Fetch-Dest", "document"}
	b.add("header expired, session cookie too", "live", livePage, "GET", doc, [2]string{"Authorization", "Bearer " + expired}, [2]string{"Cookie", uat + "; __session=" + valid})
	b.add("header expired, __refresh_<suffix>", "live", livePage, "GET", doc, [2]string{"Authorization", "Bearer " + expired}, [2]string{"Cookie", "__refresh_" + liveSfx + "=r"})
	b.add("header bare token", "live", livePage, "GET", doc, [2]string{"Authorization", valid})
	b.add("header lower-case bearer", "live", livePage, "GET", doc, [2]string{"Authorization", "bearer " + valid})
	b.add("header Basic, cookies signed in", "live", livePage, "GET", doc, [2]string{"Authorization", "Basic dTpw"}, [2]string{"Cookie", uat + "; __session=" + valid})
	b.add("header Basic, no cookies", "live", livePage, "GET", doc, [2]string{"Authorization", "Basic dTpw"})

	// The development instance: dev browser, primary sync.
	dUAT, dSession := "__client_uat_"+devSfx+"=", "__session_"+devSfx+"="
	devStates := []struct{ name, url, cookies string }{
		{"no dev browser", devPage, ""},
		{"no dev browser, signed in", devPage, uat + "; __session=" + devValid},
		{"dev browser in the URL", devPage + "&__clerk_db_jwt=dvb_url", ""},
		{"dev browser in the URL and the cookie", devPage + "&__clerk_db_jwt=dvb_url", "__clerk_db_jwt=dvb_cookie; " + uat + "; __session=" + devValid},
		{"empty dev browser parameter", devPage + "&__clerk_db_jwt=", "__clerk_db_jwt=dvb_cookie"},
		{"dev browser cookie, no session", devPage, "__clerk_db_jwt=dvb_cookie"},
		{"dev browser cookie, uat only", devPage, "__clerk_db_jwt=dvb_cookie; " + uat},
		{"dev browser cookie, signed in", devPage, "__clerk_db_jwt=dvb_cookie; " + uat + "; __session=" + devValid},
		{"dev browser cookie, expired", devPage, "__clerk_db_jwt=dvb_cookie; " + uat + "; __session=" + devExpired},
		{"legacy __dev_session stripped", "http://localhost:3000/p?__dev_session=old&y=1", "__clerk_db_jwt=dvb_cookie; " + uat},
		{"suffixed dev browser, signed in", devPage, "__clerk_db_jwt_" + devSfx + "=dvb_s; " + dUAT + uatOld + "; " + dSession + devValid},
		{"suffixed dev browser, uat only", devPage, "__clerk_db_jwt_" + devSfx + "=dvb_s; " + dUAT + uatOld},
		{"expired suffixed session loses in development", devPage, "__clerk_db_jwt=dvb_cookie; " + dUAT + uatOld + "; __client_uat=0; " + dSession + devExpired},
		{"primary sync, same origin", devPage + "&__clerk_redirect_url=" + url.QueryEscape("http://localhost:3000/back?a=1"), "__clerk_db_jwt=dvb_cookie"},
		{"primary sync, synced=false replaced", devPage + "&__clerk_redirect_url=" + url.QueryEscape("http://localhost:3000/back?__clerk_synced=false&b=2"), "__clerk_db_jwt=dvb_cookie"},
		{"primary sync, authorized party", devPage + "&__clerk_redirect_url=" + url.QueryEscape("https://app.example.com/x"), "__clerk_db_jwt=dvb_cookie"},
		{"primary sync, foreign origin", devPage + "&__clerk_redirect_url=" + url.QueryEscape("https://evil.example/steal"), "__clerk_db_jwt=dvb_cookie"},
		{"primary sync, foreign origin, signed in", devPage + "&__clerk_redirect_url=" + url.QueryEscape("https://evil.example/steal"), "__clerk_db_jwt=dvb_cookie; " + uat + "; __session=" + devValid},
	}
	for _, s := range devStates {
		b.page("development "+s.name+" / page load", "dev", s.url, s.cookies)
		b.add("development "+s.name+" / fetch", "dev", s.url, "GET", [2]string{"Sec-Fetch-Dest", "empty"}, [2]string{"Cookie", s.cookies})
	}

	// Row 13, the cross-origin referrer.
	signedIn := uat + "; __session=" + valid
	for _, ref := range []string{"https://other.example/", "https://clerk.example.com/x", "https://accounts.example.com/sign-in", "https://app.example.com/", "https://app.example.com:8443/", "not a url", "android-app://com.example/"} {
		b.page("signed in, Referer "+ref, "live", livePage, signedIn, [2]string{"Referer", ref})
	}
	b.page("signed in, Referer other, redirect count 1", "live", livePage, signedIn+"; __clerk_redirect_count=1", [2]string{"Referer", "https://other.example/"})
	b.add("signed in, Referer other, Accept html", "live", livePage, "GET", [2]string{"Accept", "text/html"}, [2]string{"Referer", "https://other.example/"}, [2]string{"Cookie", signedIn})
	b.page("development signed in, Referer dev Account Portal", "dev", devPage, "__clerk_db_jwt=d; "+uat+"; __session="+devValid, [2]string{"Referer", "https://happy-hippo-1.accounts.dev/sign-in"})
	b.page("development signed in, Referer other", "dev", devPage, "__clerk_db_jwt=d; "+uat+"; __session="+devValid, [2]string{"Referer", "https://other.example/"})

	// Proxy URLs and the redirect_url encoding.
	b.page("proxy, uat only", "proxy", livePage, uat)
	b.page("proxy, expired", "proxy", livePage, uat+"; __session="+expired)
	b.page("proxy, signed in, Referer proxy origin", "proxy", livePage, signedIn, [2]string{"Referer", "https://app.example.com/__clerk/x"})
	b.page("relative proxy, uat only", "rel-proxy", livePage, uat)
	b.page("relative proxy, other origin", "rel-proxy", "http://localhost:8080/x", uat)
	for _, u := range []string{
		"https://app.example.com/a%20b?q=a+b&r=%7E~*'()&s",
		"https://app.example.com:443/x",
		"https://APP.example.com/x",
		"http://app.example.com:8080/x?__clerk_db_jwt=1&y=%E2%9C%93",
		"https://app.example.com/?",
		"https://app.example.com/x?a=1&a=2&&b",
	} {
		b.page("uat only at "+u, "live", u, uat)
	}
	return b.shapes
}
