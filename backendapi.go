package clerkauth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
)

// apiClients holds one Backend API client per secret key and API URL,
// shared by every handler and across reloads, so that the call budget (its
// token bucket and shared calls) covers all of this Caddy's traffic to
// one instance.
var apiClients = caddy.NewUsagePool()

// backendAPIClock is the clock of Backend API clients created from now on
// (their call budget and machine-token cache); nil is the real one. Tests
// set it to age cached answers without waiting.
var backendAPIClock func() time.Time

// backendAPI is where the Backend API is, the key it takes, and the call
// budget this Caddy keeps to.
type backendAPI struct {
	secret string
	url    string // no trailing slash
	rate   float64
	burst  int
}

// poolKey tells secrets apart without holding one in clear. Routes with
// another budget get a client of their own.
func (b *backendAPI) poolKey() string {
	sum := sha256.Sum256([]byte(b.secret))
	return fmt.Sprintf("%s|%s|%g|%d", b.url, hex.EncodeToString(sum[:8]), b.rate, b.burst)
}

// maxMachineCacheTTL bounds machine_cache_ttl: the longest a token revoked
// in Clerk may keep working here.
const maxMachineCacheTTL = time.Hour

// provisionBackendAPI reads backend_api_rate, secret_key and api_url. The
// secret key is used for the key set (unless jwt_key verifies
// networklessly) and for the Backend API calls of the handshake and of
// opaque machine tokens.
func (h *Handler) provisionBackendAPI(repl *caddy.Replacer) error {
	// The budget is checked first, so that `caddy validate` refuses a bad
	// one even where secret_key is not set (yet).
	rate, burst := h.BackendAPIRate, h.BackendAPIBurst
	if rate == 0 {
		rate = clerkapi.DefaultRate
	}
	if burst == 0 {
		burst = clerkapi.DefaultBurst
	}
	if rate < 0.1 || rate > 1000 || burst < 1 || burst > 10000 {
		return fmt.Errorf("backend_api_rate %g %d: use 0.1 to 1000 calls per second and a burst of 1 to 10000 (Clerk allows 100 calls per 10s to a development instance, 1000 to a production one)", rate, burst)
	}
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
	h.backend = &backendAPI{secret: secret, url: apiURL, rate: rate, burst: burst}
	return nil
}

// sharedClient is a clerkapi.Client in the pool.
type sharedClient struct{ *clerkapi.Client }

func (sharedClient) Destruct() error { return nil }

// apiClient returns the shared client for h.backend, holding one
// reference, whichever steps ask, that Cleanup releases.
func (h *Handler) apiClient() (*clerkapi.Client, error) {
	if h.api != nil {
		return h.api, nil
	}
	h.apiClientKey = h.backend.poolKey()
	val, _, err := apiClients.LoadOrNew(h.apiClientKey, func() (caddy.Destructor, error) {
		c, err := clerkapi.New(clerkapi.Config{
			SecretKey: h.backend.secret,
			BaseURL:   h.backend.url,
			Rate:      h.backend.rate,
			Burst:     h.backend.burst,
			Machine:   clerkapi.MachineCacheConfig{TTL: maxMachineCacheTTL},
			Observer:  backendAPIObserver,
			Now:       backendAPIClock,
		})
		if err != nil {
			return nil, err
		}
		return sharedClient{c}, nil
	})
	if err != nil {
		h.apiClientKey = ""
		return nil, fmt.Errorf("backend API client: %v", err)
	}
	h.api = val.(sharedClient).Client
	return h.api, nil
}
