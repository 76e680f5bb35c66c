package clerktest

// TB is the part of testing.TB that Start uses. Start takes it instead of
// testing.TB so that this package does not import testing: the demo and
// benchmark binaries link clerktest whole, and importing testing would drag
// the test framework (and its command-line flags) into them.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Start is New for tests: it fails tb if the instance cannot be started and
// registers Close with tb.Cleanup. Any *testing.T, *testing.B or *testing.F
// is a TB.
func Start(tb TB) *Issuer {
	tb.Helper()
	i, err := New()
	if err != nil {
		tb.Fatalf("clerktest.Start: %v", err)
	}
	tb.Cleanup(i.Close)
	return i
}
