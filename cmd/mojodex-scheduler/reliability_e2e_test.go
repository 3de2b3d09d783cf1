//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// These tests reproduce faults and attacks against the built binary (see
// docs/reliability.md): each one was seen to fail against the behaviour it
// guards against.

// Fault: SIGKILL while the FIRST call of two runs is in flight, one task
// without pagination and one offset-paginated, then a restart on the same
// state file. Asserted: the state file holds both claimed slots as runs in
// progress (no checkpoint yet); the restart runs both again, each first
// call with the same Idempotency-Key as the killed one; each run is
// recorded once, resumed and ok, and nothing is left in progress.
func TestKill9FirstCallInFlightResumes(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	file := func(runOnStart string) string {
		return taskList(
			taskYAML("relaunch", relaunchSteps, "every: 1h", "run_on_start: "+runOnStart),
			taskYAML("home-chat", homeChat, "every: 1h", "run_on_start: "+runOnStart),
		)
	}
	const plain, paged = "/relaunch_locked_workflow_step_executions", "/home_chat"
	state := filepath.Join(t.TempDir(), "state.db")
	// Both first calls hang until the process dies.
	stub.Inject(plain, mojodexstub.Fault{Delay: time.Minute})
	stub.Inject(paged, mojodexstub.Fault{Delay: time.Minute})
	killed(t, stub, writeFile(t, file("true")), state, "both first calls in flight", func() bool {
		return len(stub.CallsTo(plain)) == 1 && len(stub.CallsTo(paged)) == 1
	})
	before := map[string]string{plain: stub.CallsTo(plain)[0].IdempotencyKey, paged: stub.CallsTo(paged)[0].IdempotencyKey}

	inFlight := map[string]store.InProgress{}
	for _, name := range []string{"relaunch", "home-chat"} {
		ts := storedState(t, state, name)
		if len(ts.InProgress) != 1 || ts.InProgress[0].Progress != (task.Progress{}) || len(ts.Runs) != 0 {
			t.Fatalf("%s after the kill: %d runs in progress %+v, %d recorded; want its claimed slot in progress, no checkpoint", name, len(ts.InProgress), ts.InProgress, len(ts.Runs))
		}
		inFlight[name] = ts.InProgress[0]
	}
	if k := apiclient.IdempotencyKey("home-chat", inFlight["home-chat"].Slot, 1); k != before[paged] {
		t.Fatalf("the killed call's key %s is not page 1 of the slot in progress (%s)", before[paged], k)
	}

	// The restart does not fire at start: only the resumed runs call.
	logs := runUntil(t, stub, writeFile(t, file("false")), state, "the resumed runs to finish", func(logs string) bool {
		return strings.Count(logs, `"message":"run finished"`) == 2
	})
	if n := strings.Count(logs, "resuming a run left in progress by the previous process"); n != 2 {
		t.Errorf("%d runs resumed in the logs, want 2:\n%s", n, logs)
	}
	if got := keysAfter(stub, plain, 1); len(got) != 1 || len(got[before[plain]]) != 1 {
		t.Errorf("calls to %s after the restart by key: %v; want one, with the killed call's key %s", plain, got, before[plain])
	}
	got := keysAfter(stub, paged, 1)
	slot := inFlight["home-chat"].Slot
	for page, offset := range []float64{0, 50, 100} {
		key := apiclient.IdempotencyKey("home-chat", slot, page+1)
		if o := got[key]; len(o) != 1 || o[0] != offset {
			t.Errorf("page %d after the restart: offsets %v, want [%v]", page+1, o, offset)
		}
	}
	if len(got) != 3 || len(stub.CallsTo(paged)) != 4 {
		t.Errorf("%d calls to %s (%d keys after the restart), want 1 killed and 3 resumed", len(stub.CallsTo(paged)), paged, len(got))
	}
	for name, want := range map[string]struct{ pages, items int }{"relaunch": {1, 2}, "home-chat": {3, 110}} {
		ts := storedState(t, state, name)
		if len(ts.InProgress) != 0 || len(ts.Runs) != 1 {
			t.Errorf("%s: %d runs recorded, %d in progress; want one recorded, none in progress", name, len(ts.Runs), len(ts.InProgress))
			continue
		}
		r := ts.Runs[0]
		if !r.Resumed || r.Outcome != task.OutcomeOK || !r.Slot.Equal(inFlight[name].Slot) || r.Pages != want.pages || r.Items != want.items {
			t.Errorf("%s recorded as %+v; want the killed slot resumed, ok, %d pages, %d items", name, r, want.pages, want.items)
		}
	}
}

