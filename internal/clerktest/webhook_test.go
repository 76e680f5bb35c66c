package clerktest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	svix "github.com/svix/svix-webhooks/go"
)

// delivery is what a receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is an endpoint that records each delivery and answers status.
func receiver(t *testing.T, status int) (string, <-chan delivery) {
	t.Helper()
	got := make(chan delivery, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), body}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, got
}

// A delivery verifies with the official library's own Verify (timestamp
// check included) against the Issuer's secret, and carries Clerk's event
// envelope.
func TestSendWebhook(t *testing.T) {
	i := Start(t)
	url, got := receiver(t, http.StatusNoContent)
	status, err := i.SendWebhook(url, "session.revoked", SessionData("sess_1", "user_1", "revoked"))
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("SendWebhook: %d, %v", status, err)
	}
	d := <-got
	if !strings.HasPrefix(i.WebhookSecret(), "whsec_") {
		t.Errorf("secret %q… is not whsec_", i.WebhookSecret()[:6])
	}
	wh, err := svix.NewWebhook(i.WebhookSecret())
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(d.body, d.header); err != nil {
		t.Fatalf("the official library refuses the delivery: %v", err)
	}
	if id := d.header.Get("svix-id"); !strings.HasPrefix(id, "msg_") {
		t.Errorf("svix-id %q, want msg_…", id)
	}
	var ev struct {
		Type       string         `json:"type"`
		Object     string         `json:"object"`
		InstanceID string         `json:"instance_id"`
		Timestamp  int64          `json:"timestamp"`
		Data       map[string]any `json:"data"`
	}
	if err := json.Unmarshal(d.body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "session.revoked" || ev.Object != "event" || !strings.HasPrefix(ev.InstanceID, "ins_") ||
		ev.Timestamp == 0 || ev.Data["id"] != "sess_1" || ev.Data["status"] != "revoked" {
		t.Errorf("event envelope %+v", ev)
	}
}

// Header signs with every secret given, one v1 signature each, and each
// verifies alone: a receiver that knows either secret of a rotation
// accepts the delivery.
func TestWebhookHeaderSecrets(t *testing.T) {
	i := Start(t)
	other := newWebhookSecret()
	w := i.NewWebhook("user.deleted", DeletedData("user", "user_1"))
	h := w.Header(i.WebhookSecret(), other)
	sigs := strings.Split(h.Get("svix-signature"), " ")
	if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
		t.Fatalf("svix-signature %q, want two v1 signatures", h.Get("svix-signature"))
	}
	for _, tc := range []struct {
		name, secret string
		ok           bool
	}{
		{"the instance's secret", i.WebhookSecret(), true},
		{"the other secret", other, true},
		{"a third secret", newWebhookSecret(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wh, err := svix.NewWebhook(tc.secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(w.Body, h); (err == nil) != tc.ok {
				t.Errorf("Verify: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// Every delivery is a new message; Post of the same one repeats it, as a
// Svix retry (or a replaying attacker) does.
func TestWebhookIDs(t *testing.T) {
	i := Start(t)
	a := i.NewWebhook("user.updated", UserData("user_1", true))
	b := i.NewWebhook("user.updated", UserData("user_1", true))
	if a.ID == b.ID {
		t.Error("two deliveries share an id")
	}
	url, got := receiver(t, http.StatusOK)
	for range 2 {
		if _, err := a.Post(url, a.Header(i.WebhookSecret())); err != nil {
			t.Fatal(err)
		}
		if d := <-got; d.header.Get("svix-id") != a.ID {
			t.Errorf("posted svix-id %q, want %q", d.header.Get("svix-id"), a.ID)
		}
	}
}
