package examples

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// denylistSync is the fleet's denylist_sync: short, to keep the test short.
const denylistSync = time.Second

// webhookPath is where the first process of a fleet takes Clerk's webhooks.
const webhookPath = "/clerk/webhook"

// fleetCaddyfile is one Caddy of a fleet sharing the storage folder:
// clerk_auth with its token cache and the lines of auth in front of
// upstream, the reason of a refusal in X-Reason, and its metrics at
// /metrics. With a secret it also takes Clerk's webhooks at webhookPath.
func fleetCaddyfile(storage string, port int, issuer, upstream, secret, auth string) string {
	webhook := ""
	if secret != "" {
		webhook = fmt.Sprintf(`
	handle %s {
		clerk_webhook {
			signing_secret %s
			denylist_sync %s
		}
	}`, webhookPath, secret, denylistSync)
	}
	return fmt.Sprintf(`{
	admin off
	persist_config off
	default_bind 127.0.0.1
	storage file_system %s
}

http://127.0.0.1:%d {
	handle /metrics {
		metrics
	}%s
	handle {
		clerk_auth {
			issuer %s
			token_cache 1000
			denylist_sync %s
			forward_header X-User-Id {http.auth.user.id}%s
		}
		reverse_proxy %s
	}
	handle_errors {
		header X-Reason {http.auth.clerk.reason}
		respond "{err.status_code} {http.auth.clerk.reason}" {err.status_code}
	}
}
`, storage, port, webhook, issuer, denylistSync, auth, upstream)
}

// fleet is Caddy processes sharing one storage folder.
type fleet struct {
	t        *testing.T
	iss      *clerktest.Issuer
	storage  string
	upstream string
	auth     string // more clerk_auth lines, each starting with a newline
	urls     []string
}

