package clerkapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// issueFor issues a token of kind from iss, with expiration.
func issueFor(iss *clerktest.Issuer, kind MachineKind, expiration time.Time) string {
	switch kind {
	case APIKey:
		return iss.IssueAPIKey("user_alice", []string{"read", "write"}, "ci", map[string]any{"team": "a"}, expiration)
	case M2MToken:
		return iss.IssueM2MToken("mch_caller", []string{"mch_callee"}, map[string]any{"env": "test"}, expiration)
	default:
		return iss.IssueOAuthToken("user_bob", "client_app", []string{"read:foo"}, expiration)
	}
}

var machineKinds = []MachineKind{APIKey, M2MToken, OAuthToken}

func machineCalls(iss *clerktest.Issuer) int64 {
	s := iss.MachineStats()
	return s.APIKeyCalls + s.M2MTokenCalls + s.OAuthTokenCalls
}

func TestValidMachineToken(t *testing.T) {
	tests := []struct {
		kind  MachineKind
		token string
		want  bool
	}{
		{APIKey, "ak_LCWGdaM8mv8K4PC/57IICZQXAeWfCgF30DZaFXHoGn9=", true}, // the SDK's fixture
		{M2MToken, "mt_8XOIucKvqHVr5tYP123456789abcdefghij", true},        // the SDK's fixture
		{OAuthToken, "oat_8XOIucKvqHVr5tYP123456789abcdefghij", true},     // the SDK's fixture
		{M2MToken, "mt_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", true},           // the Go SDK's fixture
		{APIKey, "ak_live_0123456789abcdef-._~+/==", true},
		{APIKey, "ak_" + strings.Repeat("a", MinMachineTokenBody), true},
		{APIKey, "ak_" + strings.Repeat("a", MaxMachineTokenLen-3), true},
		{APIKey, "ak_" + strings.Repeat("a", MinMachineTokenBody-1), false},
		{APIKey, "ak_" + strings.Repeat("a", MaxMachineTokenLen-2), false},
		{APIKey, "mt_8XOIucKvqHVr5tYP123456789abcdefghij", false}, // another kind's prefix
		{OAuthToken, "oa_8XOIucKvqHVr5tYP123456789abcdefghij", false},
		{APIKey, "AK_8XOIucKvqHVr5tYP123456789abcdefghij", false},
		{APIKey, "ak_8XOIucKvqHVr5tYP12345 6789abcdefghij", false},
		{APIKey, "ak_8XOIucKvqHVr5tYP12345\"6789abcdefghij", false},
		{APIKey, "ak_8XOIucKvqHVr5tYP12345%6789abcdefghij", false},
		{APIKey, "ak_8XOIucKvqHVr5tYP12345=6789abcdefghij", false}, // padding inside
		{APIKey, "ak_================", false},
		{APIKey, "ak_8XOIucKvqHVr5tYP123456789abcdéfghij", false},
		{APIKey, "ak_8XOIucKvqHVr5tYP123456789abcdefghij\n", false},
		{"session_token", "ak_8XOIucKvqHVr5tYP123456789abcdefghij", false},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind)+"/"+tc.token[:min(len(tc.token), 24)], func(t *testing.T) {
			if got := ValidMachineToken(tc.kind, tc.token); got != tc.want {
				t.Errorf("ValidMachineToken = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	for token, want := range map[string]MachineKind{"ak_x": APIKey, "mt_x": M2MToken, "oat_x": OAuthToken, "eyJ.a.b": "", "sk_x": ""} {
		if got, ok := KindOf(token); got != want || ok != (want != "") {
			t.Errorf("KindOf(%q) = %q, %v; want %q", token, got, ok, want)
		}
	}
}

// recorded is what a recorder saw of one request.
type recorded struct {
	method, path string
	header       http.Header
	body         []byte
}

// newRecorder is a real server on 127.0.0.1 in front of iss that records
// each request, body included, before forwarding it.
func newRecorder(t *testing.T, iss *clerktest.Issuer) (*httptest.Server, chan recorded) {
	t.Helper()
	target, err := url.Parse(iss.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	seen := make(chan recorded, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen <- recorded{r.Method, r.URL.Path, r.Header.Clone(), body}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func TestVerifyMachineTokenSendsClerksRequest(t *testing.T) {
	tests := []struct {
		kind  MachineKind
		path  string
		field string
	}{
		{APIKey, "/api_keys/verify", "secret"},
		{M2MToken, "/m2m_tokens/verify", "token"},
		{OAuthToken, "/oauth_applications/access_tokens/verify", "access_token"},
	}
	iss := clerktest.Start(t)
	srv, seen := newRecorder(t, iss)
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			c, _ := newClient(t, srv.URL, iss.SecretKey())
			token := issueFor(iss, tc.kind, time.Time{})
			if _, err := c.VerifyMachineToken(context.Background(), tc.kind, token, 0); err != nil {
				t.Fatal(err)
			}
			r := <-seen
			if r.method != http.MethodPost || r.path != tc.path {
				t.Errorf("request %s %s, want POST %s", r.method, r.path, tc.path)
			}
			want := map[string]string{
				"Authorization":     "Bearer " + iss.SecretKey(),
				"Clerk-Api-Version": "2026-05-12",
				"User-Agent":        "caddy-clerk-auth",
				"Content-Type":      "application/json",
			}
			for name, v := range want {
				if got := r.header.Get(name); got != v {
					t.Errorf("%s: %q, want %q", name, got, v)
				}
			}
			if wantBody := `{"` + tc.field + `":"` + token + `"}`; string(r.body) != wantBody {
				t.Errorf("body %s, want %s", r.body, wantBody)
			}
		})
	}
}

func TestVerifyMachineTokenAnswers(t *testing.T) {
	iss := clerktest.Start(t)
	expiration := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	t.Run("valid", func(t *testing.T) {
		want := map[MachineKind]Machine{
			APIKey:     {Kind: APIKey, Subject: "user_alice", Scopes: []string{"read", "write"}, Name: "ci", Claims: json.RawMessage(`{"team":"a"}`)},
			M2MToken:   {Kind: M2MToken, Subject: "mch_caller", Scopes: []string{"mch_callee"}, Claims: json.RawMessage(`{"env":"test"}`)},
			OAuthToken: {Kind: OAuthToken, Subject: "user_bob", Scopes: []string{"read:foo"}, ClientID: "client_app"},
		}
		for _, kind := range machineKinds {
			t.Run(string(kind), func(t *testing.T) {
				c, _ := newClient(t, iss.APIURL(), iss.SecretKey())
				token := issueFor(iss, kind, expiration)
				m, err := c.VerifyMachineToken(context.Background(), kind, token, 0)
				if err != nil {
					t.Fatal(err)
				}
				w := want[kind]
				if m.Kind != w.Kind || m.Subject != w.Subject || !slices.Equal(m.Scopes, w.Scopes) || m.Name != w.Name ||
					m.ClientID != w.ClientID || string(m.Claims) != string(w.Claims) || !m.Expiration.Equal(expiration) ||
					m.Revoked || m.Expired || m.ID == "" {
					t.Errorf("got %+v (claims %s), want %+v (claims %s), expiring %s", m, m.Claims, w, w.Claims, expiration)
				}
				if m.ID == token || !strings.HasPrefix(m.ID, token[:strings.IndexByte(token, '_')+1]) {
					t.Errorf("id %q, want the token's prefix and not the token", m.ID)
				}
			})
		}
	})

	tests := []struct {
		name       string
		secret     string
		token      func(kind MachineKind) string
		fault      *clerktest.MachineFault
		wantKind   error
		wantStatus int
		wantRetry  time.Duration
		wantCause  error
	}{
		{"unknown", "", func(k MachineKind) string { return unknownToken(k) }, nil, ErrNotFound, 404, 0, nil},
		{"revoked", "", func(k MachineKind) string { return revoked(iss, k) }, nil, ErrNotFound, 404, 0, nil},
		{"expired", "", func(k MachineKind) string { return issueFor(iss, k, time.Now().Add(-time.Minute)) }, nil, ErrNotFound, 404, 0, nil},
		{"revoked, 200 with the flag", "", func(k MachineKind) string { return revoked(iss, k) }, &clerktest.MachineFault{FlagsOnly: true}, ErrNotFound, 200, 0, nil},
		{"expired, 200 with the flag", "", func(k MachineKind) string { return issueFor(iss, k, time.Now().Add(-time.Minute)) }, &clerktest.MachineFault{FlagsOnly: true}, ErrNotFound, 200, 0, nil},
		{"wrong secret", "sk_test_WRONG", func(k MachineKind) string { return issueFor(iss, k, time.Time{}) }, nil, ErrUnauthorized, 401, 0, nil},
		{"rate limited by Clerk", "", func(k MachineKind) string { return issueFor(iss, k, time.Time{}) }, &clerktest.MachineFault{Fault: clerktest.Fault{Status: 429}, RetryAfter: "7"}, ErrUnavailable, 429, 7 * time.Second, nil},
		{"server error", "", func(k MachineKind) string { return issueFor(iss, k, time.Time{}) }, &clerktest.MachineFault{Fault: clerktest.Fault{Status: 500}}, ErrUnavailable, 500, time.Second, nil},
		{"slow", "", func(k MachineKind) string { return issueFor(iss, k, time.Time{}) }, &clerktest.MachineFault{Fault: clerktest.Fault{Hang: true}}, ErrUnavailable, 0, time.Second, context.DeadlineExceeded},
		{"connection dropped", "", func(k MachineKind) string { return issueFor(iss, k, time.Time{}) }, &clerktest.MachineFault{Fault: clerktest.Fault{CloseConn: true}}, ErrUnavailable, 0, time.Second, nil},
		{"another object", "", func(k MachineKind) string { return issueFor(iss, k, time.Time{}) }, &clerktest.MachineFault{Fault: clerktest.Fault{Body: []byte(`{"object":"client","id":"x","subject":"y"}`)}}, ErrUnavailable, 200, time.Second, nil},
		{"not JSON", "", func(k MachineKind) string { return issueFor(iss, k, time.Time{}) }, &clerktest.MachineFault{Fault: clerktest.Fault{Body: []byte(`<html>`)}}, ErrUnavailable, 200, time.Second, nil},
	}
	for _, tc := range tests {
		for _, kind := range machineKinds {
			t.Run(tc.name+"/"+string(kind), func(t *testing.T) {
				secret := tc.secret
				if secret == "" {
					secret = iss.SecretKey()
				}
				var f *clerktest.Fault
				if tc.fault != nil {
					f = &tc.fault.Fault
				}
				c, _ := newClient(t, iss.APIURL(), secret, func(cfg *Config) { cfg.Timeout = faultTimeout(f) })
				token := tc.token(kind)
				if tc.fault != nil {
					iss.SetMachineFault(*tc.fault)
					defer iss.ClearMachineFault()
				}
				_, err := c.VerifyMachineToken(context.Background(), kind, token, 0)
				checkError(t, err, tc.wantKind, tc.wantStatus, tc.wantRetry, tc.wantCause, token, secret, iss.SecretKey())
				calls := c.MachineStats().Calls[kind]
				if calls.Valid+calls.Invalid+calls.Unauthorized+calls.Unavailable != 1 {
					t.Errorf("call results %+v, want one call", calls)
				}
			})
		}
	}

	t.Run("Clerk is down", func(t *testing.T) {
		down := clerktest.Start(t)
		for _, kind := range machineKinds {
			token := issueFor(down, kind, time.Time{})
			c, _ := newClient(t, down.APIURL(), down.SecretKey())
			down.Close()
			_, err := c.VerifyMachineToken(context.Background(), kind, token, 0)
			if !errors.Is(err, ErrUnavailable) || leaks(err.Error(), token, down.SecretKey()) {
				t.Errorf("%s: error %v, want ErrUnavailable without the token", kind, err)
			}
		}
	})
}

func unknownToken(kind MachineKind) string {
	return map[MachineKind]string{APIKey: "ak_", M2MToken: "mt_", OAuthToken: "oat_"}[kind] + "NOBODYISSUEDTHIS0123456789"
}

func revoked(iss *clerktest.Issuer, kind MachineKind) string {
	token := issueFor(iss, kind, time.Time{})
	iss.Revoke(token)
	return token
}

func TestDecodeMachine(t *testing.T) {
	oauth := machineEndpoints[2]
	tests := []struct {
		name     string
		body     string
		wantKind error
		check    func(Machine) bool
	}{
		{"OAuth with aud and act (3.25.0)", `{"object":"clerk_idp_oauth_access_token","id":"oat_1","client_id":"c","type":"oauth:access_token","subject":"user_1","scopes":["a"],"revoked":false,"expired":false,"expiration":null,"aud":["https://api.example.com"],"act":{"sub":"user_2"}}`,
			nil, func(m Machine) bool {
				return slices.Equal(m.Audience, []string{"https://api.example.com"}) && m.Expiration.IsZero()
			}},
		{"no aud", `{"object":"clerk_idp_oauth_access_token","id":"oat_1","subject":"user_1"}`,
			nil, func(m Machine) bool { return m.Audience == nil && m.Claims == nil }},
		{"no subject", `{"object":"clerk_idp_oauth_access_token","id":"oat_1"}`, ErrUnavailable, nil},
		{"no id", `{"object":"clerk_idp_oauth_access_token","subject":"user_1"}`, ErrUnavailable, nil},
		{"claims not an object", `{"object":"clerk_idp_oauth_access_token","id":"oat_1","subject":"user_1","claims":[1]}`, ErrUnavailable, nil},
		{"trailing garbage", `{"object":"clerk_idp_oauth_access_token","id":"oat_1","subject":"user_1"} x`, ErrUnavailable, nil},
		{"revoked", `{"object":"clerk_idp_oauth_access_token","id":"oat_1","subject":"user_1","revoked":true}`, ErrNotFound, nil},
		{"expired", `{"object":"clerk_idp_oauth_access_token","id":"oat_1","subject":"user_1","expired":true}`, ErrNotFound, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeMachine(oauth, []byte(tc.body))
			if tc.wantKind != nil {
				if !isKind(err, tc.wantKind) {
					t.Errorf("error %v, want kind %v", err, tc.wantKind)
				}
				return
			}
			if err != nil || !tc.check(m) {
				t.Errorf("got %+v, %v", m, err)
			}
		})
	}
}

func TestExpirationUnits(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	ms, s := at.UnixMilli(), at.Unix()
	tests := []struct {
		name string
		v    *int64
		want time.Time
	}{
		{"milliseconds, as the SDK documents", &ms, at},
		{"seconds, as the Go SDK's fixtures and the OAuth JSDoc", &s, at},
		{"null: never", nil, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := expirationTime(tc.v); !got.Equal(tc.want) {
				t.Errorf("expirationTime = %s, want %s", got, tc.want)
			}
		})
	}
}
