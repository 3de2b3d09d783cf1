package task

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	edlib "github.com/hbollon/go-edlib"
	"go.yaml.in/yaml/v3"
)

// taskFile is a file of one task whose fields are given one per line: the
// first is on line 2, the next on line 3, and so on. A field may span
// lines ("request:\n  path: /x" is written "request:", "  path: /x").
func taskFile(fields ...string) string {
	return "tasks:\n  - " + strings.Join(fields, "\n    ") + "\n"
}

// problem is one reported problem: its line and, for a task, its field.
type reported struct {
	line int
	fe   *FieldError // nil for a problem of the file
	msg  string
}

// reportedProblems lists the problems of a Parse error, in their order.
func reportedProblems(t *testing.T, err error) []reported {
	t.Helper()
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	var out []reported
	for _, e := range list {
		var r reported
		var l located
		if errors.As(e, &l) {
			r.line = l.line
		}
		errors.As(e, &r.fe)
		r.msg = e.Error()
		out = append(out, r)
	}
	return out
}

const req = "request: {service: backend, path: /x}"

// Every field of the schema, with each kind of bad value: exactly one
// problem, on the right task, field and line.
func TestParseFieldErrors(t *testing.T) {
	paged := func(extra ...string) string {
		return taskFile(append([]string{"name: t1", "every: 1h", "request: {service: backend, path: /x, result: ids}",
			"paginate:", "  mode: drain", "  size_field: n"}, extra...)...)
	}
	tests := []struct {
		name  string
		file  string
		task  string // "" means t1
		field string
		line  int
		want  []string
	}{
		{"name not kebab case", taskFile("name: Bad_Name", "every: 1h", req), "Bad_Name", "name", 2, []string{`"Bad_Name"`, "kebab"}},
		{"name a mapping", taskFile("name: {a: b}", "every: 1h", req), "#1", "name", 2, []string{"want a single value", "a mapping"}},
		{"name missing", taskFile("every: 1h", req), "#1", "name", 2, []string{"required"}},

		{"every bad", taskFile("name: t1", "every: 1x", req), "", "every", 3, []string{`"1x"`, "90s"}},
		{"every negative", taskFile("name: t1", "every: -5s", req), "", "every", 3, []string{`"-5s"`, "positive"}},
		{"every zero", taskFile("name: t1", "every: 0s", req), "", "every", 3, []string{`"0s"`, "positive"}},
		{"every a list", taskFile("name: t1", "every: [1h]", req), "", "every", 3, []string{"want a duration", "a list"}},
		{"every below 1s", taskFile("name: t1", "every: 10ms", req), "", "every", 3, []string{"10ms", "shorter than 1s", "allow_subsecond"}},
		{"every 1ns", taskFile("name: t1", "every: 1ns", "allow_subsecond: true", req), "", "every", 3, []string{"1ns", "shorter than 1ms"}},
		{"every below 1ms with allow_subsecond", taskFile("name: t1", "every: 500us", "allow_subsecond: true", req), "", "every", 3, []string{"500µs", "shorter than 1ms"}},
		{"allow_subsecond not a bool", taskFile("name: t1", "every: 1h", "allow_subsecond: perhaps", req), "", "allow_subsecond", 4, []string{"true or false", `"perhaps"`}},

		{"at out of range", taskFile("name: t1", `at: "25:00"`, req), "", "at", 3, []string{`"25:00"`, "hour 25"}},
		{"at one digit", taskFile("name: t1", `at: "9:3"`, req), "", "at", 3, []string{`"9:3"`, "two digits"}},
		{"at a list", taskFile("name: t1", "at: [1]", req), "", "at", 3, []string{"want a single value"}},

		{"weekdays bad name", taskFile("name: t1", `at: "10:00"`, "weekdays: [monday, funday]", req), "", "weekdays", 4, []string{`"funday"`}},
		{"weekdays bad name on its own line", taskFile("name: t1", `at: "10:00"`, "weekdays:", "  - monday", "  - funday", req), "", "weekdays", 6, []string{`"funday"`}},
		{"weekdays not a list", taskFile("name: t1", `at: "10:00"`, "weekdays: monday", req), "", "weekdays", 4, []string{"want a list of days"}},
		{"weekdays item a list", taskFile("name: t1", `at: "10:00"`, "weekdays: [[monday]]", req), "", "weekdays", 4, []string{"want a day name"}},
		{"weekdays without at", taskFile("name: t1", "every: 1h", "weekdays: [monday]", req), "", "weekdays", 4, []string{"needs at"}},

		{"cron out of range", taskFile("name: t1", `cron: "61 * * * *"`, req), "", "cron", 3, []string{`"61 * * * *"`}},
		{"cron four fields", taskFile("name: t1", `cron: "* * * *"`, req), "", "cron", 3, []string{`"* * * *"`, "found 4"}},
		{"cron matching no date", taskFile("name: t1", `cron: "0 0 30 2 *"`, req), "", "cron", 3, []string{"matches no calendar date"}},
		{"cron @every", taskFile("name: t1", `cron: "@every 5m"`, req), "", "cron", 3, []string{"@every", "use every:"}},

		{"timezone unknown", taskFile("name: t1", `at: "10:00"`, "timezone: Mars/Olympus", req), "", "timezone", 4, []string{`unknown time zone "Mars/Olympus"`}},
		{"timezone with every", taskFile("name: t1", "every: 1h", "timezone: UTC", req), "", "timezone", 4, []string{"at and cron only"}},
		{"timezone a mapping", taskFile("name: t1", `at: "10:00"`, "timezone: {a: b}", req), "", "timezone", 4, []string{"want a single value"}},

		{"run_on_start not a bool", taskFile("name: t1", "every: 1h", "run_on_start: maybe", req), "", "run_on_start", 4, []string{"true or false", `"maybe"`}},
		{"enabled_if unknown", taskFile("name: t1", "every: 1h", "enabled_if: sms", req), "", "enabled_if", 4, []string{`"sms"`, "email, push"}},
		{"enabled_if a list", taskFile("name: t1", "every: 1h", "enabled_if: [email]", req), "", "enabled_if", 4, []string{"want a single value"}},
		{"misfire unknown", taskFile("name: t1", "every: 1h", "misfire: always", req), "", "misfire", 4, []string{`"always"`, "skip, once"}},
		{"misfire_grace bad", taskFile("name: t1", "every: 1h", "misfire_grace: soon", req), "", "misfire_grace", 4, []string{`"soon"`}},
		{"misfire_grace zero", taskFile("name: t1", "every: 1h", "misfire_grace: 0s", req), "", "misfire_grace", 4, []string{"positive"}},
		{"overlap unknown", taskFile("name: t1", "every: 1h", "overlap: queue_all", req), "", "overlap", 4, []string{`"queue_all"`, "queue_one"}},
		{"jitter not below the period", taskFile("name: t1", "every: 1h", "jitter: 2h", req), "", "jitter", 4, []string{"shorter than the period"}},
		{"jitter zero", taskFile("name: t1", "every: 1h", "jitter: 0s", req), "", "jitter", 4, []string{"positive"}},
		{"timeout bad", taskFile("name: t1", "every: 1h", "timeout: soon", req), "", "timeout", 4, []string{`"soon"`}},
		{"timeout negative", taskFile("name: t1", "every: 1h", "timeout: -1s", req), "", "timeout", 4, []string{"positive"}},
		{"timeout 1ns", taskFile("name: t1", "every: 1h", "timeout: 1ns", req), "", "timeout", 4, []string{"1ns", "out of range (1ms to 24h)"}},
		{"timeout over 24h", taskFile("name: t1", "every: 1h", "timeout: 25h", req), "", "timeout", 4, []string{"25h0m0s", "out of range (1ms to 24h)"}},
		{"run_timeout over 24h", taskFile("name: t1", "every: 1h", "run_timeout: 1000h", req), "", "run_timeout", 4, []string{"1000h0m0s", "out of range (1ms to 24h)"}},
		{"jitter over 24h", taskFile("name: t1", `at: "10:00"`, "jitter: 48h", req), "", "jitter", 4, []string{"48h0m0s", "longer than 24h"}},
		{"run_timeout bad", taskFile("name: t1", "every: 1h", "run_timeout: soon", req), "", "run_timeout", 4, []string{`"soon"`}},
		{"run_timeout zero", taskFile("name: t1", "every: 1h", "run_timeout: 0s", req), "", "run_timeout", 4, []string{"positive"}},
		{"run_timeout below 1ms", taskFile("name: t1", "every: 1h", "run_timeout: 100us", req), "", "run_timeout", 4, []string{"shorter than 1ms"}},

		{"request missing", taskFile("name: t1", "every: 1h"), "", "request", 2, []string{"required"}},
		{"request not a mapping", taskFile("name: t1", "every: 1h", "request: /x"), "", "request", 4, []string{"want a mapping (service:, method:, ...)", `"/x"`}},
		{"request.service unknown", taskFile("name: t1", "every: 1h", "request:", "  service: frontend", "  path: /x"), "", "request.service", 5, []string{`"frontend"`}},
		{"request.service missing", taskFile("name: t1", "every: 1h", "request:", "  path: /x"), "", "request.service", 4, []string{"required"}},
		{"request.service a list", taskFile("name: t1", "every: 1h", "request:", "  service: [backend]", "  path: /x"), "", "request.service", 5, []string{"want a single value"}},
		{"request.method unknown", taskFile("name: t1", "every: 1h", "request:", "  service: backend", "  path: /x", "  method: FETCH"), "", "request.method", 7, []string{`"FETCH"`}},
		{"request.method a mapping", taskFile("name: t1", "every: 1h", "request:", "  service: backend", "  path: /x", "  method: {a: b}"), "", "request.method", 7, []string{"want a single value"}},
		{"request.path without slash", taskFile("name: t1", "every: 1h", "request:", "  service: backend", "  path: x"), "", "request.path", 6, []string{`"x"`, "start with /"}},
		{"request.path missing", taskFile("name: t1", "every: 1h", "request:", "  service: backend"), "", "request.path", 4, []string{`""`}},
		{"request.auth not a bool", taskFile("name: t1", "every: 1h", "request:", "  service: backend", "  path: /x", "  auth: sometimes"), "", "request.auth", 7, []string{"true or false"}},
		{"request.body a list", taskFile("name: t1", "every: 1h", "request:", "  service: backend", "  path: /x", "  body: [1]"), "", "request.body", 7, []string{"want a mapping of JSON fields"}},
		{"request.body datetime", taskFile("name: t1", "every: 1h", "request:", "  service: backend", "  path: /x", "  body: {datetime: x}"), "", "request.body.datetime", 7, []string{"set by the scheduler"}},
		{"request.body not JSON", taskFile("name: t1", "every: 1h", "request:", "  service: backend", "  path: /x", "  body: {a: .nan}"), "", "request.body", 7, []string{"cannot be sent as JSON", "NaN"}},
		{"request.query a list", taskFile("name: t1", "every: 1h", "request:", "  service: backend", "  path: /x", "  query: [a]"), "", "request.query", 7, []string{"want a mapping of names to values"}},
		{"request.query value a list", taskFile("name: t1", "every: 1h", "request:", "  service: backend", "  path: /x", "  query:", "    a: [1]"), "", "request.query.a", 8, []string{"want a single value"}},
		{"request.result a mapping", taskFile("name: t1", "every: 1h", "request:", "  service: backend", "  path: /x", "  result: {a: b}"), "", "request.result", 7, []string{"want a single value"}},

		{"paginate not a mapping", taskFile("name: t1", "every: 1h", req, "paginate: yes"), "", "paginate", 5, []string{"want a mapping (mode:, size:, ...)"}},
		{"paginate with GET", taskFile("name: t1", "every: 1h", "request: {service: backend, path: /x, method: GET, result: ids}", "paginate: {mode: drain, size_field: n}"), "", "paginate", 5, []string{"GET"}},
		{"paginate.mode unknown", taskFile("name: t1", "every: 1h", "request: {service: backend, path: /x, result: ids}", "paginate:", "  mode: cursor", "  size_field: n"), "", "paginate.mode", 6, []string{`"cursor"`, "offset, drain"}},
		{"paginate.mode missing", taskFile("name: t1", "every: 1h", "request: {service: backend, path: /x, result: ids}", "paginate:", "  size_field: n"), "", "paginate.mode", 5, []string{`""`, "offset, drain"}},
		{"paginate.size 0", paged("  size: 0"), "", "paginate.size", 8, []string{"0 must be between 1 and 50", "leave size out"}},
		{"paginate.size 51", paged("  size: 51"), "", "paginate.size", 8, []string{"51", "between 1 and 50"}},
		{"paginate.size negative", paged("  size: -1"), "", "paginate.size", 8, []string{"-1"}},
		{"paginate.size a word", paged("  size: many"), "", "paginate.size", 8, []string{"want a whole number", `"many"`}},
		{"paginate.size a fraction", paged("  size: 2.5"), "", "paginate.size", 8, []string{"want a whole number", `"2.5"`}},
		{"paginate.size_field missing", taskFile("name: t1", "every: 1h", "request: {service: backend, path: /x, result: ids}", "paginate:", "  mode: drain"), "", "paginate.size_field", 5, []string{"required"}},
		{"paginate.size_field a list", taskFile("name: t1", "every: 1h", "request: {service: backend, path: /x, result: ids}", "paginate:", "  mode: drain", "  size_field: [n]"), "", "paginate.size_field", 7, []string{"want a single value"}},
		{"paginate.offset_field in drain mode", paged("  offset_field: start"), "", "paginate.offset_field", 8, []string{"offset mode only"}},
		{"paginate.offset_field a list", paged("  offset_field: [start]"), "", "paginate.offset_field", 8, []string{"want a single value"}},
		{"paginate.result missing", taskFile("name: t1", "every: 1h", req, "paginate:", "  mode: drain", "  size_field: n"), "", "paginate.result", 5, []string{"required"}},
		{"paginate.result a list", paged("  result: [ids]"), "", "paginate.result", 8, []string{"want a single value"}},
		{"paginate.max_pages 0", paged("  max_pages: 0"), "", "paginate.max_pages", 8, []string{"at least 1", "leave max_pages out"}},
		{"paginate.max_pages negative", paged("  max_pages: -1"), "", "paginate.max_pages", 8, []string{"-1", "at least 1"}},
		{"paginate.max_pages over the limit", paged("  max_pages: 10001"), "", "paginate.max_pages", 8, []string{"10001", "out of range (1 to 10000)"}},
		{"paginate.max_pages a word", paged("  max_pages: all"), "", "paginate.max_pages", 8, []string{"want a whole number"}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.field] = true
		t.Run(tt.name, func(t *testing.T) {
			task := tt.task
			if task == "" {
				task = "t1"
			}
			specs, err := parseString(tt.file)
			if err == nil {
				t.Fatalf("Parse succeeded (%d specs)\n%s", len(specs), tt.file)
			}
			ps := reportedProblems(t, err)
			if len(ps) != 1 {
				t.Fatalf("%d problems, want 1:\n%v\n%s", len(ps), err, tt.file)
			}
			p := ps[0]
			if p.fe == nil || p.fe.Task != task || p.fe.Field != tt.field {
				t.Errorf("problem %q is not about task %q field %s", p.msg, task, tt.field)
			}
			if p.line != tt.line {
				t.Errorf("problem on line %d, want %d: %s\n%s", p.line, tt.line, p.msg, tt.file)
			}
			if !strings.HasPrefix(p.msg, fmt.Sprintf("line %d: task %q: field %s: ", tt.line, task, tt.field)) {
				t.Errorf("message %q does not start with its line, task and field", p.msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(p.msg, w) {
					t.Errorf("message does not contain %q: %s", w, p.msg)
				}
			}
			checkOperatorMessage(t, p.msg)
		})
	}
	for _, f := range schemaFields() {
		if !covered[f] {
			t.Errorf("no error case for field %s", f)
		}
	}
}

// checkOperatorMessage fails on internal prefixes and repeated phrases.
func checkOperatorMessage(t *testing.T, msg string) {
	t.Helper()
	for _, bad := range []string{"decode:", "schedule:", "yaml:", "json:", "unmarshal", "task.file", "internal"} {
		if strings.Contains(msg, bad) {
			t.Errorf("message shows %q: %s", bad, msg)
		}
	}
	if strings.Count(msg, "unknown time zone") > 1 {
		t.Errorf("message repeats itself: %s", msg)
	}
}

// The fields new to files decode into the Spec.
func TestParseRunTimeoutAndAllowSubsecond(t *testing.T) {
	specs, err := parseString(`tasks:
  - name: fast
    every: 250ms
    allow_subsecond: true
    run_timeout: 200ms
    request: {service: backend, path: /fast}
  - name: slow
    every: 1h
    run_timeout: 45m
    request: {service: backend, path: /slow}
`)
	if err != nil {
		t.Fatal(err)
	}
	if s := specs[0]; s.Every != 250*time.Millisecond || !s.AllowSubsecond || s.RunTimeout != 200*time.Millisecond {
		t.Errorf("fast: every=%v allow_subsecond=%v run_timeout=%v", s.Every, s.AllowSubsecond, s.RunTimeout)
	}
	if s := specs[1]; s.AllowSubsecond || s.RunTimeout != 45*time.Minute {
		t.Errorf("slow: allow_subsecond=%v run_timeout=%v", s.AllowSubsecond, s.RunTimeout)
	}
}

// The three problems of one schedule are all reported, each on its line.
func TestParseReportsEveryScheduleProblem(t *testing.T) {
	_, err := parseString(taskFile("name: t1", `at: "25:00"`, "weekdays: [mondy]", "timezone: Europe/Pari", req))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	got := reportedProblems(t, err)
	want := []struct {
		line  int
		field string
		text  string
	}{
		{3, "at", `"25:00"`},
		{4, "weekdays", `"mondy"`},
		{5, "timezone", `unknown time zone "Europe/Pari"`},
	}
	if len(got) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		g := got[i]
		if g.line != w.line || g.fe == nil || g.fe.Task != "t1" || g.fe.Field != w.field || !strings.Contains(g.msg, w.text) {
			t.Errorf("problem %d = %q, want line %d, field %s, containing %s", i+1, g.msg, w.line, w.field, w.text)
		}
		checkOperatorMessage(t, g.msg)
	}

	// A bad cron expression and a bad zone are both reported too.
	_, err = parseString(taskFile("name: t1", `cron: "61 * * * *"`, "timezone: Europe/Pari", req))
	if !hasFieldError(err, "t1", "cron") || !hasFieldError(err, "t1", "timezone") {
		t.Errorf("cron and timezone not both reported:\n%v", err)
	}
}

