package clerktest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// Webhook is one delivery of a Clerk event, as Svix makes it: an id that
// every retry repeats, the time it was signed, and the event JSON.
type Webhook struct {
	// ID is the svix-id header, "msg_…".
	ID string
	// Timestamp is the svix-timestamp header, in whole seconds.
	Timestamp time.Time
	// Body is the event: {"data", "event_attributes", "instance_id",
	// "object": "event", "timestamp", "type"}.
	Body []byte
}

// newWebhookSecret is a signing secret as Svix makes them: "whsec_" and the
// base64 of 24 random bytes.
func newWebhookSecret() string {
	key := make([]byte, 24)
	_, _ = rand.Read(key) // never fails
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// WebhookSecret is the signing secret of the instance's webhook endpoint,
// "whsec_…", as the Clerk Dashboard shows it.
func (i *Issuer) WebhookSecret() string { return i.webhookSecret }

// NewWebhook makes a delivery of an event of eventType whose data is data
// (marshaled as the event's "data"), with a fresh msg_ id, at the Issuer's
// clock. It panics if data cannot be marshaled: it comes from the test.
func (i *Issuer) NewWebhook(eventType string, data any) Webhook {
	i.mu.RLock()
	instance, now := i.signer.KID, i.now()
	i.mu.RUnlock()
	body := mustJSON("webhook event", map[string]any{
		"data": data,
		"event_attributes": map[string]any{
			"http_request": map[string]any{"client_ip": "127.0.0.1", "user_agent": "clerktest"},
		},
		"instance_id": strings.Replace(instance, "ins_test_", "ins_", 1),
		"object":      "event",
		"timestamp":   now.UnixMilli(),
		"type":        eventType,
	})
	return Webhook{ID: "msg_" + rand.Text(), Timestamp: now.Truncate(time.Second), Body: body}
}

// Header is what Svix sends with w: svix-id, svix-timestamp, and
// svix-signature with one "v1,…" per secret, space-separated, as during a
// rotation of the signing secret. It panics on a secret that is not
// base64 after "whsec_": the test passed it.
func (w Webhook) Header(secrets ...string) http.Header {
	sigs := make([]string, len(secrets))
	for n, secret := range secrets {
		wh, err := svix.NewWebhook(secret)
		if err != nil {
			panic("clerktest: Webhook.Header: a secret is not whsec_ and base64")
		}
		sigs[n], err = wh.Sign(w.ID, w.Timestamp, w.Body)
		if err != nil {
			panic("clerktest: Webhook.Header: signing: " + err.Error())
		}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Svix-Webhooks/1.44.0 (clerktest)")
	h.Set("svix-id", w.ID)
	h.Set("svix-timestamp", strconv.FormatInt(w.Timestamp.Unix(), 10))
	h.Set("svix-signature", strings.Join(sigs, " "))
	return h
}

// webhookClient posts deliveries; without keep-alives, so that no idle
// connection outlives a test that checks for leaked goroutines.
var webhookClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// Post sends w to url with the headers h (Header's, or forged ones) and
// returns the status answered. The answer's body is read and discarded.
func (w Webhook) Post(url string, h http.Header) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(w.Body))
	if err != nil {
		return 0, fmt.Errorf("clerktest: webhook request: %w", err)
	}
	req.Header = h.Clone()
	resp, err := webhookClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("clerktest: posting webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// SendWebhook delivers an event of eventType with data to url, signed
// with WebhookSecret, as Clerk does when the event happens, and returns
// the status answered. The data builders below make the shapes clerk_auth
// acts on.
func (i *Issuer) SendWebhook(url, eventType string, data any) (int, error) {
	w := i.NewWebhook(eventType, data)
	return w.Post(url, w.Header(i.webhookSecret))
}

// SessionData is the data of a session.* event (SessionWebhookEventJSON):
// the session, with status "revoked", "ended" or "removed", and no user.
func SessionData(sessionID, userID, status string) map[string]any {
	ms := time.Now().UnixMilli()
	return map[string]any{
		"object": "session", "id": sessionID, "client_id": "client_" + rand.Text(),
		"user_id": userID, "status": status, "actor": nil,
		"last_active_at": ms, "expire_at": ms + 7*24*3600_000, "abandon_at": ms + 30*24*3600_000,
		"created_at": ms, "updated_at": ms, "user": nil,
	}
}

// UserData is the data of a user.updated event (UserJSON, the fields
// clerk_auth reads and a few more), banned or not.
func UserData(userID string, banned bool) map[string]any {
	ms := time.Now().UnixMilli()
	return map[string]any{
		"object": "user", "id": userID, "banned": banned, "locked": false,
		"first_name": nil, "last_name": nil, "username": nil, "image_url": "", "has_image": false,
		"email_addresses": []any{}, "phone_numbers": []any{}, "web3_wallets": []any{},
		"organization_memberships": nil, "external_accounts": []any{},
		"public_metadata": map[string]any{}, "private_metadata": map[string]any{}, "unsafe_metadata": map[string]any{},
		"created_at": ms, "updated_at": ms,
	}
}

// DeletedData is the data of a user.deleted or organization.deleted
// event (DeletedObjectJSON): object "user" or "organization".
func DeletedData(object, id string) map[string]any {
	return map[string]any{"object": object, "id": id, "deleted": true}
}

// OrganizationData is the data of an organization.updated event
// (OrganizationJSON).
func OrganizationData(orgID string) map[string]any {
	ms := time.Now().UnixMilli()
	return map[string]any{
		"object": "organization", "id": orgID, "name": "Org", "slug": "org", "has_image": false,
		"public_metadata": map[string]any{}, "created_at": ms, "updated_at": ms,
	}
}

// MembershipData is the data of an organizationMembership.* event
// (OrganizationMembershipJSON): user userID's membership of orgID.
func MembershipData(userID, orgID, role string) map[string]any {
	ms := time.Now().UnixMilli()
	return map[string]any{
		"object": "organization_membership", "id": "orgmem_" + rand.Text(), "role": role,
		"permissions": []any{}, "public_metadata": map[string]any{},
		"organization": OrganizationData(orgID),
		"public_user_data": map[string]any{
			"identifier": userID + "@example.com", "first_name": nil, "last_name": nil,
			"image_url": "", "has_image": false, "user_id": userID,
		},
		"created_at": ms, "updated_at": ms,
	}
}
