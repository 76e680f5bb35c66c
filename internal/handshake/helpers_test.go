package handshake

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

var now = time.Unix(1700000000, 0)

var (
	live = &Instance{FrontendAPI: "clerk.example.com", Live: true, CookieSuffix: "naoXFJnI"}
	dev  = &Instance{FrontendAPI: "happy-hippo-1.clerk.accounts.dev", CookieSuffix: "MWTw9P_R"}
)

// jwt builds an UNSIGNED token: Decide only peeks at it, and fakeVerify
// reads the verdict the test wants from the "verdict" claim.
func jwt(header, payload map[string]any) string {
	enc := func(v map[string]any) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(payload) + ".c2ln"
}

// session is a session token of inst, issued at iat, with the verdict
// fakeVerify will give ("" for valid) and extra claims.
func session(inst *Instance, iat int64, verdict string, extra ...any) string {
	p := map[string]any{"iss": "https://" + inst.FrontendAPI, "sub": "user_1", "iat": iat, "exp": iat + 60, "verdict": verdict}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i].(string)] = extra[i+1]
	}
	return jwt(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "ins_1"}, p)
}

func fakeVerify(t *testing.T) Verify {
	return func(tok string) string {
		p, ok := peek(tok)
		if !ok {
			t.Fatalf("verify called on an undecodable token")
		}
		v, _ := p.payload["verdict"].(string)
		return v
	}
}

// req is a request for rawURL with headers given as name, value pairs.
func req(t *testing.T, method, rawURL string, headers ...string) *Request {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Add(headers[i], headers[i+1])
	}
	return &Request{URL: u, Method: method, Header: h, Now: now}
}

// page is a browser page load of rawURL with cookies.
func page(t *testing.T, rawURL, cookies string) *Request {
	t.Helper()
	return req(t, http.MethodGet, rawURL, "Sec-Fetch-Dest", "document", "Cookie", cookies)
}
