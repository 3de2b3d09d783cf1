package safetext

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":                         "plain text",
		"café ✓ 日本":                          "café ✓ 日本",
		"two\nlines":                         `two\nlines`,
		"\x1b[31mred\x1b[0m":                 `\x1b[31mred\x1b[0m`,
		"cr\rreturn\ttab":                    `cr\rreturn\ttab`,
		"back\\slash":                        `back\\slash`,
		"bad \xff byte":                      `bad \xff byte`,
		"nel\u0085 ls\u2028":                 `nel\u0085 ls\u2028`,
		"{\"level\":\"error\"}\n{\"forged\"": `{"level":"error"}\n{"forged"`,
		"del\x7f":                            `del\x7f`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\x1b[2J", "\xff\xfe", "é\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		for _, r := range out {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
				t.Fatalf("Escape(%q) = %q still holds control character %U", s, out, r)
			}
		}
		if !strings.ContainsAny(s, "\\") && Escape(out) != out && needsEscape(s) == false {
			t.Fatalf("Escape changed text that needs no escaping: %q -> %q", s, out)
		}
	})
}

// protojson leaves DEL, the C1 controls and U+2028/U+2029 raw in strings;
// EscapeJSON escapes them (ctl -o json prints through it) and the JSON
// stays the same.
func TestEscapeJSON(t *testing.T) {
	raw := []byte("{\"error\": \"a\\nb\x7f\u009b31m\u2028\u2029é\"}")
	got := EscapeJSON(raw)
	if want := `{"error": "a\nb\u007f\u009b31m\u2028\u2029é"}`; got != want {
		t.Errorf("EscapeJSON = %s, want %s", got, want)
	}
	var a, b map[string]string
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(got), &b); err != nil || a["error"] != b["error"] {
		t.Errorf("not the same JSON: %q, %q, %v", a, b, err)
	}
}
