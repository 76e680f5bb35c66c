package jwks

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

func TestSetKeepsGoodKeysOnBadResponses(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedSet(t, iss.JWKSURL(), clock)
	kid := iss.KID()

	faults := map[string]clerktest.Fault{
		"500":                {Status: http.StatusInternalServerError},
		"503":                {Status: http.StatusServiceUnavailable},
		"404":                {Status: http.StatusNotFound},
		"401 invalid secret": {Status: http.StatusUnauthorized, Body: []byte(`{"errors":[{"code":"clerk_key_invalid"}]}`)},
		"garbage":            {Body: []byte("<html>oops</html>")},
		"empty object":       {Body: []byte("{}")},
		"no keys":            {Body: []byte(`{"keys":[]}`)},
		"EC key only": {Body: []byte(`{"keys":[{"kty":"EC","kid":"ec","crv":"P-256",` +
			`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)},
		"weak key only": {Body: func() []byte {
			k, err := clerktest.NewRSAKey(1024)
			if err != nil {
				t.Fatal(err)
			}
			return jwksOf(t, "weak", k.N.Bytes())
		}()},
		"oversized":       {Oversize: true},
		"hang":            {Hang: true},
		"connection drop": {CloseConn: true},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			iss.SetFault(f)
			clock.Advance(testOptions.MinInterval)
			counts := ks.fetches.snapshot()
			_, _, err := ks.Key(context.Background(), "ins_trigger_refetch")
			if !errors.Is(err, ErrUnknownKID) {
				t.Fatalf("got %v, want ErrUnknownKID with the old set still in place", err)
			}
			// One failed attempt. (The issuer may count two requests for
			// it: net/http retries a GET once when a reused connection
			// drops.)
			wantFetchDelta(t, ks, counts, map[string]int{"error/kid_miss": 1})
			mustKey(t, ks.Set, kid)
		})
	}
}

// TestSetSlowBodyTimesOut: the fetch timeout covers reading the body, not
// only getting the headers.
func TestSetSlowBodyTimesOut(t *testing.T) {
	iss := clerktest.Start(t)
	good := iss.JWKS()
	var slow atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slow.Load() {
			_, _ = w.Write(good)
			return
		}
		_, _ = w.Write(good[:len(good)/2])
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)

	clock := fakeclock.New(testNow)
	ks := startClockedSet(t, srv.URL, clock)
	slow.Store(true)
	clock.Advance(testOptions.MinInterval)
	counts := ks.fetches.snapshot()
	begin := time.Now()
	if _, _, err := ks.Key(context.Background(), "ins_trigger_refetch"); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("got %v, want ErrUnknownKID", err)
	}
	if took := time.Since(begin); took < testOptions.Timeout || took > testOptions.Timeout+slack {
		t.Fatalf("a body that never ends took %v to give up on, want about the %v timeout", took, testOptions.Timeout)
	}
	wantFetchDelta(t, ks, counts, map[string]int{"error/kid_miss": 1})
	mustKey(t, ks.Set, iss.KID())
}

// TestSetInvalidSecretKey: Clerk's Backend API refuses the secret key.
// That is logged as an error, without the key, and retried at the slowest
// pace rather than fast.
func TestSetInvalidSecretKey(t *testing.T) {
	iss := clerktest.Start(t)
	url := iss.APIURL() + clerktest.APIJWKSPath
	wrong := "sk_test_" + rand.Text()
	clock := fakeclock.New(testNow)
	ks := newClockedSet(t, url, http.Header{"Authorization": {"Bearer " + wrong}}, testOptions, clock)

	if d := clock.WaitTimer(t); d < maxRetryBackoff/2 || d > maxRetryBackoff {
		t.Fatalf("retry after an invalid secret key in %v, want %v jittered down to half", d, maxRetryBackoff)
	}
	if _, _, err := ks.Key(context.Background(), iss.KID()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	errs := ks.logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "secret key") || errs[0].ContextMap()["status"] != int64(http.StatusUnauthorized) {
		t.Fatalf("want one error log about the secret key with status 401, got %v", errs)
	}

	good := newClockedSet(t, url, http.Header{"Authorization": {"Bearer " + iss.SecretKey()}}, testOptions, fakeclock.New(testNow))
	<-good.Settled()
	mustKey(t, good.Set, iss.KID())
	for _, l := range append(ks.logs.All(), good.logs.All()...) {
		if s := fmt.Sprint(l.Message, l.ContextMap()); strings.Contains(s, "sk_test_") {
			t.Fatalf("a log line holds a secret key: %s", s)
		}
	}
}

// TestOnFetchCounts counts one fetch of each kind: every trigger,
// and a changed, an unchanged and a failed answer.
func TestOnFetchCounts(t *testing.T) {
	iss := clerktest.Start(t)
	clock := fakeclock.New(testNow)
	ks := startClockedSet(t, iss.JWKSURL(), clock)
	wantFetchDelta(t, ks, nil, map[string]int{"ok/startup": 1})

	if _, _, err := ks.Key(context.Background(), "ins_unknown"); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("got %v, want ErrUnknownKID", err)
	}
	clock.Advance(testOptions.MinInterval)
	newKID := iss.Rotate()
	mustKey(t, ks.Set, newKID)
	clock.Advance(testOptions.MinInterval)
	iss.SetFault(clerktest.Fault{Status: http.StatusInternalServerError})
	if _, _, err := ks.Key(context.Background(), "ins_unknown"); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("got %v, want ErrUnknownKID", err)
	}
	iss.ClearFault()
	clock.Advance(testOptions.MinInterval)
	if _, _, err := ks.Refetch(context.Background(), newKID); err != nil {
		t.Fatal(err)
	}
	iss.Rotate()
	clock.Advance(testOptions.Refresh)
	clock.WaitTimer(t)

	wantFetchDelta(t, ks, nil, map[string]int{
		"ok/startup":          1,
		"unchanged/kid_miss":  1,
		"ok/kid_miss":         1,
		"error/kid_miss":      1,
		"unchanged/signature": 1,
		"ok/refresh":          1,
	})
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://clerk.example.com/.well-known/jwks.json":        "https://clerk.example.com/.well-known/jwks.json",
		"https://api.clerk.com/v1/jwks?secret=sk_live_x#frag":    "https://api.clerk.com/v1/jwks",
		"https://user:sk_live_x@clerk.example.com/jwks.json":     "https://clerk.example.com/jwks.json",
		"http://127.0.0.1:8080/.well-known/jwks.json?":           "http://127.0.0.1:8080/.well-known/jwks.json",
		"https://clerk.example.com/%zz?secret=sk_live_x&x=1#abc": "(unparsable URL)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
