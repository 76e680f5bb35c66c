package clerktest

import (
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// handshake sends a browser's GET to the handshake endpoint, with cookies,
// and returns the answer without following it.
func handshake(t *testing.T, iss *Issuer, query url.Values, cookies ...*http.Cookie) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, iss.HandshakeURL()+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", HandshakePath, err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp
}

// payload resolves a nonce at the Backend API.
func payload(t *testing.T, iss *Issuer, nonce, secret string) (*http.Response, []string) {
	t.Helper()
	resp, body := get(t, iss.APIURL()+HandshakePayloadPath+"?nonce="+url.QueryEscape(nonce), secret)
	if resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	var doc struct {
		Directives []string `json:"directives"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("payload body %s: %v", body, err)
	}
	return resp, doc.Directives
}

// returnLeg splits a handshake's Location into the URL the app sees without
// the payload, and the payload parameter.
func returnLeg(t *testing.T, resp *http.Response) (back, param, value string) {
	t.Helper()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("status %d, want 307", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	loc := resp.Header.Get("Location")
	i := strings.LastIndexAny(loc, "?&")
	name, value, ok := strings.Cut(loc[i+1:], "=")
	if i < 0 || !ok {
		t.Fatalf("Location %q ends in no parameter", loc)
	}
	return loc[:i], name, value
}

// directivesOf resolves the payload of a return leg, whatever its format,
// checking the handshake JWT's signature with the Issuer's key.
func directivesOf(t *testing.T, iss *Issuer, param, value string) []string {
	t.Helper()
	switch param {
	case HandshakeNonceParam:
		resp, d := payload(t, iss, value, iss.SecretKey())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("payload of nonce: status %d, want 200", resp.StatusCode)
		}
		return d
	case HandshakeTokenParam:
		tok := parse(t, value)
		if err := rsa.VerifyPKCS1v15(&iss.PrivateKey().PublicKey, crypto.SHA256, hashed(crypto.SHA256, tok.input), tok.sig); err != nil {
			t.Fatalf("handshake token does not verify: %v", err)
		}
		want := map[string]any{"alg": "RS256", "cat": CatSession, "kid": iss.KID(), "typ": "JWT"}
		if !equalJSON(t, tok.header, want) {
			t.Errorf("handshake token header %v, want %v", tok.header, want)
		}
		if keys := keysOf(tok.claims); !slices.Equal(keys, []string{"handshake"}) {
			t.Errorf("handshake token claims %v, want only handshake", keys)
		}
		var d []string
		for _, v := range tok.claims["handshake"].([]any) {
			d = append(d, v.(string))
		}
		return d
	}
	t.Fatalf("unknown payload parameter %q", param)
	return nil
}

func TestHandshakeReturnsFreshCookies(t *testing.T) {
	iss := Start(t)
	signedIn := time.Unix(1_700_000_000, 0)
	now := signedIn
	iss.SetNow(func() time.Time { return now })
	alice := iss.SignInClient("user_alice", Lifetime(90*time.Second), WithClaims(map[string]any{"roles": []string{"admin"}}))
	ended := iss.SignInClient("user_bob")
	iss.SignOutClient(ended)
	// Time passes: the handshake mints a token newer than the sign-in.
	now = signedIn.Add(10 * time.Minute)

	app := "http://127.0.0.1:1"
	tests := []struct {
		name      string
		back      string // redirect_url
		format    string
		cookie    *http.Cookie
		wantParam string
		wantUser  string // "" for signed-out directives
	}{
		{"signed in, nonce", app + "/p?b=2&a=1&x=%20y+z", "nonce", alice, HandshakeNonceParam, "user_alice"},
		{"signed in, token", app + "/p?b=2&a=1&x=%20y+z", "", alice, HandshakeTokenParam, "user_alice"},
		{"signed in, unknown format is a token", app + "/", "jwt", alice, HandshakeTokenParam, "user_alice"},
		{"signed in, no query", app + "/deep/path", "nonce", alice, HandshakeNonceParam, "user_alice"},
		{"no client cookie", app + "/p", "nonce", nil, HandshakeNonceParam, ""},
		{"signed out client", app + "/p", "", ended, HandshakeTokenParam, ""},
		{"unknown client", app + "/p", "nonce", &http.Cookie{Name: ClientCookie, Value: "client_forged"}, HandshakeNonceParam, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"redirect_url": {tc.back}, "__clerk_api_version": {"2026-05-12"}, "suffixed_cookies": {"false"}}
			if tc.format != "" {
				q.Set("format", tc.format)
			}
			var cookies []*http.Cookie
			if tc.cookie != nil {
				cookies = append(cookies, tc.cookie)
			}
			back, param, value := returnLeg(t, handshake(t, iss, q, cookies...))
			// Every other parameter comes back byte for byte.
			if back != tc.back {
				t.Errorf("return leg to %q, want %q", back, tc.back)
			}
			if param != tc.wantParam || value == "" {
				t.Fatalf("payload %s=%q, want a %s", param, value, tc.wantParam)
			}
			d := directivesOf(t, iss, param, value)
			if tc.wantUser == "" {
				if !slices.Equal(d, signedOutDirectives()) {
					t.Errorf("directives %q, want signed-out %q", d, signedOutDirectives())
				}
				return
			}
			session, ok := strings.CutPrefix(d[0], SessionCookie+"=")
			if len(d) != 2 || !ok || !strings.HasSuffix(session, "; Path=/; SameSite=Lax") {
				t.Fatalf("directives %q, want __session then __client_uat", d)
			}
			wantUAT := ClientUATCookie + "=" + strconv.FormatInt(signedIn.Unix(), 10) + "; Path=/; SameSite=Lax"
			if d[1] != wantUAT {
				t.Errorf("directive %q, want %q", d[1], wantUAT)
			}
			tok := parse(t, strings.TrimSuffix(session, "; Path=/; SameSite=Lax"))
			if err := rsa.VerifyPKCS1v15(&iss.PrivateKey().PublicKey, crypto.SHA256, hashed(crypto.SHA256, tok.input), tok.sig); err != nil {
				t.Fatalf("session token does not verify: %v", err)
			}
			if tok.header["cat"] != CatSession || tok.claims["sub"] != tc.wantUser || tok.claims["azp"] != app {
				t.Errorf("session token %v %v, want a session token for %s with azp %s", tok.header, tok.claims, tc.wantUser, app)
			}
			if iat := num(t, tok.claims["iat"]); iat != now.Unix() || iat < signedIn.Unix() {
				t.Errorf("iat %d, want now (%d), not before __client_uat", iat, now.Unix())
			}
			if life := num(t, tok.claims["exp"]) - num(t, tok.claims["iat"]); life != 90 {
				t.Errorf("lifetime %ds, want the session's 90s", life)
			}
			if roles := tok.claims["roles"]; !equalJSON(t, roles, []string{"admin"}) {
				t.Errorf("roles %v, want the session's options applied", roles)
			}
		})
	}
}

func TestHandshakeKeepsTheSessionID(t *testing.T) {
	iss := Start(t)
	c := iss.SignInClient("user_alice")
	q := url.Values{"redirect_url": {"http://127.0.0.1:1/"}}
	var sids []any
	for range 2 {
		_, param, value := returnLeg(t, handshake(t, iss, q, c))
		d := directivesOf(t, iss, param, value)
		tok := parse(t, strings.TrimSuffix(strings.TrimPrefix(d[0], SessionCookie+"="), "; Path=/; SameSite=Lax"))
		sids = append(sids, tok.claims["sid"])
	}
	if sid, ok := sids[0].(string); !ok || !strings.HasPrefix(sid, "sess_") || sids[1] != sid {
		t.Errorf("sids %v, want one sess_… for every token of a client session", sids)
	}
}

func TestHandshakeRefusesBadRequests(t *testing.T) {
	iss := Start(t)
	tests := []struct {
		name       string
		method     string
		back       string
		wantStatus int
	}{
		{"no redirect_url", http.MethodGet, "", http.StatusBadRequest},
		{"relative redirect_url", http.MethodGet, "/p", http.StatusBadRequest},
		{"script redirect_url", http.MethodGet, "javascript:alert(1)", http.StatusBadRequest},
		{"hostless redirect_url", http.MethodGet, "http:///p", http.StatusBadRequest},
		{"POST", http.MethodPost, "http://127.0.0.1:1/", http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := iss.HandshakeURL()
			if tc.back != "" {
				target += "?redirect_url=" + url.QueryEscape(tc.back)
			}
			req, err := http.NewRequest(tc.method, target, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Location") != "" {
				t.Errorf("status %d Location %q, want %d and none", resp.StatusCode, resp.Header.Get("Location"), tc.wantStatus)
			}
		})
	}
	if s := iss.HandshakeStats(); s.Requests != int64(len(tests)) || s.Redirects != 0 {
		t.Errorf("stats %+v, want %d requests and no redirect", s, len(tests))
	}
}

func TestHandshakePayload(t *testing.T) {
	iss := Start(t)
	now := time.Unix(1_700_000_000, 0)
	iss.SetNow(func() time.Time { return now })
	c := iss.SignInClient("user_alice")
	nonce := func() string {
		t.Helper()
		_, param, value := returnLeg(t, handshake(t, iss, url.Values{"redirect_url": {"http://127.0.0.1:1/"}, "format": {"nonce"}}, c))
		if param != HandshakeNonceParam {
			t.Fatalf("payload %s, want a nonce", param)
		}
		return value
	}
	used := nonce()
	if resp, _ := payload(t, iss, used, iss.SecretKey()); resp.StatusCode != http.StatusOK {
		t.Fatalf("first fetch: status %d, want 200", resp.StatusCode)
	}
	stale := nonce()
	now = now.Add(NonceLifetime + time.Second)

	tests := []struct {
		name       string
		nonce      string
		secret     string
		wantStatus int
	}{
		{"fresh nonce", nonce(), iss.SecretKey(), http.StatusOK},
		{"used nonce: single use", used, iss.SecretKey(), http.StatusNotFound},
		{"expired nonce", stale, iss.SecretKey(), http.StatusNotFound},
		{"unknown nonce", "NEVERHANDEDOUT", iss.SecretKey(), http.StatusNotFound},
		{"no nonce", "", iss.SecretKey(), http.StatusBadRequest},
		{"no secret", nonce(), "", http.StatusUnauthorized},
		{"wrong secret", nonce(), "sk_test_wrong", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, d := payload(t, iss, tc.nonce, tc.secret)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusOK && len(d) != 2 {
				t.Errorf("directives %q, want two", d)
			}
		})
	}
	resp, _ := get(t, iss.APIURL()+HandshakePayloadPath, "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no secret, no nonce: status %d, want 401", resp.StatusCode)
	}
	want := HandshakeStats{Requests: 5, Redirects: 5, PayloadCalls: int64(len(tests)) + 2, PayloadsServed: 2}
	if s := iss.HandshakeStats(); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}

func TestHandshakeFaults(t *testing.T) {
	iss := Start(t)
	c := iss.SignInClient("user_alice")
	forger, err := NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		fault  HandshakeFault
		format string
		check  func(t *testing.T, resp *http.Response)
	}{
		{"down: 500", HandshakeFault{Fault: Fault{Status: http.StatusInternalServerError}}, "nonce", func(t *testing.T, resp *http.Response) {
			if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Location") != "" {
				t.Errorf("status %d Location %q, want 500 and none", resp.StatusCode, resp.Header.Get("Location"))
			}
		}},
		{"forged handshake token", HandshakeFault{TokenKey: forger}, "", func(t *testing.T, resp *http.Response) {
			_, param, value := returnLeg(t, resp)
			tok := parse(t, value)
			if param != HandshakeTokenParam || tok.header["kid"] != iss.KID() {
				t.Fatalf("%s header %v, want a token claiming the issuer's kid", param, tok.header)
			}
			if rsa.VerifyPKCS1v15(&iss.PrivateKey().PublicKey, crypto.SHA256, hashed(crypto.SHA256, tok.input), tok.sig) == nil {
				t.Error("forged handshake token verifies with the issuer's key")
			}
		}},
		{"handshake token of another category", HandshakeFault{TokenCat: CatTemplate}, "", func(t *testing.T, resp *http.Response) {
			_, _, value := returnLeg(t, resp)
			tok := parse(t, value)
			if tok.header["cat"] != CatTemplate {
				t.Errorf("cat %v, want %s", tok.header["cat"], CatTemplate)
			}
			if rsa.VerifyPKCS1v15(&iss.PrivateKey().PublicKey, crypto.SHA256, hashed(crypto.SHA256, tok.input), tok.sig) != nil {
				t.Error("the token must be validly signed, so that only its cat is wrong")
			}
		}},
		{"nonce unknown to the API", HandshakeFault{UnknownNonce: true}, "nonce", func(t *testing.T, resp *http.Response) {
			_, param, value := returnLeg(t, resp)
			if param != HandshakeNonceParam {
				t.Fatalf("payload %s, want a nonce", param)
			}
			if resp, _ := payload(t, iss, value, iss.SecretKey()); resp.StatusCode != http.StatusNotFound {
				t.Errorf("payload status %d, want 404", resp.StatusCode)
			}
		}},
		{"expired sessions", HandshakeFault{ExpiredSessions: true}, "nonce", func(t *testing.T, resp *http.Response) {
			_, param, value := returnLeg(t, resp)
			d := directivesOf(t, iss, param, value)
			if len(d) != 2 || !strings.HasPrefix(d[0], SessionCookie+"=") {
				t.Fatalf("directives %q, want a session token", d)
			}
			tok := parse(t, strings.TrimSuffix(strings.TrimPrefix(d[0], SessionCookie+"="), "; Path=/; SameSite=Lax"))
			if exp := num(t, tok.claims["exp"]); exp > time.Now().Add(-time.Hour+DefaultLifetime).Unix() {
				t.Errorf("exp %d, want an hour ago plus %s", exp, DefaultLifetime)
			}
			if tok.claims["sub"] != "user_alice" {
				t.Errorf("sub %v, want the client's user", tok.claims["sub"])
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss.SetHandshakeFault(tc.fault)
			defer iss.ClearHandshakeFault()
			q := url.Values{"redirect_url": {"http://127.0.0.1:1/"}}
			if tc.format != "" {
				q.Set("format", tc.format)
			}
			tc.check(t, handshake(t, iss, q, c))
			// The JWKS endpoints are not affected.
			if keys := fetchKeys(t, iss.JWKSURL(), ""); keys[iss.KID()] == nil {
				t.Error("JWKS broken by a handshake fault")
			}
		})
	}

	t.Run("closed connection", func(t *testing.T) {
		iss.SetHandshakeFault(HandshakeFault{Fault: Fault{CloseConn: true}})
		defer iss.ClearHandshakeFault()
		resp, err := noRedirects.Get(iss.HandshakeURL() + "?redirect_url=" + url.QueryEscape("http://127.0.0.1:1/"))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("status %d, want no answer", resp.StatusCode)
		}
	})
	t.Run("a JWKS fault leaves the handshake alone", func(t *testing.T) {
		iss.SetFault(Fault{Status: http.StatusInternalServerError})
		defer iss.ClearFault()
		returnLeg(t, handshake(t, iss, url.Values{"redirect_url": {"http://127.0.0.1:1/"}}, c))
	})
	t.Run("invalid status panics", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "SetHandshakeFault") {
				t.Errorf("recovered %v, want a SetHandshakeFault panic", r)
			}
		}()
		iss.SetHandshakeFault(HandshakeFault{Fault: Fault{Status: 42}})
	})
}

func TestPayloadFaults(t *testing.T) {
	iss := Start(t)
	huge := []byte(`{"directives":["` + strings.Repeat("x", 1<<20) + `"]}`)
	tests := []struct {
		name       string
		fault      PayloadFault
		wantStatus int
		wantRetry  string
		wantBody   []byte
	}{
		{"rate limited", PayloadFault{Fault: Fault{Status: http.StatusTooManyRequests}, RetryAfter: "7"}, http.StatusTooManyRequests, "7", nil},
		{"server error", PayloadFault{Fault: Fault{Status: http.StatusInternalServerError}}, http.StatusInternalServerError, "", nil},
		{"oversized answer", PayloadFault{Fault: Fault{Body: huge}}, http.StatusOK, "", huge},
		// A fault applies before the secret is checked, as a broken
		// network would: the no-secret request below still gets it.
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss.SetPayloadFault(tc.fault)
			defer iss.ClearPayloadFault()
			resp, body := get(t, iss.APIURL()+HandshakePayloadPath+"?nonce=X", "")
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Retry-After") != tc.wantRetry {
				t.Errorf("status %d Retry-After %q, want %d %q", resp.StatusCode, resp.Header.Get("Retry-After"), tc.wantStatus, tc.wantRetry)
			}
			if tc.wantBody != nil && string(body) != string(tc.wantBody) {
				t.Errorf("body of %d bytes, want the fault's %d", len(body), len(tc.wantBody))
			}
		})
	}
	t.Run("slow", func(t *testing.T) {
		iss.SetPayloadFault(PayloadFault{Fault: Fault{Hang: true}})
		defer iss.ClearPayloadFault()
		impatient := &http.Client{Timeout: 50 * time.Millisecond}
		resp, err := impatient.Get(iss.APIURL() + HandshakePayloadPath + "?nonce=X")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("status %d, want no answer before the client gives up", resp.StatusCode)
		}
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("error %v, want a timeout", err)
		}
	})
	t.Run("cleared", func(t *testing.T) {
		if resp, _ := payload(t, iss, "X", iss.SecretKey()); resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d after clearing, want 404 for an unknown nonce", resp.StatusCode)
		}
	})
}

// The handshake endpoint records what it received, so that a test of a
// Frontend API proxy can check the headers the proxy forwarded; the record
// is bounded and a copy.
func TestHandshakeRequestsAreRecorded(t *testing.T) {
	iss := Start(t)
	tests := []struct {
		name   string
		method string
		header http.Header
	}{
		{"proxied handshake", http.MethodGet, http.Header{
			"Clerk-Proxy-Url":  {"https://app.example.com/__clerk"},
			"Clerk-Secret-Key": {iss.SecretKey()},
			"X-Forwarded-For":  {"203.0.113.7"},
		}},
		{"refused method is recorded too", http.MethodPost, http.Header{"X-Forwarded-For": {"203.0.113.8"}}},
	}
	for n, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, iss.HandshakeURL()+"?redirect_url="+url.QueryEscape("http://127.0.0.1:1/p"), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header.Clone()
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			seen := iss.HandshakeRequests()
			if len(seen) != n+1 {
				t.Fatalf("%d requests recorded, want %d", len(seen), n+1)
			}
			got := seen[n]
			if got.Host != strings.TrimPrefix(iss.URL, "http://") || got.Path != HandshakePath ||
				got.RawQuery != "redirect_url="+url.QueryEscape("http://127.0.0.1:1/p") {
				t.Errorf("recorded %s %s?%s, want the endpoint's own host, path and query", got.Host, got.Path, got.RawQuery)
			}
			for name, want := range tc.header {
				if !slices.Equal(got.Header.Values(name), want) {
					t.Errorf("recorded %s %q, want %q", name, got.Header.Values(name), want)
				}
			}
			got.Header.Set("X-Forwarded-For", "changed")
			if iss.HandshakeRequests()[n].Header.Get("X-Forwarded-For") == "changed" {
				t.Error("HandshakeRequests shares its headers with the caller")
			}
		})
	}

	for range maxSeen + 5 {
		resp, err := noRedirects.Get(iss.HandshakeURL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if seen := iss.HandshakeRequests(); len(seen) != maxSeen || seen[0].Header.Get("X-Forwarded-For") != "" {
		t.Errorf("%d requests kept, want the latest %d", len(seen), maxSeen)
	}
}
