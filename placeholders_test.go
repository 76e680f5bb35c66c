package clerkauth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// IdentityFrom hands later handlers exactly what clerk_auth verified, and
// nothing on requests it did not authenticate.
func TestIdentityFrom(t *testing.T) {
	iss := clerktest.Start(t)
	h := &Handler{Issuers: []string{iss.URL}, JWTKey: iss.PublicKeyPEM(), Optional: true, logger: zap.NewNop()}
	if err := h.provision(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		header  http.Header
		wantSub string
	}{
		{"verified", http.Header{"Authorization": {"Bearer " + iss.Mint()}}, clerktest.DefaultSubject},
		{"anonymous", nil, ""},
		{"invalid token", http.Header{"Authorization": {"Bearer a.b.c"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header = tc.header.Clone()
			if r.Header == nil {
				r.Header = http.Header{}
			}
			repl := caddy.NewReplacer()
			r = caddyhttp.PrepareRequest(r, repl, httptest.NewRecorder(), nil)
			var got *Identity
			next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
				got = IdentityFrom(r)
				return nil
			})
			if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantSub == "" && got != nil:
				t.Errorf("IdentityFrom = %q, want nil", got.Subject)
			case tc.wantSub != "" && (got == nil || got.Subject != tc.wantSub):
				t.Errorf("IdentityFrom = %+v, want user %q", got, tc.wantSub)
			}
		})
	}
	if id := IdentityFrom(httptest.NewRequest(http.MethodGet, "/", nil)); id != nil {
		t.Errorf("IdentityFrom without clerk_auth = %+v, want nil", id)
	}
}

// TestListValue: no element of a list placeholder can read as two, or merge
// with its neighbour, to an upstream that splits on commas, trims spaces
// or honours quoted strings; a plain list is unchanged; and splitting on
// ',' then percent-decoding each element gives the list back exactly.
func TestListValue(t *testing.T) {
	cases := []struct {
		name  string
		elems []string
		want  string
	}{
		{"plain list unchanged", []string{"admin", "org:teams:manage", "o:dash-board_2", "é"}, "admin,org:teams:manage,o:dash-board_2,é"},
		{"comma inside an element", []string{"viewer,admin"}, "viewer%2Cadmin"},
		{"percent is escaped first", []string{"50%", "viewer%2Cadmin"}, "50%25,viewer%252Cadmin"},
		{"spaces would be trimmed", []string{" admin", "a b"}, "%20admin,a%20b"},
		{"quotes would merge elements", []string{`"viewer`, `admin"`}, "%22viewer,admin%22"},
		{"control characters", []string{"a\r\nb", "\x00", "\t", "\x7f"}, "a%0D%0Ab,%00,%09,%7F"},
		{"empty list", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := listValue(tc.elems)
			if got != tc.want {
				t.Fatalf("listValue(%q) = %q, want %q", tc.elems, got, tc.want)
			}
			if len(tc.elems) == 0 {
				return
			}
			var back []string
			for e := range strings.SplitSeq(got, ",") {
				d, err := url.PathUnescape(e)
				if err != nil {
					t.Fatalf("element %q does not percent-decode: %v", e, err)
				}
				back = append(back, d)
			}
			if !slices.Equal(back, tc.elems) {
				t.Fatalf("split and decoded: %q, want %q", back, tc.elems)
			}
		})
	}
}

