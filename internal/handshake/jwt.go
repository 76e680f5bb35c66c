package handshake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// peeked is a JWT decoded the way Clerk's decodeJwt decodes it, WITHOUT any
// verification: the state machine reads iss, iat, exp, sub, typ and cat
// before (and to decide whether) the token is verified.
type peeked struct {
	header, payload map[string]any
}

// peek decodes like decodeJwt: three dot-separated segments, unpadded or
// padded base64url with zero trailing bits, and JSON header and payload.
// A JSON value that is not an object decodes to an empty object.
func peek(token string) (peeked, bool) {
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		return peeked{}, false
	}
	header, ok := segmentJSON(segs[0])
	if !ok {
		return peeked{}, false
	}
	payload, ok := segmentJSON(segs[1])
	if !ok {
		return peeked{}, false
	}
	if _, ok := looseBase64URL(segs[2]); !ok {
		return peeked{}, false
	}
	return peeked{header: header, payload: payload}, true
}

func looseBase64URL(seg string) ([]byte, bool) {
	// Go's decoder skips CR and LF; Clerk's refuses them.
	if strings.ContainsAny(seg, "\r\n") {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(seg, "="))
	return b, err == nil
}

func segmentJSON(seg string) (map[string]any, bool) {
	b, ok := looseBase64URL(seg)
	if !ok {
		return nil, false
	}
	// TextDecoder drops a byte order mark before JSON.parse sees the text.
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil, false
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, true
}

// jsNumber is JavaScript's ToNumber of a decoded JSON value, for the
// comparisons Clerk makes on unverified claims. ok is false for a missing
// claim (undefined), which fails every comparison.
func jsNumber(v any, present bool) (n float64, ok bool) {
	if !present {
		return 0, false
	}
	switch x := v.(type) {
	case float64:
		return x, true
	case nil:
		return 0, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case string:
		return jsStringToNumber(x), true
	}
	return math.NaN(), true
}

func (p peeked) claimNumber(name string) (float64, bool) {
	v, present := p.payload[name]
	return jsNumber(v, present)
}

// claimNumberOrZero is `payload[name] || 0`: falsy values count as 0.
func (p peeked) claimNumberOrZero(name string) float64 {
	n, ok := p.claimNumber(name)
	if !ok || math.IsNaN(n) {
		return 0
	}
	return n
}

// truthyClaim is `!!payload[name]`.
func (p peeked) truthyClaim(name string) bool {
	switch x := p.payload[name].(type) {
	case nil:
		return false
	case string:
		return x != ""
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	}
	return true
}

// jsStringToNumber is ToNumber on a string: whitespace trimmed, "" is 0,
// decimal, Infinity and 0x/0o/0b integers; anything else is NaN.
func jsStringToNumber(s string) float64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	switch s {
	case "Infinity", "+Infinity":
		return math.Inf(1)
	case "-Infinity":
		return math.Inf(-1)
	}
	if len(s) > 2 && s[0] == '0' {
		base := map[byte]int{'x': 16, 'X': 16, 'o': 8, 'O': 8, 'b': 2, 'B': 2}[s[1]]
		if base != 0 {
			if strings.ContainsRune(s[2:], '_') {
				return math.NaN()
			}
			n, err := strconv.ParseUint(s[2:], base, 64)
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		}
	}
	if strings.Trim(s, "0123456789.eE+-") != "" {
		return math.NaN()
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil && n == 0 {
		return math.NaN()
	}
	return n
}

// jsParseInt is parseInt(s) || 0 for the __client_uat cookie: leading
// whitespace, an optional sign, then the longest run of digits (hex after
// 0x); no digits at all is 0.
func jsParseInt(s string) float64 {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	sign := 1.0
	if s != "" && (s[0] == '+' || s[0] == '-') {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	base, digits := 10, "0123456789"
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base, digits, s = 16, "0123456789abcdefABCDEF", s[2:]
	}
	end := 0
	for end < len(s) && strings.IndexByte(digits, s[end]) >= 0 {
		end++
	}
	if end == 0 {
		return 0
	}
	n := 0.0
	for _, c := range s[:end] {
		d, _ := strconv.ParseUint(string(c), base, 8)
		n = n*float64(base) + float64(d)
	}
	return sign * n
}

// JWT categories (the header's cat) that are session tokens for Clerk.
const (
	catSession = "cl_B7d4PD111AAA"
	catIgnore  = "cl_I7d4PD111III"
)

// nonSessionCategory is Clerk's isNonSessionJwtCategory: a cat member is
// present (JSON null included) and is neither the session nor the ignore
// category. JWT templates, M2M and unknown categories are not sessions.
func nonSessionCategory(p peeked) bool {
	cat, present := p.header["cat"]
	return present && cat != catSession && cat != catIgnore
}

// isMachineJWT is Clerk's isMachineJwt: a strictly base64url-shaped JWT
// that is an OAuth access token (typ at+jwt) or an M2M token (sub mch_...).
func isMachineJWT(token string, p peeked) bool {
	if !strictJWTShape(token) {
		return false
	}
	switch p.header["typ"] {
	case "at+jwt", "application/at+jwt":
		return true
	}
	sub, _ := p.payload["sub"].(string)
	return strings.HasPrefix(sub, "mch_")
}

// strictJWTShape is /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.
func strictJWTShape(token string) bool {
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		return false
	}
	for _, seg := range segs {
		if seg == "" || strings.Trim(seg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
			return false
		}
	}
	return true
}
