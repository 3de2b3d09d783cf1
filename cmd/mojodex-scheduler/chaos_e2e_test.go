package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// The chaos test: PostgreSQL, the stub of the Mojodex services and three
// replicas on loopback, each replica reaching PostgreSQL through a TCP
// proxy of its own that the test can cut (a partition: bytes are held, not
// refused) and heal. Faults, in an order and on targets drawn from a seed:
// SIGKILL of a replica mid-page (then restarted), SIGSTOP of a replica for
// twice the lease, a partition of one replica, an immediate restart of
// PostgreSQL, a 5 s SIGSTOP of PostgreSQL, every backend connection
// terminated. Then two replicas are killed and the last one runs alone.
//
// Asserted from the database, the stub's request log and the replicas'
// logs and metrics: see the checks at the end of TestChaosReplicas.

// chaosSeedEnv sets the seed of the chaos test (default 1).
const chaosSeedEnv = "MOJODEX_CHAOS_SEED"

// chaosFaultsEnv, when set, lists the faults to make, in order, instead
// of all of them in the seed's order (for reproducing one fault alone).
const chaosFaultsEnv = "MOJODEX_CHAOS_FAULTS"

// Scale of the chaos test: how many 1 s tasks, and the slow paginated ones.
const (
	chaosTicks     = 50
	chaosSlow      = 4
	chaosSlowEvery = 15 * time.Second
	chaosPageDelay = 600 * time.Millisecond
	chaosBacklog   = 420 // 8 full pages of 50 and one of 20
	chaosPages     = 9
	chaosLease     = 3 * time.Second
)

// pgProxy forwards TCP connections to PostgreSQL. Cut holds every byte in
// both directions (a partition: nothing is refused, nothing arrives) until
// Heal lets them through again.
type pgProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	open   chan struct{} // closed while bytes may pass
	conns  map[net.Conn]struct{}
	closed bool
}

func startProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target, open: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.open)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *pgProxy) addr() string { return p.ln.Addr().String() }

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *pgProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *pgProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *pgProxy) handle(client net.Conn) {
	if !p.track(client) {
		return
	}
	p.gate() // a connection made during a partition hangs
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.untrack(client)
		return
	}
	if !p.track(server) {
		p.untrack(client)
		return
	}
	done := make(chan struct{}, 2)
	go p.pipe(server, client, done)
	go p.pipe(client, server, done)
	<-done
	p.untrack(client)
	p.untrack(server)
	<-done
}

// pipe copies src to dst, holding each chunk while the proxy is cut.
func (p *pgProxy) pipe(dst, src net.Conn, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// gate waits while the proxy is cut.
func (p *pgProxy) gate() {
	p.mu.Lock()
	open := p.open
	p.mu.Unlock()
	<-open
}

// cut starts a partition.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		p.open = make(chan struct{})
	default:
	}
}

// heal ends a partition: the bytes held go through.
func (p *pgProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}

func (p *pgProxy) close() {
	p.heal()
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// fault is one disturbance of the chaos test, with when it began and ended.
type fault struct {
	kind       string
	target     string // a replica's name, or "postgres"
	from, to   time.Time
	global     bool // no replica can reach PostgreSQL meanwhile
	note       string
	fencedSeen float64
}

// slowStub serves the stub's two services with a delay on every page of
// the slow tasks' path.
func slowStub(t *testing.T, stub *mojodexstub.Stub, slowPath string, delay time.Duration) (backend, background string) {
	t.Helper()
	slow := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == slowPath {
				select {
				case <-time.After(delay):
				case <-r.Context().Done():
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	b := httptest.NewServer(slow(stub.Backend()))
	g := httptest.NewServer(slow(stub.Background()))
	t.Cleanup(func() {
		b.CloseClientConnections()
		g.CloseClientConnections()
		b.Close()
		g.Close()
	})
	return b.URL, g.URL
}

// takeOvers returns the (task, slot) of every run taken over, from the
// replicas' logs, with the highest epoch logged.
func takeOvers(logs string) map[string]map[int64]int64 {
	out := map[string]map[int64]int64{}
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"message":"took over a run whose lease lapsed`) {
			continue
		}
		var e struct {
			Task  string    `json:"task"`
			Slot  time.Time `json:"slot"`
			Epoch int64     `json:"epoch"`
		}
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		if out[e.Task] == nil {
			out[e.Task] = map[int64]int64{}
		}
		out[e.Task][e.Slot.UnixNano()] = max(out[e.Task][e.Slot.UnixNano()], e.Epoch)
	}
	return out
}

// takeOverTimes returns when each take-over was logged.
func takeOverTimes(logs string) []time.Time {
	var out []time.Time
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"message":"took over a run whose lease lapsed`) {
			continue
		}
		var e struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e.Time)
		}
	}
	return out
}

