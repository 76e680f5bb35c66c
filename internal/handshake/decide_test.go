package handshake

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// One case per row of Clerk's cookie decision table (reference §1.4), in
// Clerk's order, plus the header path (§1.7).
func TestDecisionTable(t *testing.T) {
	uat := "__client_uat=1700000000"
	valid := session(live, 1700000000, "")
	devValid := session(dev, 1700000000, "")
	self := "https://app.example.com/dashboard"
	devSelf := "http://localhost:3000/p"
	tests := []struct {
		row     string
		inst    *Instance
		req     *Request
		outcome Outcome
		reason  string
		token   string // signed in: the token, and Carrier below
		carrier string
	}{
		{"1-3 primary sync, same origin", dev, page(t, devSelf+"?__clerk_redirect_url="+url.QueryEscape("http://localhost:3000/back"), "__clerk_db_jwt=dvb_1"),
			Handshake, ReasonPrimaryRespondsToSyncing, "", ""},
		{"1-3 primary sync, authorized party", &Instance{FrontendAPI: dev.FrontendAPI, CookieSuffix: dev.CookieSuffix, AuthorizedParties: []string{"https://sat.example.com"}},
			page(t, devSelf+"?__clerk_redirect_url="+url.QueryEscape("https://sat.example.com/x"), "__clerk_db_jwt=dvb_1"),
			Handshake, ReasonPrimaryRespondsToSyncing, "", ""},
		{"1-3 primary sync to a foreign origin is ignored", dev, page(t, devSelf+"?__clerk_redirect_url="+url.QueryEscape("https://evil.example/x"), "__clerk_db_jwt=dvb_1"),
			SignedOut, ReasonTokenAndUATMissing, "", ""},
		{"1-3 primary sync is development only", live, page(t, self+"?__clerk_redirect_url="+url.QueryEscape(self), ""),
			SignedOut, ReasonTokenAndUATMissing, "", ""},
		{"4 dev-browser-sync", dev, page(t, devSelf+"?__clerk_db_jwt=dvb_new", "__clerk_db_jwt=dvb_1; "+uat+"; __session="+devValid),
			Handshake, ReasonDevBrowserSync, "", ""},
		{"4 dev-browser-sync with an empty parameter", dev, page(t, devSelf+"?__clerk_db_jwt=", "__clerk_db_jwt=dvb_1"),
			Handshake, ReasonDevBrowserSync, "", ""},
		{"5 dev-browser-missing", dev, page(t, devSelf, uat+"; __session="+devValid),
			Handshake, ReasonDevBrowserMissing, "", ""},
		{"6 no uat, no session", live, page(t, self, ""), SignedOut, ReasonTokenAndUATMissing, "", ""},
		{"6 uat 0, no session", live, page(t, self, "__client_uat=0"), SignedOut, ReasonTokenAndUATMissing, "", ""},
		{"6 uat not a number, no session", live, page(t, self, "__client_uat=abc"), SignedOut, ReasonTokenAndUATMissing, "", ""},
		{"7 session, no uat", live, page(t, self, "__session="+valid), Handshake, ReasonTokenWithoutUAT, "", ""},
		{"7 session, uat 0", live, page(t, self, "__client_uat=0; __session="+valid), Handshake, ReasonTokenWithoutUAT, "", ""},
		{"8 uat, no session", live, page(t, self, uat), Handshake, ReasonUATWithoutToken, "", ""},
		{"9 session does not decode", live, page(t, self, uat+"; __session=not.a.jwt"), SignedOut, ReasonTokenInvalid, "", ""},
		{"9 session is one segment", live, page(t, self, uat+"; __session=garbage"), SignedOut, ReasonTokenInvalid, "", ""},
		{"10 M2M subject", live, page(t, self, uat+"; __session="+session(live, 1700000000, "", "sub", "mch_1")), SignedOut, ReasonTypeMismatch, "", ""},
		{"10 OAuth typ", live, page(t, self, uat+"; __session="+jwt(map[string]any{"alg": "RS256", "typ": "at+jwt"}, map[string]any{"iss": "https://clerk.example.com", "sub": "user_1"})),
			SignedOut, ReasonTypeMismatch, "", ""},
		{"10 template category", live, page(t, self, uat+"; __session="+jwt(map[string]any{"alg": "RS256", "cat": "cl_B7d4PD222AAA"}, map[string]any{"iss": "https://clerk.example.com"})),
			SignedOut, ReasonTypeMismatch, "", ""},
		{"10 null category", live, page(t, self, uat+"; __session="+jwt(map[string]any{"alg": "RS256", "cat": nil}, map[string]any{"iss": "https://clerk.example.com"})),
			SignedOut, ReasonTypeMismatch, "", ""},
		{"11 iat before uat", live, page(t, self, "__client_uat=1700000100; __session="+valid), Handshake, ReasonIATBeforeUAT, "", ""},
		{"11 missing iat never matches", live, page(t, self, "__client_uat=1700000100; __session="+jwt(map[string]any{"alg": "RS256"}, map[string]any{"iss": "https://clerk.example.com"})),
			SignedIn, "", "", CarrierCookie},
		{"12 expired", live, page(t, self, uat+"; __session="+session(live, 1700000000, VerifyExpired)),
			Handshake, "session-token-expired-refresh-non-eligible-no-refresh-cookie", "", ""},
		{"12 expired with __refresh", live, page(t, self, uat+"; __refresh_naoXFJnI=r; __session="+session(live, 1700000000, VerifyExpired)),
			Handshake, "session-token-expired-refresh-missing-api-client", "", ""},
		{"12 expired, unsuffixed __refresh does not count", live, page(t, self, uat+"; __refresh=r; __session="+session(live, 1700000000, VerifyExpired)),
			Handshake, "session-token-expired-refresh-non-eligible-no-refresh-cookie", "", ""},
		{"12 expired POST", live, req(t, http.MethodPost, self, "Sec-Fetch-Dest", "document", "Cookie", uat+"; __session="+session(live, 1700000000, VerifyExpired)),
			SignedOut, "session-token-expired-refresh-non-eligible-non-get", "", ""},
		{"12 nbf", live, page(t, self, uat+"; __session="+session(live, 1700000000, VerifyNotActive)), Handshake, ReasonSessionTokenNBF, "", ""},
		{"12 iat in the future", live, page(t, self, uat+"; __session="+session(live, 1700000000, VerifyIATInFuture)), Handshake, ReasonSessionTokenIATInFuture, "", ""},
		{"12 bad signature", live, page(t, self, uat+"; __session="+session(live, 1700000000, "token-invalid-signature")), SignedOut, "token-invalid-signature", "", ""},
		{"13 cross-origin referrer", live, req(t, http.MethodGet, self, "Sec-Fetch-Dest", "document", "Referer", "https://other.example/", "Cookie", uat+"; __session="+valid),
			Handshake, ReasonCrossOriginSync, "", ""},
		{"13 referrer is the Account Portal", live, req(t, http.MethodGet, self, "Sec-Fetch-Dest", "document", "Referer", "https://accounts.example.com/sign-in", "Cookie", uat+"; __session="+valid),
			SignedIn, "", valid, CarrierCookie},
		{"13 referrer is the Frontend API", live, req(t, http.MethodGet, self, "Sec-Fetch-Dest", "document", "Referer", "https://clerk.example.com/x", "Cookie", uat+"; __session="+valid),
			SignedIn, "", valid, CarrierCookie},
		{"13 not on a redirect chain", live, req(t, http.MethodGet, self, "Sec-Fetch-Dest", "document", "Referer", "https://other.example/", "Cookie", uat+"; __clerk_redirect_count=1; __session="+valid),
			SignedIn, "", valid, CarrierCookie},
		{"13 same-origin referrer", live, req(t, http.MethodGet, self, "Sec-Fetch-Dest", "document", "Referer", "https://app.example.com/", "Cookie", uat+"; __session="+valid),
			SignedIn, "", valid, CarrierCookie},
		{"13 dev portal referrer in development", dev, req(t, http.MethodGet, devSelf, "Sec-Fetch-Dest", "document", "Referer", "https://happy-hippo-1.accounts.dev/sign-in", "Cookie", "__clerk_db_jwt=d; "+uat+"; __session="+devValid),
			SignedIn, "", devValid, CarrierCookie},
		{"15 signed in", live, page(t, self, uat+"; __session="+valid), SignedIn, "", valid, CarrierCookie},
		{"15 signed in, development", dev, page(t, devSelf, "__clerk_db_jwt=d; "+uat+"; __session="+devValid), SignedIn, "", devValid, CarrierCookie},
		{"header valid", live, req(t, http.MethodGet, self, "Authorization", "Bearer "+valid), SignedIn, "", valid, CarrierHeader},
		{"header bare token", live, req(t, http.MethodGet, self, "Authorization", valid), SignedIn, "", valid, CarrierHeader},
		{"header lower-case scheme", live, req(t, http.MethodGet, self, "Authorization", "bearer "+valid), SignedIn, "", valid, CarrierHeader},
		{"header wins over cookies", live, req(t, http.MethodGet, self, "Authorization", "Bearer "+valid, "Cookie", "__client_uat=0"), SignedIn, "", valid, CarrierHeader},
		{"header expired on a page load", live, req(t, http.MethodGet, self, "Sec-Fetch-Dest", "document", "Authorization", "Bearer "+session(live, 1700000000, VerifyExpired)),
			Handshake, "session-token-expired-refresh-non-eligible-no-refresh-cookie", "", ""},
		{"header expired on an API call", live, req(t, http.MethodGet, self, "Sec-Fetch-Dest", "empty", "Authorization", "Bearer "+session(live, 1700000000, VerifyExpired)),
			SignedOut, "session-token-expired-refresh-non-eligible-no-refresh-cookie", "", ""},
		{"header machine token", live, req(t, http.MethodGet, self, "Authorization", "Bearer "+session(live, 1700000000, "", "sub", "mch_1")), SignedOut, ReasonTypeMismatch, "", ""},
		{"header other scheme falls to cookies", live, req(t, http.MethodGet, self, "Authorization", "Basic dTpw", "Cookie", uat+"; __session="+valid), SignedIn, "", valid, CarrierCookie},
	}
	for _, tc := range tests {
		t.Run(tc.row, func(t *testing.T) {
			d := Decide(tc.inst, tc.req, fakeVerify(t))
			if d.Outcome != tc.outcome || d.Reason != tc.reason {
				t.Fatalf("got %s %q, want %s %q", d.Outcome, d.Reason, tc.outcome, tc.reason)
			}
			if tc.token != "" && (d.Token != tc.token || d.Carrier != tc.carrier) {
				t.Errorf("token %q from %q, want %q from %q", d.Token, d.Carrier, tc.token, tc.carrier)
			}
			if (d.Outcome == Handshake) != (d.Location != "") || (d.Outcome == Handshake) != (d.SetCookie != "") {
				t.Errorf("Location %q and Set-Cookie %q on a %s", d.Location, d.SetCookie, d.Outcome)
			}
		})
	}
}

