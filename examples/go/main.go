// Command go is an app behind Caddy and clerk_auth, in plain net/http: it
// trusts the identity headers Caddy sets and answers them as JSON.
//
//	go run ./examples/go --port 8000
//
// It listens on 127.0.0.1 only. The headers are trustworthy only because
// nothing but Caddy can reach the app: clerk_auth deletes every client copy
// of them (and their X_User_Id look-alikes) before setting them.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// identity is what Caddy's forward_header lines told us; nil (JSON null)
// when a header is absent, i.e. the token has no such claim.
type identity struct {
	UserID    *string  `json:"user_id"`
	SessionID *string  `json:"session_id"`
	OrgID     *string  `json:"org_id"`
	OrgRole   *string  `json:"org_role"`
	Roles     []string `json:"roles"`
}

func identityFrom(r *http.Request) identity {
	get := func(name string) *string {
		if v := r.Header.Get(name); v != "" {
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
	if roles := r.Header.Get("X-User-Roles"); roles != "" {
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

// whoami answers the caller's identity. Behind clerk_auth (without
// `optional`) every request is signed in; refusing requests without
// X-User-Id still guards against a Caddyfile that forgets the directive.
func whoami(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r)
	status, body := http.StatusOK, any(id)
	if id.UserID == nil {
		status, body = http.StatusUnauthorized, map[string]string{"error": "not signed in"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// An error here means the client went away; nobody is left to tell.
	_ = json.NewEncoder(w).Encode(body)
}

func main() {
	port := flag.Int("port", 8000, "port on 127.0.0.1 (0: any free port)")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(whoami), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
