package clerktest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// getDoc GETs url with secret and decodes a JSON object answer.
func getDoc(t *testing.T, url, secret string) (*http.Response, map[string]any) {
	t.Helper()
	resp, body := get(t, url, secret)
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET %s: answer %q is not a JSON object", url, body)
	}
	return resp, doc
}

func TestUserEndpoint(t *testing.T) {
	iss := Start(t)
	iss.SetUser(User{
		ID:              "user_alice",
		Emails:          []string{"old@example.com", "alice@example.com"},
		PrimaryEmail:    "alice@example.com",
		FirstName:       "Alice",
		ImageURL:        "https://img.example/alice.png",
		PublicMetadata:  map[string]any{"plan": "pro"},
		PrivateMetadata: map[string]any{"stripe": "cus_secret"},
		UnsafeMetadata:  map[string]any{"theme": "dark"},
	})
	resp, doc := getDoc(t, iss.APIURL()+UsersPath+"user_alice", iss.SecretKey())
	if resp.StatusCode != 200 || doc["object"] != "user" || doc["id"] != "user_alice" {
		t.Fatalf("%d %v", resp.StatusCode, doc)
	}
	want := map[string]any{
		"first_name": "Alice", "last_name": nil, "username": nil,
		"image_url": "https://img.example/alice.png", "has_image": true,
		"public_metadata":  map[string]any{"plan": "pro"},
		"private_metadata": map[string]any{"stripe": "cus_secret"},
		"unsafe_metadata":  map[string]any{"theme": "dark"},
	}
	for field, v := range want {
		if !equalJSON(t, doc[field], v) {
			t.Errorf("%s = %v, want %v", field, doc[field], v)
		}
	}
	emails, _ := doc["email_addresses"].([]any)
	if len(emails) != 2 {
		t.Fatalf("email_addresses %v, want 2", doc["email_addresses"])
	}
	primary := ""
	for _, e := range emails {
		e := e.(map[string]any)
		id, _ := e["id"].(string)
		if !strings.HasPrefix(id, "idn_") || e["object"] != "email_address" {
			t.Errorf("email %v", e)
		}
		if e["email_address"] == "alice@example.com" {
			primary = id
		}
	}
	if doc["primary_email_address_id"] != primary {
		t.Errorf("primary_email_address_id %v, want %s", doc["primary_email_address_id"], primary)
	}

	iss.SetUser(User{ID: "user_alice", Username: "al"})
	_, doc = getDoc(t, iss.APIURL()+UsersPath+"user_alice", iss.SecretKey())
	if doc["username"] != "al" || doc["primary_email_address_id"] != nil || doc["first_name"] != nil ||
		!equalJSON(t, doc["private_metadata"], map[string]any{}) || doc["has_image"] != false {
		t.Errorf("after an update: %v", doc)
	}
	if !iss.DeleteUser("user_alice") || iss.DeleteUser("user_alice") {
		t.Error("DeleteUser did not report the user's existence")
	}

	cases := []struct {
		name, path, secret string
		wantStatus         int
	}{
		{"deleted", "user_alice", iss.SecretKey(), 404},
		{"unknown", "user_bob", iss.SecretKey(), 404},
		{"no secret key", "user_alice", "", 401},
		{"wrong secret key", "user_alice", "sk_test_WRONG", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if resp, _ := get(t, iss.APIURL()+UsersPath+c.path, c.secret); resp.StatusCode != c.wantStatus {
				t.Errorf("%d, want %d", resp.StatusCode, c.wantStatus)
			}
		})
	}
	if s := iss.ResourceStats(); s.UserCalls != 6 || s.OrganizationCalls != 0 {
		t.Errorf("stats %+v, want 6 user calls", s)
	}
}

func TestOrganizationEndpoint(t *testing.T) {
	iss := Start(t)
	iss.SetOrganization(Organization{
		ID: "org_acme", Name: "Acme", Slug: "acme",
		PublicMetadata:  map[string]any{"tier": 2},
		PrivateMetadata: map[string]any{"billing": "secret"},
	})
	resp, doc := getDoc(t, iss.APIURL()+OrganizationsPath+"org_acme", iss.SecretKey())
	want := map[string]any{
		"object": "organization", "id": "org_acme", "name": "Acme", "slug": "acme",
		"image_url": "", "has_image": false,
		"public_metadata":  map[string]any{"tier": 2},
		"private_metadata": map[string]any{"billing": "secret"},
	}
	if resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, doc)
	}
	for field, v := range want {
		if !equalJSON(t, doc[field], v) {
			t.Errorf("%s = %v, want %v", field, doc[field], v)
		}
	}
	if !iss.DeleteOrganization("org_acme") {
		t.Error("DeleteOrganization did not know the organization")
	}
	if resp, _ := get(t, iss.APIURL()+OrganizationsPath+"org_acme", iss.SecretKey()); resp.StatusCode != 404 {
		t.Errorf("deleted: %d, want 404", resp.StatusCode)
	}
	if s := iss.ResourceStats(); s.OrganizationCalls != 2 || s.UserCalls != 0 {
		t.Errorf("stats %+v, want 2 organization calls", s)
	}
}

func TestResourceFaults(t *testing.T) {
	iss := Start(t)
	iss.SetUser(User{ID: "user_alice"})
	iss.SetOrganization(Organization{ID: "org_acme", Name: "Acme"})
	urls := []string{iss.APIURL() + UsersPath + "user_alice", iss.APIURL() + OrganizationsPath + "org_acme"}
	cases := []struct {
		name       string
		fault      ResourceFault
		wantStatus int
		wantRetry  string
	}{
		{"rate limited", ResourceFault{Fault: Fault{Status: 429}, RetryAfter: "7"}, 429, "7"},
		{"server error", ResourceFault{Fault: Fault{Status: 500}}, 500, ""},
		{"slow", ResourceFault{Fault: Fault{Delay: 20 * time.Millisecond}}, 200, ""},
		{"down", ResourceFault{Fault: Fault{CloseConn: true}}, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			iss.SetResourceFault(c.fault)
			defer iss.ClearResourceFault()
			for _, url := range urls {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+iss.SecretKey())
				resp, err := client.Do(req)
				if c.wantStatus == 0 {
					if err == nil {
						resp.Body.Close()
						t.Errorf("%s: a dropped connection answered %d", url, resp.StatusCode)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", url, err)
				}
				resp.Body.Close()
				if resp.StatusCode != c.wantStatus || resp.Header.Get("Retry-After") != c.wantRetry {
					t.Errorf("%s: %d Retry-After %q, want %d and %q", url, resp.StatusCode, resp.Header.Get("Retry-After"), c.wantStatus, c.wantRetry)
				}
			}
		})
	}
	if resp, err := http.Post(urls[0], "application/json", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v, want 405", err)
	} else {
		resp.Body.Close()
	}
}
