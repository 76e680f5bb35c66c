package assertion

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// certmagic's FileStorage keeps each lock file fresh from a goroutine of its
// own that lingers for up to five seconds after Unlock: not ours to end.
var ignoreLockKeeper = goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh")

// TestMain fails the package if any test leaves a goroutine of a KeyRing
// behind: Stop must end them all.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, ignoreLockKeeper)
}

// verifyNoLeak checks, once t and its cleanups are done, that it left no
// goroutine behind. Call it first, so that its cleanup runs last.
func verifyNoLeak(t *testing.T) {
	t.Helper()
	opts := []goleak.Option{goleak.IgnoreCurrent(), ignoreLockKeeper}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testOptions are the defaults, spelled out so the timelines below can be
// read against them: keys sign for a day, the schedule reaches 12h ahead.
var testOptions = Options{
	RotateEvery:  24 * time.Hour,
	Overlap:      time.Hour,
	RefreshEvery: time.Minute,
}

// newStorage is a real FileStorage in a fresh folder.
func newStorage(t *testing.T) *certmagic.FileStorage {
	return &certmagic.FileStorage{Path: t.TempDir()}
}

// sameFolder is another FileStorage over the folder of s, as a second Caddy
// process sharing the volume would have.
func sameFolder(s *certmagic.FileStorage) *certmagic.FileStorage {
	return &certmagic.FileStorage{Path: s.Path}
}

func newRing(t *testing.T, s certmagic.Storage, clock Clock, opts Options) *KeyRing {
	t.Helper()
	opts.Clock = clock
	r, err := New(s, opts, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func mustRefresh(t *testing.T, rings ...*KeyRing) {
	t.Helper()
	for _, r := range rings {
		if err := r.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func mustSign(t *testing.T, r *KeyRing, claims any) string {
	t.Helper()
	tok, err := r.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claimsAt are the claims of an assertion minted at now that lives ttl.
func claimsAt(now time.Time, ttl time.Duration) map[string]any {
	return map[string]any{
		"sub": "user_2abc",
		"iss": "https://example.com",
		"aud": "upstream-a",
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
}

// verify checks token with jwx against a JWKS body as an upstream would,
// at now (aud upstream-a), and returns the parsed token.
func verify(token string, jwks []byte, now time.Time) (jwt.Token, error) {
	set, err := jwk.Parse(jwks)
	if err != nil {
		return nil, err
	}
	return jwt.Parse([]byte(token),
		jwt.WithKeySet(set), // kid and the key's alg must match, as upstreams require
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithAudience("upstream-a"),
	)
}

// docPath is where a FileStorage keeps the key document of a ring with
// default options.
func docPath(s *certmagic.FileStorage) string {
	return filepath.Join(s.Path, filepath.FromSlash(DefaultOptions.Prefix), "keys.json")
}

func readDoc(t *testing.T, s *certmagic.FileStorage) []byte {
	t.Helper()
	b, err := os.ReadFile(docPath(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kids(infos []KeyInfo) []string {
	out := make([]string, len(infos))
	for i, k := range infos {
		out[i] = k.KID
	}
	return out
}

var _ Clock = (*fakeclock.Clock)(nil)
