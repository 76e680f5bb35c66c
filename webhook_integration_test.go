package clerkauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/clustersync"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
	"github.com/caddyclerk/caddy-clerk-auth/internal/webhook"
)

// The webhook tests run one real Caddy with clerk_webhook next to
// clerk_auth routes, over a storage folder of the test's, and deliver
// Clerk events signed by the fake Clerk as Svix signs them. One fake clock
// drives the handlers, the webhook's tolerance, the denials' expiry and
// the rounds of the denylist's Syncer.

const webhookPath = "/clerk/webhook"

// Series of the admin /metrics that the webhook tests read.
const (
	denylistEntries      = "caddy_clerk_auth_denylist_entries"
	denylistSyncFailures = "caddy_clerk_auth_denylist_sync_failures_total"
	denylistSyncAge      = "caddy_clerk_auth_denylist_sync_age_seconds"
	cacheHitSeries       = `caddy_clerk_auth_token_cache_total{result="hit"}`
)

// webhookSeries is the webhooks_total series of a result and status.
func webhookSeries(result string, status int) string {
	return fmt.Sprintf(`caddy_clerk_auth_webhooks_total{result=%q,status="%d"}`, result, status)
}

// startWebhookCaddy moves every clock to a fake one (before the config
// loads: clocks are read at provisioning) and starts a Caddy over the
// storage folder, with the global options, and clerk_webhook on
// webhookPath, its block holding iss's signing secret and webhookLines,
// next to routes.
func startWebhookCaddy(t *testing.T, iss *clerktest.Issuer, storage, options string, webhookLines []string, routes ...string) (*caddytest.Tester, *fakeclock.Clock) {
	t.Helper()
	clock := useFakeClock(t, iss)
	clusterClock = clock
	t.Cleanup(func() { clusterClock = nil })
	site := fmt.Sprintf(`:%d {
	handle %s {
		clerk_webhook {
			signing_secret %s
			%s
		}
	}%s%s
}`, caddyPort, webhookPath, iss.WebhookSecret(), strings.Join(webhookLines, "\n\t\t\t"), strings.Join(routes, ""), reasonErrors)
	return startCaddyWithOptions(t, "\tstorage file_system "+storage+"\n"+options, site), clock
}

// optionalRoute is a route on prefix whose clerk_auth lets requests
// without a usable token through, and answers with the user and the
// reason the token was not used.
func optionalRoute(prefix string, iss *clerktest.Issuer) string {
	return fmt.Sprintf(`
	route %s/* {
		clerk_auth {
			issuer %s
			optional
		}
		respond "user={http.auth.user.id} reason={http.auth.clerk.reason}"
	}`, prefix, iss.URL)
}

// sessionToken is a session token of session sid for user sub, minted at
// the issuer's clock.
func sessionToken(iss *clerktest.Issuer, sid, sub string) string {
	return iss.Mint(clerktest.WithClaims(map[string]any{"sid": sid, "sub": sub}))
}

// deliver sends an event signed with iss's secret and fails unless it is
// acknowledged.
func deliver(t *testing.T, iss *clerktest.Issuer, eventType string, data any) {
	t.Helper()
	status, err := iss.SendWebhook(caddyURL(webhookPath), eventType, data)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK {
		t.Fatalf("%s: status %d, want 200", eventType, status)
	}
}

// checkPasses asserts that token gets through to the upstream on path.
func checkPasses(t *testing.T, tester *caddytest.Tester, path, token string) {
	t.Helper()
	if resp, body := do(t, tester, http.MethodGet, path, bearer(token)); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d %q, want 200", path, resp.StatusCode, body)
	}
}

// syncRound runs one round of the denylist's Syncer: it waits for the
// Syncer's timer, fires it, and waits for the next one, which is set once
// the round has ended. The Caddy under test must have one Syncer only
// (clerk_webhook and clerk_auth with the same denylist_sync).
func syncRound(t *testing.T, clock *fakeclock.Clock, every time.Duration) {
	t.Helper()
	clock.WaitTimer(t)
	clock.Advance(every)
	clock.WaitTimer(t)
}

// storedDocument is what the webhook tests read of a denylist document.
type storedDocument struct {
	Sessions, Users, Forget map[string]json.RawMessage
}

// storedDocuments reads every denylist document in the storage folder, as
// clustersync writes them.
func storedDocuments(t *testing.T, storage string) []storedDocument {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(storage, clustersync.DefaultPrefix, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []storedDocument
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc storedDocument
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		docs = append(docs, doc)
	}
	return docs
}

