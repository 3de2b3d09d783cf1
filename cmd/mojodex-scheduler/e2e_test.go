package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/syncbuf"
	"github.com/mojodex/mojodex-scheduler/internal/testnet"
	"github.com/mojodex/mojodex-scheduler/internal/testpki"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// The end-to-end tests run the built binary as separate processes against
// the stub of the Mojodex services on real loopback HTTP. This file holds
// the helpers they share: the binary and its environment, task files,
// processes and their exit, the state file, /metrics, the logs, the remote
// endpoint and ctl, and certificates for mutual TLS.

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

// startStub starts the stub of the Mojodex services on loopback, with the
// email service configured and the default backlog; it is closed when the
// test ends.
func startStub(t *testing.T) *mojodexstub.Stub {
	t.Helper()
	stub, err := mojodexstub.Start(mojodexstub.Options{Secret: e2eSecret, EmailConfigured: true, Backlog: mojodexstub.DefaultBacklog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stub.Close() })
	return stub
}

// writeFile writes body to a new file of the test's and returns its path.
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
	waitForLogged(t, what, nil, cond)
}

// waitForLogged is waitFor that shows logs, when not nil, in the message of
// a timeout.
func waitForLogged(t *testing.T, what string, logs fmt.Stringer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			if logs != nil {
				t.Fatalf("timed out waiting for %s\n%s", what, logs.String())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// call is what a task of a test's task file calls: the value of its
// request field and, for a batch endpoint, of its paginate field.
type call struct{ request, paginate string }

// The endpoints of the stub that the tests' tasks call, as a task file
// spells them.
var (
	extractTodos    = call{request: "{service: background, path: /extract_todos, auth: false, result: user_task_execution_pks}"}
	rescheduleTodos = call{request: "{service: background, path: /reschedule_todo, auth: false, result: todo_pks}"}
	relaunchSteps   = call{request: "{service: backend, path: /relaunch_locked_workflow_step_executions, result: user_workflow_step_executions_pk}"}
	homeChat        = call{
		request:  "{service: backend, method: PUT, path: /home_chat}",
		paginate: "{mode: offset, size: 50, size_field: n_users, offset_field: offset, result: user_ids}",
	}
	expirePurchases = call{
		request:  `{service: backend, path: /check_expired_purchases, query: {n_purchases: "50"}}`,
		paginate: "{mode: drain, size: 50, size_field: n_purchases, result: purchase_pks}",
	}
	dailyEmails = call{
		request:  "{service: background, path: /events_generation, body: {event_type: todo_daily_emails}}",
		paginate: "{mode: offset, size: 50, size_field: n_events, offset_field: offset, result: user_ids}",
	}
)

// tagged returns c (whose request has no body) sending the JSON body
// {"task": name}, by which callsOf tells apart the calls of tasks sharing
// an endpoint.
func (c call) tagged(name string) call {
	c.request = strings.TrimSuffix(c.request, "}") + ", body: {task: " + name + "}}"
	return c
}

// taskYAML returns the entry of a task file for the task name calling c,
// with settings ("every: 1h", "run_on_start: true"...) as lines of their
// own before its request.
func taskYAML(name string, c call, settings ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n", name)
	for _, s := range settings {
		fmt.Fprintf(&b, "    %s\n", s)
	}
	fmt.Fprintf(&b, "    request: %s\n", c.request)
	if c.paginate != "" {
		fmt.Fprintf(&b, "    paginate: %s\n", c.paginate)
	}
	return b.String()
}

// hourlyAtStart is taskYAML for a task that fires at start, then every
// hour, with more settings after those.
func hourlyAtStart(name string, c call, more ...string) string {
	return taskYAML(name, c, append([]string{"every: 1h", "run_on_start: true"}, more...)...)
}

// taskList returns the text of a task file holding entries (see taskYAML).
func taskList(entries ...string) string {
	return "tasks:\n" + strings.Join(entries, "")
}

// taskFile writes a task file holding entries (see taskYAML) and returns
// its path.
func taskFile(t *testing.T, entries ...string) string {
	t.Helper()
	return writeFile(t, taskList(entries...))
}

// tickTask is the entry of a task file for the task name firing every
// second, whose calls to /extract_todos carry {"task": name}.
func tickTask(name string) string {
	return taskYAML(name, extractTodos.tagged(name), "every: 1s")
}

// twoTasks is a task file of an hourly task and a task firing every second.
var twoTasks = taskList(
	taskYAML("hourly", rescheduleTodos, "every: 1h"),
	taskYAML("quick", extractTodos, "every: 1s"),
)

// proc is a process of the binary started by startProc. Its standard error
// is kept in logs; it is killed, if it still runs, when the test ends.
type proc struct {
	cmd    *exec.Cmd
	logs   *syncbuf.Buffer
	exited chan struct{} // closed once the process has exited
	err    error         // what cmd.Wait returned, once exited is closed
}

// startProc starts cmd with its standard error in the process's logs.
func startProc(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, logs: &syncbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // once it has exited: os.ErrProcessDone
		<-p.exited
	})
	return p
}

