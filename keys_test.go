package clerkauth

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

func TestParsePublishableKey(t *testing.T) {
	cases := []struct {
		pk          string
		frontendAPI string
		live        bool
		suffix      string // "" = not checked
		err         string
	}{
		// The suffix vectors are Clerk's (checked with openssl).
		{pk: "pk_test_Y2xlcmsuY2xlcmsuZGV2JA", frontendAPI: "clerk.clerk.dev", suffix: "QvfNY2dr"},
		{pk: "pk_live_ZmFrZS1jbGVyay10ZXN0LmNsZXJrLmFjY291bnRzLmRldiQ=", frontendAPI: "fake-clerk-test.clerk.accounts.dev", live: true, suffix: "qReyu04C"},
		{pk: "pk_test_ZW5vdWdoLWFscGFjYS04Mi5jbGVyay5hY2NvdW50cy5sY2xjbGVyay5jb20k", frontendAPI: "enough-alpaca-82.clerk.accounts.lclclerk.com", suffix: "jtYvyt_H"},
		{pk: "pk_live_Y2xlcmsuZmluZG15ZmllbGQub25saW5lJA", frontendAPI: "clerk.findmyfield.online", live: true},
		// Clerk accepts any decoded value with a '.' that ends in exactly
		// one '$' (isValidDecodedPublishableKey): a port, a path.
		{pk: "pk_test_" + b64std("clerk.example.com:8443$"), frontendAPI: "clerk.example.com:8443"},
		{pk: "pk_test_" + b64std("127.0.0.1:4000$"), frontendAPI: "127.0.0.1:4000"},
		{pk: "pk_live_" + b64std("example.com/__clerk$"), frontendAPI: "example.com/__clerk", live: true},
		// What Clerk refuses.
		{pk: "sk_test_Y2xlcmsuY2xlcmsuZGV2JA", err: "must start with pk_test_ or pk_live_"},
		{pk: "pk_prod_Y2xlcmsuY2xlcmsuZGV2JA", err: "must start with pk_test_ or pk_live_"},
		{pk: "pk_test_!!!", err: "not base64"},
		{pk: "pk_test_" + b64std("clerk.example.com"), err: "not a Frontend API followed by $"},
		{pk: "pk_test_" + b64std("clerk$example.com$"), err: "not a Frontend API followed by $"},
		{pk: "pk_test_" + b64std("clerk.example.com$$"), err: "not a Frontend API followed by $"},
		{pk: "pk_test_" + b64std("localhost$"), err: "not a Frontend API followed by $"},
		{pk: "pk_test_" + b64std("localhost:3000$"), err: "not a Frontend API followed by $"},
		{pk: "pk_test_", err: "not a Frontend API followed by $"},
		// What Clerk accepts but can never be an issuer URL.
		{pk: "pk_test_" + b64std("user@clerk.example.com$"), err: "user info"},
		{pk: "pk_test_" + b64std("clerk.example.com:http$"), err: "invalid port"},
		{pk: "pk_test_" + b64std("clerk example.com$"), err: "invalid character"},
		{pk: "pk_test_" + b64std("clerk.example.com?x=1$"), err: "?query"},
		{pk: "pk_test_" + b64std("Clerk.example.com$"), err: "must be lowercase"},
	}
	for _, tc := range cases {
		t.Run(tc.pk, func(t *testing.T) {
			got, err := parsePublishableKey(tc.pk)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.frontendAPI != tc.frontendAPI || got.live != tc.live || got.issuer() != "https://"+tc.frontendAPI {
				t.Fatalf("got %+v, issuer %q", got, got.issuer())
			}
			if tc.suffix != "" && got.suffix != tc.suffix {
				t.Fatalf("cookie suffix %q, want %q", got.suffix, tc.suffix)
			}
		})
	}
}

