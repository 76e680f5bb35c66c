package clerktest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Paths of the Backend API user and organization endpoints, relative to
// Issuer.URL: GET with the id as the last segment, as the pinned SDK's
// UserApi.getUser and OrganizationApi.getOrganization call them. Both
// require SecretKey.
const (
	UsersPath         = "/v1/users/"         // + "user_…"
	OrganizationsPath = "/v1/organizations/" // + "org_…"
)

// User is a user of the fake instance, as a test sets it up. Only these
// fields vary; the rest of the Backend API's user object is served with
// fixed values.
type User struct {
	// ID is the user's id, "user_…"; SetUser requires it.
	ID string
	// Emails are the user's email addresses; each is served with an
	// "idn_…" id of its own.
	Emails []string
	// PrimaryEmail is one of Emails, or "" for none
	// (primary_email_address_id null).
	PrimaryEmail string
	// FirstName, LastName and Username are served as null when empty.
	FirstName, LastName, Username string
	// ImageURL is served as image_url ("" when empty, as Clerk never
	// sends null there).
	ImageURL string
	// PublicMetadata, PrivateMetadata and UnsafeMetadata are served as
	// JSON objects ({} when nil). Private and unsafe metadata exist so that
	// tests can prove a client drops them. The Issuer keeps the maps: do
	// not modify them after SetUser.
	PublicMetadata, PrivateMetadata, UnsafeMetadata map[string]any
}

// Organization is an organization of the fake instance, as a test sets it
// up.
type Organization struct {
	// ID is the organization's id, "org_…"; SetOrganization requires it.
	ID string
	// Name and Slug are served as they are.
	Name, Slug string
	// ImageURL is served as image_url; has_image is true when it is set.
	ImageURL string
	// PublicMetadata and PrivateMetadata are served as JSON objects ({}
	// when nil). The Issuer keeps the maps: do not modify them after
	// SetOrganization.
	PublicMetadata, PrivateMetadata map[string]any
}

// ResourceFault makes the user and organization endpoints misbehave. The
// zero ResourceFault is "no fault".
type ResourceFault struct {
	// Fault applies as on the JWKS endpoints, before the secret key is
	// checked: Status 429 or 500, Delay for a slow API, Hang or CloseConn
	// for one that is down, Body for a malformed answer.
	Fault
	// RetryAfter, if set, is sent as the Retry-After header of every
	// answer while the fault is set, e.g. "7" with Status 429.
	RetryAfter string
}

// ResourceStats counts the requests to each endpoint, whatever their
// outcome.
type ResourceStats struct {
	UserCalls, OrganizationCalls int64
}

type storedUser struct {
	user     User
	emailIDs []string // Emails' ids, in order
	created  time.Time
	updated  time.Time
}

type storedOrganization struct {
	org     Organization
	created time.Time
	updated time.Time
}

type resourceState struct {
	mu    sync.Mutex
	users map[string]*storedUser
	orgs  map[string]*storedOrganization

	fault               atomic.Pointer[ResourceFault]
	userCalls, orgCalls atomic.Int64
}

// SetUser creates the user u.ID, or replaces all its fields, from the next
// request on; its created_at is kept and its updated_at is now. It panics
// if u.ID is empty or u.PrimaryEmail is set but not among u.Emails.
func (i *Issuer) SetUser(u User) {
	if u.ID == "" {
		panic("clerktest: SetUser: the user has no ID")
	}
	if u.PrimaryEmail != "" && !slices.Contains(u.Emails, u.PrimaryEmail) {
		panic(fmt.Sprintf("clerktest: SetUser: primary email %q is not one of %q", u.PrimaryEmail, u.Emails))
	}
	u.Emails = slices.Clone(u.Emails)
	ids := make([]string, len(u.Emails))
	for n := range ids {
		ids[n] = "idn_" + rand.Text()
	}
	now := i.clock()()
	s := &i.resources
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = make(map[string]*storedUser)
	}
	created := now
	if old, ok := s.users[u.ID]; ok {
		created = old.created
	}
	s.users[u.ID] = &storedUser{user: u, emailIDs: ids, created: created, updated: now}
}

// DeleteUser deletes the user id, whose endpoint answers 404 from the next
// request on, and reports whether it existed.
func (i *Issuer) DeleteUser(id string) bool {
	s := &i.resources
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.users[id]
	delete(s.users, id)
	return ok
}

// SetOrganization creates the organization o.ID, or replaces all its
// fields, from the next request on. It panics if o.ID is empty.
func (i *Issuer) SetOrganization(o Organization) {
	if o.ID == "" {
		panic("clerktest: SetOrganization: the organization has no ID")
	}
	now := i.clock()()
	s := &i.resources
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orgs == nil {
		s.orgs = make(map[string]*storedOrganization)
	}
	created := now
	if old, ok := s.orgs[o.ID]; ok {
		created = old.created
	}
	s.orgs[o.ID] = &storedOrganization{org: o, created: created, updated: now}
}

// DeleteOrganization deletes the organization id, whose endpoint answers
// 404 from the next request on, and reports whether it existed.
func (i *Issuer) DeleteOrganization(id string) bool {
	s := &i.resources
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.orgs[id]
	delete(s.orgs, id)
	return ok
}

