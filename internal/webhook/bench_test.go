package webhook

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// What one delivery costs: a genuine session.revoked, and the worst a
// client without the secret can send (a body at the cap, a fresh
// timestamp, a wrong signature), through Read as a handler calls it.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b, Options{})
	good, goodHeader := f.delivery("session.revoked", revoked("sess_1"))
	forged, _ := f.delivery("session.revoked", revoked("sess_1"))
	forged.Body = append(forged.Body, bytes.Repeat([]byte(" "), DefaultMaxBodySize-len(forged.Body))...)
	forgedHeader := forged.Header("whsec_" + strings.Repeat("A", 32))
	for _, bc := range []struct {
		name   string
		body   []byte
		header http.Header
	}{
		// Duplicates after the first: the whole path but the remembering.
		{"genuine event", good.Body, goodHeader},
		{"forged, 256 KiB", forged.Body, forgedHeader},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bc.body))
				r.Header = bc.header
				if _, err := f.v.Read(r); err != nil && !errors.Is(err, ErrDuplicate) && !errors.Is(err, ErrSignature) {
					b.Fatal(err)
				}
			}
		})
	}
}
