package clerkauth

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
)

// TestSessionCookieFor walks Clerk's usesSuffixedCookies() rules (reference
// §1.2), in their order, for a development and a production instance.
func TestSessionCookie(t *testing.T) {
	devPK, err := parsePublishableKey("pk_test_Y2xlcmsuY2xlcmsuZGV2JA") // clerk.clerk.dev
	if err != nil {
		t.Fatal(err)
	}
	prodPK, err := parsePublishableKey("pk_live_Y2xlcmsuZmluZG15ZmllbGQub25saW5lJA") // clerk.findmyfield.online
	if err != nil {
		t.Fatal(err)
	}
	now := testNow
	tok := func(iss string, iat time.Time) string {
		claims := map[string]any{"iat": iat.Unix(), "exp": iat.Add(time.Minute).Unix(), "sub": "user_x"}
		if iss != "" {
			claims["iss"] = iss
		}
		s, err := clerktest.Sign(map[string]any{"alg": "RS256"}, claims, "none", nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	dev := "https://clerk.clerk.dev"
	older, newer, stale := tok(dev, now.Add(-30*time.Second)), tok(dev, now.Add(-10*time.Second)), tok(dev, now.Add(-time.Hour))
	sfx := func(pk *publishableKey, name string) string { return name + "_" + pk.suffix }

	cases := []struct {
		name    string
		pk      *publishableKey
		cookies map[string]string // name → value; "@pk" suffix names are built below
		want    string
	}{
		{"no publishable key reads the plain cookie only", nil,
			map[string]string{"__session": older, "__session_QvfNY2dr": newer}, older},
		{"1: plain session without iss", devPK,
			map[string]string{"__session": tok("", now), sfx(devPK, "__session"): newer, sfx(devPK, "__client_uat"): "1"}, tok("", now)},
		{"1: undecodable plain session", devPK,
			map[string]string{"__session": "garbage", sfx(devPK, "__session"): newer, sfx(devPK, "__client_uat"): "1"}, "garbage"},
		{"2: plain session of another instance", devPK,
			map[string]string{"__session": tok("https://other.clerk.accounts.dev", now), sfx(devPK, "__session"): newer, sfx(devPK, "__client_uat"): "1"}, newer},
		{"3: no suffixed cookies at all", devPK,
			map[string]string{"__session": older, "__client_uat": "1"}, older},
		{"4: plain session newer than suffixed", devPK,
			map[string]string{"__session": newer, "__client_uat": "1", sfx(devPK, "__session"): older, sfx(devPK, "__client_uat"): "1"}, newer},
		{"4: suffixed session newer than plain", devPK,
			map[string]string{"__session": older, "__client_uat": "1", sfx(devPK, "__session"): newer, sfx(devPK, "__client_uat"): "1"}, newer},
		{"5: suffixed uat 0, plain uat set", devPK,
			map[string]string{"__session": older, "__client_uat": "1", sfx(devPK, "__session"): newer, sfx(devPK, "__client_uat"): "0"}, older},
		// Clerk compares the uats as strings: "x" is not "0".
		{"5: unparsable suffixed uat is not 0", devPK,
			map[string]string{"__session": older, "__client_uat": "1", sfx(devPK, "__session"): newer, sfx(devPK, "__client_uat"): "x"}, newer},
		{"6: development, stale suffixed session", devPK,
			map[string]string{"__session": older, "__client_uat": "0", sfx(devPK, "__session"): stale, sfx(devPK, "__client_uat"): "1"}, older},
		{"6: development, fresh suffixed session", devPK,
			map[string]string{"__session": older, "__client_uat": "0", sfx(devPK, "__session"): newer, sfx(devPK, "__client_uat"): "1"}, newer},
		{"6: production ignores staleness", prodPK,
			map[string]string{"__session": tok("https://clerk.findmyfield.online", now.Add(-30*time.Second)), "__client_uat": "0",
				sfx(prodPK, "__session"): tok("https://clerk.findmyfield.online", now.Add(-time.Hour)), sfx(prodPK, "__client_uat"): "1"},
			tok("https://clerk.findmyfield.online", now.Add(-time.Hour))},
		{"7: suffixed session without suffixed uat", devPK,
			map[string]string{"__session": older, sfx(devPK, "__session"): newer}, older},
		{"8: suffixed only", devPK,
			map[string]string{sfx(devPK, "__session"): newer, sfx(devPK, "__client_uat"): "1"}, newer},
		// An absent plain uat is not "0" either, so rule 5 picks the plain set.
		{"5: signed-out suffixed uat, plain session with no uat", devPK,
			map[string]string{"__session": older, sfx(devPK, "__client_uat"): "0"}, older},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "http://app.example.com/", nil)
			for name, v := range tc.cookies {
				r.AddCookie(&http.Cookie{Name: name, Value: v})
			}
			var inst *handshake.Instance
			if tc.pk != nil {
				inst = tc.pk.instance()
			}
			if got := sessionCookie(r, inst, now); got != tc.want {
				t.Fatalf("picked %.40q, want %.40q", got, tc.want)
			}
		})
	}
}

// TestIsPreflight: a preflight is an OPTIONS with Origin and
// Access-Control-Request-Method and no body, as net/http reports a body
// for each protocol.
func TestIsPreflight(t *testing.T) {
	cors := http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}}
	cases := []struct {
		name          string
		method        string
		header        http.Header
		protoMajor    int
		contentLength int64
		chunked       bool
		want          bool
	}{
		{"HTTP/1.1 preflight", http.MethodOptions, cors, 1, 0, false, true},
		{"HTTP/2 preflight, stream ended with the headers", http.MethodOptions, cors, 2, 0, false, true},
		{"HTTP/3 preflight without Content-Length", http.MethodOptions, cors, 3, -1, false, true},
		{"Content-Length above 0", http.MethodOptions, cors, 1, 5, false, false},
		{"chunked body", http.MethodOptions, cors, 1, -1, true, false},
		{"HTTP/2 stream left open without Content-Length", http.MethodOptions, cors, 2, -1, false, false},
		{"HTTP/3 with Content-Length above 0", http.MethodOptions, cors, 3, 1, false, false},
		{"no Origin", http.MethodOptions, http.Header{"Access-Control-Request-Method": {"POST"}}, 1, 0, false, false},
		{"no Access-Control-Request-Method", http.MethodOptions, http.Header{"Origin": {"https://app.example.com"}}, 1, 0, false, false},
		{"not OPTIONS", http.MethodPost, cors, 1, 0, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{Method: tc.method, Header: tc.header, ProtoMajor: tc.protoMajor, ContentLength: tc.contentLength}
			if tc.chunked {
				r.TransferEncoding = []string{"chunked"}
			}
			if got := isPreflight(r); got != tc.want {
				t.Fatalf("isPreflight = %v, want %v", got, tc.want)
			}
		})
	}
}
