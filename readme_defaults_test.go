package clerkauth

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyclerk/caddy-clerk-auth/internal/assertion"
	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"github.com/caddyclerk/caddy-clerk-auth/internal/handshake"
	"github.com/caddyclerk/caddy-clerk-auth/internal/jwks"
	"github.com/caddyclerk/caddy-clerk-auth/internal/webhook"
)

// documented is one default or limit the docs state, and the value the
// code uses for it.
type documented struct {
	// where is README.md, SECURITY.md, or Handler.<json name> (or
	// IdentityAssertion.<json name>) for the doc comment of that field.
	where string
	// says is a regexp that must match exactly once in where; its first
	// group that matched is the documented value. Each space in it matches
	// any run of white space, so rewrapping the docs changes nothing.
	says string
	code any // time.Duration, int or string
}

// tableDefault is the Default column of the README row of a subdirective.
func tableDefault(subdirective string) string {
	return "(?m)^\\| `" + subdirective + "(?: [^`]*)?` \\| `([^`]+)` \\|"
}

// fieldDefault is the "Default: x." of a Handler field's doc comment, x
// in backquotes or not.
const fieldDefault = "Default: (?:`([^`]+)`|([^`\\s]+?)[.,]\\s)"

// TestDocumentedDefaults ties every default and limit that README.md,
// SECURITY.md and the Handler and IdentityAssertion doc comments state to the constant the code
// uses, so that neither can change alone. A statement this test no longer
// finds fails it too: reword it here along with the docs.
func TestDocumentedDefaults(t *testing.T) {
	d := jwks.DefaultOptions
	keys := assertion.DefaultOptions
	// How far ahead a key is published: assertion.Options.lead.
	published := max(keys.RotateEvery/2, keys.Overlap+2*keys.RefreshEvery)
	enrichMaxStale := clerkapi.DefaultEnrichMaxStaleFactor * clerkapi.DefaultEnrichTTL
	jwksCache := time.Duration(jwksMaxAge) * time.Second
	statements := []documented{
		{"README.md", tableDefault("jwks_refresh"), d.Refresh},
		{"README.md", tableDefault("jwks_min_interval"), d.MinInterval},
		{"README.md", tableDefault("jwks_timeout"), d.Timeout},
		{"README.md", tableDefault("jwks_max_stale"), d.MaxStale},
		{"README.md", tableDefault("leeway"), defaultLeeway},
		{"README.md", tableDefault("token_cache"), defaultTokenCacheSize},
		{"README.md", tableDefault("api_url"), defaultAPIURL},
		{"README.md", "`roles_claim <dotted.path>` \\| \\(default `([^`]+)`\\)", defaultRoles},
		{"README.md", "unknown `kid` triggers at most one refetch per (\\d+ s)", d.MinInterval},
		{"README.md", "Clock skew allowed[^|]*At most `([^`]+)`", maxLeeway},
		{"README.md", "Tokens above (\\d+ KiB) are not cached", maxCachedTokenSize},
		{"README.md", "Any RSA key of (\\d+) bits or more", jwks.MinRSABits},
		{"README.md", "\\| 503 \\+ `Retry-After: (\\d+)`", retryAfter},
		{"README.md", "Once it reaches (\\d+) the request is not redirected again", handshake.LoopLimit},
		{"README.md", tableDefault("machine_cache_ttl"), defaultMachineCacheTTL},
		{"README.md", "is reused for (\\d+ s)\\. `1s` to `[^`]+`\\. \\|", clerkapi.DefaultMachineNegativeTTL},
		{"README.md", "is reused for \\d+ s\\. `1s` to `([^`]+)`\\. \\|", maxMachineCacheTTL},
		{"README.md", "(?m)^\\| `backend_api_rate [^`]*` \\| `(\\d+)` per second", int(clerkapi.DefaultRate)},
		{"README.md", "(?m)^\\| `backend_api_rate [^`]*` \\| `\\d+` per second, burst `(\\d+)`", clerkapi.DefaultBurst},
		{"README.md", "at most `backend_api_rate` calls per second \\((\\d+), burst", int(clerkapi.DefaultRate)},
		{"README.md", "at most one call per distinct valid token per `machine_cache_ttl` \\((\\d+ s)\\)", defaultMachineCacheTTL},
		{"README.md", "per distinct unknown, revoked or expired token per (\\d+ s)", clerkapi.DefaultMachineNegativeTTL},
		{"README.md", "`machine_cache_ttl` old \\((\\d+ s) by default, at most `([^`]+)`\\)", defaultMachineCacheTTL},
		{"README.md", "(?m)^\\| `ttl <duration>` \\(in `identity_assertion`\\) \\| `([^`]+)` \\|", defaultAssertionTTL},
		{"README.md", "How long an assertion lives at most;[^|]*`1s` to `([^`]+)`", maxAssertionTTL},
		{"README.md", "`iat` \\+ `ttl` \\((\\d+ minutes) by default\\)", defaultAssertionTTL},
		{"README.md", "the longest assertion \\(`ttl` is at most (\\d+ minutes)\\)", maxAssertionTTL},
		{"README.md", "`Cache-Control: public, max-age=(\\d+)`", jwksMaxAge},
		{"README.md", "plus the (\\d+ minutes) upstreams may cache the JWKS", jwksCache},
		{"README.md", "and renewed (\\d+ s) before that", assertionRenewal},
		{"README.md", "a key signs for (\\d+ hours)\\.", keys.RotateEvery},
		{"README.md", "published about (\\d+ hours) before it starts signing", published},
		{"README.md", "a key stays published for (\\d+ hours?) after it stops", keys.Overlap},
		{"README.md", "\\*\\*Fresh for (\\d+ minutes)\\*\\*", clerkapi.DefaultEnrichTTL},
		{"README.md", "\\*\\*Then stale, up to (\\d+ minutes) old\\*\\*", enrichMaxStale},
		{"README.md", "a cached entry up to (\\d+ minutes) old is served", enrichMaxStale},
		{"README.md", "\\(`404`\\) is remembered for (\\d+ s)", clerkapi.DefaultEnrichNegativeTTL},
		{"README.md", "\\(at most (\\d+(?:,\\d+)*) of each", clerkapi.DefaultEnrichEntries},
		{"README.md", "one Backend API call per (\\d+ minutes), however many", clerkapi.DefaultEnrichTTL},
		{"README.md", "\\(active users \\+ active organizations\\) / (\\d+)", int(clerkapi.DefaultEnrichTTL / time.Second)},

		{"README.md", tableDefault("denylist_sync"), defaultDenylistSync},
		{"README.md", "`denylist_sync <duration>` \\(in `clerk_webhook`\\) \\| `([^`]+)` \\|", defaultDenylistSync},
		{"README.md", tableDefault("deny_for"), defaultDenyFor},
		{"README.md", "not after `deny_for`\\. `1m` to `([^`]+)`", maxDenyFor},
		{"README.md", "plus (\\d+ s) for the distance between Clerk's clocks", denylist.SkewMargin},
		{"README.md", "a timestamp within (\\d+ minutes) of Caddy's clock", webhook.DefaultTolerance},
		{"README.md", "`413` for a body over (\\d+ KiB)", webhook.DefaultMaxBodySize},
		{"README.md", "which then tries\\s+to write it, for at most (\\d+ s)", webhookStoreTimeout},
		{"README.md", "refused everywhere within (\\d+ s), for", defaultDenylistSync},
		{"README.md", "refused everywhere within \\d+ s, for (\\d+ hours)", defaultDenyFor},
		{"README.md", "Each Caddy holds at most (\\d+(?:,\\d+)*) denials", denylist.DefaultMaxEntries},
		{"README.md", "the others read every document every `denylist_sync` \\(default (\\d+ s)\\)", defaultDenylistSync},

		{"SECURITY.md", "a body over (\\d+ KiB) is refused \\(`413`\\)", webhook.DefaultMaxBodySize},
		{"SECURITY.md", "HMAC over at most (\\d+ KiB) per request", webhook.DefaultMaxBodySize},
		{"SECURITY.md", "timestamp must be within (\\d+ minutes) of Caddy's clock", webhook.DefaultTolerance},
		{"SECURITY.md", "issued at\\s+or before the event, plus (\\d+ s):", denylist.SkewMargin},
		{"SECURITY.md", "at most (\\d+(?:,\\d+)*) are held", webhook.DefaultMaxRemembered},
		{"SECURITY.md", "unless its denial is written within (\\d+ s)", webhookStoreTimeout},
		{"SECURITY.md", "Each Caddy holds at most (\\d+(?:,\\d+)*) denials", denylist.DefaultMaxEntries},
		{"SECURITY.md", "holding an id over (\\d+) bytes", denylist.MaxIDLen},
		{"SECURITY.md", "until `deny_for` lapses \\((\\d+ hours) by default\\)", defaultDenyFor},
		{"SECURITY.md", "at most (\\d+ minutes) of leeway", maxLeeway},
		{"SECURITY.md", "of leeway \\(default (\\d+ s)\\)", defaultLeeway},
		{"SECURITY.md", "Keys under (\\d+) bits", jwks.MinRSABits},
		{"SECURITY.md", "tokens over (\\d+ KiB) are refused", maxTokenSize},
		{"SECURITY.md", "`jwks_max_stale`, (\\d+ hours) by default", d.MaxStale},
		{"SECURITY.md", "\\*\\*503\\*\\* with `Retry-After: (\\d+)`", retryAfter},
		{"SECURITY.md", "answered from the cache for (\\d+ s)", clerkapi.DefaultMachineNegativeTTL},
		{"SECURITY.md", "The cache holds at most (\\d+(?:,\\d+)*) answers", clerkapi.DefaultMachineCacheEntries},
		{"SECURITY.md", "over (\\d+) characters, outside the token alphabet", clerkapi.MaxMachineTokenLen},
		{"SECURITY.md", "\\(`backend_api_rate`, (\\d+) calls a second", int(clerkapi.DefaultRate)},
		{"SECURITY.md", "calls a second with a burst of (\\d+) by default", clerkapi.DefaultBurst},
		{"SECURITY.md", "`machine_cache_ttl` old \\((\\d+ s) by default", defaultMachineCacheTTL},
		{"SECURITY.md", "by default, 1 s to (\\d+ h)\\)", maxMachineCacheTTL},
		{"SECURITY.md", "at most `ttl`, (\\d+ minutes) by default", defaultAssertionTTL},
		{"SECURITY.md", "by default and at most (\\d+ minutes)", maxAssertionTTL},
		{"SECURITY.md", "A key signs for (\\d+ hours) and", keys.RotateEvery},
		{"SECURITY.md", "is published about (\\d+ hours) before it does", published},
		{"SECURITY.md", "it stays published for (\\d+ hours?) after it", keys.Overlap},
		{"SECURITY.md", "JWKS cache \\(`max-age` (\\d+)\\)", jwksMaxAge},
		{"SECURITY.md", "their successors are made (\\d+ hours) ahead", published},
		{"SECURITY.md", "A key is in the JWKS for (\\d+ hours) in all", published + keys.RotateEvery + keys.Overlap},
		{"SECURITY.md", "\\((\\d+ minutes) fresh, stale up to", clerkapi.DefaultEnrichTTL},
		{"SECURITY.md", "fresh, stale up to (\\d+) times that", clerkapi.DefaultEnrichMaxStaleFactor},
		{"SECURITY.md", "while Clerk fails, (\\d+(?:,\\d+)*) entries per kind", clerkapi.DefaultEnrichEntries},
		{"SECURITY.md", "digits, (\\d+) characters at most", clerkapi.MaxResourceIDLen},
		{"SECURITY.md", "An answer over (\\d+ MiB) is refused", clerkapi.MaxResourceBodyBytes},
		{"SECURITY.md", "reaches the upstream after up to (\\d+ minutes)", clerkapi.DefaultEnrichTTL},
		{"SECURITY.md", "while the Backend API is down, up to (\\d+ minutes)", enrichMaxStale},

		{"Handler.jwks_refresh", fieldDefault, d.Refresh},
		{"Handler.jwks_min_interval", fieldDefault, d.MinInterval},
		{"Handler.jwks_timeout", fieldDefault, d.Timeout},
		{"Handler.jwks_max_stale", fieldDefault, d.MaxStale},
		{"Handler.leeway", fieldDefault, defaultLeeway},
		{"Handler.leeway", "At most (\\S+?):", maxLeeway},
		{"Handler.token_cache", fieldDefault, defaultTokenCacheSize},
		{"Handler.api_url", fieldDefault, defaultAPIURL},
		{"Handler.roles_claim", fieldDefault, defaultRoles},
		{"Handler.jwt_key", "at least (\\d+) bits", jwks.MinRSABits},
		{"Handler.enrich", "per organization \\((\\S+), then served stale", clerkapi.DefaultEnrichTTL},
		{"IdentityAssertion.ttl", "Default: (\\S+);", defaultAssertionTTL},
		{"Handler.denylist_sync", fieldDefault, defaultDenylistSync},
		{"Webhook.deny_for", fieldDefault, defaultDenyFor},
		{"Webhook.denylist_sync", fieldDefault, defaultDenylistSync},
		{"IdentityAssertion.ttl", "at most (\\S+?),", maxAssertionTTL},
	}
	docs := map[string]string{}
	for _, file := range []string{"README.md", "SECURITY.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		docs[file] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	for _, typ := range []struct{ file, name string }{{"module.go", "Handler"}, {"assertion.go", "IdentityAssertion"}, {"webhook.go", "Webhook"}} {
		for field, doc := range fieldDocs(t, typ.file, typ.name) {
			docs[typ.name+"."+field] = doc
		}
	}
	for _, s := range statements {
		t.Run(fmt.Sprintf("%s %v", s.where, s.code), func(t *testing.T) {
			text, ok := docs[s.where]
			if !ok {
				t.Fatalf("no %s to read", s.where)
			}
			m := regexp.MustCompile(strings.ReplaceAll(s.says, " ", `\s+`)).FindAllStringSubmatch(text, -1)
			if len(m) != 1 {
				t.Fatalf("%s matches %s %d times, want once: reword the test along with the docs", s.where, s.says, len(m))
			}
			said := ""
			for _, group := range m[0][1:] {
				if group != "" {
					said = group
					break
				}
			}
			got, err := documentedValue(said, s.code)
			if err != nil {
				t.Fatalf("%s says %q: %v", s.where, m[0][0], err)
			}
			if got != s.code {
				t.Errorf("%s says %q, the code uses %v", s.where, m[0][0], s.code)
			}
		})
	}
}

