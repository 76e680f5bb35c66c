package clustersync

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
)

func TestNew(t *testing.T) {
	list := denylist.New(denylist.Options{})
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"defaults", Options{}, true},
		{"negative period", Options{SyncEvery: -time.Second}, false},
		{"negative timeout", Options{StorageTimeout: -time.Second}, false},
		{"negative retention", Options{ForgetRetention: -time.Minute}, false},
		{"retention within a sync period", Options{SyncEvery: time.Minute, ForgetRetention: time.Minute}, false},
		{"retention longer than the sync period", Options{SyncEvery: time.Minute, ForgetRetention: time.Minute + time.Second}, true},
		{"id with a slash", Options{InstanceID: "a/b"}, false},
		{"id dot-dot", Options{InstanceID: ".."}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(newStorage(t), list, tc.opts, nil)
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok %v", err, tc.ok)
			}
			if err == nil && s.ownKey != DefaultPrefix+"/"+processID+".json" {
				t.Errorf("own document %q", s.ownKey)
			}
		})
	}
	if _, err := New(nil, list, Options{}, nil); err == nil {
		t.Error("a Syncer without storage was made")
	}
	if processID == "" || strings.ContainsAny(processID, "/\\.") {
		t.Errorf("process id %q is not a key segment", processID)
	}
}
