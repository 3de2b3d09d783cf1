package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/internal/syncbuf"
	"github.com/mojodex/mojodex-scheduler/internal/testnet"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// These tests run replicas of `run` as separate processes sharing one
// PostgreSQL database (a throwaway cluster of internal/pgtest), against the
// stub of the Mojodex services, on loopback.

// pgReplica is a `run` process that is one replica of a set: a name, a
// remote control endpoint and an HTTP listener of its own, kept across
// restarts, and its logs (every incarnation's, in a file; the current
// one's in memory).
type pgReplica struct {
	t       *testing.T
	name    string
	remote  string // the remote control endpoint's address
	http    string // /metrics, /readyz
	logPath string
	base    *exec.Cmd // the command to copy on every start

	mu     sync.Mutex
	cmd    *exec.Cmd
	logs   *syncbuf.Buffer
	exited chan struct{}
	file   *os.File
}

// newReplica prepares (without starting) replica name of `run --tasks
// tasks` against stub, its state in the PostgreSQL database dsn; env is
// appended (and wins).
func newReplica(t *testing.T, stub *mojodexstub.Stub, tasks, dsn, name string, env ...string) *pgReplica {
	t.Helper()
	r := &pgReplica{t: t, name: name, remote: testnet.FreeAddr(t), http: testnet.FreeAddr(t),
		logPath: filepath.Join(t.TempDir(), name+".log")}
	cmd := command(t, stub, "run", "--tasks", tasks)
	cmd.Env = append(cmd.Env, "LOG_LEVEL=info", "MOJODEX_SCHEDULER_STATE="+dsn, "MOJODEX_SCHEDULER_REPLICA="+name,
		"MOJODEX_SCHEDULER_REMOTE_ADDR="+r.remote, "MOJODEX_SCHEDULER_HTTP_ADDR="+r.http)
	cmd.Env = append(cmd.Env, env...)
	r.base = cmd
	t.Cleanup(r.cleanup)
	return r
}

// start starts the process and waits until it runs.
func (r *pgReplica) start() {
	r.t.Helper()
	r.launch()
	r.waitRunning()
}

// launch starts the process without waiting for it.
func (r *pgReplica) launch() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil && !r.exitedLocked() {
		r.t.Fatalf("replica %s started twice", r.name)
	}
	if r.file == nil {
		f, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			r.t.Fatal(err)
		}
		r.file = f
	}
	cmd := exec.Command(r.base.Path, r.base.Args[1:]...)
	cmd.Env = r.base.Env
	logs := &syncbuf.Buffer{}
	cmd.Stderr = io.MultiWriter(r.file, logs)
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.cmd, r.logs, r.exited = cmd, logs, exited
}

func (r *pgReplica) exitedLocked() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// startTogether launches replicas at once (the first to open the database
// migrates its schema, the others wait for it), then waits until every one
// runs.
func startTogether(replicas ...*pgReplica) {
	for _, r := range replicas {
		r.launch()
	}
	for _, r := range replicas {
		r.waitRunning()
	}
}

// waitRunning waits until the current process says it runs.
func (r *pgReplica) waitRunning() {
	r.t.Helper()
	waitFor(r.t, r.name+" to run", func() bool {
		if r.hasExited() {
			r.t.Fatalf("replica %s exited at start:\n%s", r.name, r.currentLogs())
		}
		return strings.Contains(r.currentLogs(), `"message":"mojodex-scheduler running"`)
	})
}

func (r *pgReplica) hasExited() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exitedLocked()
}

// currentLogs returns the logs of the current (or last) process.
func (r *pgReplica) currentLogs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logs == nil {
		return ""
	}
	return r.logs.String()
}

// allLogs returns the logs of every process of the replica so far.
func (r *pgReplica) allLogs() string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b)
}

// signal sends sig to the current process.
func (r *pgReplica) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %v to %s: %v", sig, r.name, err)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (r *pgReplica) kill() {
	r.t.Helper()
	r.signal(syscall.SIGCONT) // a stopped process dies all the same, but let it be sure
	r.signal(syscall.SIGKILL)
	<-r.exitedChan()
}

func (r *pgReplica) exitedChan() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exited
}

