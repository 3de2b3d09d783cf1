package task

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fieldErrors returns every *FieldError in err's tree (errors.As only finds
// the first one).
func fieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe)
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

func hasFieldError(err error, taskName, field string) bool {
	for _, fe := range fieldErrors(err) {
		if fe.Task == taskName && fe.Field == field {
			return true
		}
	}
	return false
}

func parseString(s string) ([]Spec, error) { return Parse(strings.NewReader(s)) }

const fullFile = `# Uses every field of the schema.
tasks:
  - name: nightly-report
    at: 02:30
    weekdays: [monday, Fri]
    timezone: Europe/Paris
    run_on_start: true
    enabled_if: push
    misfire: once
    misfire_grace: 2h
    overlap: queue_one
    jitter: 30s
    timeout: 90s
    request:
      service: backend
      method: put
      path: /reports/nightly
      auth: false
      body:
        kind: summary
        flag: true
        nested: {a: 1, b: [x, y]}
      query:
        lang: fr
        n: 10
      result: report_ids
    paginate:
      mode: offset
      size: 25
      size_field: n_reports
      offset_field: start
      result: reports
      max_pages: 7

  - name: quarter-hour
    cron: "*/15 9-17 * * mon-fri"
    timezone: America/New_York
    request:
      service: background
      method: DELETE
      path: /tick

  - name: drain-queue
    every: 1h30m
    request:
      service: backend
      path: /drain
      auth: true
    paginate:
      mode: drain
      size: 50
      size_field: n_items
      result: item_ids
      max_pages: 3
`

func TestParseFullFile(t *testing.T) {
	got, err := parseString(fullFile)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []Spec{
		{
			Name:         "nightly-report",
			At:           "02:30",
			Weekdays:     []time.Weekday{time.Monday, time.Friday},
			Timezone:     "Europe/Paris",
			RunOnStart:   true,
			EnabledIf:    GatePush,
			Misfire:      MisfireOnce,
			MisfireGrace: 2 * time.Hour,
			Overlap:      OverlapQueueOne,
			Jitter:       30 * time.Second,
			Timeout:      90 * time.Second,
			Request: &Request{
				Service: ServiceBackend,
				Method:  "PUT",
				Path:    "/reports/nightly",
				Auth:    false,
				Body: map[string]any{
					"kind":   "summary",
					"flag":   true,
					"nested": map[string]any{"a": 1, "b": []any{"x", "y"}},
				},
				Query:  map[string]string{"lang": "fr", "n": "10"},
				Result: "report_ids",
			},
			Paginate: &Paginate{Mode: ModeOffset, Size: 25, SizeField: "n_reports", OffsetField: "start", Result: "reports", MaxPages: 7},
		},
		{
			Name:     "quarter-hour",
			Cron:     "*/15 9-17 * * mon-fri",
			Timezone: "America/New_York",
			Misfire:  MisfireSkip,
			Overlap:  OverlapSkip,
			Request:  &Request{Service: ServiceBackground, Method: "DELETE", Path: "/tick", Auth: true},
		},
		{
			Name:     "drain-queue",
			Every:    90 * time.Minute,
			Misfire:  MisfireSkip,
			Overlap:  OverlapSkip,
			Request:  &Request{Service: ServiceBackend, Method: "POST", Path: "/drain", Auth: true},
			Paginate: &Paginate{Mode: ModeDrain, Size: 50, SizeField: "n_items", Result: "item_ids", MaxPages: 3},
		},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d specs, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("spec #%d =\n  %#v\nwant\n  %#v", i+1, got[i], want[i])
			if got[i].Request != nil {
				t.Logf("request = %#v", *got[i].Request)
			}
			if got[i].Paginate != nil {
				t.Logf("paginate = %#v", *got[i].Paginate)
			}
		}
	}
}

