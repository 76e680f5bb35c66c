package clerkauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
)

// The handshake differential test: every request shape of
// handshake_shapes_test.go goes through internal/handshake (with the real
// verifier) and through Clerk's official authenticateRequest (@clerk/backend,
// run by conformance/handshake.mjs under node), configured alike: the same
// publishable keys, PEM key, authorized parties and fixed clock. The two
// must agree on the outcome, the reason, and for handshakes on the Location
// (compared whole, so host, path and every query parameter in order) and the
// loop-guard cookie, except where a documented difference below explains
// it. SECURITY.md lists the same table
// (TestSecurityMDHandshakeDifferencesInSync).

func TestHandshakeConformanceWithClerkSDK(t *testing.T) {
	conformanceReady(t)
	iss := clerktest.Start(t)
	iss.SetNow(func() time.Time { return testNow })
	shapes := buildHandshakeShapes(iss)
	if len(shapes) < 100 {
		t.Fatalf("%d request shapes, want at least 100", len(shapes))
	}
	ours := runOurHandshake(t, iss, shapes)
	clerk := runClerkHandshake(t, iss, shapes)

	counts := map[string]int{}
	var undocumented, explained []string
	for i, s := range shapes {
		o, k := ours[i], clerk[i]
		if o == k {
			counts["agree: "+o.Status]++
			continue
		}
		if d := explainHandshake(&s, o, k); d != nil {
			counts["documented: "+d.name]++
			explained = append(explained, fmt.Sprintf("  %-28s %s", d.name, s.desc))
			continue
		}
		undocumented = append(undocumented, fmt.Sprintf("%s:\n    ours  %+v\n    clerk %+v", s.desc, o, k))
	}
	reportAgreement(t, fmt.Sprintf("handshake agreement over %d request shapes", len(shapes)), counts, explained, undocumented)
	for _, status := range []string{"signed-in", "signed-out", "handshake"} {
		if counts["agree: "+status] < 20 {
			t.Errorf("only %d shapes end %s on both sides: the shapes or the setup are broken", counts["agree: "+status], status)
		}
	}
}

// requestShape is one request, as both sides see it.
type requestShape struct {
	desc     string
	instance string // a key of handshakeInstances
	url      string
	method   string
	headers  [][2]string
}