// Fault: SIGKILL while three runs of one `overlap: allow` task are in
// progress (two waiting for their second page, one for its first), then a
// restart on the same state file. Asserted: the state file holds the
// three slots, each with its own checkpoint; the restart resumes all
// three from there (same Idempotency-Keys, no page fetched twice); each is
// recorded once, and nothing is left in progress.
func TestKill9OverlapAllowResumesEveryRun(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	tasks := taskFile(t, taskYAML("home-chat", homeChat, "every: 1s", "run_on_start: true", "overlap: allow"))
	const path = "/home_chat"
	state := filepath.Join(t.TempDir(), "state.db")
	// Runs one second apart: A's page 1, A's page 2 (hangs), B's page 1,
	// B's page 2 (hangs), C's page 1 (hangs).
	hang := mojodexstub.Fault{Delay: time.Minute}
	stub.Inject(path, mojodexstub.Fault{}, hang, mojodexstub.Fault{}, hang, hang)
	killed(t, stub, tasks, state, "three runs in progress", func() bool { return len(stub.CallsTo(path)) == 5 })

	ts := storedState(t, state, "home-chat")
	if len(ts.InProgress) != 3 {
		t.Fatalf("%d runs in progress after the kill, want 3: %+v", len(ts.InProgress), ts.InProgress)
	}
	wantProgress := []task.Progress{{Pages: 1, Offset: 50, Items: 50}, {Pages: 1, Offset: 50, Items: 50}, {}}
	for i, ip := range ts.InProgress {
		if ip.Progress != wantProgress[i] {
			t.Errorf("run in progress %d (slot %v): checkpoint %+v, want %+v", i, ip.Slot, ip.Progress, wantProgress[i])
		}
	}
	killedCalls := stub.CallsTo(path)
	if killedCalls[1].IdempotencyKey != apiclient.IdempotencyKey("home-chat", ts.InProgress[0].Slot, 2) ||
		killedCalls[4].IdempotencyKey != apiclient.IdempotencyKey("home-chat", ts.InProgress[2].Slot, 1) {
		t.Fatalf("the killed calls do not belong to the slots in progress")
	}

	slots := make([]time.Time, 3)
	for i, ip := range ts.InProgress {
		slots[i] = ip.Slot
	}
	isResumed := func(r task.Run) bool {
		return slices.ContainsFunc(slots, r.Slot.Equal)
	}
	runUntil(t, stub, tasks, state, "the resumed runs to finish", func(logs string) bool {
		return linesWith(logs, `"message":"run finished"`, `"resumed":true`) == 3
	})
	got := keysAfter(stub, path, 5)
	for i, slot := range slots {
		first := 2 - i/2 // A and B resume at page 2, C at page 1
		for page := 1; page <= 3; page++ {
			offsets := got[apiclient.IdempotencyKey("home-chat", slot, page)]
			switch {
			case page < first && len(offsets) != 0:
				t.Errorf("run %d: page %d fetched again after the restart", i, page)
			case page >= first && (len(offsets) != 1 || offsets[0] != float64(50*(page-1))):
				t.Errorf("run %d: page %d after the restart at offsets %v, want once at %d", i, page, offsets, 50*(page-1))
			}
		}
	}
	ts = storedState(t, state, "home-chat")
	if len(ts.InProgress) != 0 {
		t.Errorf("runs left in progress: %+v", ts.InProgress)
	}
	recorded := map[int64]int{}
	for _, r := range ts.Runs {
		if !isResumed(r) {
			continue // a fire of the restarted process
		}
		recorded[r.Slot.UnixNano()]++
		if !r.Resumed || r.Outcome != task.OutcomeOK || r.Pages != 3 || r.Items != 110 {
			t.Errorf("resumed run recorded as %+v, want ok, 3 pages, 110 items", r)
		}
	}
	for i, slot := range slots {
		if n := recorded[slot.UnixNano()]; n != 1 {
			t.Errorf("run %d (slot %v) recorded %d times, want once", i, slot, n)
		}
	}
}

