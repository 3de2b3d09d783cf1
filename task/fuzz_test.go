package task

import (
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and either returns specs that pass
// ValidateSet (schedules included), or an error and no specs.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 60s -fuzzminimizetime 2s ./task/
//
// (the default minimization of 60 s per new input leaves little time for
// fuzzing with seeds the size of the default file).
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		string(defaultsYAML),
		fullFile,
		"tasks:" + okTask,
		"tasks:" + okTask + okTask,
		hostileFile(),
		"tasks:\n  - &a [*a]\n",
		"tasks:\n  - name: x\n    <<: 5\n",
		taskFile("name: t1", `at: "25:00"`, "weekdays: [mondy]", "timezone: Europe/Pari", req),
		taskFile("name: t1", `cron: "0 9 * * mon-fri"`, "timezone: Europe/Paris", "request: {service: backend, path: /x, body: {a: [1, {b: c}]}, query: {n: 5}}"),
		taskFile("name: t1", "every: 500ms", "allow_subsecond: true", "run_timeout: 1s", "request: {service: backend, path: /x, result: r}", "paginate: {mode: offset, size: 10, size_field: n, max_pages: 3}"),
		"tasks:\n  - name: a\n    every: 1h\n    request: &r {service: backend, path: /a}\n  - name: b\n    every: 2h\n    request: {<<: *r, path: /b}\n",
		"---\ntasks: []\n---\n",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, file string) {
		specs, err := Parse(strings.NewReader(file))
		if err != nil {
			if specs != nil {
				t.Fatalf("specs returned with an error: %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if len(specs) == 0 {
			t.Fatal("no specs and no error")
		}
		if err := ValidateSet(specs); err != nil {
			t.Fatalf("Parse accepted specs that ValidateSet refuses: %v\n%q", err, file)
		}
	})
}
