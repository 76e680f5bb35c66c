package clerkauth

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
)

// A denial refuses the tokens issued up to its event, plus a margin for
// Clerk's clocks, and passes those issued later: an unbanned user's next
// token works at once, and a late retry of the ban cannot refuse it.

// tokenAt is a session token of sid for sub issued at iat (the zero time:
// without iat), living an hour so that moving the clock does not expire it.
func tokenAt(iss *clerktest.Issuer, sid, sub string, iat time.Time) string {
	claims := clerktest.WithClaims(map[string]any{"sid": sid, "sub": sub})
	if iat.IsZero() {
		return iss.Mint(clerktest.Lifetime(time.Hour), claims, clerktest.WithClaims(map[string]any{"iat": nil}))
	}
	return iss.Mint(clerktest.IssuedAt(iat), clerktest.Lifetime(time.Hour), claims)
}

// checkRefusedWith asserts that token is refused on path with reason.
func checkRefusedWith(t *testing.T, tester *caddytest.Tester, up *upstream, path, token, reason string) {
	t.Helper()
	up.reset()
	resp, body := do(t, tester, http.MethodGet, path, bearer(token))
	checkRefused(t, up, resp, body, http.StatusUnauthorized, reason)
}

// TestWebhookIssueBound: for a ban and a revoked session, the tokens
// issued before the event are refused, cached ones included, as is a token
// without iat; a token issued within the margin is refused too, and one
// issued after it passes at once.
func TestWebhookIssueBound(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester, clock := startWebhookCaddy(t, iss, t.TempDir(), "", nil, machineRoute("/a", iss, up))
	for _, tc := range []struct {
		name     string
		event    string
		data     any
		sid, sub string
		reason   string
	}{
		{"user banned", "user.updated", clerktest.UserData("user_banned", true), "sess_b", "user_banned", ReasonUserRevoked},
		{"session revoked", "session.revoked", clerktest.SessionData("sess_revoked", "user_r", "revoked"), "sess_revoked", "user_r", ReasonSessionRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			event := clock.Now()
			cached := tokenAt(iss, tc.sid, tc.sub, event)
			earlier := tokenAt(iss, tc.sid, tc.sub, event.Add(-10*time.Minute))
			noIAT := tokenAt(iss, tc.sid, tc.sub, time.Time{})
			checkPasses(t, tester, "/a/x", cached)
			checkPasses(t, tester, "/a/x", noIAT)

			deliver(t, iss, tc.event, tc.data)
			before := adminMetrics(t)
			checkRefusedWith(t, tester, up, "/a/x", cached, tc.reason)
			if d := adminMetrics(t)[cacheHitSeries] - before[cacheHitSeries]; d != 1 {
				t.Errorf("%s moved by %v: the refusal was not a cache hit", cacheHitSeries, d)
			}
			checkRefusedWith(t, tester, up, "/a/x", earlier, tc.reason)
			checkRefusedWith(t, tester, up, "/a/x", noIAT, tc.reason)

			clock.Advance(denylist.SkewMargin)
			checkRefusedWith(t, tester, up, "/a/x", tokenAt(iss, tc.sid, tc.sub, clock.Now()), tc.reason)
			clock.Advance(time.Second)
			// Clerk mints it only once the user is unbanned (or, for a
			// session, never): either way the denial is not about it.
			checkPasses(t, tester, "/a/x", tokenAt(iss, tc.sid, tc.sub, clock.Now()))
			checkRefusedWith(t, tester, up, "/a/x", cached, tc.reason)
		})
	}
}

// TestWebhookLateRetry: after a ban and an unban, Svix's late retry of the
// ban (the same event, delivered anew once its first delivery is
// forgotten) is applied, and still refuses only the tokens issued before
// the ban: the unbanned user's new token keeps passing.
func TestWebhookLateRetry(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester, clock := startWebhookCaddy(t, iss, t.TempDir(), "", nil, machineRoute("/a", iss, up))
	banned := tokenAt(iss, "sess_1", "user_x", clock.Now())
	checkPasses(t, tester, "/a/x", banned)

	ban := iss.NewWebhook("user.updated", clerktest.UserData("user_x", true))
	if status, err := ban.Post(caddyURL(webhookPath), ban.Header(iss.WebhookSecret())); err != nil || status != http.StatusOK {
		t.Fatalf("the ban: %d, %v; want 200", status, err)
	}
	clock.Advance(time.Minute)
	deliver(t, iss, "user.updated", clerktest.UserData("user_x", false))
	unbanned := tokenAt(iss, "sess_2", "user_x", clock.Now())
	checkPasses(t, tester, "/a/x", unbanned)

	clock.Advance(30 * time.Minute) // Svix's fourth attempt, long after the tolerance window
	before := adminMetrics(t)
	retry := ban
	retry.Timestamp = clock.Now()
	if status, err := retry.Post(caddyURL(webhookPath), retry.Header(iss.WebhookSecret())); err != nil || status != http.StatusOK {
		t.Fatalf("the late retry: %d, %v; want 200", status, err)
	}
	if d := adminMetrics(t)[webhookSeries(webhookApplied, http.StatusOK)] - before[webhookSeries(webhookApplied, http.StatusOK)]; d != 1 {
		t.Fatalf("the late retry was not applied (%v), so it proves nothing", d)
	}
	for _, tc := range []struct {
		name, token string
		reason      string // "" for passes
	}{
		{"the token of the unbanned user, cached", unbanned, ""},
		{"a token minted after the retry", tokenAt(iss, "sess_3", "user_x", clock.Now()), ""},
		{"the token from before the ban", banned, ReasonUserRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.reason == "" {
				checkPasses(t, tester, "/a/x", tc.token)
				return
			}
			checkRefusedWith(t, tester, up, "/a/x", tc.token, tc.reason)
		})
	}
}
