package clerkauth

import (
	"bytes"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

func TestClerkTokenInspect(t *testing.T) {
	iss := clerktest.Start(t)
	other, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	exp := mintedAt.Add(clerktest.DefaultLifetime).Format(time.RFC3339)
	cases := []struct {
		name    string
		token   string
		wantErr bool
		want    []string
		notWant []string
	}{
		{
			name:  "v1 session",
			token: mintToken(iss, clerktest.V1Org("org_1", "acme", "org:admin", "org:teams:manage"), claimsOpt("roles", []string{"admin"})),
			want: []string{
				"alg  RS256", "kid  " + iss.KID(), "typ  JWT", "cat  cl_B7d4PD111AAA (session token)",
				`"sub": "user_test"`,
				"exp  " + exp + " (in 42s)", "iat  " + mintedAt.Format(time.RFC3339) + " (18s ago)", "nbf", "(28s ago)",
				"class        session (from the cat header)", "claims       v1",
				"iss          " + iss.URL, "azp          http://localhost:3000", "sid          sess_test",
				"org          org_1 (slug acme, role org:admin)", "permissions  org:teams:manage",
				"roles        admin (claim roles)",
			},
		},
		{
			name: "v2 session with fpm, billing, sts and act",
			token: mintToken(iss,
				clerktest.V2(clerktest.OrgV2{ID: "org_2", Slug: "beta", Role: "admin", Per: "manage,read", Fpm: "3,2"}),
				claimsOpt("fea", "o:dashboard,o:teams,u:beta", "pla", "u:pro", "sts", "active", "act", map[string]any{"sub": "user_support"})),
			want: []string{
				"claims       v2", "org          org_2 (slug beta, role org:admin)",
				"permissions  org:dashboard:manage, org:dashboard:read, org:teams:read",
				"features     org [dashboard, teams], user [beta]", "plans        user [pro]",
				"sts          active", "act          user_support (impersonating the user)",
			},
		},
		{
			name:  "v2 with masks that fit no reading",
			token: mintToken(iss, clerktest.V2(clerktest.OrgV2{ID: "org_2", Slug: "beta", Role: "admin", Per: "manage", Fpm: "1,1,1"}), claimsOpt("fea", "o:a")),
			want:  []string{"permissions  (none)", "treated as none: o.fpm has 3 masks"},
		},
		{
			name:  "template",
			token: mintToken(iss, clerktest.Template(), claimsOpt("aud", "your-api")),
			want:  []string{"(JWT template token)", "class        template (from the cat header)", "aud          your-api", "sid          (absent)"},
		},
		{
			name:  "template told apart by the missing sid",
			token: mintToken(iss, clerktest.WithHeader(map[string]any{"cat": nil}), claimsOpt("sid", nil)),
			want:  []string{"cat  (absent: session if there is a sid, else JWT template)", "class        template (no cat header and no sid)"},
		},
		{
			name:  "M2M",
			token: mintToken(iss, clerktest.M2M()),
			want:  []string{"(machine-to-machine (M2M) token)", "class        m2m_token (sub starts with mch_: a machine-to-machine token)"},
		},
		{
			name:  "OAuth",
			token: mintToken(iss, clerktest.WithHeader(map[string]any{"typ": "at+jwt"})),
			want:  []string{"typ  at+jwt", "class        oauth_token (typ at+jwt: an OAuth access token)"},
		},
		{
			name:  "expired and forged: decoding trusts nothing",
			token: mintToken(iss, clerktest.Lifetime(-3*time.Minute), clerktest.WithKey(other)),
			want:  []string{"Header (decoded, NOT verified)", "(3m18s ago)"},
		},
		{
			name:    "two segments",
			token:   "eyJhbGciOiJSUzI1NiJ9.e30",
			wantErr: true,
			want:    []string{"Cannot decode the token: not a JWT: a JWT has exactly three dot-separated segments"},
			notWant: []string{"Header"},
		},
		{
			name:    "header not base64url",
			token:   "!!.e30.sig",
			wantErr: true,
			want:    []string{"Cannot decode the token: header is not base64url"},
		},
		{
			name:    "payload not JSON",
			token:   "eyJhbGciOiJSUzI1NiJ9.bm9wZQ.sig",
			wantErr: true,
			want:    []string{"Cannot decode the token: payload is not JSON"},
		},
		{
			name:  "iss and azp of the wrong type are shown as written",
			token: mintToken(iss, claimsOpt("iss", 42, "azp", []string{"http://localhost:3000"})),
			want:  []string{"iss          42", `azp          ["http://localhost:3000"]`, "sub          user_test"},
		},
		{
			name:  "iss null",
			token: clerktest.SegmentsJSON(`{"alg":"RS256"}`, `{"sub":"user_x","iss":null}`, iss.PrivateKey()),
			want:  []string{"iss          null", "azp          (absent)"},
		},
		{
			name:    "claims the verifier would not read",
			token:   clerktest.SegmentsJSON(`{"alg":"RS256"}`, `{"sub":"user_a","sub":"user_b"}`, iss.PrivateKey()),
			wantErr: true,
			want:    []string{"Not Clerk claims: member \"sub\" appears twice"},
			notWant: []string{"Times"},
		},
		{
			name:    "claims of the wrong type",
			token:   mintToken(iss, claimsOpt("exp", "tomorrow")),
			wantErr: true,
			want:    []string{`"exp": "tomorrow"`, "Not Clerk claims:"},
			notWant: []string{"Times"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := inspectToken(&out, tc.token, checkedAt)
			if (err != nil) != tc.wantErr {
				t.Errorf("error %v, want error: %v", err, tc.wantErr)
			}
			wantOutput(t, out.String(), tc.want, tc.notWant)
		})
	}
}

func TestClerkTokenHuman(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{42 * time.Second, "42s"},
		{3 * time.Minute, "3m"},
		{3*time.Minute + 10*time.Second, "3m10s"},
		{2 * time.Hour, "2h"},
		{2*time.Hour + 5*time.Minute + 29e9, "2h5m"},
		{50 * time.Hour, "2d"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := human(tc.d); got != tc.want {
				t.Errorf("human(%s) = %q, want %q", tc.d, got, tc.want)
			}
		})
	}
}