func (s *requestShape) header(name string) string {
	for _, h := range s.headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// requestVerdict is one side's answer; equal verdicts agree.
type requestVerdict struct {
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	Location  string `json:"location"`
	SetCookie string `json:"setCookie"`
	Exception string `json:"exception"`
}

// handshakeInstance is one Clerk configuration of the shapes.
type handshakeInstance struct {
	publishableKey, proxyURL string
}

var handshakeInstances = map[string]handshakeInstance{
	"live":      {publishableKey: "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"},
	"dev":       {publishableKey: "pk_test_aGFwcHktaGlwcG8tMS5jbGVyay5hY2NvdW50cy5kZXYk"},
	"proxy":     {publishableKey: "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k", proxyURL: "https://app.example.com/__clerk"},
	"rel-proxy": {publishableKey: "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k", proxyURL: "/__clerk"},
}

// runOurHandshake decides every shape with internal/handshake, verifying
// tokens with the verifier the Caddyfile `publishable_key`, `jwt_key` and
// `authorized_parties` would build.
func runOurHandshake(t *testing.T, iss *clerktest.Issuer, shapes []requestShape) []requestVerdict {
	out := make([]requestVerdict, len(shapes))
	for i, s := range shapes {
		cfg := handshakeInstances[s.instance]
		pk, err := parsePublishableKey(cfg.publishableKey)
		if err != nil {
			t.Fatal(err)
		}
		inst := &handshake.Instance{FrontendAPI: pk.frontendAPI, Live: pk.live, CookieSuffix: pk.suffix, ProxyURL: cfg.proxyURL, AuthorizedParties: differentialParties}
		v := newVerifier(staticKey{pub: &iss.PrivateKey().PublicKey}, verifierConfig{
			issuers:           []string{pk.issuer()},
			authorizedParties: differentialParties,
			leeway:            defaultLeeway,
		})
		v.now = func() time.Time { return testNow }
		verify := func(tok string) string {
			_, err := v.verify(context.Background(), tok)
			if err == nil {
				return ""
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				return "not a VerifyError"
			}
			return ve.Reason
		}
		u, err := url.Parse(s.url)
		if err != nil {
			t.Fatalf("%s: %v", s.desc, err)
		}
		h := http.Header{}
		for _, kv := range s.headers {
			h.Add(kv[0], kv[1])
		}
		d := handshake.Decide(inst, &handshake.Request{URL: u, Method: s.method, Header: h, Now: testNow}, verify)
		out[i] = requestVerdict{Status: d.Outcome.String(), Reason: d.Reason, Location: d.Location, SetCookie: d.SetCookie}
	}
	return out
}

// runClerkHandshake runs conformance/handshake.mjs over the shapes.
func runClerkHandshake(t *testing.T, iss *clerktest.Issuer, shapes []requestShape) []requestVerdict {
	type instance struct {
		PublishableKey string `json:"publishableKey"`
		ProxyURL       string `json:"proxyUrl"`
	}
	type shape struct {
		ID       int         `json:"id"`
		Instance string      `json:"instance"`
		URL      string      `json:"url"`
		Method   string      `json:"method"`
		Headers  [][2]string `json:"headers"`
	}
	input := struct {
		Now               int64               `json:"now"`
		PEM               string              `json:"pem"`
		SecretKey         string              `json:"secretKey"`
		AuthorizedParties []string            `json:"authorizedParties"`
		Instances         map[string]instance `json:"instances"`
		Shapes            []shape             `json:"shapes"`
	}{testNow.UnixMilli(), iss.PublicKeyPEM(), "sk_test_conformance", differentialParties, map[string]instance{}, nil}
	for name, inst := range handshakeInstances {
		input.Instances[name] = instance{inst.publishableKey, inst.proxyURL}
	}
	for i, s := range shapes {
		input.Shapes = append(input.Shapes, shape{i, s.instance, s.url, s.method, s.headers})
	}
	return runNodeScript[requestVerdict](t, "handshake.mjs", input, len(shapes))
}

// handshakeDifference is one documented way internal/handshake departs from
// Clerk's authenticateRequest; match says which disagreements it explains,
// from the shape and both verdicts, so that a shape that disagrees for
// another cause is not explained away.
type handshakeDifference struct {
	name  string
	shape string // which requests, in words: the predicate match implements
	ours  string
	clerk string
	why   string
	match func(s *requestShape, ours, clerk requestVerdict) bool
}

// handshakeDifferences is the single source of the handshake table in
// SECURITY.md.
var handshakeDifferences = []handshakeDifference{
	{
		name:  "loop-guard-ceiling",
		shape: "`__clerk_redirect_count` is above 3 on a request that would be a handshake",
		ours:  "signed-out with the handshake's reason, no redirect",
		clerk: "redirects again: the guard trips only when the counter is exactly 3",
		why:   "The counter is a ceiling, not a checkpoint: a crafted or racing value above the limit must not restart the redirect loop.",
		match: func(s *requestShape, ours, clerk requestVerdict) bool {
			n := redirectCountOf(s)
			return n != "3" && jsNumberAtLeast(n, 3) && ours.Status == "signed-out" && clerk.Status == "handshake" && ours.Reason == clerk.Reason
		},
	},
	{
		name:  "primary-sync-foreign-origin",
		shape: "development instance, `__clerk_redirect_url` names an origin that is neither the request's own nor one of `authorized_parties`",
		ours:  "ignores the parameter and decides the request as if it were absent",
		clerk: "redirects there (`primary-responds-to-syncing`) with the dev-browser token appended",
		why:   "An open redirect that hands the dev-browser token (the development session binding) to any site named in a link.",
		match: func(s *requestShape, _, clerk requestVerdict) bool {
			u, err := url.Parse(s.url)
			if err != nil || s.instance != "dev" || clerk.Reason != "primary-responds-to-syncing" {
				return false
			}
			target, err := url.Parse(u.Query().Get("__clerk_redirect_url"))
			return err == nil && target.Host != "" && target.Host != u.Host && !slices.Contains(differentialParties, target.Scheme+"://"+target.Host)
		},
	},
	{
		name:  "bearer-scheme-case",
		shape: "`Authorization` scheme is `Bearer` in another letter case (`bearer`, `BEARER`)",
		ours:  "reads the token from the header (the header path)",
		clerk: "ignores the header and decides by the cookies",
		why:   "RFC 9110 §11.1: the scheme is case-insensitive; the rest of clerk_auth reads it so, and one request must not name a token to the verifier and another to the handshake.",
		match: func(s *requestShape, _, _ requestVerdict) bool {
			scheme, _, _ := strings.Cut(s.header("Authorization"), " ")
			return strings.EqualFold(scheme, "Bearer") && scheme != "Bearer"
		},
	},
	{
		name:  "refresh-not-at-edge",
		shape: "an expired session token on a GET with this instance's `__refresh_<suffix>` cookie",
		ours:  "no refresh: handshake (or signed-out) with `session-token-expired-refresh-missing-api-client`",
		clerk: "with a Backend API client (every framework SDK) calls `POST /v1/sessions/{sid}/refresh` and is signed in on success; the test runs it without one, so the two agree there",
		why:   "A Backend API call per expired token at the edge costs latency and rate limit; the handshake gets the same fresh token from the Frontend API, and the reason is the one Clerk gives when it cannot refresh.",
		match: func(s *requestShape, ours, clerk requestVerdict) bool {
			const expired = "session-token-expired-refresh-"
			return strings.Contains(s.header("Cookie"), "__refresh_") && ours.Reason == expired+"missing-api-client" && strings.HasPrefix(clerk.Reason, expired)
		},
	},
}

func redirectCountOf(s *requestShape) string {
	for _, part := range strings.Split(s.header("Cookie"), ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "__clerk_redirect_count="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func jsNumberAtLeast(s string, limit float64) bool {
	var f float64
	_, err := fmt.Sscan(s, &f)
	return err == nil && f >= limit
}

// explainHandshake returns the first documented difference that accounts
// for the disagreement on s.
func explainHandshake(s *requestShape, ours, clerk requestVerdict) *handshakeDifference {
	for i := range handshakeDifferences {
		if handshakeDifferences[i].match(s, ours, clerk) {
			return &handshakeDifferences[i]
		}
	}
	return nil
}

const (
	handshakeDiffBegin = "<!-- BEGIN handshake differences: generated from handshake_conformance_test.go; refresh with go test -run TestSecurityMDHandshakeDifferencesInSync -update-security-md -->\n"
	handshakeDiffEnd   = "<!-- END handshake differences -->\n"
)

func renderHandshakeDifferences() string {
	var s strings.Builder
	s.WriteString("| Name | Request | caddy-clerk-auth | Clerk `authenticateRequest` | Why |\n| --- | --- | --- | --- | --- |\n")
	for _, d := range handshakeDifferences {
		fmt.Fprintf(&s, "| `%s` | %s | %s | %s | %s |\n", d.name, d.shape, d.ours, d.clerk, d.why)
	}
	return s.String()
}

func TestSecurityMDHandshakeDifferencesInSync(t *testing.T) {
	checkSecurityMDSection(t, handshakeDiffBegin, handshakeDiffEnd, renderHandshakeDifferences(), "TestSecurityMDHandshakeDifferencesInSync")
}

func TestHandshakeDifferencesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range handshakeDifferences {
		checkDifferenceRow(t, seen, d.name, d.match != nil, d.shape, d.ours, d.clerk, d.why)
	}
}
