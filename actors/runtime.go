// Package actors holds the task actor: one per scheduled task, owning its
// schedule, its claims, its overlap and gate decisions, its pause flag and
// its runs in progress; and the Runtime the task actors of one supervisor
// share (the timer service, the job workers and the store's committer).
//
// One fire, in one direction:
//
//	timer service ─claims (one commit per instant)─▶ task actor ─▶ API-client actor / job worker ─▶ result
//
// The timer service delivers every slot due at one instant together: their
// claims go to the store in one commit, then each task actor gets one
// message; the service re-arms each schedule's next slot as it delivers.
// The actor decides (overlap, gate, pause) and hands the whole run to the API-client actor (HTTP tasks) or to a job
// worker (in-process jobs). Whoever executes the run finishes it: the
// result is logged, counted and recorded there, and the task actor learns
// of it through the run's handle the next time it looks — or at once, by a
// message, when it is waiting for it (a queued fire, a drain, a deadline).
// So an in-process job's fire costs the task actor one message.
package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/internal/timers"
	"github.com/mojodex/mojodex-scheduler/schedule"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

// Defaults of RuntimeConfig.
const (
	// DefaultJobWorkers is the default number of job workers.
	DefaultJobWorkers = 8
	// DefaultJobQueue is the default bound of the queue of jobs waiting
	// for a worker.
	DefaultJobQueue = 1 << 20
)

// RuntimeConfig configures a Runtime.
type RuntimeConfig struct {
	// Engine is the actor engine the task actors live in.
	Engine *actor.Engine
	// Committer writes claims, checkpoints, runs and pauses (required).
	Committer *store.Committer
	// API is the API-client actor (required when a task makes HTTP calls).
	API *actor.PID
	// AttemptTimeout, Attempts and BackoffMax are the API client's, from
	// which a task's run deadline is derived (task.Spec.RunDeadline).
	AttemptTimeout time.Duration
	Attempts       int
	BackoffMax     time.Duration
	// JobWorkers is the number of goroutines running in-process jobs
	// (default DefaultJobWorkers); JobQueue bounds the jobs waiting for one
	// (default DefaultJobQueue).
	JobWorkers, JobQueue int
	// Replica names this process in run records and claims (empty for a
	// single process).
	Replica string
	// Shared, when not nil, is the store shared with other replicas (the
	// Committer's store): claims carry this replica's name, a lease and
	// the task set version, the runtime renews the leases of its runs and
	// takes over the runs of replicas whose lease lapsed. Lease, Renew and
	// ReaperInterval are then required.
	Shared         store.Shared
	Lease, Renew   time.Duration
	ReaperInterval time.Duration
	// ReplicaObserver, if not nil, receives the replica events.
	ReplicaObserver ReplicaObserver
	// Logger receives the actors' events.
	Logger zerolog.Logger
	// Observer, if not nil, receives every run event.
	Observer task.Observer
}

// Runtime is what the task actors of one supervisor share. Its owner (the
// supervisor) creates it when it starts and stops it when it stops, after
// its task actors.
type Runtime struct {
	cfg    RuntimeConfig
	engine *actor.Engine
	log    zerolog.Logger
	obs    task.Observer
	timers *timers.Service[alarmEntry]
	jobs   *jobPool

	// storeDown is set while claims fail, so that an outage is logged once
	// rather than once per fire.
	storeDown atomic.Bool

	// Replicas (see replica.go).
	unrecorded pendingRecords
	robs       ReplicaObserver
	version    atomic.Int64
	started    time.Time
	held       holdings
	names      registry
	stop       chan struct{}
	loops      sync.WaitGroup
}

