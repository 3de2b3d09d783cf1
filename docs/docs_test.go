package docs

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// root is the repository root, seen from this package's directory.
const root = ".."

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text of the Markdown section whose heading is
// heading (e.g. "## Quick start"), up to the next heading of the same or a
// higher level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	level := strings.Index(heading, " ")
	var b strings.Builder
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if h := headingLevel(line); h > 0 {
			if in && h <= level {
				break
			}
			if line == heading {
				in = true
				continue
			}
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	if !in {
		t.Fatalf("no section %q", heading)
	}
	return b.String()
}

// headingLevel is the number of # of a Markdown heading line, 0 for other lines.
func headingLevel(line string) int {
	n := 0
	for n < len(line) && line[n] == '#' {
		n++
	}
	if n == 0 || n > 6 || len(line) == n || line[n] != ' ' {
		return 0
	}
	return n
}

// codeBlocks returns the fenced code blocks of text, each as its lines.
func codeBlocks(text string) [][]string {
	var blocks [][]string
	var cur []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			if in {
				blocks = append(blocks, cur)
				cur = nil
			}
			in = !in
			continue
		}
		if in {
			cur = append(cur, line)
		}
	}
	return blocks
}

// commands returns the shell commands of script: its lines without
// comments, blank lines or shell settings.
func commands(script string) []string {
	var out []string
	for _, line := range strings.Split(script, "\n") {
		if i := strings.Index(line, "#"); i >= 0 && (i == 0 || line[i-1] == ' ') {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// The quick start is exactly two commands: one that runs the service on its
// embedded defaults (make run, which runs the demo against the built-in
// stub) and the test command, which is the last command .ci/run runs. The
// Go version it states is go.mod's.
func TestQuickStart(t *testing.T) {
	readme := read(t, "README.md")
	qs := section(t, readme, "## Quick start")
	blocks := codeBlocks(qs)
	if len(blocks) == 0 {
		t.Fatal("the quick start has no code block")
	}
	cmds := commands(strings.Join(blocks[0], "\n"))
	if !slices.Equal(cmds, []string{"make run", "make test"}) {
		t.Fatalf("quick start commands %q, want [make run, make test]", cmds)
	}

	ci := commands(read(t, ".ci/run"))
	if last := ci[len(ci)-1]; last != cmds[1] {
		t.Errorf(".ci/run ends with %q; want the README's test command %q", last, cmds[1])
	}

	makefile := read(t, "Makefile")
	for target, want := range map[string]string{"run": "$(BIN) run --demo", "test": "$(GO) test -race -count=1 ./..."} {
		recipe := regexp.MustCompile(`(?m)^` + target + `:.*\n((?:\t.*\n)+)`).FindStringSubmatch(makefile)
		if recipe == nil || !strings.Contains(recipe[1], want) {
			t.Errorf("make %s does not run %q: %q", target, want, recipe)
		}
	}

	gomod := read(t, "go.mod")
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	if m == nil {
		t.Fatal("no go line in go.mod")
	}
	if !strings.Contains(qs, "Go "+m[1]+" or later") {
		t.Errorf("the quick start does not say \"Go %s or later\" (go.mod's go line)", m[1])
	}
	for _, want := range []string{"`make`", "C compiler", "cgo"} {
		if !strings.Contains(qs, want) {
			t.Errorf("the quick start does not mention %s", want)
		}
	}
}

// markdownFiles are the Markdown files whose links are checked.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch rel {
			case ".git", "bin", "build", "dist", "node_modules":
				return filepath.SkipDir
			}
			if strings.HasPrefix(d.Name(), ".") && rel != "." && rel != ".ci" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".md") {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	// link matches [text](target) and ![alt](target); the target has no
	// spaces (a title after it is not used in this repository).
	link = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)
	// inlineCode matches a code span, whose text is not Markdown.
	inlineCode = regexp.MustCompile("`[^`]*`")
)

