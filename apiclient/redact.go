package apiclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf16"
)

// redacted replaces the secret wherever it is found.
const redacted = "[REDACTED]"

// maxExcerpt is how many bytes of a reply an error quotes: a StatusError's
// body, a Snippet.
const maxExcerpt = 200

// redact removes the secret from s (for log fields and error bodies), in
// every form a reply may echo it in (see secretForms).
func (c *Client) redact(s string) string {
	for _, f := range c.secrets {
		s = strings.ReplaceAll(s, f, redacted)
	}
	return s
}

// excerpt is what an error may quote of s, a reply: s with the secret
// redacted, then cut to maxExcerpt bytes (so that a secret across the cut
// is redacted too). cut reports whether s was cut.
func (c *Client) excerpt(s string) (text string, cut bool) {
	s = c.redact(s)
	if len(s) <= maxExcerpt {
		return s, false
	}
	return truncate(s, maxExcerpt), true
}

// statusError is the error of a final answer with status: its excerpt of
// text (the body, or what a redirect pointed at).
func (c *Client) statusError(status int, method, path, text string) *StatusError {
	body, _ := c.excerpt(text)
	return &StatusError{Status: status, Body: body, Method: method, Path: path}
}

// truncate cuts s to at most n bytes without leaving a partial UTF-8 rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// secretForms returns the texts that stand for secret in a reply that
// echoes it: the secret itself; the escaped forms a JSON encoder writes it
// in (Go's, with and without HTML escaping, and Python's ensure_ascii,
// each also with "/" written "\/" as PHP does); and its URL-escaped forms
// (a redirect's location). Longest first, without repeats; nil for an
// empty secret.
func secretForms(secret string) []string {
	if secret == "" {
		return nil
	}
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret), asciiJSON(secret)}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if err := enc.Encode(secret); err == nil {
			s := strings.TrimSuffix(b.String(), "\n")
			forms = append(forms, s[1:len(s)-1]) // without the quotes
		}
	}
	for _, f := range slices.Clone(forms) {
		forms = append(forms, strings.ReplaceAll(f, "/", `\/`))
	}
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(forms)
}

// asciiJSON is s as Python's json.dumps writes it inside a string by
// default (ensure_ascii): every non-ASCII character as \uXXXX (a pair of
// surrogates beyond the BMP).
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x80 && r <= 0xffff):
			fmt.Fprintf(&b, `\u%04x`, r)
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, hi, lo)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
