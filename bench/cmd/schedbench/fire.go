package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/go-co-op/gocron/v2"
	"github.com/mojodex/mojodex-scheduler/bench/harness"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/robfig/cron/v3"
)

// fireConfig is one run of a fire scenario (1-3): n no-op tasks every
// period, measured over a window of duration from the anchor.
type fireConfig struct {
	scenario  int
	scheduler string
	n         int
	period    time.Duration
	duration  time.Duration
	// margin is the time between the start of the set-up and the anchor t0:
	// tasks are registered before t0, so that their registration is not
	// measured as lateness (robfig chooses its own anchor, see setupRobfig).
	margin   time.Duration
	profiles profiles
	// store is ours' state store: memory, bolt or postgres (replicas).
	store string
	// replica is set in a replica process of a run on PostgreSQL.
	replica replicaArgs
	// histOut is where the coordinator of replicas writes the merged
	// histogram.
	histOut string
}

// fireScenario returns the sizes of scenario s.
func fireScenario(s int, short bool) (fireConfig, error) {
	c := fireConfig{scenario: s}
	switch {
	case s == 1 && !short:
		c.n, c.period, c.duration, c.margin = 10_000, time.Second, 20*time.Second, 2*time.Second
	case s == 1:
		c.n, c.period, c.duration, c.margin = 2_000, time.Second, 3*time.Second, 500*time.Millisecond
	case s == 2 && !short:
		c.n, c.period, c.duration, c.margin = 100_000, 10*time.Second, 40*time.Second, 5*time.Second
	case s == 2:
		c.n, c.period, c.duration, c.margin = 10_000, 2*time.Second, 4*time.Second, time.Second
	case s == 3 && !short:
		c.n, c.period, c.duration, c.margin = 1_000_000, time.Minute, 150*time.Second, 45*time.Second
	case s == 3:
		c.n, c.period, c.duration, c.margin = 50_000, 5*time.Second, 10*time.Second, 3*time.Second
	default:
		return c, fmt.Errorf("no fire scenario %d", s)
	}
	return c, nil
}

// grace is how long after the window's end fires due in the window are
// still counted: half a period, at most 5 s. A fire due at or before the
// end of the window (slot K = floor(duration/period)) that has not started
// by then counts as not delivered; the next slot is not due before the
// grace ends, so no fire of slot K+1 is awaited.
func grace(period time.Duration) time.Duration {
	return min(period/2, 5*time.Second)
}

// recorder collects fires: per-task accounting and the lateness histogram.
type recorder struct {
	fires  *harness.Fires
	hist   *harness.Histogram
	t0     time.Time
	period time.Duration
}

// peerFire records a fire of task i of a peer scheduler that started at
// now: the n-th fire of a task is taken to be due at t0 + n*period.
func (r *recorder) peerFire(i int, now time.Time) {
	if n, ok := r.fires.Next(i); ok {
		r.hist.Record(now.Sub(r.t0.Add(time.Duration(n) * r.period)))
	}
}

// ourObserver is the task.Observer of our supervisor: Fired gives the
// slot and its lateness directly.
type ourObserver struct {
	rec             *recorder
	skipped, missed atomic.Uint64
	failed          atomic.Uint64
	badName         atomic.Uint64
}

var _ task.Observer = (*ourObserver)(nil)

// taskName names task i ("t-<i>"); taskIndex parses it back without
// allocating.
func taskName(i int) string { return fmt.Sprintf("t-%d", i) }