func TestParseSuggestsKnownFields(t *testing.T) {
	tests := []struct {
		file, field, suggestion string // suggestion "" means none
	}{
		{taskFile("name: t1", "every: 1h", req, "pagniate: {}"), "pagniate", "paginate"},
		{taskFile("name: t1", "every: 1h", req, "runtimeout: 5m"), "runtimeout", "run_timeout"},
		{taskFile("name: t1", "every: 1h", req, "time_zone: UTC"), "time_zone", "timezone"},
		{taskFile("name: t1", "every: 1h", req, "weekday: [monday]"), "weekday", "weekdays"},
		{taskFile("name: t1", "every: 1h", req, "enabled: email"), "enabled", "enabled_if"},
		{taskFile("name: t1", "evry: 1h", req), "evry", "every"},
		{taskFile("name: t1", "every: 1h", "request: {service: backend, path: /x, methd: GET}"), "request.methd", "method"},
		{taskFile("name: t1", "every: 1h", "request: {service: backend, path: /x, result: r}", "paginate: {mode: drain, size_feild: n}"), "paginate.size_feild", "size_field"},
		{taskFile("name: t1", "every: 1h", req, "colour: red"), "colour", ""},
		{taskFile("name: t1", "every: 1h", req, "x: 1"), "x", ""},
		{taskFile("name: t1", "every: 1h", "request: {service: backend, path: /x, headers: {}}"), "request.headers", ""},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			_, err := parseString(tt.file)
			var msg string
			for _, p := range reportedProblems(t, err) {
				if p.fe != nil && p.fe.Field == tt.field {
					msg = p.msg
				}
			}
			if msg == "" {
				t.Fatalf("no problem on field %s:\n%v", tt.field, err)
			}
			name := tt.field[strings.LastIndexByte(tt.field, '.')+1:]
			if tt.suggestion != "" {
				if want := fmt.Sprintf("unknown field %q (did you mean %s?)", name, tt.suggestion); !strings.HasSuffix(msg, want) {
					t.Errorf("message %q does not end with %q", msg, want)
				}
			} else if strings.Contains(msg, "did you mean") || !strings.Contains(msg, "not found in the task schema (known: ") {
				t.Errorf("message %q: want the known fields and no suggestion", msg)
			}
		})
	}

	_, err := parseString("task:" + okTask)
	if err == nil || !strings.Contains(err.Error(), `line 1: unknown top-level field "task" (did you mean tasks?)`) {
		t.Errorf("top-level typo: %v", err)
	}
}

