package clerkauth

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The cross_site_cookies settings: refuse a session cookie on a cross-site
// state-changing request (the default), or accept it as Clerk's SDK does.
const (
	crossSiteCookiesRefuse = "refuse"
	crossSiteCookiesAllow  = "allow"
)

// isSafeMethod reports the methods RFC 9110 §9.2.1 defines as safe: they
// must not change state, so a forged cross-site one gains nothing.
func isSafeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// crossSite reports a request a browser sent on behalf of a page of another
// origin: `Sec-Fetch-Site: cross-site`, or an Origin that is neither the
// request's own origin nor one of trusted. Browsers set both headers
// themselves, and no page can forge them. An Origin of "null" (sandboxed
// frames, cross-origin redirects, local files), a malformed one or several
// of them are cross-site. A request with neither header (curl, a server, an
// old browser) is not: it was not sent by another site's page.
func crossSite(r *http.Request, trusted []string) bool {
	if slices.Contains(r.Header.Values("Sec-Fetch-Site"), "cross-site") {
		return true
	}
	origins := r.Header.Values("Origin")
	switch len(origins) {
	case 0:
		return false
	case 1:
	default:
		return true
	}
	origin, ok := canonicalOrigin(origins[0])
	if !ok {
		return true
	}
	if own, ok := canonicalOrigin(requestOrigin(r)); ok && origin == own {
		return false
	}
	return !slices.Contains(trusted, origin)
}

// requestOrigin is the origin the client addressed: the scheme and the
// host as the request arrived, or, when it came from one of the server's
// trusted_proxies, as that proxy says it arrived there (the first value of
// X-Forwarded-Proto and X-Forwarded-Host): behind a load balancer that
// terminates TLS, the request reaches Caddy over http for a host of its
// own. From anyone else these headers are the client's say-so and are
// ignored, as Caddy's own client-IP logic ignores X-Forwarded-For.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if p := strings.ToLower(firstForwarded(r.Header, "X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if h := firstForwarded(r.Header, "X-Forwarded-Host"); validForwardedHost(h) {
			host = h
		}
	}
	return scheme + "://" + host
}

// firstForwarded is the first value of a forwarded header: the one the
// proxy nearest the client wrote, when each proxy on the way appended one.
func firstForwarded(h http.Header, name string) string {
	first, _, _ := strings.Cut(h.Get(name), ",")
	return strings.TrimSpace(first)
}

// validForwardedHost accepts a host[:port] and nothing more: the value
// ends up in redirect_url, so a path, user info or stray character must not
// ride along.
func validForwardedHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._:[]", c) >= 0) {
			return false
		}
	}
	u, err := url.Parse("http://" + h)
	return err == nil && u.Host == h
}

// canonicalOrigin is an origin as browsers serialise it (RFC 6454 §6.1):
// lower-case scheme and host, and no port when it is the scheme's default,
// so that `https://App.example.com:443` and `https://app.example.com`
// compare equal. Anything but a bare http(s) origin is refused.
func canonicalOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return u.Scheme + "://" + host, true
}

// canonicalOrigins keeps the entries of list that are origins, canonical.
func canonicalOrigins(list []string) []string {
	var out []string
	for _, s := range list {
		if o, ok := canonicalOrigin(s); ok {
			out = append(out, o)
		}
	}
	return out
}

// publicURL is the URL the browser asked for, with the origin as
// requestOrigin reads it: what Clerk's SDK calls clerkUrl.
func publicURL(r *http.Request) *url.URL {
	u, err := url.Parse(requestOrigin(r) + r.URL.RequestURI())
	if err != nil {
		return &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	}
	return u
}
