package main

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// identity is what the upstream learned from the headers that
// Caddyfile.example's forward_header lines set: null when a header is
// absent, which clerk_auth guarantees means "not in the token", since it
// deletes every client copy first. The examples/ upstreams answer the same
// JSON.
type identity struct {
	UserID    *string  `json:"user_id"`
	SessionID *string  `json:"session_id"`
	OrgID     *string  `json:"org_id"`
	OrgRole   *string  `json:"org_role"`
	Roles     []string `json:"roles"`
}

func identityFrom(h http.Header) identity {
	get := func(name string) *string {
		if v := h.Get(name); v != "" {
			return &v
		}
		return nil
	}
	id := identity{
		UserID:    get("X-User-Id"),
		SessionID: get("X-Session-Id"),
		OrgID:     get("X-Org-Id"),
		OrgRole:   get("X-Org-Role"),
		Roles:     []string{},
	}
	if roles := h.Get("X-User-Roles"); roles != "" {
		// A list placeholder percent-encodes '%' and ',' (and a few more)
		// inside each element, so a role named "viewer,admin" stays one.
		for _, e := range strings.Split(roles, ",") {
			role, err := url.PathUnescape(e)
			if err != nil {
				role = e
			}
			id.Roles = append(id.Roles, role)
		}
	}
	return id
}

// upstreamHandler is the demo's app: JSON for API clients such as curl, a
// page for browsers, both showing the identity Caddy forwarded.
func upstreamHandler(signInURL string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := identityFrom(r.Header)
		if !strings.HasPrefix(r.Header.Get("Accept"), "text/html") {
			w.Header().Set("Content-Type", "application/json")
			// An error here means the client went away; nobody is left to tell.
			_ = json.NewEncoder(w).Encode(id)
			return
		}
		// Caddy passes the Host header through, so this is the page's
		// address as the browser sees it.
		back := "http://" + r.Host + r.URL.RequestURI()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = pageTemplate.Execute(w, pageView{
			Identity: id,
			Path:     r.URL.Path,
			SwitchTo: signInURL + "?redirect_url=" + url.QueryEscape(back),
		})
	})
}

type pageView struct {
	Identity identity
	Path     string
	SwitchTo string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>clerk_auth demo upstream</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; }
th { text-align: left; padding-right: 1rem; }
</style>
</head>
<body>
<h1>Signed in as <code id="user-id">{{with .Identity.UserID}}{{.}}{{end}}</code></h1>
<p>This is the demo's upstream, at <code>{{.Path}}</code>. It knows who you are only from the headers
Caddy set after clerk_auth verified your <code>__session</code> cookie. It may trust them only
because nothing but Caddy can reach it.</p>
<table>
<tr><th>X-User-Id</th><td>{{with .Identity.UserID}}{{.}}{{end}}</td></tr>
<tr><th>X-Session-Id</th><td>{{with .Identity.SessionID}}{{.}}{{end}}</td></tr>
<tr><th>X-Org-Id</th><td>{{with .Identity.OrgID}}{{.}}{{end}}</td></tr>
<tr><th>X-Org-Role</th><td>{{with .Identity.OrgRole}}{{.}}{{end}}</td></tr>
<tr><th>X-User-Roles</th><td>{{range $i, $r := .Identity.Roles}}{{if $i}}, {{end}}{{$r}}{{end}}</td></tr>
</table>
<p><a href="/">/</a> (any signed-in user) · <a href="/admin">/admin</a> (role admin) ·
<a href="{{.SwitchTo}}">sign in as someone else</a> (DEVELOPMENT-ONLY sign-in page)</p>
</body>
</html>
`))
