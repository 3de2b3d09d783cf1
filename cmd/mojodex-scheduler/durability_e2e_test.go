package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/testnet"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/task"
)

// Fault: the process is killed with SIGKILL while a paginated run waits for
// its second page. Asserted: after a restart on the same state file the run
// resumes at the page it was on (same idempotency key, offset 50, not 0),
// finishes, and is recorded once as one run of 3 pages; its first page is
// never requested again; nothing is left in progress. The new start's own
// fire (run_on_start), which comes while the resumed run is in progress,
// is recorded as skipped (overlap).
func TestKill9MidPaginationResumes(t *testing.T) {
	stub := startStub(t)
	tasks := taskFile(t, hourlyAtStart("home-chat", homeChat))
	state := filepath.Join(t.TempDir(), "state.db")
	// Page 1 answers at once; page 2 hangs long enough to be killed. After
	// the restart page 2 answers at once and page 3 takes a second, so the
	// resumed run is surely in progress when the start's own fire comes.
	stub.Inject("/home_chat", mojodexstub.Fault{}, mojodexstub.Fault{Delay: time.Minute},
		mojodexstub.Fault{}, mojodexstub.Fault{Delay: time.Second})

	killed(t, stub, tasks, state, "page 2 in flight", func() bool { return len(stub.CallsTo("/home_chat")) >= 2 })
	before := stub.CallsTo("/home_chat")
	k1, k2 := before[0].IdempotencyKey, before[1].IdempotencyKey

	// The resumed run; the new start's own fire is skipped while it is in
	// progress (overlap: skip).
	logs := runUntil(t, stub, tasks, state, "the resumed run to finish", func(logs string) bool {
		return strings.Contains(logs, `"message":"run finished"`)
	})

	keys := keysAfter(stub, "/home_chat", 0)
	if got := keys[k1]; len(got) != 1 {
		t.Errorf("page 1 of the interrupted slot requested %d times, want once", len(got))
	}
	if got := keys[k2]; len(got) != 2 || got[1] != 50.0 {
		t.Errorf("page 2 of the interrupted slot: offsets %v, want [50 50] (killed, then resumed)", got)
	}
	if !strings.Contains(logs, "resuming a run left in progress by the previous process") {
		t.Errorf("no resume in the logs:\n%s", logs)
	}

	ts := storedState(t, state, "home-chat")
	if len(ts.InProgress) != 0 {
		t.Errorf("a run was left in progress: %+v", ts.InProgress)
	}
	var resumed, skipped []task.Run
	for _, r := range ts.Runs {
		if r.Resumed {
			resumed = append(resumed, r)
		} else {
			skipped = append(skipped, r)
		}
	}
	if len(resumed) != 1 || len(skipped) != 1 {
		t.Fatalf("runs recorded %+v: want the resumed run and the start's skipped fire", ts.Runs)
	}
	if r := resumed[0]; r.Outcome != task.OutcomeOK || r.Pages != 3 || r.Items != 110 || r.Slot.Equal(skipped[0].Slot) {
		t.Errorf("resumed run recorded as %+v, want ok with 3 pages and 110 items", r)
	}
	if r := skipped[0]; r.Outcome != task.OutcomeSkipped || r.Reason != task.SkipOverlap || r.Pages != 0 {
		t.Errorf("the start's fire recorded as %+v, want skipped for overlap", r)
	}
	if n := len(stub.CallsTo("/home_chat")); n != 4 {
		t.Errorf("%d calls to /home_chat, want 4 (2 before the kill, 2 after)", n)
	}
}

// Fault: SIGTERM while a call is in flight, with a state file. Asserted:
// exit code 0 after the call finished, and the state file records the run
// as finished (ok, status 200) with no checkpoint left.
func TestSIGTERMRecordsTheRun(t *testing.T) {
	stub := startStub(t)
	tasks := taskFile(t, hourlyAtStart("drain-purchases", expirePurchases))
	state := filepath.Join(t.TempDir(), "state.db")
	stub.Inject("/check_expired_purchases", mojodexstub.Fault{}, mojodexstub.Fault{Delay: 1500 * time.Millisecond})
	runUntil(t, stub, tasks, state, "page 2 in flight", func(string) bool { return len(stub.CallsTo("/check_expired_purchases")) >= 2 })
	ts := storedState(t, state, "drain-purchases")
	if len(ts.Runs) != 1 || ts.Runs[0].Outcome != "ok" || ts.Runs[0].Pages != 2 || ts.Runs[0].Status != 200 || len(ts.InProgress) != 0 {
		t.Errorf("stored state %+v, want one ok run of 2 pages and no checkpoint", ts)
	}
}

