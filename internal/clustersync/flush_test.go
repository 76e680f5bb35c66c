package clustersync

import (
	"context"
	"os"
	"testing"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// Flush writes the denials learned here at once, without a round, and
// says whether they reached the storage: an unusable storage's error comes
// back, is counted, and leaves them to be written once it is usable.
func TestFlush(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	in := newInstance(t, s, clock, "a") // not started: no round runs
	doc := docPath(s, "a")
	var restore func()

	for _, step := range []struct {
		name     string
		before   func()
		deny     string // a session denied before the flush; "" for none
		fails    bool
		writes   uint64 // Stats().Writes after it
		failures uint64 // Stats().Failures after it
		stored   []string
	}{
		{"a denial", nil, "sess_1", false, 1, 0, []string{"sess_1"}},
		{"nothing new", nil, "", false, 1, 0, []string{"sess_1"}},
		{"storage unusable", func() { restore = breakStorage(t, s) }, "sess_2", true, 1, 1, nil},
		{"storage back", func() { restore() }, "", false, 2, 1, []string{"sess_1", "sess_2"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before()
			}
			if step.deny != "" {
				in.sync.Deny(revoke(step.deny, clock.Now()))
			}
			err := in.sync.Flush(context.Background())
			if (err != nil) != step.fails {
				t.Fatalf("Flush: %v, want failure %v", err, step.fails)
			}
			if st := in.sync.Stats(); st.Writes != step.writes || st.Failures != step.failures {
				t.Errorf("stats %+v, want %d writes and %d failures", st, step.writes, step.failures)
			}
			if step.deny != "" && !in.denies(step.deny, clock.Now()) {
				t.Error("the denial is not denied here")
			}
			if step.stored == nil {
				return
			}
			raw, err := os.ReadFile(doc)
			mustDo(t, err)
			c, err := decode(raw)
			mustDo(t, err)
			for _, sid := range step.stored {
				if c.denials[entryKey{denylist.Session, sid}].until == 0 {
					t.Errorf("the stored document lacks %s: %s", sid, raw)
				}
			}
		})
	}
}