// The §7 vectors of the reference, byte for byte (checked against the pinned
// SDK by the differential test too).
func TestVectorA(t *testing.T) {
	const wantLoc = "https://clerk.example.com/v1/client/handshake?redirect_url=https%3A%2F%2Fapp.example.com%2Fdashboard%3Ftab%3D1&__clerk_api_version=2026-05-12&suffixed_cookies=false&__clerk_hs_reason=client-uat-but-no-session-token&format=nonce"
	d := Decide(live, page(t, "https://app.example.com/dashboard?tab=1", "__client_uat=1700000000"), fakeVerify(t))
	if d.Outcome != Handshake || d.Reason != ReasonUATWithoutToken || d.Location != wantLoc {
		t.Fatalf("got %s %q %q", d.Outcome, d.Reason, d.Location)
	}
	if want := "__clerk_redirect_count=1; SameSite=Lax; HttpOnly; Max-Age=2"; d.SetCookie != want {
		t.Errorf("Set-Cookie %q, want %q", d.SetCookie, want)
	}
	variants := []struct {
		name   string
		req    *Request
		reason string
	}{
		{"loop counter 3", page(t, "https://app.example.com/dashboard?tab=1", "__client_uat=1700000000; __clerk_redirect_count=3"), ReasonUATWithoutToken},
		{"fetch", req(t, http.MethodGet, "https://app.example.com/dashboard?tab=1", "Sec-Fetch-Dest", "empty", "Cookie", "__client_uat=1700000000"), ReasonUATWithoutToken},
		{"POST", req(t, http.MethodPost, "https://app.example.com/dashboard?tab=1", "Sec-Fetch-Dest", "document", "Cookie", "__client_uat=1700000000"), ReasonUATWithoutToken},
		{"no cookies", page(t, "https://app.example.com/dashboard?tab=1", ""), ReasonTokenAndUATMissing},
		{"uat 0", page(t, "https://app.example.com/dashboard?tab=1", "__client_uat=0"), ReasonTokenAndUATMissing},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			d := Decide(live, v.req, fakeVerify(t))
			if d.Outcome != SignedOut || d.Reason != v.reason || d.Location != "" || d.SetCookie != "" {
				t.Errorf("got %+v, want signed-out %q and no headers", d, v.reason)
			}
		})
	}
}

