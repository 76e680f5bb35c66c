package clerkauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// clerkRoute is a clerk_auth handler found in a config, with the matcher
// sets of every route on the way to it, outermost first.
type clerkRoute struct {
	n      int // 1-based, in config order, to tell candidates apart
	server string
	match  [][]map[string]json.RawMessage
	raw    json.RawMessage
}

// cfgRoute is as much of a Caddy route as the walk needs.
type cfgRoute struct {
	Match  []map[string]json.RawMessage `json:"match"`
	Handle []json.RawMessage            `json:"handle"`
}

// findClerkRoutes lists the clerk_auth handlers of apps.http, looking into
// subroutes (where the Caddyfile puts every site's handlers).
func findClerkRoutes(cfgJSON []byte) ([]clerkRoute, error) {
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []cfgRoute `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return nil, fmt.Errorf("the config is not Caddy JSON (for a Caddyfile, use --adapter caddyfile): %v", err)
	}
	names := make([]string, 0, len(cfg.Apps.HTTP.Servers))
	for name := range cfg.Apps.HTTP.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	var found []clerkRoute
	for _, name := range names {
		if err := walkRoutes(name, cfg.Apps.HTTP.Servers[name].Routes, nil, &found); err != nil {
			return nil, fmt.Errorf("server %s: %v", name, err)
		}
	}
	return found, nil
}

// walkRoutes appends the clerk_auth handlers of routes to found. outer are
// the matcher sets of the routes around them, since a request must pass
// those too.
func walkRoutes(server string, routes []cfgRoute, outer [][]map[string]json.RawMessage, found *[]clerkRoute) error {
	for _, r := range routes {
		// Clipped, so that sibling routes do not append into one array.
		match := append(slices.Clip(outer), r.Match)
		for _, raw := range r.Handle {
			var h struct {
				Handler string     `json:"handler"`
				Routes  []cfgRoute `json:"routes"`
			}
			if err := json.Unmarshal(raw, &h); err != nil {
				return err
			}
			switch h.Handler {
			case "clerk_auth":
				*found = append(*found, clerkRoute{n: len(*found) + 1, server: server, match: match, raw: raw})
			case "subroute":
				if err := walkRoutes(server, h.Routes, match, found); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// matcherValues gathers the values of one matcher (host, path) on the way
// to the handler, for display.
func (r *clerkRoute) matcherValues(name string) []string {
	var out []string
	for _, level := range r.match {
		for _, set := range level {
			var v []string
			if json.Unmarshal(set[name], &v) == nil {
				out = append(out, v...)
			}
		}
	}
	return out
}

func (r *clerkRoute) String() string {
	host, path := "any host", "any path"
	if h := r.matcherValues("host"); len(h) > 0 {
		host = "host " + strings.Join(h, " ")
	}
	if p := r.matcherValues("path"); len(p) > 0 {
		path = "path " + strings.Join(p, " ")
	}
	return fmt.Sprintf("clerk_auth #%d (server %s: %s, %s)", r.n, r.server, host, path)
}

// applies reports whether the route leads req to the handler, judging only
// the host matchers (if useHost) and path matchers (if usePath): other
// matchers depend on the request and are assumed to pass. byHost says
// whether a host matcher was needed, i.e. the route is specific to the site.
func (r *clerkRoute) applies(req *http.Request, useHost, usePath bool) (ok, byHost bool, err error) {
	for _, level := range r.match {
		if len(level) == 0 {
			continue
		}
		levelOK := false
		for _, set := range level {
			setOK, setByHost, err := setApplies(set, req, useHost, usePath)
			if err != nil {
				return false, false, err
			}
			if setOK {
				levelOK = true
				byHost = byHost || setByHost
				break
			}
		}
		if !levelOK {
			return false, false, nil
		}
	}
	return true, byHost, nil
}

// setApplies runs Caddy's own host and path matchers of one matcher set.
func setApplies(set map[string]json.RawMessage, req *http.Request, useHost, usePath bool) (ok, byHost bool, err error) {
	if raw, has := set["host"]; has && useHost {
		var m caddyhttp.MatchHost
		if err := json.Unmarshal(raw, &m); err != nil {
			return false, false, fmt.Errorf("host matcher: %v", err)
		}
		if err := m.Provision(caddy.Context{}); err != nil {
			return false, false, err
		}
		if !m.Match(req) {
			return false, false, nil
		}
		byHost = true
	}
	if raw, has := set["path"]; has && usePath {
		var m caddyhttp.MatchPath
		if err := json.Unmarshal(raw, &m); err != nil {
			return false, false, fmt.Errorf("path matcher: %v", err)
		}
		if err := m.Provision(caddy.Context{}); err != nil {
			return false, false, err
		}
		if !m.Match(req) {
			return false, false, nil
		}
	}
	return true, byHost, nil
}

// pickRoute chooses the handler a request for site and path would meet. A
// site-specific route wins over a catch-all one, as Caddy orders a site's
// routes before the catch-all site's.
func pickRoute(routes []clerkRoute, site, reqPath string) (*clerkRoute, error) {
	if len(routes) == 0 {
		return nil, errors.New("the config has no clerk_auth handler")
	}
	candidates := func() string {
		var b strings.Builder
		for i := range routes {
			b.WriteString("\n  " + routes[i].String())
		}
		return b.String()
	}
	if site == "" && reqPath == "" {
		if len(routes) == 1 {
			return &routes[0], nil
		}
		return nil, fmt.Errorf("the config has %d clerk_auth handlers; choose one with --site (and --path):%s", len(routes), candidates())
	}

	host := site
	if u, err := url.Parse(site); err == nil && u.Host != "" {
		host = u.Host // a URL such as https://api.example.com
	}
	useHost, usePath := site != "", reqPath != ""
	if !usePath {
		reqPath = "/"
	}
	req := (&http.Request{Host: host, URL: &url.URL{Path: reqPath}}).
		WithContext(context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	var matched, specific []*clerkRoute
	for i := range routes {
		ok, byHost, err := routes[i].applies(req, useHost, usePath)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", &routes[i], err)
		}
		if ok {
			matched = append(matched, &routes[i])
			if byHost {
				specific = append(specific, &routes[i])
			}
		}
	}
	if len(specific) > 0 {
		matched = specific
	}
	switch len(matched) {
	case 0:
		return nil, fmt.Errorf("no clerk_auth handler applies to site %q, path %q; the config has:%s", site, reqPath, candidates())
	case 1:
		return matched[0], nil
	}
	var b strings.Builder
	for _, r := range matched {
		b.WriteString("\n  " + r.String())
	}
	return nil, fmt.Errorf("%d clerk_auth handlers apply to site %q, path %q; narrow it down with --site and --path:%s", len(matched), site, reqPath, b.String())
}

// provisionClerkHandler loads a clerk_auth handler from its JSON the way
// Caddy loads a config's handlers: strict decoding, Provision, Validate.
// Cancelling ctx cleans it up. The handler verifies tokens but mints no
// identity assertion: minting needs the storage of a running config, which
// ctx (not a running config's) lacks, and inspecting a config must not
// make keys in its storage.
// configContext is a Caddy context with the storage cfgJSON configures (or
// Caddy's default), so that the handler the doctor checks with reads the
// same shared denylist as the running Caddy: a revoked session is reported
// as such.
func configContext(ctx context.Context, cfgJSON []byte) (caddy.Context, context.CancelFunc, error) {
	var cfg struct {
		Storage json.RawMessage `json:"storage"`
	}
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return caddy.Context{}, nil, err
	}
	root, err := caddy.ProvisionContext(&caddy.Config{StorageRaw: cfg.Storage})
	if err != nil {
		return caddy.Context{}, nil, fmt.Errorf("storage: %v", err)
	}
	root.Context = ctx
	cctx, cancel := caddy.NewContext(root)
	return cctx, cancel, nil
}

func provisionClerkHandler(ctx caddy.Context, raw json.RawMessage) (*Handler, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	delete(fields, "handler") // the module's name, which Caddy strips before decoding
	delete(fields, "identity_assertion")
	body, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	mod, err := ctx.LoadModuleByID("http.handlers.clerk_auth", body)
	if err != nil {
		return nil, err
	}
	return mod.(*Handler), nil
}