// startRun starts `run --tasks tasks` against stub, with env appended to
// its environment (appended values win).
func startRun(t *testing.T, stub *mojodexstub.Stub, tasks string, env ...string) *proc {
	t.Helper()
	cmd := command(t, stub, "run", "--tasks", tasks)
	cmd.Env = append(cmd.Env, env...)
	return startProc(t, cmd)
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the process to exit and returns what cmd.Wait returned.
func (p *proc) wait() error {
	<-p.exited
	return p.err
}

// exitWithin waits up to d for the process to exit and returns what
// cmd.Wait returned; when it still runs after d, it is killed and exited
// is false.
func (p *proc) exitWithin(d time.Duration) (exited bool, err error) {
	select {
	case <-p.exited:
		return true, p.err
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		return false, p.wait()
	}
}

// stopWith sends sig and fails the test unless the process then exits with
// code 0.
func (p *proc) stopWith(t *testing.T, sig os.Signal) {
	t.Helper()
	p.signal(t, sig)
	if err := p.wait(); err != nil {
		t.Fatalf("exit after %v: %v\n%s", sig, err, p.logs.String())
	}
}

// terminate sends SIGTERM and expects the process to exit with code 0
// within 15 s (it is killed after that). It reports with Errorf, so that it
// may run in a cleanup.
func (p *proc) terminate(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	switch exited, err := p.exitWithin(15 * time.Second); {
	case !exited:
		t.Errorf("the scheduler did not stop on SIGTERM")
	case err != nil:
		t.Errorf("scheduler exit: %v\n%s", err, p.logs.String())
	}
}

// waitFor is waitFor with the process's log in the message of a timeout.
func (p *proc) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForLogged(t, what, p.logs, cond)
}

// exitCode returns the exit code that err, from a command's Run or Wait,
// reports: 0 for nil, the code of an *exec.ExitError (-1 for a process
// ended by a signal). Any other error means that the command did not run,
// and fails the test.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("the command did not run: %v", err)
	return 0
}

// output runs cmd to its end and returns what it printed on standard
// output and on standard error, and its exit code (see exitCode).
func output(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var out, errs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errs
	code = exitCode(t, cmd.Run())
	return out.String(), errs.String(), code
}

// panicked reports whether a process's output shows a panic or a
// goroutine dump.
func panicked(out string) bool {
	return strings.Contains(out, "panic") || strings.Contains(out, "goroutine ")
}

