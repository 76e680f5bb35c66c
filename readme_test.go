package clerkauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The README goldens: every Caddyfile the documentation shows is adapted
// with `caddy adapt`'s adapter and compared with testdata/readme/<slug>.json,
// and its clerk_auth handlers are provisioned, so the docs cannot drift
// from the code. `go test -run TestReadme -update` rewrites the goldens.
//
// Which blocks, and how:
//   - every ```caddyfile fence of README.md and examples/**/README.md, and
//     the whole of Caddyfile.example;
//   - a block holding a <placeholder> (<matcher>, <url>..., <pk_test_...>)
//     is grammar notation, not a config: it is skipped, and
//     TestReadmeSynopsis checks it against the parser instead;
//   - a block starting with a bare directive name (clerk_auth,
//     handle_errors, ...) rather than a site address or a global options
//     block is a snippet: it is adapted inside a `:8080 { ... }` site;
//   - {$VAR} environment variables are unset while adapting, so goldens
//     hold the documented defaults whatever the environment;
//   - {env.VAR} placeholders, read at provision time, get the sample values
//     of readmeEnv.

var updateReadme = flag.Bool("update", false, "rewrite testdata/readme/*.json from the README Caddyfiles")

const readmeGoldens = "testdata/readme"

// readmeEnv holds sample values for the {env.*} placeholders the docs use.
var readmeEnv = map[string]string{
	"CLERK_PUBLISHABLE_KEY":      "pk_test_" + base64.StdEncoding.EncodeToString([]byte("clerk.example.com$")),
	"CLERK_PUBLISHABLE_KEY_DEV":  "pk_test_" + base64.StdEncoding.EncodeToString([]byte("clerk.staging.example.com$")),
	"CLERK_PUBLISHABLE_KEY_PROD": "pk_live_" + base64.StdEncoding.EncodeToString([]byte("clerk.example.com$")),
	"CLERK_JWT_KEY_PROD":         readmeJWTKey,
	"CLERK_SECRET_KEY":           "sk_test_readme",
	"CLERK_WEBHOOK_SECRET":       "whsec_" + base64.StdEncoding.EncodeToString([]byte("readme webhook signing secret")),
}

// readmeJWTKey is a real RSA-2048 public key, so jwt_key provisions.
const readmeJWTKey = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnycv5fHDaxUyKOsmPTWD7WIr7UdbUrJ65fNEmxFtig/IenaxGJmB7iIDOxF+kDfgNhYgI2DF/IwXHpik4+0wccmr2ydZsxhw/sGADfUl7LRJ34yh6oW3Mbo2lAtbH3prFa3ckg4DtfhCAGtQsa4aZh1t7Pd7k+sz+d/0WSRzqyZBHgxaz6vtdd5a5jA9rJAgO0ki/6WYzqW/sYQXBWtWYyqccyJxwtBLv/0PpXjgd64itVVOVE4hw+jal7wDC/Cm65r9yRtRXJ82AKXVeQ0r8vGJFVwYbNFPa24OdgMdI5nrLMF2eKozt831+ndapHkvUPRC/aebRMPu/ZMVDxyW5QIDAQAB"

var (
	// readmeSynopsis spots grammar notation: a <word> with no space inside.
	readmeSynopsis = regexp.MustCompile(`<[a-z][^<>\s]*>`)
	// readmeDirective is a bare directive name; "localhost" is a site.
	readmeDirective = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	readmeEnvVar    = regexp.MustCompile(`\{\$([A-Za-z_][A-Za-z0-9_]*)`)
	readmeEnvPh     = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)
	readmeFence     = regexp.MustCompile("^(\\s*)(```+|~~~+)\\s*caddyfile\\s*$")
	readmeSlugChars = regexp.MustCompile(`[^a-z0-9._]+`)
)

// readmeBlock is one Caddyfile of the docs.
type readmeBlock struct {
	file string // README.md, Caddyfile.example, examples/x/README.md
	line int    // line of the block's first Caddyfile line
	body string
	slug string // golden name
}

func (b readmeBlock) where() string { return b.file + ":" + strconv.Itoa(b.line) }

// readmeBlocks collects the Caddyfiles of every doc, synopses included.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	files := []string{"README.md", "Caddyfile.example"}
	err := filepath.WalkDir("examples", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "README.md" {
			files = append(files, filepath.ToSlash(path))
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "\r\n", "\n")
		src := readmeSlug(strings.TrimSuffix(file, ".md"))
		if !strings.HasSuffix(file, ".md") {
			blocks = append(blocks, readmeBlock{file: file, line: 1, body: text, slug: src})
			continue
		}
		found := fencedCaddyfiles(t, file, text)
		seen := map[string]int{}
		for i := range found {
			name := firstToken(found[i].body)
			if name == "{" {
				name = "global-options" // a block that opens with them
			}
			slug := src + "-" + readmeSlug(name)
			if seen[slug]++; seen[slug] > 1 {
				slug += "-" + strconv.Itoa(seen[slug])
			}
			found[i].slug = slug
		}
		blocks = append(blocks, found...)
	}
	return blocks
}