// links returns the link targets of a Markdown document, outside code.
func links(doc string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if in {
			continue
		}
		for _, m := range link.FindAllStringSubmatch(inlineCode.ReplaceAllString(line, ""), -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// anchors returns the anchors GitHub gives the headings of a Markdown
// document: lower case, punctuation dropped, spaces as hyphens, a -N
// suffix for repeats.
func anchors(doc string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if in || headingLevel(line) == 0 {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// Every relative link of every Markdown file points at a file or directory
// of the repository, and every anchor at a heading of its document.
func TestRelativeLinks(t *testing.T) {
	files := markdownFiles(t)
	if !slices.Contains(files, "README.md") || !slices.Contains(files, "docs/configuration.md") {
		t.Fatalf("Markdown files found: %v", files)
	}
	for _, f := range files {
		doc := read(t, f)
		for _, target := range links(doc) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.ToSlash(filepath.Join(filepath.Dir(f), path))
				if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
					t.Errorf("%s: link %q: %v", f, target, err)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(dest, ".md") && !anchors(read(t, dest))[anchor] {
				t.Errorf("%s: link %q: no heading with anchor #%s in %s", f, target, anchor, dest)
			}
		}
	}
}

// Every document of docs/ is reachable from the README: linked, or named
// (a document still being written is named in code).
func TestREADMELinksEveryDocument(t *testing.T) {
	readme := read(t, "README.md")
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range docs {
		rel := "docs/" + filepath.Base(p)
		if !slices.Contains(links(readme), rel) && !strings.Contains(readme, "`"+rel+"`") {
			t.Errorf("README.md does not link %s", rel)
		}
	}
}

// tableRows returns the rows of the Markdown tables of text whose first
// cell is a code span, by that cell's text: the cells of each row.
func tableRows(text string) map[string][]string {
	rows := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), " | ") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows[strings.Trim(cells[0], "`")] = cells
	}
	return rows
}

// The README's short table of settings agrees with docs/configuration.md
// (which config/doc_test.go compares with the code): same variables, same
// defaults.
func TestREADMESettingsMatchConfigurationDoc(t *testing.T) {
	readme := tableRows(section(t, read(t, "README.md"), "## Configuration"))
	full := tableRows(section(t, read(t, "docs/configuration.md"), "## Settings"))
	if len(readme) < 8 {
		t.Fatalf("the README's settings table has %d rows", len(readme))
	}
	for name, cells := range readme {
		ref, ok := full[name]
		if !ok {
			t.Errorf("README: %s is not in docs/configuration.md", name)
			continue
		}
		if cells[1] != ref[1] {
			t.Errorf("README: %s defaults to %s, docs/configuration.md says %s", name, cells[1], ref[1])
		}
	}
}

// seriesNames returns the metric names the metrics package defines.
func seriesNames(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "metrics", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	short := regexp.MustCompile(`Name:\s+"([a-z_]+)"|BuildFQName\(Namespace, "", "([a-z_]+)"\)`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range short.FindAllStringSubmatch(string(b), -1) {
			names["mojodex_scheduler_"+m[1]+m[2]] = true
		}
	}
	if len(names) < 15 {
		t.Fatalf("found only %d series in metrics/: %v", len(names), names)
	}
	return names
}

// Every metric the documentation names is one the code defines.
func TestDocumentedMetricsExist(t *testing.T) {
	names := seriesNames(t)
	name := regexp.MustCompile(`mojodex_scheduler_[a-z_]*[a-z]`)
	for _, f := range markdownFiles(t) {
		for _, n := range name.FindAllString(read(t, f), -1) {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if !names[n] && !names[base] {
				t.Errorf("%s names %s, which the metrics package does not define", f, n)
			}
		}
	}
	doc := read(t, "docs/metrics.md")
	for n := range names {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/metrics.md does not describe %s", n)
		}
	}
}

// Every module that go.mod requires directly is explained in the design's
// table of dependencies.
func TestDependenciesExplained(t *testing.T) {
	design := section(t, read(t, "docs/design.md"), "## Dependencies, and why")
	gomod := read(t, "go.mod")
	block := regexp.MustCompile(`(?s)require \((.*?)\)`).FindAllStringSubmatch(gomod, -1)
	if len(block) == 0 {
		t.Fatal("no require block in go.mod")
	}
	n := 0
	for _, line := range strings.Split(block[0][1], "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.Contains(line, "// indirect") {
			continue
		}
		n++
		if !strings.Contains(design, "`"+fields[0]+"`") {
			t.Errorf("docs/design.md does not say why %s is used", fields[0])
		}
	}
	if n < 10 {
		t.Fatalf("found %d direct requirements in go.mod", n)
	}
}