// Fault: the backend answers 302 (to a POST) and 307 (to a PUT) pointing
// at another loopback port. Asserted: the other port receives nothing (so
// neither the secret nor a POST turned GET travels there); each call is
// made once (not followed, not retried); each run is recorded failed with
// the status and the location it pointed to.
func TestRedirectIsAFailedRun(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		fmt.Fprint(w, `{"user_workflow_step_executions_pk": [], "user_ids": []}`)
	}))
	defer other.Close()
	tasks := taskFile(t,
		hourlyAtStart("relaunch", relaunchSteps),
		hourlyAtStart("home-chat", homeChat),
	)
	stub.Inject("/relaunch_locked_workflow_step_executions", mojodexstub.Fault{Status: http.StatusFound, Location: other.URL + "/steal", Body: "{}"})
	stub.Inject("/home_chat", mojodexstub.Fault{Status: http.StatusTemporaryRedirect, Location: other.URL + "/steal-too", Body: "{}"})
	state := filepath.Join(t.TempDir(), "state.db")
	runUntil(t, stub, tasks, state, "both runs to finish", func(logs string) bool {
		return strings.Count(logs, `"message":"run finished"`) == 2
	})
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other port received %d requests", n)
	}
	for name, want := range map[string]struct {
		path     string
		status   int
		location string
	}{
		"relaunch":  {"/relaunch_locked_workflow_step_executions", http.StatusFound, other.URL + "/steal"},
		"home-chat": {"/home_chat", http.StatusTemporaryRedirect, other.URL + "/steal-too"},
	} {
		if n := len(stub.CallsTo(want.path)); n != 1 {
			t.Errorf("%s: %d calls, want 1 (a redirect is not retried)", name, n)
		}
		ts := storedState(t, state, name)
		if len(ts.Runs) != 1 {
			t.Fatalf("%s: %d runs recorded, want 1", name, len(ts.Runs))
		}
		r := ts.Runs[0]
		if r.Outcome != task.OutcomeFailed || r.Status != want.status || !strings.Contains(r.Err, "redirect to "+want.location+" refused") {
			t.Errorf("%s recorded as %+v; want failed with status %d naming %s", name, r, want.status, want.location)
		}
	}
}

// backendText is what every human and stored output of the scheduler
// showed after runs whose replies carried hostile text.
type backendText struct {
	logs, onceOut, onceErr string
	show, showJSON         map[string]string // per task: ctl show, as a table and as JSON
	list                   string            // ctl list
	state                  []byte            // the state file's bytes
}

// hostileReplies runs tasks (every one fires at start) against stub, whose
// replies the caller has set up twice over (a run, then `once`), and
// collects every output: the serving process's log, ctl list and show
// (table and JSON), once's output, the state file.
func hostileReplies(t *testing.T, stub *mojodexstub.Stub, tasks string, names []string, runs int) backendText {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state.db")
	srv := startServer(t, stub, tasks, "MOJODEX_SCHEDULER_STATE="+state)
	waitFor(t, "the runs to finish", func() bool {
		return strings.Count(srv.logs.String(), `"message":"run finished"`) == runs
	})
	out := backendText{show: map[string]string{}, showJSON: map[string]string{}}
	for _, name := range names {
		out.show[name] = ctlOK(t, srv.addr, nil, "show", name)
		out.showJSON[name] = ctlOK(t, srv.addr, nil, "show", name, "-o", "json")
	}
	out.list = ctlOK(t, srv.addr, nil, "list")

	var code int
	out.onceOut, out.onceErr, code = output(t, command(t, stub, "once", "--tasks", tasks))
	if code != 1 {
		t.Fatalf("once: exit %d, want 1 (failed runs)\n%s\n%s", code, out.onceOut, out.onceErr)
	}

	srv.stop(t)
	out.logs = srv.logs.String()
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	out.state = b
	return out
}

