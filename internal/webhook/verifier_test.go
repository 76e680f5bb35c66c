package webhook

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// What each Clerk event asks of clerk_auth.
func TestActions(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		data any
		want []Action
	}{
		{"session.revoked", clerktest.SessionData("sess_1", "user_1", "revoked"), []Action{{DenySession, "sess_1"}}},
		{"session.ended", clerktest.SessionData("sess_1", "user_1", "ended"), []Action{{DenySession, "sess_1"}}},
		{"session.removed", clerktest.SessionData("sess_1", "user_1", "removed"), []Action{{DenySession, "sess_1"}}},
		{"user.deleted", clerktest.DeletedData("user", "user_1"), []Action{{DenyUser, "user_1"}, {ForgetUser, "user_1"}}},
		{"user.updated", clerktest.UserData("user_1", true), []Action{{DenyUser, "user_1"}, {ForgetUser, "user_1"}}},
		{"user.updated", clerktest.UserData("user_1", false), []Action{{ForgetUser, "user_1"}}},
		{"organization.updated", clerktest.OrganizationData("org_1"), []Action{{ForgetOrganization, "org_1"}}},
		{"organization.deleted", clerktest.DeletedData("organization", "org_1"), []Action{{ForgetOrganization, "org_1"}}},
		{"organizationMembership.created", clerktest.MembershipData("user_1", "org_1", "org:member"),
			[]Action{{ForgetUser, "user_1"}, {ForgetOrganization, "org_1"}}},
		{"organizationMembership.updated", clerktest.MembershipData("user_1", "org_1", "org:admin"),
			[]Action{{ForgetUser, "user_1"}, {ForgetOrganization, "org_1"}}},
		{"organizationMembership.deleted", clerktest.MembershipData("user_1", "org_1", "org:member"),
			[]Action{{ForgetUser, "user_1"}, {ForgetOrganization, "org_1"}}},
		{"session.created", clerktest.SessionData("sess_1", "user_1", "active"), nil},
		{"user.created", clerktest.UserData("user_1", false), nil},
		{"email.created", map[string]any{"id": "ema_1"}, nil},
		{"an.event.from.the.future", "any data at all", nil},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			f := newFixture(t, Options{})
			w, h := f.delivery(tc.typ, tc.data)
			ev, err := f.v.Verify(h, w.Body)
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID != w.ID || ev.Type != tc.typ || !ev.Timestamp.Equal(w.Timestamp) {
				t.Errorf("event %+v, delivery id %s at %v", ev, w.ID, w.Timestamp)
			}
			if !slices.Equal(ev.Actions, tc.want) {
				t.Errorf("actions %v, want %v", ev.Actions, tc.want)
			}
		})
	}
}

// Shared tells the events that the other instances must learn through
// the storage, denials and enrichment drops alike, from those that change
// nothing.
func TestEventShared(t *testing.T) {
	for _, tc := range []struct {
		name    string
		actions []Action
		want    bool
	}{
		{"a session denied", []Action{{DenySession, "sess_1"}}, true},
		{"a user denied and forgotten", []Action{{DenyUser, "user_1"}, {ForgetUser, "user_1"}}, true},
		{"a user forgotten", []Action{{ForgetUser, "user_1"}}, true},
		{"an organization forgotten", []Action{{ForgetOrganization, "org_1"}}, true},
		{"an unknown action", []Action{{ActionKind(0), "user_1"}}, false},
		{"nothing to do", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Event{Actions: tc.actions}).Shared(); got != tc.want {
				t.Errorf("Shared() = %v for %v, want %v", got, tc.actions, tc.want)
			}
		})
	}
}