// TestPlaceholderValues: list placeholders encode their elements, the
// _json placeholders give the exact values, and no placeholder ever holds
// a byte a header value cannot carry.
func TestPlaceholderValues(t *testing.T) {
	iss := clerktest.Start(t)
	v := newTestVerifier(t, iss)
	id := identityOf(t, iss, v,
		clerktest.V1Org("org_1", "acme", "org:admin", "org:teams:manage", "org:a,b"),
		clerktest.WithClaims(map[string]any{
			"sub":   "user_1\r\nX-Admin: 1",
			"roles": []string{"viewer,admin", "editor"},
			"fea":   "o:dash,u:beta\x00",
			"pla":   "u:pro",
			"metadata": map[string]any{
				"tags": []any{"x,y", 2, true, map[string]any{"k": "v,w"}},
				"note": "line 1\r\nline 2\t%",
				"tier": "gold",
			},
		}))
	cases := []struct{ name, want string }{
		{"id", "user_1%0D%0AX-Admin: 1"},
		{"roles", "viewer%2Cadmin,editor"},
		{"roles_json", `["viewer,admin","editor"]`},
		{"org_permissions", "org:teams:manage,org:a%2Cb"},
		{"org_permissions_json", `["org:teams:manage","org:a,b"]`},
		{"features", "o:dash,u:beta%00"},
		{"features_json", `["o:dash","u:beta\u0000"]`},
		{"plans", "u:pro"},
		{"plans_json", `["u:pro"]`},
		{"claims.metadata.tier", "gold"},
		{"claims_json.metadata.tier", `"gold"`},
		{"claims.metadata.tags", `x%2Cy,2,true,{%22k%22:%22v%2Cw%22}`},
		{"claims_json.metadata.tags", `["x,y",2,true,{"k":"v,w"}]`},
		{"claims.metadata.note", "line 1%0D%0Aline 2%09%"},
		{"claims_json.metadata.note", `"line 1\r\nline 2\t%"`},
		{"claims_json.metadata", `{"note":"line 1\r\nline 2\t%","tags":["x,y",2,true,{"k":"v,w"}],"tier":"gold"}`},
		{"claims_json.metadata.missing", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := id.placeholder(tc.name)
			if got != tc.want {
				t.Errorf("{http.auth.user.%s} = %q, want %q", tc.name, got, tc.want)
			}
			if i := strings.IndexFunc(got, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
				t.Errorf("{http.auth.user.%s} = %q holds a control character, which no header value may", tc.name, got)
			}
		})
	}

	noRoles := identityOf(t, iss, v)
	for name, want := range map[string]string{"roles": "", "roles_json": "[]", "features_json": "[]", "org_permissions_json": "[]"} {
		if got := noRoles.placeholder(name); got != want {
			t.Errorf("without roles: {http.auth.user.%s} = %q, want %q", name, got, want)
		}
	}
}

// TestListPlaceholdersThroughCaddy: a role named "viewer,admin" reaches the
// upstream as one element, through forward_header and header_up alike, and
// a claim holding CR/LF neither splits the header nor fails the request.
func TestListPlaceholdersThroughCaddy(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`
:%[1]d {
	route /admin {
		clerk_auth {
			issuer %[2]s
			roles admin
		}
		reverse_proxy %[3]s
	}
	route /* {
		clerk_auth {
			issuer %[2]s
			forward_header X-Roles {http.auth.user.roles}
			forward_header X-Roles-Json {http.auth.user.roles_json}
			forward_header X-Note {http.auth.user.claims.note}
			forward_header X-Note-Json "note={http.auth.user.claims_json.note}"
		}
		reverse_proxy %[3]s {
			header_up X-Roles-Up {http.auth.user.roles}
			header_up X-Note-Up {http.auth.user.claims.note}
		}
	}
}`, caddyPort, iss.URL, up.addr()))

	token := iss.Mint(clerktest.WithClaims(map[string]any{
		"roles": []string{"viewer,admin"},
		"note":  "a\r\nX-Admin: 1\x00",
	}))
	if resp, body := do(t, tester, http.MethodGet, "/admin", bearer(token)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/admin: status %d %q: the role viewer,admin passed roles admin", resp.StatusCode, body)
	}
	up.reset()
	resp, body := do(t, tester, http.MethodGet, "/", bearer(token))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	got := up.last()
	want := map[string]string{
		"X-Roles":      "viewer%2Cadmin",
		"X-Roles-Up":   "viewer%2Cadmin",
		"X-Roles-Json": `["viewer,admin"]`,
		"X-Note":       "a%0D%0AX-Admin: 1%00",
		"X-Note-Up":    "a%0D%0AX-Admin: 1%00",
		"X-Note-Json":  `note="a\r\nX-Admin: 1\u0000"`,
	}
	for k, v := range want {
		if vals := got.Values(k); len(vals) != 1 || vals[0] != v {
			t.Errorf("upstream %s = %q, want [%q]", k, vals, v)
		}
	}
	if roles := strings.Split(got.Get("X-Roles"), ","); len(roles) != 1 {
		t.Errorf("X-Roles splits into %q", roles)
	}
	if got.Get("X-Admin") != "" {
		t.Error("a claim's CR/LF split the request into another header")
	}
}