// storedDenials returns the session and user ids the storage's denylist
// documents deny.
func storedDenials(t *testing.T, storage string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, doc := range storedDocuments(t, storage) {
		for id := range doc.Sessions {
			ids[id] = true
		}
		for id := range doc.Users {
			ids[id] = true
		}
	}
	return ids
}

// storedForgets returns the user and organization ids the storage's
// denylist documents hold forget marks for.
func storedForgets(t *testing.T, storage string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, doc := range storedDocuments(t, storage) {
		for id := range doc.Forget {
			ids[id] = true
		}
	}
	return ids
}

// forgetSeries is the enrich_forgets_total series of a source.
func forgetSeries(source string) string {
	return fmt.Sprintf(`caddy_clerk_auth_enrich_forgets_total{source=%q}`, source)
}

// TestWebhookDeliveries: each kind of delivery gets its status and is
// counted under its result; only the genuine session.revoked denies
// anything, in memory and in the storage, and its duplicate nothing more. A flood of deliveries from a
// client without the secret is refused and stores nothing.
func TestWebhookDeliveries(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	storage := t.TempDir()
	logOptions, readLog := debugLog(t)
	tester, clock := startWebhookCaddy(t, iss, storage, logOptions, nil, machineRoute("/a", iss, up))
	secret := iss.WebhookSecret()
	otherSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("not this endpoint's secret"))
	revoked := func(sid string) clerktest.Webhook {
		return iss.NewWebhook("session.revoked", clerktest.SessionData(sid, "user_1", "revoked"))
	}
	post := func(w clerktest.Webhook, h http.Header) func() (int, error) {
		return func() (int, error) { return w.Post(caddyURL(webhookPath), h) }
	}

	genuine := revoked("sess_genuine")
	unknown := iss.NewWebhook("email.created", map[string]any{"object": "email", "id": "ema_1"})
	forged := revoked("sess_forged")
	unsigned := revoked("sess_unsigned")
	stale := revoked("sess_stale")
	stale.Timestamp = stale.Timestamp.Add(-webhook.DefaultTolerance - time.Minute)
	large := revoked("sess_large")
	large.Body = append(large.Body, bytes.Repeat([]byte(" "), webhook.DefaultMaxBodySize)...)
	noHeaders := http.Header{"Content-Type": {"application/json"}}

	for _, tc := range []struct {
		name    string
		send    func() (int, error)
		status  int
		result  string
		entries float64 // denylist entries after it
	}{
		{"genuine session.revoked", post(genuine, genuine.Header(secret)), http.StatusOK, webhookApplied, 1},
		{"unknown event type", post(unknown, unknown.Header(secret)), http.StatusOK, webhookIgnored, 1},
		{"signed with another secret", post(forged, forged.Header(otherSecret)), http.StatusUnauthorized, webhookRefused, 1},
		{"no svix headers", post(unsigned, noHeaders), http.StatusBadRequest, webhookRefused, 1},
		{"stale", post(stale, stale.Header(secret)), http.StatusUnauthorized, webhookRefused, 1},
		{"duplicate", post(genuine, genuine.Header(secret)), http.StatusOK, webhookDuplicate, 1},
		{"over 256 KiB", post(large, large.Header(secret)), http.StatusRequestEntityTooLarge, webhookRefused, 1},
		{"GET", func() (int, error) {
			resp, _ := do(t, tester, http.MethodGet, webhookPath, nil)
			return resp.StatusCode, nil
		}, http.StatusMethodNotAllowed, webhookRefused, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := adminMetrics(t)
			status, err := tc.send()
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			after := adminMetrics(t)
			series := webhookSeries(tc.result, tc.status)
			if d := after[series] - before[series]; d != 1 {
				t.Errorf("%s moved by %v, want 1", series, d)
			}
			if after[denylistEntries] != tc.entries {
				t.Errorf("%s = %v, want %v", denylistEntries, after[denylistEntries], tc.entries)
			}
		})
	}

	t.Run("only the genuine delivery denies", func(t *testing.T) {
		up.reset()
		resp, body := do(t, tester, http.MethodGet, "/a/x", bearer(sessionToken(iss, "sess_genuine", "user_1")))
		checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonSessionRevoked)
		for _, sid := range []string{"sess_forged", "sess_unsigned", "sess_stale", "sess_large"} {
			checkPasses(t, tester, "/a/x", sessionToken(iss, sid, "user_1"))
		}
		// Stored before its 200, without waiting for a round.
		stored := storedDenials(t, storage)
		if !stored["sess_genuine"] || len(stored) != 1 {
			t.Errorf("the storage denies %v, want sess_genuine alone", stored)
		}
	})

	t.Run("a duplicate applies nothing new", func(t *testing.T) {
		// A minute on, applied again, it would push the denial's end and
		// rewrite the document.
		docs, err := filepath.Glob(filepath.Join(storage, clustersync.DefaultPrefix, "*.json"))
		if err != nil || len(docs) != 1 {
			t.Fatalf("denylist documents %v (%v), want one", docs, err)
		}
		doc, err := os.ReadFile(docs[0])
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		if status, err := genuine.Post(caddyURL(webhookPath), genuine.Header(secret)); err != nil || status != http.StatusOK {
			t.Fatalf("the duplicate: %d, %v; want 200", status, err)
		}
		syncRound(t, clock, defaultDenylistSync)
		if after, err := os.ReadFile(docs[0]); err != nil || !bytes.Equal(after, doc) {
			t.Errorf("the duplicate changed the stored document (%v):\n%s\n→\n%s", err, doc, after)
		}
	})

	t.Run("flood without the secret", func(t *testing.T) {
		const n = 100
		before := adminMetrics(t)
		for i := range n {
			w := revoked(fmt.Sprintf("sess_flood_%d", i))
			h := w.Header(otherSecret)
			if i%2 == 1 {
				h.Del(webhook.HeaderSignature)
			}
			status, err := w.Post(caddyURL(webhookPath), h)
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusUnauthorized && status != http.StatusBadRequest {
				t.Fatalf("delivery %d: status %d, want 401 or 400", i, status)
			}
		}
		syncRound(t, clock, defaultDenylistSync)
		after := adminMetrics(t)
		refused := after[webhookSeries(webhookRefused, http.StatusUnauthorized)] - before[webhookSeries(webhookRefused, http.StatusUnauthorized)] +
			after[webhookSeries(webhookRefused, http.StatusBadRequest)] - before[webhookSeries(webhookRefused, http.StatusBadRequest)]
		if refused != n {
			t.Errorf("%v refusals counted, want %d", refused, n)
		}
		if after[denylistEntries] != 1 {
			t.Errorf("%s = %v after the flood, want 1", denylistEntries, after[denylistEntries])
		}
		if stored := storedDenials(t, storage); len(stored) != 1 {
			t.Errorf("the storage denies %v after the flood, want sess_genuine alone", stored)
		}
		checkPasses(t, tester, "/a/x", sessionToken(iss, "sess_flood_0", "user_1"))
	})

	t.Run("the log holds no secret", func(t *testing.T) {
		log := readLog()
		if !strings.Contains(log, "webhook refused") || !strings.Contains(log, "webhook applied") || !strings.Contains(log, "webhook already applied") {
			t.Fatal("the debug log recorded no delivery: it proves nothing")
		}
		checkNoSecret(t, log, secret, strings.TrimPrefix(secret, "whsec_"), otherSecret, iss.SecretKey())
	})
}

