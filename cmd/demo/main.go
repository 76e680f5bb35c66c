// Command demo shows clerk_auth end to end on one machine, offline, with no
// Clerk account: `go run ./cmd/demo` from the repository root.
//
// It starts, all on 127.0.0.1:
//
//   - a DEVELOPMENT-ONLY fake Clerk issuer (internal/clerktest): its JWKS,
//     a token minter and a sign-in page that signs in anyone as anyone;
//   - a small upstream that shows the identity headers it received;
//   - Caddy with clerk_auth, in this process, configured by Caddyfile.example
//     with its {$...} placeholders pointed at the two servers above, its
//     storage (where clerk_webhook shares revoked sessions) in a temporary
//     folder, and its logs written to a file in the temporary directory
//     (-v: stderr).
//
// The sign-in page's "Sign out everywhere" has the fake Clerk send a signed
// session.revoked webhook to Caddy's clerk_webhook route: the browser keeps
// its token, and the page refuses it from then on.
//
// It then prints ready-to-paste curl lines (a valid token, an expired one, a
// forged one, one without the required role, ...), runs each of them once
// and prints what it really returned. Ctrl-C stops everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	_ "github.com/caddyclerk/caddy-clerk-auth"
	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// config is what the command line chooses.
type config struct {
	caddyfile      string
	port           int // Caddy's; 0 picks a free port, as for the two below
	issuerPort     int
	upstreamPort   int
	upstream       string // host:port of the user's own app; "" runs the built-in one
	tokenLifetime  time.Duration
	handshakeFault string // a key of handshakeFaults; "" for none
	verbose        bool   // Caddy's logs on stderr rather than in a file
}

// handshakeFaults are the ways -handshake-fault can break the fake Clerk's
// Frontend API, to watch clerk_auth's answer in a browser.
var handshakeFaults = map[string]clerktest.HandshakeFault{
	// The endpoint answers 500: the browser shows Clerk's error.
	"down": {Fault: clerktest.Fault{Status: http.StatusInternalServerError}},
	// The nonce it hands back is unknown to the Backend API: signed out.
	"unknown-nonce": {UnknownNonce: true},
	// Every token it hands out has expired: clerk_auth hand-shakes again,
	// until its redirect-loop guard sends the browser to sign in.
	"expired-sessions": {ExpiredSessions: true},
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.caddyfile, "config", "Caddyfile.example", "the Caddyfile to run")
	fs.IntVar(&c.port, "port", 8080, "Caddy's port on 127.0.0.1 (0: any free port)")
	fs.IntVar(&c.issuerPort, "issuer-port", 8081, "the fake Clerk issuer's port on 127.0.0.1 (0: any free port)")
	fs.IntVar(&c.upstreamPort, "upstream-port", 8082, "the built-in upstream's port on 127.0.0.1 (0: any free port)")
	fs.StringVar(&c.upstream, "upstream", "", "host:port of your own app to put behind Caddy instead of the built-in upstream, e.g. 127.0.0.1:8000")
	// Clerk's own lifetime by default, so that a browser session meets
	// token expiry (and the handshake that renews it) within a minute.
	fs.DurationVar(&c.tokenLifetime, "token-lifetime", clerktest.DefaultLifetime,
		"lifetime of the session tokens the demo mints, 60s like Clerk's (longer keeps the printed curl lines valid longer)")
	fs.StringVar(&c.handshakeFault, "handshake-fault", "",
		"break the fake Clerk's Frontend API handshake: "+strings.Join(slices.Sorted(maps.Keys(handshakeFaults)), ", "))
	fs.BoolVar(&c.verbose, "v", false, "show Caddy's logs on stderr instead of writing them to a file in "+os.TempDir())
	// fs.Parse reports its own errors on stderr; ours are reported alike.
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	invalid := func(format string, a ...any) (config, error) {
		err := fmt.Errorf(format, a...)
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return c, err
	}
	if fs.NArg() > 0 {
		return invalid("unexpected arguments %q", fs.Args())
	}
	if _, ok := handshakeFaults[c.handshakeFault]; c.handshakeFault != "" && !ok {
		return invalid("-handshake-fault %q: want one of %s", c.handshakeFault, strings.Join(slices.Sorted(maps.Keys(handshakeFaults)), ", "))
	}
	if c.tokenLifetime <= 0 {
		return invalid("-token-lifetime %s: must be positive", c.tokenLifetime)
	}
	for _, p := range []int{c.port, c.issuerPort, c.upstreamPort} {
		if p < 0 || p > 65535 {
			return invalid("port %d is out of range", p)
		}
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2) // parseFlags has explained on stderr
	}
	// The first Ctrl-C (or SIGTERM) stops the demo cleanly; after that the
	// default handling is back, so a second one kills it outright.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run starts the demo, prints how to use it and blocks until ctx is done,
// then stops every server it started.
func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	d, err := start(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := d.stop(); err == nil {
			err = stopErr
		}
	}()
	d.printIntro(out)
	results, err := d.runChecks()
	if err != nil {
		return err
	}
	d.printChecks(out, results)
	fmt.Fprintln(out, "Ready. Press Ctrl-C to stop.")
	<-ctx.Done()
	fmt.Fprintln(out, "Stopping.")
	return nil
}
