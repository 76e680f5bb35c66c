package clustersync

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
)

// ErrCorrupt marks a document that could not be decoded; it is skipped
// and the others are merged.
var ErrCorrupt = errors.New("corrupt denylist document")

// document is what an instance writes under <Prefix>/<id>.json: the
// denials it learned. In version 2 each id maps to [until, before], both
// Unix seconds: the second the denial ends, and the latest iat it refuses
// (math.MaxInt64 for every token), as in
//
//	{"version":2,"instance":"…","written":1767139260,
//	 "sessions":{"sess_1":[1767225660,1767139200]}}
//
// A pair rather than an object: the two numbers always go together, and a
// document of 100,000 denials, read by every instance every round, stays
// about 20 bytes an entry smaller without repeated member names. Version 1
// mapped each id to its until alone; it is still read, as denials of every
// token.
//
// Version 2 also holds forget marks: a user_… or org_… id whose Clerk data
// changed, mapped to the Unix second this instance was told, as in
// "forget":{"user_1":1767139200}. The other instances drop what they
// cached of it (see Syncer.Forget). Only ids and times: never user data.
type document struct {
	Version  int             `json:"version"`
	Instance string          `json:"instance"`
	Written  int64           `json:"written"`
	Sessions json.RawMessage `json:"sessions,omitempty"`
	Users    json.RawMessage `json:"users,omitempty"`
	Forget   json.RawMessage `json:"forget,omitempty"`
}

// contents is what one document holds.
type contents struct {
	denials map[entryKey]denial
	forgets map[string]int64 // id → the Unix second it was forgotten
}

// documentVersion is the version written; versionEveryToken is still read.
const (
	documentVersion   = 2
	versionEveryToken = 1
)

// everyToken is the before of a denial of every token, whatever its iat.
const everyToken = math.MaxInt64

// farFuture is the latest before read as a date (about year 36812); a
// later one refuses every token anyway, and is read as everyToken.
const farFuture = 1 << 40

// entryKey names one denial.
type entryKey struct {
	kind denylist.Kind
	id   string
}

// denial is one id's denial in Unix seconds: until it ends, and the
// latest iat it refuses.
type denial struct {
	until, before int64
}

// denialOf is e in Unix seconds, each bound rounded up: a denial never
// refuses less than it was asked to.
func denialOf(e denylist.Entry) denial {
	d := denial{until: secondsUp(e.Until), before: everyToken}
	if !e.IssuedBefore.IsZero() {
		d.before = secondsUp(e.IssuedBefore)
	}
	return d
}

// join is the denial refusing what d or o refuses. Both bounds only grow,
// so the union of documents is the same in any order.
func (d denial) join(o denial) denial {
	return denial{max(d.until, o.until), max(d.before, o.before)}
}

// entry is d as the denylist takes it.
func (d denial) entry(k entryKey) denylist.Entry {
	e := denylist.Entry{Kind: k.kind, ID: k.id, Until: time.Unix(d.until, 0)}
	if d.before < farFuture {
		e.IssuedBefore = time.Unix(d.before, 0)
	}
	return e
}

// encode writes c as the document of instance.
func encode(instance string, now time.Time, c contents) ([]byte, error) {
	var sessions, users map[string][2]int64
	for k, d := range c.denials {
		m := &sessions
		if k.kind == denylist.User {
			m = &users
		}
		if *m == nil {
			*m = make(map[string][2]int64)
		}
		(*m)[k.id] = [2]int64{d.until, d.before}
	}
	d := document{Version: documentVersion, Instance: instance, Written: now.Unix()}
	var err error
	if d.Sessions, err = marshalIfAny(sessions); err != nil {
		return nil, err
	}
	if d.Users, err = marshalIfAny(users); err != nil {
		return nil, err
	}
	if d.Forget, err = marshalIfAny(c.forgets); err != nil {
		return nil, err
	}
	return json.Marshal(d) // maps are written in key order: equal entries, equal bytes
}

func marshalIfAny[V any](m map[string]V) (json.RawMessage, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

// decode reads a document of either version. Version 1 had no forget
// marks: a forget member there is ignored, as it always was.
func decode(raw []byte) (contents, error) {
	var d document
	if err := json.Unmarshal(raw, &d); err != nil {
		return contents{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if d.Version != documentVersion && d.Version != versionEveryToken {
		return contents{}, fmt.Errorf("%w: version %d, want %d or %d", ErrCorrupt, d.Version, documentVersion, versionEveryToken)
	}
	out := contents{denials: make(map[entryKey]denial)}
	for _, part := range []struct {
		kind denylist.Kind
		raw  json.RawMessage
	}{{denylist.Session, d.Sessions}, {denylist.User, d.Users}} {
		if err := decodeMap(out.denials, part.kind, part.raw, d.Version); err != nil {
			return contents{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	if d.Version == documentVersion {
		var err error
		if out.forgets, err = decodeForgets(d.Forget); err != nil {
			return contents{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	return out, nil
}

// decodeForgets reads the forget marks of a version 2 document.
func decodeForgets(raw json.RawMessage) (map[string]int64, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]int64
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	for id, at := range m {
		if !forgettable(id) || at <= 0 {
			return nil, errors.New("a forget mark without a user or organization id, or its time")
		}
	}
	return m, nil
}

// decodeMap adds the denials of one kind to out.
func decodeMap(out map[entryKey]denial, kind denylist.Kind, raw json.RawMessage, version int) error {
	if len(raw) == 0 {
		return nil
	}
	denials := make(map[string]denial)
	if version == versionEveryToken {
		var m map[string]int64
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		for id, until := range m {
			denials[id] = denial{until, everyToken}
		}
	} else {
		var m map[string][]int64
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		for id, pair := range m {
			if len(pair) != 2 {
				return fmt.Errorf("%d numbers for one id, want [until, before]", len(pair))
			}
			denials[id] = denial{pair[0], pair[1]}
		}
	}
	for id, d := range denials {
		if id == "" || len(id) > denylist.MaxIDLen || d.until <= 0 || d.before <= 0 {
			return errors.New("an entry without a usable id, expiry or issue bound")
		}
		out[entryKey{kind, id}] = d
	}
	return nil
}

// secondsUp is t in Unix seconds, rounded up.
func secondsUp(t time.Time) int64 {
	s := t.Unix()
	if t.After(time.Unix(s, 0)) {
		s++
	}
	return s
}
