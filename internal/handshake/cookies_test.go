package handshake

import (
	"net/http"
	"testing"
)

func TestParseCookies(t *testing.T) {
	tests := []struct {
		header string
		want   Cookies
	}{
		{"a=1; b=2", Cookies{"a": "1", "b": "2"}},
		{"a=1; a=2", Cookies{"a": "1"}},
		{" a = x y ;b=\t2\t", Cookies{"a": "x y", "b": "2"}},
		{"a=%41%20b", Cookies{"a": "A b"}},
		{"a=%E0%A4%A", Cookies{"a": "%E0%A4%A"}},
		{"a=%FF", Cookies{"a": "%FF"}},
		{"junk; a=1", Cookies{"a": "1"}},
		{`a="q"`, Cookies{"a": `"q"`}},
		{"a=b=c", Cookies{"a": "b=c"}},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			got := ParseCookies(http.Header{"Cookie": {tc.header}})
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// One case per rule of Clerk's usesSuffixedCookies, in order.
func TestUsesSuffixedCookies(t *testing.T) {
	mine := session(live, 1700000000, "")
	newer := session(live, 1700000500, "")
	other := jwt(map[string]any{"alg": "RS256"}, map[string]any{"iss": "https://clerk.other.com", "iat": 1700000000})
	noIss := jwt(map[string]any{"alg": "RS256"}, map[string]any{"iat": 1700000000})
	expiredDev := session(dev, 1600000000, "")
	devFresh := session(dev, 1700000000, "")
	sfx, dsfx := "_"+live.CookieSuffix, "_"+dev.CookieSuffix
	tests := []struct {
		name    string
		inst    *Instance
		cookies string
		want    bool
	}{
		{"1 plain session without iss", live, "__session=" + noIss + "; __session" + sfx + "=" + mine + "; __client_uat" + sfx + "=1", false},
		{"1 plain session undecodable", live, "__session=x; __session" + sfx + "=" + mine + "; __client_uat" + sfx + "=1", false},
		{"2 plain session of another instance", live, "__session=" + other, true},
		{"2 iss with a scheme twice still matches", live, "__session=" + jwt(map[string]any{}, map[string]any{"iss": "HTTPS://https://clerk.example.com"}), false},
		{"3 no suffixed cookies", live, "__session=" + mine + "; __client_uat=1", false},
		{"4 plain session newer", live, "__session=" + newer + "; __client_uat=1; __session" + sfx + "=" + mine + "; __client_uat" + sfx + "=1", false},
		{"4 suffixed session newer", live, "__session=" + mine + "; __client_uat=1; __session" + sfx + "=" + newer + "; __client_uat" + sfx + "=1", true},
		{"5 suffixed uat 0, plain uat set", live, "__client_uat" + sfx + "=0; __client_uat=1", false},
		{"5 suffixed uat 0, plain uat absent", live, "__client_uat" + sfx + "=0", false},
		{"6 development: expired suffixed session, plain uat 0", dev, "__session" + dsfx + "=" + expiredDev + "; __client_uat" + dsfx + "=1; __client_uat=0", false},
		{"6 development: fresh suffixed session", dev, "__session" + dsfx + "=" + devFresh + "; __client_uat" + dsfx + "=1; __client_uat=0", true},
		{"6 production keeps the expired suffixed session", live, "__session" + sfx + "=" + session(live, 1600000000, "") + "; __client_uat" + sfx + "=1; __client_uat=0", true},
		{"7 suffixed session without suffixed uat", live, "__session" + sfx + "=" + mine, false},
		{"8 suffixed", live, "__session" + sfx + "=" + mine + "; __client_uat" + sfx + "=1", true},
		{"8 suffixed uat only", live, "__client_uat" + sfx + "=1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ParseCookies(http.Header{"Cookie": {tc.cookies}})
			if got := UsesSuffixedCookies(c, tc.inst, now); got != tc.want {
				t.Errorf("UsesSuffixedCookies = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestSessionCookie(t *testing.T) {
	mine := session(live, 1700000000, "")
	c := ParseCookies(http.Header{"Cookie": {"__session=plain; __session_naoXFJnI=" + mine + "; __client_uat_naoXFJnI=1"}})
	// The plain one does not decode: rule 1 keeps the plain cookies.
	if got := SessionCookie(c, live, now); got != "plain" {
		t.Errorf("SessionCookie = %q, want the plain cookie", got)
	}
	c = ParseCookies(http.Header{"Cookie": {"__session_naoXFJnI=" + mine + "; __client_uat_naoXFJnI=1"}})
	if got := SessionCookie(c, live, now); got != mine {
		t.Errorf("SessionCookie = %q, want the suffixed cookie", got)
	}
}

func TestJSNumbers(t *testing.T) {
	for s, want := range map[string]float64{"12": 12, " 12abc": 12, "-5": -5, "0x10": 16, "abc": 0, "": 0, "1e3": 1} {
		if got := jsParseInt(s); got != want {
			t.Errorf("jsParseInt(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]float64{"3": 3, " 3 ": 3, "3.0": 3, "0x3": 3, "3e0": 3, "": 0} {
		if got := jsStringToNumber(s); got != want {
			t.Errorf("jsStringToNumber(%q) = %v, want %v", s, got, want)
		}
	}
	for _, s := range []string{"abc", "3x", "inf", "NaN", "1_0"} {
		if got := jsStringToNumber(s); got == got {
			t.Errorf("jsStringToNumber(%q) = %v, want NaN", s, got)
		}
	}
}
