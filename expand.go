package clerkauth

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
)

// expand returns a single-valued setting with its placeholders replaced.
// Not configured (raw is "") is fine; configured but expanding to nothing
// is refused, because every empty setting means something else: no
// publishable key, the default API URL, a different key source.
func expand(repl *caddy.Replacer, setting, raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	return expandValue(repl, setting, raw)
}

// expandValue replaces the placeholders of one configured value, which must
// not come out empty: an empty audience or authorized party would match a
// token without aud or azp, an empty requirement value nothing at all.
func expandValue(repl *caddy.Replacer, setting, raw string) (string, error) {
	v := repl.ReplaceAll(raw, "")
	switch {
	case v != "":
		return v, nil
	case raw == "":
		return "", fmt.Errorf("%s: an empty value: remove it or give it one", setting)
	}
	return "", fmt.Errorf("%s %q expands to nothing: set the variable, or remove the value", setting, raw)
}

func expandLines(repl *caddy.Replacer, setting string, lines [][]string) ([][]string, error) {
	out := make([][]string, len(lines))
	for i, l := range lines {
		var err error
		if out[i], err = expandAll(repl, setting, l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func expandAll(repl *caddy.Replacer, setting string, in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		var err error
		if out[i], err = expandValue(repl, setting, s); err != nil {
			return nil, err
		}
	}
	return out, nil
}
