package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/testnet"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// These tests hold the binary to what README.md tells an operator: what the
// start-up log states, what validate prints, what ctl and once answer, and
// what the error messages say. They run the built binary against the stub
// over loopback, like the other end-to-end tests.

// uiToken is the status page's token in these tests (16 characters or more).
const uiToken = "operator-ui-token-0123"

// logEvents decodes JSON log lines; a line that is not JSON fails the test,
// but for the command's own last words ("mojodex-scheduler: ...").
func logEvents(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" || strings.HasPrefix(sc.Text(), "mojodex-scheduler: ") {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, sc.Text())
		}
		out = append(out, ev)
	}
	return out
}

// eventsWith returns the events whose message is msg.
func eventsWith(evs []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, ev := range evs {
		if ev["message"] == msg {
			out = append(out, ev)
		}
	}
	return out
}

// The start-up log states the configuration in effect without a secret, an
// unknown MOJODEX_SCHEDULER_ variable is warned about with the closest
// setting, a missing state directory is created, `run finished` names the
// next fire, and with MOJODEX_SCHEDULER_UI_AUTH=all the status page needs
// the token while /metrics, /healthz and /readyz stay open.
func TestOperatorStartupLog(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	tasks := taskFile(t,
		hourlyAtStart("hourly-todos", extractTodos),
		taskYAML("locked-steps", relaunchSteps, "every: 1h"),
	)
	state := filepath.Join(t.TempDir(), "not", "yet", "state.db")
	httpAddr := testnet.FreeAddr(t)
	srv := startServer(t, stub, tasks,
		"MOJODEX_SCHEDULER_STATE="+state, "MOJODEX_SCHEDULER_HTTP_ADDR="+httpAddr, "MOJODEX_SCHEDULER_RAT=5",
		"MOJODEX_SCHEDULER_UI_TOKEN="+uiToken, "MOJODEX_SCHEDULER_UI_AUTH=all")
	waitFor(t, "the run at start", func() bool { return strings.Contains(srv.logs.String(), `"message":"run finished"`) })

	logs := srv.logs.String()
	for _, secret := range []string{e2eSecret, uiToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret (%q) is in the logs", secret)
		}
	}
	evs := logEvents(t, logs)

	warned := false
	for _, ev := range evs {
		if ev["level"] == "warn" && ev["variable"] == "MOJODEX_SCHEDULER_RAT" && ev["did_you_mean"] == "MOJODEX_SCHEDULER_RATE" {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning naming MOJODEX_SCHEDULER_RAT and MOJODEX_SCHEDULER_RATE:\n%s", logs)
	}

	if st := eventsWith(evs, "starting"); len(st) != 1 || st[0]["version"] == nil || st[0]["go_version"] == nil {
		t.Errorf("starting events: %v", st)
	}
	conf := eventsWith(evs, "configuration in effect")
	if len(conf) != 1 {
		t.Fatalf("%d configuration events, want 1:\n%s", len(conf), logs)
	}
	if conf[0]["tasks"] != 2.0 {
		t.Errorf("tasks = %v, want the count 2", conf[0]["tasks"])
	}
	cfg, _ := conf[0]["config"].(map[string]any)
	want := map[string]any{
		"backend_uri": stub.BackendURL(), "background_uri": stub.BackgroundURL(), "tasks": tasks,
		"state_kind": "file", "state": state, "rate": 10.0, "http_addr": httpAddr, "remote_addr": srv.addr,
		"mutual_tls": "off", "secret_set": true, "ui_actions": "on", "ui_auth": "all", "request_timeout_s": 30.0,
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("config %s = %#v, want %#v", k, cfg[k], v)
		}
	}
	for k, v := range cfg {
		if s, ok := v.(string); ok {
			if _, err := time.ParseDuration(s); err == nil {
				t.Errorf("config %s = %q: a duration as text (want seconds in a field named *_s)", k, s)
			}
		}
	}

	created := eventsWith(evs, "the state file's directory does not exist; creating it")
	if len(created) != 1 || created[0]["level"] != "info" || created[0]["dir"] != filepath.Dir(state) {
		t.Errorf("directory creation events: %v", created)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state file: %v", err)
	}

	// A second scheduler on the same state file stops at start, naming it.
	second := command(t, stub, "run", "--tasks", tasks)
	second.Env = append(second.Env, "MOJODEX_SCHEDULER_STATE="+state)
	out, err := second.CombinedOutput()
	if exitCode(t, err) != 1 ||
		!strings.Contains(string(out), "mojodex-scheduler: MOJODEX_SCHEDULER_STATE: ") || !strings.Contains(string(out), state) {
		t.Errorf("a second run on the same state file: %v\n%s", err, out)
	}

	for _, ev := range eventsWith(evs, "supervisor started") {
		if _, ok := ev["manual"]; ok {
			t.Errorf("supervisor started carries manual: %v", ev)
		}
	}
	fin := eventsWith(evs, "run finished")
	slot, errSlot := time.Parse(time.RFC3339Nano, asString(fin[0]["slot"]))
	next, errNext := time.Parse(time.RFC3339Nano, asString(fin[0]["next"]))
	if errSlot != nil || errNext != nil || fin[0]["task"] != "hourly-todos" {
		t.Fatalf("run finished: %v (slot: %v, next: %v)", fin[0], errSlot, errNext)
	}
	if d := next.Sub(slot); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("run finished: next fire %v after the slot, want 1h", d)
	}
	if _, ok := fin[0]["duration_s"].(float64); !ok {
		t.Errorf("run finished: no duration_s: %v", fin[0])
	}

	// The status page needs the token; the probes and the metrics do not.
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+httpAddr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/", ""); code != http.StatusSeeOther {
		t.Errorf("GET / without the token: %d, want 303 to the login", code)
	}
	if code, _ := get("/api/v1/tasks", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/tasks without the token: %d, want 401", code)
	}
	if code, body := get("/", uiToken); code != http.StatusOK || !strings.Contains(body, `href="/metrics"`) ||
		!strings.Contains(body, `href="/healthz"`) || !strings.Contains(body, `href="/readyz"`) ||
		!strings.Contains(body, `href="/api/v1/tasks"`) || !strings.Contains(body, `data-refresh="5000"`) {
		t.Errorf("GET / with the token: %d; want the page, refreshing every 5 s, linking the endpoints:\n%s", code, body)
	}
	for path, has := range map[string]string{"/metrics": "mojodex_scheduler_runs_total", "/healthz": "ok", "/readyz": "ready"} {
		if code, body := get(path, ""); code != http.StatusOK || !strings.Contains(body, has) {
			t.Errorf("GET %s without the token: %d %q", path, code, body)
		}
	}
}

