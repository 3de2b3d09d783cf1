package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mojodex/mojodex-scheduler/actors"
	"github.com/mojodex/mojodex-scheduler/bench/harness"
	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/store/pgstore"
)

// A fire scenario with -store postgres runs ours as replicas sharing one
// local PostgreSQL server: this process (the coordinator) starts a
// throwaway cluster (internal/pgtest: the server binaries of the machine,
// fsync off), creates the schema, and runs -replicas processes of itself
// (-role replica), each a supervisor of every task with the shared store,
// all anchored at the same instant. Each replica reports the slots it
// fired (the ones whose claim it won), its lateness histogram, its CPU
// time and the statements it sent over the window; the coordinator merges
// them (a slot fired by two replicas is doubled, by none missed) and adds
// the CPU time of the PostgreSQL processes and the transactions the server
// committed over the window.

// replicaLeases are the replicas' lease, renewal and reaper interval (the
// service's defaults).
const (
	replicaLease  = 15 * time.Second
	replicaRenew  = 5 * time.Second
	replicaReaper = 5 * time.Second
)

// replicaMargin is the least set-up margin of replicas: each spawns every
// task actor and loads the tasks' state from the server before the anchor.
const replicaMargin = 8 * time.Second

// replicaArgs are what a replica process needs besides the scenario.
type replicaArgs struct {
	name, dsn string
	t0        time.Time
	seen      string // the file where the replica writes the slots it fired
	stmts     *statementCounter
	events    *replicaCounter
}

// statementCounter counts the statements a replica's pool sends: every
// query, and every query of a pipelined batch; claimStmts counts those of
// the batches that carried claims (the claim path).
type statementCounter struct {
	all, claims atomic.Uint64
}

type batchKey struct{}

type batchCount struct {
	n     uint64
	claim bool
}

var (
	_ pgx.QueryTracer = (*statementCounter)(nil)
	_ pgx.BatchTracer = (*statementCounter)(nil)
)

// claimMarker is a fragment of the claims statement's text.
const claimMarker = "lease_us, version, idx"

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.all.Add(1)
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *statementCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return context.WithValue(ctx, batchKey{}, &batchCount{})
}

func (c *statementCounter) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if b, ok := ctx.Value(batchKey{}).(*batchCount); ok {
		b.n++
		b.claim = b.claim || strings.Contains(d.SQL, claimMarker)
	}
}

func (c *statementCounter) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	if b, ok := ctx.Value(batchKey{}).(*batchCount); ok {
		c.all.Add(b.n)
		if b.claim {
			c.claims.Add(b.n)
		}
	}
}

// replicaCounter counts a replica's take-overs and fenced writes.
type replicaCounter struct {
	takeovers, fenced, failed atomic.Uint64
}

func (c *replicaCounter) Claims(_, _, _, _, failed int) { c.failed.Add(uint64(failed)) }
func (c *replicaCounter) LeasesHeld(int)                {}
func (c *replicaCounter) TakenOver(n int)               { c.takeovers.Add(uint64(n)) }
func (c *replicaCounter) Fenced(actors.FencedWrite)     { c.fenced.Add(1) }
func (c *replicaCounter) Heartbeat(bool)                {}

// openShared opens the PostgreSQL store of a replica, counting its
// statements.
func openShared(dsn string, counter *statementCounter) (*pgstore.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return pgstore.Open(ctx, dsn, pgstore.WithPoolConfig(func(c *pgxpool.Config) { c.ConnConfig.Tracer = counter }))
}

