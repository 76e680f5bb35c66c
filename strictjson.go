package clerkauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// The header and the payload are read by this small JSON reader rather than
// encoding/json: one pass over the text validates it (RFC 8259, as strictly
// as encoding/json's own scanner), refuses what different parsers would read
// differently, and hands each top-level member to the caller as the raw text
// of its value, a substring of the input. The caller types the members it
// knows; nothing is allocated but what it keeps.

var errNotJSON = errors.New("not a JSON object")

// errRepeatedMember is wrapped by the error for a member name given twice.
var errRepeatedMember = errors.New("appears twice")

// decodeSegment decodes one unpadded base64url JWT segment, by way of buf
// (if large enough, no allocation but the string). Padding is refused:
// Clerk never emits it, and accepting it would give one token several
// spellings.
func decodeSegment(buf []byte, seg string) (string, error) {
	b, err := base64.RawURLEncoding.Strict().AppendDecode(buf, []byte(seg))
	if err != nil {
		return "", errors.New("not base64url")
	}
	return string(b), nil
}

// walkObject reads s, a header or payload, as one JSON object and calls
// member with each top-level member's name (unescaped) and raw value, in
// order. So that every parser reads it the same way, s must be valid UTF-8
// (encoding/json and JavaScript's TextDecoder replace invalid bytes
// differently, so one token could name two users) and no member name may
// appear twice (encoding/json keeps the last, others the first or fail).
// A top level that is null is an object without members, as encoding/json
// reads it into a struct; any other value that is not an object is an error.
// The first error, member's included, ends the walk.
func walkObject(s string, member func(name, value string) error) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	i := skipSpace(s, 0)
	if i+4 <= len(s) && s[i:i+4] == "null" {
		if skipSpace(s, i+4) != len(s) {
			return errNotJSON
		}
		return nil
	}
	if i == len(s) || s[i] != '{' {
		return errNotJSON
	}
	var seen memberSet
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		i++
	} else {
		for {
			if i == len(s) || s[i] != '"' {
				return errNotJSON
			}
			end, escaped := endOfString(s, i)
			if end < 0 {
				return errNotJSON
			}
			name := s[i+1 : end-1]
			if escaped {
				name = unquote(s[i:end])
			}
			if i = skipSpace(s, end); i == len(s) || s[i] != ':' {
				return errNotJSON
			}
			start := skipSpace(s, i+1)
			if end = endOfValue(s, start); end < 0 {
				return errNotJSON
			}
			if seen.add(name) {
				return fmt.Errorf("member %q %w", truncate(name, 32), errRepeatedMember)
			}
			if err := member(name, s[start:end]); err != nil {
				return err
			}
			i = skipSpace(s, end)
			if i < len(s) && s[i] == ',' {
				i = skipSpace(s, i+1)
				continue
			}
			if i < len(s) && s[i] == '}' {
				i++
				break
			}
			return errNotJSON
		}
	}
	if skipSpace(s, i) != len(s) {
		return errNotJSON
	}
	return nil
}

// eachElement calls elem with the raw text of every element of value, a
// valid JSON value, and reports whether value is an array.
func eachElement(value string, elem func(string)) bool {
	if value == "" || value[0] != '[' {
		return false
	}
	i := skipSpace(value, 1)
	for i < len(value) && value[i] != ']' {
		end := endOfValue(value, i)
		elem(value[i:end])
		if i = skipSpace(value, end); value[i] == ',' {
			i = skipSpace(value, i+1)
		}
	}
	return true
}

func skipSpace(s string, i int) int {
	for i < len(s) && isJSONSpace(s[i]) {
		i++
	}
	return i
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// endOfValue returns the index just past the JSON value that starts at
// s[i], or -1 if there is none. Nesting is tracked on an explicit stack, not
// by recursion: the header is read before its signature is checked, and
// hostile nesting must not grow the goroutine stack.
func endOfValue(s string, i int) int {
	var inObjectBuf [32]bool
	inObject := inObjectBuf[:0] // per open container: object, or array
	for {
		if i == len(s) {
			return -1
		}
		switch c := s[i]; {
		case c == '{':
			if i = skipSpace(s, i+1); i < len(s) && s[i] == '}' {
				i++
				break
			}
			inObject = append(inObject, true)
			if i = endOfName(s, i); i < 0 {
				return -1
			}
			continue
		case c == '[':
			if i = skipSpace(s, i+1); i < len(s) && s[i] == ']' {
				i++
				break
			}
			inObject = append(inObject, false)
			continue
		case c == '"':
			i, _ = endOfString(s, i)
		case c == '-' || '0' <= c && c <= '9':
			i = endOfNumber(s, i)
		case c == 't':
			i = endOfLiteral(s, i, "true")
		case c == 'f':
			i = endOfLiteral(s, i, "false")
		case c == 'n':
			i = endOfLiteral(s, i, "null")
		default:
			return -1
		}
		// A value ended: close the containers it ends, or go on to the
		// next element of the innermost one.
		for {
			if i < 0 || len(inObject) == 0 {
				return i
			}
			if i = skipSpace(s, i); i == len(s) {
				return -1
			}
			object := inObject[len(inObject)-1]
			if s[i] == ',' {
				i = skipSpace(s, i+1)
				if object {
					i = endOfName(s, i)
				}
				break
			}
			if object && s[i] != '}' || !object && s[i] != ']' {
				return -1
			}
			i++
			inObject = inObject[:len(inObject)-1]
		}
		if i < 0 {
			return -1
		}
	}
}

// endOfName reads a member name and its colon at s[i] and returns the index
// where the value starts, or -1.
func endOfName(s string, i int) int {
	if i == len(s) || s[i] != '"' {
		return -1
	}
	if i, _ = endOfString(s, i); i < 0 {
		return -1
	}
	if i = skipSpace(s, i); i == len(s) || s[i] != ':' {
		return -1
	}
	return skipSpace(s, i+1)
}

// endOfString returns the index just past the JSON string that starts at
// s[i] (a quote), or -1, and whether the string has escapes.
func endOfString(s string, i int) (int, bool) {
	escaped := false
	for i++; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1, escaped
		case c < 0x20:
			return -1, false
		case c == '\\':
			escaped = true
			if i++; i == len(s) {
				return -1, false
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) {
					return -1, false
				}
				i += 4
			default:
				return -1, false
			}
		}
	}
	return -1, false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// endOfNumber returns the index just past the JSON number at s[i], or -1.