// NewRuntime starts a runtime: its timer service and its job workers.
func NewRuntime(cfg RuntimeConfig) (*Runtime, error) {
	if cfg.Engine == nil || cfg.Committer == nil {
		return nil, errors.New("actors: a runtime needs an engine and a committer")
	}
	if cfg.JobWorkers <= 0 {
		cfg.JobWorkers = DefaultJobWorkers
	}
	if cfg.JobQueue <= 0 {
		cfg.JobQueue = DefaultJobQueue
	}
	rt := &Runtime{cfg: cfg, engine: cfg.Engine, log: cfg.Logger, obs: cfg.Observer}
	if rt.obs == nil {
		rt.obs = nopObserver{}
	}
	rt.robs = cfg.ReplicaObserver
	if rt.robs == nil {
		rt.robs = nopReplicaObserver{}
	}
	if cfg.Shared != nil && (cfg.Lease <= 0 || cfg.Renew <= 0 || cfg.ReaperInterval <= 0 || cfg.Renew >= cfg.Lease) {
		return nil, fmt.Errorf("actors: a shared store needs a lease (%s) longer than its renewal (%s), and a reaper interval (%s)", cfg.Lease, cfg.Renew, cfg.ReaperInterval)
	}
	rt.started = time.Now()
	rt.stop = make(chan struct{})
	rt.timers = timers.New(rt.deliver)
	rt.jobs = newJobPool(cfg.JobWorkers, cfg.JobQueue, rt.log)
	if cfg.Shared != nil {
		rt.replicaLoops(rt.stop, &rt.loops)
	}
	return rt, nil
}

// SetVersion sets the task set version this replica runs (claims from
// another version than the shared store's current one are refused).
func (rt *Runtime) SetVersion(v int64) { rt.version.Store(v) }

// Shared reports whether the runtime's store is shared with other replicas.
func (rt *Runtime) Shared() bool { return rt.cfg.Shared != nil }

// Stop stops the timer service and the job workers (cancelling the jobs
// still running and waiting up to wait for them). Stopping twice is not an
// error.
func (rt *Runtime) Stop(wait time.Duration) {
	select {
	case <-rt.stop:
	default:
		close(rt.stop)
	}
	rt.loops.Wait()
	rt.timers.Stop()
	rt.jobs.stop(wait)
}

// Committer returns the runtime's committer.
func (rt *Runtime) Committer() *store.Committer { return rt.cfg.Committer }

// alarm is a task actor's arming of the timer service: entries whose
// sequence number is no longer the alarm's are stale (the actor re-armed,
// paused or stopped) and are dropped before their slot is claimed.
type alarm struct {
	pid    *actor.PID
	name   string
	sched  schedule.Schedule
	jitter time.Duration
	// seq is read without the lock (a stale entry is dropped early) and
	// written with it, together with next.
	seq atomic.Uint64
	mu  sync.Mutex
	// next is the slot armed (Unix nanoseconds; 0 when none): the actor
	// sets it when it arms, the timer service moves it as it re-arms the
	// schedule after each fire, but only while the arming is current.
	next int64
	// pending is set while a scheduled fire waits in the actor's inbox:
	// a slot that comes meanwhile cannot be served and is missed, never
	// claimed, so at most one fire per task is ever queued.
	pending atomic.Bool
	// fired is the message of the alarm's scheduled fire, reused: the
	// timer service writes it before sending it, and writes it again only
	// for the next arming, which the actor makes after it has copied the
	// previous one (onFire). One-off fires get a message of their own.
	fired fire
}

// alarmEntry is one arming: deliver the slot to the alarm's actor if the
// alarm still has this sequence number. Instants are Unix nanoseconds, so
// arming takes little stack on the fire path. seq 0 is a one-off fire (a
// catch-up, a start-up fire, a claim retried after a store error); retry
// marks a scheduled slot whose claim is tried again after being refused as
// early: its schedule was re-armed already and its fire is still pending.
type alarmEntry struct {
	alarm     *alarm
	seq       uint64
	slot, due int64
	retry     bool
}

// arm arms a's schedule at slot (Unix nanoseconds; fired at slot plus the
// jitter) under sequence number seq.
func (rt *Runtime) arm(a *alarm, seq uint64, slot int64) {
	due := slot + int64(a.jitter)
	rt.timers.AtUnixNano(due, alarmEntry{alarm: a, seq: seq, slot: slot, due: due})
}

// entry returns the arming of slot (due at due) with sequence number seq.
func entry(a *alarm, seq uint64, slot, due time.Time) alarmEntry {
	return alarmEntry{alarm: a, seq: seq, slot: slot.UnixNano(), due: due.UnixNano()}
}

// fire is the one message a task actor gets per scheduled fire: its slot,
// already claimed (won), refused (why), or not recordable (err).
type fire struct {
	seq     uint64
	slot    time.Time
	won     bool
	refused store.Refusal
	err     error
}

// set arms a for slot (Unix nanoseconds; 0 disarms it): every pending
// entry becomes stale. It returns the new arming's sequence number.
func (a *alarm) set(slot int64) uint64 {
	a.mu.Lock()
	seq := a.seq.Add(1)
	a.next = slot
	a.mu.Unlock()
	return seq
}

// advance moves the arming seq to slot, unless the actor has armed again
// (or disarmed) since: it reports whether seq is still current.
func (a *alarm) advance(seq uint64, slot int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seq.Load() != seq {
		return false
	}
	a.next = slot
	return true
}

// armed returns the slot armed (Unix nanoseconds; 0 when none).
func (a *alarm) armed() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.next
}

// deliver is the timer service's callback, on its goroutine: each live
// scheduled entry is re-armed for its schedule's next slot (the actor armed
// the schedule; the service keeps it going, as a periodic timer would),
// then the entries due now are claimed in one batch and each actor gets
// its fire. A slot that comes while the actor has not yet taken its
// previous fire (it is stalled or busy) is counted as missed.
func (rt *Runtime) deliver(due []alarmEntry) {
	now := time.Now()
	live := due[:0]
	for _, e := range due {
		a := e.alarm
		if a.seq.Load() != e.seq {
			continue
		}
		if e.seq != 0 && !e.retry {
			rt.rearm(e, now)
			if a.pending.Swap(true) {
				rt.obs.Missed(a.name, 1)
				continue
			}
		}
		live = append(live, e)
	}
	if len(live) == 0 {
		return
	}
	rt.claim(live)
}

// rearm arms e's alarm for the slot after e's. Slots that have already
// passed (the process stalled, or the wall clock jumped forward) are
// counted and skipped: the next slot is computed from the schedule, never
// from when a run ends, so firing does not drift.
func (rt *Runtime) rearm(e alarmEntry, now time.Time) {
	a := e.alarm
	slot := time.Unix(0, e.slot)
	next := a.sched.Next(slot)
	if !next.IsZero() && !next.Add(a.jitter).After(now) {
		latest, missed := schedule.Missed(a.sched, slot, now.Add(-a.jitter), MaxMissedCount)
		next = a.sched.Next(latest)
		rt.log.Warn().Str("task", a.name).Int("missed_slots", missed).Time("slot", slot).Time("next", next).
			Msg("slots passed without firing; skipped to the next one")
		rt.obs.Missed(a.name, missed)
	}
	if next.IsZero() {
		if !a.advance(e.seq, 0) {
			return
		}
		rt.log.Warn().Str("task", a.name).Msg("the schedule has no further fire time; the task will not fire again")
		return
	}
	if !a.advance(e.seq, next.UnixNano()) {
		return // the actor armed again, or stopped, meanwhile
	}
	rt.arm(a, e.seq, next.UnixNano())
}