// TestWebhookRevocation: the tokens of a revoked session, and of a
// deleted or banned user (API keys included), issued up to the event are
// refused on the same Caddy at once, their cached tokens included, while
// other sessions and users pass; an optional route serves them as
// anonymous with the reason; and the denial ends after deny_for.
func TestWebhookRevocation(t *testing.T) {
	const denyFor = time.Hour
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester, clock := startWebhookCaddy(t, iss, t.TempDir(), "", []string{"deny_for 1h"},
		machineRoute("/a", iss, up, "accept session api_key"),
		optionalRoute("/opt", iss))

	revokedSession := sessionToken(iss, "sess_revoked", "user_a")
	sameUser := sessionToken(iss, "sess_other", "user_a")
	deletedTokens := []string{
		sessionToken(iss, "sess_c1", "user_deleted"),
		sessionToken(iss, "sess_c2", "user_deleted"),
		iss.IssueAPIKey("user_deleted", nil, "ci", nil, time.Time{}),
	}
	banned := sessionToken(iss, "sess_d", "user_banned")
	bystander := sessionToken(iss, "sess_e", "user_bystander")
	// Every token is verified once, so that what follows is served from
	// the caches.
	for _, token := range append([]string{revokedSession, sameUser, banned, bystander}, deletedTokens...) {
		checkPasses(t, tester, "/a/x", token)
	}

	deliver(t, iss, "session.revoked", clerktest.SessionData("sess_revoked", "user_a", "revoked"))
	deliver(t, iss, "user.deleted", clerktest.DeletedData("user", "user_deleted"))
	deliver(t, iss, "user.updated", clerktest.UserData("user_banned", true))

	t.Run("revoked session, from the token cache", func(t *testing.T) {
		before := adminMetrics(t)
		up.reset()
		resp, body := do(t, tester, http.MethodGet, "/a/x", bearer(revokedSession))
		checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonSessionRevoked)
		if d := adminMetrics(t)[cacheHitSeries] - before[cacheHitSeries]; d != 1 {
			t.Errorf("%s moved by %v: the refusal was not a cache hit", cacheHitSeries, d)
		}
	})
	t.Run("other session of the same user", func(t *testing.T) {
		checkPasses(t, tester, "/a/x", sameUser)
	})
	t.Run("every token of a deleted user", func(t *testing.T) {
		for _, token := range deletedTokens {
			up.reset()
			resp, body := do(t, tester, http.MethodGet, "/a/x", bearer(token))
			checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonUserRevoked)
		}
	})
	t.Run("banned user", func(t *testing.T) {
		up.reset()
		resp, body := do(t, tester, http.MethodGet, "/a/x", bearer(banned))
		checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonUserRevoked)
	})
	t.Run("bystander", func(t *testing.T) {
		checkPasses(t, tester, "/a/x", bystander)
	})
	t.Run("optional route serves them as anonymous", func(t *testing.T) {
		for _, tc := range []struct {
			token, want string
		}{
			{revokedSession, "user= reason=" + ReasonSessionRevoked},
			{deletedTokens[0], "user= reason=" + ReasonUserRevoked},
			{bystander, "user=user_bystander reason="},
		} {
			resp, body := do(t, tester, http.MethodGet, "/opt/x", bearer(tc.token))
			if resp.StatusCode != http.StatusOK || body != tc.want {
				t.Errorf("status %d %q, want 200 %q", resp.StatusCode, body, tc.want)
			}
		}
	})
	t.Run("denials end after deny_for", func(t *testing.T) {
		start := clock.Now()
		// Issued at the events, and living longer than deny_for.
		longLived := func(sid, sub string) string {
			return iss.Mint(clerktest.IssuedAt(start), clerktest.Lifetime(2*denyFor), clerktest.WithClaims(map[string]any{"sid": sid, "sub": sub}))
		}
		tokens := []string{longLived("sess_revoked", "user_a"), longLived("sess_c3", "user_deleted")}
		for _, tc := range []struct {
			advance time.Duration
			status  int
		}{
			{denyFor - time.Second, http.StatusUnauthorized},
			{2 * time.Second, http.StatusOK},
		} {
			clock.Advance(tc.advance)
			for _, token := range tokens {
				up.reset()
				resp, body := do(t, tester, http.MethodGet, "/a/x", bearer(token))
				if resp.StatusCode != tc.status {
					t.Fatalf("%v after the webhooks: status %d %q, want %d", clock.Now().Sub(start), resp.StatusCode, body, tc.status)
				}
			}
		}
	})
}

