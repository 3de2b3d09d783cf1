package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// taskNames are the tasks the example configures.
var taskNames = []string{"extract-todos", "purchases-expiration-checker", "refresh-cache"}

// runExample runs the example in-process and returns what it printed. It
// fails the test if run returns an error.
func runExample(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("run %q: %v\nstdout:\n%s", args, err, stdout.String())
	}
	return stdout.String()
}

// summaryLine matches a line of the final summary: "  task outcome: count".
var summaryLine = regexp.MustCompile(`(?m)^  ([a-z0-9-]+) ([a-z]+): (\d+)$`)

// summary parses the final summary into counts by task and outcome.
func summary(out string) map[string]map[string]int {
	counts := map[string]map[string]int{}
	for _, m := range summaryLine.FindAllStringSubmatch(out, -1) {
		if counts[m[1]] == nil {
			counts[m[1]] = map[string]int{}
		}
		n, _ := strconv.Atoi(m[3])
		counts[m[1]][m[2]] += n
	}
	return counts
}

// checkOutput asserts what every complete run of the example prints.
func checkOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"supervisor: local/mojodex-scheduler/supervisor\n",
		"TriggerTask refresh-cache: started=true",
		"TriggerTaskRequest extract-todos: started=true",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, name := range taskNames {
		if !strings.Contains(out, "ListTasks: "+name+" (every ") {
			t.Errorf("ListTasks did not list %s", name)
		}
		if !strings.Contains(out, "ListTasksRequest: "+name+" ") {
			t.Errorf("the protobuf ListTasksRequest did not list %s", name)
		}
	}
	counts := summary(out)
	for _, name := range taskNames {
		if counts[name]["ok"] < 1 {
			t.Errorf("%s: no run with outcome ok (counts %v)", name, counts[name])
		}
		for outcome, n := range counts[name] {
			if outcome != "ok" {
				t.Errorf("%s: %d runs with outcome %s", name, n, outcome)
			}
		}
	}
	if !strings.HasSuffix(out, "stopped cleanly\n") {
		t.Errorf("output does not end with a clean stop")
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", out)
	}
}

// TestRunWithBuiltInStub runs the example as `go run ./examples/embedded`
// does, against the stub it starts itself.
func TestRunWithBuiltInStub(t *testing.T) {
	t.Parallel()
	out := runExample(t, context.Background(), "-for", "1500ms")
	if !strings.HasPrefix(out, "stub: backend http://127.0.0.1:") {
		t.Errorf("the example did not start its stub:\n%s", out)
	}
	checkOutput(t, out)
	// Over 1.5s the in-process job fires on its 500ms slots besides the trigger.
	if n := summary(out)["refresh-cache"]["ok"]; n < 2 {
		t.Errorf("refresh-cache ran %d times, want the trigger and at least one scheduled run", n)
	}
}

// TestRunAgainstGivenBackend passes -backend, -background and -secret and
// checks that the HTTP tasks called that backend, with the secret.
func TestRunAgainstGivenBackend(t *testing.T) {
	t.Parallel()
	const secret = "test-secret"
	stub, err := mojodexstub.Start(mojodexstub.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stub.Close() })

	out := runExample(t, context.Background(), "-for", "1200ms",
		"-backend", stub.BackendURL(), "-background", stub.BackgroundURL(), "-secret", secret)
	if strings.Contains(out, "stub:") {
		t.Errorf("the example started a stub although a backend was given")
	}
	checkOutput(t, out)

	todos := stub.CallsTo("/extract_todos")
	if len(todos) == 0 {
		t.Fatal("no call to /extract_todos")
	}
	for _, c := range todos {
		if c.Status != 200 {
			t.Errorf("/extract_todos answered %d", c.Status)
		}
	}
	purchases := stub.CallsTo("/check_expired_purchases")
	if len(purchases) == 0 {
		t.Fatal("no call to /check_expired_purchases")
	}
	for _, c := range purchases {
		if c.Status != 200 || c.Auth != secret {
			t.Errorf("/check_expired_purchases answered %d (secret sent: %t)", c.Status, c.Auth == secret)
		}
	}
	if got, want := summary(out)["extract-todos"]["ok"], len(todos); got != want {
		t.Errorf("summary counts %d ok runs of extract-todos, the backend saw %d calls", got, want)
	}
}

// TestRunStopsWhenCancelled checks that the host's context (a signal, in
// main) ends the run early and still shuts down cleanly.
func TestRunStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	out := runExample(t, ctx, "-for", "1h")
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("run took %s despite a cancelled context", d)
	}
	for _, name := range taskNames {
		if !strings.Contains(out, "ListTasksRequest: "+name+" ") {
			t.Errorf("the protobuf ListTasksRequest did not list %s", name)
		}
	}
	if !strings.HasSuffix(out, "stopped cleanly\n") {
		t.Errorf("output does not end with a clean stop:\n%s", out)
	}
}

// TestRunRejectsHalfABackend checks that a backend without a background
// service is an error, not a silent fallback to the stub.
func TestRunRejectsHalfABackend(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-backend", "http://127.0.0.1:1"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "BackgroundURL") {
		t.Fatalf("run = %v, want an error about the missing background URL", err)
	}
}
