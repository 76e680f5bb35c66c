package clerkauth

import (
	"net/http"
	"net/http/httptest"
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
				t.Errorf("IdentityFrom = %q, want nil", got.UserID)
			case tc.wantSub != "" && (got == nil || got.UserID != tc.wantSub):
				t.Errorf("IdentityFrom = %+v, want user %q", got, tc.wantSub)
			}
		})
	}
	if id := IdentityFrom(httptest.NewRequest(http.MethodGet, "/", nil)); id != nil {
		t.Errorf("IdentityFrom without clerk_auth = %+v, want nil", id)
	}
}