// durationWords are the units the docs spell out, plural before singular.
var durationWords = strings.NewReplacer("seconds", "s", "second", "s", "minutes", "m", "minute", "m", "hours", "h", "hour", "h")

// documentedValue reads what the docs say as the type of the code's value:
// durations as Caddy reads them, or in words ("30 s", "5 minutes", "1
// hour"); sizes as a count or in KiB/MiB.
func documentedValue(said string, like any) (any, error) {
	switch like.(type) {
	case time.Duration:
		return caddy.ParseDuration(durationWords.Replace(strings.Join(strings.Fields(said), "")))
	case int:
		s, unit := strings.Join(strings.Fields(strings.ReplaceAll(said, ",", "")), ""), 1
		for suffix, size := range map[string]int{"KiB": 1 << 10, "MiB": 1 << 20} {
			if n, ok := strings.CutSuffix(s, suffix); ok {
				s, unit = n, size
			}
		}
		n, err := strconv.Atoi(s)
		return n * unit, err
	case string:
		return said, nil
	}
	return nil, fmt.Errorf("the test cannot read a %T", like)
}

// fieldDocs returns the doc comment of each field of the struct typeName by
// its JSON name, as file has it.
func fieldDocs(t *testing.T, file, typeName string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != typeName {
			return true
		}
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			if field.Tag == nil || field.Doc == nil {
				continue
			}
			tag, _ := strconv.Unquote(field.Tag.Value)
			name, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
			docs[name] = field.Doc.Text()
		}
		return false
	})
	if len(docs) == 0 {
		t.Fatalf("%s has no %s fields with doc comments and JSON names", file, typeName)
	}
	return docs
}