// claim claims the slots of entries in one batch and sends each actor its
// fire once the batch is committed. With a shared store a claim refused
// as early (this replica's clock runs ahead of the store's) is tried again
// when the store's clock reaches its due time, without a fire.
func (rt *Runtime) claim(entries []alarmEntry) {
	b := &store.Batch{Claims: make([]store.Claim, len(entries))}
	shared := rt.cfg.Shared != nil
	version := rt.version.Load()
	for i, e := range entries {
		c := store.Claim{Task: e.alarm.name, Slot: time.Unix(0, e.slot)}
		if shared {
			c.Due, c.Owner, c.Lease, c.Version = time.Unix(0, e.due), rt.cfg.Replica, rt.cfg.Lease, version
		}
		b.Claims[i] = c
	}
	rt.cfg.Committer.Submit(b, func(err error) {
		rt.noteStore(err)
		var won, claimed, early, stale int
		now := time.Now()
		for i, e := range entries {
			c := &b.Claims[i]
			if err == nil && c.Refused == store.RefusedEarly {
				early++
				wait := max(c.Due.Sub(b.Now), store.EarlyTolerance) // by the store's clock
				e.retry = true
				rt.timers.At(now.Add(wait), e)
				continue
			}
			switch {
			case err != nil:
			case c.Won:
				won++
			case c.Refused == store.RefusedStale:
				stale++
			default:
				claimed++
			}
			f := &fire{}
			if e.seq != 0 {
				f = &e.alarm.fired
			}
			*f = fire{seq: e.seq, slot: c.Slot, won: err == nil && c.Won, refused: c.Refused, err: err}
			rt.engine.Send(e.alarm.pid, f)
		}
		if shared {
			failed := 0
			if err != nil {
				failed = len(entries)
			}
			rt.robs.Claims(won, claimed, early, stale, failed)
		}
	})
}

// noteStore logs the start and the end of a store outage once each.
func (rt *Runtime) noteStore(err error) {
	if err != nil {
		if !rt.storeDown.Swap(true) {
			rt.log.Error().Err(err).Msg("state store: claims fail; no slot fires until they succeed again")
		}
		return
	}
	if rt.storeDown.Swap(false) {
		rt.log.Info().Msg("state store: claims succeed again")
	}
}

// record stores a finished run (asynchronously, grouped with others) and
// calls report, if not nil, unless the record was fenced (another replica
// took the run over and records it) or, with a shared store, could not be
// stored yet. held, if not nil, is the run: its lease is released once the
// record is written or fenced.
//
// With a shared store, a record that cannot be written (the store is
// unreachable) is kept, and written again by the keeper and before every
// reaper pass, while the run stays held (its lease renewed once the store
// answers): so a run that ended during an outage is recorded by its own
// replica after it, rather than taken over and run again. Another replica
// may still take it over first, if the outage outlasted the lease; the
// record is then fenced.
func (rt *Runtime) record(rec task.Run, held *run, report func(stored bool)) {
	p := pendingRecord{rec: rec, held: held, report: report}
	b := &store.Batch{Runs: []task.Run{rec}}
	rt.cfg.Committer.Submit(b, func(err error) {
		switch {
		case err != nil && rt.cfg.Shared != nil && !rec.Manual:
			rt.log.Error().Str("task", rec.Task).Time("slot", rec.Slot).Err(err).
				Msg("state store: the run ended but cannot be recorded yet; this replica keeps its lease and records it once the store answers")
			rt.unrecorded.add(p)
		case err != nil:
			rt.log.Error().Str("task", rec.Task).Time("slot", rec.Slot).Err(err).
				Msg("state store: cannot record the run; a restart will run its slot again")
			rt.written(p, false, false)
		default:
			rt.written(p, true, len(b.RunsFenced) > 0 && b.RunsFenced[0])
		}
	})
}

// pendingRecord is a run record on its way to the store: the run (its
// lease, with a shared store) and what to do once it is recorded.
type pendingRecord struct {
	rec    task.Run
	held   *run
	report func(stored bool)
}

// written ends p once its commit is done (stored: it succeeded): a record
// refused by fencing (another replica took the run over and records it) is
// only counted; otherwise report is called. The run's lease is released
// either way.
func (rt *Runtime) written(p pendingRecord, stored, fenced bool) {
	if p.held != nil {
		rt.release(p.held)
	}
	if fenced {
		rt.robs.Fenced(FencedRun)
		rt.log.Warn().Str("task", p.rec.Task).Time("slot", p.rec.Slot).Int64("epoch", p.rec.Epoch).
			Msg("the run's record was refused: another replica took the run over and records it")
		return
	}
	if p.report != nil {
		p.report(stored)
	}
}

// pendingRecords are the records waiting for the shared store.
type pendingRecords struct {
	mu   sync.Mutex
	recs []pendingRecord
}

func (p *pendingRecords) add(r ...pendingRecord) {
	p.mu.Lock()
	p.recs = append(p.recs, r...)
	p.mu.Unlock()
}

