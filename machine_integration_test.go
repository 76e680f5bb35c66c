package clerkauth

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// The machine-token tests drive opaque ak_/mt_/oat_ tokens and the JWT
// forms of M2M and OAuth tokens through a real Caddy, with the fake Clerk
// as the Backend API, and count what reaches it.

// reasonErrors renders every refusal as "<status> <reason>" with the
// reason in X-Reason too, as TestResponses does, so a test reads both.
const reasonErrors = `
	handle_errors {
		header X-Reason {http.auth.clerk.reason}
		respond "{err.status_code} {http.auth.clerk.reason}"
	}`

// machineRoute is a route on prefix whose clerk_auth takes iss's tokens,
// with iss's secret key and Backend API, and the extra subdirectives.
func machineRoute(prefix string, iss *clerktest.Issuer, up *upstream, extra ...string) string {
	return fmt.Sprintf(`
	route %s/* {
		clerk_auth {
			issuer %s
			secret_key %s
			api_url %s
			%s
		}
		reverse_proxy %s
	}`, prefix, iss.URL, iss.SecretKey(), iss.APIURL(), strings.Join(extra, "\n\t\t\t"), up.addr())
}

// machineSite is a Caddyfile site on caddyPort made of routes, with
// reasonErrors.
func machineSite(routes ...string) string {
	return fmt.Sprintf(":%d {%s%s\n}", caddyPort, strings.Join(routes, ""), reasonErrors)
}

// machineCalls is how many requests the fake's verify endpoints got.
func machineCalls(iss *clerktest.Issuer) int64 {
	s := iss.MachineStats()
	return s.APIKeyCalls + s.M2MTokenCalls + s.OAuthTokenCalls
}

// checkRefused asserts a refusal's status and reason, as the client and
// handle_errors see them, and that the upstream got nothing.
func checkRefused(t *testing.T, up *upstream, resp *http.Response, body string, status int, reason string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("X-Reason") != reason || body != fmt.Sprintf("%d %s", status, reason) {
		t.Fatalf("status %d, X-Reason %q, body %q; want %d %s", resp.StatusCode, resp.Header.Get("X-Reason"), body, status, reason)
	}
	if len(up.take()) != 0 {
		t.Fatal("a refused request reached the upstream")
	}
}

