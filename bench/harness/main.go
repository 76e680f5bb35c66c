// Command harness sets up the load test of bench/run.sh: a fake Clerk issuer
// and Backend API (DEVELOPMENT ONLY, from internal/clerktest) and a tiny
// upstream on 127.0.0.1, the Caddyfile of every scenario, and the tokens
// wrk sends. It serves until it receives SIGINT or SIGTERM.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

func main() {
	dir := flag.String("dir", "", "directory for the Caddyfile and token files (required)")
	basePort := flag.Int("base-port", 18080, "first of the eight Caddy ports, one per site")
	distinct := flag.Int("tokens", 1000, "distinct valid tokens for the rotation scenario")
	flag.Parse()
	if *dir == "" {
		log.Fatal("harness: -dir is required")
	}
	if err := run(*dir, *basePort, *distinct); err != nil {
		log.Fatal("harness: ", err)
	}
}

// deniedSessions is how many revoked sessions scenario (i) loads.
const deniedSessions = 100_000

func run(dir string, basePort, distinct int) error {
	iss, err := clerktest.New()
	if err != nil {
		return err
	}
	defer iss.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	upstream := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = upstream.Serve(ln) }()
	defer upstream.Close()

	// Tokens outlive any run, so no scenario measures expiry.
	token := iss.Mint(clerktest.Lifetime(2 * time.Hour))
	tokens := make([]string, distinct)
	for i := range tokens {
		tokens[i] = iss.Mint(clerktest.Lifetime(2*time.Hour), clerktest.WithClaims(map[string]any{"sub": fmt.Sprintf("user_bench_%d", i)}))
	}
	// A script's API key, verified by the fake Backend API once and then
	// answered from the machine-token cache; it never expires.
	apiKey := iss.IssueAPIKey("user_bench_script", []string{"read"}, "bench", nil, time.Time{})
	// The user of token, for the enrichment scenario: fetched from the
	// fake Backend API once, then answered from the enrichment cache.
	iss.SetUser(clerktest.User{ID: clerktest.DefaultSubject, Emails: []string{"bench@example.com"},
		PrimaryEmail: "bench@example.com", FirstName: "Bench", LastName: "User"})
	// Scenario (i): 100,000 revoked sessions, as clustersync shares them
	// through the storage, none the token's; run.sh puts the document in
	// the storage mid-run, and denied_token.txt, whose session is one of
	// them, tells it when Caddy has read it.
	until := time.Now().Add(2 * time.Hour).Unix()
	sessions := make(map[string]int64, deniedSessions)
	for i := range deniedSessions {
		sessions[fmt.Sprintf("sess_2%026d", i)] = until
	}
	denylistDoc, err := json.Marshal(map[string]any{
		"version": 1, "instance": "bench", "written": time.Now().Unix(), "sessions": sessions,
	})
	if err != nil {
		return err
	}
	denied := iss.Mint(clerktest.Lifetime(2*time.Hour), clerktest.WithClaims(map[string]any{"sid": fmt.Sprintf("sess_2%026d", 4242)}))
	files := map[string]string{
		"denylist.json":    string(denylistDoc),
		"denied_token.txt": denied + "\n",
		"Caddyfile":        caddyfile(basePort, iss.URL, iss.APIURL(), iss.SecretKey(), ln.Addr().String(), filepath.Join(dir, "storage")),
		"token.txt":        token + "\n",
		"tokens.txt":       strings.Join(tokens, "\n") + "\n",
		"api_key.txt":      apiKey + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	// run.sh waits for this file: everything above is in place.
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
		return err
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	return nil
}

// caddyfile has one site per scenario, so one Caddy process serves them all
// and each wrk run hits exactly one configuration. The identity assertion's
// keys live in storage, a folder of the run's.
func caddyfile(base int, issuer, apiURL, secretKey, upstream, storage string) string {
	auth := func(extra string) string {
		return fmt.Sprintf("clerk_auth {\n\t\tissuer %s\n\t\tforward_header X-User-Id {http.auth.user.id}\n%s\t}", issuer, extra)
	}
	backend := fmt.Sprintf("\t\tsecret_key %s\n\t\tapi_url %s\n", secretKey, apiURL)
	return fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[13]s
	log default {
		level ERROR
	}
}
# (a) no auth
http://127.0.0.1:%[1]d {
	respond "ok"
}
# (b) clerk_auth with the token cache; also (d), with 1000 tokens rotating
http://127.0.0.1:%[2]d {
	%[7]s
	respond "ok"
}
# (c) clerk_auth without the token cache
http://127.0.0.1:%[3]d {
	%[8]s
	respond "ok"
}
# (e) reverse_proxy without auth
http://127.0.0.1:%[4]d {
	reverse_proxy %[6]s
}
# (e) reverse_proxy with clerk_auth
http://127.0.0.1:%[5]d {
	%[7]s
	reverse_proxy %[6]s
}
# (f) clerk_auth taking Clerk API keys through the (fake) Backend API,
# answered from the machine-token cache after the first request
http://127.0.0.1:%[9]d {
	%[10]s
	respond "ok"
}
# (g) clerk_auth with the token cache and an identity assertion, signed once
# and kept with the cached token
http://127.0.0.1:%[11]d {
	%[14]s
	respond "ok"
}
# (h) clerk_auth with the token cache and the user's Backend API data, from
# the (fake) Backend API once, then from the enrichment cache
http://127.0.0.1:%[12]d {
	%[15]s
	respond "ok"
}
`, base, base+1, base+2, base+3, base+4, upstream, auth(""), auth("\t\ttoken_cache off\n"),
		base+5, auth(backend+"\t\taccept api_key\n"),
		base+6, base+7, storage,
		auth("\t\tidentity_assertion X-Clerk-Identity {\n\t\t\taudience https://bench.internal\n\t\t}\n"),
		auth(backend+"\t\tenrich user\n\t\tforward_header X-User-Email {http.auth.user.email}\n"))
}