// TestPublishableKeyWithPortThroughCaddy: a publishable key for a Frontend
// API on a port (a local Clerk stand-in) provisions, and its suffixed
// session cookie is told apart from another instance's plain one by the
// host and port. Clerk derives https from a publishable key, so the local
// http stand-in is named by an explicit issuer.
func TestPublishableKeyWithPortThroughCaddy(t *testing.T) {
	iss := clerktest.Start(t)
	other := clerktest.Start(t)
	up := startUpstream(t)
	pk := "pk_test_" + b64std(strings.TrimPrefix(iss.URL, "http://")+"$")
	parsed, err := parsePublishableKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	tester := startCaddy(t, fmt.Sprintf(`
:%d {
	clerk_auth {
		publishable_key %s
		issuer %s
		forward_header X-User-Id {http.auth.user.id}
	}
	reverse_proxy %s
}`, caddyPort, pk, iss.URL, up.addr()))

	mine := iss.Mint(clerktest.WithClaims(map[string]any{"sub": "user_mine"}))
	theirs := other.Mint(clerktest.WithClaims(map[string]any{"sub": "user_theirs"}))
	cookie := fmt.Sprintf("__session=%s; __session_%s=%s; __client_uat_%s=1", theirs, parsed.suffix, mine, parsed.suffix)
	resp, body := do(t, tester, http.MethodGet, "/", http.Header{"Cookie": {cookie}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	if got := up.last().Get("X-User-Id"); got != "user_mine" {
		t.Fatalf("X-User-Id %q, want user_mine from the suffixed cookie", got)
	}
}

func TestCheckSecretKey(t *testing.T) {
	testPK, _ := parsePublishableKey("pk_test_Y2xlcmsuY2xlcmsuZGV2JA")
	livePK, _ := parsePublishableKey("pk_live_Y2xlcmsuZmluZG15ZmllbGQub25saW5lJA")
	cases := []struct {
		sk  string
		pk  *publishableKey
		err string
	}{
		{"sk_test_abc", nil, ""},
		{"sk_live_abc", nil, ""},
		{"sk_test_abc", testPK, ""},
		{"sk_live_abc", livePK, ""},
		{"sk_live_abc", testPK, "production (live) key but publishable_key is a development (test) key"},
		{"sk_test_abc", livePK, "development (test) key but publishable_key is a production (live) key"},
		{"pk_test_abc", nil, "must start with sk_test_ or sk_live_"},
	}
	for _, tc := range cases {
		err := checkSecretKey(tc.sk, tc.pk)
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("checkSecretKey(%q) = %v, want %q", tc.sk, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), tc.sk) {
			t.Errorf("error message repeats the secret key: %v", err)
		}
	}
}

func TestParseJWTKey(t *testing.T) {
	iss := clerktest.Start(t)
	pemText := iss.PublicKeyPEM()
	body := strings.Join(strings.Split(strings.TrimSpace(pemText), "\n")[1:strings.Count(strings.TrimSpace(pemText), "\n")], "")
	k4096, err := clerktest.NewRSAKey(4096)
	if err != nil {
		t.Fatal(err)
	}
	k1024, err := clerktest.NewRSAKey(1024)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&iss.PrivateKey().PublicKey)}))

	cases := []struct {
		name string
		in   string
		bits int
		err  string
	}{
		{name: "PEM", in: pemText, bits: 2048},
		{name: "PEM with literal \\n", in: strings.ReplaceAll(pemText, "\n", `\n`), bits: 2048},
		{name: "without BEGIN/END", in: body, bits: 2048},
		{name: "without BEGIN/END, wrapped", in: body[:64] + "\n" + body[64:], bits: 2048},
		{name: "surrounding space", in: "  \n" + pemText + "\n ", bits: 2048},
		{name: "PKCS#1", in: pkcs1, bits: 2048},
		{name: "4096 bits", in: pemOf(t, k4096.Public()), bits: 4096},
		{name: "1024 bits", in: pemOf(t, k1024.Public()), err: "is 1024 bits, at least 2048"},
		{name: "empty", in: " ", err: "is empty"},
		{name: "garbage", in: "hello world", err: "not a PEM"},
		{name: "base64 but not a key", in: "aGVsbG8gd29ybGQ=", err: "cannot be parsed"},
		{name: "private key block", in: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", err: `PEM "PRIVATE KEY" block`},
		{name: "certificate-like garbage", in: "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----", err: "not a PEM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := parseJWTKey(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pub.N.BitLen() != tc.bits {
				t.Fatalf("%d bits, want %d", pub.N.BitLen(), tc.bits)
			}
		})
	}
}

func pemOf(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