// TestMachineTokenClasses: every class is accepted where the route takes
// it and refused with token-type-mismatch elsewhere. Refusals by class and
// every JWT form cost the Backend API nothing; an accepted opaque token
// costs one call, then none while cached.
func TestMachineTokenClasses(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, machineSite(
		machineRoute("/api_key", iss, up, "accept api_key"),
		machineRoute("/m2m_token", iss, up, "accept m2m_token"),
		machineRoute("/oauth_token", iss, up, "accept oauth_token"),
		machineRoute("/session", iss, up), // the default classes
	))

	type token struct {
		name, value, class string
		opaque             bool
	}
	tokens := []token{
		{"API key", iss.IssueAPIKey("user_1", nil, "ci", nil, time.Time{}), TokenTypeAPIKey, true},
		{"opaque M2M token", iss.IssueM2MToken("mch_1", nil, nil, time.Time{}), TokenTypeM2M, true},
		{"opaque OAuth token", iss.IssueOAuthToken("user_1", "client_1", []string{"read"}, time.Time{}), TokenTypeOAuth, true},
		{"M2M JWT", iss.Mint(clerktest.M2M()), TokenTypeM2M, false},
		{"OAuth JWT", iss.Mint(clerktest.OAuth()), TokenTypeOAuth, false},
		{"session token", iss.Mint(), TokenTypeSession, false},
	}
	routes := []struct{ prefix, class string }{
		{"/api_key", TokenTypeAPIKey},
		{"/m2m_token", TokenTypeM2M},
		{"/oauth_token", TokenTypeOAuth},
		{"/session", TokenTypeSession},
	}
	for _, tok := range tokens {
		for _, route := range routes {
			t.Run(tok.name+" on "+route.prefix, func(t *testing.T) {
				up.reset()
				before := machineCalls(iss)
				resp, body := do(t, tester, http.MethodGet, route.prefix+"/x", bearer(tok.value))
				calls := machineCalls(iss) - before
				if tok.class != route.class {
					checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonTypeMismatch)
					if calls != 0 {
						t.Fatalf("a refused class cost %d Backend API calls", calls)
					}
					return
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d %q, want 200", resp.StatusCode, body)
				}
				if len(up.take()) != 1 {
					t.Fatal("the upstream did not get the request")
				}
				if want := map[bool]int64{true: 1}[tok.opaque]; calls != want {
					t.Fatalf("%d Backend API calls, want %d", calls, want)
				}
			})
		}
	}

	apiKey := tokens[0].value
	t.Run("API key again, bare and with a lowercase scheme, from the cache", func(t *testing.T) {
		before := machineCalls(iss)
		for _, auth := range []string{apiKey, "bearer " + apiKey} {
			resp, body := do(t, tester, http.MethodGet, "/api_key/x", http.Header{"Authorization": {auth}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("Authorization %.10q…: status %d %q", auth, resp.StatusCode, body)
			}
		}
		if calls := machineCalls(iss) - before; calls != 0 {
			t.Fatalf("a cached API key cost %d calls", calls)
		}
	})
	t.Run("a key that cannot be Clerk's is never sent", func(t *testing.T) {
		for _, bad := range []string{"ak_short", "ak_" + strings.Repeat("x", 600), "ak_" + strings.Repeat("A", 40) + "%00"} {
			up.reset()
			before := machineCalls(iss)
			resp, body := do(t, tester, http.MethodGet, "/api_key/x", bearer(bad))
			checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonTokenInvalid)
			if calls := machineCalls(iss) - before; calls != 0 {
				t.Fatalf("%.12q…: %d Backend API calls", bad, calls)
			}
		}
	})
	t.Run("concurrent first uses share one call", func(t *testing.T) {
		// Clerk answers slowly, so the requests overlap; those that come
		// after the answer find it cached. Either way, one call.
		iss.SetMachineFault(clerktest.MachineFault{Fault: clerktest.Fault{Delay: 100 * time.Millisecond}})
		defer iss.ClearMachineFault()
		token := iss.IssueM2MToken("mch_9", nil, nil, time.Time{})
		before := machineCalls(iss)
		const n = 16
		statuses := make(chan int, n)
		for range n {
			go func() {
				req, _ := http.NewRequest(http.MethodGet, caddyURL("/m2m_token/x"), nil)
				req.Header = bearer(token)
				resp, err := tester.Client.Do(req)
				if err != nil {
					statuses <- 0
					return
				}
				resp.Body.Close()
				statuses <- resp.StatusCode
			}()
		}
		for range n {
			if status := <-statuses; status != http.StatusOK {
				t.Errorf("status %d, want 200", status)
			}
		}
		if calls := machineCalls(iss) - before; calls != 1 {
			t.Fatalf("%d concurrent first uses cost %d calls, want 1", n, calls)
		}
	})
	t.Run("API key in the session cookie is no API key", func(t *testing.T) {
		for _, prefix := range []string{"/api_key", "/session"} {
			up.reset()
			before := machineCalls(iss)
			resp, body := do(t, tester, http.MethodGet, prefix+"/x", http.Header{"Cookie": {"__session=" + apiKey}})
			checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonTokenInvalid)
			if calls := machineCalls(iss) - before; calls != 0 {
				t.Fatalf("%s: a cookie cost %d Backend API calls", prefix, calls)
			}
		}
	})
}

