package clerkauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// The enrichment tests serve users and organizations from the fake
// Backend API and check what reaches the upstream, in headers and in the
// identity assertion, through a real Caddy.

// Values that Clerk holds but must never leave Caddy: private and unsafe
// metadata.
const (
	privateUserNote = "private-user-sentinel-7f3a"
	unsafeUserNote  = "unsafe-user-sentinel-91c2"
	privateOrgNote  = "private-org-sentinel-4d8e"
)

// debugLog makes Caddy log everything, in JSON, to a file of the test; the
// returned function reads what was logged so far.
func debugLog(t *testing.T) (options string, read func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "caddy.log")
	return fmt.Sprintf("\tlog {\n\t\toutput file %s\n\t\tformat json\n\t\tlevel DEBUG\n\t}\n", path),
		func() string {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
}

// enrichHeaders forward every enrichment field, plus one placeholder that
// names private metadata and must stay empty.
var enrichHeaders = []string{
	"forward_header X-User-Id {http.auth.user.id}",
	"forward_header X-Email {http.auth.user.email}",
	`forward_header X-Name "{http.auth.user.first_name} {http.auth.user.last_name}"`,
	"forward_header X-Username {http.auth.user.username}",
	"forward_header X-Image {http.auth.user.image_url}",
	"forward_header X-Plan {http.auth.user.public_metadata.plan}",
	"forward_header X-Seats {http.auth.user.public_metadata.limits.seats}",
	"forward_header X-Org-Id {http.auth.org.id}",
	"forward_header X-Org-Name {http.auth.org.name}",
	"forward_header X-Org-Slug {http.auth.org.slug}",
	"forward_header X-Org-Tier {http.auth.org.public_metadata.tier}",
	"forward_header X-Private {http.auth.user.private_metadata.note}",
	"forward_header X-Private-Claim {http.auth.user.claims.private_metadata.note}",
}

// setAlice makes user id a member of org id, with every field and private
// metadata, and returns a session token for her in that organization.
func setAlice(iss *clerktest.Issuer, userID, orgID string) string {
	iss.SetUser(clerktest.User{
		ID: userID, Emails: []string{"old@example.com", "alice@example.com"}, PrimaryEmail: "alice@example.com",
		FirstName: "Alice", LastName: "Liddell", Username: "alice", ImageURL: "https://img.clerk.com/alice",
		PublicMetadata:  map[string]any{"plan": "pro", "limits": map[string]any{"seats": 3}},
		PrivateMetadata: map[string]any{"note": privateUserNote},
		UnsafeMetadata:  map[string]any{"note": unsafeUserNote},
	})
	iss.SetOrganization(clerktest.Organization{
		ID: orgID, Name: "Acme, Inc.", Slug: "acme", ImageURL: "https://img.clerk.com/acme",
		PublicMetadata:  map[string]any{"tier": "gold"},
		PrivateMetadata: map[string]any{"note": privateOrgNote},
	})
	return iss.Mint(clerktest.V1Org(orgID, "acme", "org:admin"), clerktest.WithClaims(map[string]any{"sub": userID}))
}

// aliceHeaders are what the upstream gets for setAlice's user.
func aliceHeaders(userID, orgID string) map[string]string {
	return map[string]string{
		"X-User-Id": userID, "X-Email": "alice@example.com", "X-Name": "Alice Liddell", "X-Username": "alice",
		"X-Image": "https://img.clerk.com/alice", "X-Plan": "pro", "X-Seats": "3",
		"X-Org-Id": orgID, "X-Org-Name": "Acme, Inc.", "X-Org-Slug": "acme", "X-Org-Tier": "gold",
	}
}

// checkHeaders compares the upstream's headers named in enrichHeaders
// with want; those not in want must be absent.
func checkHeaders(t *testing.T, got http.Header, want map[string]string) {
	t.Helper()
	for _, line := range enrichHeaders {
		name := strings.Fields(line)[1]
		vals := got.Values(name)
		if w, ok := want[name]; ok && (len(vals) != 1 || vals[0] != w) || !ok && len(vals) != 0 {
			t.Errorf("upstream %s = %q, want %q", name, vals, want[name])
		}
	}
}

// checkNoPrivate fails if what holds Clerk's private or unsafe metadata.
func checkNoPrivate(t *testing.T, where, what string) {
	t.Helper()
	for _, s := range []string{privateUserNote, unsafeUserNote, privateOrgNote} {
		if strings.Contains(what, s) {
			t.Errorf("%s holds private metadata %q", where, s)
		}
	}
}