// launch starts n more processes, the first of a new fleet with
// clerk_webhook, and returns once all serve.
func (f *fleet) launch(n int) {
	f.t.Helper()
	var procs []*proc
	var urls []string
	for range n {
		port := freePort(f.t)
		secret := ""
		if len(f.urls)+len(urls) == 0 {
			secret = f.iss.WebhookSecret()
		}
		procs = append(procs, launchCaddy(f.t, fleetCaddyfile(f.storage, port, f.iss.URL, f.upstream, secret, f.auth)))
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	for _, p := range procs {
		p.waitFor(f.t, caddyReady)
	}
	f.urls = append(f.urls, urls...)
}

// answer is a request's outcome: the status and, for a refusal, its
// reason code.
type answer struct {
	status int
	reason string
}

func (a answer) String() string { return fmt.Sprintf("%d %q", a.status, a.reason) }

var accepted = answer{http.StatusOK, ""}

// ask sends token to the process at url.
func ask(t *testing.T, url, token string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/app", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("X-Reason")}
}

var cacheHitsRE = regexp.MustCompile(`(?m)^caddy_clerk_auth_token_cache_total\{result="hit"\} (\d+)$`)

// cacheHits is the count of verified-token cache hits of the process at url.
func cacheHits(t *testing.T, url string) int {
	t.Helper()
	status, body := fetch(t, url+"/metrics", nil)
	m := cacheHitsRE.FindSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("%s/metrics: %d, no token cache hits in:\n%s", url, status, body)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// awaitAnswer polls the process at url with token until it answers want,
// and returns how long that took; it fails after deadline.
func awaitAnswer(t *testing.T, url, token string, want answer, deadline time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := ask(t, url, token)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > deadline {
			t.Fatalf("%s answered %v for %v, want %v", url, got, deadline, want)
		}
		time.Sleep(50 * time.Millisecond) // a poll interval, not a timing assertion
	}
}

// snapshot is the storage folder's files and the hash of each.
func snapshot(t *testing.T, dir string) map[string][sha256.Size]byte {
	t.Helper()
	files := map[string][sha256.Size]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[rel] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestRevocationAcrossProcesses runs three Caddy processes on one storage
// folder, the first taking Clerk's webhooks: a revocation sent to the first
// reaches the other two within a few sync periods, their token caches
// included, and a fourth process started later refuses at its first
// request; forged and stale deliveries are refused and change nothing, and
// a duplicate is acknowledged and changes nothing. A ban refuses the
// tokens issued before it everywhere, and one minted after it passes
// everywhere.
func TestRevocationAcrossProcesses(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-User-Id"))
	}))
	t.Cleanup(upstream.Close)
	f := &fleet{t: t, iss: clerktest.Start(t), storage: t.TempDir(), upstream: upstream.Listener.Addr().String()}
	f.launch(3)
	hook := f.urls[0] + webhookPath

	// Long-lived, so a slow machine does not see them expire.
	mint := func(user, session string) string {
		return f.iss.Mint(clerktest.Lifetime(time.Hour), clerktest.WithClaims(map[string]any{"sub": user, "sid": session}))
	}
	victim := mint("user_victim", "sess_victim")
	bystander := mint("user_bystander", "sess_bystander")
	gone := []string{mint("user_gone", "sess_gone_a"), mint("user_gone", "sess_gone_b")}
	// Issued before the ban below, which is dated a minute back.
	preBan := f.iss.Mint(clerktest.IssuedAt(time.Now().Add(-2*time.Minute)), clerktest.Lifetime(time.Hour),
		clerktest.WithClaims(map[string]any{"sub": "user_banned", "sid": "sess_banned"}))
	all := append([]string{victim, bystander, preBan}, gone...)

	// Each process verifies each token, then serves it from its cache.
	for _, url := range f.urls {
		for _, token := range all {
			for range 2 {
				if got := ask(t, url, token); got != accepted {
					t.Fatalf("%s answered %v before any webhook, want %v", url, got, accepted)
				}
			}
		}
		if hits := cacheHits(t, url); hits < len(all) {
			t.Fatalf("%s: %d token cache hits after asking each token twice, want %d", url, hits, len(all))
		}
	}
	// deadline bounds the spread of a denial: a few sync periods.
	const deadline = 5 * denylistSync

	t.Run("forged and stale deliveries", func(t *testing.T) {
		before := snapshot(t, f.storage)
		forged := f.iss.NewWebhook("session.revoked", clerktest.SessionData("sess_bystander", "user_bystander", "revoked"))
		stale := f.iss.NewWebhook("session.revoked", clerktest.SessionData("sess_bystander", "user_bystander", "revoked"))
		stale.Timestamp = stale.Timestamp.Add(-10 * time.Minute)
		for _, tc := range []struct {
			name  string
			w     clerktest.Webhook
			h     http.Header
			state int
		}{
			{"wrong secret", forged, forged.Header("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), http.StatusUnauthorized},
			{"stale", stale, stale.Header(f.iss.WebhookSecret()), http.StatusUnauthorized},
		} {
			status, err := tc.w.Post(hook, tc.h)
			if err != nil || status != tc.state {
				t.Errorf("%s: answered %d, %v; want %d", tc.name, status, err, tc.state)
			}
		}
		// The receiver would deny at once; the others learn only through
		// the storage, which nothing was written to.
		for _, url := range f.urls {
			if got := ask(t, url, bystander); got != accepted {
				t.Errorf("%s answered %v after refused deliveries, want %v", url, got, accepted)
			}
		}
		if after := snapshot(t, f.storage); !maps.Equal(before, after) {
			t.Errorf("refused deliveries changed the storage folder: %d files before, %d after", len(before), len(after))
		}
	})

	revoked := answer{http.StatusUnauthorized, "session-revoked"}
	delivery := f.iss.NewWebhook("session.revoked", clerktest.SessionData("sess_victim", "user_victim", "revoked"))
	t.Run("session.revoked", func(t *testing.T) {
		if status, err := delivery.Post(hook, delivery.Header(f.iss.WebhookSecret())); err != nil || status != http.StatusOK {
			t.Fatalf("the signed delivery: %d, %v; want 200", status, err)
		}
		sent := time.Now()
		if got := ask(t, f.urls[0], victim); got != revoked {
			t.Errorf("the receiving process answered %v, want %v", got, revoked)
		}
		for _, url := range f.urls[1:] {
			hits := cacheHits(t, url)
			awaitAnswer(t, url, victim, revoked, deadline)
			t.Logf("%s refuses %s after the webhook", url, time.Since(sent).Round(10*time.Millisecond))
			if cacheHits(t, url) <= hits {
				t.Errorf("%s refused without a token cache hit: the cached token was not the one refused", url)
			}
		}
		for _, url := range f.urls {
			if got := ask(t, url, bystander); got != accepted {
				t.Errorf("%s answered %v for another session, want %v", url, got, accepted)
			}
		}
	})

	t.Run("duplicate delivery", func(t *testing.T) {
		// Applied again, it would push the denial's expiry and rewrite
		// the receiver's document.
		before := snapshot(t, f.storage)
		if len(before) == 0 {
			t.Fatal("the storage folder holds no denylist document after a revocation")
		}
		if status, err := delivery.Post(hook, delivery.Header(f.iss.WebhookSecret())); err != nil || status != http.StatusOK {
			t.Errorf("the duplicate: %d, %v; want 200", status, err)
		}
		if got := ask(t, f.urls[0], bystander); got != accepted {
			t.Errorf("the receiver answered %v for another session after a duplicate, want %v", got, accepted)
		}
		if after := snapshot(t, f.storage); !maps.Equal(before, after) {
			t.Error("a duplicate delivery changed the storage folder")
		}
	})

	t.Run("fourth process started afterwards", func(t *testing.T) {
		f.launch(1)
		late := f.urls[len(f.urls)-1]
		if got := ask(t, late, victim); got != revoked {
			t.Errorf("its first request answered %v, want %v", got, revoked)
		}
		if got := ask(t, late, bystander); got != accepted {
			t.Errorf("another session answered %v, want %v", got, accepted)
		}
	})

	t.Run("ban, then a token minted after it", func(t *testing.T) {
		// Clerk signed the ban a minute ago (a delayed delivery), so that a
		// token minted now is past the event and its margin.
		f.iss.SetNow(func() time.Time { return time.Now().Add(-time.Minute) })
		ban := f.iss.NewWebhook("user.updated", clerktest.UserData("user_banned", true))
		f.iss.SetNow(nil)
		if status, err := ban.Post(hook, ban.Header(f.iss.WebhookSecret())); err != nil || status != http.StatusOK {
			t.Fatalf("the signed delivery: %d, %v; want 200", status, err)
		}
		// Once unbanned in Clerk, the user's next token.
		unbanned := mint("user_banned", "sess_banned")
		userRevoked := answer{http.StatusUnauthorized, "user-revoked"}
		for _, url := range f.urls {
			awaitAnswer(t, url, preBan, userRevoked, deadline)
			if got := ask(t, url, unbanned); got != accepted {
				t.Errorf("%s answered %v for a token minted after the ban, want %v", url, got, accepted)
			}
		}
	})

	t.Run("user.deleted", func(t *testing.T) {
		if status, err := f.iss.SendWebhook(hook, "user.deleted", clerktest.DeletedData("user", "user_gone")); err != nil || status != http.StatusOK {
			t.Fatalf("the signed delivery: %d, %v; want 200", status, err)
		}
		userRevoked := answer{http.StatusUnauthorized, "user-revoked"}
		for _, url := range f.urls {
			for _, token := range gone {
				awaitAnswer(t, url, token, userRevoked, deadline)
			}
			if got := ask(t, url, bystander); got != accepted {
				t.Errorf("%s answered %v for another user, want %v", url, got, accepted)
			}
		}
	})
}