// Every refusal names its kind, which Status answers, and none of them is
// fooled by a delivery that is almost right.
func TestRefusals(t *testing.T) {
	const tolerance = DefaultTolerance
	for _, tc := range []struct {
		name string
		// edit spoils a good delivery of session.revoked, re-signing it
		// with sign when the test wants a valid signature.
		edit func(f *fixture, w *clerktest.Webhook, h http.Header)
		want error // nil: accepted
	}{
		{"good", func(*fixture, *clerktest.Webhook, http.Header) {}, nil},
		{"no svix-id", func(_ *fixture, _ *clerktest.Webhook, h http.Header) { h.Del("svix-id") }, ErrMalformed},
		{"no svix-timestamp", func(_ *fixture, _ *clerktest.Webhook, h http.Header) { h.Del("svix-timestamp") }, ErrMalformed},
		{"no svix-signature", func(_ *fixture, _ *clerktest.Webhook, h http.Header) { h.Del("svix-signature") }, ErrMalformed},
		{"webhook-* headers instead", func(_ *fixture, _ *clerktest.Webhook, h http.Header) {
			for _, n := range []string{"id", "timestamp", "signature"} {
				h.Set("webhook-"+n, h.Get("svix-"+n))
				h.Del("svix-" + n)
			}
		}, ErrMalformed},
		{"id too long", resign(func(w *clerktest.Webhook) { w.ID = "msg_" + strings.Repeat("a", maxIDHeader) }), ErrMalformed},
		{"id with a space", resign(func(w *clerktest.Webhook) { w.ID = "msg_a b" }), ErrMalformed},
		{"timestamp not a number", func(_ *fixture, _ *clerktest.Webhook, h http.Header) { h.Set("svix-timestamp", "soon") }, ErrMalformed},
		{"timestamp with a plus", func(_ *fixture, _ *clerktest.Webhook, h http.Header) {
			h.Set("svix-timestamp", "+"+h.Get("svix-timestamp"))
		}, ErrMalformed},
		{"signature header too long", func(_ *fixture, _ *clerktest.Webhook, h http.Header) {
			h.Set("svix-signature", h.Get("svix-signature")+strings.Repeat(" v1,AAAA", maxSignatureHeader/8))
		}, ErrMalformed},
		{"signed too long ago", resign(func(w *clerktest.Webhook) { w.Timestamp = w.Timestamp.Add(-tolerance - time.Second) }), ErrStale},
		{"signed at the edge of the past", resign(func(w *clerktest.Webhook) { w.Timestamp = w.Timestamp.Add(-tolerance) }), nil},
		{"signed in the future", resign(func(w *clerktest.Webhook) { w.Timestamp = w.Timestamp.Add(tolerance + time.Second) }), ErrStale},
		{"signed at the edge of the future", resign(func(w *clerktest.Webhook) { w.Timestamp = w.Timestamp.Add(tolerance) }), nil},
		{"another secret", func(f *fixture, w *clerktest.Webhook, h http.Header) {
			h.Set("svix-signature", w.Header(otherSecret(f)).Get("svix-signature"))
		}, ErrSignature},
		{"another secret and ours", func(f *fixture, w *clerktest.Webhook, h http.Header) {
			h.Set("svix-signature", w.Header(otherSecret(f), f.clerk.WebhookSecret()).Get("svix-signature"))
		}, nil},
		{"only a v2 signature", func(_ *fixture, _ *clerktest.Webhook, h http.Header) {
			h.Set("svix-signature", strings.Replace(h.Get("svix-signature"), "v1,", "v2,", 1))
		}, ErrSignature},
		{"body changed", func(_ *fixture, w *clerktest.Webhook, _ http.Header) {
			w.Body = bytes.Replace(w.Body, []byte("sess_1"), []byte("sess_2"), 1)
		}, ErrSignature},
		{"id changed", func(_ *fixture, _ *clerktest.Webhook, h http.Header) { h.Set("svix-id", "msg_other") }, ErrSignature},
		{"timestamp changed", func(_ *fixture, w *clerktest.Webhook, h http.Header) {
			h.Set("svix-timestamp", strconv.FormatInt(w.Timestamp.Unix()+1, 10))
		}, ErrSignature},
		{"signed body not JSON", resign(func(w *clerktest.Webhook) { w.Body = []byte("not json") }), ErrMalformed},
		{"signed event without type", resign(func(w *clerktest.Webhook) { w.Body = []byte(`{"data":{"id":"sess_1"}}`) }), ErrMalformed},
		{"signed session event without id", resign(func(w *clerktest.Webhook) {
			w.Body = []byte(`{"type":"session.revoked","data":{"object":"session"}}`)
		}), ErrMalformed},
		{"signed session event with null data", resign(func(w *clerktest.Webhook) {
			w.Body = []byte(`{"type":"session.revoked","data":null}`)
		}), ErrMalformed},
		{"signed ban that is not a boolean", resign(func(w *clerktest.Webhook) {
			w.Body = []byte(`{"type":"user.updated","data":{"id":"user_1","banned":"yes"}}`)
		}), ErrMalformed},
		{"signed id over MaxIDLen", resign(func(w *clerktest.Webhook) {
			w.Body = []byte(`{"type":"session.revoked","data":{"id":"sess_` + strings.Repeat("a", MaxIDLen) + `"}}`)
		}), ErrMalformed},
		{"body over the cap", resign(func(w *clerktest.Webhook) {
			w.Body = bytes.Repeat([]byte(" "), DefaultMaxBodySize+1)
		}), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			w, h := f.delivery("session.revoked", revoked("sess_1"))
			tc.edit(f, &w, h)
			ev, err := f.v.Verify(h, w.Body)
			if tc.want == nil {
				if err != nil || len(ev.Actions) != 1 {
					t.Fatalf("refused: %v (actions %v)", err, ev.Actions)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if len(ev.Actions) != 0 || ev.ID != "" {
				t.Errorf("a refused delivery returned %+v", ev)
			}
			if Status(err) != Status(tc.want) || Status(err) < 400 || Status(err) == 500 {
				t.Errorf("status %d for %v", Status(err), err)
			}
			for _, secret := range []string{f.clerk.WebhookSecret(), h.Get("svix-signature")} {
				if secret != "" && strings.Contains(err.Error(), strings.TrimPrefix(secret, "whsec_")) {
					t.Errorf("the error %q holds a secret or signature", err)
				}
			}
		})
	}
}

// resign edits the delivery and signs it again with the right secret.
func resign(edit func(w *clerktest.Webhook)) func(f *fixture, w *clerktest.Webhook, h http.Header) {
	return func(f *fixture, w *clerktest.Webhook, h http.Header) {
		edit(w)
		for k, v := range w.Header(f.clerk.WebhookSecret()) {
			h[k] = v
		}
	}
}

// otherSecret is the secret of another fake Clerk.
func otherSecret(f *fixture) string {
	other, err := clerktest.New()
	if err != nil {
		panic(err)
	}
	defer other.Close()
	if other.WebhookSecret() == f.clerk.WebhookSecret() {
		panic("two instances share a webhook secret")
	}
	return other.WebhookSecret()
}

// Read refuses a body over the cap from its Content-Length, unread, and
// one that streams past the cap after reading one byte too many.
func TestRead(t *testing.T) {
	const limit = 1024
	for _, tc := range []struct {
		name     string
		body     []byte
		length   int64 // Content-Length; -1 for a streamed body
		want     error
		readUpTo int // the most the Verifier may have read
	}{
		{"good", nil, 0, nil, limit + 1},
		{"declared over the cap", bytes.Repeat([]byte("x"), 4*limit), 4 * limit, ErrTooLarge, 0},
		{"streamed over the cap", bytes.Repeat([]byte("x"), 4*limit), -1, ErrTooLarge, limit + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{MaxBodySize: limit})
			w, h := f.delivery("session.revoked", revoked("sess_1"))
			if tc.body != nil {
				w.Body = tc.body
				h = w.Header(f.clerk.WebhookSecret())
			}
			counted := &countingReader{r: bytes.NewReader(w.Body)}
			r := httptest.NewRequest(http.MethodPost, "/clerk/webhook", counted)
			r.Header = h
			r.ContentLength = int64(len(w.Body))
			if tc.length != 0 {
				r.ContentLength = tc.length
			}
			_, err := f.v.Read(r)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if counted.n > tc.readUpTo {
				t.Errorf("read %d bytes, want at most %d", counted.n, tc.readUpTo)
			}
		})
	}
}

