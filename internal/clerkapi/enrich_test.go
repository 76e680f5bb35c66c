package clerkapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// enrichedResource is one of GetUser and GetOrganization, for tests that
// hold for both: set creates or updates id in the fake with a name that
// tells version apart, get reads that name back.
type enrichedResource struct {
	name     string
	endpoint string
	id       string
	set      func(iss *clerktest.Issuer, id, version string)
	get      func(c *Client, id string) (string, error)
	calls    func(iss *clerktest.Issuer) int64
	stats    func(c *Client) EnrichStats
}

var enrichedResources = []enrichedResource{
	{
		name:     ResourceUser,
		endpoint: EndpointGetUser,
		id:       "user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
		set: func(iss *clerktest.Issuer, id, version string) {
			iss.SetUser(clerktest.User{ID: id, FirstName: version})
		},
		get: func(c *Client, id string) (string, error) {
			u, err := c.GetUser(context.Background(), id)
			if err != nil {
				return "", err
			}
			return u.FirstName, nil
		},
		calls: func(iss *clerktest.Issuer) int64 { return iss.ResourceStats().UserCalls },
		stats: (*Client).UserStats,
	},
	{
		name:     ResourceOrganization,
		endpoint: EndpointGetOrganization,
		id:       "org_2Z9x8Y7wV6u5T4s3R2q1P0oNmLk",
		set: func(iss *clerktest.Issuer, id, version string) {
			iss.SetOrganization(clerktest.Organization{ID: id, Name: version})
		},
		get: func(c *Client, id string) (string, error) {
			o, err := c.GetOrganization(context.Background(), id)
			if err != nil {
				return "", err
			}
			return o.Name, nil
		},
		calls: func(iss *clerktest.Issuer) int64 { return iss.ResourceStats().OrganizationCalls },
		stats: (*Client).OrganizationStats,
	},
}

func TestGetUserMapsClerksFields(t *testing.T) {
	iss := clerktest.Start(t)
	c, _ := newClient(t, iss.APIURL(), iss.SecretKey())
	tests := []struct {
		name string
		set  clerktest.User
		want User
	}{
		{
			name: "every field",
			set: clerktest.User{
				ID: "user_full", Emails: []string{"old@example.com", "alice@example.com"}, PrimaryEmail: "alice@example.com",
				FirstName: "Alice", LastName: "Liddell", Username: "alice", ImageURL: "https://img.clerk.com/alice",
				PublicMetadata: map[string]any{"plan": "pro", "seats": 3, "tags": []any{"a"}},
			},
			want: User{
				ID: "user_full", Email: "alice@example.com", FirstName: "Alice", LastName: "Liddell", Username: "alice",
				ImageURL: "https://img.clerk.com/alice", PublicMetadata: json.RawMessage(`{"plan":"pro","seats":3,"tags":["a"]}`),
			},
		},
		{
			name: "emails but no primary",
			set:  clerktest.User{ID: "user_noprimary", Emails: []string{"x@example.com"}},
			want: User{ID: "user_noprimary", PublicMetadata: json.RawMessage(`{}`)},
		},
		{
			name: "nulls",
			set:  clerktest.User{ID: "user_bare"},
			want: User{ID: "user_bare", PublicMetadata: json.RawMessage(`{}`)},
		},
		{
			name: "non-ASCII names",
			set:  clerktest.User{ID: "user_zoe", FirstName: "Zoë", LastName: "Þór", Emails: []string{"z@example.com"}, PrimaryEmail: "z@example.com"},
			want: User{ID: "user_zoe", Email: "z@example.com", FirstName: "Zoë", LastName: "Þór", PublicMetadata: json.RawMessage(`{}`)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss.SetUser(tc.set)
			got, err := c.GetUser(context.Background(), tc.set.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %+v (metadata %s)\nwant %+v (metadata %s)", got, got.PublicMetadata, tc.want, tc.want.PublicMetadata)
			}
		})
	}
}

// TestLargeUserFits looks up a user whose public metadata alone is far
// above MaxBodyBytes, the cap of the other endpoints: enrichment has its
// own, MaxResourceBodyBytes.
func TestLargeUserFits(t *testing.T) {
	iss := clerktest.Start(t)
	c, _ := newClient(t, iss.APIURL(), iss.SecretKey())
	blob := strings.Repeat("x", 4*MaxBodyBytes)
	iss.SetUser(clerktest.User{ID: "user_large", PublicMetadata: map[string]any{"blob": blob}})
	u, err := c.GetUser(context.Background(), "user_large")
	if err != nil || len(u.PublicMetadata) < len(blob) {
		t.Errorf("%d bytes of metadata, %v; want all %d", len(u.PublicMetadata), err, len(blob))
	}
}

