package clerkauth

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The clerk-token report prints what a token says, and a token is attacker
// input: printed raw, its ESC, CR/LF, OSC 8 or bidi override characters
// could clear the screen, start a line with a fake verdict, or hide and
// reorder text for whoever checks it. So every string taken from a token
// reaches the report through shown, or shownJSON for JSON text; both let
// through the same runes, those unicode.IsPrint calls printable.

// shown renders s as it is when it is plain text (valid UTF-8, every rune
// printable: no control, DEL, C1, format such as bidi overrides and
// zero-width spaces, or unassigned code point) and Go-quoted otherwise, so
// that nothing in it acts on the terminal and a quoted value stands out as
// odd. Quoting its own output changes nothing.
func shown(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, notPrintable) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// shownJSON renders JSON text, such as the indented claims, with what is
// not printable escaped as JSON does (\u001b, \u202e) so that it stays
// readable as JSON; bytes that are not UTF-8, which JSON cannot escape, are
// shown Go-style (\xff). Newlines are kept: outside strings they are the
// indentation's, and JSON strings cannot hold a raw one.
func shownJSON(b []byte) string {
	var out strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&out, `\x%02x`, b[0])
		case r == '\n' || !notPrintable(r):
			out.Write(b[:size])
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
		b = b[size:]
	}
	return out.String()
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }
