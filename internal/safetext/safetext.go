// Package safetext makes untrusted text (a backend's reply, an error that
// quotes one) safe to print on an operator's terminal: control characters,
// which could forge log lines or move the cursor (ANSI escapes), are shown
// as escapes instead of being sent raw.
package safetext

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with every control character (C0, DEL, C1, including
// newline, carriage return, tab and ESC) written as a Go escape (\n, \x1b,
// \u0085), invalid UTF-8 as \xNN, and a backslash as \\. Printable text,
// including non-ASCII letters, is kept as it is.
func Escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case !mustEscape(r, size):
			b.WriteString(s[i : i+size])
		case r == utf8.RuneError:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case r == '\\':
			b.WriteString(`\\`)
		default: // a control character or a line separator
			q := strconv.QuoteRune(r) // e.g. '\n', '\x1b', '\u0085'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// EscapeJSON returns the JSON text b with the characters that a JSON
// encoder may leave raw in strings and that a terminal acts on (DEL, the C1
// controls, U+2028 and U+2029) written as \u escapes. The C0 controls are
// left alone: an encoder escapes them in strings, and outside strings they
// are the JSON's own white space. The result is the same JSON.
func EscapeJSON(b []byte) string {
	var out strings.Builder
	out.Grow(len(b))
	for _, r := range string(b) {
		if r >= 0x7f && unsafeRune(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
			continue
		}
		out.WriteRune(r)
	}
	return out.String()
}

// unsafeRune reports a character that a terminal may act on: a control
// character (C0, DEL, C1) or a line or paragraph separator.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// mustEscape reports whether Escape writes the rune r, decoded from size
// bytes, as an escape: an invalid byte, a backslash, a control character
// or a line or paragraph separator.
func mustEscape(r rune, size int) bool {
	return (r == utf8.RuneError && size == 1) || r == '\\' || unsafeRune(r)
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if mustEscape(r, size) {
			return true
		}
		i += size
	}
	return false
}
