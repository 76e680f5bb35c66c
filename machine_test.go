package clerkauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// TestVerifyMachineJWT covers the JWT forms of machine tokens: their class
// is told as Clerk tells it, refused unless the route takes it, and their
// failures carry Clerk's machine reasons.
func TestVerifyMachineJWT(t *testing.T) {
	iss := clerktest.Start(t)
	other := clerktest.Start(t)
	for _, i := range []*clerktest.Issuer{iss, other} {
		i.SetNow(func() time.Time { return testNow })
	}
	now := testNow.Unix()
	all := []string{TokenTypeSession, TokenTypeTemplate, TokenTypeAPIKey, TokenTypeM2M, TokenTypeOAuth}
	cases := []struct {
		name      string
		token     string
		accept    []string // nil = the default
		audiences []string
		reason    string // "" = valid
		class     string
		subject   string
		scopes    []string
		tokenID   bool // the identity carries the jti
	}{
		{name: "M2M on the default route", token: iss.Mint(clerktest.M2M()), reason: ReasonTypeMismatch},
		{name: "OAuth on the default route", token: iss.Mint(clerktest.OAuth()), reason: ReasonTypeMismatch},
		{name: "M2M accepted", token: iss.Mint(clerktest.M2M(), claimsOpt("scopes", "mch_a mch_b")), accept: []string{TokenTypeM2M},
			class: TokenTypeM2M, subject: clerktest.DefaultM2MSubject, scopes: []string{"mch_a", "mch_b"}, tokenID: true},
		{name: "M2M scopes from aud", token: iss.Mint(clerktest.M2M(), claimsOpt("aud", []string{"mch_x"})), accept: []string{TokenTypeM2M},
			class: TokenTypeM2M, subject: clerktest.DefaultM2MSubject, scopes: []string{"mch_x"}, tokenID: true},
		{name: "M2M without cat", token: iss.Mint(clerktest.M2M(), headerOpt("cat", nil)), accept: []string{TokenTypeM2M},
			class: TokenTypeM2M, subject: clerktest.DefaultM2MSubject, tokenID: true},
		{name: "M2M with the session cat", token: iss.Mint(clerktest.M2M(), headerOpt("cat", catSession)), accept: []string{TokenTypeM2M},
			reason: ReasonTokenInvalid},
		{name: "mch_ subject is M2M whatever the cat", token: iss.Mint(claimsOpt("sub", "mch_x")), accept: []string{TokenTypeSession},
			reason: ReasonTypeMismatch},
		{name: "M2M cat on a user is no session", token: iss.Mint(headerOpt("cat", catM2M)), accept: all, reason: ReasonTypeMismatch},
		{name: "OAuth accepted", token: iss.Mint(clerktest.OAuth()), accept: []string{TokenTypeOAuth},
			class: TokenTypeOAuth, subject: clerktest.DefaultSubject, scopes: []string{"read", "write"}, tokenID: true},
		{name: "OAuth scp wins over scope", token: iss.Mint(clerktest.OAuth(), claimsOpt("scp", []string{"a"})), accept: []string{TokenTypeOAuth},
			class: TokenTypeOAuth, subject: clerktest.DefaultSubject, scopes: []string{"a"}, tokenID: true},
		{name: "OAuth application/at+jwt", token: iss.Mint(clerktest.OAuth(), headerOpt("typ", "application/at+jwt")), accept: []string{TokenTypeOAuth},
			class: TokenTypeOAuth, subject: clerktest.DefaultSubject, scopes: []string{"read", "write"}, tokenID: true},
		{name: "session on an M2M route", token: iss.Mint(), accept: []string{TokenTypeM2M}, reason: ReasonTypeMismatch},
		{name: "template on an OAuth route", token: iss.Mint(clerktest.Template()), accept: []string{TokenTypeOAuth}, reason: ReasonTypeMismatch},
		{name: "M2M on an OAuth route", token: iss.Mint(clerktest.M2M()), accept: []string{TokenTypeOAuth}, reason: ReasonTypeMismatch},
		{name: "mch_ subject with at+jwt is M2M", token: iss.Mint(clerktest.OAuth(), claimsOpt("sub", "mch_x")), accept: []string{TokenTypeOAuth},
			reason: ReasonTypeMismatch},
		{name: "M2M type mismatch before the signature", token: other.Mint(clerktest.M2M()), accept: []string{TokenTypeSession},
			reason: ReasonTypeMismatch},
		{name: "M2M signed by another key", token: other.Mint(clerktest.M2M()), accept: []string{TokenTypeM2M},
			reason: ReasonVerificationFailed},
		{name: "M2M expired", token: iss.Mint(clerktest.M2M(), claimsOpt("exp", now-60)), accept: []string{TokenTypeM2M},
			reason: ReasonVerificationFailed},
		{name: "OAuth from another issuer", token: iss.Mint(clerktest.OAuth(), claimsOpt("iss", "https://evil.example")), accept: []string{TokenTypeOAuth},
			reason: ReasonVerificationFailed},
		{name: "OAuth audience met", token: iss.Mint(clerktest.OAuth(), claimsOpt("aud", "api")), accept: []string{TokenTypeOAuth}, audiences: []string{"api"},
			class: TokenTypeOAuth, subject: clerktest.DefaultSubject, scopes: []string{"read", "write"}, tokenID: true},
		{name: "OAuth audience missing", token: iss.Mint(clerktest.OAuth()), accept: []string{TokenTypeOAuth}, audiences: []string{"api"},
			reason: ReasonVerificationFailed},
		{name: "M2M ignores authorized parties", token: iss.Mint(clerktest.M2M()), accept: []string{TokenTypeM2M},
			class: TokenTypeM2M, subject: clerktest.DefaultM2MSubject, tokenID: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			accept, err := acceptedClasses(tc.accept)
			if err != nil {
				t.Fatal(err)
			}
			v := newVerifier(staticKey{pub: &iss.PrivateKey().PublicKey}, verifierConfig{
				issuers: []string{iss.URL}, leeway: defaultLeeway, accept: accept, audiences: tc.audiences,
				authorizedParties: []string{"https://app.example.com"},
			})
			v.now = func() time.Time { return testNow }
			id, err := v.verify(context.Background(), tc.token)
			if tc.reason != "" {
				var ve *VerifyError
				if !errors.As(err, &ve) || ve.Reason != tc.reason {
					t.Fatalf("verify = %v, %v; want reason %s", id, err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if id.TokenType != tc.class || id.Subject != tc.subject || !slices.Equal(id.Scopes, tc.scopes) || (id.TokenID != "") != tc.tokenID {
				t.Errorf("identity class %q subject %q scopes %q token id %q; want %q %q %q (token id %t)",
					id.TokenType, id.Subject, id.Scopes, id.TokenID, tc.class, tc.subject, tc.scopes, tc.tokenID)
			}
			if got, want := id.placeholder("machine_id"), map[bool]string{true: tc.subject}[tc.class == TokenTypeM2M]; got != want {
				t.Errorf("machine_id = %q, want %q", got, want)
			}
		})
	}
}

// TestMachineTokensHeaderOnly: as in Clerk, a machine token counts only in
// the Authorization header; the JWT form of one in the __session cookie is
// refused even on a route that accepts its class.
func TestMachineTokensHeaderOnly(t *testing.T) {
	iss := clerktest.Start(t)
	h := &Handler{Issuers: []string{iss.URL}, Accept: []string{TokenTypeSession, TokenTypeM2M, TokenTypeOAuth}}
	if err := provisionHandler(t, h); err != nil {
		t.Fatal(err)
	}
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	for _, tc := range []struct {
		name, token, carrier string
		reason               string // "" = accepted
	}{
		{name: "session in the header", token: iss.Mint(), carrier: carrierHeader},
		{name: "session in the cookie", token: iss.Mint(), carrier: carrierCookie},
		{name: "M2M JWT in the header", token: iss.Mint(clerktest.M2M()), carrier: carrierHeader},
		{name: "M2M JWT in the cookie", token: iss.Mint(clerktest.M2M()), carrier: carrierCookie, reason: ReasonTypeMismatch},
		{name: "OAuth JWT in the header", token: iss.Mint(clerktest.OAuth()), carrier: carrierHeader},
		{name: "OAuth JWT in the cookie", token: iss.Mint(clerktest.OAuth()), carrier: carrierCookie, reason: ReasonTypeMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.carrier == carrierHeader {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			} else {
				r.AddCookie(&http.Cookie{Name: "__session", Value: tc.token})
			}
			repl := caddy.NewReplacer()
			r = caddyhttp.PrepareRequest(r, repl, httptest.NewRecorder(), nil)
			err := h.ServeHTTP(httptest.NewRecorder(), r, next)
			var ve *VerifyError
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("ServeHTTP = %v, want the token accepted", err)
			case tc.reason != "" && (!errors.As(err, &ve) || ve.Reason != tc.reason):
				t.Fatalf("ServeHTTP = %v, want reason %s", err, tc.reason)
			}
			if got := repl.ReplaceAll("{http.auth.user.id}", ""); (got != "") != (tc.reason == "") {
				t.Errorf("{http.auth.user.id} = %q on a request that is %s", got, map[bool]string{true: "accepted", false: "refused"}[tc.reason == ""])
			}
		})
	}
}
