package task

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// hostileFile is a small task file whose merge keys nest ten levels deep,
// each level merging the previous one ten times: about 10^10 nodes once
// expanded.
func hostileFile() string {
	var b strings.Builder
	b.WriteString("tasks:\n  - &a0 {k: v}\n")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&b, "  - &a%d {<<: [", i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]}\n")
	}
	return b.String()
}

func TestParseRefusesExpandingMergeKeys(t *testing.T) {
	file := hostileFile()
	start := time.Now()
	specs, err := parseString(file)
	elapsed := time.Since(start)
	t.Logf("hostile file of %d bytes refused in %v", len(file), elapsed)
	if !errors.Is(err, ErrFileTooComplex) {
		t.Fatalf("Parse = %d specs, %v; want ErrFileTooComplex", len(specs), err)
	}
	if specs != nil {
		t.Errorf("specs returned with the error")
	}
	if !strings.Contains(err.Error(), "100000 nodes") {
		t.Errorf("error does not name the limit: %v", err)
	}

	path := filepath.Join(t.TempDir(), "hostile.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(path)
	if !errors.Is(err, ErrFileTooComplex) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "100000") {
		t.Errorf("LoadFile error does not name the file and the limit: %v", err)
	}
}

// Aliases of plain values count as expanded too, and so do lists.
func TestParseRefusesExpandingAliases(t *testing.T) {
	var b strings.Builder
	b.WriteString("tasks:\n  - name: t1\n    every: 1h\n    request:\n      service: backend\n      path: /x\n      body:\n")
	b.WriteString("        l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&b, "        l%d: &l%d [*l%[3]d, *l%[3]d, *l%[3]d, *l%[3]d, *l%[3]d, *l%[3]d, *l%[3]d, *l%[3]d, *l%[3]d, *l%[3]d]\n", i, i, i-1)
	}
	if _, err := parseString(b.String()); !errors.Is(err, ErrFileTooComplex) {
		t.Errorf("Parse = %v, want ErrFileTooComplex", err)
	}
}

// The count is exact: a document of MaxFileNodes nodes is decoded, one
// more node is refused.
func TestParseNodeLimitBoundary(t *testing.T) {
	// A document node, a list node and n scalars.
	list := func(n int) string { return "[" + strings.Repeat("x,", n-1) + "x]\n" }
	_, err := parseString(list(MaxFileNodes - 2))
	if err == nil || errors.Is(err, ErrFileTooComplex) || !strings.Contains(err.Error(), "expected a mapping") {
		t.Errorf("%d nodes: %v; want the file decoded (and refused as not a task file)", MaxFileNodes, err)
	}
	if _, err := parseString(list(MaxFileNodes - 1)); !errors.Is(err, ErrFileTooComplex) {
		t.Errorf("%d nodes: %v; want ErrFileTooComplex", MaxFileNodes+1, err)
	}
}

func TestCheckSizeCountsAliasesExpanded(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want int
	}{
		// document, mapping, key, value
		{"a: b", 4},
		// document, mapping, "a", &x [1, 2] (3), "b", *x (1 + 3)
		{"a: &x [1, 2]\nb: *x", 11},
		// document, mapping, "a", &m {k: v} (3), "b", {...} (1), "<<",
		// *m (1 + 3), "c", "d"
		{"a: &m {k: v}\nb: {<<: *m, c: d}", 15},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(c.doc), &doc); err != nil {
			t.Fatalf("%q: %v", c.doc, err)
		}
		if got, err := countNodes(&doc); got != c.want || err != nil {
			t.Errorf("countNodes(%q) = %d, %v; want %d", c.doc, got, err, c.want)
		}
	}
}

func TestParseRefusesAliasCycle(t *testing.T) {
	_, err := parseString("tasks:\n  - &a [*a]\n")
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "&a") {
		t.Errorf("Parse = %v, want an error naming the anchor and its line", err)
	}
}

func TestParseRefusesLargeFile(t *testing.T) {
	// A valid file padded with a comment to one byte over the limit.
	file := "tasks:" + okTask
	pad := "#" + strings.Repeat("x", MaxFileSize-len(file)-2) + "\n"
	if _, err := parseString(file + pad); err != nil {
		t.Errorf("a file of exactly MaxFileSize bytes: %v", err)
	}
	_, err := parseString(file + "#" + pad)
	if !errors.Is(err, ErrFileTooLarge) || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("a file one byte over: %v, want ErrFileTooLarge naming the limit", err)
	}

	// An endless reader is refused after reading past the limit, no more.
	r := &countingReader{}
	if _, err := Parse(r); !errors.Is(err, ErrFileTooLarge) {
		t.Errorf("endless reader: %v", err)
	}
	if r.n > MaxFileSize+1 {
		t.Errorf("read %d bytes of an endless reader, want at most %d", r.n, MaxFileSize+1)
	}

	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, []byte(file+"#"+pad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(path)
	if !errors.Is(err, ErrFileTooLarge) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("LoadFile error does not name the file and the limit: %v", err)
	}
}

// countingReader yields spaces forever and counts them.
type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	r.n += len(p)
	return len(p), nil
}

var _ io.Reader = (*countingReader)(nil)
