package jwks

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	good, err := clerktest.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	n := b64url(good.N.Bytes())
	body := fmt.Sprintf(`{"keys":[
		{"kty":"RSA","kid":"enc","use":"enc","n":%[1]q,"e":"AQAB"},
		{"kty":"RSA","kid":"ps","alg":"PS256","n":%[1]q,"e":"AQAB"},
		{"kty":"EC","kid":"ec","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
		{"kty":"RSA","kid":"e1","n":%[1]q,"e":"AQ"},
		{"kty":"oops"},
		{"kty":"RSA","kid":"good","alg":"RS256","use":"sig","n":%[1]q,"e":"AQAB"}
	]}`, n)
	keys, err := parseJWKS([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys["good"].pub == nil || keys["good"].alg != "RS256" {
		t.Fatalf("parsed %v, want only the good key", keys)
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwksOf(t *testing.T, kid string, n []byte) []byte {
	t.Helper()
	return fmt.Appendf(nil, `{"keys":[{"kty":"RSA","kid":%q,"alg":"RS256","n":%q,"e":"AQAB"}]}`, kid, b64url(n))
}
