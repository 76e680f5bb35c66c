package clustersync

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
	"github.com/caddyclerk/caddy-clerk-auth/internal/webhook"
)

// tokenLifetime is the longest-lived token the tests' denials affect.
const tokenLifetime = time.Hour

// webhookEndpoint is the glue the Caddy handler is: verify; acknowledge a
// duplicate unapplied; deny through the Syncer and acknowledge once the
// denial is stored, or forget the id and refuse so that Svix retries. It
// serves on a real listener.
func webhookEndpoint(t *testing.T, secret string, clock *fakeclock.Clock, in instance) string {
	t.Helper()
	v, err := webhook.New(secret, webhook.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := v.Read(r)
		switch {
		case errors.Is(err, webhook.ErrDuplicate):
			w.WriteHeader(http.StatusNoContent)
			return
		case err != nil:
			http.Error(w, http.StatusText(webhook.Status(err)), webhook.Status(err))
			return
		}
		until := clock.Now().Add(tokenLifetime)
		for _, a := range ev.Actions {
			switch a.Kind {
			case webhook.DenySession:
				in.sync.Deny(denylist.Entry{Kind: denylist.Session, ID: a.ID, Until: until})
			case webhook.DenyUser:
				in.sync.Deny(denylist.Entry{Kind: denylist.User, ID: a.ID, Until: until})
			}
		}
		if err := in.sync.Flush(r.Context()); err != nil {
			v.Forget(ev.ID)
			http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A session.revoked webhook sent to one instance of three makes the
// other two deny the session one SyncEvery later.
func TestWebhookReachesCluster(t *testing.T) {
	verifyNoLeak(t)
	clerk := clerktest.Start(t)
	s := newStorage(t)
	clocks := []*fakeclock.Clock{fakeclock.New(testNow), fakeclock.New(testNow), fakeclock.New(testNow)}
	clerk.SetNow(clocks[0].Now)
	ins := []instance{
		newInstance(t, s, clocks[0], "a"),
		newInstance(t, sameFolder(s), clocks[1], "b"),
		newInstance(t, sameFolder(s), clocks[2], "c"),
	}
	mustStart(t, ins...)
	url := webhookEndpoint(t, clerk.WebhookSecret(), clocks[0], ins[0])

	status, err := clerk.SendWebhook(url, "session.revoked", clerktest.SessionData("sess_1", "user_1", "revoked"))
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("webhook: %d, %v", status, err)
	}
	waitFor(t, "a to publish", func() bool { return ins[0].sync.Stats().Writes == 1 })
	for n, in := range ins[1:] {
		tick(t, in, clocks[n+1])
		if !in.denies("sess_1", clocks[n+1].Now()) {
			t.Errorf("instance %d does not deny the revoked session", n+1)
		}
	}
}

// A flood of deliveries that are not Clerk's (no secret, another secret,
// stale, oversized) or were applied already (a replay in the window)
// denies nothing new and writes nothing to storage; each costs at most one HMAC over a capped body (see the
// webhook package's BenchmarkVerify).
func TestWebhookFloodStoresNothing(t *testing.T) {
	verifyNoLeak(t)
	clerk := clerktest.Start(t)
	attacker := clerktest.Start(t) // a fake Clerk with another secret
	clock := fakeclock.New(testNow)
	clerk.SetNow(clock.Now)
	attacker.SetNow(clock.Now)
	s := newStorage(t)
	in := newInstance(t, s, clock, "a")
	mustStart(t, in)
	url := webhookEndpoint(t, clerk.WebhookSecret(), clock, in)

	// One genuine delivery, captured by the attacker for replays.
	genuine := clerk.NewWebhook("session.revoked", clerktest.SessionData("sess_real", "user_1", "revoked"))
	post(t, url, genuine, genuine.Header(clerk.WebhookSecret()), http.StatusNoContent)
	waitFor(t, "the genuine denial to be written", func() bool { return in.sync.Stats().Writes == 1 })
	genuineDoc, err := os.ReadFile(docPath(s, "a"))
	mustDo(t, err)

	stale := clerk.NewWebhook("user.deleted", clerktest.DeletedData("user", "user_stale"))
	staleHeader := stale.Header(clerk.WebhookSecret())
	clock.Advance(webhook.DefaultTolerance + time.Second)

	const n = 50
	for i := range n {
		forged := attacker.NewWebhook("session.revoked", clerktest.SessionData("sess_forged", "user_1", "revoked"))
		unsigned := forged.Header(attacker.WebhookSecret())
		unsigned.Del("svix-signature")
		big := forged
		big.Body = append(bytes.Clone(forged.Body), bytes.Repeat([]byte(" "), webhook.DefaultMaxBodySize)...)
		for _, d := range []struct {
			w      clerktest.Webhook
			h      http.Header
			status int
		}{
			{forged, forged.Header(attacker.WebhookSecret()), http.StatusUnauthorized},
			{forged, unsigned, http.StatusBadRequest},
			{big, big.Header(attacker.WebhookSecret()), http.StatusRequestEntityTooLarge},
			{stale, staleHeader, http.StatusUnauthorized},
		} {
			if d.status == http.StatusRequestEntityTooLarge {
				// Refused from its Content-Length, unread: the server may
				// close the connection while the client still writes.
				if status, err := d.w.Post(url, d.h); err == nil && status != d.status {
					t.Fatalf("oversized delivery answered %d", status)
				}
				continue
			}
			post(t, url, d.w, d.h, d.status)
		}
		if i == 0 {
			clock.Advance(-webhook.DefaultTolerance) // the genuine one is fresh again: a duplicate, acknowledged unapplied
			post(t, url, genuine, genuine.Header(clerk.WebhookSecret()), http.StatusNoContent)
			clock.Advance(webhook.DefaultTolerance)
		}
	}
	tick(t, in, clock)
	if st := in.sync.Stats(); st.Writes != 1 {
		t.Errorf("%d writes, want only the genuine one", st.Writes)
	}
	if got, _ := os.ReadFile(docPath(s, "a")); !bytes.Equal(got, genuineDoc) {
		t.Errorf("the document changed under the flood:\n%s", got)
	}
	files, err := filepath.Glob(filepath.Join(s.Path, filepath.FromSlash(DefaultPrefix), "*"))
	if err != nil || len(files) != 1 {
		t.Errorf("storage holds %v (%v), want only the genuine document", files, err)
	}
	if in.list.Len() != 1 || in.list.Check("sess_forged", "user_stale", noIAT, clock.Now()) != denylist.None {
		t.Errorf("the flood changed the denylist: %d entries", in.list.Len())
	}
}

func post(t *testing.T, url string, w clerktest.Webhook, h http.Header, want int) {
	t.Helper()
	status, err := w.Post(url, h)
	if err != nil {
		t.Fatal(err)
	}
	if status != want {
		t.Fatalf("delivery answered %d, want %d", status, want)
	}
}