// The suggestions rest on a distance where a transposition counts as one
// edit (pagniate is one edit from paginate).
func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"every", "every", 0},
		{"pagniate", "paginate", 1}, {"evry", "every", 1}, {"tiemout", "timeout", 1},
		{"kitten", "sitting", 3}, {"ca", "abc", 3},
	} {
		if got := edlib.OSADamerauLevenshteinDistance(c.a, c.b); got != c.want {
			t.Errorf("distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// Problems come in the order of their lines, whatever the order in which
// they were found (decoding, then validation, then duplicate names).
func TestParseErrorsSortedByLine(t *testing.T) {
	_, err := parseString(`tasks:
  - name: a
    request: {service: backend, path: /a}
    every: 1h
    jitter: 2h
    colour: red
  - name: a
    timeout: soon
    cron: "0 * * * *"
    request:
      service: mars
      path: /a
  - every: 1x
    request: {service: backend, path: /c}
`)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	ps := reportedProblems(t, err)
	var lines []int
	for _, p := range ps {
		lines = append(lines, p.line)
		if !strings.HasPrefix(p.msg, fmt.Sprintf("line %d: ", p.line)) {
			t.Errorf("message does not start with its line: %s", p.msg)
		}
	}
	// jitter (5), colour (6), duplicate name (7), timeout (8),
	// request.service (11), name of #3 (13), every of #3 (13).
	if want := []int{5, 6, 7, 8, 11, 13, 13}; !slices.Equal(lines, want) {
		t.Errorf("lines %v, want %v:\n%v", lines, want, err)
	}
	for i, l := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(l, fmt.Sprintf("line %d: ", lines[i])) {
			t.Errorf("line %d of the message is %q", i+1, l)
		}
	}
}

// A task's fields are reported where they are written: in a merged mapping,
// at the anchor.
func TestParseMergedFieldLines(t *testing.T) {
	_, err := parseString(`tasks:
  - name: base
    every: 1h
    request: &req
      service: backend
      path: /x
      colour: red
  - name: other
    every: 1h
    request:
      <<: *req
      method: FETCH
`)
	ps := reportedProblems(t, err)
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%d %s %s", p.line, p.fe.Task, p.fe.Field))
	}
	want := []string{"7 base request.colour", "7 other request.colour", "12 other request.method"}
	if !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q:\n%v", got, want, err)
	}
}