// TestMachineTokenRevocation: a token revoked in Clerk keeps working for
// at most machine_cache_ttl, then gets token-invalid. The clocks of the
// handlers, of the shared Backend API client and of the fake move together,
// injected before the config loads.
func TestMachineTokenRevocation(t *testing.T) {
	clock := fakeclock.New(time.Now())
	timeNow, backendAPIClock = clock.Now, clock.Now
	t.Cleanup(func() { timeNow, backendAPIClock = time.Now, nil })
	iss := clerktest.Start(t)
	iss.SetNow(clock.Now)
	up := startUpstream(t)
	tester := startCaddy(t, machineSite(machineRoute("/m", iss, up, "accept api_key m2m_token", "machine_cache_ttl 1m")))

	for _, tc := range []struct {
		class string
		token string
	}{
		{TokenTypeAPIKey, iss.IssueAPIKey("user_1", nil, "ci", nil, time.Time{})},
		{TokenTypeM2M, iss.IssueM2MToken("mch_1", nil, nil, time.Time{})},
	} {
		t.Run(tc.class, func(t *testing.T) {
			steps := []struct {
				name    string
				advance time.Duration
				revoke  bool
				status  int
				calls   int64
			}{
				{"first use asks Clerk", 0, false, http.StatusOK, 1},
				{"revoked, still cached", 0, true, http.StatusOK, 0},
				{"just inside machine_cache_ttl", time.Minute - time.Second, false, http.StatusOK, 0},
				{"machine_cache_ttl reached", time.Second, false, http.StatusUnauthorized, 1},
				{"the refusal is cached too", time.Second, false, http.StatusUnauthorized, 0},
			}
			for _, s := range steps {
				clock.Advance(s.advance)
				if s.revoke && !iss.Revoke(tc.token) {
					t.Fatal("the fake does not know the token")
				}
				up.reset()
				before := machineCalls(iss)
				resp, body := do(t, tester, http.MethodGet, "/m/x", bearer(tc.token))
				if s.status == http.StatusOK {
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("%s: status %d %q, want 200", s.name, resp.StatusCode, body)
					}
				} else {
					checkRefused(t, up, resp, body, s.status, ReasonTokenInvalid)
				}
				if calls := machineCalls(iss) - before; calls != s.calls {
					t.Fatalf("%s: %d Backend API calls, want %d", s.name, calls, s.calls)
				}
			}
		})
	}
}