// fencedCaddyfiles returns the ```caddyfile blocks of a Markdown file.
func fencedCaddyfiles(t *testing.T, file, text string) []readmeBlock {
	var blocks []readmeBlock
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		m := readmeFence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, fence := m[1], m[2]
		start := i + 1
		var body strings.Builder
		for i++; ; i++ {
			if i == len(lines) {
				t.Fatalf("%s:%d: the caddyfile block is never closed", file, start)
			}
			if strings.TrimSpace(lines[i]) == fence {
				break
			}
			body.WriteString(strings.TrimPrefix(lines[i], indent) + "\n")
		}
		blocks = append(blocks, readmeBlock{file: file, line: start + 1, body: body.String()})
	}
	return blocks
}

// firstToken is the block's first Caddyfile token: a site address, a
// directive, or "{" for a global options block.
func firstToken(body string) string {
	tokens, err := caddyfile.Tokenize([]byte(body), "")
	if err != nil || len(tokens) == 0 {
		return ""
	}
	return tokens[0].Text
}

func readmeSlug(s string) string {
	return strings.Trim(readmeSlugChars.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// snippet reports whether the block is a snippet to wrap in a site.
func (b readmeBlock) snippet() bool {
	tok := firstToken(b.body)
	return tok != "localhost" && readmeDirective.MatchString(tok)
}

// docLine maps a line of the adapted input back to the docs.
func (b readmeBlock) docLine(n int) int {
	if b.snippet() {
		n-- // the `:8080 {` line
	}
	return b.line + n - 1
}

// inDocLines rewrites the adapter's "<file>:<line>" positions, which count
// lines of the adapted input, into lines of the doc.
func (b readmeBlock) inDocLines(msg string) string {
	re := regexp.MustCompile(regexp.QuoteMeta(b.file) + `:(\d+)`)
	return re.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(re.FindStringSubmatch(m)[1])
		return b.file + ":" + strconv.Itoa(b.docLine(n))
	})
}

// readmeCaddyfile is what gets adapted: the block itself, or a snippet
// inside a site.
func (b readmeBlock) readmeCaddyfile() string {
	if !b.snippet() {
		return b.body
	}
	var s strings.Builder
	s.WriteString(":8080 {\n")
	for line := range strings.SplitSeq(strings.TrimRight(b.body, "\n"), "\n") {
		if line != "" {
			line = "\t" + line
		}
		s.WriteString(line + "\n")
	}
	s.WriteString("}\n")
	return s.String()
}

