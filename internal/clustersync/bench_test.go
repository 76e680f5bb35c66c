package clustersync

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// A round over a FileStorage holding 100,000 denied sessions in the
// documents of 4 instances: the first (a starting instance loads and
// merges everything) and a steady one (nothing changed: the documents are
// loaded and hashed, not decoded).
func BenchmarkRound(b *testing.B) {
	const instances, perInstance = 4, 25_000
	clock := fakeclock.New(testNow)
	s := newStorage(b)
	for i := range instances {
		list := denylist.New(denylist.Options{Now: clock.Now})
		syncer, err := New(s, list, Options{InstanceID: fmt.Sprint("i", i), Clock: clock}, nil)
		if err != nil {
			b.Fatal(err)
		}
		entries := make([]denylist.Entry, perInstance)
		for n := range entries {
			entries[n] = denylist.Entry{Kind: denylist.Session, ID: fmt.Sprintf("sess_%d_%022d", i, n), Until: testNow.Add(time.Hour)}
		}
		syncer.Deny(entries...)
		if err := syncer.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	newReader := func() *Syncer {
		syncer, err := New(sameFolder(s), denylist.New(denylist.Options{Now: clock.Now}), Options{InstanceID: "reader", Clock: clock}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return syncer
	}
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			if err := newReader().Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("steady", func(b *testing.B) {
		r := newReader()
		if err := r.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := r.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
