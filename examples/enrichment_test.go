package examples

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// enrichAuth is the clerk_auth lines of a fleet that enriches requests
// with the user's data from iss's Backend API and forwards the email.
func enrichAuth(iss *clerktest.Issuer) string {
	return fmt.Sprintf(`
			secret_key %s
			api_url %s
			enrich user
			forward_header X-User-Email {http.auth.user.email}`, iss.SecretKey(), iss.APIURL())
}

// emailOf is the email the process at url forwards for token's user.
func emailOf(t *testing.T, url, token string) string {
	t.Helper()
	status, body := fetch(t, url+"/app", bearer(token, nil))
	if status != http.StatusOK {
		t.Fatalf("%s: %d %s", url, status, body)
	}
	return string(body)
}

var storageForgetsRE = regexp.MustCompile(`(?m)^caddy_clerk_auth_enrich_forgets_total\{source="storage"\} (\d+)$`)

// storageForgets is how many enrichment drops the process at url read
// from the storage.
func storageForgets(t *testing.T, url string) int {
	t.Helper()
	status, body := fetch(t, url+"/metrics", nil)
	m := storageForgetsRE.FindSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("%s/metrics: %d, no enrichment drops from the storage in:\n%s", url, status, body)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestUserChangeAcrossProcesses runs two Caddy processes on one storage
// folder, both forwarding the user's email from enrichment, the first
// taking Clerk's webhooks: once the user's email changes in Clerk and a
// user.updated goes to the first, the second forwards the new email within
// a few sync periods, not when its cache entry is 5 minutes old.
func TestUserChangeAcrossProcesses(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-User-Email"))
	}))
	t.Cleanup(upstream.Close)
	iss := clerktest.Start(t)
	user := func(email string) clerktest.User {
		return clerktest.User{ID: "user_changing", Emails: []string{email}, PrimaryEmail: email}
	}
	iss.SetUser(user("old@example.com"))
	f := &fleet{t: t, iss: iss, storage: t.TempDir(), upstream: upstream.Listener.Addr().String(), auth: enrichAuth(iss)}
	f.launch(2)
	receiver, other := f.urls[0], f.urls[1]
	token := iss.Mint(clerktest.Lifetime(time.Hour), clerktest.WithClaims(map[string]any{"sub": "user_changing"}))

	for _, url := range f.urls {
		if got := emailOf(t, url, token); got != "old@example.com" {
			t.Fatalf("%s forwards %q before any change, want old@example.com", url, got)
		}
	}
	iss.SetUser(user("new@example.com"))
	calls := iss.ResourceStats().UserCalls
	for _, url := range f.urls {
		if got := emailOf(t, url, token); got != "old@example.com" {
			t.Fatalf("%s forwards %q before the webhook, want the cached old@example.com", url, got)
		}
	}
	if n := iss.ResourceStats().UserCalls; n != calls {
		t.Fatalf("%d Backend API calls before the webhook: the cache did not answer", n-calls)
	}
	drops := storageForgets(t, other)

	if status, err := iss.SendWebhook(receiver+webhookPath, "user.updated", clerktest.UserData("user_changing", false)); err != nil || status != http.StatusOK {
		t.Fatalf("user.updated: %d, %v; want 200", status, err)
	}
	sent := time.Now()
	if got := emailOf(t, receiver, token); got != "new@example.com" {
		t.Errorf("the receiving process forwards %q, want new@example.com", got)
	}
	deadline := 5 * denylistSync
	for got := emailOf(t, other, token); got != "new@example.com"; got = emailOf(t, other, token) {
		if time.Since(sent) > deadline {
			t.Fatalf("%s still forwards %q %v after the webhook, want new@example.com", other, got, deadline)
		}
		time.Sleep(50 * time.Millisecond) // a poll interval, not a timing assertion
	}
	t.Logf("%s forwards the new email %s after the webhook", other, time.Since(sent).Round(10*time.Millisecond))
	if n := storageForgets(t, other); n <= drops {
		t.Errorf("%s counted no enrichment drop read from the storage", other)
	}
}