// TestWebhookDropsEnrichment: an event that changes a user, an
// organization or a membership drops what enrichment cached of them, so
// the next request fetches it again, and is answered once its forget marks
// are in the storage for the other Caddys; other requests keep the cache.
func TestWebhookDropsEnrichment(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	storage := t.TempDir()
	tester, _ := startWebhookCaddy(t, iss, storage, "", nil, machineRoute("/e", iss, up, "enrich user org"))
	token := setAlice(iss, "user_alice", "org_acme")
	checkPasses(t, tester, "/e/x", token) // fills the cache

	for _, tc := range []struct {
		event      string
		data       any
		users, org int64  // Backend API calls on the next request
		marked     string // the id it marks in the storage, besides the earlier ones
		drops      float64
	}{
		{"", nil, 0, 0, "", 0},
		{"user.updated", clerktest.UserData("user_alice", false), 1, 0, "user_alice", 1},
		{"organization.updated", clerktest.OrganizationData("org_acme"), 0, 1, "org_acme", 1},
		{"organizationMembership.deleted", clerktest.MembershipData("user_alice", "org_acme", "org:admin"), 1, 1, "", 2},
		{"user.updated", clerktest.UserData("user_somebody_else", false), 0, 0, "user_somebody_else", 1},
	} {
		name := tc.event
		if name == "" {
			name = "no event"
		}
		marked := storedForgets(t, storage)
		if tc.marked != "" {
			marked[tc.marked] = true
		}
		t.Run(name, func(t *testing.T) {
			metricsBefore := adminMetrics(t)
			if tc.event != "" {
				deliver(t, iss, tc.event, tc.data)
			}
			if got := storedForgets(t, storage); !maps.Equal(got, marked) {
				t.Errorf("marks in the storage once answered: %v, want %v", got, marked)
			}
			series := forgetSeries(forgetFromWebhook)
			if d := adminMetrics(t)[series] - metricsBefore[series]; d != tc.drops {
				t.Errorf("%s moved by %v, want %v", series, d, tc.drops)
			}
			checkPassesCalling(t, tester, iss, "/e/x", token, tc.users, tc.org)
		})
	}
}

