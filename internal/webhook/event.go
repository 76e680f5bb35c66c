package webhook

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event is a verified delivery.
type Event struct {
	// ID is the delivery's svix-id, the same on every retry of one message.
	ID string
	// Type is Clerk's event type, e.g. "session.revoked".
	Type string
	// Timestamp is the delivery's svix-timestamp.
	Timestamp time.Time
	// Actions are what the event asks of clerk_auth; none for an event it
	// does not act on.
	Actions []Action
}

// Denies reports whether the event denies a session or a user: whether
// applying it needs the storage.
func (e Event) Denies() bool {
	for _, a := range e.Actions {
		if a.Kind == DenySession || a.Kind == DenyUser {
			return true
		}
	}
	return false
}

// ActionKind is what an Action does.
type ActionKind uint8

// Action kinds.
const (
	// DenySession: refuse every token of session ID.
	DenySession ActionKind = iota + 1
	// DenyUser: refuse every token of user ID.
	DenyUser
	// ForgetUser: drop the enrichment cache entries of user ID.
	ForgetUser
	// ForgetOrganization: drop the enrichment cache entries of
	// organization ID.
	ForgetOrganization
)

// String names the kind for logs.
func (k ActionKind) String() string {
	switch k {
	case DenySession:
		return "deny_session"
	case DenyUser:
		return "deny_user"
	case ForgetUser:
		return "forget_user"
	case ForgetOrganization:
		return "forget_organization"
	}
	return "unknown"
}

// Action is one thing an event asks for, on one Clerk id.
type Action struct {
	Kind ActionKind
	ID   string
}

// MaxIDLen is the longest Clerk id an event may carry. Clerk's ids
// (sess_…, user_…, org_…) are about 32 bytes; the denylist refuses longer
// ones too.
const MaxIDLen = 128

// envelope is Clerk's event, as @clerk/backend's WebhookEvent types it:
// {type, object: "event", data, timestamp, instance_id, event_attributes}.
type envelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// eventData holds the fields of the data objects acted on: SessionJSON,
// UserJSON, UserDeletedJSON, DeletedObjectJSON, OrganizationJSON and
// OrganizationMembershipJSON.
type eventData struct {
	ID             string `json:"id"`
	Banned         bool   `json:"banned"` // UserJSON
	PublicUserData struct {
		UserID string `json:"user_id"`
	} `json:"public_user_data"` // OrganizationMembershipJSON
	Organization struct {
		ID string `json:"id"`
	} `json:"organization"` // OrganizationMembershipJSON
}

// actionsOf decodes body and lists what its event asks for. A user.updated
// for a banned user denies the user: Clerk sends no event of its own for a
// ban. An unban is only a cache drop: a denial cannot be lifted, it
// expires (see the denylist package).
func actionsOf(body []byte) (string, []Action, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return "", nil, fmt.Errorf("%w: the body is not a JSON event: %v", ErrMalformed, err)
	}
	if env.Type == "" {
		return "", nil, fmt.Errorf("%w: the event has no type", ErrMalformed)
	}
	var kinds func(d *eventData) []Action
	switch env.Type {
	case "session.revoked", "session.ended", "session.removed":
		kinds = func(d *eventData) []Action { return []Action{{DenySession, d.ID}} }
	case "user.deleted":
		kinds = func(d *eventData) []Action { return []Action{{DenyUser, d.ID}, {ForgetUser, d.ID}} }
	case "user.updated":
		kinds = func(d *eventData) []Action {
			if d.Banned {
				return []Action{{DenyUser, d.ID}, {ForgetUser, d.ID}}
			}
			return []Action{{ForgetUser, d.ID}}
		}
	case "organization.updated", "organization.deleted":
		kinds = func(d *eventData) []Action { return []Action{{ForgetOrganization, d.ID}} }
	case "organizationMembership.created", "organizationMembership.updated", "organizationMembership.deleted":
		kinds = func(d *eventData) []Action {
			return []Action{{ForgetUser, d.PublicUserData.UserID}, {ForgetOrganization, d.Organization.ID}}
		}
	default:
		return env.Type, nil, nil
	}
	var d eventData
	if len(env.Data) == 0 || env.Data[0] != '{' {
		return "", nil, fmt.Errorf("%w: %s event without a data object", ErrMalformed, env.Type)
	}
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return "", nil, fmt.Errorf("%w: %s event data: %v", ErrMalformed, env.Type, err)
	}
	actions := kinds(&d)
	for _, a := range actions {
		if a.ID == "" || len(a.ID) > MaxIDLen {
			return "", nil, fmt.Errorf("%w: %s event without a usable id for %v", ErrMalformed, env.Type, a.Kind)
		}
	}
	return env.Type, actions, nil
}
