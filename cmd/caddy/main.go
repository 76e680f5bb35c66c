// Command caddy is Caddy with the standard modules and clerk_auth compiled
// in, for development, tests and the demo: `go run ./cmd/caddy run`.
// Production builds use xcaddy (see xcaddy.md).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyclerk/caddy-clerk-auth"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