// percentile returns the p-th percentile (0 < p <= 1) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func TestChaosReplicas(t *testing.T) {
	binary(t) // skips in -short mode
	seed := uint64(1)
	if v := os.Getenv(chaosSeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", chaosSeedEnv, v, err)
		}
		seed = s
	}
	t.Logf("chaos seed %d (set %s to replay another)", seed, chaosSeedEnv)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	srv := pgtest.NewServer(t)
	direct := srv.NewDatabase(t)
	db := strings.TrimPrefix(direct[strings.LastIndexByte(direct, '/'):], "/")
	db = db[:strings.IndexByte(db, '?')]
	pgAddr := fmt.Sprintf("127.0.0.1:%d", srv.Port())

	// The schema is made ahead of time, as in production.
	mig := command(t, nil, "migrate")
	mig.Env = append(mig.Env, "MOJODEX_SCHEDULER_STATE="+direct)
	if out, err := mig.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}

	stub := mojodexstub.New(mojodexstub.Options{Secret: e2eSecret, Backlog: map[string]int{"/home_chat": chaosBacklog}})
	t.Cleanup(func() { stub.Close() })
	backendURL, backgroundURL := slowStub(t, stub, "/home_chat", chaosPageDelay)

	var entries []string
	ticks := make([]string, chaosTicks)
	for i := range ticks {
		ticks[i] = fmt.Sprintf("tick-%02d", i)
		entries = append(entries, tickTask(ticks[i]))
	}
	slow := make([]string, chaosSlow)
	for i := range slow {
		slow[i] = fmt.Sprintf("slow-%d", i)
		entries = append(entries, taskYAML(slow[i], homeChat.tagged(slow[i]), "every: "+chaosSlowEvery.String()))
	}
	tasks := taskFile(t, entries...)

	names := []string{"replica-1", "replica-2", "replica-3"}
	replicas := map[string]*pgReplica{}
	proxies := map[string]*pgProxy{}
	for _, n := range names {
		p := startProxy(t, pgAddr)
		proxies[n] = p
		dsn := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", p.addr(), db)
		replicas[n] = newReplica(t, nil, tasks, dsn, n, append(slices.Clone(shortLeases),
			// The rate limit is each replica's: the one left alone makes every call.
			"MOJODEX_SCHEDULER_RATE=1000", "MOJODEX_BACKEND_URI="+backendURL, "BACKGROUND_BACKEND_URI="+backgroundURL, "MOJODEX_SCHEDULER_SECRET="+e2eSecret)...)
	}
	startTogether(replicas[names[0]], replicas[names[1]], replicas[names[2]])
	began := time.Now()
	t.Logf("three replicas run %d tasks every second and %d paginated ones every %s", chaosTicks, chaosSlow, chaosSlowEvery)
	time.Sleep(5 * time.Second)

	// holder waits up to 30 s for replicas holding a slow run between two
	// pages (usually one: the first replica to commit a slot's claims wins
	// the four of them) and draws one of them; the fault kind fails the
	// test when there is none.
	holder := func(kind string) string {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			var owners []string
			var o string
			dbRows(t, direct, []any{&o}, func() { owners = append(owners, o) },
				`SELECT DISTINCT owner FROM mojodex_scheduler.scheduler_inprogress
					WHERE task LIKE 'slow-%' AND epoch = 1 AND pages BETWEEN 1 AND $1 AND lease_until > now() ORDER BY owner`, chaosPages-3)
			if len(owners) > 0 {
				return owners[rng.IntN(len(owners))]
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: no replica held a slow run mid-page", kind)
		return ""
	}
	pauseTask := ticks[rng.IntN(len(ticks))]
	var pausedAt time.Time
	var faults []*fault
	kinds := []string{"sigkill", "sigstop", "partition", "pg-restart", "pg-sigstop", "pg-terminate"}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	if v, ok := os.LookupEnv(chaosFaultsEnv); ok {
		kinds = slices.DeleteFunc(strings.Split(v, ","), func(k string) bool { return k == "" })
	}
	for _, kind := range kinds {
		f := &fault{kind: kind}
		switch kind {
		case "sigkill":
			name := holder(kind)
			f.target, f.from = name, time.Now()
			replicas[name].kill()
			time.Sleep(2 * time.Second)
			replicas[name].start()
			f.to = time.Now()
		case "sigstop":
			name := holder(kind)
			f.target, f.from = name, time.Now()
			replicas[name].signal(syscall.SIGSTOP)
			time.Sleep(2 * chaosLease)
			replicas[name].signal(syscall.SIGCONT)
			f.to = time.Now()
		case "partition":
			name := holder(kind)
			f.target, f.from = name, time.Now()
			proxies[name].cut()
			time.Sleep(3 * time.Second)
			// A pause sent to a replica on the healthy side holds: the
			// cut-off replica learns of it once healed, and no replica fires
			// the task again.
			var via string
			for _, n := range names {
				if n != name {
					via = n
					break
				}
			}
			ctlOK(t, replicas[via].remote, nil, "pause", pauseTask)
			pausedAt = time.Now()
			f.note = fmt.Sprintf("%s paused through %s", pauseTask, via)
			time.Sleep(2*chaosLease - 3*time.Second)
			proxies[name].heal()
			f.to = time.Now()
		case "pg-restart":
			f.target, f.global, f.from = "postgres", true, time.Now()
			srv.Restart(t)
			f.to = time.Now()
		case "pg-sigstop":
			f.target, f.global, f.from = "postgres", true, time.Now()
			srv.Pause(t)
			time.Sleep(5 * time.Second)
			srv.Resume(t)
			f.to = time.Now()
		case "pg-terminate":
			f.target, f.global, f.from = "postgres", true, time.Now()
			f.note = fmt.Sprintf("%d connections terminated", srv.TerminateBackends(t))
			f.to = time.Now()
		}
		if f.kind == "sigstop" || f.kind == "partition" {
			// Its runs were taken over meanwhile: its late writes are fenced.
			waitFor(t, f.kind+": the replica's stale writes to be refused once it is back", func() bool {
				f.fencedSeen = replicas[f.target].metric("mojodex_scheduler_fenced_writes_total")
				return f.fencedSeen > 0
			})
		}
		faults = append(faults, f)
		t.Logf("fault %-12s on %-9s for %6.2fs %s (fenced writes of the target: %v)", f.kind, f.target, f.to.Sub(f.from).Seconds(), f.note, f.fencedSeen)
		time.Sleep(8 * time.Second) // recovery
	}

	if os.Getenv(chaosFaultsEnv) != "" || len(kinds) == 0 {
		time.Sleep(10 * time.Second)
	}
	// What each replica counted.
	for _, n := range names {
		r := replicas[n]
		t.Logf("%s: claims won %v claimed %v failed %v early %v stale %v; takeovers %v; fenced %v; slots missed %v", n,
			r.metric("mojodex_scheduler_claims_total", `result="won"`), r.metric("mojodex_scheduler_claims_total", `result="claimed"`),
			r.metric("mojodex_scheduler_claims_total", `result="failed"`), r.metric("mojodex_scheduler_claims_total", `result="early"`),
			r.metric("mojodex_scheduler_claims_total", `result="stale"`), r.metric("mojodex_scheduler_takeovers_total"),
			r.metric("mojodex_scheduler_fenced_writes_total"), r.metric("mojodex_scheduler_slots_missed_total"))
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir, err := os.MkdirTemp("", fmt.Sprintf("mojodex-chaos-seed%d-", seed))
		if err != nil {
			return
		}
		for _, n := range names {
			_ = os.WriteFile(filepath.Join(dir, n+".log"), []byte(replicas[n].allLogs()), 0o644)
		}
		t.Logf("the replicas' logs are kept in %s", dir)
	})

	// One replica of three left: the others are killed.
	survivor := names[rng.IntN(len(names))]
	alone := time.Now()
	for _, n := range names {
		if n != survivor {
			replicas[n].kill()
		}
	}
	t.Logf("%s runs alone from %s", survivor, alone.Format(time.RFC3339Nano))
	time.Sleep(15 * time.Second)
	ended := time.Now()
	replicas[survivor].stop() // drains: every run in progress ends and is recorded

	// The checks.
	var all strings.Builder
	for _, n := range names {
		all.WriteString(replicas[n].allLogs())
	}
	logs := all.String()
	taken := takeOvers(logs)
	an := anchors(t, direct)
	calls := stub.Calls()
	window := [2]time.Time{began.Add(2 * time.Second), ended.Add(-2 * time.Second)}

	// Nothing is left in progress.
	var left int
	dbQuery(t, direct, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT count(*) FROM mojodex_scheduler.scheduler_inprogress`).Scan(&left)
	})
	if left != 0 {
		t.Errorf("%d runs left in progress after the last replica drained", left)
	}

	// excused reports whether a slot may have been missed: while no
	// replica could reach PostgreSQL (a global fault), from a second before
	// it to the operation timeout (5 s) plus a second after it.
	excused := func(slot time.Time) (string, bool) {
		for _, f := range faults {
			if f.global && !slot.Before(f.from.Add(-time.Second)) && !slot.After(f.to.Add(6*time.Second)) {
				return f.kind, true
			}
		}
		return "", false
	}

	// Every 1 s task: each slot in the window called once (its first and
	// only page), or more often only for a run taken over; or missed only
	// around a global fault; the paused task never after its pause.
	missed := map[string]int{}
	var lateAlone []time.Duration
	fired, dup := 0, 0
	byTask := map[string][]mojodexstub.Call{}
	for _, c := range calls {
		if name, ok := c.Body["task"].(string); ok {
			byTask[name] = append(byTask[name], c)
		}
	}
	for _, n := range ticks {
		a, ok := an[n]
		if !ok {
			t.Errorf("%s: no anchor stored", n)
			continue
		}
		to := window[1]
		if n == pauseTask && !pausedAt.IsZero() {
			to = pausedAt.Add(-time.Second)
			for _, c := range byTask[n] {
				if c.At.After(pausedAt.Add(1500 * time.Millisecond)) {
					t.Errorf("%s called %v after its pause during the partition", n, c.At.Sub(pausedAt))
				}
			}
		}
		counts, _ := firstPages(byTask[n], n, a, time.Second, window[0], to)
		first := map[time.Time]time.Time{}
		for _, c := range byTask[n] {
			for s := range counts {
				if c.IdempotencyKey == apiclient.IdempotencyKey(n, s, 1) {
					if _, seen := first[s]; !seen {
						first[s] = c.At
					}
				}
			}
		}
		for s, k := range counts {
			switch {
			case k == 1:
				fired++
			case k == 0:
				if why, ok := excused(s); ok {
					missed[why]++
				} else {
					t.Errorf("%s: slot %s never fired, outside any global fault", n, s.Format(time.RFC3339Nano))
				}
			default:
				if taken[n][s.UnixNano()] > 1 {
					dup++
					fired++
				} else {
					t.Errorf("%s: slot %s called %d times and never taken over", n, s.Format(time.RFC3339Nano), k)
				}
			}
			if at, ok := first[s]; ok && s.After(alone.Add(time.Second)) {
				lateAlone = append(lateAlone, at.Sub(s))
			}
		}
	}
	t.Logf("1 s tasks: %d slots fired (%d more than once, all taken over), missed around global faults: %v", fired, dup, missed)
	// Take-overs by the fault they followed (within its recovery time).
	for _, f := range faults {
		n := 0
		for _, at := range takeOverTimes(logs) {
			if !at.Before(f.from) && at.Before(f.to.Add(8*time.Second)) {
				n++
			}
		}
		t.Logf("fault %-12s: %d runs taken over after it", f.kind, n)
	}

	// Slow tasks: every run's pages contiguous from offset 0 to the end,
	// each page with one Idempotency-Key, a page requested twice only in a
	// run taken over; every run recorded once, with epoch > 1 when taken over.
	slowRuns, slowTaken := 0, 0
	for _, n := range slow {
		type page struct {
			offset int
			key    string
		}
		bySlot := map[int64][]page{}
		for _, c := range byTask[n] {
			off, _ := c.Body["offset"].(float64)
			bySlot[slotOfKey(n, an[n], chaosSlowEvery, c)] = append(bySlot[slotOfKey(n, an[n], chaosSlowEvery, c)], page{int(off), c.IdempotencyKey})
		}
		if _, bad := bySlot[0]; bad {
			t.Errorf("%s: %d calls whose Idempotency-Key matches no slot and page", n, len(bySlot[0]))
		}
		recorded := map[int64]storedRun{}
		for _, r := range storedRuns(t, direct, n) {
			if _, twice := recorded[r.slot.UnixNano()]; twice {
				t.Errorf("%s: slot %s recorded twice", n, r.slot)
			}
			recorded[r.slot.UnixNano()] = r
		}
		for s, pages := range bySlot {
			if s == 0 {
				continue
			}
			slowRuns++
			keys := map[int]string{}
			seen := map[int]int{}
			for _, p := range pages {
				if k, ok := keys[p.offset]; ok && k != p.key {
					t.Errorf("%s slot %s: offset %d requested with two keys", n, time.Unix(0, s), p.offset)
				}
				keys[p.offset] = p.key
				seen[p.offset]++
			}
			epoch := taken[n][s]
			if epoch > 1 {
				slowTaken++
			}
			for off, k := range seen {
				if k > 1 && epoch <= 1 {
					t.Errorf("%s slot %s: offset %d requested %d times in a run never taken over", n, time.Unix(0, s), off, k)
				}
			}
			for off := 0; off < len(seen)*50; off += 50 {
				if seen[off] == 0 {
					t.Errorf("%s slot %s: offset %d never requested (offsets %v)", n, time.Unix(0, s), off, seen)
				}
			}
			r, ok := recorded[s]
			switch {
			case !ok && time.Unix(0, s).Before(window[1].Add(-30*time.Second)):
				t.Errorf("%s slot %s: requested but not recorded", n, time.Unix(0, s))
			case ok && epoch > 1 && r.epoch < epoch:
				t.Errorf("%s slot %s: taken over at epoch %d, recorded with epoch %d", n, time.Unix(0, s), epoch, r.epoch)
			case ok && r.outcome == "ok" && (len(seen) != chaosPages || r.items != chaosBacklog):
				t.Errorf("%s slot %s: recorded ok with %d items, %d offsets requested; want %d and %d", n, time.Unix(0, s), r.items, len(seen), chaosBacklog, chaosPages)
			}
		}
	}
	t.Logf("slow tasks: %d runs, %d taken over", slowRuns, slowTaken)

	// The SIGSTOPped replica's stale writes were refused; and the p99
	// lateness of the replica left alone.
	for _, f := range faults {
		if (f.kind == "sigstop" || f.kind == "partition") && f.fencedSeen <= 0 {
			t.Errorf("%s: the replica had no write fenced once back", f.kind)
		}
	}
	p99 := percentile(lateAlone, 0.99)
	t.Logf("one replica left: %d fires, p50 %v, p99 %v, max %v", len(lateAlone), percentile(lateAlone, 0.5), p99, percentile(lateAlone, 1))
	if len(lateAlone) < chaosTicks*10 {
		t.Errorf("only %d fires while one replica was left", len(lateAlone))
	}
	if p99 > chaosLease+time.Second {
		t.Errorf("p99 lateness with one replica left %v, want below the lease plus 1 s", p99)
	}
}

// slotOfKey returns the slot (Unix ns) of task's call c, by matching its
// Idempotency-Key against the pages of the slots near the call; 0 when
// none matches.
func slotOfKey(task string, anchor time.Time, every time.Duration, c mojodexstub.Call) int64 {
	k := c.At.Sub(anchor) / every
	for d := k + 1; d >= k-20 && d >= 0; d-- {
		s := anchor.Add(d * every)
		for page := 1; page <= chaosPages+2; page++ {
			if apiclient.IdempotencyKey(task, s, page) == c.IdempotencyKey {
				return s.UnixNano()
			}
		}
	}
	return 0
}