func TestGetOrganizationMapsClerksFields(t *testing.T) {
	iss := clerktest.Start(t)
	c, _ := newClient(t, iss.APIURL(), iss.SecretKey())
	tests := []struct {
		name string
		set  clerktest.Organization
		want Organization
	}{
		{
			name: "every field",
			set: clerktest.Organization{ID: "org_acme", Name: "Acme, Inc.", Slug: "acme", ImageURL: "https://img.clerk.com/acme",
				PublicMetadata: map[string]any{"tier": "gold"}},
			want: Organization{ID: "org_acme", Name: "Acme, Inc.", Slug: "acme", ImageURL: "https://img.clerk.com/acme",
				PublicMetadata: json.RawMessage(`{"tier":"gold"}`)},
		},
		{
			name: "no image or slug",
			set:  clerktest.Organization{ID: "org_bare", Name: "Bare"},
			want: Organization{ID: "org_bare", Name: "Bare", PublicMetadata: json.RawMessage(`{}`)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss.SetOrganization(tc.set)
			got, err := c.GetOrganization(context.Background(), tc.set.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %+v (metadata %s)\nwant %+v (metadata %s)", got, got.PublicMetadata, tc.want, tc.want.PublicMetadata)
			}
		})
	}
}

// TestPrivateMetadataNeverSurfaces sets private and unsafe metadata in the
// fake, which serves them as Clerk does, and looks for them in what the
// Client returns and in every entry its caches keep.
func TestPrivateMetadataNeverSurfaces(t *testing.T) {
	const private, unsafe = "PRIVATE-cus_4242", "UNSAFE-theme-x"
	iss := clerktest.Start(t)
	iss.SetUser(clerktest.User{ID: "user_alice", FirstName: "Alice",
		PublicMetadata:  map[string]any{"plan": "pro"},
		PrivateMetadata: map[string]any{"stripe": private, "nested": map[string]any{"k": private}},
		UnsafeMetadata:  map[string]any{"theme": unsafe}})
	iss.SetOrganization(clerktest.Organization{ID: "org_acme", Name: "Acme",
		PrivateMetadata: map[string]any{"billing": private}})
	c, _ := newClient(t, iss.APIURL(), iss.SecretKey())

	u, err := c.GetUser(context.Background(), "user_alice")
	if err != nil || u.FirstName != "Alice" {
		t.Fatalf("GetUser: %+v, %v", u, err)
	}
	o, err := c.GetOrganization(context.Background(), "org_acme")
	if err != nil || o.Name != "Acme" {
		t.Fatalf("GetOrganization: %+v, %v", o, err)
	}
	shown := []string{fmt.Sprintf("%#v %s", u, u.PublicMetadata), fmt.Sprintf("%#v %s", o, o.PublicMetadata)}
	for _, cache := range []interface{ dump() []string }{c.users.cache, c.orgs.cache} {
		shown = append(shown, cache.dump()...)
	}
	for _, s := range shown {
		if leaks(s, private, unsafe, "private_metadata", "unsafe_metadata") {
			t.Errorf("private or unsafe metadata surfaced: %s", s)
		}
	}
	if len(shown) != 4 {
		t.Errorf("%d values and entries looked at, want 4", len(shown))
	}
}

// dump shows every entry of c, for tests.
func (c *enrichCache[T]) dump() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for el := c.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*enrichEntry[T])
		out = append(out, fmt.Sprintf("%#v", e.val))
		if v := reflect.Indirect(reflect.ValueOf(e.val)).FieldByName("PublicMetadata"); v.IsValid() {
			out[len(out)-1] += " " + string(v.Bytes())
		}
	}
	return out
}

