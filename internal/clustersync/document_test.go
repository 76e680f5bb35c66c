package clustersync

import (
	"maps"
	"os"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

// A document holds both bounds of each denial and the time of each forget
// mark, reads back as written, and is the same bytes for the same entries
// whatever the order they came in.
func TestDocumentRoundTrip(t *testing.T) {
	until := testNow.Add(time.Hour).Unix()
	denials := map[entryKey]denial{
		{denylist.Session, "sess_1"}: {until, testNow.Unix()},
		{denylist.Session, "sess_2"}: {until + 60, everyToken},
		{denylist.User, "user_1"}:    {until, testNow.Add(-time.Minute).Unix()},
	}
	forgets := map[string]int64{"user_1": testNow.Unix(), "org_1": testNow.Unix() - 5}
	for _, tc := range []struct {
		name string
		c    contents
		want string
	}{
		{"denials", contents{denials: denials}, `{"version":2,"instance":"a","written":1772366400,` +
			`"sessions":{"sess_1":[1772370000,1772366400],"sess_2":[1772370060,9223372036854775807]},` +
			`"users":{"user_1":[1772370000,1772366340]}}`},
		{"forget marks", contents{denials: map[entryKey]denial{}, forgets: forgets}, `{"version":2,"instance":"a","written":1772366400,` +
			`"forget":{"org_1":1772366395,"user_1":1772366400}}`},
		{"both", contents{denials: denials, forgets: forgets}, `{"version":2,"instance":"a","written":1772366400,` +
			`"sessions":{"sess_1":[1772370000,1772366400],"sess_2":[1772370060,9223372036854775807]},` +
			`"users":{"user_1":[1772370000,1772366340]},"forget":{"org_1":1772366395,"user_1":1772366400}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := encode("a", testNow, tc.c)
			mustDo(t, err)
			if string(raw) != tc.want {
				t.Errorf("encoded\n%s\nwant\n%s", raw, tc.want)
			}
			got, err := decode(raw)
			mustDo(t, err)
			if !maps.Equal(got.denials, tc.c.denials) || !maps.Equal(got.forgets, tc.c.forgets) {
				t.Errorf("decoded %v, want %v", got, tc.c)
			}
			for range 20 { // map iteration order varies from call to call
				again, err := encode("a", testNow, contents{maps.Clone(tc.c.denials), maps.Clone(tc.c.forgets)})
				mustDo(t, err)
				if string(again) != string(raw) {
					t.Fatalf("equal entries, different bytes:\n%s\n%s", raw, again)
				}
			}
		})
	}
}

// A version 1 document, written before denials had an issue bound, is
// read as denials of every token. It had no forget marks: a forget member
// there is ignored, as it always was.
func TestDocumentVersion1(t *testing.T) {
	raw := []byte(`{"version":1,"instance":"old","written":1772366400,"sessions":{"sess_1":1772370000},"users":{"user_1":1772370060},` +
		`"forget":{"user_1":"not a mark"}}`)
	got, err := decode(raw)
	mustDo(t, err)
	want := map[entryKey]denial{
		{denylist.Session, "sess_1"}: {1772370000, everyToken},
		{denylist.User, "user_1"}:    {1772370060, everyToken},
	}
	if !maps.Equal(got.denials, want) || got.forgets != nil {
		t.Fatalf("decoded %v, want %v and no marks", got, want)
	}
	for k, d := range got.denials {
		if e := d.entry(k); !e.IssuedBefore.IsZero() {
			t.Errorf("%s: IssuedBefore %v, want zero (every token)", k.id, e.IssuedBefore)
		}
	}
}

// An Entry's bounds become whole seconds rounded up, so a denial never
// refuses less; the zero IssuedBefore, and any bound past year 36812, mean
// every token.
func TestDenialOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		e      denylist.Entry
		want   denial
		before time.Time // the IssuedBefore read back
	}{
		{"whole seconds", denylist.Entry{Until: testNow.Add(time.Hour), IssuedBefore: testNow},
			denial{testNow.Unix() + 3600, testNow.Unix()}, testNow},
		{"milliseconds round up", denylist.Entry{Until: testNow.Add(time.Millisecond), IssuedBefore: testNow.Add(1500 * time.Millisecond)},
			denial{testNow.Unix() + 1, testNow.Unix() + 2}, testNow.Add(2 * time.Second)},
		{"every token", denylist.Entry{Until: testNow}, denial{testNow.Unix(), everyToken}, time.Time{}},
		{"far future", denylist.Entry{Until: testNow, IssuedBefore: time.Unix(farFuture, 0)},
			denial{testNow.Unix(), farFuture}, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := denialOf(tc.e)
			if d != tc.want {
				t.Fatalf("denialOf = %v, want %v", d, tc.want)
			}
			if got := d.entry(entryKey{denylist.User, "user_1"}).IssuedBefore; !got.Equal(tc.before) {
				t.Errorf("read back as IssuedBefore %v, want %v", got, tc.before)
			}
		})
	}
}

// A denial crosses the storage with its issue bound: another instance
// refuses the tokens issued up to the event and passes those issued
// after; a document of an instance not yet upgraded denies every token.
func TestIssueBoundAcrossInstances(t *testing.T) {
	clock := fakeclock.New(testNow)
	s := newStorage(t)
	a := newInstance(t, s, clock, "a")
	b := newInstance(t, sameFolder(s), clock, "b")
	event := testNow.Add(-time.Minute)
	a.sync.Deny(denylist.Entry{Kind: denylist.User, ID: "user_banned", Until: testNow.Add(time.Hour), IssuedBefore: event})
	mustSync(t, a) // makes the folder
	mustDo(t, os.WriteFile(docPath(s, "old"),
		[]byte(`{"version":1,"instance":"old","written":1772366400,"users":{"user_old":9999999999}}`), 0o600))
	mustSync(t, b)
	for _, tc := range []struct {
		name string
		user string
		iat  time.Time
		want denylist.Kind
	}{
		{"issued before the ban", "user_banned", event.Add(-time.Hour), denylist.User},
		{"issued within the margin", "user_banned", event.Add(denylist.SkewMargin), denylist.User},
		{"issued after an unban", "user_banned", testNow, denylist.None},
		{"no iat", "user_banned", noIAT, denylist.User},
		{"version 1 document: issued later", "user_old", testNow, denylist.User},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.list.Check("", tc.user, tc.iat, clock.Now()); got != tc.want {
				t.Errorf("the other instance: %v, want %v", got, tc.want)
			}
		})
	}
}
