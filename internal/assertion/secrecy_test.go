package assertion

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// secretsOf lists the ways the private keys of a stored document could be
// spelled: the lines of their PEM, and the private scalar in hex, decimal
// and base64.
func secretsOf(t *testing.T, doc []byte) []string {
	t.Helper()
	keys, err := decodeDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	var d document
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sk := range d.Keys {
		for _, line := range strings.Split(sk.PrivateKey, "\n") {
			if len(line) > 0 && !strings.HasPrefix(line, "-----") {
				out = append(out, line[len(line)/2:]) // the common PKCS#8 prefix is no secret
			}
		}
	}
	for _, k := range keys {
		raw, err := k.priv.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, hex.EncodeToString(raw), k.priv.D.String(),
			base64.StdEncoding.EncodeToString(raw)[:40], base64.RawURLEncoding.EncodeToString(raw)[:40])
	}
	return out
}

func showsSecret(text string, secrets []string) bool {
	for _, s := range secrets {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// Nothing a KeyRing formats, marshals, returns as an error or logs holds a
// private key, through rotation and every kind of corrupt document.
func TestPrivateKeysNeverShown(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	core, logs := observer.New(zapcore.DebugLevel)
	var encoded bytes.Buffer // the log as a JSON encoder writes it
	jsonCore := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&encoded), zapcore.DebugLevel)
	r, err := New(s, Options{Clock: clock}, zap.New(zapcore.NewTee(core, jsonCore)))
	if err != nil {
		t.Fatal(err)
	}
	mustRefresh(t, r)
	clock.Advance(12*time.Hour + time.Minute)
	mustRefresh(t, r) // a second key, so rotation is logged too
	good := readDoc(t, s)
	secrets := secretsOf(t, good)

	// The detector finds a key that is shown: the checks below mean something.
	if !showsSecret(string(good), secrets) || !showsSecret(fmt.Sprintf("%+v", r.signer(clock.Now()).priv), secrets) {
		t.Fatal("the secret detector misses a private key in plain sight")
	}

	shown := map[string]string{
		"%v":           fmt.Sprintf("%v", r),
		"%+v":          fmt.Sprintf("%+v", r),
		"%#v":          fmt.Sprintf("%#v", r),
		"%s":           fmt.Sprintf("%s", r),
		"Keys %#v":     fmt.Sprintf("%#v", r.Keys()),
		"Options %#v":  fmt.Sprintf("%#v", r.opts),
		"MarshalJSON":  mustJSON(t, r),
		"Keys as JSON": mustJSON(t, r.Keys()),
	}
	jwks, _ := r.JWKS()
	shown["JWKS"] = string(jwks)
	r.log.Info("a ring in a log line", zap.Any("ring", r), zap.Stringer("stringer", r))
	for _, c := range corruptions {
		if err := os.WriteFile(docPath(s), c.mutate(t, good), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := r.Refresh(context.Background()); err != nil {
			shown["refresh error, "+c.name] = err.Error()
		}
		fresh := newRing(t, sameFolder(s), clock, Options{})
		_ = fresh.Refresh(context.Background())
		if _, err := fresh.Sign(claimsAt(clock.Now(), time.Minute)); err != nil {
			shown["sign error, "+c.name] = err.Error()
		}
	}
	for i, e := range logs.All() {
		shown[fmt.Sprintf("log %d: %s", i, e.Message)] = fmt.Sprint(e.ContextMap())
	}
	shown["JSON log"] = encoded.String()
	if len(logs.All()) < len(corruptions)+3 {
		t.Fatalf("only %d log entries: the corrupt reads were not logged", len(logs.All()))
	}

	for what, text := range shown {
		t.Run(what, func(t *testing.T) {
			if showsSecret(text, secrets) {
				t.Errorf("shows private key material:\n%s", text)
			}
		})
	}
}