// adminMetrics scrapes Caddy's admin /metrics into series → value, each
// series written as the exposition format writes it.
func adminMetrics(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://localhost:2999/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMachineTokenOutage: whatever keeps the Backend API from answering,
// Clerk's fault or our own call budget, is a 503 with Retry-After, never a
// 401, and service comes back with Clerk. The admin /metrics counts each
// outcome under its endpoint and result.
func TestMachineTokenOutage(t *testing.T) {
	// The budget's refill follows this clock; nothing else here needs it.
	clock := fakeclock.New(time.Now())
	backendAPIClock = clock.Now
	t.Cleanup(func() { backendAPIClock = nil })
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startCaddy(t, machineSite(
		machineRoute("/m", iss, up, "accept api_key"),
		machineRoute("/budget", iss, up, "accept api_key", "backend_api_rate 1 1"),
		fmt.Sprintf(`
	route /bad-secret/* {
		clerk_auth {
			issuer %s
			secret_key sk_test_wrong
			api_url %s
			accept api_key
		}
		reverse_proxy %s
	}`, iss.URL, iss.APIURL(), up.addr()),
	))

	const (
		endpoint = `endpoint="POST /api_keys/verify"`
		calls    = "caddy_clerk_auth_backend_api_calls_total{" + endpoint
		ok       = calls + `,result="ok"}`
		invalid  = calls + `,result="invalid"}`
		unauth   = calls + `,result="unauthorized"}`
		unavail  = calls + `,result="unavailable"}`
		limited  = "caddy_clerk_auth_backend_api_rate_limited_total{" + endpoint + "}"
		hit      = `caddy_clerk_auth_machine_token_cache_total{result="hit"}`
		miss     = `caddy_clerk_auth_machine_token_cache_total{result="miss"}`
		refused  = `caddy_clerk_auth_requests_total{reason="backend-api-unavailable",result="rejected"}`
	)
	before := adminMetrics(t)
	want := map[string]float64{} // what this test adds to each series

	newKey := func() string { return iss.IssueAPIKey("user_1", nil, "ci", nil, time.Time{}) }
	unavailable := func(t *testing.T, path, token, retryAfter string) {
		t.Helper()
		up.reset()
		resp, body := do(t, tester, http.MethodGet, path, bearer(token))
		checkRefused(t, up, resp, body, http.StatusServiceUnavailable, ReasonBackendUnavailable)
		if got := resp.Header.Get("Retry-After"); got != retryAfter {
			t.Errorf("Retry-After %q, want %q", got, retryAfter)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != "" {
			t.Errorf("a 503 challenges the client: WWW-Authenticate %q", got)
		}
	}

	for _, tc := range []struct {
		name       string
		fault      clerktest.MachineFault
		retryAfter string
	}{
		{"down", clerktest.MachineFault{Fault: clerktest.Fault{CloseConn: true}}, retryAfter},
		{"500", clerktest.MachineFault{Fault: clerktest.Fault{Status: http.StatusInternalServerError}}, retryAfter},
		{"429 with Retry-After", clerktest.MachineFault{Fault: clerktest.Fault{Status: http.StatusTooManyRequests}, RetryAfter: "7"}, "7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := newKey()
			iss.SetMachineFault(tc.fault)
			// Twice: an outage is never cached, each try asks again.
			for range 2 {
				unavailable(t, "/m/x", token, tc.retryAfter)
			}
			iss.ClearMachineFault()
			if resp, body := do(t, tester, http.MethodGet, "/m/x", bearer(token)); resp.StatusCode != http.StatusOK {
				t.Fatalf("after the fault: status %d %q", resp.StatusCode, body)
			}
			want[unavail] += 2
			want[ok]++
			want[miss] += 3
			want[refused] += 2
		})
	}

	t.Run("secret key refused", func(t *testing.T) {
		up.reset()
		resp, body := do(t, tester, http.MethodGet, "/bad-secret/x", bearer(newKey()))
		checkRefused(t, up, resp, body, http.StatusServiceUnavailable, ReasonSecretKeyInvalid)
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		want[unauth]++
		want[miss]++
	})

	t.Run("unknown key, then its cached refusal", func(t *testing.T) {
		unknown := "ak_" + strings.Repeat("A", 43)
		for range 2 {
			up.reset()
			resp, body := do(t, tester, http.MethodGet, "/m/x", bearer(unknown))
			checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonTokenInvalid)
		}
		want[invalid]++
		want[miss]++
		want[hit]++
	})

	t.Run("our own budget", func(t *testing.T) {
		// backend_api_rate 1 1 and a clock that stands still: one call, then
		// every new token waits for the next second.
		const tokens = 6
		before := machineCalls(iss)
		for i := range tokens {
			token := newKey()
			if i == 0 {
				if resp, body := do(t, tester, http.MethodGet, "/budget/x", bearer(token)); resp.StatusCode != http.StatusOK {
					t.Fatalf("first token: status %d %q", resp.StatusCode, body)
				}
				continue
			}
			unavailable(t, "/budget/x", token, "1")
		}
		if got := machineCalls(iss) - before; got != 1 {
			t.Fatalf("%d tokens cost %d Backend API calls, want 1", tokens, got)
		}
		clock.Advance(time.Second)
		if resp, body := do(t, tester, http.MethodGet, "/budget/x", bearer(newKey())); resp.StatusCode != http.StatusOK {
			t.Fatalf("a second later: status %d %q", resp.StatusCode, body)
		}
		want[ok] += 2
		want[limited] += tokens - 1
		want[miss] += tokens + 1
		want[refused] += tokens - 1
	})

	t.Run("metrics", func(t *testing.T) {
		after := adminMetrics(t)
		for series, delta := range want {
			if _, present := after[series]; !present {
				t.Errorf("/metrics has no %s", series)
				continue
			}
			if got := after[series] - before[series]; got != delta {
				t.Errorf("%s rose by %v, want %v", series, got, delta)
			}
		}
	})
}

