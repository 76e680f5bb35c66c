package jwks

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestDocumentedBodyLimit ties the key set response limit that the
// module's README.md and SECURITY.md state to maxJWKSBody, which the root
// package's TestDocumentedDefaults cannot see.
func TestDocumentedBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		file, says string
	}{
		{"../../README.md", `never replaced by a bad answer \([^)]*over\s+(\d+)\s+MiB`},
		{"../../SECURITY.md", `key set responses are capped at\s+(\d+)\s+MiB`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(tc.says).FindAllSubmatch(b, -1)
			if len(m) != 1 {
				t.Fatalf("%s matches %s %d times, want once: reword the test along with the docs", tc.file, tc.says, len(m))
			}
			if mib, _ := strconv.Atoi(string(m[0][1])); mib<<20 != maxJWKSBody {
				t.Errorf("%s says %q, the code allows %d bytes", tc.file, m[0][0], maxJWKSBody)
			}
		})
	}
}
