package clerkauth

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

func TestParsePublishableKey(t *testing.T) {
	cases := []struct {
		pk     string
		host   string
		live   bool
		suffix string // "" = not checked
		err    string
	}{
		// The suffix vectors are Clerk's (checked with openssl).
		{pk: "pk_test_Y2xlcmsuY2xlcmsuZGV2JA", host: "clerk.clerk.dev", suffix: "QvfNY2dr"},
		{pk: "pk_live_ZmFrZS1jbGVyay10ZXN0LmNsZXJrLmFjY291bnRzLmRldiQ=", host: "fake-clerk-test.clerk.accounts.dev", live: true, suffix: "qReyu04C"},
		{pk: "pk_test_ZW5vdWdoLWFscGFjYS04Mi5jbGVyay5hY2NvdW50cy5sY2xjbGVyay5jb20k", host: "enough-alpaca-82.clerk.accounts.lclclerk.com", suffix: "jtYvyt_H"},
		{pk: "pk_live_Y2xlcmsuZmluZG15ZmllbGQub25saW5lJA", host: "clerk.findmyfield.online", live: true},
		{pk: "sk_test_Y2xlcmsuY2xlcmsuZGV2JA", err: "must start with pk_test_ or pk_live_"},
		{pk: "pk_prod_Y2xlcmsuY2xlcmsuZGV2JA", err: "must start with pk_test_ or pk_live_"},
		{pk: "pk_test_!!!", err: "not base64"},
		{pk: "pk_test_" + b64std("clerk.example.com"), err: "not a Frontend API host followed by $"},
		{pk: "pk_test_" + b64std("clerk$example.com$"), err: "not a Frontend API host"},
		{pk: "pk_test_" + b64std("localhost$"), err: "not a Frontend API host"},
		{pk: "pk_test_" + b64std("evil.com/x$"), err: "not a Frontend API host"},
		{pk: "pk_test_", err: "not a Frontend API host"},
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
			if got.host != tc.host || got.live != tc.live || got.issuer() != "https://"+tc.host {
				t.Fatalf("got %+v", got)
			}
			if tc.suffix != "" && got.suffix != tc.suffix {
				t.Fatalf("cookie suffix %q, want %q", got.suffix, tc.suffix)
			}
		})
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
