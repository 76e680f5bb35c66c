package clerkapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

func TestNewChecksConfig(t *testing.T) {
	const secret = "sk_test_SECRET"
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{SecretKey: secret}, ""},
		{"no secret", Config{}, "secret key is empty"},
		{"secret with a space", Config{SecretKey: secret + " x"}, "cannot go in an HTTP header"},
		{"secret with a line break", Config{SecretKey: secret + "\r\nX: y"}, "cannot go in an HTTP header"},
		{"relative base", Config{SecretKey: secret, BaseURL: "/v1"}, "absolute http(s)"},
		{"base with a query", Config{SecretKey: secret, BaseURL: "https://api.clerk.com/?a=1"}, "without query"},
		{"base with user info", Config{SecretKey: secret, BaseURL: "https://u:p@api.clerk.com"}, "user info"},
		{"negative rate", Config{SecretKey: secret, Rate: -1}, "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if tc.wantErr == "" {
				if err != nil || c.base != DefaultBaseURL || c.timeout != DefaultTimeout {
					t.Fatalf("New = %v, base %q, timeout %s; want the defaults", err, c.base, c.timeout)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New = %v, want an error mentioning %q", err, tc.wantErr)
			}
			if leaks(err.Error(), secret) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

func TestHandshakePayloadSendsClerksHeaders(t *testing.T) {
	iss := clerktest.Start(t)
	f := newFront(t, iss, false)
	c, _ := newClient(t, f.URL+"/", iss.SecretKey())
	nonce := nonceFor(t, iss)

	d, err := c.HandshakePayload(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || !strings.HasPrefix(d[0], "__session=ey") || !strings.HasPrefix(d[1], "__client_uat=") {
		t.Errorf("directives %q, want __session and __client_uat", d)
	}
	r := <-f.seen
	want := map[string]string{
		"Authorization":     "Bearer " + iss.SecretKey(),
		"Clerk-Api-Version": "2026-05-12",
		"User-Agent":        "caddy-clerk-auth",
		"Content-Type":      "application/json",
	}
	for name, v := range want {
		if got := r.Header.Get(name); got != v {
			t.Errorf("%s: %q, want %q", name, got, v)
		}
	}
	if r.Method != http.MethodGet || r.URL.Path != "/v1/clients/handshake_payload" || r.URL.RawQuery != "nonce="+nonce {
		t.Errorf("request %s %s?%s, want GET /v1/clients/handshake_payload?nonce=…", r.Method, r.URL.Path, r.URL.RawQuery)
	}
	if s := c.Stats(); s != (Stats{Calls: 1}) {
		t.Errorf("stats %+v, want one call", s)
	}
}

func TestHandshakePayloadErrors(t *testing.T) {
	iss := clerktest.Start(t)
	huge := `{"directives":["` + strings.Repeat("x", MaxBodyBytes) + `"]}`
	tests := []struct {
		name       string
		secret     string
		fault      *clerktest.PayloadFault
		known      bool // resolve a nonce the handshake handed out
		wantKind   error
		wantStatus int
		wantRetry  time.Duration // RetryAfter(err)
		wantCause  error
	}{
		{"unknown nonce", "", nil, false, ErrNotFound, 404, 0, nil},
		{"wrong secret", "sk_test_WRONG", nil, true, ErrUnauthorized, 401, 0, nil},
		{"rate limited by Clerk", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Status: 429}, RetryAfter: "7"}, true, ErrUnavailable, 429, 7 * time.Second, nil},
		{"rate limited, no Retry-After", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Status: 429}}, true, ErrUnavailable, 429, time.Second, nil},
		{"server error", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Status: 500}}, true, ErrUnavailable, 500, time.Second, nil},
		{"bad request", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Status: 400}}, true, ErrNotFound, 400, 0, nil},
		{"slow", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Hang: true}}, true, ErrUnavailable, 0, time.Second, context.DeadlineExceeded},
		{"connection dropped", "", &clerktest.PayloadFault{Fault: clerktest.Fault{CloseConn: true}}, true, ErrUnavailable, 0, time.Second, nil},
		{"oversized answer", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Body: []byte(huge)}}, true, ErrUnavailable, 200, time.Second, nil},
		{"not JSON", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Body: []byte(`<html>`)}}, true, ErrUnavailable, 200, time.Second, nil},
		{"no directives", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Body: []byte(`{"object":"x"}`)}}, true, ErrUnavailable, 200, time.Second, nil},
		{"directives not strings", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Body: []byte(`{"directives":[1]}`)}}, true, ErrUnavailable, 200, time.Second, nil},
		{"directive with a line break", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Body: []byte(`{"directives":["a=b\r\nX: y"]}`)}}, true, ErrUnavailable, 200, time.Second, nil},
		{"trailing garbage", "", &clerktest.PayloadFault{Fault: clerktest.Fault{Body: []byte(`{"directives":[]} x`)}}, true, ErrUnavailable, 200, time.Second, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret := tc.secret
			if secret == "" {
				secret = iss.SecretKey()
			}
			var f *clerktest.Fault
			if tc.fault != nil {
				f = &tc.fault.Fault
			}
			c, _ := newClient(t, iss.APIURL(), secret, func(cfg *Config) { cfg.Timeout = faultTimeout(f) })
			nonce := "UNKNOWNNONCE" + strings.Repeat("Q", 20)
			if tc.known {
				nonce = nonceFor(t, iss)
			}
			if tc.fault != nil {
				iss.SetPayloadFault(*tc.fault)
				defer iss.ClearPayloadFault()
			}
			_, err := c.HandshakePayload(context.Background(), nonce)
			checkError(t, err, tc.wantKind, tc.wantStatus, tc.wantRetry, tc.wantCause, nonce, secret, iss.SecretKey())
		})
	}

	t.Run("Clerk is down", func(t *testing.T) {
		down := clerktest.Start(t)
		nonce := nonceFor(t, down)
		c, _ := newClient(t, down.APIURL(), down.SecretKey())
		down.Close()
		_, err := c.HandshakePayload(context.Background(), nonce)
		if !errors.Is(err, ErrUnavailable) || leaks(err.Error(), nonce, down.SecretKey()) {
			t.Errorf("error %v, want ErrUnavailable without the nonce", err)
		}
	})
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	followed := make(chan string, 1)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed <- r.Header.Get("Authorization")
	}))
	defer elsewhere.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	defer api.Close()
	c, _ := newClient(t, api.URL, "sk_test_SECRET")
	_, err := c.HandshakePayload(context.Background(), "NONCE")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrUnavailable) || e.Status != http.StatusTemporaryRedirect {
		t.Fatalf("error %v, want ErrUnavailable with status 307", err)
	}
	select {
	case auth := <-followed:
		t.Errorf("the redirect was followed (Authorization %q)", auth)
	default:
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"1.5", 0},
		{"soon", 0},
		{"999999999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := parseRetryAfter(tc.in, now); got != tc.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		want   time.Duration
		wantOK bool
	}{
		{"not found", &Error{Kind: ErrNotFound}, 0, false},
		{"unauthorized", &Error{Kind: ErrUnauthorized}, 0, false},
		{"unavailable, unsaid", &Error{Kind: ErrUnavailable}, time.Second, true},
		{"unavailable, 7s", &Error{Kind: ErrUnavailable, RetryAfter: 7 * time.Second}, 7 * time.Second, true},
		{"rate limited, 50ms", &Error{Kind: ErrRateLimited, RetryAfter: 50 * time.Millisecond}, time.Second, true},
		{"rate limited, 1.2s rounds up", &Error{Kind: ErrRateLimited, RetryAfter: 1200 * time.Millisecond}, 2 * time.Second, true},
		{"wrapped", errors.Join(errors.New("context"), &Error{Kind: ErrUnavailable, RetryAfter: 3 * time.Second}), 3 * time.Second, true},
		{"other error", errors.New("x"), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RetryAfter(tc.err)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("RetryAfter = %s, %v; want %s, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