func TestInvalidIDsAreRefusedWithoutACall(t *testing.T) {
	iss := clerktest.Start(t)
	c, _ := newClient(t, iss.APIURL(), iss.SecretKey())
	// Each is put after the resource's own prefix.
	bodies := []string{
		"", "../../v1/jwks", "a/b", "a%2Fb", "a?b=c", "a#b", "a.b", "a_b", "a-b", " a", "a ",
		"Zoë", "a\x00", "a\r\nX-Evil: 1", strings.Repeat("a", MaxResourceIDLen),
	}
	others := []string{"", "abc", "USER_abc", "ORG_abc", "user-abc", "sess_abc", "ak_abcdefghijklmnopqrstuvwxyz"}
	for _, r := range enrichedResources {
		prefix, other := r.id[:strings.Index(r.id, "_")+1], "org_"
		if r.name == ResourceOrganization {
			other = "user_"
		}
		ids := append([]string{other + "abc"}, others...)
		for _, b := range bodies {
			ids = append(ids, prefix+b)
		}
		for _, id := range ids {
			t.Run(r.name+"/"+id, func(t *testing.T) {
				_, err := r.get(c, id)
				checkError(t, err, ErrNotFound, 0, 0, nil)
			})
		}
		if got := r.calls(iss); got != 0 {
			t.Errorf("%s: %d calls reached Clerk, want 0", r.name, got)
		}
		if s := r.stats(c); s.Refused != int64(len(ids)) || s.CacheMisses != 0 {
			t.Errorf("%s: stats %+v, want %d refused and no look-up", r.name, s, len(ids))
		}
	}
	if s := c.Stats(); s.Refused != int64(2*(1+len(others)+len(bodies))) || s.Calls != 0 {
		t.Errorf("stats %+v", s)
	}
	if c.Invalidate("user_a/b") || c.Invalidate("") {
		t.Error("Invalidate took an id that cannot be valid")
	}
}

func TestValidIDs(t *testing.T) {
	tests := []struct {
		id        string
		user, org bool
	}{
		{"user_2NNEqL2nrIRdJ194ndJqAHwEfxC", true, false},
		{"user_alice", true, false},
		{"user_" + strings.Repeat("a", MaxResourceIDLen-len("user_")), true, false},
		{"user_" + strings.Repeat("a", MaxResourceIDLen-len("user_")+1), false, false},
		{"org_2Z9x8Y7wV6u5T4s3R2q1P0oNmLk", false, true},
		{"org_1", false, true},
		{"org_", false, false},
		{"orgs_1", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			if ValidUserID(tc.id) != tc.user || ValidOrganizationID(tc.id) != tc.org {
				t.Errorf("ValidUserID %v, ValidOrganizationID %v; want %v, %v",
					ValidUserID(tc.id), ValidOrganizationID(tc.id), tc.user, tc.org)
			}
		})
	}
}

// TestEnrichmentErrors checks each failure's error, for both resources,
// and which of them are kept: only "not found", for NegativeTTL.
func TestEnrichmentErrors(t *testing.T) {
	tests := []struct {
		name       string
		unknown    bool // look up an id the fake does not have
		secret     string
		fault      *clerktest.ResourceFault
		wantKind   error
		wantStatus int
		wantRetry  time.Duration
		wantCause  error
		kept       bool // a second look-up within NegativeTTL makes no call
	}{
		{name: "unknown id", unknown: true, wantKind: ErrNotFound, wantStatus: 404, kept: true},
		{name: "secret key refused", secret: "sk_test_WRONG", wantKind: ErrUnauthorized, wantStatus: 401},
		{name: "Clerk's 429", fault: &clerktest.ResourceFault{Fault: clerktest.Fault{Status: 429}, RetryAfter: "7"},
			wantKind: ErrUnavailable, wantStatus: 429, wantRetry: 7 * time.Second},
		{name: "500", fault: &clerktest.ResourceFault{Fault: clerktest.Fault{Status: 500}},
			wantKind: ErrUnavailable, wantStatus: 500, wantRetry: time.Second},
		{name: "slow", fault: &clerktest.ResourceFault{Fault: clerktest.Fault{Delay: time.Minute}},
			wantKind: ErrUnavailable, wantRetry: time.Second, wantCause: context.DeadlineExceeded},
		{name: "down", fault: &clerktest.ResourceFault{Fault: clerktest.Fault{CloseConn: true}},
			wantKind: ErrUnavailable, wantRetry: time.Second},
		{name: "another object", fault: &clerktest.ResourceFault{Fault: clerktest.Fault{Body: []byte(`{"object":"user","id":"user_other"}`)}},
			wantKind: ErrUnavailable, wantStatus: 200, wantRetry: time.Second},
		{name: "oversized", fault: &clerktest.ResourceFault{Fault: clerktest.Fault{Oversize: true}},
			wantKind: ErrUnavailable, wantStatus: 200, wantRetry: time.Second},
		{name: "public metadata not an object", fault: &clerktest.ResourceFault{Fault: clerktest.Fault{Body: []byte(`{"object":"user","id":"user_x","public_metadata":[1]}`)}},
			wantKind: ErrUnavailable, wantStatus: 200, wantRetry: time.Second},
	}
	for _, r := range enrichedResources {
		for _, tc := range tests {
			t.Run(r.name+"/"+tc.name, func(t *testing.T) {
				iss := clerktest.Start(t)
				secret := iss.SecretKey()
				if tc.secret != "" {
					secret = tc.secret
				}
				obs := &observed{}
				c, clock := newClient(t, iss.APIURL(), secret, func(cfg *Config) {
					var f *clerktest.Fault
					if tc.fault != nil {
						f = &tc.fault.Fault
					}
					cfg.Timeout = faultTimeout(f)
					cfg.Observer = obs.observer()
				})
				id := r.id
				if tc.unknown {
					id = strings.Replace(r.id, "_", "_Unknown", 1)
				}
				r.set(iss, r.id, "v1")
				if tc.fault != nil {
					iss.SetResourceFault(*tc.fault)
				}
				_, err := r.get(c, id)
				checkError(t, err, tc.wantKind, tc.wantStatus, tc.wantRetry, tc.wantCause, secret)
				_, err = r.get(c, id)
				checkError(t, err, tc.wantKind, tc.wantStatus, tc.wantRetry, tc.wantCause, secret)
				wantCalls := int64(2)
				if tc.kept {
					wantCalls = 1
				}
				if got := r.calls(iss); got != wantCalls {
					t.Errorf("%d calls for two look-ups, want %d", got, wantCalls)
				}
				result := map[error]string{ErrNotFound: ResultInvalid, ErrUnauthorized: ResultUnauthorized, ErrUnavailable: ResultUnavailable}[tc.wantKind]
				if got := obs.counts()["call "+r.endpoint+" "+result]; got != int(wantCalls) {
					t.Errorf("observer told %v, want %d calls of result %s", obs.counts(), wantCalls, result)
				}
				if !tc.kept {
					return
				}
				clock.Advance(DefaultEnrichNegativeTTL)
				if _, err := r.get(c, id); !isKind(err, ErrNotFound) || r.calls(iss) != 2 {
					t.Errorf("after NegativeTTL: %v, %d calls; want not found from a new call", err, r.calls(iss))
				}
			})
		}
	}
}

