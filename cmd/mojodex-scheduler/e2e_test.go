package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// These tests run the built binary as a separate process against the stub
// of the Mojodex services on real loopback HTTP.

const e2eSecret = "e2e-secret"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mojodex-scheduler-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mojodex-scheduler")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func startStub(t *testing.T) *mojodexstub.Stub {
	t.Helper()
	stub, err := mojodexstub.Start(mojodexstub.Options{Secret: e2eSecret, EmailConfigured: true, Backlog: mojodexstub.DefaultBacklog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stub.Close() })
	return stub
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tasks.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// command prepares the binary with a clean environment pointing at stub.
func command(t *testing.T, stub *mojodexstub.Stub, args ...string) *exec.Cmd {
	cmd := exec.Command(binary(t), args...)
	// No remote endpoint unless a test asks for one (appended values win),
	// so that parallel processes never compete for the default port.
	// Each process gets its own state file and no metrics listener unless
	// the test sets them.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=json", "LOG_LEVEL=debug", "MOJODEX_SCHEDULER_REMOTE_ADDR=off",
		"MOJODEX_SCHEDULER_HTTP_ADDR=off", "MOJODEX_SCHEDULER_STATE=" + filepath.Join(t.TempDir(), "state.db")}
	if stub != nil {
		cmd.Env = append(cmd.Env,
			"MOJODEX_BACKEND_URI="+stub.BackendURL(),
			"BACKGROUND_BACKEND_URI="+stub.BackgroundURL(),
			"MOJODEX_SCHEDULER_SECRET="+e2eSecret)
	}
	return cmd
}

// waitFor polls cond (a real process runs on its own) for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SIGTERM while a call is in flight: the binary stops firing, lets the call
// finish, records the run and exits 0.
func TestRunSIGTERMFinishesCallInFlight(t *testing.T) {
	stub := startStub(t)
	tasks := writeFile(t, `
tasks:
  - name: quick-todos
    every: 1s
    request: {service: background, method: POST, path: /extract_todos, auth: false, result: user_task_execution_pks}
`)
	cmd := command(t, stub, "run", "--tasks", tasks)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// Let two runs happen on their 1 s slots, then make the third call slow.
	waitFor(t, "two calls", func() bool { return len(stub.CallsTo("/extract_todos")) >= 2 })
	stub.Inject("/extract_todos", mojodexstub.Fault{Delay: 1500 * time.Millisecond})
	waitFor(t, "the slow call to arrive", func() bool { return len(stub.CallsTo("/extract_todos")) >= 3 })
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
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
	logs := stderr.String()
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
	cmd := command(t, stub, "once")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("once: %v\n%s", err, stderr.String())
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
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(want)+1 || !regexp.MustCompile(`^TASK\s+OUTCOME\s+PAGES\s+ITEMS\s+STATUS\s+DURATION\s+ERROR$`).MatchString(lines[0]) {
		t.Fatalf("%d lines, want a header and %d:\n%s", len(lines), len(want), stdout.String())
	}
	for name, re := range want {
		if !regexp.MustCompile(`(?m)^` + name + `\s+` + re).MatchString(stdout.String()) {
			t.Errorf("no line for %s matching %q in:\n%s", name, re, stdout.String())
		}
	}

	stub.Inject("/reschedule_todo", mojodexstub.Fault{Status: 403, Body: `{"error":"forbidden"}`})
	cmd = command(t, stub, "once", "reschedule-todos", "extract-todos")
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("once with a failing task: %v, want exit 1", err)
	}
	if !regexp.MustCompile(`(?m)^reschedule-todos\s+failed\s+1\s+0\s+403\s+\S+\s+.*unexpected status 403`).MatchString(stdout.String()) ||
		!regexp.MustCompile(`(?m)^extract-todos\s+ok`).MatchString(stdout.String()) {
		t.Errorf("output:\n%s", stdout.String())
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
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("err %v, want a non-zero exit; output:\n%s", err, out)
			}
			if strings.Contains(string(out), "panic") || strings.Contains(string(out), "goroutine ") {
				t.Fatalf("panicked:\n%s", out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// `run --demo` serves its own stub: every default task fires at start and
// succeeds within seconds.
func TestRunDemo(t *testing.T) {
	cmd := command(t, nil, "run", "--demo")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "seven successful runs", func() bool {
		return strings.Count(stderr.String(), `"outcome":"ok"`) >= 7
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), `"outcome":"failed"`) {
		t.Errorf("a demo run failed:\n%s", stderr.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer process and a reader test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
