package clerkauth

import (
	"crypto/tls"
	"net/http"
	"testing"
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
