// Command go is an app behind Caddy and clerk_auth, in plain net/http: it
// answers the caller's identity as JSON.
//
//	go run ./examples/go --port 8000
//
// By default it trusts the identity headers Caddy sets (X-User-Id, ...),
// which is safe only while nothing but Caddy can reach it. With --jwks-url
// it instead verifies the identity assertion that clerk_auth's
// identity_assertion signs, and ignores those headers:
//
//	go run ./examples/go --jwks-url http://127.0.0.1:8080/.well-known/clerk-identity/jwks.json \
//	    --audience https://app.internal --issuer http://127.0.0.1:8080
//
// It listens on 127.0.0.1 only.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// identity is the caller as the app reports it; nil (JSON null) where the
// token has no such claim.
type identity struct {
	UserID    *string  `json:"user_id"`
	SessionID *string  `json:"session_id"`
	OrgID     *string  `json:"org_id"`
	OrgRole   *string  `json:"org_role"`
	Roles     []string `json:"roles"`
}

// identityFrom reads the headers of Caddy's forward_header lines.
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

// whoami answers the caller's identity, from the trusted headers or, when
// verify is set, from the verified assertion. Behind clerk_auth (without
// `optional`) every request is signed in; refusing the others still guards
// against a Caddyfile that forgets the directive, or a client that reaches
// the app directly.
func whoami(verify *verifier) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var (
			id  identity
			err error
		)
		if verify != nil {
			id, err = verify.identity(r)
		} else if id = identityFrom(r); id.UserID == nil {
			err = errNotSignedIn
		}
		switch {
		case errors.Is(err, errKeysUnavailable):
			// An outage, not a sign-out: the client should retry shortly.
			w.Header().Set("Retry-After", "5")
			reply(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		case err != nil:
			reply(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		default:
			reply(w, http.StatusOK, id)
		}
	}
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// An error here means the client went away; nobody is left to tell.
	_ = json.NewEncoder(w).Encode(body)
}

// env is the value of the environment variable name, or def.
func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	port := flag.Int("port", 8000, "port on 127.0.0.1 (0: any free port)")
	jwksURL := flag.String("jwks-url", env("IDENTITY_JWKS_URL", ""), "verify identity assertions with this JWKS (Caddy's clerk_identity_jwks); empty: trust the identity headers")
	audience := flag.String("audience", env("IDENTITY_AUDIENCE", ""), "the assertion's required aud: identity_assertion's audience for this app")
	issuer := flag.String("issuer", env("IDENTITY_ISSUER", ""), "the assertion's required iss: identity_assertion's issuer, by default Caddy's origin")
	header := flag.String("header", env("IDENTITY_HEADER", "X-Clerk-Identity"), "the header carrying the assertion")
	flag.Parse()

	var verify *verifier
	if *jwksURL != "" {
		var err error
		if verify, err = newVerifier(*jwksURL, *audience, *issuer, *header); err != nil {
			log.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: whoami(verify), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