func TestParseFillsDefaults(t *testing.T) {
	specs, err := parseString(`
tasks:
  - name: minimal
    every: 5m
    request:
      service: background
      path: /minimal
      result: ids
    paginate:
      mode: offset
      size_field: n
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 1 {
		t.Fatalf("got %d specs", len(specs))
	}
	s := specs[0]
	r, p := s.Request, s.Paginate
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"request.method", r.Method, "POST"},
		{"request.auth", r.Auth, true},
		{"request.body", r.Body == nil, true},
		{"request.query", r.Query == nil, true},
		{"paginate.size", p.Size, DefaultPageSize},
		{"paginate.max_pages", p.MaxPages, DefaultMaxPages},
		{"paginate.offset_field", p.OffsetField, "offset"},
		{"paginate.result (from request.result)", p.Result, "ids"},
		{"enabled_if", s.EnabledIf, GateNone},
		{"timezone (left empty, UTC applies)", s.Timezone, ""},
		{"run_on_start", s.RunOnStart, false},
		{"timeout", s.Timeout, time.Duration(0)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if DefaultPageSize != 50 || DefaultMaxPages != 100 {
		t.Errorf("DefaultPageSize=%d DefaultMaxPages=%d, want 50 and 100", DefaultPageSize, DefaultMaxPages)
	}
}

// okTask is a valid task; bad cases are built by changing one thing.
const okTask = `
  - name: t1
    every: 1h
    request:
      service: backend
      path: /x
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		task  string   // task of the expected *FieldError ("" if none is expected)
		field string   // its field
		want  []string // substrings of the error
	}{
		// Unknown fields, at every level.
		{"unknown top-level field", "tasks:" + okTask + "version: 2\n", "", "", []string{"version", "top-level"}},
		{"unknown task field", "tasks:" + okTask + "    colour: red\n", "t1", "colour", []string{`"t1"`, "colour", "unknown", "not found"}},
		{"unknown request field", "tasks:" + okTask + "      headers: {a: b}\n", "t1", "request.headers", []string{`"t1"`, "request.headers", "unknown"}},
		{"unknown paginate field", `
tasks:
  - name: t1
    every: 1h
    request: {service: backend, path: /x, result: ids}
    paginate: {mode: drain, size_field: n, pages: 3}
`, "t1", "paginate.pages", []string{`"t1"`, "paginate.pages", "unknown"}},
		{"field given twice", `
tasks:
  - name: t1
    every: 1h
    every: 2h
    request: {service: backend, path: /x}
`, "t1", "every", []string{`"t1"`, "every", "twice"}},

		// Schedules.
		{"bad duration", strings.Replace("tasks:"+okTask, "1h", "1x", 1), "t1", "every", []string{`"t1"`, "every", `"1x"`}},
		{"negative duration", strings.Replace("tasks:"+okTask, "1h", "-5s", 1), "t1", "every", []string{`"t1"`, "every", "-5s", "positive"}},
		{"zero duration", strings.Replace("tasks:"+okTask, "1h", "0s", 1), "t1", "every", []string{`"t1"`, "every", "0s", "positive"}},
		{"empty duration", strings.Replace("tasks:"+okTask, "1h", `""`, 1), "t1", "every", []string{`"t1"`, "every"}},
		{"at out of range", strings.Replace("tasks:"+okTask, "every: 1h", `at: "25:00"`, 1), "t1", "at", []string{`"t1"`, "at", "25:00"}},
		{"at not two digits", strings.Replace("tasks:"+okTask, "every: 1h", `at: "9:3"`, 1), "t1", "at", []string{`"t1"`, "at", "9:3"}},
		{"bad weekday", strings.Replace("tasks:"+okTask, "every: 1h", "at: \"10:00\"\n    weekdays: [monday, funday]", 1), "t1", "weekdays", []string{`"t1"`, "weekdays", "funday"}},
		{"weekdays without at", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    weekdays: [monday]", 1), "t1", "weekdays", []string{`"t1"`, "weekdays", "at"}},
		{"weekdays with cron", strings.Replace("tasks:"+okTask, "every: 1h", "cron: \"0 9 * * *\"\n    weekdays: [monday]", 1), "t1", "weekdays", []string{`"t1"`, "weekdays"}},
		{"unknown time zone", strings.Replace("tasks:"+okTask, "every: 1h", "at: \"10:00\"\n    timezone: Mars/Olympus", 1), "t1", "timezone", []string{`"t1"`, "timezone", "Mars/Olympus"}},
		{"time zone with every", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    timezone: UTC", 1), "t1", "timezone", []string{`"t1"`, "timezone"}},
		{"cron value out of range", strings.Replace("tasks:"+okTask, "every: 1h", `cron: "61 * * * *"`, 1), "t1", "cron", []string{`"t1"`, "cron", "61 * * * *"}},
		{"cron with 4 fields", strings.Replace("tasks:"+okTask, "every: 1h", `cron: "* * * *"`, 1), "t1", "cron", []string{`"t1"`, "cron", "* * * *"}},
		{"no schedule", strings.Replace("tasks:"+okTask, "    every: 1h\n", "", 1), "t1", "every|at|cron", []string{`"t1"`, "every", "at", "cron"}},
		{"two schedules", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    cron: \"0 * * * *\"", 1), "t1", "every|at|cron", []string{`"t1"`, "exactly one"}},
		{"three schedules", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    at: \"10:00\"\n    cron: \"0 * * * *\"", 1), "t1", "every|at|cron", []string{`"t1"`, "exactly one"}},
		{"bad timeout", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    timeout: soon", 1), "t1", "timeout", []string{`"t1"`, "timeout", "soon"}},
		{"zero timeout", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    timeout: 0s", 1), "t1", "timeout", []string{`"t1"`, "timeout"}},
		{"run_on_start not a bool", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    run_on_start: maybe", 1), "t1", "run_on_start", []string{`"t1"`, "run_on_start"}},

		// Names.
		{"duplicate names", "tasks:" + okTask + okTask, "t1", "name", []string{`"t1"`, "duplicate"}},
		{"bad name", strings.Replace("tasks:"+okTask, "t1", "Extract_Todos", 1), "Extract_Todos", "name", []string{`"Extract_Todos"`, "name", "kebab"}},
		{"missing name", strings.Replace("tasks:"+okTask, "- name: t1\n    every", "- every", 1), "#1", "name", []string{`"#1"`, "name", "required"}},
		{"name not a string", strings.Replace("tasks:"+okTask, "name: t1", "name: {a: b}", 1), "#1", "name", []string{`"#1"`, "name"}},

		// Requests.
		{"missing request", "tasks:\n  - name: t1\n    every: 1h\n", "t1", "request", []string{`"t1"`, "request", "required"}},
		{"request not a mapping", "tasks:\n  - name: t1\n    every: 1h\n    request: /x\n", "t1", "request", []string{`"t1"`, "request"}},
		{"bad service", strings.Replace("tasks:"+okTask, "service: backend", "service: frontend", 1), "t1", "request.service", []string{`"t1"`, "request.service", "frontend"}},
		{"missing service", strings.Replace("tasks:"+okTask, "      service: backend\n", "", 1), "t1", "request.service", []string{`"t1"`, "request.service", "required"}},
		{"bad method", strings.Replace("tasks:"+okTask, "path: /x", "path: /x\n      method: FETCH", 1), "t1", "request.method", []string{`"t1"`, "request.method", "FETCH"}},
		{"path without slash", strings.Replace("tasks:"+okTask, "path: /x", "path: x", 1), "t1", "request.path", []string{`"t1"`, "request.path", `"x"`}},
		{"missing path", strings.Replace("tasks:"+okTask, "      path: /x\n", "", 1), "t1", "request.path", []string{`"t1"`, "request.path"}},
		{"body with datetime", strings.Replace("tasks:"+okTask, "path: /x", "path: /x\n      body: {datetime: now}", 1), "t1", "request.body.datetime", []string{`"t1"`, "request.body.datetime"}},
		{"query not a mapping", strings.Replace("tasks:"+okTask, "path: /x", "path: /x\n      query: [a, b]", 1), "t1", "request.query", []string{`"t1"`, "request.query"}},
		{"auth not a bool", strings.Replace("tasks:"+okTask, "path: /x", "path: /x\n      auth: sometimes", 1), "t1", "request.auth", []string{`"t1"`, "request.auth"}},
		{"enabled_if unknown gate", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    enabled_if: sms", 1), "t1", "enabled_if", []string{`"t1"`, "enabled_if", "sms"}},
		{"misfire unknown", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    misfire: always", 1), "t1", "misfire", []string{`"t1"`, "misfire", "always"}},
		{"misfire_grace bad", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    misfire_grace: soon", 1), "t1", "misfire_grace", []string{`"t1"`, "misfire_grace", "soon"}},
		{"overlap unknown", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    overlap: queue_all", 1), "t1", "overlap", []string{`"t1"`, "overlap", "queue_all"}},
		{"jitter not below the period", strings.Replace("tasks:"+okTask, "every: 1h", "every: 1h\n    jitter: 2h", 1), "t1", "jitter", []string{`"t1"`, "jitter", "shorter than the period"}},

		// Pagination.
		{"paginate bad mode", paginated("mode: cursor\n      size_field: n"), "t1", "paginate.mode", []string{`"t1"`, "paginate.mode", "cursor"}},
		{"paginate missing mode", paginated("size_field: n"), "t1", "paginate.mode", []string{`"t1"`, "paginate.mode"}},
		// Decision: an explicit size of 0 in a file is a mistake, not a
		// request for the default (leave the field out for that).
		{"paginate size 0", paginated("mode: drain\n      size_field: n\n      size: 0"), "t1", "paginate.size", []string{`"t1"`, "paginate.size", "0"}},
		{"paginate size 51", paginated("mode: drain\n      size_field: n\n      size: 51"), "t1", "paginate.size", []string{`"t1"`, "paginate.size", "51", "50"}},
		{"paginate negative size", paginated("mode: drain\n      size_field: n\n      size: -1"), "t1", "paginate.size", []string{`"t1"`, "paginate.size", "-1"}},
		{"paginate size not a number", paginated("mode: drain\n      size_field: n\n      size: many"), "t1", "paginate.size", []string{`"t1"`, "paginate.size", "many"}},
		{"paginate missing size_field", paginated("mode: drain"), "t1", "paginate.size_field", []string{`"t1"`, "paginate.size_field", "required"}},
		{"paginate missing result", strings.Replace(paginated("mode: drain\n      size_field: n"), "      result: ids\n", "", 1), "t1", "paginate.result", []string{`"t1"`, "paginate.result", "required"}},
		{"paginate offset_field in drain mode", paginated("mode: drain\n      size_field: n\n      offset_field: offset"), "t1", "paginate.offset_field", []string{`"t1"`, "paginate.offset_field", "offset mode"}},
		{"paginate max_pages 0", paginated("mode: drain\n      size_field: n\n      max_pages: 0"), "t1", "paginate.max_pages", []string{`"t1"`, "paginate.max_pages"}},
		{"paginate with GET", strings.Replace(paginated("mode: drain\n      size_field: n"), "path: /x", "path: /x\n      method: GET", 1), "t1", "paginate", []string{`"t1"`, "paginate", "GET"}},

		// Files that are not task files.
		{"empty file", "", "", "", []string{"empty"}},
		{"only comments", "# nothing here\n", "", "", []string{"empty"}},
		{"only a document marker", "---\n", "", "", []string{"empty"}},
		{"no tasks key", "{}\n", "", "", []string{"tasks"}},
		{"null tasks", "tasks:\n", "", "", []string{"tasks"}},
		{"empty task list", "tasks: []\n", "", "", []string{"tasks", "empty"}},
		{"tasks not a list", "tasks: 5\n", "", "", []string{"tasks", "list"}},
		{"top level is a list", "- name: t1\n", "", "", []string{"tasks"}},
		{"task not a mapping", "tasks:\n  - t1\n", "#1", "", []string{`"#1"`, "mapping"}},
		{"invalid YAML", "tasks: [\n", "", "", []string{"invalid YAML"}},
		{"two documents", "tasks:" + okTask + "---\ntasks:" + strings.Replace(okTask, "t1", "t2", 1), "", "", []string{"document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := parseString(tt.file)
			if err == nil {
				t.Fatalf("Parse succeeded (%d specs), want an error\n%s", len(specs), tt.file)
			}
			if specs != nil {
				t.Errorf("Parse returned specs with an error: %v", specs)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
			if tt.field != "" && !hasFieldError(err, tt.task, tt.field) {
				t.Errorf("no *FieldError{Task: %q, Field: %q} in:\n%s", tt.task, tt.field, msg)
			}
		})
	}
}

// paginated is a task with a request (result "ids") and the given paginate
// fields.
func paginated(fields string) string {
	return `tasks:
  - name: t1
    every: 1h
    request:
      service: backend
      path: /x
      result: ids
    paginate:
      ` + fields + "\n"
}

func TestParseReportsEveryError(t *testing.T) {
	_, err := parseString(`tasks:
  - name: a
    every: 1x
    colour: red
    enabled_if: sms
    request: {service: backend, path: /a}
  - name: b
    every: 1h
    request: {service: mars, path: b}
  - name: b
    every: 1h
    request: {service: backend, path: /b}
  - every: 1h
    paginate: {mode: drain, size: 99, size_field: n, result: r}
`)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	for _, w := range []struct{ task, field string }{
		{"a", "every"},
		{"a", "colour"},
		{"a", "enabled_if"},
		{"b", "request.service"},
		{"b", "request.path"},
		{"b", "name"}, // duplicate
		{"#4", "name"},
		{"#4", "request"},
		{"#4", "paginate.size"},
	} {
		if !hasFieldError(err, w.task, w.field) {
			t.Errorf("missing error for task %q field %s", w.task, w.field)
		}
	}
	// The bad duration of task a is reported once, as a duration error, not
	// again as a missing schedule.
	if hasFieldError(err, "a", "every|at|cron") {
		t.Errorf("a bad every also reported as a missing schedule:\n%v", err)
	}
	if n := len(fieldErrors(err)); n != 9 {
		t.Errorf("%d field errors, want 9:\n%v", n, err)
	}
}

func TestParseErrorsGiveLines(t *testing.T) {
	_, err := parseString(`tasks:
  - name: a
    every: 1h
    request: {service: backend, path: /a}
  - name: b
    every: 1h
    request:
      service: backend
      path: /b
      result: ids
    paginate:
      mode: drain
      size_field: n
      size: 51
`)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if !strings.Contains(err.Error(), "line 14") {
		t.Errorf("error does not point at line 14 (paginate.size):\n%v", err)
	}
}

// Several errors in one task are all reported.
func TestParseReportsEveryErrorOfOneTask(t *testing.T) {
	_, err := parseString(`tasks:
  - name: Bad_Name
    at: "25:00"
    enabled_if: sms
    request:
      service: mars
      method: FETCH
      path: nowhere
      body: {datetime: x}
`)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	for _, f := range []string{"name", "at", "enabled_if", "request.service", "request.method", "request.path", "request.body.datetime"} {
		if !hasFieldError(err, "Bad_Name", f) {
			t.Errorf("no error for field %s in:\n%v", f, err)
		}
	}
}

// Booleans may use the YAML 1.1 spellings; whole numbers must be whole.
func TestParseScalars(t *testing.T) {
	specs, err := parseString(`tasks:
  - name: t1
    every: 1h
    run_on_start: yes
    request: {service: backend, path: /x, auth: no, result: ids}
    paginate: {mode: drain, size_field: n, size: 0x10}
`)
	if err != nil {
		t.Fatal(err)
	}
	if s := specs[0]; !s.RunOnStart || s.Request.Auth || s.Paginate.Size != 16 {
		t.Errorf("run_on_start=%v auth=%v size=%d, want true, false, 16", s.RunOnStart, s.Request.Auth, s.Paginate.Size)
	}
	for _, size := range []string{"2.5", `"ten"`, "[1]"} {
		_, err := parseString(paginated("mode: drain\n      size_field: n\n      size: " + size))
		if !hasFieldError(err, "t1", "paginate.size") {
			t.Errorf("size: %s: error %v", size, err)
		}
	}
}

// YAML anchors and merge keys let tasks share settings.
func TestParseMergeKeys(t *testing.T) {
	specs, err := parseString(`
tasks:
  - name: one
    every: 1h
    request: &req
      service: backend
      path: /one
      auth: false
  - name: two
    every: 2h
    request:
      <<: *req
      path: /two
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("%d specs", len(specs))
	}
	r := specs[1].Request
	if r.Path != "/two" || r.Service != ServiceBackend || r.Auth {
		t.Errorf("merged request = %+v, want path /two, service backend, auth false", *r)
	}

	// An unknown field arriving through a merge is still unknown.
	_, err = parseString(`
tasks:
  - name: one
    every: 1h
    request:
      <<: {service: backend, path: /one, verb: POST}
`)
	if !hasFieldError(err, "one", "request.verb") {
		t.Errorf("unknown merged field not reported: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "missing.yaml")
	_, err := LoadFile(missing)
	if err == nil {
		t.Fatal("LoadFile of a missing file succeeded")
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error does not name the path %s: %v", missing, err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error is not fs.ErrNotExist: %v", err)
	}

	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("tasks:"+okTask), 0o600); err != nil {
		t.Fatal(err)
	}
	specs, err := LoadFile(good)
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if len(specs) != 1 || specs[0].Name != "t1" || specs[0].Request.Method != "POST" {
		t.Errorf("LoadFile = %+v", specs)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace("tasks:"+okTask, "1h", "1x", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(bad)
	if err == nil {
		t.Fatal("LoadFile of a bad file succeeded")
	}
	for _, w := range []string{bad, `"t1"`, "every"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q: %v", w, err)
		}
	}
	if !hasFieldError(err, "t1", "every") {
		t.Errorf("no FieldError for t1.every: %v", err)
	}
}
