package actors

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/task"
)

// run is one run: created by its task actor, then executed by the API-client
// actor or a job worker, and finished exactly once by whoever gets there
// first — the executor with its result, the task actor at the deadline or
// when it crashes or is retired — or abandoned at shutdown (left in progress
// in the store, so that the next start resumes it).
//
// The fields above mu are fixed before the run is handed over. The task
// actor reads the others through the methods below.
type run struct {
	rt       *Runtime
	owner    *actor.PID
	name     string
	job      task.JobFunc
	slot     time.Time
	due      time.Time // slot plus jitter (the slot itself for manual runs)
	start    time.Time
	deadline time.Time
	next     time.Time // the task's next fire when the run started (for the log)
	manual   bool
	resumed  bool
	epoch    int64 // 1, or more for a run taken over; 0 for a manual run
	ctx      runCtx
	// leaseValid is when this replica stops counting on the run's lease
	// (unix nanoseconds; 0 without a shared store). The keeper moves it.
	leaseValid atomic.Int64

	mu       sync.Mutex
	progress task.Progress
	status   int
	finished bool
	notify   bool // the owner waits for a runDone message
	result   task.Run
}

// runDone tells the owner that a run it waits for has finished.
type runDone struct{ run *run }

// jobPanic carries a job's panic to its task actor, which re-raises it so
// that the supervisor restarts the task as for any crash.
type jobPanic struct {
	value any
	stack []byte
}

var _ apiclient.RunSink = (*run)(nil)

// Progress implements apiclient.RunSink: the checkpoint of a page, saved
// in the store before the next page is requested (a manual run keeps no
// checkpoint). A checkpoint that cannot be saved is logged and the run goes
// on: after a crash its page would be requested again, with the same
// Idempotency-Key.
func (r *run) Progress(p task.Progress, status int, saved func()) {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		saved() // the API client sees the run ended and drops it
		return
	}
	r.progress, r.status = p, status
	r.mu.Unlock()
	if r.manual {
		saved()
		return
	}
	r.rt.checkpoint(r, p, saved)
}

// Finish implements apiclient.RunSink.
func (r *run) Finish(res apiclient.RunResult) {
	var err error
	if res.Err != nil {
		err = res.Err
	}
	r.finish(res.Outcome, res.Reason, &res.Progress, res.Status, err)
}

// runJob executes an in-process job on a worker's goroutine.
func (r *run) runJob() {
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			r.finish(task.OutcomeFailed, "", nil, 0, fmt.Errorf("the job panicked: %s", errString(v)))
			r.rt.engine.Send(r.owner, jobPanic{value: v, stack: stack})
		}
	}()
	if r.ctx.Err() != nil {
		return // ended before a worker was free
	}
	items, err := r.job(&r.ctx)
	p := task.Progress{Items: items}
	if err != nil {
		r.finish(task.OutcomeFailed, "", &p, 0, err)
		return
	}
	r.finish(task.OutcomeOK, "", &p, 0, nil)
}

// finish ends the run with its result, unless it has ended already, and
// reports whether this call ended it. The result is logged, given to the
// observer and recorded; the owner is told if it waits.
func (r *run) finish(outcome task.Outcome, reason task.SkipReason, progress *task.Progress, status int, err error) bool {
	now := time.Now()
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return false
	}
	r.finished = true
	if progress != nil {
		r.progress = *progress
	}
	if status != 0 {
		r.status = status
	}
	rec := task.Run{
		Task: r.name, Slot: r.slot, Manual: r.manual, Resumed: r.resumed, Start: r.start,
		Duration: now.Sub(r.start), Outcome: outcome, Reason: reason,
		Pages: r.progress.Pages, Items: r.progress.Items, Status: r.status, Replica: r.rt.cfg.Replica, Epoch: r.epoch,
	}
	if !r.manual && !r.resumed {
		rec.Lateness = max(0, r.start.Sub(r.due))
	}
	if err != nil {
		rec.Err = err.Error()
	}
	r.result = rec
	notify := r.notify
	r.mu.Unlock()
	r.ctx.end(context.Canceled)
	// Its lease is released once the run is recorded (see Runtime.record).
	r.rt.finished(rec, r, r.next, err)
	if notify {
		r.rt.engine.Send(r.owner, runDone{run: r})
	}
	return true
}

// abandon ends the run without recording it: its slot stays in progress in
// the store and the next start resumes it (shutdown). It reports whether
// the run was still going.
func (r *run) abandon() bool {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return false
	}
	r.finished = true
	r.result = task.Run{Task: r.name, Slot: r.slot, Manual: r.manual, Start: r.start, Outcome: task.OutcomeFailed,
		Pages: r.progress.Pages, Items: r.progress.Items, Status: r.status, Err: "interrupted by the shutdown"}
	r.mu.Unlock()
	r.ctx.end(context.Canceled)
	r.rt.release(r)
	return true
}

// watch returns true if the run has finished; otherwise it asks to be told
// (runDone) when it does.
func (r *run) watch() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return true
	}
	r.notify = true
	return false
}

// done reports whether the run has finished.
func (r *run) done() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished
}

// running describes the run in progress.
func (r *run) running() task.Running {
	r.mu.Lock()
	defer r.mu.Unlock()
	return task.Running{Slot: r.slot, Start: r.start, Manual: r.manual, Resumed: r.resumed, Progress: r.progress, Deadline: r.deadline}
}

// finished records a run that has just ended, then logs it and tells the
// observer: once, where it is recorded. A record refused because another
// replica took the run over is reported by that replica; with a shared
// store, a record that could not be stored is not reported either (the
// run will be taken over and recorded elsewhere); on a single process it
// is reported, and the error logged.
func (rt *Runtime) finished(rec task.Run, held *run, next time.Time, err error) {
	rt.record(rec, held, func(stored bool) {
		ev := rt.log.Info()
		if rec.Outcome == task.OutcomeFailed {
			ev = rt.log.Error().Err(err)
		} else if rec.Outcome == task.OutcomeSkipped {
			ev = rt.log.Warn().Str("reason", string(rec.Reason))
		}
		ev = ev.Str("task", rec.Task).Time("slot", rec.Slot).Str("outcome", string(rec.Outcome)).
			Int("pages", rec.Pages).Int("items", rec.Items).Float64("duration_s", rec.Duration.Seconds())
		if rec.Status != 0 {
			ev = ev.Int("status", rec.Status)
		}
		if rec.Manual {
			ev = ev.Bool("manual", true)
		}
		if rec.Resumed {
			ev = ev.Bool("resumed", true)
		}
		if rec.Epoch > 1 {
			ev = ev.Int64("epoch", rec.Epoch)
		}
		if !next.IsZero() {
			ev = ev.Time("next", next)
		}
		ev.Msg("run finished")
		rt.obs.RunFinished(rec)
	})
}

// errDeadline is the error of a run that outlived its deadline.
var errDeadline = errors.New("deadline exceeded")

// errLost ends the context of a run whose lease this replica lost.
var errLost = errors.New("the run was taken over by another replica")
