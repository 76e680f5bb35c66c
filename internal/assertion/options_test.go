package assertion

import (
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr bool
		check   func(t *testing.T, o Options)
	}{
		{name: "zero is the defaults", opts: Options{}, check: func(t *testing.T, o Options) {
			if o.RotateEvery != 24*time.Hour || o.Overlap != time.Hour || o.RefreshEvery != time.Minute ||
				o.Prefix != "clerk_auth/identity_assertion" || o.Clock == nil {
				t.Errorf("defaults are %+v", o)
			}
			if o.lead() != 12*time.Hour {
				t.Errorf("lead %v, want half a day", o.lead())
			}
		}},
		{name: "prefix slashes trimmed", opts: Options{Prefix: "/a/b/"}, check: func(t *testing.T, o Options) {
			if o.Prefix != "a/b" {
				t.Errorf("prefix %q", o.Prefix)
			}
		}},
		{name: "negative rotation", opts: Options{RotateEvery: -time.Hour}, wantErr: true},
		{name: "negative overlap", opts: Options{Overlap: -time.Hour}, wantErr: true},
		{name: "refresh slower than the overlap", opts: Options{RefreshEvery: 2 * time.Hour}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(newStorage(t), tc.opts, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New: %v, want error %v", err, tc.wantErr)
			}
			if tc.check != nil {
				o, _ := tc.opts.withDefaults()
				tc.check(t, o)
			}
		})
	}
	if _, err := New(nil, Options{}, nil); err == nil {
		t.Error("New accepted a nil storage")
	}
}