// asString returns v when it is a string, else "".
func asString(v any) string {
	s, _ := v.(string)
	return s
}

// validate prints the configuration in effect and next fires with jitter,
// the same instants that a running scheduler reports through ctl list.
func TestOperatorValidateAgreesWithCtl(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	tasks := taskFile(t, taskYAML("nightly", relaunchSteps, `at: "03:00"`, "timezone: Europe/Paris", "jitter: 20m"))
	cmd := command(t, stub, "validate", "--tasks", tasks)
	cmd.Env = append(cmd.Env, "TZ=UTC", "MOJODEX_SCHEDULER_TAKS=x")
	out, stderr, code := output(t, cmd)
	if code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, out, stderr)
	}
	if strings.Contains(out+stderr, e2eSecret) {
		t.Error("validate printed the secret")
	}
	if !strings.Contains(stderr, "warning: MOJODEX_SCHEDULER_TAKS is not a known setting (did you mean MOJODEX_SCHEDULER_TASKS?)") {
		t.Errorf("stderr lacks the warning:\n%s", stderr)
	}
	for _, re := range []string{
		`(?m)^tasks\s+` + regexp.QuoteMeta(tasks) + `$`, `(?m)^backend_uri\s+` + regexp.QuoteMeta(stub.BackendURL()) + `$`,
		`(?m)^secret_set\s+true$`, `(?m)^state_kind\s+file$`, `(?m)^rate\s+10 calls/s$`, `(?m)^http_addr\s+off$`,
		`(?m)^remote_addr\s+off$`, `(?m)^mutual_tls\s+off$`, `(?m)^request_timeout\s+30s$`, `(?m)^configuration is valid: 1 tasks$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("validate output lacks %s:\n%s", re, out)
		}
	}
	m := regexp.MustCompile(`(?m)^nightly\s+(.*?)\s+backend POST \S+\s+-\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC), `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no nightly row:\n%s", out)
	}
	if !strings.Contains(m[1], "jitter") {
		t.Errorf("the schedule %q does not mention the jitter", m[1])
	}
	first, err := time.Parse(timeLayout, m[2])
	if err != nil {
		t.Fatal(err)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	if local := first.In(paris); local.Hour() != 3 || local.Minute() >= 20 || (local.Minute() == 0 && local.Second() == 0) {
		t.Errorf("first fire %s (%s in Paris): want 03:00 plus a jitter below 20m", m[2], local.Format("15:04:05"))
	}

	srv := startServer(t, stub, tasks)
	list := ctlOK(t, srv.addr, []string{"TZ=UTC"}, "list")
	row := regexp.MustCompile(`(?m)^nightly\s+scheduled\s+.+?\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC)\s`).FindStringSubmatch(list)
	if row == nil {
		t.Fatalf("ctl list:\n%s", list)
	}
	if row[1] != m[2] {
		t.Errorf("ctl list says the next fire is %s, validate said %s", row[1], m[2])
	}
}

// Pausing a task while it runs says the run will finish, and it does;
// the trigger and the pause are logged once each.
func TestOperatorPauseRunningTask(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	tasks := taskFile(t, taskYAML("slow", extractTodos, "every: 1h"))
	srv := startServer(t, stub, tasks)
	stub.Inject("/extract_todos", mojodexstub.Fault{Delay: 1500 * time.Millisecond})
	if out := ctlOK(t, srv.addr, nil, "trigger", "slow"); out != "started slow\n" {
		t.Fatalf("trigger: %q", out)
	}
	waitFor(t, "the call to arrive", func() bool { return len(stub.CallsTo("/extract_todos")) == 1 })
	if out := ctlOK(t, srv.addr, nil, "pause", "slow"); out != "paused slow: no fire until it is resumed; the run in progress will finish\n" {
		t.Errorf("pause during a run: %q", out)
	}
	waitFor(t, "the run to finish", func() bool { return strings.Contains(srv.logs.String(), `"message":"run finished"`) })
	evs := logEvents(t, srv.logs.String())
	if fin := eventsWith(evs, "run finished"); len(fin) != 1 || fin[0]["outcome"] != "ok" || fin[0]["manual"] != true {
		t.Errorf("run finished events: %v", fin)
	}
	if n := len(eventsWith(evs, "run started")); n != 1 {
		t.Errorf("%d run started events for one trigger", n)
	}
	if n := len(eventsWith(evs, "task paused")); n != 1 {
		t.Errorf("%d task paused events for one pause", n)
	}
	if r := ctl(t, srv.addr, nil, "show", "nope"); r.code != 1 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("show of an unknown task: exit %d, %q; want 1 and a message naming it", r.code, r.stderr)
	}
	show := ctlOK(t, srv.addr, nil, "show", "slow")
	if !regexp.MustCompile(`(?m)^state:\s+paused$`).MatchString(show) ||
		!regexp.MustCompile(`(?m)\smanual\s+1\.5\d*s\s+ok\s+1\s+3\s+200\s+-\s+-$`).MatchString(show) {
		t.Errorf("show slow:\n%s", show)
	}
}

// once runs against the built-in stub with --demo and prints a table; a
// run that got no response shows its status as "-".
func TestOperatorOnce(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state.db")
	cmd := command(t, nil, "once", "--demo", "extract-todos")
	cmd.Env = append(cmd.Env, "MOJODEX_SCHEDULER_STATE="+state)
	stdout, stderr, code := output(t, cmd)
	if code != 0 {
		t.Fatalf("once --demo: exit %d\n%s", code, stderr)
	}
	if !regexp.MustCompile(`^TASK\s+OUTCOME\s+PAGES\s+ITEMS\s+STATUS\s+DURATION\s+ERROR\nextract-todos\s+ok\s+1\s+3\s+200\s+\S+\s+-\n$`).MatchString(stdout) {
		t.Errorf("once --demo:\n%s", stdout)
	}

	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("once touched the state file: %v", err)
	}

	closed := "http://" + testnet.FreeAddr(t)
	cmd = command(t, nil, "once", "extract-todos")
	cmd.Env = append(cmd.Env, "MOJODEX_BACKEND_URI="+closed, "BACKGROUND_BACKEND_URI="+closed, "MOJODEX_SCHEDULER_MAX_ATTEMPTS=1")
	stdout, stderr, code = output(t, cmd)
	if code != 1 {
		t.Fatalf("once against a closed port: exit %d, want 1\n%s", code, stderr)
	}
	if !regexp.MustCompile(`(?m)^extract-todos\s+failed\s+\d+\s+0\s+-\s+\S+\s+.*connection refused`).MatchString(stdout) {
		t.Errorf("once against a closed port:\n%s", stdout)
	}
	fin := eventsWith(logEvents(t, stderr), "run finished")
	if len(fin) != 1 || fin[0]["level"] != "error" || !strings.Contains(asString(fin[0]["error"]), "connection refused") {
		t.Errorf("a failed run is logged at error with its reason: %v", fin)
	}
}

// ctl's exit codes: 2 for bad usage, 3 when nothing answers (1, refused,
// is in TestOperatorPauseRunningTask).
func TestOperatorCtlExitCodes(t *testing.T) {
	t.Parallel()
	if _, stderr, code, _ := runCtl("list", "--addr", "nonsense"); code != 2 || !strings.Contains(stderr, "not host:port") {
		t.Errorf("--addr nonsense: exit %d, %q", code, stderr)
	}
	addr := testnet.FreeAddr(t)
	if _, stderr, code, _ := runCtl("list", "--addr", addr, "--timeout", "2s"); code != 3 || !strings.Contains(stderr, "cannot connect to "+addr) {
		t.Errorf("nothing listening: exit %d, %q", code, stderr)
	}
}

// run --demo needs no setting, opens with no warning and says what to try.
func TestOperatorDemoStartsQuietly(t *testing.T) {
	t.Parallel()
	httpAddr, remoteAddr := testnet.FreeAddr(t), testnet.FreeAddr(t)
	state := filepath.Join(t.TempDir(), "state.db")
	cmd := command(t, nil, "run", "--demo")
	// LOG_FORMAT empty is auto: JSON, since standard error is not a terminal.
	cmd.Env = append(cmd.Env, "MOJODEX_SCHEDULER_HTTP_ADDR="+httpAddr, "MOJODEX_SCHEDULER_REMOTE_ADDR="+remoteAddr,
		"MOJODEX_SCHEDULER_STATE="+state, "LOG_FORMAT=")
	p := startProc(t, cmd)
	waitFor(t, "the demo to run", func() bool { return strings.Contains(p.logs.String(), "running against the demo stub") })
	p.stopWith(t, os.Interrupt) // Ctrl-C
	for _, ev := range logEvents(t, p.logs.String()) {
		msg := asString(ev["message"])
		if ev["level"] == "warn" || ev["level"] == "error" {
			t.Errorf("the demo logged a %s: %s", ev["level"], msg)
		}
		if strings.Contains(msg, "running against the demo stub") {
			if !strings.Contains(msg, "http://"+httpAddr+"/") || !strings.Contains(msg, " ctl list`") {
				t.Errorf("the demo does not say what to try next: %q", msg)
			}
			break
		}
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo touched the state file: %v", err)
	}
}

