package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// demo is everything run starts; stop undoes it.
type demo struct {
	caddyfile      string
	lifetime       time.Duration
	handshakeFault string // -handshake-fault, "" for none

	issuer *clerktest.Issuer

	upstreamAddr string       // where Caddy proxies to
	upstream     *http.Server // the built-in upstream; nil with -upstream
	upstreamDone chan struct{}

	caddyURL     string // Caddy's site, e.g. http://127.0.0.1:8080
	caddyRunning bool
	logFile      string   // where Caddy logs; "" for stderr (-v)
	storageDir   string   // Caddy's storage, a temporary folder
	env          []envVar // what Caddyfile.example was loaded with
}

type envVar struct{ name, value string }

func start(cfg config) (_ *demo, err error) {
	d := &demo{caddyfile: cfg.caddyfile, lifetime: cfg.tokenLifetime, handshakeFault: cfg.handshakeFault}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.stop(), keepLogFile(d.logFile))
		}
	}()

	// Read the Caddyfile first: running from the wrong directory is the
	// likeliest mistake, and nothing needs undoing yet.
	body, err := os.ReadFile(cfg.caddyfile)
	if err != nil {
		return nil, fmt.Errorf("%w (run the demo from the repository root, or pass -config)", err)
	}

	d.issuer, err = clerktest.NewAt(loopback(cfg.issuerPort))
	if err != nil {
		return nil, fmt.Errorf("starting the fake Clerk issuer: %w (-issuer-port 0 picks a free port)", err)
	}
	if cfg.handshakeFault != "" {
		d.issuer.SetHandshakeFault(handshakeFaults[cfg.handshakeFault])
	}

	d.upstreamAddr = cfg.upstream
	if d.upstreamAddr == "" {
		if err := d.startUpstream(cfg.upstreamPort); err != nil {
			return nil, fmt.Errorf("starting the upstream: %w (-upstream-port 0 picks a free port)", err)
		}
	}

	port := cfg.port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	d.caddyURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	// "Sign out everywhere" on the sign-in page has the fake Clerk send
	// session.revoked to Caddyfile.example's clerk_webhook route.
	d.issuer.EnableSignIn(clerktest.SignInPage{Users: signInUsers(), Lifetime: cfg.tokenLifetime, WebhookURL: d.caddyURL + webhookPath})

	// Caddyfile.example reads these when it is adapted: Caddy itself knows
	// nothing about the demo.
	d.env = []envVar{
		// A production instance (pk_live_): a development one would need
		// Clerk's dev-browser protocol, which the fake does not speak. The
		// publishable key names the fake's host as the Frontend API, always
		// over https; issuer and proxy_url (both CLERK_ISSUER) say it is
		// plain http, and CLERK_API_URL is its Backend API.
		{"CLERK_PUBLISHABLE_KEY", d.issuer.PublishableKey(true)},
		{"CLERK_SECRET_KEY", d.issuer.LiveSecretKey()},
		{"CLERK_ISSUER", d.issuer.URL},
		{"CLERK_API_URL", d.issuer.APIURL()},
		// The frontend is Caddy's own origin here: the sign-in page mints
		// tokens whose azp is the page the browser came from.
		{"CLERK_AUTHORIZED_PARTY", d.caddyURL},
		{"CLERK_SIGN_IN_URL", d.issuer.SignInURL()},
		// The fake's webhook signing secret, and revocations shared
		// through the storage within a second rather than five.
		{"CLERK_WEBHOOK_SECRET", d.issuer.WebhookSecret()},
		{"CLERK_DENYLIST_SYNC", "1s"},
		{"SITE_ADDRESS", d.caddyURL},
		{"UPSTREAM", d.upstreamAddr},
	}
	for _, e := range d.env {
		if err := os.Setenv(e.name, e.value); err != nil {
			return nil, err
		}
	}
	if !cfg.verbose {
		if d.logFile, err = newLogFile(); err != nil {
			return nil, fmt.Errorf("creating the file for Caddy's logs: %w (-v puts them on stderr instead)", err)
		}
	}
	// The revoked sessions go to Caddy's storage: a folder of the demo's
	// own, not the user's Caddy data directory.
	if d.storageDir, err = os.MkdirTemp("", "clerkauth-demo-storage-"); err != nil {
		return nil, fmt.Errorf("creating the folder for Caddy's storage: %w", err)
	}
	if err := startCaddy(body, cfg.caddyfile, d.logFile, d.storageDir); err != nil {
		return nil, err
	}
	d.caddyRunning = true
	return d, nil
}

