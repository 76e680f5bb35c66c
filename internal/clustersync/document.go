package clustersync

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
)

// ErrCorrupt marks a document that could not be decoded; it is skipped
// and the others are merged.
var ErrCorrupt = errors.New("corrupt denylist document")

// document is what an instance writes under <Prefix>/<id>.json: the
// denials it learned, each id with the Unix second its denial ends.
type document struct {
	Version  int              `json:"version"`
	Instance string           `json:"instance"`
	Written  int64            `json:"written"`
	Sessions map[string]int64 `json:"sessions,omitempty"`
	Users    map[string]int64 `json:"users,omitempty"`
}

const documentVersion = 1

// entryKey names one denial.
type entryKey struct {
	kind denylist.Kind
	id   string
}

// encode writes entries (until in Unix seconds) as the document of
// instance.
func encode(instance string, now time.Time, entries map[entryKey]int64) ([]byte, error) {
	d := document{Version: documentVersion, Instance: instance, Written: now.Unix()}
	for k, until := range entries {
		m := &d.Sessions
		if k.kind == denylist.User {
			m = &d.Users
		}
		if *m == nil {
			*m = make(map[string]int64)
		}
		(*m)[k.id] = until
	}
	return json.Marshal(d) // maps are written in key order: equal entries, equal bytes
}

// decode reads a document into its entries.
func decode(raw []byte) (map[entryKey]int64, error) {
	var d document
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if d.Version != documentVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, d.Version, documentVersion)
	}
	out := make(map[entryKey]int64, len(d.Sessions)+len(d.Users))
	for kind, m := range map[denylist.Kind]map[string]int64{denylist.Session: d.Sessions, denylist.User: d.Users} {
		for id, until := range m {
			if id == "" || len(id) > denylist.MaxIDLen || until <= 0 {
				return nil, fmt.Errorf("%w: an entry without a usable id or expiry", ErrCorrupt)
			}
			out[entryKey{kind, id}] = until
		}
	}
	return out, nil
}

// untilSeconds is the Unix second at which a denial until t ends, rounded
// up: a denial never ends before it was asked to.
func untilSeconds(t time.Time) int64 {
	s := t.Unix()
	if t.After(time.Unix(s, 0)) {
		s++
	}
	return s
}
