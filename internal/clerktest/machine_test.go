package clerktest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// verify posts {field: token} to path with secret and decodes the answer.
func verify(t *testing.T, iss *Issuer, path, field, token, secret string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{field: token})
	req, err := http.NewRequest(http.MethodPost, iss.APIURL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	d := json.NewDecoder(resp.Body)
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		t.Fatalf("answer is not a JSON object: %v", err)
	}
	return resp.StatusCode, doc
}

// opaqueShape is what the fake issues: a prefix and 43 base64url characters.
var opaqueShape = regexp.MustCompile(`^(ak|mt|oat)_[A-Za-z0-9_-]{43}$`)

func TestMachineTokenVerifyEndpoints(t *testing.T) {
	iss := Start(t)
	exp := time.Now().Add(time.Hour)
	kinds := []struct {
		name, path, field, object string
		issue                     func(time.Time) string
		want                      map[string]any // fields beyond the common ones
	}{
		{"api key", APIKeyVerifyPath, "secret", "api_key",
			func(e time.Time) string {
				return iss.IssueAPIKey("org_1", []string{"read"}, "ci", map[string]any{"a": "b"}, e)
			},
			map[string]any{"name": "ci", "type": "api_key", "subject": "org_1", "claims": map[string]any{"a": "b"}}},
		{"m2m token", M2MTokenVerifyPath, "token", "machine_to_machine_token",
			func(e time.Time) string { return iss.IssueM2MToken("mch_a", []string{"mch_b"}, nil, e) },
			map[string]any{"subject": "mch_a", "claims": nil}},
		{"oauth token", OAuthTokenVerifyPath, "access_token", "clerk_idp_oauth_access_token",
			func(e time.Time) string { return iss.IssueOAuthToken("user_1", "client_x", nil, e) },
			map[string]any{"subject": "user_1", "client_id": "client_x", "type": "oauth:access_token", "scopes": []any{}}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			token := k.issue(exp)
			if !opaqueShape.MatchString(token) {
				t.Errorf("token %q is not of the opaque shape", token)
			}
			status, doc := verify(t, iss, k.path, k.field, token, iss.SecretKey())
			if status != 200 || doc["object"] != k.object || doc["revoked"] != false || doc["expired"] != false ||
				doc["expiration"] != json.Number(strconv.FormatInt(exp.UnixMilli(), 10)) {
				t.Errorf("valid: %d %v", status, doc)
			}
			for field, want := range k.want {
				if !equalJSON(t, doc[field], want) {
					t.Errorf("%s = %v, want %v", field, doc[field], want)
				}
			}
			cases := []struct {
				name, token, secret string
				wantStatus          int
			}{
				{"no secret key", token, "", 401},
				{"wrong secret key", token, "sk_test_WRONG", 401},
				{"unknown", strings.Replace(token, "_", "_X", 1), iss.SecretKey(), 404},
				{"expired", k.issue(time.Now().Add(-time.Second)), iss.SecretKey(), 404},
			}
			for _, c := range cases {
				if status, _ := verify(t, iss, k.path, k.field, c.token, c.secret); status != c.wantStatus {
					t.Errorf("%s: %d, want %d", c.name, status, c.wantStatus)
				}
			}
			for _, other := range kinds {
				if other.path != k.path {
					if status, _ := verify(t, iss, other.path, other.field, token, iss.SecretKey()); status != 404 {
						t.Errorf("at %s: %d, want 404", other.path, status)
					}
				}
			}
			if !iss.Revoke(token) {
				t.Fatal("Revoke did not know the token")
			}
			if status, _ := verify(t, iss, k.path, k.field, token, iss.SecretKey()); status != 404 {
				t.Errorf("revoked: %d, want 404", status)
			}
			iss.SetMachineFault(MachineFault{FlagsOnly: true})
			status, doc = verify(t, iss, k.path, k.field, token, iss.SecretKey())
			iss.ClearMachineFault()
			if status != 200 || doc["revoked"] != true || doc["revocation_reason"] == nil {
				t.Errorf("revoked with FlagsOnly: %d %v", status, doc)
			}
		})
	}
	if s := iss.MachineStats(); s.APIKeyCalls != 9 || s.M2MTokenCalls != 9 || s.OAuthTokenCalls != 9 {
		t.Errorf("stats %+v, want 9 calls each", s)
	}
	if iss.Revoke("ak_never") {
		t.Error("Revoke knew a token never issued")
	}
}

func TestMachineFaults(t *testing.T) {
	iss := Start(t)
	token := iss.IssueAPIKey("user_1", nil, "k", nil, time.Time{})
	iss.SetMachineFault(MachineFault{Fault: Fault{Status: 429}, RetryAfter: "7"})
	body, _ := json.Marshal(map[string]string{"secret": token})
	req, _ := http.NewRequest(http.MethodPost, iss.APIURL()+APIKeyVerifyPath, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("%d Retry-After %q, want 429 and 7", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	iss.SetMachineFault(MachineFault{Fault: Fault{CloseConn: true}})
	req, _ = http.NewRequest(http.MethodPost, iss.APIURL()+M2MTokenVerifyPath, bytes.NewReader(body))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("a dropped connection answered %d", resp.StatusCode)
	}
	iss.ClearMachineFault()
	if resp, err := http.Get(iss.APIURL() + APIKeyVerifyPath); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v, want 405", err)
	} else {
		resp.Body.Close()
	}
}

func TestMintOAuth(t *testing.T) {
	iss := Start(t)
	tok := parse(t, iss.Mint(OAuth()))
	if tok.header["typ"] != "at+jwt" || tok.header["cat"] != nil {
		t.Errorf("header %v, want typ at+jwt and no cat", tok.header)
	}
	jti, _ := tok.claims["jti"].(string)
	if !strings.HasPrefix(jti, "oat_") || tok.claims["client_id"] != DefaultOAuthClientID ||
		tok.claims["scope"] != DefaultOAuthScope || tok.claims["sub"] != DefaultSubject ||
		tok.claims["sid"] != nil || tok.claims["azp"] != nil {
		t.Errorf("claims %v", tok.claims)
	}
	m2m := parse(t, iss.Mint(M2M()))
	if m2m.header["cat"] != CatM2M || m2m.header["typ"] != "JWT" {
		t.Errorf("M2M header %v, want cat %s and typ JWT", m2m.header, CatM2M)
	}
}
