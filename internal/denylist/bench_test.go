package denylist

import (
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// The look-up every request makes, against a list of 100,000 denied
// sessions: a miss (the common case), hits, and the empty list of an
// instance that was never told of a revocation. The token was issued
// before the denials, so a hit refuses it.
func BenchmarkCheck(b *testing.B) {
	clock := fakeclock.New(testNow)
	full := newList(clock, 0)
	addSessions(full, 100_000, testNow.Add(time.Hour))
	full.Add(Entry{Kind: User, ID: "user_banned", Until: testNow.Add(time.Hour), IssuedBefore: testNow})
	iat := testNow.Add(-30 * time.Second)
	empty := newList(clock, 0)
	for _, bc := range []struct {
		name          string
		l             *List
		session, user string
	}{
		{"empty list", empty, "sess_2abcdefghijklmnopqrstuvwxyz", "user_2abcdefghijklmnopqrstuvwxyz"},
		{"miss", full, "sess_2abcdefghijklmnopqrstuvwxyz", "user_2abcdefghijklmnopqrstuvwxyz"},
		{"session denied", full, sessionID(4242), "user_2abcdefghijklmnopqrstuvwxyz"},
		{"user denied", full, "sess_2abcdefghijklmnopqrstuvwxyz", "user_banned"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.l.Check(bc.session, bc.user, iat, testNow)
			}
		})
		b.Run(bc.name+" parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bc.l.Check(bc.session, bc.user, iat, testNow)
				}
			})
		})
	}
}

// One denial learned from a webhook, added to a list of 100,000: the
// shard copy it costs.
func BenchmarkAddOne(b *testing.B) {
	clock := fakeclock.New(testNow)
	l := newList(clock, 0)
	addSessions(l, 100_000, testNow.Add(time.Hour))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Add(Entry{Kind: User, ID: sessionID(i), Until: testNow.Add(time.Hour)})
		i++
	}
}
