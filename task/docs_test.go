package task

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func readTaskFileDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/task-file.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docRowRE matches a row of a field table: | `request.path` | ...
var docRowRE = regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|")

// docs/task-file.md documents every field of the schema, in a table row of
// its own, and no field that the schema does not have.
func TestDocListsEveryField(t *testing.T) {
	doc := readTaskFileDoc(t)
	var documented []string
	for _, m := range docRowRE.FindAllStringSubmatch(doc, -1) {
		documented = append(documented, m[1])
	}
	fields := schemaFields()
	for _, f := range fields {
		if !slices.Contains(documented, f) {
			t.Errorf("field %s is missing from docs/task-file.md", f)
		}
	}
	for _, d := range documented {
		if !slices.Contains(fields, d) {
			t.Errorf("docs/task-file.md documents %s, which is not a field of the schema", d)
		}
	}
	for _, top := range schemaOf(reflect.TypeFor[fileDocument]()).names {
		if !strings.Contains(doc, "`"+top+"`") {
			t.Errorf("top-level field %s is missing from docs/task-file.md", top)
		}
	}
}

// docBlocks returns the fenced code blocks of the document with their
// language.
func docBlocks(doc string) (langs, bodies []string) {
	re := regexp.MustCompile("(?ms)^```([a-z]*)\n(.*?)^```$")
	for _, m := range re.FindAllStringSubmatch(doc, -1) {
		langs, bodies = append(langs, m[1]), append(bodies, m[2])
	}
	return langs, bodies
}

// The document's examples are what the code does: every YAML block but the
// bad one parses, and the bad one fails with the errors shown after it.
func TestDocExamples(t *testing.T) {
	langs, bodies := docBlocks(readTaskFileDoc(t))
	checkedBad := false
	for i, body := range bodies {
		if langs[i] != "yaml" {
			continue
		}
		_, err := parseString(body)
		if i+1 < len(bodies) && langs[i+1] == "text" {
			if err == nil {
				t.Errorf("example %d parses, but the document shows errors for it", i+1)
				continue
			}
			if got, want := err.Error()+"\n", bodies[i+1]; got != want {
				t.Errorf("example %d: errors\n%s\ndocument shows\n%s", i+1, got, want)
			}
			checkedBad = true
			continue
		}
		if err != nil {
			t.Errorf("example %d does not parse: %v\n%s", i+1, err, body)
		}
	}
	if !checkedBad {
		t.Error("no example of errors found in docs/task-file.md")
	}
}