// containsAll fails the test for every one of wants that out lacks.
func containsAll(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// killed starts `run` on state with the task file tasks, waits for cond,
// and kills the process with SIGKILL: no shutdown code runs. It returns
// once the process is gone.
func killed(t *testing.T, stub *mojodexstub.Stub, tasks, state, what string, cond func() bool) {
	t.Helper()
	p := startRun(t, stub, tasks, "MOJODEX_SCHEDULER_STATE="+state)
	p.waitFor(t, what, cond)
	p.signal(t, syscall.SIGKILL)
	_ = p.wait()
}

// runUntil runs `run` on state (again, after killed) until finished
// reports true of its log, then stops it with SIGTERM and expects exit
// code 0; it returns the log.
func runUntil(t *testing.T, stub *mojodexstub.Stub, tasks, state, what string, finished func(logs string) bool) string {
	t.Helper()
	p := startRun(t, stub, tasks, "MOJODEX_SCHEDULER_STATE="+state)
	waitFor(t, what, func() bool { return finished(p.logs.String()) })
	p.stopWith(t, syscall.SIGTERM)
	return p.logs.String()
}

// stored is what a stopped process left in its state file for a task.
type stored struct {
	store.TaskState
	Runs []task.Run // the history, oldest first
}

// storedState reads what a stopped process left in its state file for a task.
func storedState(t *testing.T, path, taskName string) stored {
	t.Helper()
	st, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	states, err := st.Load([]string{taskName})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.History(taskName, store.HistorySize)
	if err != nil {
		t.Fatal(err)
	}
	return stored{TaskState: states[taskName], Runs: runs}
}

// keysAfter maps the Idempotency-Key of every call to path from the n-th
// on to the offsets those calls asked for.
func keysAfter(stub *mojodexstub.Stub, path string, n int) map[string][]any {
	keys := map[string][]any{}
	for _, c := range stub.CallsTo(path)[n:] {
		keys[c.IdempotencyKey] = append(keys[c.IdempotencyKey], c.Body["offset"])
	}
	return keys
}

// httpGet fetches url and returns the status and the body; when nothing
// answers within 2 s, status 0 and the error's text.
func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue returns the value of the sample series (a metric's name and
// labels, as /metrics prints them: `name{a="x"}`, or a bare name) in a
// Prometheus text exposition; ok is false when there is no such sample.
func metricValue(body, series string) (v float64, ok bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// sumMetric sums the samples of name in a Prometheus text exposition whose
// labels contain every one of labels (`result="won"`).
func sumMetric(body, name string, labels ...string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || len(line) == len(name) {
			continue
		}
		rest := line[len(name):]
		if rest[0] != ' ' && rest[0] != '{' {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// linesWith counts the lines of logs that contain every one of parts.
func linesWith(logs string, parts ...string) int {
	n := 0
	for line := range strings.Lines(logs) {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			n++
		}
	}
	return n
}

// server is a `run` process with its remote endpoint.
type server struct {
	*proc
	addr    string
	stopped bool
}

// startServer runs `run --tasks tasks` against stub with the remote endpoint
// on a free port, and waits until the endpoint listens.
func startServer(t *testing.T, stub *mojodexstub.Stub, tasks string, env ...string) *server {
	t.Helper()
	return startServerWrapped(t, stub, tasks, nil, env...)
}

// startServerWrapped is startServer with the binary run by a wrapper
// command (such as prlimit) when wrap is not empty.
func startServerWrapped(t *testing.T, stub *mojodexstub.Stub, tasks string, wrap []string, env ...string) *server {
	t.Helper()
	addr := testnet.FreeAddr(t)
	cmd := command(t, stub, "run", "--tasks", tasks)
	if len(wrap) > 0 {
		w := exec.Command(wrap[0], append(append(wrap[1:], cmd.Path), cmd.Args[1:]...)...)
		w.Env = cmd.Env
		cmd = w
	}
	cmd.Env = append(cmd.Env, "MOJODEX_SCHEDULER_REMOTE_ADDR="+addr)
	cmd.Env = append(cmd.Env, env...)
	s := &server{proc: startProc(t, cmd), addr: addr}
	t.Cleanup(func() { s.stop(t) })
	waitFor(t, "the remote endpoint to listen", func() bool {
		return strings.Contains(s.logs.String(), `"message":"remote control endpoint listening"`)
	})
	return s
}

// stop sends SIGTERM and expects a clean exit and no panic in the log; a
// second call does nothing.
func (s *server) stop(t *testing.T) {
	if s.stopped {
		return
	}
	s.stopped = true
	s.terminate(t)
	if l := s.logs.String(); panicked(l) {
		t.Errorf("the scheduler panicked:\n%s", l)
	}
}

// alive fails the test unless the process is still running.
func (s *server) alive(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the scheduler is gone: %v\n%s", err, s.logs.String())
	}
}

// ctlResult is what a ctl process printed.
type ctlResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// ctl runs `ctl args... --addr addr` with env (and nothing else but PATH).
func ctl(t *testing.T, addr string, env []string, args ...string) ctlResult {
	t.Helper()
	cmd := exec.Command(binary(t), append(append([]string{"ctl"}, args...), "--addr", addr)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	start := time.Now()
	stdout, stderr, code := output(t, cmd)
	return ctlResult{stdout: stdout, stderr: stderr, code: code, took: time.Since(start)}
}

// ctlOK runs ctl and fails the test unless it exits 0 with nothing on
// stderr; it returns stdout.
func ctlOK(t *testing.T, addr string, env []string, args ...string) string {
	t.Helper()
	r := ctl(t, addr, env, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("ctl %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// ctlFails runs ctl, expects a non-zero exit and one line on stderr
// containing every want, and returns that line.
func ctlFails(t *testing.T, addr string, env []string, wants []string, args ...string) ctlResult {
	t.Helper()
	r := ctl(t, addr, env, args...)
	if r.code == 0 {
		t.Fatalf("ctl %v: exit 0, want an error\nstdout:\n%s", args, r.stdout)
	}
	if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(lines) != 1 {
		t.Errorf("ctl %v: %d lines on stderr, want 1:\n%s", args, len(lines), r.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("ctl %v: stderr lacks %q:\n%s", args, w, r.stderr)
		}
	}
	return r
}

// jsonRun and jsonTask decode `ctl -o json` (protojson with proto names).
type jsonRun struct {
	Outcome    string `json:"outcome"`
	Pages      int    `json:"pages"`
	Items      int    `json:"items"`
	HTTPStatus int    `json:"http_status"`
	Error      string `json:"error"`
	Manual     bool   `json:"manual"`
}

type jsonTask struct {
	Name     string     `json:"name"`
	Schedule string     `json:"schedule"`
	State    string     `json:"state"`
	NextFire *time.Time `json:"next_fire"`
	LastRun  *jsonRun   `json:"last_run"`
	Runs     []jsonRun  `json:"runs"`
	Restarts int        `json:"restarts"`
}

// listJSON runs `ctl list -o json` and returns the tasks by name.
func listJSON(t *testing.T, addr string, env []string) map[string]jsonTask {
	t.Helper()
	var reply struct {
		Tasks []jsonTask `json:"tasks"`
		Error any        `json:"error"`
	}
	out := ctlOK(t, addr, env, "list", "-o", "json")
	if err := json.Unmarshal([]byte(out), &reply); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}
	if reply.Error != nil {
		t.Fatalf("list -o json: error %v", reply.Error)
	}
	tasks := map[string]jsonTask{}
	for _, tk := range reply.Tasks {
		tasks[tk.Name] = tk
	}
	return tasks
}

// pki is a throw-away CA whose certificates are written to files, as the
// scheduler and ctl read them.
type pki struct {
	dir string
	*testpki.CA
}

// newPKI creates a CA called name, its certificate in ca.pem.
func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), CA: testpki.New(t, name)}
	writePrivate(t, p.ca(), p.CertPEM())
	return p
}

// issue writes NAME.pem and NAME-key.pem: a certificate for 127.0.0.1 with
// both server and client usages, since hollywood dials back with the same
// TLS configuration it listens with.
func (p *pki) issue(t *testing.T, name string) (cert, key string) {
	t.Helper()
	certPEM, keyPEM := p.IssuePEM(t, name)
	cert, key = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writePrivate(t, cert, certPEM)
	writePrivate(t, key, keyPEM)
	return cert, key
}

// ca returns the path of the CA's certificate.
func (p *pki) ca() string { return filepath.Join(p.dir, "ca.pem") }

// issueEnv issues a certificate (see issue) and returns the environment
// that gives it, its key and the CA to the scheduler or to ctl.
func (p *pki) issueEnv(t *testing.T, name string) []string {
	t.Helper()
	cert, key := p.issue(t, name)
	return tlsEnv(cert, key, p.ca())
}

// tlsEnv is the environment that gives the scheduler, or ctl, the
// certificate cert, its key and the CA for mutual TLS.
func tlsEnv(cert, key, ca string) []string {
	return []string{"MOJODEX_SCHEDULER_TLS_CERT=" + cert, "MOJODEX_SCHEDULER_TLS_KEY=" + key, "MOJODEX_SCHEDULER_TLS_CA=" + ca}
}

// writePrivate writes data to path, readable by its owner only.
func writePrivate(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