type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// A delivery that acts is applied once. Sent again while its timestamp is
// in the window, it is a duplicate, returned with its event so that the
// caller can acknowledge it without applying it; past the window it is
// stale. Forget makes the id new again, as after a write that failed; and
// Svix's retry, signed anew once the id expired, is new too.
func TestDuplicate(t *testing.T) {
	f := newFixture(t, Options{})
	w, h := f.delivery("session.revoked", revoked("sess_1"))
	original := func() http.Header { return h }
	// resent is Svix's next attempt of w: same id and body, signed now.
	resent := func() http.Header {
		r := w
		r.Timestamp = f.clock.Now().Truncate(time.Second)
		return r.Header(f.clerk.WebhookSecret())
	}
	for _, step := range []struct {
		name    string
		advance time.Duration
		forget  bool
		header  func() http.Header
		want    error // nil: accepted as new
	}{
		{"first delivery", 0, false, original, nil},
		{"sent again at once", 0, false, original, ErrDuplicate},
		{"a minute later", time.Minute, false, original, ErrDuplicate},
		{"resent, signed anew", 0, false, resent, ErrDuplicate},
		{"after Forget", 0, true, original, nil},
		{"after Forget, resent", 0, false, resent, ErrDuplicate},
		{"at the edge of the window", DefaultTolerance - time.Minute, false, original, ErrDuplicate},
		{"past the window", time.Second, false, original, ErrStale},
	} {
		t.Run(step.name, func(t *testing.T) {
			f.clock.Advance(step.advance)
			if step.forget {
				f.v.Forget(w.ID)
			}
			ev, err := f.v.Verify(step.header(), w.Body)
			switch {
			case step.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case step.want != nil && !errors.Is(err, step.want):
				t.Fatalf("got %v, want %v", err, step.want)
			case errors.Is(err, ErrDuplicate) && Status(err) != http.StatusOK:
				t.Errorf("a duplicate is answered %d, want 200", Status(err))
			}
			// The event comes back unless the delivery was refused.
			if applicable := err == nil || errors.Is(err, ErrDuplicate); applicable != (ev.ID == w.ID && len(ev.Actions) == 1) {
				t.Errorf("error %v with event %+v", err, ev)
			}
		})
	}
	if n := f.v.replay.len(); n != 1 {
		t.Fatalf("%d ids remembered, want 1", n)
	}
	t.Run("resent once the id expired", func(t *testing.T) {
		if _, err := f.v.Verify(resent(), w.Body); err != nil {
			t.Fatalf("a retry after the window: %v", err)
		}
		if n := f.v.replay.len(); n != 1 {
			t.Errorf("%d ids remembered after the old one expired, want 1", n)
		}
	})
}

