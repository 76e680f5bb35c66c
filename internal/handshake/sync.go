package handshake

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Multi-domain sync on the primary domain: the development
// __clerk_redirect_url answer (rows 1–3 of the decision table, primary
// side only) and the cross-origin page load (row 13).

// primarySync is Clerk's development primary answering a satellite's sync
// request: redirect to __clerk_redirect_url with the dev-browser token and
// __clerk_synced=true. Unlike Clerk, which redirects anywhere, the target
// must be on the request's own origin or an authorized party's; any other
// target, or one that does not parse, is ignored and the request goes on
// through the table as if the parameter were absent.
func (s *state) primarySync() (Decision, bool) {
	target := s.queryValue(paramRedirectBack)
	if s.inst.Live || target == "" {
		return Decision{}, false
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" || !s.allowedOrigin(origin(u)) {
		return Decision{}, false
	}
	q := parseForm(u.RawQuery)
	if s.devBrowser != "" {
		q = append(q, pair{paramDevBrowser, s.devBrowser})
	}
	q = setParam(q, paramSynced, "true")
	u.RawQuery = serializeForm(q)
	loc := href(u)
	if u.Fragment != "" {
		loc += "#" + u.EscapedFragment()
	}
	return s.maybeHandshake(ReasonPrimaryRespondsToSyncing, loc), true
}

// setParam is searchParams.set: the first name=... takes the value, later
// ones go; without one, the pair is appended.
func setParam(q []pair, name, value string) []pair {
	i := slices.IndexFunc(q, func(p pair) bool { return p.name == name })
	if i < 0 {
		return append(q, pair{name, value})
	}
	q[i].value = value
	later := slices.DeleteFunc(slices.Clone(q[i+1:]), func(p pair) bool { return p.name == name })
	return slices.Concat(q[:i+1], later)
}

// allowedOrigin: the request's own origin, or an authorized party's.
func (s *state) allowedOrigin(o string) bool {
	if o == "null" {
		return false
	}
	if o == origin(s.req.URL) {
		return true
	}
	for _, party := range s.inst.AuthorizedParties {
		if u, err := url.Parse(party); err == nil && origin(u) == o {
			return true
		}
	}
	return false
}

// crossOriginSync is row 13: a signed-in page load coming from another
// site (a satellite domain, in Clerk's design) is sent through the
// handshake once, so the primary's session reaches the satellite.
func (s *state) crossOriginSync() bool {
	if s.req.Method != http.MethodGet || headerValue(s.req.Header, "Sec-Fetch-Dest") != "document" || s.count != 0 {
		return false
	}
	ref := referrer(s.req.Header)
	return ref != nil && origin(ref) != origin(s.req.URL) && !s.knownClerkReferrer(ref)
}

// referrer is the Referer as an absolute URL, or nil.
func referrer(h http.Header) *url.URL {
	v := headerValue(h, "Referer")
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || (hasHTTPScheme(v) && u.Host == "") {
		return nil
	}
	return u
}

// knownClerkReferrer is Clerk's isKnownClerkReferrer: the Frontend API,
// its Account Portal, or (development only) a development Account Portal.
func (s *state) knownClerkReferrer(ref *url.URL) bool {
	host := strings.ToLower(ref.Hostname())
	fapi := s.frontendAPI()
	fapiHost := fapi
	if strings.HasPrefix(fapi, "http") {
		if u, err := url.Parse(fapi); err == nil {
			fapiHost = strings.ToLower(u.Hostname())
		}
	}
	if host == fapiHost {
		return true
	}
	if !s.inst.Live && (legacyDevPortal(host) || currentDevPortal(host)) {
		return true
	}
	accounts, err := url.Parse(accountsBaseURL(fapi))
	return err == nil && origin(ref) == origin(accounts)
}

// accountsBaseURL is @clerk/shared's buildAccountsBaseUrl: the Account
// Portal next to a Frontend API host (clerk.x → accounts.x).
func accountsBaseURL(fapi string) string {
	fapi = strings.Replace(fapi, "clerk.accountsstage.", "accountsstage.", 1)
	if i := strings.Index(fapi, "clerk."); i >= 0 {
		if strings.HasPrefix(fapi[i:], "clerk.accounts.") {
			fapi = fapi[:i] + "accounts." + fapi[i+len("clerk.accounts."):]
		} else {
			fapi = fapi[:i] + "accounts." + fapi[i+len("clerk."):]
		}
	}
	return "https://" + fapi
}

func legacyDevPortal(host string) bool {
	return strings.HasPrefix(host, "accounts.") && hasAnySuffix(host, ".lcl.dev", ".lclstage.dev", ".lclclerk.com")
}

func currentDevPortal(host string) bool {
	for _, suffix := range []string{".accounts.dev", ".accountsstage.dev", ".accounts.lclclerk.com"} {
		if strings.HasSuffix(host, suffix) && !strings.HasSuffix(host, ".clerk"+suffix) {
			return true
		}
	}
	return false
}

func hasAnySuffix(s string, suffixes ...string) bool {
	return slices.ContainsFunc(suffixes, func(suffix string) bool { return strings.HasSuffix(s, suffix) })
}
