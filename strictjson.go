package clerkauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// decodeSegment decodes one unpadded base64url JWT segment holding a JSON
// object. Padding is refused: Clerk never emits it, and accepting it would
// give one token several spellings.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return errors.New("not base64url")
	}
	return decodeJSON(b, v)
}

// decodeJSON decodes a header or payload so that every parser reads it the
// same way: valid UTF-8 only (encoding/json and JavaScript's TextDecoder
// replace invalid bytes differently, so one token could name two users),
// and no repeated or case-variant member names (see checkMembers).
func decodeJSON(b []byte, v any) error {
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("not a JSON object: %v", err)
	}
	return checkMembers(b, v)
}

// checkObject applies checkMembers to an optional nested object.
func checkObject(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return checkMembers(raw, v)
}

// checkMembers refuses a JSON object that different parsers would read
// differently: a top-level member name given twice (encoding/json keeps the
// last, others the first or fail), or a name that encoding/json matches to
// one of v's fields without being that field's name ("Sub", "SUB" or "ſub"
// all fill `sub`, case-insensitively, while the claim map behind
// placeholders and requirements, and Clerk's own SDK, only know "sub").
//
// data must already have been decoded into v without error, so it is
// valid JSON; a top level that is not an object is left alone. For a v
// that is not a struct (a map), only repeats are refused. One pass, no
// allocation per member beyond the names themselves: the header is checked
// before its signature, on attacker input.
func checkMembers(data []byte, v any) error {
	fields := fieldNames(reflect.TypeOf(v))
	i := 0
	for i < len(data) && isJSONSpace(data[i]) {
		i++
	}
	if i == len(data) || data[i] != '{' {
		return nil
	}
	var seen memberSet
	var fold [64]byte
	for depth := 0; i < len(data); i++ {
		switch data[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '"':
			start := i
			for i++; data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth != 1 || !followedByColon(data[i+1:]) {
				continue // a value, or a member of a nested object
			}
			name := memberName(data[start : i+1])
			if seen.add(name) {
				return fmt.Errorf("member %q appears twice", truncate(string(name), 32))
			}
			if f, ok := fields[string(appendFoldedName(fold[:0], name))]; ok && f != string(name) {
				return fmt.Errorf("member %q is not %q: names are case-sensitive", truncate(string(name), 32), f)
			}
		}
	}
	return nil
}

// memberSet remembers member names. A token has a dozen or so, so a linear
// scan over a fixed array beats a map and allocates nothing; a hostile
// object with many members moves to a map.
type memberSet struct {
	few  [24][]byte
	n    int
	many map[string]struct{}
}

// add records name and reports whether it was already there.
func (s *memberSet) add(name []byte) bool {
	if s.many == nil {
		for _, seen := range s.few[:s.n] {
			if bytes.Equal(seen, name) {
				return true
			}
		}
		if s.n < len(s.few) {
			s.few[s.n] = name
			s.n++
			return false
		}
		s.many = make(map[string]struct{}, 2*len(s.few))
		for _, seen := range s.few {
			s.many[string(seen)] = struct{}{}
		}
	}
	if _, dup := s.many[string(name)]; dup {
		return true
	}
	s.many[string(name)] = struct{}{}
	return false
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func followedByColon(rest []byte) bool {
	rest = bytes.TrimLeft(rest, " \t\r\n")
	return len(rest) > 0 && rest[0] == ':'
}

// memberName decodes a quoted member name. A plain name is returned as a
// slice of the input; names with escapes ("s\u0075b") or non-ASCII bytes go
// through encoding/json, so they compare as it sees them.
func memberName(quoted []byte) []byte {
	raw := quoted[1 : len(quoted)-1]
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			var s string
			_ = json.Unmarshal(quoted, &s) // valid: the caller's Unmarshal succeeded
			return []byte(s)
		}
	}
	return raw
}

var fieldNameCache sync.Map // reflect.Type → map[string]string

// fieldNames maps the folded JSON name of each field of the struct t
// points to (or is) to the name itself; nil for anything else.
func fieldNames(t reflect.Type) map[string]string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	if m, ok := fieldNameCache.Load(t); ok {
		return m.(map[string]string)
	}
	m := make(map[string]string, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			m[string(appendFoldedName(nil, name))] = name
		}
	}
	fieldNameCache.Store(t, m)
	return m
}

// appendFoldedName folds a name as encoding/json does to match names to
// fields: two names fold alike exactly when json treats them alike.
func appendFoldedName[T string | []byte](out []byte, name T) []byte {
	for _, r := range string(name) {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			out = append(out, byte(r))
			continue
		}
		out = utf8.AppendRune(out, unicode.ToUpper(unicode.ToLower(r)))
	}
	return out
}