// stop stops whatever start started, Caddy first so that no request is
// proxied to a closed upstream. It may be called more than once.
func (d *demo) stop() error {
	var errs []error
	if d.caddyRunning {
		errs = append(errs, caddy.Stop(), waitClosed(strings.TrimPrefix(d.caddyURL, "http://")))
		d.caddyRunning = false
	}
	if d.upstream != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errs = append(errs, d.upstream.Shutdown(ctx))
		<-d.upstreamDone
		d.upstream = nil
	}
	if d.issuer != nil {
		d.issuer.Close()
		d.issuer = nil
	}
	if d.storageDir != "" {
		errs = append(errs, os.RemoveAll(d.storageDir))
		d.storageDir = ""
	}
	return errors.Join(errs...)
}

func (d *demo) startUpstream(port int) error {
	ln, err := net.Listen("tcp", loopback(port))
	if err != nil {
		return err
	}
	d.upstreamAddr = ln.Addr().String()
	d.upstream = &http.Server{Handler: upstreamHandler(d.issuer.SignInURL()), ReadHeaderTimeout: 10 * time.Second}
	d.upstreamDone = make(chan struct{})
	go func() {
		defer close(d.upstreamDone)
		// Serve returns ErrServerClosed once stop shuts it down; any other
		// error would be an accept failure on our own loopback listener,
		// which Caddy then reports as 502 to every request.
		_ = d.upstream.Serve(ln)
	}()
	return nil
}

// webhookPath is where Caddyfile.example takes Clerk's webhooks.
const webhookPath = "/clerk/webhook"

// startCaddy adapts the Caddyfile and runs it in this process, with its
// storage in storageDir, logging to logFile, or to stderr if it is "".
func startCaddy(body []byte, filename, logFile, storageDir string) error {
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": filename})
	if err != nil {
		return fmt.Errorf("adapting %s: %w", filename, err)
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "%s: warning: %s\n", filename, w.String())
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return fmt.Errorf("decoding %s: %w", filename, err)
	}
	if err := checkLoopbackOnly(&cfg); err != nil {
		return fmt.Errorf("%s: %w", filename, err)
	}
	// Whatever the file says, the demo opens no admin endpoint (Caddy's
	// default port 2019 may be another Caddy's) and does not autosave its
	// config into the user's Caddy config directory.
	persist := false
	cfg.Admin = &caddy.AdminConfig{Disabled: true, Config: &caddy.ConfigSettings{Persist: &persist}}
	storage, err := json.Marshal(map[string]string{"module": "file_system", "root": storageDir})
	if err != nil {
		return err
	}
	cfg.StorageRaw = storage
	if logFile != "" {
		if err := logToFile(&cfg, logFile); err != nil {
			return err
		}
		// Until the config's logs are open, Caddy logs to stderr, and says
		// there that it moves them. Buffered, as `caddy run` does, those
		// lines go to the file too; if Caddy fails first, to stderr.
		_, stderrLog, _ := caddy.BufferedLog()
		defer caddy.UnbufferDefaultLogger(stderrLog)
	}
	if err := caddy.Run(&cfg); err != nil {
		return fmt.Errorf("starting Caddy with %s: %w (-port 0 picks a free port)", filename, err)
	}
	return nil
}

// checkLoopbackOnly refuses a config that would listen beyond this machine:
// the fake issuer signs in anyone, so whatever trusts it must stay local.
func checkLoopbackOnly(cfg *caddy.Config) error {
	var app struct {
		Servers map[string]struct {
			Listen []string `json:"listen"`
		} `json:"servers"`
	}
	if raw := cfg.AppsRaw["http"]; raw != nil {
		if err := json.Unmarshal(raw, &app); err != nil {
			return err
		}
	}
	for name, srv := range app.Servers {
		if len(srv.Listen) == 0 {
			return fmt.Errorf("server %s listens on Caddy's default ports on every interface; the demo only runs on 127.0.0.1 (keep default_bind 127.0.0.1)", name)
		}
		for _, l := range srv.Listen {
			addr, err := caddy.ParseNetworkAddress(l)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(addr.Host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("server %s listens on %q; the demo only runs on 127.0.0.1 (keep default_bind 127.0.0.1)", name, l)
			}
		}
	}
	return nil
}

// waitClosed waits until nothing accepts connections at addr. caddy.Stop
// returns once Caddy's servers have begun shutting down, not when their
// listeners are closed (it only waits when Caddy itself exits the process),
// and the demo promises a free port once it has stopped.
func waitClosed(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		conn.Close()
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("caddy still accepts connections on %s 10s after stopping", addr)
}

func loopback(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// freePort finds a free port on 127.0.0.1 for Caddy, which opens its own
// listener from the config: the port is released here first, and another
// program could take it in between, which a demo can live with.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