func endOfNumber(s string, i int) int {
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = endOfDigits(s, i)
	default:
		return -1
	}
	if i < len(s) && s[i] == '.' {
		if i = endOfDigits(s, i+1); s[i-1] == '.' {
			return -1
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		if i++; i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		if i = endOfDigits(s, i); i == start {
			return -1
		}
	}
	return i
}

func endOfDigits(s string, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

func endOfLiteral(s string, i int, lit string) int {
	if len(s)-i < len(lit) || s[i:i+len(lit)] != lit {
		return -1
	}
	return i + len(lit)
}

// unquote decodes a valid JSON string as encoding/json does (a lone
// surrogate escape becomes U+FFFD). Only strings with escapes come here.
func unquote(quoted string) string {
	var s string
	_ = json.Unmarshal([]byte(quoted), &s) // valid: endOfString accepted it
	return s
}

// stringValue returns the value of a JSON string, or ok false for any other
// JSON value.
func stringValue(value string) (s string, ok bool) {
	end, escaped := 0, false
	if value != "" && value[0] == '"' {
		end, escaped = endOfString(value, 0)
	}
	switch {
	case end != len(value) || end == 0:
		return "", false
	case escaped:
		return unquote(value), true
	}
	return value[1 : len(value)-1], true
}

// rawString returns a JSON string's value, or "" for any other JSON value.
func rawString(value string) string {
	s, _ := stringValue(value)
	return s
}

// typedString reads a member that must be a string: null reads as absent
// (""), as encoding/json reads it into a string; any other type is an error.
func typedString(name, value string) (string, error) {
	if s, ok := stringValue(value); ok || value == "null" {
		return s, nil
	}
	return "", fmt.Errorf("member %q is not a string", name)
}

// memberSet remembers member names. A token has a dozen or so, so a linear
// scan over a fixed array beats a map and allocates nothing; a hostile
// object with many members moves to a map.
type memberSet struct {
	few  [24]string
	n    int
	many map[string]struct{}
}

// add records name and reports whether it was already there.
func (s *memberSet) add(name string) bool {
	if s.many == nil {
		for _, seen := range s.few[:s.n] {
			if seen == name {
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
			s.many[seen] = struct{}{}
		}
	}
	if _, dup := s.many[name]; dup {
		return true
	}
	s.many[name] = struct{}{}
	return false
}

// memberNames are the member names one decoder reads from an object.
type memberNames struct {
	folded map[string]string // folded name → the name
}

func newMemberNames(names ...string) *memberNames {
	m := &memberNames{folded: make(map[string]string, len(names))}
	for _, n := range names {
		m.folded[string(appendFoldedName(nil, n))] = n
	}
	return m
}

// refuseVariant refuses a member name that encoding/json would match to one
// of the names without being it ("Sub", "SUB" or "ſub" all fill `sub`,
// case-insensitively), while the claim map behind placeholders and
// requirements, and Clerk's own SDK, only know "sub". Decoders call it for
// every name they do not read.
func (m *memberNames) refuseVariant(name string) error {
	var buf [64]byte
	if n, ok := m.folded[string(appendFoldedName(buf[:0], name))]; ok && n != name {
		return fmt.Errorf("member %q is not %q: names are case-sensitive", truncate(name, 32), n)
	}
	return nil
}

// appendFoldedName folds a name for refuseVariant: two names that
// encoding/json treats alike fold alike, and so do a few more ("ıss" and
// "iss"), which only makes the check stricter.
func appendFoldedName(out []byte, name string) []byte {
	for _, r := range name {
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