func TestVectorB(t *testing.T) {
	const want = "https://happy-hippo-1.clerk.accounts.dev/v1/client/handshake?redirect_url=http%3A%2F%2Flocalhost%3A3000%2F&__clerk_api_version=2026-05-12&suffixed_cookies=false&__clerk_hs_reason=dev-browser-sync&format=nonce&__clerk_db_jwt=dvb_abc"
	d := Decide(dev, page(t, "http://localhost:3000/?__clerk_db_jwt=dvb_abc", ""), fakeVerify(t))
	if d.Outcome != Handshake || d.Reason != ReasonDevBrowserSync || d.Location != want {
		t.Fatalf("got %s %q\n%s\nwant\n%s", d.Outcome, d.Reason, d.Location, want)
	}
}

func TestVectorC(t *testing.T) {
	const want = "https://app.example.com/__clerk/v1/client/handshake?redirect_url=https%3A%2F%2Fapp.example.com%2Fa&__clerk_api_version=2026-05-12&suffixed_cookies=true&__clerk_hs_reason=session-token-expired-refresh-non-eligible-no-refresh-cookie&format=nonce&__session=eyJh.eyJz.c2ln"
	self, _ := url.Parse("https://app.example.com/a")
	got, ok := handshakeURL("https://app.example.com/__clerk//", self, "session-token-expired-refresh-non-eligible-no-refresh-cookie", true, "eyJh.eyJz.c2ln", "", true)
	if !ok || got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestVectorE(t *testing.T) {
	u, _ := url.Parse("http://localhost:3000/page?__clerk_handshake_nonce=abc123&__clerk_help=1&foo=bar&__clerk_db_jwt=dvb_x&__clerk_handshake=t")
	if got, want := CleanURL(u), "http://localhost:3000/page?foo=bar"; got != want {
		t.Errorf("CleanURL = %q, want %q", got, want)
	}
}

func TestHandshakeLocation(t *testing.T) {
	tests := []struct {
		name string
		inst *Instance
		req  *Request
		want string
	}{
		{"relative proxy on the request's origin", &Instance{FrontendAPI: "clerk.example.com", Live: true, CookieSuffix: "s", ProxyURL: "/__clerk"},
			page(t, "https://app.example.com/x", "__client_uat=1"),
			"https://app.example.com/__clerk/v1/client/handshake?redirect_url=https%3A%2F%2Fapp.example.com%2Fx&__clerk_api_version=2026-05-12&suffixed_cookies=false&__clerk_hs_reason=client-uat-but-no-session-token&format=nonce"},
		{"query re-serialized, dev browser removed", live,
			page(t, "https://APP.example.com:443/x?b=a%20b~*&__clerk_db_jwt=1&__dev_session=2&c", "__client_uat=1"),
			"https://clerk.example.com/v1/client/handshake?redirect_url=https%3A%2F%2Fapp.example.com%2Fx%3Fb%3Da%2Bb%257E*%26c%3D&__clerk_api_version=2026-05-12&suffixed_cookies=false&__clerk_hs_reason=client-uat-but-no-session-token&format=nonce"},
		{"session token and dev browser", dev,
			page(t, "http://localhost:3000/", "__clerk_db_jwt=dvb_1; __session=a.b.c"),
			"https://happy-hippo-1.clerk.accounts.dev/v1/client/handshake?redirect_url=http%3A%2F%2Flocalhost%3A3000%2F&__clerk_api_version=2026-05-12&suffixed_cookies=false&__clerk_hs_reason=session-token-but-no-client-uat&format=nonce&__session=a.b.c&__clerk_db_jwt=dvb_1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.inst, tc.req, fakeVerify(t))
			if d.Location != tc.want {
				t.Errorf("got\n%s\nwant\n%s", d.Location, tc.want)
			}
		})
	}
}