// TestMachineIdentityForwarded: what Clerk says of a machine token reaches
// the upstream through forward_header, and scope and org requirements read
// it as Clerk's auth object does.
func TestMachineIdentityForwarded(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	const all = "accept api_key m2m_token oauth_token"
	tester := startCaddy(t, machineSite(
		machineRoute("/id", iss, up, all,
			"forward_header X-User-Id {http.auth.user.id}",
			"forward_header X-Token-Type {http.auth.user.token_type}",
			"forward_header X-Token-Id {http.auth.user.token_id}",
			"forward_header X-Scopes {http.auth.user.scopes}",
			"forward_header X-Scopes-Json {http.auth.user.scopes_json}",
			"forward_header X-Machine-Id {http.auth.user.machine_id}",
			"forward_header X-Name {http.auth.user.name}",
			"forward_header X-Client-Id {http.auth.user.client_id}",
			"forward_header X-Org-Id {http.auth.user.org_id}",
			"forward_header X-Tier {http.auth.user.claims.tier}",
		),
		machineRoute("/scoped", iss, up, all, "scope write", "scope read admin"),
		machineRoute("/org-admin", iss, up, all, "org_role admin"),
	))

	tier := func(v string) map[string]any { return map[string]any{"tier": v} }
	apiKey := iss.IssueAPIKey("user_2", []string{"read", "write"}, "ci deploy", tier("gold"), time.Time{})
	orgKey := iss.IssueAPIKey("org_7", []string{"write", "admin"}, "org key", nil, time.Time{})
	m2m := iss.IssueM2MToken("mch_1", []string{"mch_2", "mch_3"}, tier("silver"), time.Time{})
	oauth := iss.IssueOAuthToken("user_3", "client_9", []string{"email"}, time.Time{})
	m2mJWT := iss.Mint(clerktest.M2M(), clerktest.WithClaims(map[string]any{"scopes": "mch_2", "tier": "bronze"}))

	t.Run("forwarded", func(t *testing.T) {
		cases := []struct {
			name    string
			token   string
			idClass string // the token id's prefix
			want    map[string]string
		}{
			{"API key", apiKey, "ak_", map[string]string{
				"X-User-Id": "user_2", "X-Token-Type": TokenTypeAPIKey, "X-Scopes": "read,write", "X-Scopes-Json": `["read","write"]`,
				"X-Name": "ci deploy", "X-Tier": "gold",
			}},
			{"organization's API key", orgKey, "ak_", map[string]string{
				"X-User-Id": "org_7", "X-Org-Id": "org_7", "X-Token-Type": TokenTypeAPIKey, "X-Scopes": "write,admin",
				"X-Scopes-Json": `["write","admin"]`, "X-Name": "org key",
			}},
			{"opaque M2M token", m2m, "mt_", map[string]string{
				"X-User-Id": "mch_1", "X-Machine-Id": "mch_1", "X-Token-Type": TokenTypeM2M, "X-Scopes": "mch_2,mch_3",
				"X-Scopes-Json": `["mch_2","mch_3"]`, "X-Tier": "silver",
			}},
			{"opaque OAuth token", oauth, "oat_", map[string]string{
				"X-User-Id": "user_3", "X-Client-Id": "client_9", "X-Token-Type": TokenTypeOAuth, "X-Scopes": "email",
				"X-Scopes-Json": `["email"]`,
			}},
			{"M2M JWT", m2mJWT, "mt_", map[string]string{
				"X-User-Id": clerktest.DefaultM2MSubject, "X-Machine-Id": clerktest.DefaultM2MSubject, "X-Token-Type": TokenTypeM2M,
				"X-Scopes": "mch_2", "X-Scopes-Json": `["mch_2"]`, "X-Tier": "bronze",
			}},
		}
		headers := []string{"X-User-Id", "X-Token-Type", "X-Scopes", "X-Scopes-Json", "X-Machine-Id", "X-Name", "X-Client-Id", "X-Org-Id", "X-Tier"}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				up.reset()
				forged := bearer(tc.token)
				forged.Set("X-Machine-Id", "mch_forged")
				forged.Set("X-Org-Id", "org_forged")
				resp, body := do(t, tester, http.MethodGet, "/id/x", forged)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d %q", resp.StatusCode, body)
				}
				got := up.last()
				for _, h := range headers {
					if vals, want := got.Values(h), tc.want[h]; want == "" && len(vals) != 0 || want != "" && (len(vals) != 1 || vals[0] != want) {
						t.Errorf("upstream %s = %q, want %q", h, vals, want)
					}
				}
				if id := got.Get("X-Token-Id"); !strings.HasPrefix(id, tc.idClass) || id == tc.token {
					t.Errorf("X-Token-Id %q: want Clerk's %s… id, never the token", id, tc.idClass)
				}
			})
		}
	})

	t.Run("requirements", func(t *testing.T) {
		cases := []struct {
			name   string
			path   string
			token  string
			status int
			reason string
		}{
			{"both scope lines met", "/scoped/x", apiKey, http.StatusOK, ""},
			{"both scope lines met by other values", "/scoped/x", orgKey, http.StatusOK, ""},
			{"first scope line unmet", "/scoped/x", oauth, http.StatusForbidden, ReasonMissingScope},
			{"second scope line unmet", "/scoped/x", iss.IssueAPIKey("user_2", []string{"write"}, "w", nil, time.Time{}), http.StatusForbidden, ReasonMissingScope},
			{"M2M scopes are machine ids", "/scoped/x", m2m, http.StatusForbidden, ReasonMissingScope},
			// Clerk's machine auth objects answer has() with false: an
			// organization's key acts for it, but holds no role in it.
			{"organization's key holds no org role", "/org-admin/x", orgKey, http.StatusForbidden, ReasonMissingOrgRole},
			{"user's key has no organization", "/org-admin/x", apiKey, http.StatusForbidden, ReasonMissingOrgRole},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				up.reset()
				resp, body := do(t, tester, http.MethodGet, tc.path, bearer(tc.token))
				if tc.status == http.StatusOK {
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status %d %q", resp.StatusCode, body)
					}
					return
				}
				checkRefused(t, up, resp, body, tc.status, tc.reason)
				wantAuth := fmt.Sprintf(`Bearer error="insufficient_scope", error_description=%q`, tc.reason)
				if got := resp.Header.Get("WWW-Authenticate"); got != wantAuth {
					t.Errorf("WWW-Authenticate %q, want %q", got, wantAuth)
				}
			})
		}
	})
}

