package webhook

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a fake Clerk that signs deliveries and a Verifier of its
// secret, on one fake clock.
type fixture struct {
	clerk *clerktest.Issuer
	clock *fakeclock.Clock
	v     *Verifier
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	clock := fakeclock.New(testNow)
	clerk := clerktest.Start(t)
	clerk.SetNow(clock.Now)
	opts.Now = clock.Now
	v, err := New(clerk.WebhookSecret(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{clerk: clerk, clock: clock, v: v}
}

// delivery is a signed delivery of an event, as Clerk sends it.
func (f *fixture) delivery(eventType string, data any) (clerktest.Webhook, http.Header) {
	w := f.clerk.NewWebhook(eventType, data)
	return w, w.Header(f.clerk.WebhookSecret())
}

func revoked(sessionID string) any {
	return clerktest.SessionData(sessionID, "user_1", "revoked")
}