// SetResourceFault makes the user and organization endpoints misbehave as
// f describes, from the next request on. It panics if f.Status is not a
// valid HTTP status code.
func (i *Issuer) SetResourceFault(f ResourceFault) {
	f.Fault = checkedFault("SetResourceFault", f.Fault)
	i.resources.fault.Store(&f)
}

// ClearResourceFault restores normal answers.
func (i *Issuer) ClearResourceFault() { i.resources.fault.Store(nil) }

// ResourceStats returns the user and organization endpoints' counters so
// far.
func (i *Issuer) ResourceStats() ResourceStats {
	return ResourceStats{
		UserCalls:         i.resources.userCalls.Load(),
		OrganizationCalls: i.resources.orgCalls.Load(),
	}
}

// resourceHandler serves GET {UsersPath or OrganizationsPath}{id}: the
// object doc makes for id, or Clerk's 404.
func (i *Issuer) resourceHandler(calls *atomic.Int64, doc func(id string) ([]byte, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !i.enter() {
			return
		}
		defer i.inflight.Done()

		var fault *Fault
		retryAfter := ""
		if f := i.resources.fault.Load(); f != nil {
			fault, retryAfter = &f.Fault, f.RetryAfter
		}
		if i.refuseBackendCall(w, r, http.MethodGet, fault, retryAfter) {
			return
		}
		body, ok := doc(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, errorBody("resource_not_found", "not found"))
			return
		}
		writeJSON(w, http.StatusOK, body)
	}
}

// userJSON is the user id as Clerk's Backend API answers it (object
// "user", snake_case), with fixed values for what User does not set.
func (i *Issuer) userJSON(id string) ([]byte, bool) {
	s := &i.resources
	s.mu.Lock()
	stored, ok := s.users[id]
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	u := stored.user
	created, updated := stored.created.UnixMilli(), stored.updated.UnixMilli()
	emails := make([]map[string]any, len(u.Emails))
	var primary any
	for n, addr := range u.Emails {
		emails[n] = map[string]any{
			"id":            stored.emailIDs[n],
			"object":        "email_address",
			"email_address": addr,
			"reserved":      false,
			"verification": map[string]any{
				"object": "verification_otp", "status": "verified", "strategy": "email_code",
				"attempts": 1, "expire_at": updated + 600_000,
			},
			"linked_to":              []any{},
			"matches_sso_connection": false,
			"created_at":             created,
			"updated_at":             updated,
		}
		if addr == u.PrimaryEmail && primary == nil {
			primary = stored.emailIDs[n]
		}
	}
	doc := map[string]any{
		"object":                          "user",
		"id":                              u.ID,
		"external_id":                     nil,
		"primary_email_address_id":        primary,
		"primary_phone_number_id":         nil,
		"primary_web3_wallet_id":          nil,
		"username":                        nullIfEmpty(u.Username),
		"first_name":                      nullIfEmpty(u.FirstName),
		"last_name":                       nullIfEmpty(u.LastName),
		"image_url":                       u.ImageURL,
		"has_image":                       u.ImageURL != "",
		"public_metadata":                 objectOrEmpty(u.PublicMetadata),
		"private_metadata":                objectOrEmpty(u.PrivateMetadata),
		"unsafe_metadata":                 objectOrEmpty(u.UnsafeMetadata),
		"email_addresses":                 emails,
		"phone_numbers":                   []any{},
		"web3_wallets":                    []any{},
		"passkeys":                        []any{},
		"external_accounts":               []any{},
		"saml_accounts":                   []any{},
		"enterprise_accounts":             []any{},
		"password_enabled":                true,
		"two_factor_enabled":              false,
		"totp_enabled":                    false,
		"backup_code_enabled":             false,
		"banned":                          false,
		"locked":                          false,
		"lockout_expires_in_seconds":      nil,
		"verification_attempts_remaining": 100,
		"delete_self_enabled":             true,
		"create_organization_enabled":     true,
		"create_organizations_limit":      nil,
		"last_sign_in_at":                 updated,
		"last_active_at":                  updated,
		"legal_accepted_at":               nil,
		"locale":                          nil,
		"created_at":                      created,
		"updated_at":                      updated,
	}
	return mustJSON("user", doc), true
}

// organizationJSON is the organization id as Clerk's Backend API answers
// it (object "organization", snake_case).
func (i *Issuer) organizationJSON(id string) ([]byte, bool) {
	s := &i.resources
	s.mu.Lock()
	stored, ok := s.orgs[id]
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	o := stored.org
	doc := map[string]any{
		"object":                  "organization",
		"id":                      o.ID,
		"name":                    o.Name,
		"slug":                    o.Slug,
		"image_url":               o.ImageURL,
		"has_image":               o.ImageURL != "",
		"public_metadata":         objectOrEmpty(o.PublicMetadata),
		"private_metadata":        objectOrEmpty(o.PrivateMetadata),
		"max_allowed_memberships": 5,
		"admin_delete_enabled":    true,
		"created_by":              nil,
		"created_at":              stored.created.UnixMilli(),
		"updated_at":              stored.updated.UnixMilli(),
	}
	return mustJSON("organization", doc), true
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func objectOrEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func mustJSON(what string, doc any) []byte {
	b, err := json.Marshal(doc)
	if err != nil {
		panic("clerktest: marshaling a " + what + ": " + err.Error()) // metadata came from the test
	}
	return b
}