func taskIndex(name string) int {
	if len(name) < 3 || name[0] != 't' || name[1] != '-' {
		return -1
	}
	n := 0
	for _, c := range name[2:] {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Fired implements task.Observer.
func (o *ourObserver) Fired(name string, slot time.Time, lateness time.Duration) {
	i := taskIndex(name)
	if i < 0 {
		o.badName.Add(1)
		return
	}
	d := slot.Sub(o.rec.t0)
	k := int64(0) // off the grid
	if d%o.rec.period == 0 {
		k = int64(d / o.rec.period)
	}
	if o.rec.fires.Slot(i, k) {
		o.rec.hist.Record(lateness)
	}
}

// Skipped implements task.Observer.
func (o *ourObserver) Skipped(string, time.Time, task.SkipReason) { o.skipped.Add(1) }

// Missed implements task.Observer.
func (o *ourObserver) Missed(_ string, slots int) { o.missed.Add(uint64(slots)) }

// RunFinished implements task.Observer.
func (o *ourObserver) RunFinished(rec task.Run) {
	if rec.Outcome == task.OutcomeFailed {
		o.failed.Add(1)
	}
}

// noop is the in-process job of our tasks: the scheduler is measured, not
// the work.
func noop(context.Context) (int, error) { return 0, nil }

// started is a scheduler that runs; stop stops it. ready, when set, is
// when its set-up was done (before any wait for the anchor).
type started struct {
	stop  func() error
	ready time.Time
}

// setupOurs registers n tasks with our supervisor, anchored at rec.t0, and
// returns when the last task actor has armed its timer.
func setupOurs(cfg fireConfig, rec *recorder, obs *ourObserver) (started, error) {
	specs := make([]task.Spec, cfg.n)
	for i := range specs {
		specs[i] = task.Spec{Name: taskName(i), Every: cfg.period, Job: noop}
	}
	var st store.Store = store.NewMemory()
	var dir string
	var extra []supervisor.Option
	switch cfg.store {
	case "memory", "":
	case "postgres":
		pg, err := openShared(cfg.replica.dsn, cfg.replica.stmts)
		if err != nil {
			return started{}, err
		}
		st = pg
		extra = []supervisor.Option{supervisor.WithReplica(cfg.replica.name),
			supervisor.WithLeases(replicaLease, replicaRenew, replicaReaper),
			supervisor.WithReplicaObserver(cfg.replica.events)}
	case "bolt":
		var err error
		if dir, err = os.MkdirTemp("", "schedbench-state-"); err != nil {
			return started{}, err
		}
		bolt, err := store.OpenBolt(filepath.Join(dir, "state.db"))
		if err != nil {
			os.RemoveAll(dir)
			return started{}, err
		}
		st = bolt
	default:
		return started{}, fmt.Errorf("unknown store %q (memory, bolt, postgres)", cfg.store)
	}
	closeStore := func() {
		_ = st.Close()
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
	producer, err := supervisor.New(specs, nil, append([]supervisor.Option{
		supervisor.WithObserver(obs),
		supervisor.WithStart(rec.t0),
		supervisor.WithStore(st)}, extra...)...)
	if err != nil {
		closeStore()
		return started{}, err
	}
	specs = nil // New keeps its own copy
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		return started{}, err
	}
	pid := supervisor.Spawn(engine, producer)
	stop := func() error {
		defer closeStore()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		select {
		case <-engine.PoisonCtx(ctx, pid).Done():
			return nil
		case <-ctx.Done():
			return errors.New("our supervisor did not stop within 2 minutes")
		}
	}
	// Ready when the last task's actor has reported its armed timer (the
	// supervisor spawns the task actors in order while handling Started, and
	// answers GetTask only after that).
	last := taskName(cfg.n - 1)
	for {
		v, err := engine.Request(pid, supervisor.GetTask{Name: last}, 10*time.Minute).Result()
		if err != nil {
			_ = stop()
			return started{}, fmt.Errorf("GetTask %s: %w", last, err)
		}
		reply, ok := v.(supervisor.TaskReply)
		if !ok || reply.Err != nil {
			_ = stop()
			return started{}, fmt.Errorf("GetTask %s: %v %v", last, v, reply.Err)
		}
		if !reply.Task.Next.IsZero() {
			if want := rec.t0.Add(cfg.period); !reply.Task.Next.Equal(want) {
				return started{stop: stop}, fmt.Errorf("task %s armed for %s, want %s", last, reply.Task.Next, want)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return started{stop: stop}, nil
}

// setupRobfig registers n no-op jobs with robfig/cron/v3 ("@every <period>",
// a ConstantDelaySchedule) and starts it. robfig computes an entry's next
// run as Next(now) = now + period, rounded down to the whole second, from
// the instant the scheduler starts (for entries added before Start) and then
// from the instant each run is launched. So the anchor t0 is a whole second:
// the cron is started 2 ms after it, and its first fires are due at
// t0 + period; while its lateness stays under a second the rounding keeps
// later fires on t0 + k*period (no drift), beyond that they slip.
func setupRobfig(cfg fireConfig, rec *recorder) (started, error) {
	c := cron.New(cron.WithSeconds(), cron.WithLogger(cron.DiscardLogger))
	spec := "@every " + cfg.period.String()
	for i := range cfg.n {
		if _, err := c.AddFunc(spec, func() { rec.peerFire(i, time.Now()) }); err != nil {
			return started{}, err
		}
	}
	ready := time.Now()
	t0 := ready.Add(10 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	rec.t0 = t0
	time.Sleep(time.Until(t0.Add(2 * time.Millisecond)))
	c.Start()
	return started{ready: ready, stop: func() error {
		select {
		case <-c.Stop().Done():
			return nil
		case <-time.After(2 * time.Minute):
			return errors.New("robfig/cron did not stop within 2 minutes")
		}
	}}, nil
}

// setupGocron registers n no-op DurationJob(period) jobs with gocron/v2,
// each starting at t0 + period (WithStartDateTimePast, so a set-up that
// overran the margin skips to the next slot instead of failing); gocron
// computes each next run from the previous scheduled time, so fires are
// due at t0 + k*period.
func setupGocron(cfg fireConfig, rec *recorder) (started, error) {
	s, err := gocron.NewScheduler()
	if err != nil {
		return started{}, err
	}
	first := rec.t0.Add(cfg.period)
	for i := range cfg.n {
		_, err := s.NewJob(gocron.DurationJob(cfg.period),
			gocron.NewTask(func() { rec.peerFire(i, time.Now()) }),
			gocron.WithStartAt(gocron.WithStartDateTimePast(first)))
		if err != nil {
			_ = s.Shutdown()
			return started{}, err
		}
	}
	s.Start()
	return started{stop: s.Shutdown}, nil
}

// runFire runs one fire scenario with one scheduler.
func runFire(cfg fireConfig) harness.Result {
	k := int(cfg.duration / cfg.period)
	res := harness.Result{
		Scenario: cfg.scenario, Scheduler: cfg.scheduler,
		N: cfg.n, Period: cfg.period, Duration: cfg.duration,
		Grace: grace(cfg.period), Margin: cfg.margin,
	}
	if k < 1 || k > harness.MaxSlots {
		res.Error = fmt.Sprintf("the window holds %d slots per task; 1..%d supported", k, harness.MaxSlots)
		return res
	}
	rec := &recorder{
		fires:  harness.NewFires(cfg.n, k),
		hist:   harness.NewHistogram(),
		period: cfg.period,
	}
	setupStart := time.Now()
	rec.t0 = setupStart.Add(cfg.margin)
	if !cfg.replica.t0.IsZero() {
		rec.t0 = cfg.replica.t0 // the coordinator's, shared by the replicas
		res.Margin = rec.t0.Sub(setupStart)
	}
	sampler := harness.StartSampler(50 * time.Millisecond)
	var (
		st  started
		err error
		obs *ourObserver
	)
	switch cfg.scheduler {
	case "ours":
		obs = &ourObserver{rec: rec}
		res.Store = cfg.store
		st, err = setupOurs(cfg, rec, obs)
	case "robfig":
		st, err = setupRobfig(cfg, rec)
		res.Margin = 0
	case "gocron":
		st, err = setupGocron(cfg, rec)
	default:
		err = fmt.Errorf("unknown scheduler %q (ours, robfig, gocron)", cfg.scheduler)
	}
	res.Setup = time.Since(setupStart)
	if !st.ready.IsZero() {
		res.Setup = st.ready.Sub(setupStart)
	}
	if err != nil {
		sampler.Stop()
		res.Error = err.Error()
		if st.stop != nil {
			_ = st.stop()
		}
		return res
	}
	if late := time.Since(rec.t0); late > 0 && cfg.scheduler != "robfig" {
		res.Notes = append(res.Notes, fmt.Sprintf("set-up overran the anchor by %s", late.Round(time.Millisecond)))
	}
	time.Sleep(time.Until(rec.t0))
	before := harness.Self()
	var stmts, claimStmts uint64
	if c := cfg.replica.stmts; c != nil {
		stmts, claimStmts = c.all.Load(), c.claims.Load()
	}
	stopCPU := cfg.profiles.startCPU()
	end := rec.t0.Add(cfg.duration + res.Grace)
	time.Sleep(time.Until(end))
	rec.fires.Close()
	after := harness.Self()
	if c := cfg.replica.stmts; c != nil {
		res.Statements, res.ClaimStatements = c.all.Load()-stmts, c.claims.Load()-claimStmts
	}
	stopCPU()
	peaks := sampler.Stop()
	res.Peaks = &peaks
	win := after.Sub(before)
	res.Window = after.At.Sub(before.At)
	res.CPUWindow = win.CPU
	res.WakeWindow = win.Voluntary
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapInUse = ms.HeapInuse
	res.Goroutines = runtime.NumGoroutine()
	cfg.profiles.writeHeap()
	counts := rec.fires.Counts()
	res.Fires = &counts
	if cfg.replica.seen != "" {
		seen := make([]uint64, cfg.n)
		for i := range seen {
			seen[i] = rec.fires.Seen(i)
		}
		if err := writeJSON(cfg.replica.seen, seen); err != nil {
			res.Error = err.Error()
		}
	}
	res.Summarise(rec.hist)
	if obs != nil {
		res.Skipped, res.Missed = obs.skipped.Load(), obs.missed.Load()
		if f := obs.failed.Load(); f > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%d runs failed", f))
		}
		if b := obs.badName.Load(); b > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%d fires of unknown tasks", b))
		}
	}
	if err := st.stop(); err != nil {
		res.Notes = append(res.Notes, "stop: "+err.Error())
	}
	return res
}