// Fault: the backend echoes the secret: in a 200 reply that is not JSON,
// near the 200-byte cut of the quoted snippet, in a 500 error, in a
// redirect's location and in the email gate probe's reply. Asserted: the
// secret appears nowhere: not in the serving process's log, in ctl show
// (table and JSON) or ctl list, in once's output and log, nor in any byte
// of the state file; the redaction marker shows where it was.
func TestEchoedSecretShownNowhere(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	tasks := taskFile(t,
		hourlyAtStart("relaunch", relaunchSteps),
		hourlyAtStart("todos", rescheduleTodos),
		hourlyAtStart("purchases", expirePurchases),
		hourlyAtStart("home-chat", homeChat),
		hourlyAtStart("daily-emails", dailyEmails, "enabled_if: email"),
	)
	names := []string{"relaunch", "todos", "purchases", "home-chat", "daily-emails"}
	for range 2 { // the serving process, then once
		stub.Inject("/relaunch_locked_workflow_step_executions", mojodexstub.Fault{Body: "Authorization: " + e2eSecret + " is not JSON"})
		stub.Inject("/reschedule_todo", mojodexstub.Fault{Status: 500, Body: `{"error": "secret ` + e2eSecret + ` refused"}`})
		stub.Inject("/check_expired_purchases", mojodexstub.Fault{Status: http.StatusFound, Location: "http://127.0.0.1:1/?token=" + e2eSecret, Body: "{}"})
		stub.Inject("/home_chat", mojodexstub.Fault{Body: strings.Repeat("x", 195) + e2eSecret})
		stub.Inject("/is_email_service_configured", mojodexstub.Fault{Body: `{"is_configured": "` + e2eSecret + `"}`})
	}
	out := hostileReplies(t, stub, tasks, names, 4)

	check := func(what, text string) {
		t.Helper()
		if strings.Contains(text, e2eSecret) {
			t.Errorf("the secret appears in %s:\n%s", what, text)
		}
	}
	check("the serving process's log", out.logs)
	check("ctl list", out.list)
	for _, name := range names {
		check("ctl show "+name, out.show[name])
		check("ctl show "+name+" -o json", out.showJSON[name])
	}
	check("once's output", out.onceOut)
	check("once's log", out.onceErr)
	if strings.Contains(string(out.state), e2eSecret) {
		t.Error("the secret appears in the state file's bytes")
	}
	// The replies did reach every output, redacted.
	for _, name := range []string{"relaunch", "todos", "purchases"} {
		if !strings.Contains(out.show[name], "[REDACTED]") || !strings.Contains(out.showJSON[name], "[REDACTED]") {
			t.Errorf("ctl show %s lacks the redacted reply:\n%s\n%s", name, out.show[name], out.showJSON[name])
		}
	}
	if !strings.Contains(out.show["home-chat"], `[RED`) {
		t.Errorf("ctl show home-chat lacks the redacted reply cut at 200 bytes:\n%s", out.show["home-chat"])
	}
	if n := linesWith(out.logs, "gate probe failed", "[REDACTED]"); n != 1 {
		t.Errorf("%d gate-probe warnings with the redacted reply in the log, want 1", n)
	}
	if n := linesWith(out.onceErr, "gate probe failed", "[REDACTED]"); n != 1 {
		t.Errorf("%d gate-probe warnings with the redacted reply in once's log, want 1:\n%s", n, out.onceErr)
	}
	if c := regexp.MustCompile(`(?m)^relaunch\s+failed\s.*\[REDACTED\]`); !c.MatchString(out.onceOut) {
		t.Errorf("once's output lacks the redacted reply:\n%s", out.onceOut)
	}
}

// terminalSafe reports the first raw control character in s (other than
// newline, which separates lines): C0, DEL, C1, or a line or paragraph
// separator.
func terminalSafe(s string) error {
	for i, r := range s {
		if r != '\n' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029') {
			return fmt.Errorf("raw %U at byte %d: %q", r, i, s[max(0, i-20):min(len(s), i+20)])
		}
	}
	return nil
}

