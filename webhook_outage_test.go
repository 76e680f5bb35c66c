package clerkauth

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/clustersync"
)

// postWebhook sends a delivery to the Caddy under test and returns the
// answer, headers included.
func postWebhook(t *testing.T, tester *caddytest.Tester, w clerktest.Webhook, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, caddyURL(webhookPath), bytes.NewReader(w.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	resp, _ := roundTrip(t, tester, req)
	return resp
}

// TestWebhookStorageOutage: while the storage folder is unusable, a
// webhook that denies or drops enrichment data is applied on this Caddy at
// once but answered 503 with Retry-After, so that Clerk sends it again, and
// requests keep flowing; the failures are counted. Once the folder is back, Svix's retry
// (the same svix-id, signed anew) is applied and answered 200 with its
// denial in the storage, and another instance's denials written meanwhile
// are merged.
func TestWebhookStorageOutage(t *testing.T) {
	const every = time.Second
	iss := clerktest.Start(t)
	up := startUpstream(t)
	storage := t.TempDir()
	tester, clock := startWebhookCaddy(t, iss, storage, "", []string{"denylist_sync 1s"},
		machineRoute("/a", iss, up, "denylist_sync 1s"))
	top := filepath.Join(storage, strings.SplitN(clustersync.DefaultPrefix, "/", 2)[0])
	aside := top + ".away"

	deliver(t, iss, "session.revoked", clerktest.SessionData("sess_before", "user_1", "revoked"))
	if !storedDenials(t, storage)["sess_before"] {
		t.Fatal("the denial was not in the storage when the delivery was answered")
	}

	// The denylist's folder becomes a file: every list, read and write
	// under it fails.
	if err := os.Rename(top, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(top, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := adminMetrics(t)
	during := iss.NewWebhook("session.revoked", clerktest.SessionData("sess_during", "user_1", "revoked"))
	changed := iss.NewWebhook("user.updated", clerktest.UserData("user_1", false))
	unstored := webhookSeries(webhookUnstored, http.StatusServiceUnavailable)

	for _, tc := range []struct {
		name, series string
		w            clerktest.Webhook
		moved        float64
	}{
		{"a denial is answered 503", unstored, during, 1},
		// Forgotten after the 503, the id is no duplicate: applied again,
		// and refused again while the storage is out.
		{"sent again, answered 503 again", unstored, during, 2},
		// The other Caddys learn of a drop through the storage too.
		{"a drop of enrichment data is answered 503 too", unstored, changed, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := postWebhook(t, tester, tc.w, tc.w.Header(iss.WebhookSecret()))
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if d := adminMetrics(t)[tc.series] - before[tc.series]; d != tc.moved {
				t.Errorf("%s moved by %v, want %v", tc.series, d, tc.moved)
			}
			// Refused here at once, with no round run.
			up.reset()
			resp, body := do(t, tester, http.MethodGet, "/a/x", bearer(sessionToken(iss, "sess_during", "user_1")))
			checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonSessionRevoked)
		})
	}
	t.Run("requests keep flowing", func(t *testing.T) {
		syncRound(t, clock, every)
		syncRound(t, clock, every)
		up.reset()
		resp, body := do(t, tester, http.MethodGet, "/a/x", bearer(sessionToken(iss, "sess_before", "user_1")))
		checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonSessionRevoked)
		checkPasses(t, tester, "/a/x", sessionToken(iss, "sess_fine", "user_1"))
	})
	t.Run("failures counted", func(t *testing.T) {
		if d := adminMetrics(t)[denylistSyncFailures] - before[denylistSyncFailures]; d < 2 {
			t.Errorf("%s moved by %v over two failed rounds", denylistSyncFailures, d)
		}
	})

	// Another instance wrote its document meanwhile, onto storage this
	// one could not reach.
	until := clock.Now().Add(time.Hour).Unix()
	other := fmt.Sprintf(`{"version":1,"instance":"other","written":%d,"sessions":{"sess_elsewhere":%d}}`, clock.Now().Unix(), until)
	if err := os.WriteFile(filepath.Join(aside, "denylist", "other.json"), []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(top); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, top); err != nil {
		t.Fatal(err)
	}

	t.Run("Svix's retry is applied once it returns", func(t *testing.T) {
		if storedDenials(t, storage)["sess_during"] {
			t.Fatal("the denial reached the storage before the retry: the retry proves nothing")
		}
		// Svix signs each attempt when it sends it; the last one is more
		// than the tolerance old by now.
		clock.Advance(6 * time.Minute)
		retry := during
		retry.Timestamp = clock.Now().Truncate(time.Second)
		applied := webhookSeries(webhookApplied, http.StatusOK)
		was := adminMetrics(t)[applied]
		if resp := postWebhook(t, tester, retry, retry.Header(iss.WebhookSecret())); resp.StatusCode != http.StatusOK {
			t.Fatalf("the retry: status %d, want 200", resp.StatusCode)
		}
		if d := adminMetrics(t)[applied] - was; d != 1 {
			t.Errorf("%s moved by %v, want 1", applied, d)
		}
		if !storedDenials(t, storage)["sess_during"] {
			t.Error("the retry was answered 200 before its denial was in the storage")
		}
	})
	t.Run("converges", func(t *testing.T) {
		syncRound(t, clock, every)
		settled := adminMetrics(t)
		up.reset()
		resp, body := do(t, tester, http.MethodGet, "/a/x", bearer(sessionToken(iss, "sess_elsewhere", "user_1")))
		checkRefused(t, up, resp, body, http.StatusUnauthorized, ReasonSessionRevoked)
		syncRound(t, clock, every)
		after := adminMetrics(t)
		if after[denylistSyncFailures] != settled[denylistSyncFailures] {
			t.Errorf("%s still moves once the storage is back: %v → %v", denylistSyncFailures, settled[denylistSyncFailures], after[denylistSyncFailures])
		}
		if age, ok := after[denylistSyncAge]; !ok || age > every.Seconds() {
			t.Errorf("%s = %v (present %v), want at most %v", denylistSyncAge, age, ok, every.Seconds())
		}
	})
}
