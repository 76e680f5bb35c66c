package handshake

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestHandshakeDirectives(t *testing.T) {
	good := map[string]any{"alg": "RS256", "kid": "ins_1", "typ": "JWT", "cat": "cl_B7d4PD111AAA"}
	with := func(k string, v any) map[string]any {
		h := map[string]any{}
		for key, val := range good {
			h[key] = val
		}
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	directives := []any{"__session=a.b.c;path=/", "foo=bar;path=/;domain=example.com"}
	payload := map[string]any{"handshake": directives}
	signatureOK := func(string) error { return nil }
	tests := []struct {
		name   string
		token  string
		verify func(string) error
		want   []string
		reason string
	}{
		{"valid", jwt(good, payload), signatureOK, []string{"__session=a.b.c;path=/", "foo=bar;path=/;domain=example.com"}, ""},
		{"no typ, no cat", jwt(with("typ", nil), payload), signatureOK, []string{"__session=a.b.c;path=/", "foo=bar;path=/;domain=example.com"}, ""},
		{"ignore category", jwt(with("cat", "cl_I7d4PD111III"), payload), signatureOK, []string{"__session=a.b.c;path=/", "foo=bar;path=/;domain=example.com"}, ""},
		{"template category", jwt(with("cat", "cl_B7d4PD222AAA"), payload), signatureOK, nil, "token-invalid"},
		{"M2M category", jwt(with("cat", "cl_B7d4PD333AAA"), payload), signatureOK, nil, "token-invalid"},
		{"unknown category", jwt(with("cat", "x"), payload), signatureOK, nil, "token-invalid"},
		{"typ at+jwt", jwt(with("typ", "at+jwt"), payload), signatureOK, nil, "token-invalid"},
		{"alg HS256", jwt(with("alg", "HS256"), payload), signatureOK, nil, "token-invalid-algorithm"},
		{"alg none", jwt(with("alg", "none"), payload), signatureOK, nil, "token-invalid-algorithm"},
		{"bad signature", jwt(good, payload), func(string) error { return errors.New("mismatch") }, nil, "token-invalid-signature"},
		{"not a JWT", "abc", signatureOK, nil, "token-invalid"},
		{"claim not an array", jwt(good, map[string]any{"handshake": "x"}), signatureOK, nil, ""},
		{"claim holds a number", jwt(good, map[string]any{"handshake": []any{"a=b", 1}}), signatureOK, nil, "token-invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := HandshakeDirectives(tc.token, tc.verify)
			var rle *ReturnLegError
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.reason != "" && (!errors.As(err, &rle) || rle.Reason != tc.reason):
				t.Fatalf("error %v, want reason %s", err, tc.reason)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("directives %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSafeDirectives(t *testing.T) {
	tests := []struct {
		directive string
		kept      bool
	}{
		{"__session=a.b.c; Path=/; Secure; HttpOnly; SameSite=Lax", true},
		{"__session_naoXFJnI=a.b.c; Path=/", true},
		{"__client_uat=1700000000; Path=/; Domain=example.com; Max-Age=315360000", true},
		{"__client_uat_naoXFJnI=0; Path=/", true},
		{"__clerk_db_jwt=dvb_1; Path=/", true},
		{"__refresh_naoXFJnI=r; Path=/", true},
		{"__clerk_handshake=; Path=/; Max-Age=0", true},
		{"__clerk_handshake_nonce=; Path=/; Max-Age=0", true},
		{"__clerk_redirect_count=0; Max-Age=0", true},
		{"__refresh=r; Path=/", false},
		{"__session_otherSfx=a.b.c", false},
		{"foo=bar;path=/;domain=example.com", false},
		{"__session=a\r\nSet-Cookie: x=y", false},
		{"__session=a\x00b", false},
		{"=x", false},
		{"__session=" + strings.Repeat("a", 9000), false},
	}
	for _, tc := range tests {
		t.Run(tc.directive[:min(len(tc.directive), 40)], func(t *testing.T) {
			kept, dropped := SafeDirectives([]string{tc.directive}, live)
			if got := len(kept) == 1; got != tc.kept {
				t.Errorf("kept = %t, want %t (dropped: %q)", got, tc.kept, dropped)
			}
			for _, why := range dropped {
				if strings.Contains(why, "a.b.c") || strings.Contains(why, "dvb_1") {
					t.Errorf("drop reason %q carries a cookie value", why)
				}
			}
		})
	}
	many := slices.Repeat([]string{"__session=a"}, maxDirectives+1)
	if kept, dropped := SafeDirectives(many, live); len(kept) != maxDirectives || len(dropped) != 1 {
		t.Errorf("%d kept, %d dropped of %d", len(kept), len(dropped), len(many))
	}
}

func TestSessionFromDirectives(t *testing.T) {
	tests := []struct {
		name       string
		directives []string
		want       string
	}{
		{"plain", []string{"__session=a.b.c; Path=/"}, "a.b.c"},
		{"the last __session* wins", []string{"__session=one; Path=/", "__client_uat=1", "__session_naoXFJnI=two; Path=/"}, "two"},
		{"value cut at the second =", []string{"__session=a=b; Path=/"}, "a"},
		{"none", []string{"__client_uat=0; Path=/"}, ""},
		{"last one empty: signed out", []string{"__session=a.b.c", "__session=; Max-Age=0"}, ""},
		{"nothing", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := SessionFromDirectives(tc.directives)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("got %q %t, want %q", got, ok, tc.want)
			}
		})
	}
}

func TestCleanURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://localhost:3000/page?__clerk_handshake_nonce=abc123&__clerk_help=1&foo=bar&__clerk_db_jwt=dvb_x&__clerk_handshake=t", "http://localhost:3000/page?foo=bar"},
		{"http://localhost:3000/page?__clerk_handshake=t", "http://localhost:3000/page"},
		{"http://localhost:3000?a=b%20c~", "http://localhost:3000/?a=b+c%7E"},
		{"https://app.example.com/x?__clerk_handshake=t#frag", "https://app.example.com/x#frag"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			u, err := url.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := CleanURL(u); got != tc.want {
				t.Errorf("CleanURL = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHandshakePayload(t *testing.T) {
	tests := []struct {
		url, cookies, nonce, token string
	}{
		{"https://a.example/", "", "", ""},
		{"https://a.example/?__clerk_handshake_nonce=n1&__clerk_handshake=t1", "__clerk_handshake_nonce=n2; __clerk_handshake=t2", "n1", "t1"},
		{"https://a.example/", "__clerk_handshake_nonce=n2; __clerk_handshake=t2", "n2", "t2"},
		{"https://a.example/?__clerk_handshake=&__clerk_handshake=t1", "__clerk_handshake=t2", "", "t2"},
		{"https://a.example/", "__clerk_handshake_nonce_sfx=n", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.url+" "+tc.cookies, func(t *testing.T) {
			u, _ := url.Parse(tc.url)
			r := req(t, "GET", tc.url, "Cookie", tc.cookies)
			nonce, token := HandshakePayload(u, ParseCookies(r.Header))
			if nonce != tc.nonce || token != tc.token {
				t.Errorf("got %q %q, want %q %q", nonce, token, tc.nonce, tc.token)
			}
		})
	}
}
