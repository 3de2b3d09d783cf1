package main

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// These tests run the commands run, once and validate as separate
// processes (see e2e_test.go).

// SIGTERM while a call is in flight: the binary stops firing, lets the call
// finish, records the run and exits 0.
func TestRunSIGTERMFinishesCallInFlight(t *testing.T) {
	stub := startStub(t)
	p := startRun(t, stub, taskFile(t, taskYAML("quick-todos", extractTodos, "every: 1s")))

	// Let two runs happen on their 1 s slots, then make the third call slow.
	waitFor(t, "two calls", func() bool { return len(stub.CallsTo("/extract_todos")) >= 2 })
	stub.Inject("/extract_todos", mojodexstub.Fault{Delay: 1500 * time.Millisecond})
	waitFor(t, "the slow call to arrive", func() bool { return len(stub.CallsTo("/extract_todos")) >= 3 })
	sent := time.Now()
	p.stopWith(t, syscall.SIGTERM)
	if waited := time.Since(sent); waited < time.Second {
		t.Errorf("exited %v after SIGTERM: it did not wait for the call in flight", waited)
	}
	calls := stub.CallsTo("/extract_todos")
	if len(calls) != 3 || calls[2].Status != 200 {
		t.Errorf("calls: %d, last status %d; want 3 with the slow one answered 200", len(calls), calls[len(calls)-1].Status)
	}
	// Fires were one second apart on their slots.
	if gap := calls[1].At.Sub(calls[0].At); gap < 800*time.Millisecond || gap > 1200*time.Millisecond {
		t.Errorf("calls %v apart, want 1s", gap)
	}
	logs := p.logs.String()
	if n := strings.Count(logs, `"message":"run finished"`); n != 3 {
		t.Errorf("%d runs finished in the logs, want 3:\n%s", n, logs)
	}
	if strings.Contains(logs, e2eSecret) {
		t.Error("the secret appears in the logs")
	}
}

