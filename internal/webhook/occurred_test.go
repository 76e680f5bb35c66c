package webhook

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// withPayloadTimestamp is w with the event's "timestamp" member set to raw,
// or removed if raw is empty, as Clerk would have signed it.
func withPayloadTimestamp(t *testing.T, w clerktest.Webhook, raw string) clerktest.Webhook {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal(w.Body, &members); err != nil {
		t.Fatal(err)
	}
	if raw == "" {
		delete(members, "timestamp")
	} else {
		members["timestamp"] = json.RawMessage(raw)
	}
	body, err := json.Marshal(members)
	if err != nil {
		t.Fatal(err)
	}
	w.Body = body
	return w
}

// An event is dated by its payload's timestamp, to the millisecond, at
// most the svix-timestamp; without a usable one, by the svix-timestamp.
// A timestamp that is no number at all is malformed.
func TestOccurred(t *testing.T) {
	signed := testNow // the fixture's clock, a whole second
	ms := func(d time.Duration) string { return strconv.FormatInt(signed.Add(d).UnixMilli(), 10) }
	for _, tc := range []struct {
		name    string
		payload string // the timestamp member, "" for none
		want    time.Time
		err     error
	}{
		{"as Clerk sends it", ms(-90*time.Second + 123*time.Millisecond), signed.Add(-90*time.Second + 123*time.Millisecond), nil},
		{"at the signature", ms(0), signed, nil},
		{"after the signature: clamped", ms(time.Hour), signed, nil},
		{"a millisecond after the signature", ms(time.Millisecond), signed, nil},
		{"absent", "", signed, nil},
		{"null", "null", signed, nil},
		{"zero", "0", signed, nil},
		{"negative", "-1772366400000", signed, nil},
		{"fractional", "1772366300000.5", signed, nil},
		{"exponent", "1.7723663e12", signed, nil},
		{"beyond int64", "99999999999999999999", signed, nil},
		{"a string", `"1772366300000"`, time.Time{}, ErrMalformed},
		{"an object", `{"ms":1772366300000}`, time.Time{}, ErrMalformed},
		{"a boolean", "true", time.Time{}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			w := withPayloadTimestamp(t, f.clerk.NewWebhook("user.updated", clerktest.UserData("user_1", true)), tc.payload)
			ev, err := f.v.Verify(w.Header(f.clerk.WebhookSecret()), w.Body)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("Verify: %v, want %v", err, tc.err)
			}
			if !ev.Occurred.Equal(tc.want) {
				t.Errorf("Occurred %v, want %v", ev.Occurred, tc.want)
			}
		})
	}
}

// A retry of an event, signed anew hours later once the first delivery is
// forgotten, is dated as the first: a late retry cannot move a denial
// past an unban.
func TestOccurredOnRetry(t *testing.T) {
	f := newFixture(t, Options{})
	first := f.clerk.NewWebhook("user.updated", clerktest.UserData("user_1", true))
	ev, err := f.v.Verify(first.Header(f.clerk.WebhookSecret()), first.Body)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * time.Hour) // Svix's fifth attempt
	retry := first
	retry.Timestamp = f.clock.Now()
	again, err := f.v.Verify(retry.Header(f.clerk.WebhookSecret()), retry.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Occurred.Equal(ev.Occurred) || again.Timestamp.Equal(ev.Timestamp) {
		t.Errorf("retry dated %v (signed %v), want %v like the first (signed %v)", again.Occurred, again.Timestamp, ev.Occurred, ev.Timestamp)
	}
}