// TestEnrichment: with enrich user and org, the Backend API's public data
// fills the placeholders and the identity assertion; private and unsafe
// metadata appear nowhere (upstream headers, assertion, logs); a route
// without enrich fetches nothing; and a cached token keeps its assertion
// while the data is unchanged.
func TestEnrichment(t *testing.T) {
	iss := clerktest.Start(t)
	clock := useFakeClock(t, iss)
	up := startUpstream(t)
	logOptions, readLog := debugLog(t)
	assertion := assertionBlock("https://a.internal")
	tester := startAssertionCaddy(t, t.TempDir(), logOptions,
		machineRoute("/e", iss, up, append([]string{"enrich user org", assertion}, enrichHeaders...)...),
		machineRoute("/none", iss, up, append([]string{assertion}, enrichHeaders...)...),
	)
	jwks, _ := identityJWKS(t, tester)
	token := setAlice(iss, "user_alice", "org_acme")

	t.Run("headers and assertion", func(t *testing.T) {
		up.reset()
		resp, body := do(t, tester, http.MethodGet, "/e/x", bearer(token))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %q", resp.StatusCode, body)
		}
		h := up.last()
		checkHeaders(t, h, aliceHeaders("user_alice", "org_acme"))
		claims, err := verifyAssertion(h.Get(assertionHeader), jwks, "https://a.internal", clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell", "username": "alice",
			"image_url":       "https://img.clerk.com/alice",
			"public_metadata": map[string]any{"plan": "pro", "limits": map[string]any{"seats": json.Number("3")}},
			"org_id":          "org_acme", "org_name": "Acme, Inc.", "org_slug": "acme",
			"org_public_metadata": map[string]any{"tier": "gold"},
		}
		for k, v := range want {
			if !reflect.DeepEqual(claims[k], v) {
				t.Errorf("assertion %s = %#v, want %#v", k, claims[k], v)
			}
		}
		for name, vals := range h {
			checkNoPrivate(t, "upstream header "+name, strings.Join(vals, "\n"))
		}
		payload, _ := json.Marshal(claims)
		checkNoPrivate(t, "the assertion", string(payload))
	})

	t.Run("cached token keeps its assertion", func(t *testing.T) {
		first := assertionAt(t, tester, up, "/e/x", token)
		if again := assertionAt(t, tester, up, "/e/x", token); again != first {
			t.Error("unchanged Backend API data re-minted the assertion of a cached token")
		}
	})

	t.Run("nothing fetched without enrich", func(t *testing.T) {
		before := iss.ResourceStats()
		up.reset()
		other := setAlice(iss, "user_unasked", "org_unasked")
		resp, body := do(t, tester, http.MethodGet, "/none/x", bearer(other))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %q", resp.StatusCode, body)
		}
		checkHeaders(t, up.last(), map[string]string{"X-User-Id": "user_unasked", "X-Name": ""})
		claims, err := assertionPayload(up.last().Get(assertionHeader))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"email", "first_name", "public_metadata", "org_name", "org_public_metadata"} {
			if v, ok := claims[k]; ok {
				t.Errorf("assertion %s = %v without enrich", k, v)
			}
		}
		if after := iss.ResourceStats(); after != before {
			t.Errorf("Backend API calls %+v → %+v without enrich", before, after)
		}
	})

	t.Run("logs", func(t *testing.T) {
		log := readLog()
		if !strings.Contains(log, "alice@example.com") {
			t.Fatal("the debug log did not record the proxied request: it proves nothing")
		}
		checkNoPrivate(t, "the log", log)
	})
}