func TestLoopGuard(t *testing.T) {
	tests := []struct {
		counter    string
		stopped    bool
		nextCookie string
	}{
		{"", false, "1"},
		{"0", false, "1"},
		{"1", false, "2"},
		{"2", false, "3"},
		{"3", true, ""},
		{"4", true, ""}, // Clerk: redirects again, only exactly 3 stops
		{"5", true, ""},
		{"abc", false, "1"},
		{" 2 ", false, "3"},
	}
	for _, tc := range tests {
		t.Run("counter "+tc.counter, func(t *testing.T) {
			d := Decide(live, page(t, "https://app.example.com/", "__client_uat=1; __clerk_redirect_count="+tc.counter), fakeVerify(t))
			if tc.stopped {
				if d.Outcome != SignedOut || !d.LoopStopped || d.Reason != ReasonUATWithoutToken || d.Location != "" || d.SetCookie != "" {
					t.Errorf("got %+v, want signed-out by the loop guard", d)
				}
				return
			}
			want := "__clerk_redirect_count=" + tc.nextCookie + "; SameSite=Lax; HttpOnly; Max-Age=2"
			if d.Outcome != Handshake || d.SetCookie != want {
				t.Errorf("got %s with %q, want a handshake with %q", d.Outcome, d.SetCookie, want)
			}
		})
	}
}