// Fault: backend replies holding a newline followed by a forged JSON log
// line, ANSI escapes (clear screen, colour), a carriage return, a bell,
// DEL and a C1 CSI, in a 500 error body (kept verbatim in the run's error)
// and in a 200 reply that is not JSON. Asserted: ctl show (table and
// JSON), ctl list and once print no raw control character, the forged line
// never starts a line of output, and the text is there, escaped; every line
// of the JSON log is one valid JSON object, none of them the forged one.
func TestControlCharactersEscaped(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	tasks := taskFile(t,
		hourlyAtStart("todos", rescheduleTodos),
		hourlyAtStart("relaunch", relaunchSteps),
	)
	const hostile = "boom\n{\"level\":\"error\",\"message\":\"forged\"}\n\x1b[2J\x1b[31mred\r\a\x7f\u009b31m\u2028end"
	for range 3 { // the serving process, once, once with a console log
		stub.Inject("/reschedule_todo", mojodexstub.Fault{Status: 500, Body: hostile})
		stub.Inject("/relaunch_locked_workflow_step_executions", mojodexstub.Fault{Body: hostile})
	}
	names := []string{"todos", "relaunch"}
	out := hostileReplies(t, stub, tasks, names, 2)

	// The console log (a terminal's default) escapes the text too; its own
	// colours are the only escape sequences it writes.
	once := command(t, stub, "once", "--tasks", tasks)
	once.Env = append(once.Env, "LOG_FORMAT=console")
	_, console, _ := output(t, once) // exit 1: the runs failed
	colours := regexp.MustCompile(`\x1b\[[0-9;]*m`)
	if !strings.Contains(console, `forged`) {
		t.Errorf("the console log does not show the reply:\n%s", console)
	}

	human := map[string]string{"ctl list": out.list, "once": out.onceOut, "once's console log": colours.ReplaceAllString(console, "")}
	for _, name := range names {
		human["ctl show "+name] = out.show[name]
		human["ctl show "+name+" -o json"] = out.showJSON[name]
		if !json.Valid([]byte(out.showJSON[name])) {
			t.Errorf("ctl show %s -o json is not valid JSON:\n%s", name, out.showJSON[name])
		}
	}
	for what, text := range human {
		if err := terminalSafe(text); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if regexp.MustCompile(`(?m)^\s*\{"level"`).MatchString(text) {
			t.Errorf("%s: the forged log line starts a line:\n%s", what, text)
		}
	}
	escaped := `boom\n{"level":"error","message":"forged"}\n\x1b[2J\x1b[31mred\r\a\x7f\u009b31m\u2028end`
	if !strings.Contains(out.show["todos"], escaped) || !strings.Contains(out.onceOut, escaped) {
		t.Errorf("the 500 reply is not shown escaped (want %s):\nctl show:\n%s\nonce:\n%s", escaped, out.show["todos"], out.onceOut)
	}
	// The snippet of a reply that is not JSON is quoted (Go syntax), and the
	// quoted text escaped again for the terminal.
	quoted := `reply is not a JSON object: "boom\\n{\\"level\\":\\"error\\"`
	if !strings.Contains(out.show["relaunch"], quoted) || !strings.Contains(out.onceOut, quoted) {
		t.Errorf("the 200 reply is not shown quoted (want %s):\nctl show:\n%s\nonce:\n%s", quoted, out.show["relaunch"], out.onceOut)
	}
	for what, logs := range map[string]string{"the serving process's log": out.logs, "once's log": out.onceErr} {
		for line := range strings.Lines(logs) {
			if line == "mojodex-scheduler: 2 of 2 tasks failed\n" {
				continue // once's summary, after its log
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Errorf("%s: a line is not one JSON object (%v): %q", what, err, line)
				continue
			}
			if ev["message"] == "forged" {
				t.Errorf("%s: the forged line was logged as a line of its own", what)
			}
		}
	}
}

// mergeBomb is a task file of a few hundred bytes whose merge keys nest
// ten levels deep, each level merging the previous one ten times: about
// 10^10 nodes once expanded.
func mergeBomb() string {
	var b strings.Builder
	b.WriteString("tasks:\n  - &a0 {k: v}\n")
	for i := 1; i <= 10; i++ {
		refs := make([]string, 10)
		for j := range refs {
			refs[j] = fmt.Sprintf("*a%d", i-1)
		}
		fmt.Fprintf(&b, "  - &a%d {<<: [%s]}\n", i, strings.Join(refs, ", "))
	}
	return b.String()
}

