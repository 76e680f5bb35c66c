package clerkauth

import (
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// publishableKey is a decoded Clerk publishable key: pk_test_ or pk_live_
// followed by base64("<frontend api>$").
type publishableKey struct {
	raw         string
	frontendAPI string // as the key names it: clerk.example.com, or with a :port or /path
	live        bool   // pk_live_: a production instance
	suffix      string // the suffix of this instance's __session_<suffix> cookie
}

// parsePublishableKey accepts what Clerk's parsePublishableKey accepts (a
// decoded value with a '.' that ends in exactly one '$', so a port or a
// path too) and refuses what it refuses. It also refuses a Frontend API
// that can never be an issuer URL (user info, a query, not a URL at all):
// no token could match it.
func parsePublishableKey(pk string) (*publishableKey, error) {
	var live bool
	var enc string
	switch {
	case strings.HasPrefix(pk, "pk_live_"):
		live, enc = true, pk[len("pk_live_"):]
	case strings.HasPrefix(pk, "pk_test_"):
		enc = pk[len("pk_test_"):]
	default:
		return nil, errors.New("must start with pk_test_ or pk_live_ (copy it from the Clerk Dashboard, API keys)")
	}
	// Clerk's keys come both padded and unpadded.
	decoded, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(enc, "="))
	if err != nil {
		return nil, errors.New("the part after pk_test_/pk_live_ is not base64")
	}
	frontendAPI, ok := strings.CutSuffix(string(decoded), "$")
	if !ok || strings.Contains(frontendAPI, "$") || !strings.Contains(frontendAPI, ".") {
		return nil, fmt.Errorf("decodes to %q, not a Frontend API followed by $", truncate(string(decoded), 64))
	}
	parsed := &publishableKey{raw: pk, frontendAPI: frontendAPI, live: live, suffix: cookieSuffix(pk)}
	if err := checkIssuer(parsed.issuer()); err != nil {
		return nil, fmt.Errorf("names the Frontend API %q, whose issuer %s is not usable: %v",
			truncate(frontendAPI, 64), truncate(parsed.issuer(), 72), err)
	}
	return parsed, nil
}

// issuer is the iss of this instance's tokens. Clerk always derives https
// from a publishable key, loopback hosts included.
func (pk *publishableKey) issuer() string {
	return "https://" + strings.TrimSuffix(pk.frontendAPI, "/")
}

// instance describes the Clerk instance pk names, for Clerk's cookie rules.
func (pk *publishableKey) instance() *handshake.Instance {
	return &handshake.Instance{FrontendAPI: pk.frontendAPI, Live: pk.live, CookieSuffix: pk.suffix}
}

// cookieSuffix is Clerk's getCookieSuffix: the first 8 characters of the
// URL-safe base64 SHA-1 of the whole publishable key. SHA-1 is Clerk's
// choice for a name, not a security property here.
func cookieSuffix(pk string) string {
	sum := sha1.Sum([]byte(pk))
	return base64.URLEncoding.EncodeToString(sum[:])[:8]
}

// checkSecretKey validates a Clerk secret key and that it belongs to the
// same kind of instance as the publishable key, if there is one: a test
// key with a live one is always a copy-paste mistake.
func checkSecretKey(sk string, pk *publishableKey) error {
	var live bool
	switch {
	case strings.HasPrefix(sk, "sk_live_"):
		live = true
	case strings.HasPrefix(sk, "sk_test_"):
	default:
		return errors.New("must start with sk_test_ or sk_live_")
	}
	if pk != nil && pk.live != live {
		return fmt.Errorf("is a %s key but publishable_key is a %s key: use keys of the same Clerk instance",
			instanceKind(live), instanceKind(pk.live))
	}
	return nil
}

func instanceKind(live bool) string {
	if live {
		return "production (live)"
	}
	return "development (test)"
}

// parseJWTKey reads the instance's PEM public key (Clerk's CLERK_JWT_KEY)
// as users paste it: with or without the BEGIN/END lines, with real or
// literal "\n" line breaks. Unlike Clerk's JS SDK, which strips a fixed
// 2048-bit prefix, it uses a real SPKI parser, so any RSA size works.
func parseJWTKey(s string) (*rsa.PublicKey, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, `\n`, "\n"))
	if s == "" {
		return nil, errors.New("is empty")
	}
	if !strings.Contains(s, "-----BEGIN") {
		s = "-----BEGIN PUBLIC KEY-----\n" + strings.Join(strings.Fields(s), "") + "\n-----END PUBLIC KEY-----"
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("is not a PEM public key")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("is a PEM %q block, want PUBLIC KEY", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot be parsed: %v", err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("is a %T, Clerk keys are RSA", pub)
	}
	if rsaPub.N.BitLen() < jwks.MinRSABits {
		return nil, fmt.Errorf("is %d bits, at least %d are required", rsaPub.N.BitLen(), jwks.MinRSABits)
	}
	return rsaPub, nil
}

// staticKey is the networkless key source: one PEM key, used whatever the
// token's kid says (Clerk's jwtKey does the same).
type staticKey struct{ pub *rsa.PublicKey }