// TestMachineTokensSkipHandshake: on a route with Clerk's browser
// handshake, a machine token in the Authorization header of a page load is
// decided as a machine token, as Clerk's authenticateRequest does: never a
// redirect to the Frontend API, whether the route takes the class or not.
func TestMachineTokensSkipHandshake(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	handshakeOn := []string{"publishable_key " + iss.PublishableKey(false), "proxy_url " + iss.URL}
	tester := startCaddy(t, machineSite(
		machineRoute("/machines", iss, up, append(handshakeOn, "accept session api_key m2m_token")...),
		machineRoute("/sessions", iss, up, handshakeOn...),
	))
	tester.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	apiKey := iss.IssueAPIKey("user_1", nil, "ci", nil, time.Time{})
	m2mJWT := iss.Mint(clerktest.M2M())
	expiredM2M := iss.Mint(clerktest.M2M(), clerktest.IssuedAt(time.Now().Add(-time.Hour)))
	unknown := "ak_" + strings.Repeat("B", 43)
	cases := []struct {
		name   string
		path   string
		token  string
		status int
		reason string
		calls  int64
	}{
		{"API key", "/machines/x", apiKey, http.StatusOK, "", 1},
		{"M2M JWT", "/machines/x", m2mJWT, http.StatusOK, "", 0},
		{"expired M2M JWT", "/machines/x", expiredM2M, http.StatusUnauthorized, ReasonVerificationFailed, 0},
		{"unknown API key", "/machines/x", unknown, http.StatusUnauthorized, ReasonTokenInvalid, 1},
		{"API key where sessions only", "/sessions/x", apiKey, http.StatusUnauthorized, ReasonTypeMismatch, 0},
		{"M2M JWT where sessions only", "/sessions/x", m2mJWT, http.StatusUnauthorized, ReasonTypeMismatch, 0},
		{"expired M2M JWT where sessions only", "/sessions/x", expiredM2M, http.StatusUnauthorized, ReasonTypeMismatch, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up.reset()
			page := bearer(tc.token)
			page.Set("Sec-Fetch-Dest", "document")
			page.Set("Accept", "text/html")
			page.Set("Cookie", "__client_uat="+strconv.FormatInt(time.Now().Unix(), 10))
			before := machineCalls(iss)
			resp, body := do(t, tester, http.MethodGet, tc.path, page)
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Fatalf("status %d to %q: a machine token was sent through the handshake", resp.StatusCode, loc)
			}
			if tc.status == http.StatusOK {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d %q", resp.StatusCode, body)
				}
			} else {
				checkRefused(t, up, resp, body, tc.status, tc.reason)
			}
			if calls := machineCalls(iss) - before; calls != tc.calls {
				t.Fatalf("%d Backend API calls, want %d", calls, tc.calls)
			}
		})
	}
}
