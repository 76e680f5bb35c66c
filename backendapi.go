package clerkauth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
)

// apiClients holds one Backend API client per secret key and API URL,
// shared by every handler and across reloads, so that the call budget (its
// token bucket and shared calls) covers all of this Caddy's traffic to
// one instance.
var apiClients = caddy.NewUsagePool()

// backendAPI is where the Backend API is, and the key it takes.
type backendAPI struct {
	secret string
	url    string // no trailing slash
}

// poolKey tells secrets apart without holding one in clear.
func (b *backendAPI) poolKey() string {
	sum := sha256.Sum256([]byte(b.secret))
	return b.url + "|" + hex.EncodeToString(sum[:8])
}

// provisionBackendAPI reads secret_key and api_url. The secret key is used
// for the key set (unless jwt_key verifies networklessly) and for the
// Backend API calls of the handshake.
func (h *Handler) provisionBackendAPI(repl *caddy.Replacer) error {
	secret, err := expand(repl, "secret_key", h.SecretKey)
	if err != nil {
		return err
	}
	apiURL, err := expand(repl, "api_url", h.APIURL)
	if err != nil || secret == "" {
		return err
	}
	if err := checkSecretKey(secret, h.publishable); err != nil {
		return fmt.Errorf("secret_key %v", err)
	}
	apiURL = strings.TrimSuffix(apiURL, "/")
	if apiURL == "" {
		apiURL = defaultAPIURL
	}
	if err := checkURL(apiURL); err != nil {
		return fmt.Errorf("api_url %q: %v", apiURL, err)
	}
	h.backend = &backendAPI{secret: secret, url: apiURL}
	return nil
}

// sharedClient is a clerkapi.Client in the pool.
type sharedClient struct{ *clerkapi.Client }

func (sharedClient) Destruct() error { return nil }

// apiClient returns the shared client for h.backend, holding a reference
// that Cleanup releases.
func (h *Handler) apiClient() (*clerkapi.Client, error) {
	h.apiClientKey = h.backend.poolKey()
	val, _, err := apiClients.LoadOrNew(h.apiClientKey, func() (caddy.Destructor, error) {
		c, err := clerkapi.New(clerkapi.Config{SecretKey: h.backend.secret, BaseURL: h.backend.url})
		if err != nil {
			return nil, err
		}
		return sharedClient{c}, nil
	})
	if err != nil {
		h.apiClientKey = ""
		return nil, fmt.Errorf("backend API client: %v", err)
	}
	return val.(sharedClient).Client, nil
}
