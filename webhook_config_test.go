package clerkauth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// testSigningSecret is a well-formed signing secret that no test delivery
// is signed with.
var testSigningSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("config tests' signing key"))

// TestWebhookCaddyfile: the clerk_webhook block and clerk_auth's
// denylist_sync are read into their fields, and every mistake is named
// with its line.
func TestWebhookCaddyfile(t *testing.T) {
	tests := []struct {
		name, input string
		want        Webhook
		err         []string // every string must be in the error; nil: accepted
	}{
		{
			name:  "every subdirective",
			input: "clerk_webhook {\n\tsigning_secret {env.CLERK_WEBHOOK_SECRET}\n\tdeny_for 2h\n\tdenylist_sync 2s\n}",
			want: Webhook{SigningSecret: "{env.CLERK_WEBHOOK_SECRET}", DenyFor: caddy.Duration(2 * time.Hour),
				DenylistSync: caddy.Duration(2 * time.Second)},
		},
		{
			name:  "bare: Provision asks for the secret",
			input: "clerk_webhook",
		},
		{
			name:  "argument on the directive line",
			input: "clerk_webhook /hook",
			err:   []string{"wrong argument count", "Testfile:1"},
		},
		{
			name:  "unknown subdirective",
			input: "clerk_webhook {\n\tsigning_secret " + testSigningSecret + "\n\tsecret " + testSigningSecret + "\n}",
			err:   []string{`unrecognized clerk_webhook subdirective "secret"`, "Testfile:3"},
		},
		{
			name:  "signing_secret without a value",
			input: "clerk_webhook {\n\tsigning_secret\n}",
			err:   []string{"signing_secret takes exactly one value", "Testfile:2"},
		},
		{
			name:  "two signing secrets",
			input: "clerk_webhook {\n\tsigning_secret " + testSigningSecret + " whsec_c2Vjb25k\n}",
			err:   []string{"signing_secret takes exactly one value", "Testfile:2"},
		},
		{
			name:  "signing_secret twice",
			input: "clerk_webhook {\n\tsigning_secret " + testSigningSecret + "\n\tsigning_secret whsec_c2Vjb25k\n}",
			err:   []string{"signing_secret is given twice", "Testfile:3"},
		},
		{
			name:  "deny_for not a duration",
			input: "clerk_webhook {\n\tdeny_for forever\n}",
			err:   []string{`deny_for "forever": use a positive duration`, "Testfile:2"},
		},
		{
			name:  "denylist_sync negative",
			input: "clerk_webhook {\n\tdenylist_sync -5s\n}",
			err:   []string{`denylist_sync "-5s": use a positive duration`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Webhook
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.err == nil {
				if err != nil {
					t.Fatalf("UnmarshalCaddyfile: %v", err)
				}
				if got.SigningSecret != tc.want.SigningSecret || got.DenyFor != tc.want.DenyFor || got.DenylistSync != tc.want.DenylistSync {
					t.Errorf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("UnmarshalCaddyfile: want an error containing %q, got none", tc.err)
			}
			for _, w := range tc.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			checkNoSecret(t, err.Error(), testSigningSecret, "whsec_c2Vjb25k")
		})
	}
}

// TestDenylistSyncCaddyfile: clerk_auth reads denylist_sync like every
// duration, once.
func TestDenylistSyncCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want        time.Duration
		err         string
	}{
		{"set", "clerk_auth {\n\tdenylist_sync 30s\n}", 30 * time.Second, ""},
		{"not a duration", "clerk_auth {\n\tdenylist_sync often\n}", 0, `denylist_sync "often": use a positive duration`},
		{"twice", "clerk_auth {\n\tdenylist_sync 1s\n\tdenylist_sync 2s\n}", 0, "denylist_sync is given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			case tc.err == "" && time.Duration(h.DenylistSync) != tc.want:
				t.Errorf("denylist_sync = %v, want %v", time.Duration(h.DenylistSync), tc.want)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// TestSecretsNotInCaddyfileErrors: a secret given with a stray value is
// refused without repeating it (Caddy's own wrong-argument error names the
// last value read).
func TestSecretsNotInCaddyfileErrors(t *testing.T) {
	const secretKey = "sk_live_aVeryRealLookingSecretKey0123"
	for _, tc := range []struct {
		name  string
		parse func(*caddyfile.Dispenser) error
		input string
	}{
		{"secret_key", new(Handler).UnmarshalCaddyfile, "clerk_auth {\n\tsecret_key " + secretKey + " extra\n}"},
		{"signing_secret", new(Webhook).UnmarshalCaddyfile, "clerk_webhook {\n\tsigning_secret " + testSigningSecret + " extra\n}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(caddyfile.NewTestDispenser(tc.input))
			if err == nil {
				t.Fatal("a secret with a stray value was accepted")
			}
			if !strings.Contains(err.Error(), tc.name+" takes exactly one value") {
				t.Errorf("error %q does not name %s", err, tc.name)
			}
			checkNoSecret(t, err.Error(), secretKey, testSigningSecret)
		})
	}
}

// TestWebhookProvisionErrors: a clerk_webhook that cannot work is refused
// at provisioning with what to fix, never with the secret itself.
func TestWebhookProvisionErrors(t *testing.T) {
	t.Setenv("CLERK_TEST_EMPTY_SECRET", "")
	secretKey := "sk_test_" + strings.Repeat("k", 40)
	tests := []struct {
		name string
		wh   Webhook
		want string // "" = accepted
	}{
		{"valid", Webhook{SigningSecret: testSigningSecret}, ""},
		{"valid bounds", Webhook{SigningSecret: testSigningSecret, DenyFor: caddy.Duration(time.Minute), DenylistSync: caddy.Duration(5 * time.Minute)}, ""},
		{"no signing_secret", Webhook{}, "clerk_webhook: signing_secret is required"},
		{"empty placeholder", Webhook{SigningSecret: "{env.CLERK_TEST_EMPTY_SECRET}"}, "clerk_webhook: signing_secret"},
		{"a secret key instead", Webhook{SigningSecret: secretKey}, "signing_secret must be the endpoint's whsec_... signing secret"},
		{"whsec_ without base64", Webhook{SigningSecret: "whsec_not*base64!"}, "clerk_webhook: signing_secret: "},
		{"deny_for under a minute", Webhook{SigningSecret: testSigningSecret, DenyFor: caddy.Duration(30 * time.Second)}, "clerk_webhook: deny_for 30s: use 1m to 8784h0m0s"},
		{"deny_for over 366 days", Webhook{SigningSecret: testSigningSecret, DenyFor: caddy.Duration(367 * 24 * time.Hour)}, "deny_for 8808h0m0s: use 1m to"},
		{"denylist_sync under a second", Webhook{SigningSecret: testSigningSecret, DenylistSync: caddy.Duration(100 * time.Millisecond)}, "clerk_webhook: denylist_sync 100ms: use 1s to 5m"},
		{"denylist_sync over five minutes", Webhook{SigningSecret: testSigningSecret, DenylistSync: caddy.Duration(time.Hour)}, "clerk_webhook: denylist_sync 1h0m0s: use 1s to 5m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wh := tc.wh
			err := wh.Provision(storageContext(t))
			t.Cleanup(func() {
				if err := wh.Cleanup(); err != nil {
					t.Errorf("Cleanup: %v", err)
				}
			})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Provision: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Provision error %v, want one containing %q", err, tc.want)
			}
			checkNoSecret(t, err.Error(), testSigningSecret, secretKey, "not*base64!")
		})
	}
}

// checkNoSecret fails if text holds any of secrets.
func checkNoSecret(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%q holds the secret %q", text, s)
		}
	}
}