func TestReadmeCaddyfiles(t *testing.T) {
	blocks := readmeBlocks(t)
	adapter := caddyconfig.GetAdapter("caddyfile")
	produced := map[string]bool{}
	for _, b := range blocks {
		if readmeSynopsis.MatchString(b.body) {
			t.Logf("%s: skipped: grammar notation (%s)", b.where(), readmeSynopsis.FindString(b.body))
			continue
		}
		produced[b.slug+".json"] = true
		t.Run(b.slug, func(t *testing.T) {
			for _, m := range readmeEnvVar.FindAllStringSubmatch(b.body, -1) {
				t.Setenv(m[1], "") // restores the variable after the test
				os.Unsetenv(m[1])
			}
			input := b.readmeCaddyfile()
			cfgJSON, warnings, err := adapter.Adapt([]byte(input), map[string]any{"filename": b.file})
			if err != nil {
				t.Fatalf("%s: the Caddyfile does not adapt: %s\n%s", b.where(), b.inDocLines(err.Error()), input)
			}
			for _, w := range warnings {
				t.Errorf("%s:%d: caddy adapt warns: %s", b.file, b.docLine(w.Line), w.Message)
			}
			var got bytes.Buffer
			if err := json.Indent(&got, cfgJSON, "", "\t"); err != nil {
				t.Fatal(err)
			}
			got.WriteString("\n")
			golden := filepath.Join(readmeGoldens, b.slug+".json")
			if *updateReadme {
				if err := os.MkdirAll(readmeGoldens, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(golden); err != nil {
				t.Errorf("%s: %v (run go test -run TestReadme -update to create it)", b.where(), err)
			} else if diff := firstDifference(string(want), got.String()); diff != "" {
				t.Errorf("%s: the Caddyfile now adapts differently from %s (if intended, run go test -run TestReadme -update):\n%s",
					b.where(), golden, diff)
			}

			provisionReadmeHandlers(t, b, cfgJSON)
		})
	}
	if len(produced) == 0 {
		t.Fatal("no Caddyfile found in the docs")
	}
	checkStaleGoldens(t, produced)
}

// provisionReadmeHandlers provisions each clerk_auth handler of the
// adapted block as Caddy would. Real hosts such as clerk.example.com are
// fine offline: provisioning never waits for the key fetch, and cleanup
// cancels it.
func provisionReadmeHandlers(t *testing.T, b readmeBlock, cfgJSON []byte) {
	t.Helper()
	for _, m := range readmeEnvPh.FindAllStringSubmatch(b.body, -1) {
		v, ok := readmeEnv[m[1]]
		if !ok {
			t.Fatalf("%s: uses {env.%s}: give it a sample value in readmeEnv", b.where(), m[1])
		}
		t.Setenv(m[1], v)
	}
	routes, err := findClerkRoutes(cfgJSON)
	if err != nil {
		t.Fatal(err)
	}
	for i := range routes {
		ctx, cancel := caddy.NewContext(storageContext(t))
		_, err := provisionClerkHandler(ctx, routes[i].raw)
		cancel()
		if err != nil {
			t.Errorf("%s: %s does not provision: %v", b.where(), &routes[i], err)
		}
	}
}

// checkStaleGoldens fails on (or, with -update, removes) goldens of blocks
// that are gone from the docs.
func checkStaleGoldens(t *testing.T, produced map[string]bool) {
	entries, err := os.ReadDir(readmeGoldens)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if produced[e.Name()] {
			continue
		}
		path := filepath.Join(readmeGoldens, e.Name())
		if *updateReadme {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s matches no Caddyfile in the docs any more (run go test -run TestReadme -update to remove it)", path)
	}
}

// firstDifference shows the first line where got departs from want, with
// a little context, or "" if they are equal.
func firstDifference(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	from := max(0, i-3)
	var s strings.Builder
	for j := from; j < i; j++ {
		fmt.Fprintf(&s, "  %4d   %s\n", j+1, g[j])
	}
	if i < len(w) {
		fmt.Fprintf(&s, "- %4d   %s\n", i+1, w[i])
	}
	if i < len(g) {
		fmt.Fprintf(&s, "+ %4d   %s\n", i+1, g[i])
	}
	return s.String()
}

// TestReadmeSynopsis checks the README's clerk_auth grammar block against
// the subdirectives UnmarshalCaddyfile actually accepts, both ways.
func TestReadmeSynopsis(t *testing.T) {
	var synopsis *readmeBlock
	for _, b := range readmeBlocks(t) {
		if readmeSynopsis.MatchString(b.body) && firstToken(b.body) == "clerk_auth" {
			synopsis = &b
		}
	}
	if synopsis == nil {
		t.Fatal("README.md has no clerk_auth grammar block (clerk_auth [<matcher>] { ... })")
	}
	var documented []string
	lines := strings.Split(strings.TrimSpace(synopsis.body), "\n")
	for _, l := range lines[1 : len(lines)-1] { // inside clerk_auth ... { }
		if strings.HasPrefix(l, "\t\t") || strings.TrimSpace(l) == "}" {
			continue // a subdirective's own block
		}
		documented = append(documented, strings.Fields(l)[0])
	}

	f, err := parser.ParseFile(token.NewFileSet(), "caddyfile.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var parsed []string
	for _, decl := range f.Decls {
		if fn, ok := decl.(*ast.FuncDecl); ok && fn.Name.Name == "UnmarshalCaddyfile" {
			ast.Inspect(fn, func(n ast.Node) bool {
				if cc, ok := n.(*ast.CaseClause); ok {
					for _, e := range cc.List {
						if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							s, _ := strconv.Unquote(lit.Value)
							parsed = append(parsed, s)
						}
					}
				}
				return true
			})
		}
	}
	if len(parsed) == 0 {
		t.Fatal("found no subdirective cases in caddyfile.go's UnmarshalCaddyfile")
	}
	for _, d := range documented {
		if !slices.Contains(parsed, d) {
			t.Errorf("%s: the grammar documents %q, which the Caddyfile parser does not accept", synopsis.where(), d)
		}
	}
	for _, p := range parsed {
		if !slices.Contains(documented, p) {
			t.Errorf("%s: the Caddyfile parser accepts %q, which the grammar does not document", synopsis.where(), p)
		}
	}
}
