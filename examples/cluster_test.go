package examples

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// clusterCaddyfile is one of several Caddy processes behind one name: they
// share the storage folder, so they sign with the same keys, and state the
// same issuer. /peek/ answers the assertion minted for a request.
func clusterCaddyfile(storage string, port int, clerkIssuer, echo string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	default_bind 127.0.0.1
	storage file_system %s
}

http://127.0.0.1:%d {
	handle %s {
		clerk_identity_jwks
	}
	handle /peek/* {
		clerk_auth {
			issuer %s
			identity_assertion %s {
				audience %s
				issuer %s
			}
		}
		reverse_proxy %s
	}
}
`, storage, port, jwksPath, clerkIssuer, assertionHeader, audienceA, clusterIssuer, echo)
}

const clusterIssuer = "https://gateway.example"

// TestSharedStorage runs two Caddy processes, started together, on one
// storage folder: they publish byte-identical key sets, and an app that
// fetches the keys from either one accepts the assertions of both.
func TestSharedStorage(t *testing.T) {
	iss := clerktest.Start(t)
	storage := t.TempDir()
	echo := echoAssertion(t)
	ports := [2]int{freePort(t), freePort(t)}
	for ports[1] == ports[0] {
		ports[1] = freePort(t)
	}
	var caddies [2]*proc
	for i, port := range ports {
		caddies[i] = launchCaddy(t, clusterCaddyfile(storage, port, iss.URL, echo))
	}
	var gateways [2]string
	for i, p := range caddies {
		p.waitFor(t, caddyReady)
		gateways[i] = fmt.Sprintf("http://127.0.0.1:%d", ports[i])
	}

	var sets [2][]byte
	for i, g := range gateways {
		status, body := fetch(t, g+jwksPath, nil)
		if status != http.StatusOK {
			t.Fatalf("%s%s: %d %s", g, jwksPath, status, body)
		}
		sets[i] = body
	}
	if !bytes.Equal(sets[0], sets[1]) {
		t.Fatalf("the two processes publish different key sets:\n%s\n%s", sets[0], sets[1])
	}
	if !bytes.Contains(sets[0], []byte(`"kid"`)) {
		t.Fatalf("the key set has no key: %s", sets[0])
	}

	token := iss.Mint(clerktest.WithClaims(map[string]any{"sub": "user_example"}))
	want := map[string]any{
		"user_id": "user_example", "session_id": clerktest.DefaultSessionID,
		"org_id": nil, "org_role": nil, "roles": []any{},
	}
	for i := range 2 {
		minted := peek(t, gateways[i]+"/peek/", token)
		other := gateways[1-i]
		t.Run(fmt.Sprintf("minted by process %d, keys from process %d", i+1, 2-i), func(t *testing.T) {
			// The Go example: a real verifier, fetching only the other
			// process's keys.
			app := startProc(t, nil, bin.goExample, "--port", "0",
				"--jwks-url", other+jwksPath, "--audience", audienceA, "--issuer", clusterIssuer)
			url := "http://" + app.waitFor(t, listeningRE)
			status, doc := get(t, url, http.Header{assertionHeader: {minted}})
			if status != http.StatusOK || !reflect.DeepEqual(doc, want) {
				t.Errorf("answered %d %v, want 200 %v", status, doc, want)
			}
		})
	}
}