func (p *pendingRecords) take() []pendingRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.recs
	p.recs = nil
	return out
}

// flushRecords writes the records that could not be written, in one
// commit, and waits for it; those that still cannot be written are kept.
func (rt *Runtime) flushRecords() {
	recs := rt.unrecorded.take()
	if len(recs) == 0 {
		return
	}
	b := &store.Batch{Runs: make([]task.Run, len(recs))}
	for i, p := range recs {
		b.Runs[i] = p.rec
	}
	if err := rt.cfg.Committer.Commit(b); err != nil {
		rt.unrecorded.add(recs...)
		return
	}
	for i, p := range recs {
		fenced := len(b.RunsFenced) > i && b.RunsFenced[i]
		if !fenced {
			rt.log.Info().Str("task", p.rec.Task).Time("slot", p.rec.Slot).Msg("state store: the run is recorded now that the store answers")
		}
		rt.written(p, true, fenced)
	}
}

// checkpoint stores the progress of a run in progress; a checkpoint
// refused because another replica took the run over drops the run here.
func (rt *Runtime) checkpoint(r *run, p task.Progress, saved func()) {
	c := store.Checkpoint{Task: r.name, Slot: r.slot, Progress: p}
	if rt.cfg.Shared != nil {
		c.Owner, c.Epoch = rt.cfg.Replica, r.epoch
	}
	b := &store.Batch{Checkpoints: []store.Checkpoint{c}}
	rt.cfg.Committer.Submit(b, func(err error) {
		switch {
		case err != nil:
			rt.log.Error().Str("task", r.name).Time("slot", r.slot).Err(err).Msg("state store: cannot save the run's checkpoint")
		case b.Checkpoints[0].Fenced:
			if r.lose("its checkpoint was refused: another replica took it over") {
				rt.robs.Fenced(FencedCheckpoint)
			}
		}
		saved()
	})
}

// nopObserver is the Observer when none is set.
type nopObserver struct{}

func (nopObserver) Fired(string, time.Time, time.Duration)     {}
func (nopObserver) Skipped(string, time.Time, task.SkipReason) {}
func (nopObserver) Missed(string, int)                         {}
func (nopObserver) RunFinished(task.Run)                       {}

// jobPool runs in-process jobs on a fixed set of goroutines, in order, with
// a bounded queue.
type jobPool struct {
	log zerolog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*run
	limit   int
	stopped bool
	running map[*run]struct{}
	wg      sync.WaitGroup
}

func newJobPool(workers, limit int, log zerolog.Logger) *jobPool {
	p := &jobPool{limit: limit, log: log, running: make(map[*run]struct{})}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

// submit queues r; false when the queue is full or the pool stopped.
func (p *jobPool) submit(r *run) bool {
	p.mu.Lock()
	if p.stopped || len(p.queue) >= p.limit {
		p.mu.Unlock()
		return false
	}
	p.queue = append(p.queue, r)
	p.mu.Unlock()
	p.cond.Signal()
	return true
}

func (p *jobPool) work() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for len(p.queue) == 0 && !p.stopped {
			p.cond.Wait()
		}
		if p.stopped {
			p.mu.Unlock()
			return
		}
		r := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		if len(p.queue) == 0 {
			p.queue = nil
		}
		p.running[r] = struct{}{}
		p.mu.Unlock()
		r.runJob()
		p.mu.Lock()
		delete(p.running, r)
		p.mu.Unlock()
	}
}

// stop refuses new jobs, drops the queued ones (their owners abandon them),
// cancels the running ones and waits up to wait for the workers.
func (p *jobPool) stop(wait time.Duration) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.queue = nil
	for r := range p.running {
		r.ctx.end(context.Canceled)
	}
	p.mu.Unlock()
	p.cond.Broadcast()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		p.log.Warn().Float64("waited_s", wait.Seconds()).Msg("job workers still busy at shutdown (a job ignores its context); leaving them")
	}
}

// errString formats a panic value for a run's error.
func errString(v any) string { return fmt.Sprint(v) }