// Events that change nothing are not remembered: they cannot fill the
// set, and repeating them is harmless.
func TestIgnoredEventsNotRemembered(t *testing.T) {
	f := newFixture(t, Options{MaxRemembered: 1})
	w, h := f.delivery("session.created", clerktest.SessionData("sess_1", "user_1", "active"))
	for range 3 {
		if _, err := f.v.Verify(h, w.Body); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.v.replay.len(); n != 0 {
		t.Errorf("%d ids remembered, want 0", n)
	}
}

// A full set refuses new ids (Svix retries later) rather than forget one
// that could then be replayed, and makes room as ids expire.
func TestRememberedCap(t *testing.T) {
	f := newFixture(t, Options{MaxRemembered: 2})
	for i := range 2 {
		w, h := f.delivery("session.revoked", revoked("sess_"+strconv.Itoa(i)))
		if _, err := f.v.Verify(h, w.Body); err != nil {
			t.Fatal(err)
		}
	}
	w, h := f.delivery("session.revoked", revoked("sess_x"))
	_, err := f.v.Verify(h, w.Body)
	if !errors.Is(err, ErrBusy) || Status(err) != http.StatusServiceUnavailable {
		t.Fatalf("a third id: got %v (status %d), want ErrBusy, 503", err, Status(err))
	}
	f.clock.Advance(DefaultTolerance + time.Second)
	w, h = f.delivery("session.revoked", revoked("sess_x"))
	if _, err := f.v.Verify(h, w.Body); err != nil {
		t.Fatalf("once the first ids expired: %v", err)
	}
}

// Of one delivery sent many times at once, exactly one is accepted and
// the others are duplicates; once its id is forgotten (its denials could
// not be stored), exactly one of the next batch is accepted again.
func TestConcurrentDuplicates(t *testing.T) {
	f := newFixture(t, Options{})
	w, h := f.delivery("user.deleted", clerktest.DeletedData("user", "user_1"))
	const n = 16
	for _, round := range []string{"first batch", "after Forget"} {
		t.Run(round, func(t *testing.T) {
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { _, errs[i] = f.v.Verify(h, w.Body) })
			}
			wg.Wait()
			accepted := 0
			for _, err := range errs {
				switch {
				case err == nil:
					accepted++
				case !errors.Is(err, ErrDuplicate):
					t.Errorf("unexpected %v", err)
				}
			}
			if accepted != 1 {
				t.Errorf("%d of %d accepted, want 1", accepted, n)
			}
			f.v.Forget(w.ID)
		})
	}
}

func TestNewSecret(t *testing.T) {
	for _, tc := range []struct {
		name, secret string
		ok           bool
	}{
		{"Svix secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true},
		{"no prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false},
		{"a Clerk secret key", "sk_test_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false},
		{"prefix alone", "whsec_", false},
		{"not base64", "whsec_MfKQ9r8GKY!!TwjUPD8ILPZIo2LaLaSw", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.secret, Options{})
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok %v", err, tc.ok)
			}
			if err != nil && len(tc.secret) > 6 && strings.Contains(err.Error(), tc.secret[6:]) {
				t.Errorf("the error %q holds the secret", err)
			}
		})
	}
	if _, err := New("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Options{Tolerance: -time.Second}); err == nil {
		t.Error("a negative tolerance was accepted")
	}
}

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 200},
		{ErrMalformed, 400},
		{ErrSignature, 401},
		{ErrStale, 401},
		{ErrDuplicate, 200},
		{ErrTooLarge, 413},
		{ErrBusy, 503},
		{errors.New("other"), 500},
	} {
		if got := Status(tc.err); got != tc.want {
			t.Errorf("Status(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
