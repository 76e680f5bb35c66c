package clerkauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/fcgi"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

func TestSameHeaderVariable(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"X-User-Id", "X-User-Id", true},
		{"X_User_Id", "X-User-Id", true},
		{"x_user_id", "X-User-Id", true},
		{"X-USER-ID", "X-User-Id", true},
		{"X.User.Id", "X-User-Id", true},
		{"x.user_id", "X-User-Id", true},
		{"X-User-Ids", "X-User-Id", false},
		{"X-UserId", "X-User-Id", false},
		{"X~User~Id", "X-User-Id", false},
	}
	for _, tc := range cases {
		t.Run(tc.a, func(t *testing.T) {
			if got := sameHeaderVariable(tc.a, tc.b); got != tc.want {
				t.Errorf("sameHeaderVariable(%q, %q) = %v", tc.a, tc.b, got)
			}
		})
	}
}

// TestStripOwned: every spelling of an owned header that a CGI, WSGI or
// PHP server reads as its variable goes, whether sent as a header, named
// in Connection or declared as a trailer.
func TestStripOwned(t *testing.T) {
	for _, name := range []string{"X-User-Id", "X_User_Id", "x-user-id", "X.User.Id", "x.user-id"} {
		t.Run(name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodPost, "http://app.example.com/", strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			r.Header = http.Header{name: {"user_forged"}, "Connection": {"keep-alive, " + name}, "X-Other": {"kept"}}
			r.Trailer = http.Header{name: nil, "X-Checksum": nil}

			stripOwned(r, []string{"X-User-Id"})

			if _, ok := r.Header[name]; ok {
				t.Errorf("header %s was kept", name)
			}
			if got := r.Header.Get("Connection"); got != "keep-alive" {
				t.Errorf("Connection = %q, want keep-alive", got)
			}
			if got := r.Header.Get("X-Other"); got != "kept" {
				t.Errorf("X-Other = %q, want kept", got)
			}
			if _, ok := r.Trailer[name]; ok {
				t.Errorf("trailer %s was kept", name)
			}
			if _, ok := r.Trailer["X-Checksum"]; !ok {
				t.Error("trailer X-Checksum was dropped")
			}
		})
	}
}

// TestDottedLookAlikeBehindFastCGI: with Caddy's expected_dot_headers
// letting X.User.Id through, a FastCGI upstream gets it as HTTP_X.USER.ID
// next to clerk_auth's HTTP_X_USER_ID, and PHP registers both as
// $_SERVER['HTTP_X_USER_ID']. clerk_auth must delete the dotted copy, so
// the only value PHP can read is the verified one, or none.
func TestDottedLookAlikeBehindFastCGI(t *testing.T) {
	iss := clerktest.Start(t)
	app := startFastCGIUpstream(t)
	tester := startCaddyWithOptions(t, `
	servers {
		expected_dot_headers X.User.Id
	}`, fmt.Sprintf(`
:%[1]d {
	route /opt/* {
		clerk_auth {
			issuer %[2]s
			optional
			forward_header X-User-Id {http.auth.user.id}
		}
		reverse_proxy %[3]s {
			transport fastcgi
		}
	}
	route /req/* {
		clerk_auth {
			issuer %[2]s
			forward_header X-User-Id {http.auth.user.id}
		}
		reverse_proxy %[3]s {
			transport fastcgi
		}
	}
}`, caddyPort, iss.URL, app))

	dotted := func(h http.Header) http.Header {
		h["X.User.Id"] = []string{"user_evil"}
		return h
	}
	cases := []struct {
		name   string
		path   string
		header http.Header
		want   []string // every value PHP could read as HTTP_X_USER_ID
		times  int
	}{
		{"anonymous on an optional route", "/opt/x", dotted(http.Header{}), nil, 1},
		// PHP keeps the parameter that arrives last, and Caddy sends them
		// in map order: without the fix the attacker won about half the
		// time. Each try must come out the same.
		{"authenticated attacker", "/req/x", dotted(bearer(iss.Mint())), []string{clerktest.DefaultSubject}, 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.times {
				resp, body := do(t, tester, http.MethodGet, tc.path, tc.header)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("try %d: status %d, body %q", i, resp.StatusCode, body)
				}
				var vars map[string][]string
				if err := json.Unmarshal([]byte(body), &vars); err != nil {
					t.Fatalf("try %d: the FastCGI app answered %q: %v", i, body, err)
				}
				if got := vars["HTTP_X_USER_ID"]; !slices.Equal(got, tc.want) {
					t.Fatalf("try %d: PHP could read HTTP_X_USER_ID as %q, want %q", i, got, tc.want)
				}
			}
		})
	}
}

// startFastCGIUpstream serves a FastCGI application on 127.0.0.1 that
// answers, as JSON, the $_SERVER variables PHP would register from the
// request's HTTP_* parameters, each with every value that could end up
// in it: PHP keeps the last parameter of a name, and the order Caddy sends
// them in is not fixed, so two values mean the client may win.
func startFastCGIUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- fcgi.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			vars := map[string][]string{}
			for name, vals := range r.Header {
				key := phpServerKey(name)
				vars[key] = append(vars[key], vals...)
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(vars)
		}))
	}()
	t.Cleanup(func() {
		ln.Close()
		if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("FastCGI app: %v", err)
		}
	})
	return ln.Addr().String()
}

// phpServerKey is the $_SERVER key PHP registers for a header that
// net/http/fcgi rebuilt from its HTTP_* parameter: upper case, '-' (which
// the parameter had as '_') and '.' both '_'. HTTP_X.USER.ID arrives here
// as X.user.id and is registered as HTTP_X_USER_ID.
func phpServerKey(header string) string {
	return "HTTP_" + strings.Map(func(r rune) rune {
		if r == '-' || r == '.' {
			return '_'
		}
		return unicode.ToUpper(r)
	}, header)
}