// TestEnrichOneCall: 1,000 concurrent requests for a user and an
// organization that are not cached yet make one Backend API call each, and
// the admin /metrics count them and the look-ups.
func TestEnrichOneCall(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startAssertionCaddy(t, t.TempDir(), "",
		machineRoute("/e", iss, up, append([]string{"enrich user org", assertionBlock("https://a.internal")}, enrichHeaders...)...))
	token := setAlice(iss, "user_crowd", "org_crowd")

	const (
		calls     = `caddy_clerk_auth_backend_api_calls_total{endpoint="GET /v1/users/{user_id}",result="ok"}`
		orgCalls  = `caddy_clerk_auth_backend_api_calls_total{endpoint="GET /v1/organizations/{organization_id}",result="ok"}`
		lookup    = `caddy_clerk_auth_enrich_cache_total{resource="user",result="`
		orgLookup = `caddy_clerk_auth_enrich_cache_total{resource="organization",result="`
		n         = 1000
	)
	before := adminMetrics(t)
	statsBefore := iss.ResourceStats()

	// The harness's client gives up after a few seconds; a thousand
	// requests at once on a small machine, under -race, may need longer.
	client := &http.Client{Transport: tester.Client.Transport, Timeout: 2 * time.Minute}
	var wg sync.WaitGroup
	failures := make(chan string, n)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodGet, caddyURL("/e/x"), nil)
			req.Header = bearer(token)
			resp, err := client.Do(req)
			if err != nil {
				failures <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failures <- resp.Status
			}
		}()
	}
	close(start)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Fatalf("a concurrent request failed: %s", f)
	}

	stats := iss.ResourceStats()
	if got := stats.UserCalls - statsBefore.UserCalls; got != 1 {
		t.Errorf("%d user calls for %d concurrent requests, want 1", got, n)
	}
	if got := stats.OrganizationCalls - statsBefore.OrganizationCalls; got != 1 {
		t.Errorf("%d organization calls for %d concurrent requests, want 1", got, n)
	}
	received := up.take()
	if len(received) != n {
		t.Fatalf("the upstream got %d requests, want %d", len(received), n)
	}
	for _, r := range received {
		checkHeaders(t, r.header, aliceHeaders("user_crowd", "org_crowd"))
		if t.Failed() {
			break
		}
	}

	after := adminMetrics(t)
	delta := func(series string) float64 { return after[series] - before[series] }
	if d := delta(calls); d != 1 {
		t.Errorf("%s moved by %v, want 1", calls, d)
	}
	if d := delta(orgCalls); d != 1 {
		t.Errorf("%s moved by %v, want 1", orgCalls, d)
	}
	for _, prefix := range []string{lookup, orgLookup} {
		hit, miss, stale := delta(prefix+`hit"}`), delta(prefix+`miss"}`), delta(prefix+`stale"}`)
		if hit+miss+stale != n || miss < 1 || stale != 0 {
			t.Errorf("%s…: hit %v miss %v stale %v, want %d look-ups, at least one miss and none stale", prefix, hit, miss, stale, n)
		}
	}
}

// TestEnrichmentSame: an assertion is reused only for the same cache
// entries (clerkapi hands out a new value whenever it fetches again, which
// TestCachedEntriesKeepTheirIdentity checks); a missing or other user or
// organization is other data.
func TestEnrichmentSame(t *testing.T) {
	user := &clerkapi.User{ID: "user_1", FirstName: "A"}
	org := &clerkapi.Organization{ID: "org_1", Name: "Acme"}
	base := &enrichment{user: user, org: org}
	if !base.same(&enrichment{user: user, org: org}) {
		t.Fatal("the same entries differ")
	}
	if !(*enrichment)(nil).same(nil) || base.same(nil) || (*enrichment)(nil).same(base) {
		t.Error("nil is the same as nil only")
	}
	refetched := *user
	for _, o := range []*enrichment{{user: user}, {org: org}, {user: &refetched, org: org}} {
		if base.same(o) {
			t.Errorf("%+v is the same as %+v", o, base)
		}
	}
}

