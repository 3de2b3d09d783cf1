package config

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docFile is the operator's documentation of the settings.
var docFile = filepath.Join("..", "docs", "configuration.md")

// docRow is a row of the settings table of docs/configuration.md.
type docRow struct {
	line                        int
	variable, def, accepted, mn string
}

// readDocTable returns the rows of the first table whose header starts with
// "variable", by variable.
func readDocTable(path string) (map[string]docRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows := make(map[string]docRow)
	in := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			if in {
				break // the table ended
			}
			continue
		}
		cells := splitRow(line)
		if !in {
			in = len(cells) > 0 && cells[0] == "variable"
			continue
		}
		if strings.Trim(cells[0], "-: ") == "" {
			continue // the separator row
		}
		if len(cells) != 4 {
			return nil, fmt.Errorf("%s:%d: %d cells, want 4 (variable, default, accepted, meaning)", path, n, len(cells))
		}
		r := docRow{line: n, variable: cells[0], def: cells[1], accepted: cells[2], mn: cells[3]}
		if _, dup := rows[r.variable]; dup {
			return nil, fmt.Errorf("%s:%d: %s documented twice", path, n, r.variable)
		}
		rows[r.variable] = r
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !in {
		return nil, fmt.Errorf("%s: no table whose header starts with \"variable\"", path)
	}
	return rows, nil
}

// splitRow splits a Markdown table row into its cells, without backticks
// and with runs of spaces made one.
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	for _, c := range strings.Split(line, "|") {
		cells = append(cells, normalize(c))
	}
	return cells
}

func normalize(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "`", "")), " ")
}

// docProblems compares the table of the document at path with the code:
// every setting listed, with the code's default and accepted values, and
// nothing else.
func docProblems(path string) ([]string, error) {
	rows, err := readDocTable(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range settings {
		r, ok := rows[s.name]
		if !ok {
			out = append(out, fmt.Sprintf("%s: %s is not documented; add:\n| `%s` | %s | %s | ... |", path, s.name, s.name, s.defaultText(), s.accepted()))
			continue
		}
		delete(rows, s.name)
		if want := normalize(s.defaultText()); r.def != want {
			out = append(out, fmt.Sprintf("%s:%d: %s: default %q, the code says %q", path, r.line, s.name, r.def, want))
		}
		if want := normalize(s.accepted()); r.accepted != want {
			out = append(out, fmt.Sprintf("%s:%d: %s: accepted %q, the code says %q", path, r.line, s.name, r.accepted, want))
		}
		if r.mn == "" {
			out = append(out, fmt.Sprintf("%s:%d: %s: no meaning", path, r.line, s.name))
		}
	}
	for name, r := range rows {
		out = append(out, fmt.Sprintf("%s:%d: %s is documented but is not a setting", path, r.line, name))
	}
	return out, nil
}

// The table of docs/configuration.md matches the code.
func TestDocumentationMatchesCode(t *testing.T) {
	problems, err := docProblems(docFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// The comparison finds a wrong default, a wrong range, a missing variable,
// an extra one, and a row without a meaning.
func TestDocumentationCheckFindsDrift(t *testing.T) {
	good, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"default", "| `MOJODEX_SCHEDULER_GATE_INTERVAL` | `10m` |", "| `MOJODEX_SCHEDULER_GATE_INTERVAL` | `5m` |", `MOJODEX_SCHEDULER_GATE_INTERVAL: default "5m", the code says "10m"`},
		{"range", "| 1s to 24h |", "| 1s to 12h |", `MOJODEX_SCHEDULER_GATE_INTERVAL: accepted "1s to 12h", the code says "1s to 24h"`},
		{"missing", "| `MOJODEX_SCHEDULER_QUEUE_SIZE` |", "| `MOJODEX_SCHEDULER_QUEUE_SIZES` |", "MOJODEX_SCHEDULER_QUEUE_SIZE is not documented"},
		{"extra", "| `MOJODEX_SCHEDULER_QUEUE_SIZE` |", "| `MOJODEX_SCHEDULER_QUEUE_SIZES` |", "MOJODEX_SCHEDULER_QUEUE_SIZES is documented but is not a setting"},
		{"no meaning", "| runs of each service waiting in the API client for a slot; a fire that finds its service's queue full is skipped |", "|  |", "MOJODEX_SCHEDULER_QUEUE_SIZE: no meaning"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(good), tc.old) {
				t.Fatalf("the document lacks %q", tc.old)
			}
			path := filepath.Join(t.TempDir(), "configuration.md")
			if err := os.WriteFile(path, []byte(strings.Replace(string(good), tc.old, tc.new, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			problems, err := docProblems(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != 1 && tc.name != "missing" && tc.name != "extra" {
				t.Errorf("%d problems, want 1: %q", len(problems), problems)
			}
			if !strings.Contains(strings.Join(problems, "\n"), tc.want) {
				t.Errorf("problems %q, want one containing %q", problems, tc.want)
			}
		})
	}
}