// stop sends SIGTERM and expects a clean exit within 20 s.
func (r *pgReplica) stop() {
	r.t.Helper()
	if r.hasExited() {
		return
	}
	r.signal(syscall.SIGCONT)
	r.signal(syscall.SIGTERM)
	select {
	case <-r.exitedChan():
	case <-time.After(20 * time.Second):
		r.signal(syscall.SIGKILL)
		<-r.exitedChan()
		r.t.Errorf("replica %s did not stop on SIGTERM", r.name)
		return
	}
	r.mu.Lock()
	code := r.cmd.ProcessState.ExitCode()
	r.mu.Unlock()
	if code != 0 {
		r.t.Errorf("replica %s exited %d:\n%s", r.name, code, tail(r.currentLogs(), 4000))
	}
}

// cleanup kills a process still running and checks that none panicked.
func (r *pgReplica) cleanup() {
	r.mu.Lock()
	cmd, exited, file := r.cmd, r.exited, r.file
	r.mu.Unlock()
	if cmd != nil {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	if file != nil {
		_ = file.Close()
		if l := r.allLogs(); panicked(l) {
			r.t.Errorf("replica %s panicked:\n%s", r.name, tail(l, 8000))
		}
	}
}

// metric returns the sum of the samples of the series name whose labels
// contain every one of labels (`result="won"`), from /metrics; -1 when the
// replica does not answer.
func (r *pgReplica) metric(name string, labels ...string) float64 {
	code, body := httpGet("http://" + r.http + "/metrics")
	if code != http.StatusOK {
		return -1
	}
	return sumMetric(body, name, labels...)
}

// tail returns the last n bytes of s, marked as cut when it is longer.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// dbQuery runs f on a connection to the database of dsn.
func dbQuery(t *testing.T, dsn string, f func(ctx context.Context, c *pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer c.Close(context.Background())
	if err := f(ctx, c); err != nil {
		t.Fatalf("query the test database: %v", err)
	}
}

// dbRows runs the query sql with args on the database of dsn and, for
// each row, scans it into scans and calls each.
func dbRows(t *testing.T, dsn string, scans []any, each func(), sql string, args ...any) {
	t.Helper()
	dbQuery(t, dsn, func(ctx context.Context, c *pgx.Conn) error {
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		_, err = pgx.ForEachRow(rows, scans, func() error { each(); return nil })
		return err
	})
}

// anchors returns the anchor of every fixed-rate task, from the store.
func anchors(t *testing.T, dsn string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	var name string
	var ns int64
	dbRows(t, dsn, []any{&name, &ns}, func() { out[name] = time.Unix(0, ns) },
		`SELECT task, anchor FROM mojodex_scheduler.scheduler_tasks WHERE anchor IS NOT NULL`)
	return out
}

// slotCount says how often the stub saw the first page of each slot of a
// fixed-rate task, by slot.
type slotCount map[time.Time]int

// firstPages counts, for task (period every, anchored at anchor), the calls
// whose Idempotency-Key is the first page's of a slot in [from, to]; any
// other key among calls (the calls of this task only) is returned in
// unknown.
func firstPages(calls []mojodexstub.Call, task string, anchor time.Time, every time.Duration, from, to time.Time) (slotCount, []string) {
	keys := map[string]time.Time{}
	first := anchor.Add(every * time.Duration(max(0, (from.Sub(anchor)+every-1)/every)))
	for s := first; !s.After(to); s = s.Add(every) {
		keys[apiclient.IdempotencyKey(task, s, 1)] = s
	}
	counts := slotCount{}
	for _, s := range keys {
		counts[s] = 0
	}
	var unknown []string
	for _, c := range calls {
		if s, ok := keys[c.IdempotencyKey]; ok {
			counts[s]++
		} else {
			unknown = append(unknown, c.IdempotencyKey)
		}
	}
	return counts, unknown
}

// callsOf returns the calls whose JSON body names task (the tasks of these
// tests send {"task": NAME}).
func callsOf(calls []mojodexstub.Call, task string) []mojodexstub.Call {
	var out []mojodexstub.Call
	for _, c := range calls {
		if c.Body != nil && c.Body["task"] == task {
			out = append(out, c)
		}
	}
	return out
}

// Two replicas on one database: every slot of three 1 s tasks fires once
// across both (one call per slot, by its Idempotency-Key); ctl gives the
// same answers on both; a pause sent to one stops the task on both within
// about a second; a trigger on one runs once in the set; ctl replicas
// lists both.
func TestReplicasTwoProcessesOneDatabase(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn := srv.NewDatabase(t)
	stub := startStub(t)
	ticks := []string{"tick-a", "tick-b", "tick-c"}
	tasks := taskFile(t, tickTask(ticks[0]), tickTask(ticks[1]), tickTask(ticks[2]),
		taskYAML("hourly", rescheduleTodos.tagged("hourly"), "every: 1h"))

	r1 := newReplica(t, stub, tasks, dsn, "replica-1")
	r2 := newReplica(t, stub, tasks, dsn, "replica-2")
	startTogether(r1, r2)
	began := time.Now()

	// Both replicas claim every slot; each is won by one.
	waitFor(t, "six seconds of fires", func() bool { return len(callsOf(stub.Calls(), "tick-c")) >= 6 })
	for _, r := range []*pgReplica{r1, r2} {
		out := ctlOK(t, r.remote, nil, "replicas")
		for _, name := range []string{"replica-1", "replica-2"} {
			if !strings.Contains(out, name+" ") {
				t.Errorf("ctl replicas on %s lacks %s:\n%s", r.name, name, out)
			}
		}
	}
	if won1, won2 := r1.metric("mojodex_scheduler_claims_total", `result="won"`), r2.metric("mojodex_scheduler_claims_total", `result="won"`); won1 <= 0 || won2 <= 0 {
		t.Errorf("claims won: %s %v, %s %v; want both replicas to win some", r1.name, won1, r2.name, won2)
	} else {
		t.Logf("claims won: %s %v, %s %v", r1.name, won1, r2.name, won2)
	}

	// A trigger on one replica runs once in the set.
	if out := ctlOK(t, r1.remote, nil, "trigger", "hourly"); out != "started hourly\n" {
		t.Errorf("trigger: %q", out)
	}
	waitFor(t, "the triggered run to be recorded", func() bool {
		return strings.Contains(ctlOK(t, r2.remote, nil, "show", "hourly"), "manual")
	})

	// A pause sent to replica-2 stops tick-a on both within about a second.
	ctlOK(t, r2.remote, nil, "pause", "tick-a")
	paused := time.Now()
	for _, n := range ticks[1:] {
		ctlOK(t, r1.remote, nil, "pause", n)
	}
	time.Sleep(3 * time.Second) // three slots of every task pass
	for _, c := range callsOf(stub.Calls(), "tick-a") {
		if c.At.After(paused.Add(1200 * time.Millisecond)) {
			t.Errorf("tick-a called %v after it was paused on replica-2", c.At.Sub(paused))
		}
	}
	if n := len(callsOf(stub.Calls(), "hourly")); n != 1 {
		t.Errorf("hourly called %d times after one trigger, want 1", n)
	}

	// Every task paused and the trigger recorded: both replicas give the
	// same answers.
	for _, args := range [][]string{{"list", "-o", "json"}, {"show", "hourly", "-o", "json"}, {"show", "tick-b", "-o", "json"}, {"list"}} {
		a, b := ctlOK(t, r1.remote, nil, args...), ctlOK(t, r2.remote, nil, args...)
		if a != b {
			t.Errorf("ctl %v differs between the replicas:\n%s:\n%s\n%s:\n%s", args, r1.name, a, r2.name, b)
		}
	}
	list := listJSON(t, r2.remote, nil)
	for _, n := range ticks {
		if list[n].State != "paused" {
			t.Errorf("%s: state %q on replica-2, want paused", n, list[n].State)
		}
	}

	// One call per slot of each 1 s task, none missing, from the first
	// slot after both replicas ran to the pause.
	an := anchors(t, dsn)
	calls := stub.Calls()
	for _, n := range ticks {
		a, ok := an[n]
		if !ok {
			t.Fatalf("no anchor stored for %s", n)
		}
		mine := callsOf(calls, n)
		counts, unknown := firstPages(mine, n, a, time.Second, began, paused.Add(-time.Second))
		if len(unknown) > 0 {
			// Slots before began, or at the pause: fine, but once each.
			seen := map[string]int{}
			for _, k := range unknown {
				if seen[k]++; seen[k] > 1 {
					t.Errorf("%s: Idempotency-Key %s sent %d times", n, k, seen[k])
				}
			}
		}
		if len(counts) < 3 {
			t.Errorf("%s: only %d slots in the window", n, len(counts))
		}
		for s, c := range counts {
			if c != 1 {
				t.Errorf("%s: slot %s called %d times, want 1", n, s.Format(time.RFC3339Nano), c)
			}
		}
	}
	r1.stop()
	r2.stop()
}

// shortLeases are the settings of replicas whose runs are taken over
// within a few seconds.
var shortLeases = []string{"MOJODEX_SCHEDULER_LEASE=3s", "MOJODEX_SCHEDULER_LEASE_RENEW=1s", "MOJODEX_SCHEDULER_REAPER_INTERVAL=1s"}

// atSoon returns the time of day ("HH:MM:SS", UTC) d from now, and the
// instant of that slot.
func atSoon(d time.Duration) (string, time.Time) {
	at := time.Now().Add(d).UTC().Truncate(time.Second)
	return at.Format("15:04:05"), at
}

// inProgress returns the owner and epoch of every run in progress of task.
func inProgress(t *testing.T, dsn, task string) (owners []string, epochs []int64) {
	t.Helper()
	var o string
	var e int64
	dbRows(t, dsn, []any{&o, &e}, func() { owners, epochs = append(owners, o), append(epochs, e) },
		`SELECT owner, epoch FROM mojodex_scheduler.scheduler_inprogress WHERE task = $1`, task)
	return owners, epochs
}

// storedRun is a run as the store keeps it.
type storedRun struct {
	slot                  time.Time
	outcome, replica, err string
	pages, items, epoch   int64
	resumed, manual       bool
}

// storedRuns returns the runs of task the store keeps, oldest first.
func storedRuns(t *testing.T, dsn, task string) []storedRun {
	t.Helper()
	var out []storedRun
	var r storedRun
	var slot int64
	dbRows(t, dsn, []any{&slot, &r.outcome, &r.replica, &r.err, &r.pages, &r.items, &r.epoch, &r.resumed, &r.manual},
		func() {
			r.slot = time.Unix(0, slot)
			out = append(out, r)
		},
		`SELECT slot, outcome, replica, err, pages, items, epoch, resumed, manual
			FROM mojodex_scheduler.scheduler_runs WHERE task = $1 ORDER BY seq`, task)
	return out
}

// kill -9 of the replica holding a slow offset-paginated run while a page
// is in flight: the other replica takes the run over once its lease has
// lapsed, resumes at the checkpoint's offset with the page's
// Idempotency-Key, and the run is recorded once, with epoch 2, by it.
func TestReplicasKill9MidPageTakeOver(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn := srv.NewDatabase(t)
	stub := startStub(t)
	at, slot := atSoon(6 * time.Second)
	tasks := taskFile(t, taskYAML("home-chat", homeChat, `at: "`+at+`"`))
	// Page 1 answers at once, page 2 hangs until its caller dies; the
	// resumed page 2 and page 3 answer at once.
	stub.Inject("/home_chat", mojodexstub.Fault{}, mojodexstub.Fault{Delay: time.Minute})
	rs := map[string]*pgReplica{
		"replica-1": newReplica(t, stub, tasks, dsn, "replica-1", shortLeases...),
		"replica-2": newReplica(t, stub, tasks, dsn, "replica-2", shortLeases...),
	}
	startTogether(rs["replica-1"], rs["replica-2"])
	waitFor(t, "page 2 in flight", func() bool { return len(stub.CallsTo("/home_chat")) >= 2 })
	owners, epochs := inProgress(t, dsn, "home-chat")
	if len(owners) != 1 || epochs[0] != 1 {
		t.Fatalf("runs in progress: owners %v epochs %v, want one at epoch 1", owners, epochs)
	}
	holder := rs[owners[0]]
	var other *pgReplica
	for name, r := range rs {
		if name != holder.name {
			other = r
		}
	}
	waitFor(t, "the first checkpoint", func() bool {
		var off int64
		dbQuery(t, dsn, func(ctx context.Context, c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT next_offset FROM mojodex_scheduler.scheduler_inprogress WHERE task = 'home-chat'`).Scan(&off)
		})
		return off == 50
	})
	holder.kill()
	killed := time.Now()

	waitFor(t, "the run to be recorded", func() bool { return len(storedRuns(t, dsn, "home-chat")) > 0 })
	took := time.Since(killed)
	runs := storedRuns(t, dsn, "home-chat")
	want := storedRun{slot: slot, outcome: "ok", replica: other.name, pages: 3, items: 110, epoch: 2, resumed: true}
	if len(runs) != 1 || runs[0].slot.UnixNano() != want.slot.UnixNano() || runs[0].outcome != want.outcome || runs[0].replica != want.replica ||
		runs[0].pages != want.pages || runs[0].items != want.items || runs[0].epoch != want.epoch {
		t.Errorf("stored runs %+v, want one: %+v", runs, want)
	}
	if owners, _ := inProgress(t, dsn, "home-chat"); len(owners) != 0 {
		t.Errorf("still in progress: %v", owners)
	}
	// Taken over after the lease (3 s), found by a reaper pass (every 1 s).
	if took < 2*time.Second || took > 10*time.Second {
		t.Errorf("recorded %v after the kill, want the lease (3 s) plus a reaper pass", took)
	}
	t.Logf("the run was recorded %v after the kill", took.Round(10*time.Millisecond))

	calls := stub.CallsTo("/home_chat")
	var offsets []any
	var keys []string
	for _, c := range calls {
		offsets = append(offsets, c.Body["offset"])
		keys = append(keys, c.IdempotencyKey)
	}
	if fmt.Sprint(offsets) != "[0 50 50 100]" {
		t.Errorf("offsets %v, want [0 50 50 100]: page 2 again, then page 3", offsets)
	}
	if len(keys) == 4 {
		for i, page := range []int{1, 2, 2, 3} {
			if keys[i] != apiclient.IdempotencyKey("home-chat", slot, page) {
				t.Errorf("call %d: Idempotency-Key %s, want page %d's", i+1, keys[i], page)
			}
		}
	}
	if calls[1].Status != 0 {
		t.Errorf("the killed replica's page 2 was answered %d", calls[1].Status)
	}
	if n := other.metric("mojodex_scheduler_takeovers_total"); n != 1 {
		t.Errorf("takeovers_total on %s: %v, want 1", other.name, n)
	}
	if out := ctlOK(t, other.remote, nil, "show", "home-chat"); !strings.Contains(out, "taken over (epoch 2)") {
		t.Errorf("ctl show:\n%s", out)
	}
	other.stop()
}

// errorLines returns the error-level log lines of logs whose time is in
// [from, to).
func errorLines(logs string, from, to time.Time) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"level":"error"`) {
			continue
		}
		i := strings.Index(line, `"time":"`)
		if i < 0 {
			continue
		}
		rest := line[i+len(`"time":"`):]
		ts, err := time.Parse(time.RFC3339, rest[:strings.IndexByte(rest, '"')])
		if err != nil {
			continue
		}
		// Log times are to the second: widen the window by one.
		if !ts.Before(from.Truncate(time.Second)) && ts.Before(to.Add(time.Second)) {
			out = append(out, line)
		}
	}
	return out
}

// PostgreSQL stalled (SIGSTOP), then stopped: each replica's /readyz turns
// 503 and mojodex_scheduler_shared_store_up 0; nothing fires while no claim
// can be made; each replica logs one error for the claims per outage (not
// one per fire) and recovers by itself when the server is back.
func TestReplicasPostgresOutage(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn := srv.NewDatabase(t)
	stub := startStub(t)
	ticks := []string{"tick-a", "tick-b", "tick-c"}
	tasks := taskFile(t, tickTask(ticks[0]), tickTask(ticks[1]), tickTask(ticks[2]))
	r1 := newReplica(t, stub, tasks, dsn, "replica-1", shortLeases...)
	r2 := newReplica(t, stub, tasks, dsn, "replica-2", shortLeases...)
	startTogether(r1, r2)
	replicas := []*pgReplica{r1, r2}
	ready := func(want bool) func() bool {
		return func() bool {
			for _, r := range replicas {
				code, _ := httpGet("http://" + r.http + "/readyz")
				up := r.metric("mojodex_scheduler_shared_store_up")
				if (code == http.StatusOK) != want || (up == 1) != want {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "both replicas ready", ready(true))

	outages := []struct {
		name     string
		down, up func()
		hold     time.Duration
	}{
		{name: "stalled (SIGSTOP)", down: func() { srv.Pause(t) }, up: func() { srv.Resume(t) }, hold: 9 * time.Second},
		{name: "stopped", down: func() { srv.Down(t) }, up: func() { srv.Up(t) }, hold: 6 * time.Second},
	}
	for _, o := range outages {
		waitFor(t, "fires before the outage", func() bool {
			calls := stub.Calls()
			return len(calls) > 0 && time.Since(calls[len(calls)-1].At) < time.Second
		})
		before := len(stub.Calls())
		o.down()
		downAt := time.Now()
		waitFor(t, "both replicas not ready", ready(false))
		notReady := time.Since(downAt)
		time.Sleep(time.Until(downAt.Add(o.hold)))
		// While no claim can be made, nothing fires (a claim sent just
		// before the outage may still fire in its first half second).
		for _, c := range stub.Calls()[before:] {
			if c.At.After(downAt.Add(500 * time.Millisecond)) {
				t.Errorf("%s: a call %v into the outage", o.name, c.At.Sub(downAt))
			}
		}
		o.up()
		upAt := time.Now()
		waitFor(t, "both replicas ready again", ready(true))
		readyAgain := time.Since(upAt)
		waitFor(t, "every task to fire again", func() bool {
			for _, n := range ticks {
				c := callsOf(stub.Calls(), n)
				if len(c) == 0 || c[len(c)-1].At.Before(upAt) {
					return false
				}
			}
			return true
		})
		t.Logf("%s for %v: not ready after %v; ready again %v after it ended", o.name, o.hold, notReady.Round(10*time.Millisecond), readyAgain.Round(10*time.Millisecond))
		time.Sleep(time.Second) // the "claims succeed again" line
		for _, r := range replicas {
			errs := errorLines(r.currentLogs(), downAt, time.Now())
			claimErrs := 0
			for _, l := range errs {
				if strings.Contains(l, "state store: claims fail") {
					claimErrs++
				}
			}
			// One for the claims; at most one more per task, for a run
			// that ended during the outage and could not be recorded.
			if claimErrs != 1 || len(errs) > 1+len(ticks) {
				t.Errorf("%s: %s logged %d errors (%d about claims), want one about claims and at most %d in all (%v of 1 s fires missed):\n%s",
					o.name, r.name, len(errs), claimErrs, 1+len(ticks), o.hold, strings.Join(errs, "\n"))
			}
			if !strings.Contains(r.currentLogs(), `"message":"state store: claims succeed again"`) {
				t.Errorf("%s: %s did not log that claims succeed again", o.name, r.name)
			}
		}
	}
	// After both outages, every slot was called once, or again (with its
	// Idempotency-Key) only when its run could not be recorded during an
	// outage and was taken over once its lease lapsed.
	taken := takeOvers(r1.allLogs() + r2.allLogs())
	an := anchors(t, dsn)
	retaken := 0
	for _, n := range ticks {
		counts, _ := firstPages(callsOf(stub.Calls(), n), n, an[n], time.Second, an[n], time.Now())
		for s, k := range counts {
			if k > 1 && taken[n][s.UnixNano()] < 2 {
				t.Errorf("%s: slot %s called %d times, never taken over", n, s.Format(time.RFC3339Nano), k)
			} else if k > 1 {
				retaken++
			}
		}
	}
	t.Logf("%d slots called again after a take-over", retaken)
	r1.stop()
	r2.stop()
}