// Fault: SIGHUP after the task file was replaced by a merge-key bomb, then
// SIGTERM; and SIGHUP after it was replaced by a named pipe that no one
// writes (opening it blocks), then SIGTERM. Asserted: the bomb is refused
// within 2 s, the log naming the file and the limit, and the task fires
// again; in both cases SIGTERM ends the process with exit code 0 within
// 2 s, a reload in progress or not.
func TestHostileReloadThenSIGTERM(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		replace func(t *testing.T, path string)
		refusal string // logged before SIGTERM; "" when the reload never ends
	}{
		{"merge-key bomb", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(mergeBomb()), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "more YAML nodes than the task file limit"},
		{"a pipe no one writes", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stub := startStub(t)
			tasks := taskFile(t, taskYAML("todos", extractTodos, "every: 1s"))
			p := startRun(t, stub, tasks)
			waitFor(t, "a first call", func() bool { return len(stub.CallsTo("/extract_todos")) >= 1 })
			tc.replace(t, tasks)
			hup := time.Now()
			p.signal(t, syscall.SIGHUP)
			if tc.refusal != "" {
				waitFor(t, "the refusal", func() bool { return linesWith(p.logs.String(), "reload refused", tc.refusal, tasks) == 1 })
				took := time.Since(hup)
				t.Logf("refused %v after SIGHUP", took.Round(time.Millisecond))
				if took > 2*time.Second {
					t.Errorf("the refusal took %v: the decoder is not bounded", took)
				}
				calls := len(stub.CallsTo("/extract_todos"))
				waitFor(t, "the task to fire after the refusal", func() bool { return len(stub.CallsTo("/extract_todos")) > calls })
			} else {
				time.Sleep(200 * time.Millisecond) // the reload is blocked opening the pipe
			}
			term := time.Now()
			p.signal(t, syscall.SIGTERM)
			switch exited, err := p.exitWithin(5 * time.Second); {
			case !exited:
				t.Fatalf("still running 5s after SIGTERM\n%s", p.logs.String())
			case err != nil:
				t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs.String())
			}
			took := time.Since(term)
			t.Logf("exited 0 %v after SIGTERM", took.Round(time.Millisecond))
			if took > 2*time.Second {
				t.Errorf("exit took %v after SIGTERM", took)
			}
		})
	}
}

// SIGINT (Ctrl-C) and SIGTERM stop the process alike: with a call in
// flight, the process waits for its answer, records the run in the state
// file, and exits with code 0.
func TestSIGINTAndSIGTERMAlike(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			stub := startStub(t)
			tasks := taskFile(t, hourlyAtStart("relaunch", relaunchSteps))
			const path, delay = "/relaunch_locked_workflow_step_executions", time.Second
			stub.Inject(path, mojodexstub.Fault{Delay: delay})
			state := filepath.Join(t.TempDir(), "state.db")
			p := startRun(t, stub, tasks, "MOJODEX_SCHEDULER_STATE="+state)
			waitFor(t, "the call in flight", func() bool { return len(stub.CallsTo(path)) == 1 })
			arrived := stub.CallsTo(path)[0].At
			p.stopWith(t, sig)
			if waited := time.Since(arrived); waited < delay {
				t.Errorf("exited %v after the call arrived: it did not wait for the answer", waited)
			}
			if c := stub.CallsTo(path); len(c) != 1 || c[0].Status != 200 {
				t.Errorf("calls %+v, want one answered 200", c)
			}
			if n := linesWith(p.logs.String(), "shutting down", `"signal":"`+sig.String()+`"`); n != 1 {
				t.Errorf("%d shutdown lines naming %v in the log", n, sig)
			}
			ts := storedState(t, state, "relaunch")
			if len(ts.Runs) != 1 || ts.Runs[0].Outcome != task.OutcomeOK || len(ts.InProgress) != 0 {
				t.Errorf("stored after %v: %d runs %+v, %d in progress; want one ok run", sig, len(ts.Runs), ts.Runs, len(ts.InProgress))
			}
		})
	}
}