// A null value counts as left out, at every level.
func TestParseNullIsLeftOut(t *testing.T) {
	specs, err := parseString(`tasks:
  - name: t1
    every: 1h
    at:
    timezone: ~
    weekdays: null
    jitter:
    enabled_if:
    request:
      service: backend
      path: /x
      auth:
      method: ~
      query: {a: "1", b: ~}
    paginate:
`)
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	if s.At != "" || s.Timezone != "" || s.Weekdays != nil || s.Jitter != 0 || s.Paginate != nil || s.EnabledIf != GateNone {
		t.Errorf("spec %+v: nulls were not left out", s)
	}
	if r := s.Request; !r.Auth || r.Method != "POST" || !reflect.DeepEqual(r.Query, map[string]string{"a": "1"}) {
		t.Errorf("request %+v: nulls were not left out", *r)
	}
}

// The enumerated types decode on their own too, with the same checks.
func TestEnumUnmarshalYAML(t *testing.T) {
	var v struct {
		Gate    Gate    `yaml:"gate"`
		Service Service `yaml:"service"`
		Mode    Mode    `yaml:"mode"`
		Misfire Misfire `yaml:"misfire"`
		Overlap Overlap `yaml:"overlap"`
	}
	if err := yaml.Unmarshal([]byte("{gate: push, service: background, mode: drain, misfire: once, overlap: allow}"), &v); err != nil {
		t.Fatal(err)
	}
	if v.Gate != GatePush || v.Service != ServiceBackground || v.Mode != ModeDrain || v.Misfire != MisfireOnce || v.Overlap != OverlapAllow {
		t.Errorf("decoded %+v", v)
	}
	for _, bad := range []string{"{gate: sms}", "{service: mars}", "{mode: cursor}", "{misfire: always}", "{overlap: queue}", "{gate: [email]}"} {
		if err := yaml.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// Every field type of the schema is one the decoder knows how to fill.
func TestSchemaTypesDecode(t *testing.T) {
	var check func(t *testing.T, typ reflect.Type, path string)
	check = func(t *testing.T, typ reflect.Type, path string) {
		for _, name := range schemaOf(typ).names {
			ft := typ.Field(schemaOf(typ).index[name]).Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case reflect.PointerTo(ft).Implements(unmarshalerType):
			case isSchemaStruct(ft):
				check(t, ft, path+name+".")
			case ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String && reflect.PointerTo(ft.Elem()).Implements(unmarshalerType):
			default:
				t.Errorf("field %s%s: type %s cannot be decoded", path, name, ft)
			}
		}
	}
	check(t, reflect.TypeFor[fileDocument](), "")
	check(t, reflect.TypeFor[fileTask](), "")
	want := []string{"name", "every", "at", "weekdays", "cron", "timezone", "run_on_start", "enabled_if", "misfire",
		"misfire_grace", "overlap", "jitter", "timeout", "run_timeout", "allow_subsecond", "request",
		"request.service", "request.method", "request.path", "request.auth", "request.body", "request.query", "request.result",
		"paginate", "paginate.mode", "paginate.size", "paginate.size_field", "paginate.offset_field", "paginate.result", "paginate.max_pages"}
	if got := schemaFields(); !slices.Equal(got, want) {
		t.Errorf("schemaFields() =\n  %q\nwant\n  %q", got, want)
	}
}