// Current is always true: the one key never changes while configured.
func (k staticKey) Current(string, *rsa.PublicKey) bool { return true }

func (k staticKey) Key(context.Context, string) (*rsa.PublicKey, string, error) {
	return k.pub, "", nil
}

// keyProvider sets up where verification keys come from, in Clerk's order:
// the networkless PEM key, else the Backend API with the secret key, else
// the JWKS URL (explicit, or derived from the publishable key or issuer).
func (h *Handler) keyProvider(repl *caddy.Replacer, issuers []string) (keyProvider, error) {
	jwtKey, err := expand(repl, "jwt_key", h.JWTKey)
	if err != nil {
		return nil, err
	}
	jwksURL, err := expand(repl, "jwks_url", h.JWKSURL)
	if err != nil {
		return nil, err
	}
	// jwt_key and secret_key go together, as in Clerk's SDK: the PEM
	// verifies, the secret key calls the Backend API.
	if jwksURL != "" && (jwtKey != "" || h.backend != nil) {
		return nil, errors.New("jwks_url is an alternative key source to jwt_key and secret_key: configure one")
	}

	if jwtKey != "" {
		pub, err := parseJWTKey(jwtKey)
		if err != nil {
			return nil, fmt.Errorf("jwt_key %v", err)
		}
		return staticKey{pub: pub}, nil
	}

	var header http.Header
	poolKey := ""
	switch {
	case h.backend != nil:
		jwksURL = h.backend.url + "/v1/jwks"
		header = http.Header{"Authorization": {"Bearer " + h.backend.secret}}
		poolKey = "|" + h.backend.poolKey()
	case jwksURL == "" && h.publishable != nil && len(h.Issuers) == 0:
		jwksURL = h.publishable.issuer() + "/.well-known/jwks.json"
	case jwksURL == "":
		jwksURL = issuers[0] + "/.well-known/jwks.json"
	}
	if err := checkURL(jwksURL); err != nil {
		return nil, fmt.Errorf("jwks_url %q: %v", jwksURL, err)
	}

	opts, err := h.keySetOptions()
	if err != nil {
		return nil, err
	}
	// The options are part of the key, so a reload that changes them gets a
	// set that honours them instead of the old one.
	h.keySetKey = fmt.Sprintf("%s%s|%s|%s|%s|%s", jwksURL, poolKey, opts.Refresh, opts.MinInterval, opts.Timeout, opts.MaxStale)
	ks, err := loadKeySet(keySets, h.keySetKey, jwksURL, header, opts, h.logger.Named("jwks"))
	if err != nil {
		return nil, fmt.Errorf("key set: %v", err)
	}
	return ks, nil
}

// loadKeySet returns the key set pool holds under key, counting one more
// user of it; the first user creates and starts it. A *jwks.Set is a
// caddy.Destructor, so the pool destructs it once its last user is deleted.
func loadKeySet(pool *caddy.UsagePool, key, jwksURL string, header http.Header, opts jwks.Options, logger *zap.Logger) (*jwks.Set, error) {
	val, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		ks := jwks.New(jwksURL, header, opts, logger)
		ks.Start()
		return ks, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(*jwks.Set), nil
}

// keySetOptions applies the jwks_* settings over the defaults, and has the
// set count its fetches in jwks_fetches_total. A key set is shared by every
// handler using the same source, so the first handler to create it sets its
// options. The least values are short enough to play a Clerk outage
// through a staging Caddy; below the production-sensible values a warning
// says so, since there they cost Clerk requests or let keys go stale
// after a brief outage.
func (h *Handler) keySetOptions() (jwks.Options, error) {
	opts := jwks.DefaultOptions
	opts.OnFetch = countFetch
	opts.Clock = keySetClock
	for _, o := range []struct {
		name       string
		set        caddy.Duration
		dst        *time.Duration
		least      time.Duration
		production time.Duration
	}{
		{"jwks_refresh", h.JWKSRefresh, &opts.Refresh, time.Second, time.Minute},
		{"jwks_min_interval", h.JWKSMinInterval, &opts.MinInterval, time.Second, time.Second},
		{"jwks_timeout", h.JWKSTimeout, &opts.Timeout, 100 * time.Millisecond, 100 * time.Millisecond},
		{"jwks_max_stale", h.JWKSMaxStale, &opts.MaxStale, time.Second, time.Minute},
	} {
		if o.set == 0 {
			continue
		}
		d := time.Duration(o.set)
		if d < o.least {
			return opts, fmt.Errorf("%s %s is too short: use at least %s", o.name, d, o.least)
		}
		if d < o.production {
			h.logger.Warn("key set timer below its production minimum: fine for testing, not for production",
				zap.String("setting", o.name), zap.Duration("value", d), zap.Duration("production_minimum", o.production))
		}
		*o.dst = d
	}
	if opts.MaxStale < opts.Refresh {
		return opts, fmt.Errorf("jwks_max_stale %s is shorter than jwks_refresh %s: keys would go stale between two refreshes", opts.MaxStale, opts.Refresh)
	}
	return opts, nil
}