func TestEnrichCacheConfigRefusesNonsense(t *testing.T) {
	tests := []struct {
		name string
		cfg  EnrichCacheConfig
	}{
		{"negative TTL", EnrichCacheConfig{TTL: -1}},
		{"negative MaxStale", EnrichCacheConfig{MaxStale: -1}},
		{"negative NegativeTTL", EnrichCacheConfig{NegativeTTL: -1}},
		{"negative Entries", EnrichCacheConfig{Entries: -1}},
		{"MaxStale below TTL", EnrichCacheConfig{TTL: time.Minute, MaxStale: time.Second}},
		{"MaxStale below the default TTL", EnrichCacheConfig{MaxStale: time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(Config{SecretKey: "sk_test_x", Enrich: tc.cfg}); err == nil {
				t.Error("New accepted it")
			}
		})
	}
	got, err := EnrichCacheConfig{TTL: time.Minute}.withDefaults()
	want := EnrichCacheConfig{TTL: time.Minute, MaxStale: 10 * time.Minute, NegativeTTL: DefaultEnrichNegativeTTL, Entries: DefaultEnrichEntries}
	if err != nil || got != want {
		t.Errorf("defaults %+v, %v; want %+v", got, err, want)
	}
}

// TestEnrichmentRequest checks what GetUser sends: the SDK's path under
// /v1, its headers, and no body.
func TestEnrichmentRequest(t *testing.T) {
	iss := clerktest.Start(t)
	f := newFront(t, iss, false)
	c, _ := newClient(t, f.URL, iss.SecretKey())
	for _, r := range enrichedResources {
		r.set(iss, r.id, "v1")
		if _, err := r.get(c, r.id); err != nil {
			t.Fatal(err)
		}
		req := <-f.seen
		wantPath := strings.SplitN(r.endpoint, " ", 2)[1]
		wantPath = wantPath[:strings.Index(wantPath, "{")] + r.id
		if req.Method != http.MethodGet || req.URL.Path != wantPath || req.URL.RawQuery != "" ||
			req.Header.Get("Authorization") != "Bearer "+iss.SecretKey() || req.Header.Get("Clerk-API-Version") != APIVersion ||
			req.ContentLength > 0 {
			t.Errorf("%s: sent %s %s?%s with %v", r.name, req.Method, req.URL.Path, req.URL.RawQuery, req.Header)
		}
	}
}
