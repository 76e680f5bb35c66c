package clerkauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "clerk-token",
		Usage: "[--config <path> [--adapter <name>]] [--site <host>] [--path <request path>] [--now <RFC3339>] <token|->",
		Short: "Decodes a Clerk token and explains whether clerk_auth accepts it",
		Long: `
Decodes a Clerk session token (or JWT-template token) WITHOUT verifying it
and prints its header, claims, times, token class, organization,
permissions, features and plans.

With --config, it also loads that configuration, picks its clerk_auth
handler for --site (and --path), provisions it and verifies the token
exactly as the handler would: same issuer, same keys (the JWKS is
fetched, or jwt_key used), same requirements. It then prints VALID or
REJECTED: <reason>, the HTTP status the handler would answer, and how to
fix a rejection.

The token is the last argument. Pass - to read it from stdin instead, so
it stays out of your shell history:

	caddy clerk-token --config Caddyfile --site api.example.com - < token.txt

A leading "Bearer " is ignored, so a copied Authorization header works.

Whatever the token says is printed as is when it is plain printable
text and Go-quoted otherwise, so control characters, escape sequences
and bidi overrides in a token cannot act on the terminal.

--config
    The configuration to check the token against (Caddyfile or JSON).

--adapter
    Its config adapter. Default: caddyfile for files named like
    Caddyfile, else JSON, as with caddy run.

--site
    The host of the site whose clerk_auth to use, e.g. api.example.com.
    Needed when the config has clerk_auth in more than one site.

--path
    The request path, e.g. /admin/users, when the site has clerk_auth
    handlers for different paths.

--now
    Check the times as of this instant (RFC 3339) instead of now, e.g.
    to replay a token from a log.

Exit status: 0 if the token is valid (without --config: if it decodes),
1 if it is rejected or cannot be decoded, 2 on a usage error (bad flags,
a config that does not load, no clerk_auth handler or an ambiguous one).
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().StringP("config", "c", "", "Configuration file with the clerk_auth handler")
			cmd.Flags().StringP("adapter", "a", "", "Name of the config adapter")
			cmd.Flags().String("site", "", "Host of the site whose clerk_auth to use")
			cmd.Flags().String("path", "", "Request path, to choose between path-matched clerk_auth handlers")
			cmd.Flags().String("now", "", "Check times as of this RFC 3339 instant")
			cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
				return exitStatus(cmd, 2, fmt.Errorf("%v (see caddy help clerk-token)", err))
			})
			cmd.RunE = func(cmd *cobra.Command, _ []string) error {
				code, err := cmdClerkToken(caddycmd.Flags{FlagSet: cmd.Flags()})
				return exitStatus(cmd, code, err)
			}
		},
	})
}

// cmdClerkToken is the command in the shape of Caddy's own command
// functions. It binds the process's stdin and stdout, which runClerkToken
// takes as arguments so that tests can supply their own.
func cmdClerkToken(fs caddycmd.Flags) (int, error) {
	o := clerkTokenOptions{
		config:  fs.String("config"),
		adapter: fs.String("adapter"),
		site:    fs.String("site"),
		path:    fs.String("path"),
		now:     fs.String("now"),
	}
	return runClerkToken(context.Background(), o, fs.Args(), os.Stdin, os.Stdout)
}

// errRejected makes caddycmd.Main exit with status 1. It is never printed:
// the verdict on stdout already says why.
var errRejected = errors.New("token rejected")

// exitStatus prints a usage error and hands the exit status to
// caddycmd.Main, which exits 1 on any error and with the status of its own
// (unexported) exit error otherwise; only WrapCommandFuncForCobra makes
// one. RunE is not WrapCommandFuncForCobra(cmdClerkToken) itself because
// that logs every error: a rejection, which needs one to exit 1, would be
// logged after the verdict said why. The error is printed as is rather
// than logged, as Caddy commands usually do, because its list of candidate
// handlers spans lines.
func exitStatus(cmd *cobra.Command, code int, err error) error {
	cmd.SilenceErrors = true
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "caddy clerk-token: %v\n", err)
	}
	switch code {
	case 0:
		return nil
	case 1:
		return errRejected
	}
	return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) { return code, nil })(cmd, nil)
}

type clerkTokenOptions struct {
	config, adapter, site, path, now string
}

// runClerkToken is the whole command minus cobra: it returns the exit
// status and, for status 2, the usage error.
func runClerkToken(ctx context.Context, o clerkTokenOptions, args []string, stdin io.Reader, stdout io.Writer) (int, error) {
	if len(args) != 1 {
		return 2, fmt.Errorf("want one token argument (or - to read it from stdin), got %d arguments", len(args))
	}
	if o.config == "" && (o.adapter != "" || o.site != "" || o.path != "") {
		return 2, errors.New("--adapter, --site and --path need --config")
	}
	if o.config == "-" && args[0] == "-" {
		return 2, errors.New("the config and the token cannot both come from stdin")
	}
	now := time.Now()
	if o.now != "" {
		var err error
		if now, err = time.Parse(time.RFC3339, o.now); err != nil {
			return 2, fmt.Errorf("--now %q is not an RFC 3339 time such as 2026-11-26T06:10:00Z", o.now)
		}
	}
	token, err := readToken(args[0], stdin)
	if err != nil {
		return 2, err
	}
	if o.config == "" {
		if inspectToken(stdout, token, now) != nil {
			return 1, nil
		}
		return 0, nil
	}
	// Like every usage error, a config that does not load is reported
	// before anything is printed.
	cfgJSON, _, _, err := caddycmd.LoadConfig(o.config, o.adapter)
	if err != nil {
		return 2, err
	}
	return checkToken(ctx, stdout, cfgJSON, o.site, o.path, token, now)
}

// readToken takes the token from the argument, or from stdin for "-", and
// drops a "Bearer " prefix pasted along with it.
func readToken(arg string, stdin io.Reader) (string, error) {
	if arg == "-" {
		// 1 MiB is far above any token: the verifier refuses more than 16 KiB.
		b, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return "", fmt.Errorf("reading the token from stdin: %v", err)
		}
		arg = string(b)
	}
	token := strings.TrimSpace(arg)
	if tok, ok, err := bearerToken(token); err == nil && ok {
		token = tok
	}
	if token == "" {
		return "", errors.New("the token is empty")
	}
	return token, nil
}
