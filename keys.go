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
	"strings"

	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
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