// runReplicated is the coordinator of a fire scenario on replicas.
func runReplicated(cfg fireConfig, replicas int) harness.Result {
	k := int(cfg.duration / cfg.period)
	res := harness.Result{
		Scenario: cfg.scenario, Scheduler: "ours", Store: "postgres", Replicas: replicas,
		N: cfg.n, Period: cfg.period, Duration: cfg.duration, Grace: grace(cfg.period),
		Margin: max(cfg.margin, replicaMargin),
	}
	if k < 1 || k > harness.MaxSlots {
		res.Error = fmt.Sprintf("the window holds %d slots per task; 1..%d supported", k, harness.MaxSlots)
		return res
	}
	if replicas < 1 || replicas > 16 {
		res.Error = fmt.Sprintf("-replicas %d: 1 to 16", replicas)
		return res
	}
	srv, err := pgtest.Start()
	if err != nil {
		res.Error = "PostgreSQL: " + err.Error()
		return res
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "schedbench: stop PostgreSQL:", err)
		}
	}()
	dsn := srv.DSN("postgres")
	st, err := openShared(dsn, &statementCounter{}) // creates the schema
	if err != nil {
		res.Error = err.Error()
		return res
	}
	_ = st.Close()
	dir, err := os.MkdirTemp("", "schedbench-replicas-")
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer os.RemoveAll(dir)

	self, err := os.Executable()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	t0 := time.Now().Add(res.Margin)
	type child struct {
		name, seen, hist string
		out              bytes.Buffer
		cmd              *exec.Cmd
		res              harness.Result
		err              error
	}
	children := make([]*child, replicas)
	var wg sync.WaitGroup
	for i := range children {
		c := &child{name: fmt.Sprintf("replica-%d", i+1)}
		c.seen, c.hist = filepath.Join(dir, c.name+".seen.json"), filepath.Join(dir, c.name+".hist.json")
		args := []string{"-scenario", strconv.Itoa(cfg.scenario), "-store", "postgres", "-role", "replica",
			"-replica", c.name, "-dsn", dsn, "-t0", strconv.FormatInt(t0.UnixNano(), 10),
			"-n", strconv.Itoa(cfg.n), "-period", cfg.period.String(), "-duration", cfg.duration.String(),
			"-seen", c.seen, "-hist", c.hist}
		c.cmd = exec.Command(self, args...)
		c.cmd.Stdout, c.cmd.Stderr = &c.out, os.Stderr
		if err := c.cmd.Start(); err != nil {
			res.Error = err.Error()
			return res
		}
		children[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.err = c.cmd.Wait()
			c.res, c.err = parseResult(c.out.Bytes(), c.err)
		}()
	}

	time.Sleep(time.Until(t0))
	cpu0, tx0, err := serverUsage(srv, dsn)
	if err != nil {
		res.Notes = append(res.Notes, "server usage at the anchor: "+err.Error())
	}
	time.Sleep(time.Until(t0.Add(cfg.duration + res.Grace)))
	cpu1, tx1, err := serverUsage(srv, dsn)
	if err != nil {
		res.Notes = append(res.Notes, "server usage at the end: "+err.Error())
	}
	res.Window = cfg.duration + res.Grace
	res.DBCPU, res.Transactions = cpu1-cpu0, tx1-tx0
	wg.Wait()

	hist := harness.NewHistogram()
	var seen [][]uint64
	for _, c := range children {
		if c.err != nil {
			res.Error = fmt.Sprintf("%s: %v", c.name, c.err)
			return res
		}
		var s []uint64
		if err := readJSON(c.seen, &s); err != nil {
			res.Error = fmt.Sprintf("%s: %v", c.name, err)
			return res
		}
		seen = append(seen, s)
		var buckets []harness.Bucket
		if err := readJSON(c.hist, &buckets); err != nil {
			res.Error = fmt.Sprintf("%s: %v", c.name, err)
			return res
		}
		hist.Add(buckets)
		res.ReplicaCPU = append(res.ReplicaCPU, c.res.CPUWindow)
		res.CPUWindow += c.res.CPUWindow
		res.Statements += c.res.Statements
		res.ClaimStatements += c.res.ClaimStatements
		res.Setup = max(res.Setup, c.res.Setup)
		res.PeakRSS = max(res.PeakRSS, c.res.PeakRSS)
		res.Missed += c.res.Missed
		res.Takeovers += c.res.Takeovers
		res.Fenced += c.res.Fenced
		res.ClaimsFailed += c.res.ClaimsFailed
		res.Skipped += c.res.Skipped
		for _, n := range c.res.Notes {
			res.Notes = append(res.Notes, c.name+": "+n)
		}
	}
	counts := harness.MergeSeen(k, seen)
	res.Fires = &counts
	res.Summarise(hist)
	if cfg.histOut != "" {
		if err := writeJSON(cfg.histOut, res.Hist); err != nil {
			res.Notes = append(res.Notes, "hist: "+err.Error())
		}
	}
	return res
}

// runReplica is one replica process of runReplicated: it runs the fire
// scenario with the shared store and writes the slots it fired.
func runReplica(cfg fireConfig) harness.Result {
	cfg.replica.stmts, cfg.replica.events = &statementCounter{}, &replicaCounter{}
	res := runFire(cfg)
	if res.Error != "" {
		return res
	}
	res.Replicas = 1
	res.Takeovers, res.Fenced = cfg.replica.events.takeovers.Load(), cfg.replica.events.fenced.Load()
	res.ClaimsFailed = cfg.replica.events.failed.Load()
	return res
}

// parseResult finds the result line in a benchmark process's output.
func parseResult(out []byte, runErr error) (harness.Result, error) {
	var res harness.Result
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(l, harness.ResultPrefix); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				return res, fmt.Errorf("result line: %w", err)
			}
			if res.Error != "" {
				return res, errors.New(res.Error)
			}
			return res, nil
		}
	}
	if runErr == nil {
		runErr = errors.New("exited 0")
	}
	return res, fmt.Errorf("no result: %w", runErr)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// serverUsage returns the CPU time of the cluster so far (see
// pgtest.Server.CPUTime) and the transactions committed or rolled back in
// the database postgres (pg_stat_database).
func serverUsage(srv *pgtest.Server, dsn string) (time.Duration, uint64, error) {
	cpu, err := srv.CPUTime()
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return cpu, 0, err
	}
	defer conn.Close(context.Background())
	var tx int64
	// The statistics a backend has not flushed yet are flushed first.
	if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		return cpu, 0, err
	}
	err = conn.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'postgres'`).Scan(&tx)
	return cpu, uint64(tx), err
}