// internalPrefix matches the prefixes of the packages' own wrapping, which
// an operator cannot act on.
var internalPrefix = regexp.MustCompile(`(?:^|[\s:])(?:decode|schedule|yaml|parse): `)

// Bad settings and task files get one clear message each, naming the
// variable, or the task, field and line; task-file errors come in line
// order, with no internal prefixes.
func TestOperatorErrorMessages(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	badTasks := writeFile(t, `tasks:
  - name: b
    every: 5 minutes
    request: {service: backend, path: /p, methd: GET}
  - name: a
    at: "10:00"
    timezone: Mars/Olympus
    requets: {service: backend, path: /p}
`)
	cases := []struct {
		name  string
		env   []string
		args  []string
		wants []string
	}{
		{"background URI", []string{"BACKGROUND_BACKEND_URI=mojodex_background"}, []string{"validate"},
			[]string{`BACKGROUND_BACKEND_URI: "mojodex_background" must be an absolute http:// or https:// URL (e.g. http://mojodex_background:5000)`}},
		{"insecure remote", []string{"MOJODEX_SCHEDULER_INSECURE_REMOTE=yes"}, []string{"validate"},
			[]string{`MOJODEX_SCHEDULER_INSECURE_REMOTE: "yes" is not true or false`}},
		{"missing task file", []string{"MOJODEX_SCHEDULER_TASKS=/missing.yaml"}, []string{"validate"},
			[]string{"MOJODEX_SCHEDULER_TASKS", "/missing.yaml", "no such file"}},
		{"remote beyond loopback", []string{"MOJODEX_SCHEDULER_REMOTE_ADDR=0.0.0.0:4000"}, []string{"validate"},
			[]string{"MOJODEX_SCHEDULER_REMOTE_ADDR=0.0.0.0:4000 is not a loopback address and mutual TLS is not configured"}},
		{"log level", []string{"LOG_LEVEL=verbose"}, []string{"validate"},
			[]string{`LOG_LEVEL: "verbose" is not one of debug, info, warning, warn, error, critical`}},
		{"task file", nil, []string{"validate", "--tasks", badTasks}, []string{
			"line 3: task \"b\": field every: invalid duration \"5 minutes\"",
			"line 4: task \"b\": field request.methd: unknown field \"methd\" (did you mean method?)",
			"line 7: task \"a\": field timezone: unknown time zone \"Mars/Olympus\"",
			"line 8: task \"a\": field requets: unknown field \"requets\" (did you mean request?)",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(t, stub, tc.args...)
			cmd.Env = append(cmd.Env, tc.env...)
			out, err := cmd.CombinedOutput()
			if code := exitCode(t, err); code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			text := string(out)
			last := -1
			for _, w := range tc.wants {
				i := strings.Index(text, w)
				if i < 0 {
					t.Errorf("output lacks %q:\n%s", w, text)
					continue
				}
				if i < last {
					t.Errorf("%q comes before the line above it:\n%s", w, text)
				}
				last = i
			}
			if m := internalPrefix.FindString(text); m != "" {
				t.Errorf("output has the internal prefix %q:\n%s", m, text)
			}
			if n := strings.Count(text, "unknown time zone"); n > 1 {
				t.Errorf("%d times \"unknown time zone\":\n%s", n, text)
			}
		})
	}
}