// `once` runs every default task to the end of its pagination and prints a
// line per task; a failing task makes the exit code 1.
func TestOnce(t *testing.T) {
	stub := startStub(t)
	stdout, stderr, code := output(t, command(t, stub, "once"))
	if code != 0 {
		t.Fatalf("once: exit %d\n%s", code, stderr)
	}
	want := map[string]string{ // outcome, pages, items, status, duration, error
		"purchases-expiration-checker":      `ok\s+2\s+60\s+200\s+\S+\s+-$`,
		"extract-todos":                     `ok\s+1\s+3\s+200\s+\S+\s+-$`,
		"reschedule-todos":                  `ok\s+1\s+4\s+200\s+\S+\s+-$`,
		"send-todo-daily-emails":            `ok\s+3\s+120\s+200\s+\S+\s+-$`,
		"check-disengaged-free-trial-users": `ok\s+2\s+75\s+200\s+\S+\s+-$`,
		"first-home-chat-of-week":           `ok\s+3\s+110\s+200\s+\S+\s+-$`,
		"relaunch-locked-steps":             `ok\s+1\s+2\s+200\s+\S+\s+-$`,
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(want)+1 || !regexp.MustCompile(`^TASK\s+OUTCOME\s+PAGES\s+ITEMS\s+STATUS\s+DURATION\s+ERROR$`).MatchString(lines[0]) {
		t.Fatalf("%d lines, want a header and %d:\n%s", len(lines), len(want), stdout)
	}
	for name, re := range want {
		if !regexp.MustCompile(`(?m)^` + name + `\s+` + re).MatchString(stdout) {
			t.Errorf("no line for %s matching %q in:\n%s", name, re, stdout)
		}
	}

	stub.Inject("/reschedule_todo", mojodexstub.Fault{Status: 403, Body: `{"error":"forbidden"}`})
	stdout, _, code = output(t, command(t, stub, "once", "reschedule-todos", "extract-todos"))
	if code != 1 {
		t.Fatalf("once with a failing task: exit %d, want 1", code)
	}
	if !regexp.MustCompile(`(?m)^reschedule-todos\s+failed\s+1\s+0\s+403\s+\S+\s+.*unexpected status 403`).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^extract-todos\s+ok`).MatchString(stdout) {
		t.Errorf("output:\n%s", stdout)
	}
}

// `validate` prints every task with three fire times; bad input gets a
// clear error naming the variable or the task and field, exit code non-zero.
func TestValidateAndBadInput(t *testing.T) {
	stub := startStub(t)
	cmd := command(t, stub, "validate")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "configuration is valid: 7 tasks") ||
		!regexp.MustCompile(`first-home-chat-of-week\s+every 1h0m0s\s+backend PUT /home_chat`).Match(out) {
		t.Errorf("output:\n%s", out)
	}

	cases := []struct {
		name  string
		env   []string
		args  []string
		wants []string
	}{
		{"no backend URI", []string{"BACKGROUND_BACKEND_URI=http://b:5000", "MOJODEX_SCHEDULER_SECRET=x"}, []string{"run"}, []string{"MOJODEX_BACKEND_URI", "is required"}},
		{"malformed URI", []string{"MOJODEX_BACKEND_URI=mojodex_backend:5000", "BACKGROUND_BACKEND_URI=http://b:5000", "MOJODEX_SCHEDULER_SECRET=x"}, []string{"validate"}, []string{"MOJODEX_BACKEND_URI", "absolute"}},
		{"no secret", []string{"MOJODEX_BACKEND_URI=http://a:5000", "BACKGROUND_BACKEND_URI=http://b:5000"}, []string{"once"}, []string{"MOJODEX_SCHEDULER_SECRET"}},
		{"bad log level", []string{"LOG_LEVEL=loud"}, []string{"validate"}, []string{"LOG_LEVEL", "loud"}},
		{"bad duration variable", []string{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT=soon"}, []string{"validate"}, []string{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT"}},
		{"unknown task", nil, []string{"once", "no-such-task"}, []string{`unknown task "no-such-task"`}},
		{"missing task file", nil, []string{"validate", "--tasks", "/nonexistent/tasks.yaml"}, []string{"/nonexistent/tasks.yaml"}},
		{"bad task file", nil, []string{"validate", "--tasks", writeFile(t, "tasks:\n  - name: x\n    every: 5 minutes\n    request: {service: backend, path: /p}\n")}, []string{`"x"`, "invalid duration", "5 minutes"}},
		{"duplicate and unknown field", nil, []string{"validate", "--tasks", writeFile(t, "tasks:\n  - name: a\n    every: 1m\n    colour: red\n    request: {service: backend, path: /p}\n")}, []string{"colour", "not found"}},
		{"bad timezone", nil, []string{"validate", "--tasks", writeFile(t, "tasks:\n  - name: a\n    at: \"10:00\"\n    timezone: Mars/Olympus\n    request: {service: backend, path: /p}\n")}, []string{`task "a"`, "timezone", "Mars/Olympus"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(t, nil, tc.args...)
			if tc.env != nil {
				cmd.Env = append(cmd.Env, tc.env...)
			} else {
				cmd.Env = append(cmd.Env, "MOJODEX_BACKEND_URI="+stub.BackendURL(), "BACKGROUND_BACKEND_URI="+stub.BackgroundURL(), "MOJODEX_SCHEDULER_SECRET=x")
			}
			out, err := cmd.CombinedOutput()
			if exitCode(t, err) == 0 {
				t.Fatalf("exit 0, want a non-zero exit; output:\n%s", out)
			}
			if panicked(string(out)) {
				t.Fatalf("panicked:\n%s", out)
			}
			containsAll(t, string(out), tc.wants...)
		})
	}
}

// `run --demo` serves its own stub: every default task fires at start and
// succeeds within seconds.
func TestRunDemo(t *testing.T) {
	p := startProc(t, command(t, nil, "run", "--demo"))
	waitFor(t, "seven successful runs", func() bool {
		return strings.Count(p.logs.String(), `"outcome":"ok"`) >= 7
	})
	p.stopWith(t, syscall.SIGTERM)
	if strings.Contains(p.logs.String(), `"outcome":"failed"`) {
		t.Errorf("a demo run failed:\n%s", p.logs.String())
	}
}