// TestEnrichOutage: when the Backend API is down, refuses with 429 or
// fails with 500, a request goes on without the enrichment fields (in
// headers and assertion) and the gap is logged; with enrich_required it is
// 503 enrich-unavailable with Retry-After. Both recover with Clerk.
func TestEnrichOutage(t *testing.T) {
	iss := clerktest.Start(t)
	clock := useFakeClock(t, iss)
	up := startUpstream(t)
	logOptions, readLog := debugLog(t)
	assertion := assertionBlock("https://a.internal")
	tester := startAssertionCaddy(t, t.TempDir(), logOptions,
		machineRoute("/e", iss, up, append([]string{"enrich user org", assertion}, enrichHeaders...)...),
		machineRoute("/req", iss, up, append([]string{"enrich user", "enrich_required", assertion}, enrichHeaders...)...),
	)
	jwks, _ := identityJWKS(t, tester)

	cases := []struct {
		name       string
		fault      clerktest.ResourceFault
		retryAfter string
	}{
		{"down", clerktest.ResourceFault{Fault: clerktest.Fault{CloseConn: true}}, retryAfter},
		{"429 with Retry-After", clerktest.ResourceFault{Fault: clerktest.Fault{Status: http.StatusTooManyRequests}, RetryAfter: "7"}, "7"},
		{"500", clerktest.ResourceFault{Fault: clerktest.Fault{Status: http.StatusInternalServerError}}, retryAfter},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			userID, orgID := fmt.Sprintf("user_outage%d", i), fmt.Sprintf("org_outage%d", i)
			token := setAlice(iss, userID, orgID)
			iss.SetResourceFault(tc.fault)

			up.reset()
			resp, body := do(t, tester, http.MethodGet, "/e/x", bearer(token))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("without enrich_required: status %d %q, want 200", resp.StatusCode, body)
			}
			h := up.last()
			checkHeaders(t, h, map[string]string{"X-User-Id": userID, "X-Name": ""})
			claims, err := verifyAssertion(h.Get(assertionHeader), jwks, "https://a.internal", clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"email", "first_name", "public_metadata", "org_name", "org_public_metadata"} {
				if v, ok := claims[k]; ok {
					t.Errorf("assertion %s = %v during the outage", k, v)
				}
			}
			if claims["sub"] != userID || claims["org_id"] != orgID {
				t.Errorf("assertion sub %v org_id %v: the token's identity must stay", claims["sub"], claims["org_id"])
			}
			logged := false
			for _, line := range strings.Split(readLog(), "\n") {
				logged = logged || strings.Contains(line, "Backend API data left out of this request") && strings.Contains(line, userID)
			}
			if !logged {
				t.Error("no log line says the request went on without its Backend API data")
			}

			up.reset()
			resp, body = do(t, tester, http.MethodGet, "/req/x", bearer(token))
			checkRefused(t, up, resp, body, http.StatusServiceUnavailable, ReasonEnrichUnavailable)
			if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}

			iss.ClearResourceFault()
			up.reset()
			if resp, body := do(t, tester, http.MethodGet, "/e/x", bearer(token)); resp.StatusCode != http.StatusOK {
				t.Fatalf("after recovery: status %d %q", resp.StatusCode, body)
			}
			checkHeaders(t, up.last(), aliceHeaders(userID, orgID))
			if resp, body := do(t, tester, http.MethodGet, "/req/x", bearer(token)); resp.StatusCode != http.StatusOK {
				t.Fatalf("enrich_required after recovery: status %d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestEnrichControlCharacters: names and metadata with CR, LF and NUL
// reach the upstream percent-encoded in their one header, never as a
// header of their own, and exactly as Clerk has them in the assertion.
func TestEnrichControlCharacters(t *testing.T) {
	iss := clerktest.Start(t)
	up := startUpstream(t)
	tester := startAssertionCaddy(t, t.TempDir(), "",
		machineRoute("/e", iss, up, append([]string{"enrich user org", assertionBlock("https://a.internal")}, enrichHeaders...)...))
	const (
		first = "Alice\r\nX-Injected: first"
		last  = "Lid\x00dell"
		org   = "Acme\nX-Injected: org"
		plan  = "pro\r\n\r\nGET / HTTP/1.1"
	)
	iss.SetUser(clerktest.User{ID: "user_crlf", FirstName: first, LastName: last, PublicMetadata: map[string]any{"plan": plan}})
	iss.SetOrganization(clerktest.Organization{ID: "org_crlf", Name: org, Slug: "crlf"})
	token := iss.Mint(clerktest.V1Org("org_crlf", "crlf", "org:member"), clerktest.WithClaims(map[string]any{"sub": "user_crlf"}))

	up.reset()
	resp, body := do(t, tester, http.MethodGet, "/e/x", bearer(token))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	h := up.last()
	checkHeaders(t, h, map[string]string{
		"X-User-Id": "user_crlf", "X-Name": "Alice%0D%0AX-Injected: first Lid%00dell", "X-Plan": "pro%0D%0A%0D%0AGET / HTTP/1.1",
		"X-Org-Id": "org_crlf", "X-Org-Name": "Acme%0AX-Injected: org", "X-Org-Slug": "crlf",
	})
	if v := h.Values("X-Injected"); len(v) != 0 {
		t.Errorf("a name injected the header X-Injected: %q", v)
	}
	claims, err := assertionPayload(h.Get(assertionHeader))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"first_name": first, "last_name": last, "org_name": org, "public_metadata": map[string]any{"plan": plan}}
	for k, v := range want {
		if !reflect.DeepEqual(claims[k], v) {
			t.Errorf("assertion %s = %q, want %q", k, claims[k], v)
		}
	}
}
