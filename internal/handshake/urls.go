package handshake

import (
	"net/url"
	"slices"
	"strings"
)

// The WHATWG URL behaviour Clerk's SDK relies on (new URL, searchParams),
// reproduced where it shows in a Location header.

type pair struct{ name, value string }

// parseForm is the application/x-www-form-urlencoded parser: '&'-separated
// pairs, empty ones skipped, '+' is a space, percent escapes decoded
// leniently (a bad escape stays as written), invalid UTF-8 replaced.
func parseForm(q string) []pair {
	var out []pair
	for _, part := range strings.Split(q, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		out = append(out, pair{formDecode(name), formDecode(value)})
	}
	return out
}

func formDecode(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	if !strings.Contains(s, "%") {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// serializeForm is URLSearchParams' serializer: only ASCII letters, digits
// and *-._ stay bare, a space becomes '+', everything else is %XX. Go's
// url.QueryEscape differs on '*' and '~', and url.Values sorts the keys.
func serializeForm(pairs []pair) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		formEscape(&b, p.name)
		b.WriteByte('=')
		formEscape(&b, p.value)
	}
	return b.String()
}

func formEscape(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '*', c == '-', c == '.', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
}

// withoutParams is a copy of u with the named query parameters deleted
// through searchParams: the rest of the query is re-serialized, and an
// empty query loses its '?'.
func withoutParams(u *url.URL, names ...string) *url.URL {
	c := *u
	var kept []pair
	for _, p := range parseForm(u.RawQuery) {
		if !slices.Contains(names, p.name) {
			kept = append(kept, p)
		}
	}
	c.RawQuery = serializeForm(kept)
	c.ForceQuery = false
	c.Fragment, c.RawFragment = "", ""
	return &c
}

// href serializes an absolute http(s) URL as WHATWG's href does for the
// URLs seen here: scheme and host lower-cased, the default port dropped.
func href(u *url.URL) string {
	s := origin(u) + u.EscapedPath()
	if s == origin(u) {
		s += "/"
	}
	if u.RawQuery != "" || u.ForceQuery {
		s += "?" + u.RawQuery
	}
	return s
}

// origin is the URL's origin: scheme://host[:port], lower-cased, without a
// default port; "null" for anything but http and https.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	switch scheme {
	case "http":
		host = strings.TrimSuffix(host, ":80")
	case "https":
		host = strings.TrimSuffix(host, ":443")
	default:
		return "null"
	}
	return scheme + "://" + host
}
