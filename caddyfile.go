package clerkauth

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("clerk_auth", parseCaddyfile)
	// Authentication belongs before everything that serves or proxies, the
	// same slot as basic_auth, so users never have to write an order.
	httpcaddyfile.RegisterDirectiveOrder("clerk_auth", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	clerk_auth [<matcher>] {
//		issuer              <url>...
//		jwks_url            <url>
//		audience            <aud>...
//		authorized_parties  <origin>...
//		leeway              <duration>
//		roles               <role>...
//		roles_claim         <dotted.path>
//		optional
//		forward_header      <field> <value>
//	}
//
// issuer, audience, authorized_parties and roles may be repeated; their
// values add up. forward_header may be repeated, once per header.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "issuer":
			vals, err := atLeastOne(d)
			if err != nil {
				return err
			}
			h.Issuers = append(h.Issuers, vals...)
		case "jwks_url":
			if err := single(d, &h.JWKSURL); err != nil {
				return err
			}
		case "audience":
			vals, err := atLeastOne(d)
			if err != nil {
				return err
			}
			h.Audiences = append(h.Audiences, vals...)
		case "authorized_parties":
			vals, err := atLeastOne(d)
			if err != nil {
				return err
			}
			h.AuthorizedParties = append(h.AuthorizedParties, vals...)
		case "leeway":
			var raw string
			if h.Leeway != nil {
				return d.Errf("leeway is given twice")
			}
			if !d.AllArgs(&raw) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(raw)
			if err != nil {
				return d.Errf("leeway: %v", err)
			}
			leeway := caddy.Duration(dur)
			h.Leeway = &leeway
		case "roles":
			vals, err := atLeastOne(d)
			if err != nil {
				return err
			}
			h.Roles = append(h.Roles, vals...)
		case "roles_claim":
			if err := single(d, &h.RolesClaim); err != nil {
				return err
			}
		case "optional":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Optional = true
		case "forward_header":
			var fh ForwardHeader
			if !d.AllArgs(&fh.Field, &fh.Value) {
				return d.Errf("forward_header needs a field name and a value, e.g. forward_header X-User-Id {http.auth.user.id}")
			}
			h.ForwardHeaders = append(h.ForwardHeaders, fh)
		default:
			return d.Errf("unrecognized clerk_auth subdirective %q", d.Val())
		}
	}
	return nil
}

// single reads the one value of a subdirective that may appear only once.
func single(d *caddyfile.Dispenser, dst *string) error {
	if *dst != "" {
		return d.Errf("%s is given twice", d.Val())
	}
	if !d.AllArgs(dst) {
		return d.ArgErr()
	}
	return nil
}

func atLeastOne(d *caddyfile.Dispenser) ([]string, error) {
	name := d.Val()
	vals := d.RemainingArgs()
	if len(vals) == 0 {
		return nil, d.Errf("%s needs at least one value", name)
	}
	return vals, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
