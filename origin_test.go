package clerkauth

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

func TestCanonicalOrigin(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"https://app.example.com", "https://app.example.com", true},
		{"HTTPS://App.Example.COM", "https://app.example.com", true},
		{"https://app.example.com:443", "https://app.example.com", true},
		{"http://app.example.com:80", "http://app.example.com", true},
		{"http://app.example.com:443", "http://app.example.com:443", true},
		{"https://app.example.com:80", "https://app.example.com:80", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"http://[::1]:80", "http://[::1]", true},
		{"null", "", false},
		{"", "", false},
		{"https://app.example.com/", "", false},
		{"https://app.example.com/path", "", false},
		{"https://app.example.com?", "", false},
		{"https://user@app.example.com", "", false},
		{"ftp://app.example.com", "", false},
		{"app.example.com", "", false},
		{"https://", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := canonicalOrigin(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("canonicalOrigin(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestCrossSite: the request's own origin (as it arrived, default port or
// not) and the trusted origins are same-site; anything else a browser names
// is cross-site; a request that names nothing is not.
func TestCrossSite(t *testing.T) {
	trusted := []string{"https://app.example.com"}
	cases := []struct {
		name   string
		host   string
		tls    bool
		header http.Header
		want   bool
	}{
		{"no Origin, no Sec-Fetch-Site", "api.example.com", true, nil, false},
		{"own origin", "api.example.com", true, http.Header{"Origin": {"https://api.example.com"}}, false},
		{"own origin, Host with the default port", "api.example.com:443", true, http.Header{"Origin": {"https://api.example.com"}}, false},
		{"own origin, other case", "API.example.com", true, http.Header{"Origin": {"https://api.EXAMPLE.com"}}, false},
		{"own host over the other scheme", "api.example.com", false, http.Header{"Origin": {"https://api.example.com"}}, true},
		{"own host, other port", "127.0.0.1:8080", false, http.Header{"Origin": {"http://127.0.0.1:8081"}}, true},
		{"trusted origin", "api.example.com", true, http.Header{"Origin": {"https://app.example.com"}}, false},
		{"other origin", "api.example.com", true, http.Header{"Origin": {"https://evil.example"}}, true},
		{"null Origin", "api.example.com", true, http.Header{"Origin": {"null"}}, true},
		{"malformed Origin", "api.example.com", true, http.Header{"Origin": {"https://api.example.com/"}}, true},
		{"two Origins", "api.example.com", true, http.Header{"Origin": {"https://api.example.com", "https://evil.example"}}, true},
		{"Sec-Fetch-Site cross-site, own Origin", "api.example.com", true, http.Header{"Origin": {"https://api.example.com"}, "Sec-Fetch-Site": {"cross-site"}}, true},
		{"Sec-Fetch-Site cross-site, no Origin", "api.example.com", true, http.Header{"Sec-Fetch-Site": {"cross-site"}}, true},
		{"Sec-Fetch-Site same-site, no Origin", "api.example.com", true, http.Header{"Sec-Fetch-Site": {"same-site"}}, false},
		{"Sec-Fetch-Site same-origin, other Origin", "api.example.com", true, http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"same-origin"}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{Method: http.MethodPost, Host: tc.host, Header: tc.header}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := crossSite(r, trusted); got != tc.want {
				t.Fatalf("crossSite = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRequestOrigin: X-Forwarded-Proto and X-Forwarded-Host count only from
// a trusted proxy, only their first value, and only when it is a scheme and
// a bare host.
func TestRequestOrigin(t *testing.T) {
	cases := []struct {
		name    string
		trusted bool
		tls     bool
		header  http.Header
		want    string
	}{
		{"as it arrived", false, false, nil, "http://internal:8080"},
		{"as it arrived over TLS", false, true, nil, "https://internal:8080"},
		{"forwarded by an untrusted client", false, false, http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"public.example"}}, "http://internal:8080"},
		{"forwarded by a trusted proxy", true, false, http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"public.example"}}, "https://public.example"},
		{"trusted, first of several values", true, false, http.Header{"X-Forwarded-Proto": {"HTTPS, http", "http"}, "X-Forwarded-Host": {" public.example:8443 , internal"}}, "https://public.example:8443"},
		{"trusted, scheme only", true, false, http.Header{"X-Forwarded-Proto": {"https"}}, "https://internal:8080"},
		{"trusted, host only", true, true, http.Header{"X-Forwarded-Host": {"[2001:db8::1]:443"}}, "https://[2001:db8::1]:443"},
		{"trusted, unknown scheme", true, false, http.Header{"X-Forwarded-Proto": {"javascript"}}, "http://internal:8080"},
		{"trusted, host with a path", true, false, http.Header{"X-Forwarded-Host": {"public.example/evil"}}, "http://internal:8080"},
		{"trusted, host with user info", true, false, http.Header{"X-Forwarded-Host": {"evil.example@public.example"}}, "http://internal:8080"},
		{"trusted, host with a query", true, false, http.Header{"X-Forwarded-Host": {"public.example?x"}}, "http://internal:8080"},
		{"trusted, host with a space", true, false, http.Header{"X-Forwarded-Host": {"public example"}}, "http://internal:8080"},
		{"trusted, bad port", true, false, http.Header{"X-Forwarded-Host": {"public.example:x"}}, "http://internal:8080"},
		{"trusted, empty values", true, false, http.Header{"X-Forwarded-Proto": {""}, "X-Forwarded-Host": {", public.example"}}, "http://internal:8080"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.WithValue(context.Background(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.TrustedProxyVarKey: tc.trusted})
			r := (&http.Request{Host: "internal:8080", Header: tc.header}).WithContext(ctx)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := requestOrigin(r); got != tc.want {
				t.Fatalf("requestOrigin = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestForwardedOriginThroughCaddy: behind a TLS-terminating proxy listed in
// trusted_proxies, the sign-in redirect_url and the same-origin check use
// the public origin the proxy forwards; without trusted_proxies, the same
// headers are the client's and change nothing.
func TestForwardedOriginThroughCaddy(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	sites := fmt.Sprintf(`
:%d {
	clerk_auth {
		issuer %s
		sign_in_url https://accounts.example.com/sign-in
		forward_header X-User-Id {http.auth.user.id}
	}
	reverse_proxy %s
	handle_errors {
		header X-Reason {http.auth.clerk.reason}
		respond {err.status_code}
	}
}`, caddyPort, iss.URL, up.addr())
	direct := fmt.Sprintf("127.0.0.1:%d", caddyPort)
	forwarded := http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"public.example"}}
	for _, setup := range []struct {
		name    string
		options string
		origin  string // the origin clerk_auth must see
	}{
		{"without trusted_proxies", "", "http://" + direct},
		{"with trusted_proxies", "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}", "https://public.example"},
	} {
		t.Run(setup.name, func(t *testing.T) {
			tester := startCaddyWithOptions(t, setup.options, sites)
			tester.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			send := func(method string, header http.Header) *http.Response {
				t.Helper()
				// To 127.0.0.1, the trusted address, whatever localhost
				// resolves to.
				req, err := http.NewRequest(method, "http://"+direct+"/dash?tab=1", nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header = header
				resp, _ := roundTrip(t, tester, req)
				return resp
			}

			t.Run("sign-in redirect_url", func(t *testing.T) {
				h := forwarded.Clone()
				h.Set("Sec-Fetch-Dest", "document")
				resp := send(http.MethodGet, h)
				want := "https://accounts.example.com/sign-in?redirect_url=" + url.QueryEscape(setup.origin+"/dash?tab=1")
				if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
					t.Fatalf("status %d Location %q, want 307 %q", resp.StatusCode, resp.Header.Get("Location"), want)
				}
			})
			for _, origin := range []string{"https://public.example", "http://" + direct} {
				t.Run("cookie POST from "+origin, func(t *testing.T) {
					up.reset()
					h := forwarded.Clone()
					h.Set("Cookie", "__session="+iss.Mint())
					h.Set("Origin", origin)
					resp := send(http.MethodPost, h)
					if origin == setup.origin {
						if resp.StatusCode != http.StatusOK || up.last().Get("X-User-Id") != clerktest.DefaultSubject {
							t.Fatalf("same origin: status %d (reason %q), want 200 with the user", resp.StatusCode, resp.Header.Get("X-Reason"))
						}
						return
					}
					if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Reason") != ReasonCrossSiteCookie {
						t.Fatalf("other origin: status %d reason %q, want 401 %q", resp.StatusCode, resp.Header.Get("X-Reason"), ReasonCrossSiteCookie)
					}
				})
			}
		})
	}
}