// The troubleshooting table: a wrong secret fails the runs with 403 and
// closes the email gate (a failed probe counts as not configured); a
// closed gate skips the fires of its tasks, which ctl lists as gated.
func TestOperatorTroubleshooting(t *testing.T) {
	t.Parallel()
	tasks := taskFile(t,
		hourlyAtStart("emails", dailyEmails, "enabled_if: email"),
		hourlyAtStart("locked-steps", relaunchSteps),
	)
	for _, tc := range []struct {
		name        string
		email       bool
		secret      string
		wantLocked  string // outcome of locked-steps
		probeFailed bool
	}{
		{"email off", false, e2eSecret, "ok", false},
		{"wrong secret", true, "not-the-secret", "failed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stub, err := mojodexstub.Start(mojodexstub.Options{Secret: e2eSecret, EmailConfigured: tc.email, Backlog: mojodexstub.DefaultBacklog()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stub.Close() })
			srv := startServer(t, stub, tasks, "MOJODEX_SCHEDULER_SECRET="+tc.secret)
			waitFor(t, "both fires", func() bool {
				l := srv.logs.String()
				return strings.Contains(l, `"message":"run finished"`) && strings.Contains(l, `"message":"fire skipped: `)
			})
			evs := logEvents(t, srv.logs.String())
			skipped := eventsWith(evs, "fire skipped: the email service is not configured (enabled_if: email)")
			if len(skipped) != 1 || skipped[0]["task"] != "emails" || skipped[0]["reason"] != "gated" {
				t.Errorf("fire skipped events: %v", skipped)
			}
			fin := eventsWith(evs, "run finished")
			if len(fin) != 1 || fin[0]["task"] != "locked-steps" || fin[0]["outcome"] != tc.wantLocked {
				t.Errorf("run finished events: %v", fin)
			}
			if tc.wantLocked == "failed" && !strings.Contains(asString(fin[0]["error"]), "unexpected status 403") {
				t.Errorf("the failed run does not say 403: %v", fin[0])
			}
			probe := eventsWith(evs, "gate probe failed; treating the service as not configured")
			if tc.probeFailed != (len(probe) > 0) || tc.probeFailed && probe[0]["level"] != "warn" {
				t.Errorf("probe failures: %v", probe)
			}
			if list := ctlOK(t, srv.addr, nil, "list"); !regexp.MustCompile(`(?m)^emails\s+gated\s`).MatchString(list) {
				t.Errorf("ctl list:\n%s", list)
			}
		})
	}
}

// A port in use stops the start with a message naming the setting.
func TestOperatorAddressInUse(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := command(t, stub, "run")
	cmd.Env = append(cmd.Env, "MOJODEX_SCHEDULER_HTTP_ADDR="+ln.Addr().String())
	done := make(chan struct{})
	var out []byte
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("run kept running on a port in use:\n%s", out)
	}
	if exitCode(t, err) != 1 ||
		!strings.Contains(string(out), "mojodex-scheduler: MOJODEX_SCHEDULER_HTTP_ADDR: ") || !strings.Contains(string(out), "address already in use") {
		t.Errorf("run on a port in use: %v\n%s", err, out)
	}
}