// A corrupt state file stops the start with an error naming the file; the
// file is left as it was.
func TestCorruptStateFileIsAnError(t *testing.T) {
	stub := startStub(t)
	state := writeFile(t, "this is not a database, and must not be reset\n")
	cmd := command(t, stub, "run")
	cmd.Env = append(cmd.Env, "MOJODEX_SCHEDULER_STATE="+state)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("run started on a corrupt state file:\n%s", out)
	}
	if !strings.Contains(string(out), state) || !strings.Contains(string(out), "MOJODEX_SCHEDULER_STATE") {
		t.Errorf("error does not name the file and the variable:\n%s", out)
	}
}

// The metrics endpoint exposes runs, lateness, API calls, task states and
// health after a few runs; values are checked, not only names.
func TestMetricsAndHealth(t *testing.T) {
	stub := startStub(t)
	tasks := taskFile(t,
		taskYAML("quick-todos", extractTodos, "every: 1s"),
		taskYAML("idle-hourly", rescheduleTodos, "every: 1h"),
	)
	addr := testnet.FreeAddr(t)
	startRun(t, stub, tasks, "MOJODEX_SCHEDULER_HTTP_ADDR="+addr)
	get := func(path string) (int, string) { return httpGet("http://" + addr + path) }
	waitFor(t, "readiness", func() bool { code, _ := get("/readyz"); return code == 200 })
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %d %q", code, body)
	}
	var body string
	waitFor(t, "three runs in /metrics", func() bool {
		_, body = get("/metrics")
		return strings.Contains(body, `mojodex_scheduler_runs_total{outcome="ok",task="quick-todos"} 3`)
	})
	value := func(series string) float64 {
		v, ok := metricValue(body, series)
		if !ok {
			t.Errorf("no series %s in /metrics", series)
			return -1
		}
		return v
	}
	if !regexp.MustCompile(`(?m)^mojodex_scheduler_build_info\{[^}]*go_version="go[^"]+"[^}]*\} 1$`).MatchString(body) {
		t.Errorf("no mojodex_scheduler_build_info series with the Go version in /metrics")
	}
	if v := value(`mojodex_scheduler_runs_total{outcome="ok",task="quick-todos"}`); v < 3 {
		t.Errorf("runs_total ok = %v, want >= 3", v)
	}
	if v := value(`mojodex_scheduler_fire_lateness_seconds_count{task="quick-todos"}`); v < 3 {
		t.Errorf("lateness count = %v, want >= 3", v)
	}
	if v := value(`mojodex_scheduler_fire_lateness_seconds_bucket{task="quick-todos",le="0.25"}`); v < 3 {
		t.Errorf("fires within 250 ms = %v, want every one of them", v)
	}
	if v := value(`mojodex_scheduler_api_calls_total{method="POST",path="/extract_todos",service="background",status="200"}`); v < 3 {
		t.Errorf("api_calls_total = %v, want >= 3", v)
	}
	if v := value(`mojodex_scheduler_tasks{state="scheduled"}`) + value(`mojodex_scheduler_tasks{state="running"}`); v != 2 {
		t.Errorf("tasks scheduled+running = %v, want 2", v)
	}
	if v := value(`mojodex_scheduler_tasks{state="failed"}`); v != 0 {
		t.Errorf("failed tasks = %v", v)
	}
	if v := value(`mojodex_scheduler_task_restarts_total{task="quick-todos"}`); v != 0 {
		t.Errorf("restarts = %v", v)
	}
	if t.Failed() {
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "mojodex_") {
				fmt.Println(sc.Text())
			}
		}
	}
}

// SIGHUP re-reads the task file: a new task starts firing, a removed one
// stops; an invalid file is refused and changes nothing.
func TestSIGHUPReloadsTaskFile(t *testing.T) {
	stub := startStub(t)
	tasks := taskFile(t, taskYAML("todos", extractTodos, "every: 1s"))
	p := startRun(t, stub, tasks)
	waitFor(t, "a first call", func() bool { return len(stub.CallsTo("/extract_todos")) >= 1 })

	// An invalid file: refused, the running set is unchanged.
	if err := os.WriteFile(tasks, []byte("tasks:\n  - name: Bad_Name\n    every: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "the refusal", func() bool { return strings.Contains(p.logs.String(), "reload refused") })
	before := len(stub.CallsTo("/extract_todos"))
	waitFor(t, "todos still firing", func() bool { return len(stub.CallsTo("/extract_todos")) > before })

	// A valid file: todos removed, relaunch added.
	if err := os.WriteFile(tasks, []byte(taskList(taskYAML("relaunch", relaunchSteps, "every: 1s"))), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(p.logs.String(), `"message":"task set reloaded"`) })
	stopped := len(stub.CallsTo("/extract_todos"))
	waitFor(t, "two calls of the new task", func() bool {
		return len(stub.CallsTo("/relaunch_locked_workflow_step_executions")) >= 2
	})
	if n := len(stub.CallsTo("/extract_todos")); n > stopped+1 {
		t.Errorf("the removed task kept firing: %d calls after the reload, had %d", n, stopped)
	}
}
