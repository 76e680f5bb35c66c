package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Event is a verified delivery.
type Event struct {
	// ID is the delivery's svix-id, the same on every retry of one message.
	ID string
	// Type is Clerk's event type, e.g. "session.revoked".
	Type string
	// Timestamp is the delivery's svix-timestamp: when this attempt was
	// signed, which a retry changes.
	Timestamp time.Time
	// Occurred is when the event happened, in Clerk's clock: the payload's
	// timestamp, the same on every retry, at most Timestamp (see
	// occurredAt).
	Occurred time.Time
	// Actions are what the event asks of clerk_auth; none for an event it
	// does not act on.
	Actions []Action
}

// Shared reports whether the event acts beyond the instance that receives
// it: it denies a session or a user, or drops a user's or organization's
// enrichment data, and the other instances learn of it through the
// storage. Such a delivery is acknowledged only once that is stored.
func (e Event) Shared() bool {
	for _, a := range e.Actions {
		switch a.Kind {
		case DenySession, DenyUser, ForgetUser, ForgetOrganization:
			return true
		}
	}
	return false
}

// ActionKind is what an Action does.
type ActionKind uint8

// Action kinds.
const (
	// DenySession: refuse the tokens of session ID issued up to the
	// event (Event.Occurred).
	DenySession ActionKind = iota + 1
	// DenyUser: refuse the tokens of user ID issued up to the event.
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
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	Timestamp json.RawMessage `json:"timestamp"` // Unix milliseconds
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

// decodeEvent decodes body into its type, what its event asks for and the
// payload's timestamp (zero if it has none usable). A user.updated for a
// banned user denies the user: Clerk sends no event of its own for a ban.
// An unban is only a cache drop: the denial refuses the tokens issued up
// to the ban, and Clerk mints the unbanned user new ones.
func decodeEvent(body []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Event{}, fmt.Errorf("%w: the body is not a JSON event: %v", ErrMalformed, err)
	}
	if env.Type == "" {
		return Event{}, fmt.Errorf("%w: the event has no type", ErrMalformed)
	}
	occurred, err := payloadTime(env.Timestamp)
	if err != nil {
		return Event{}, err
	}
	typ, actions, err := actionsOf(env)
	if err != nil {
		return Event{}, err
	}
	return Event{Type: typ, Actions: actions, Occurred: occurred}, nil
}

// payloadTime reads the event's timestamp, Unix milliseconds. Absent,
// null, or a number that is not a positive integer is the zero time: the
// caller falls back on the svix-timestamp. Any other JSON value is
// malformed, as a mistyped member of the data is.
func payloadTime(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return time.Time{}, fmt.Errorf("%w: the event's timestamp is not a number", ErrMalformed)
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms), nil
}

// actionsOf lists what the event of env asks for.
func actionsOf(env envelope) (string, []Action, error) {
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
