package clerkauth

import (
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyclerk/caddy-clerk-auth/internal/assertion"
)

func init() {
	caddy.RegisterModule(IdentityJWKS{})
	httpcaddyfile.RegisterHandlerDirective("clerk_identity_jwks", parseIdentityJWKS)
}

// jwksMaxAge is how long upstreams may cache the key set. Keys are
// published hours before they sign, so a cache this short never misses a
// key an assertion carries.
const jwksMaxAge = 300

// IdentityJWKS serves the public keys of clerk_auth's identity assertions
// as a JSON Web Key Set, for upstreams to verify the assertion header with.
// Every Caddy that shares the storage serves the same keys. It answers GET
// and HEAD, unauthenticated, with caching headers, and ends the route.
type IdentityJWKS struct {
	ring    *assertion.KeyRing
	ringKey string
}

// CaddyModule returns the Caddy module information.
func (IdentityJWKS) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.clerk_identity_jwks",
		New: func() caddy.Module { return new(IdentityJWKS) },
	}
}

// Provision attaches the key ring of Caddy's storage.
func (j *IdentityJWKS) Provision(ctx caddy.Context) error {
	ring, key, err := loadKeyRing(ctx)
	if err != nil {
		return err
	}
	j.ring, j.ringKey = ring, key
	return nil
}

// Cleanup releases the key ring.
func (j *IdentityJWKS) Cleanup() error {
	if j.ringKey == "" {
		return nil
	}
	_, err := assertionRings.Delete(j.ringKey)
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (j *IdentityJWKS) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
	}
	body, etag := j.ring.JWKS()
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(jwksMaxAge))
	h.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, err := w.Write(body)
		return err
	}
	return nil
}

// UnmarshalCaddyfile sets up the handler. Syntax:
//
//	clerk_identity_jwks [<matcher>]
//
// It takes no options: the keys are those of Caddy's configured storage.
func (j *IdentityJWKS) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("clerk_identity_jwks takes no options")
	}
	return nil
}

func parseIdentityJWKS(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var j IdentityJWKS
	err := j.UnmarshalCaddyfile(h.Dispenser)
	return &j, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*IdentityJWKS)(nil)
	_ caddy.CleanerUpper          = (*IdentityJWKS)(nil)
	_ caddyhttp.MiddlewareHandler = (*IdentityJWKS)(nil)
	_ caddyfile.Unmarshaler       = (*IdentityJWKS)(nil)
)
