package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// leeway is the clock skew allowed on exp, iat and nbf.
const leeway = 5 * time.Second

var (
	errNotSignedIn = errors.New("not signed in")
	errInvalid     = errors.New("invalid identity assertion")
)

// verifier checks clerk_auth's identity assertions against the key set
// that Caddy publishes.
type verifier struct {
	keys     *keySet
	audience string
	issuer   string
	header   string
}

func newVerifier(jwksURL, audience, issuer, header string) (*verifier, error) {
	if audience == "" || issuer == "" {
		return nil, errors.New("--jwks-url needs --audience and --issuer: without them an assertion meant for another app, or made by another gateway, would pass")
	}
	keys, err := newKeySet(jwksURL, &http.Client{Timeout: 10 * time.Second}, time.Now)
	if err != nil {
		return nil, fmt.Errorf("--jwks-url %s: %v", jwksURL, err)
	}
	return &verifier{keys: keys, audience: audience, issuer: issuer, header: header}, nil
}

// identity is the caller stated by r's verified assertion. The error it
// returns on failure is for the client (errKeysUnavailable: answer 503);
// the details go to the log only.
func (v *verifier) identity(r *http.Request) (identity, error) {
	token := r.Header.Get(v.header)
	if token == "" {
		return identity{}, errNotSignedIn
	}
	tok, err := jwt.ParseString(token,
		jwt.WithKeyProvider(v.es256Only(r.Context())),
		jwt.WithValidate(true),
		jwt.WithAudience(v.audience),
		jwt.WithIssuer(v.issuer),
		jwt.WithRequiredClaim(jwt.SubjectKey),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithAcceptableSkew(leeway))
	if errors.Is(err, errKeysUnavailable) {
		log.Printf("identity assertion not checked: %v", err)
		return identity{}, errKeysUnavailable
	}
	if err != nil {
		log.Printf("identity assertion refused: %v", err)
		return identity{}, errInvalid
	}
	return identityOf(tok), nil
}

// es256Only finds the key named by the token's kid and verifies with
// ES256 only: "none", HS256 keyed with the public key, or any other alg the
// token names is refused before any signature check, or any fetch.
func (v *verifier) es256Only(ctx context.Context) jws.KeyProvider {
	return jws.KeyProviderFunc(func(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
		hdr := sig.ProtectedHeaders()
		if hdr.Algorithm() != jwa.ES256 {
			return fmt.Errorf("alg %q is not ES256", hdr.Algorithm())
		}
		key, err := v.keys.lookup(ctx, hdr.KeyID())
		if err != nil {
			return err
		}
		sink.Key(jwa.ES256, key)
		return nil
	})
}

// identityOf reads the verified claims; a claim that is absent or not a
// string is null.
func identityOf(tok jwt.Token) identity {
	claims := tok.PrivateClaims()
	str := func(name string) *string {
		if s, ok := claims[name].(string); ok && s != "" {
			return &s
		}
		return nil
	}
	sub := tok.Subject()
	id := identity{UserID: &sub, SessionID: str("sid"), OrgID: str("org_id"), OrgRole: str("org_role"), Roles: []string{}}
	if roles, ok := claims["roles"].([]any); ok {
		for _, r := range roles {
			if s, ok := r.(string); ok {
				id.Roles = append(id.Roles, s)
			}
		}
	}
	return id
}
