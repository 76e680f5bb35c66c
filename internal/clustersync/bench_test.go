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

// What a webhook's denial adds to its answer: Flush rewriting this
// instance's document on a FileStorage, the document holding the new
// denial alone or next to 1,000 others (it is rewritten whole).
func BenchmarkFlush(b *testing.B) {
	for _, held := range []int{0, 1_000} {
		b.Run(fmt.Sprint(held, " held"), func(b *testing.B) {
			clock := fakeclock.New(testNow)
			syncer, err := New(newStorage(b), denylist.New(denylist.Options{Now: clock.Now}), Options{InstanceID: "a", Clock: clock}, nil)
			if err != nil {
				b.Fatal(err)
			}
			for n := range held {
				syncer.Deny(revoke(fmt.Sprintf("sess_%027d", n), testNow))
			}
			if err := syncer.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				// A later expiry each time, so that every Flush writes.
				i++
				syncer.Deny(denylist.Entry{Kind: denylist.Session, ID: "sess_new", Until: testNow.Add(2*time.Hour + time.Duration(i)*time.Second)})
				if err := syncer.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			if st := syncer.Stats(); st.Writes < uint64(i) {
				b.Fatalf("%d writes for %d flushes", st.Writes, i)
			}
		})
	}
}
