// Package leakcheck finds the goroutines a test leaves behind: fetchers,
// request-triggered fetches, HTTP connections.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// Verify checks, once t and all its cleanups are done, that it left no
// goroutine behind. Call it first, so that its cleanup runs last. Goroutines
// that were already there (earlier tests, Caddy) are not the test's concern.
func Verify(t testing.TB) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// Stacks returns the stack of every goroutine, one per element.
func Stacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}
