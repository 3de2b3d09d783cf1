package task

import (
	"bytes"
	"testing"
)

// BenchmarkParseDefaults parses the embedded default task file.
func BenchmarkParseDefaults(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(defaultsYAML)); err != nil {
			b.Fatal(err)
		}
	}
}