// checkPassesCalling asserts that token passes on path, and that the
// request made users user and org organization Backend API calls.
func checkPassesCalling(t *testing.T, tester *caddytest.Tester, iss *clerktest.Issuer, path, token string, users, org int64) {
	t.Helper()
	before := iss.ResourceStats()
	checkPasses(t, tester, path, token)
	after := iss.ResourceStats()
	if u, o := after.UserCalls-before.UserCalls, after.OrganizationCalls-before.OrganizationCalls; u != users || o != org {
		t.Errorf("%d user and %d organization calls, want %d and %d", u, o, users, org)
	}
}

// TestStoredForgetDropsEnrichment: a forget mark that another Caddy wrote
// into the shared storage drops what enrichment cached of its id at the
// next read of the storage, once; a mark past its retention drops
// nothing.
func TestStoredForgetDropsEnrichment(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	storage := t.TempDir()
	tester, clock := startWebhookCaddy(t, iss, storage, "", nil, machineRoute("/e", iss, up, "enrich user org"))
	token := setAlice(iss, "user_alice", "org_acme")
	checkPasses(t, tester, "/e/x", token) // fills the cache
	other := filepath.Join(storage, clustersync.DefaultPrefix, "other.json")
	if err := os.MkdirAll(filepath.Dir(other), 0o700); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name       string
		forget     func(now time.Time) string // the other Caddy's forget member; "" leaves its document
		users, org int64                      // Backend API calls on the next request
	}{
		{"user changed", func(now time.Time) string { return fmt.Sprintf(`{"user_alice":%d}`, now.Unix()) }, 1, 0},
		{"the same mark, read again", nil, 0, 0},
		{"the organization changed, the user's mark older than the one applied", func(now time.Time) string {
			return fmt.Sprintf(`{"user_alice":%d,"org_acme":%d}`, now.Unix()-60, now.Unix())
		}, 0, 1},
		{"a mark past retention", func(now time.Time) string {
			return fmt.Sprintf(`{"user_alice":%d}`, now.Add(-2*clerkapi.DefaultEnrichTTL).Unix())
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.forget != nil {
				doc := fmt.Sprintf(`{"version":2,"instance":"other","written":%d,"forget":%s}`, clock.Now().Unix(), tc.forget(clock.Now()))
				if err := os.WriteFile(other, []byte(doc), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			series := forgetSeries(forgetFromStorage)
			metricsBefore := adminMetrics(t)
			syncRound(t, clock, defaultDenylistSync)
			if d := adminMetrics(t)[series] - metricsBefore[series]; d != float64(tc.users+tc.org) {
				t.Errorf("%s moved by %v, want %v", series, d, tc.users+tc.org)
			}
			checkPassesCalling(t, tester, iss, "/e/x", token, tc.users, tc.org)
		})
	}
}

// TestWebhookReachesOtherSyncPeriods: a clerk_auth route whose
// denylist_sync differs from clerk_webhook's has a denylist of its own, and
// still denies a revoked session at once, without waiting for its next
// read of the storage.
func TestWebhookReachesOtherSyncPeriods(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester, _ := startWebhookCaddy(t, iss, t.TempDir(), "", nil,
		machineRoute("/a", iss, up, "denylist_sync 1m"))
	token := sessionToken(iss, "sess_elsewhere", "user_a")
	checkPasses(t, tester, "/a/x", token)
	deliver(t, iss, "session.revoked", clerktest.SessionData("sess_elsewhere", "user_a", "revoked"))
	up.reset()
	resp, body := do(t, tester, http.MethodGet, "/a/x", bearer(token))
	checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonSessionRevoked)
}
