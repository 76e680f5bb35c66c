package clerkauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// clientUATCookie holds the unix time of the client's last sign-in change;
// "0" or absent means signed out.
const clientUATCookie = "__client_uat"

// sessionCookieFor picks the session cookie the way Clerk's SDK does when
// several Clerk apps share a domain: clerk-js then sets both the plain
// __session and the instance's suffixed __session_<suffix>, and
// usesSuffixedCookies() decides which pair (session + __client_uat) is
// this instance's. Without a publishable key only the plain cookie exists.
func sessionCookieFor(r *http.Request, pk *publishableKey, now time.Time) string {
	plain := cookieValue(r, sessionCookie)
	if pk == nil {
		return plain
	}
	if useSuffixedCookies(r, pk, plain, now) {
		return cookieValue(r, sessionCookie+"_"+pk.suffix)
	}
	return plain
}

func useSuffixedCookies(r *http.Request, pk *publishableKey, plain string, now time.Time) bool {
	suffixed := cookieValue(r, sessionCookie+"_"+pk.suffix)
	suffixedUAT, hasSuffixedUAT := uatCookie(r, clientUATCookie+"_"+pk.suffix)
	plainUAT, _ := uatCookie(r, clientUATCookie)
	plainClaims := peekClaims(plain)

	switch {
	case plain != "" && plainClaims.Iss == "":
		// 1. A plain session without iss (or undecodable) is this app's:
		// Clerk then reports signed-out rather than looping a handshake.
		return false
	case plain != "" && stripScheme(plainClaims.Iss) != pk.host:
		// 2. The plain session belongs to another Clerk instance.
		return true
	case !hasSuffixedUAT && suffixed == "":
		// 3. This instance never set suffixed cookies.
		return false
	}
	suffixedClaims := peekClaims(suffixed)
	switch {
	case suffixedUAT != 0 && plainUAT != 0 && plainClaims.Iat > suffixedClaims.Iat:
		// 4. The plain session is the newer one.
		return false
	case suffixedUAT == 0 && plainUAT != 0:
		// 5. Signed in through plain cookies only.
		return false
	case !pk.live && suffixedUAT != 0 && plainUAT == 0 && suffixedClaims.Exp != 0 &&
		suffixedClaims.Exp <= float64(now.Unix()):
		// 6. Development only: a stale suffixed session loses to the plain one.
		return false
	case suffixed != "" && !hasSuffixedUAT:
		// 7. The Frontend API has suffixed cookies turned off.
		return false
	}
	return true
}

// cookieValue returns the first cookie named name. Go splits the header on
// ';' and '=' without percent-decoding, which is what Clerk requires.
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// uatCookie reads a __client_uat cookie as Clerk does: parseInt(v) || 0.
func uatCookie(r *http.Request, name string) (int64, bool) {
	c, err := r.Cookie(name)
	if err != nil {
		return 0, false
	}
	n, _ := strconv.ParseInt(c.Value, 10, 64)
	return n, true
}

type peekedClaims struct {
	Iss string  `json:"iss"`
	Iat float64 `json:"iat"`
	Exp float64 `json:"exp"`
}

// peekClaims decodes a token's payload WITHOUT verifying it. It only ever
// chooses between two cookies; whatever is chosen is then fully verified.
func peekClaims(token string) peekedClaims {
	var c peekedClaims
	parts := strings.SplitN(token, ".", 3)
	if len(parts) != 3 {
		return c
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c
	}
	_ = json.Unmarshal(b, &c)
	return c
}

func stripScheme(u string) string {
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return rest
	}
	return strings.TrimPrefix(u, "http://")
}
