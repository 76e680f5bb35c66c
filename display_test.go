package clerkauth

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

func TestShown(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain ASCII", "user_2abc", "user_2abc"},
		{"plain with spaces and punctuation", "https://a.example/x?y=1 z", "https://a.example/x?y=1 z"},
		{"plain non-ASCII letters", "Zoë Ångström 東京", "Zoë Ångström 東京"},
		{"empty", "", ""},
		{"ESC", "\x1b[2J", `"\x1b[2J"`},
		{"CR LF", "a\r\nVALID", `"a\r\nVALID"`},
		{"tab", "a\tb", `"a\tb"`},
		{"OSC 8 link", "\x1b]8;;http://evil\x07x", `"\x1b]8;;http://evil\ax"`},
		{"DEL", "a\x7f", `"a\x7f"`},
		{"C1 CSI", "a\u009b2J", `"a\u009b2J"`},
		{"bidi override", "abc\u202Edef", `"abc\u202edef"`},
		{"bidi isolate", "\u2066x\u2069", `"\u2066x\u2069"`},
		{"zero width space", "a\u200bb", `"a\u200bb"`},
		{"invalid UTF-8", "a\xffb", `"a\xffb"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shown(tc.in); got != tc.want {
				t.Errorf("shown(%q) = %s, want %s", tc.in, got, tc.want)
			}
			if again := shown(shown(tc.in)); again != shown(tc.in) {
				t.Errorf("shown is not idempotent: %s, then %s", shown(tc.in), again)
			}
		})
	}
}

func TestShownJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", `{"sub": "user_1"}`, `{"sub": "user_1"}`},
		{"indentation kept", "{\n  \"a\": 1\n}", "{\n  \"a\": 1\n}"},
		{"bidi in a string", "[\"a\u202Eb\"]", `["a\u202eb"]`},
		{"DEL and C1", "\"\x7f\u009b\"", `"\u007f\u009b"`},
		{"outside the BMP", "\"\U000E0041\"", `"\udb40\udc41"`},
		{"invalid UTF-8", "\"\xff\"", `"\xff"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shownJSON([]byte(tc.in)); got != tc.want {
				t.Errorf("shownJSON(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

// hostile is what a token could carry to take over the terminal of whoever
// runs clerk-token on it: clear the screen, start a line with a fake
// verdict, hide a link, and reverse the text after it.
const hostile = "\x1b[2J\r\nVALID\n  status  200: the request goes on as user_admin\n" +
	"\x1b]8;;http://evil\x07click\x1b]8;;\x07\u202Eevil\u2066x\u2069\x7f\u009b2J"

// notPlain returns the first rune of out, with its byte offset, that is
// not printable text or the newline the report's lines end with; ok is
// false when there is none.
func notPlain(out string) (r rune, at int, ok bool) {
	for i, r := range out {
		if r == utf8.RuneError && !strings.HasPrefix(out[i:], "\uFFFD") {
			return r, i, true // an invalid byte
		}
		if r != '\n' && !unicode.IsPrint(r) {
			return r, i, true
		}
	}
	return 0, 0, false
}

// linesStarting are the lines of out that start with prefix once indented.
func linesStarting(out, prefix string) []string {
	var found []string
	for _, line := range strings.Split(out, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, prefix) {
			found = append(found, l)
		}
	}
	return found
}

func TestClerkTokenHostileStrings(t *testing.T) {
	iss := clerktest.Start(t)
	caddyfile := writeFile(t, filepath.Join(t.TempDir(), "Caddyfile"), sitesCaddyfile(iss.URL)+strings.ReplaceAll(`
claim.example.com {
	clerk_auth {
		issuer ISS
		claim metadata.plan pro
	}
	respond ok
}

plan.example.com {
	clerk_auth {
		issuer ISS
		plan pro
	}
	respond ok
}

aud.example.com {
	clerk_auth {
		issuer ISS
		audience your-api
	}
	respond ok
}
`, "ISS", iss.URL))
	kidHeader := fmt.Sprintf(`{"alg":"RS256","cat":%q,"kid":%q,"typ":"JWT"}`, clerktest.CatSession, iss.KID())
	cases := []struct {
		name, site, token string
		verdict           string // the verdict line's start with --config
	}{
		{"kid", "api.example.com", mintToken(iss, headerOpt("kid", hostile)), "REJECTED: jwk-kid-mismatch"},
		{"kid not a string", "api.example.com", mintToken(iss, headerOpt("kid", map[string]any{hostile: hostile})), "REJECTED: token-invalid"},
		{"typ", "api.example.com", mintToken(iss, headerOpt("typ", hostile)), "REJECTED: token-invalid"},
		{"cat", "api.example.com", mintToken(iss, headerOpt("cat", hostile)), "REJECTED: token-type-mismatch"},
		{"crit", "api.example.com", mintToken(iss, headerOpt("crit", []string{hostile})), "REJECTED: token-invalid"},
		{"sub, rejected", "roles.example.com", mintToken(iss, claimsOpt("sub", "user_"+hostile)), "REJECTED: missing-role"},
		{"sub, accepted", "api.example.com", mintToken(iss, claimsOpt("sub", "user_"+hostile)), "VALID"},
		{"iss", "api.example.com", mintToken(iss, claimsOpt("iss", hostile)), "REJECTED: token-invalid-issuer"},
		{"azp", "api.example.com", mintToken(iss, claimsOpt("azp", hostile)), "REJECTED: token-invalid-authorized-parties"},
		{"aud", "aud.example.com", mintToken(iss, claimsOpt("aud", hostile)), "REJECTED: token-invalid-audience"},
		{"sid, sts and act", "roles.example.com", mintToken(iss, claimsOpt("sid", hostile, "sts", hostile, "act", map[string]any{"sub": hostile})), "REJECTED: missing-role"},
		{"v1 org", "org.example.com", mintToken(iss, clerktest.V1Org(hostile, hostile, hostile, hostile)), "REJECTED: missing-org-role"},
		{"v2 org", "org.example.com", mintToken(iss, clerktest.V2(clerktest.OrgV2{ID: hostile, Slug: hostile, Role: hostile, Per: hostile, Fpm: hostile}),
			claimsOpt("fea", "o:"+hostile)), "REJECTED: missing-org-role"},
		{"roles", "roles.example.com", mintToken(iss, claimsOpt("roles", []string{hostile, "viewer"})), "REJECTED: missing-role"},
		{"features and plans", "plan.example.com", mintToken(iss, claimsOpt("fea", "u:"+hostile, "pla", "u:"+hostile)), "REJECTED: missing-plan"},
		{"custom claim", "claim.example.com", mintToken(iss, claimsOpt("metadata", map[string]any{"plan": hostile})), "REJECTED: claim-mismatch"},
		{"claim name", "roles.example.com", mintToken(iss, claimsOpt(hostile, hostile)), "REJECTED: missing-role"},
		{"invalid UTF-8", "api.example.com", clerktest.SegmentsJSON(kidHeader,
			fmt.Sprintf("{\"sub\":\"user_\xff\x9b\xc2\x9b\",\"iss\":%q,\"exp\":%d}", iss.URL, checkedAt.Unix()+60), iss.PrivateKey()),
			"REJECTED: token-verification-failed"},
	}
	now := checkedAt.Format(time.RFC3339)
	for _, tc := range cases {
		for _, mode := range []struct {
			name string
			o    clerkTokenOptions
		}{
			{"report", clerkTokenOptions{now: now}},
			{"verdict", clerkTokenOptions{config: caddyfile, site: tc.site, now: now}},
		} {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				var out bytes.Buffer
				code, err := runClerkToken(context.Background(), mode.o, []string{tc.token}, strings.NewReader(""), &out)
				if code == 2 {
					t.Fatalf("usage error: %v", err)
				}
				got := out.String()
				if r, at, ok := notPlain(got); ok {
					t.Errorf("output has %q at byte %d:\n%s", r, at, strings.ToValidUTF8(got, "?"))
				}
				if mode.o.config == "" {
					return
				}
				v := append(linesStarting(got, "VALID"), linesStarting(got, "REJECTED")...)
				if len(v) != 1 || !strings.HasPrefix(v[0], tc.verdict) {
					t.Errorf("verdict lines %q, want one starting with %q:\n%s", v, tc.verdict, strings.ToValidUTF8(got, "?"))
				}
				if ok := linesStarting(got, "status  200"); strings.HasPrefix(tc.verdict, "REJECTED") && len(ok) > 0 {
					t.Errorf("a rejection has the lines %q:\n%s", ok, strings.ToValidUTF8(got, "?"))
				}
			})
		}
	}
}
