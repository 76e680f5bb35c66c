package handshake

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// APIVersion is the Backend API version Clerk's SDK announces in the
// handshake redirect: SUPPORTED_BAPI_VERSION of @clerk/backend 3.25.0.
const APIVersion = "2026-05-12"

// Query parameters of the handshake protocol.
const (
	paramRedirectURL      = "redirect_url"
	paramAPIVersion       = "__clerk_api_version"
	paramSuffixedCookies  = "suffixed_cookies"
	paramReason           = "__clerk_hs_reason"
	paramFormat           = "format"
	paramSession          = "__session"
	paramDevBrowser       = "__clerk_db_jwt"
	paramLegacyDevBrowser = "__dev_session"
	paramHandshake        = "__clerk_handshake"
	paramHandshakeNonce   = "__clerk_handshake_nonce"
	paramHandshakeHelp    = "__clerk_help"
	paramRedirectBack     = "__clerk_redirect_url"
	paramSynced           = "__clerk_synced"
)

// LoopLimit is how many handshake redirects the __clerk_redirect_count
// cookie allows within its two-second life.
const LoopLimit = 3

// Eligible is Clerk's isRequestEligibleForHandshake: a GET whose
// Sec-Fetch-Dest is document or iframe, or, without Sec-Fetch-Dest, whose
// Accept starts with text/html (case-sensitive). Anything else (fetch, XHR,
// forms, CLIs) keeps its 401: a redirect would only confuse it, and the
// Frontend API answers non-GET handshakes with 405.
func Eligible(method string, h http.Header) bool {
	if method != http.MethodGet {
		return false
	}
	switch dest := headerValue(h, "Sec-Fetch-Dest"); dest {
	case "document", "iframe":
		return true
	case "":
		return strings.HasPrefix(headerValue(h, "Accept"), "text/html")
	}
	return false
}

// headerValue is Fetch's Headers.get: every line of the header joined by
// ", ".
func headerValue(h http.Header, name string) string {
	return strings.Join(h.Values(name), ", ")
}

// handshakeURL is Clerk's buildRedirectToHandshake: the Frontend API's
// /v1/client/handshake with Clerk's parameters in Clerk's order and
// encoding. url.Values would sort them, so the query is written by hand.
func handshakeURL(base string, self *url.URL, reason string, suffixedCookies bool, session, devBrowser string, live bool) (string, bool) {
	if !hasHTTPScheme(base) {
		base = "https://" + base
	}
	b, err := url.Parse(strings.TrimRight(base, "/") + "/")
	if err != nil || b.Host == "" {
		return "", false
	}
	endpoint := b.ResolveReference(&url.URL{Path: "v1/client/handshake"})
	q := []pair{
		{paramRedirectURL, href(withoutParams(self, paramDevBrowser, paramLegacyDevBrowser))},
		{paramAPIVersion, APIVersion},
		{paramSuffixedCookies, strconv.FormatBool(suffixedCookies)},
		{paramReason, reason},
		{paramFormat, "nonce"},
	}
	if session != "" {
		q = append(q, pair{paramSession, session})
	}
	if !live && devBrowser != "" {
		q = append(q, pair{paramDevBrowser, devBrowser})
	}
	endpoint.RawQuery = serializeForm(q)
	return href(endpoint), true
}

func hasHTTPScheme(s string) bool {
	return schemeAt(s) > 0
}

// redirectCount is Clerk's `Number(__clerk_redirect_count) || 0`.
func redirectCount(c Cookies) float64 {
	n := jsStringToNumber(c.get(CookieRedirectCount))
	if math.IsNaN(n) {
		return 0
	}
	return n
}

// redirectCountCookie is the Set-Cookie that counts one more handshake
// redirect, byte for byte Clerk's (no Path, Domain or Secure).
func redirectCountCookie(count float64) string {
	return CookieRedirectCount + "=" + jsNumberString(count+1) + "; SameSite=Lax; HttpOnly; Max-Age=2"
}

// jsNumberString formats a number the way JavaScript's String(n) does for
// the values a counter takes.
func jsNumberString(n float64) string {
	switch {
	case math.IsInf(n, 1):
		return "Infinity"
	case math.IsInf(n, -1):
		return "-Infinity"
	case math.Abs(n) >= 1e21:
		return strconv.FormatFloat(n, 'g', -1, 64)
	}
	return strconv.FormatFloat(n, 'f', -1, 64)
}