func TestEligible(t *testing.T) {
	tests := []struct {
		method, dest, accept string
		want                 bool
	}{
		{"GET", "document", "", true},
		{"GET", "iframe", "", true},
		{"GET", "", "text/html,application/xhtml+xml", true},
		{"GET", "", "text/html", true},
		{"GET", "", "application/json", false},
		{"GET", "", "", false},
		{"GET", "", "*/*", false},
		{"GET", "", "Text/HTML", false},
		{"GET", "empty", "text/html", false},
		{"GET", "image", "", false},
		{"POST", "document", "text/html", false},
		{"HEAD", "document", "", false},
		{"get", "document", "", false},
	}
	for _, tc := range tests {
		t.Run(strings.Join([]string{tc.method, tc.dest, tc.accept}, "|"), func(t *testing.T) {
			h := http.Header{}
			if tc.dest != "" {
				h.Set("Sec-Fetch-Dest", tc.dest)
			}
			if tc.accept != "" {
				h.Set("Accept", tc.accept)
			}
			if got := Eligible(tc.method, h); got != tc.want {
				t.Errorf("Eligible = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestPrimarySyncLocation(t *testing.T) {
	back := "http://localhost:3000/back?a=1&__clerk_synced=false&__clerk_synced=x#frag"
	d := Decide(dev, page(t, "http://localhost:3000/p?__clerk_redirect_url="+url.QueryEscape(back), "__clerk_db_jwt=dvb_1"), fakeVerify(t))
	want := "http://localhost:3000/back?a=1&__clerk_synced=true&__clerk_db_jwt=dvb_1#frag"
	if d.Outcome != Handshake || d.Location != want {
		t.Errorf("got %s %q, want %q", d.Outcome, d.Location, want)
	}
}
