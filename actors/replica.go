package actors

import (
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/msg"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// This file is what the runtime does only when its store is shared with
// other replicas (store.Shared): every claim makes this replica the run's
// owner for a lease; the keeper renews the leases of the runs it holds and
// records a heartbeat; the reaper takes over the runs of replicas whose
// lease lapsed (dead, stalled, cut off) and hands them to the local task
// actor, which resumes them from their checkpoint. A run whose lease was
// lost (taken over, or its writes fenced) is dropped here without being
// recorded: its new owner records it.

// ReplicaObserver receives the replica events of the runtime, for metrics.
// Its methods are called from the runtime's goroutines: they must be safe
// for concurrent use and must not block.
type ReplicaObserver interface {
	// Claims counts the claims of one commit by result: won, or refused
	// (claimed, early, stale), or failed (the store could not be reached).
	Claims(won, claimed, early, stale, failed int)
	// LeasesHeld reports how many runs this replica holds now.
	LeasesHeld(n int)
	// TakenOver counts runs taken over by this replica.
	TakenOver(n int)
	// Fenced counts a write refused because the run was taken over.
	Fenced(kind FencedWrite)
	// Heartbeat reports whether this replica's last heartbeat reached the
	// shared store.
	Heartbeat(ok bool)
}

// FencedWrite is the kind of a write refused by fencing.
type FencedWrite string

// The writes fencing can refuse.
const (
	FencedCheckpoint FencedWrite = "checkpoint" // a pagination checkpoint
	FencedRun        FencedWrite = "run"        // a run's record
	FencedRenew      FencedWrite = "renew"      // a lease renewal
)

// FencedWrites lists every FencedWrite, in a fixed order.
var FencedWrites = []FencedWrite{FencedCheckpoint, FencedRun, FencedRenew}

type nopReplicaObserver struct{}

func (nopReplicaObserver) Claims(int, int, int, int, int) {}
func (nopReplicaObserver) LeasesHeld(int)                 {}
func (nopReplicaObserver) TakenOver(int)                  {}
func (nopReplicaObserver) Fenced(FencedWrite)             {}
func (nopReplicaObserver) Heartbeat(bool)                 {}

// leaseMargin is how long before a lease ends, by this replica's clock, it
// stops counting on it (the store's clock and its own may differ that much).
func (rt *Runtime) leaseMargin() time.Duration { return rt.cfg.Renew / 2 }

// holdings is the set of runs this replica holds a lease on.
type holdings struct {
	mu   sync.Mutex
	runs map[*run]struct{}
}

func (h *holdings) add(r *run) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runs == nil {
		h.runs = make(map[*run]struct{})
	}
	h.runs[r] = struct{}{}
	return len(h.runs)
}

func (h *holdings) remove(r *run) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.runs, r)
	return len(h.runs)
}

func (h *holdings) list() []*run {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Collect(maps.Keys(h.runs))
}

// hold makes the runtime renew r's lease until it ends.
func (rt *Runtime) hold(r *run, now time.Time) {
	r.leaseValid.Store(now.Add(rt.cfg.Lease - rt.leaseMargin()).UnixNano())
	rt.robs.LeasesHeld(rt.held.add(r))
}

// release stops renewing r's lease.
func (rt *Runtime) release(r *run) {
	if r.leaseValid.Load() != 0 {
		rt.robs.LeasesHeld(rt.held.remove(r))
	}
}

// registry maps task names to their actors' alarms, for the reaper.
type registry struct {
	mu     sync.Mutex
	alarms map[string]*alarm
}

func (g *registry) put(a *alarm) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.alarms == nil {
		g.alarms = make(map[string]*alarm)
	}
	g.alarms[a.name] = a
}

func (g *registry) drop(a *alarm) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.alarms[a.name] == a {
		delete(g.alarms, a.name)
	}
}

func (g *registry) snapshot() map[string]*alarm {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.alarms)
}

// replicaLoops runs the keeper and the reaper until stop is closed.
func (rt *Runtime) replicaLoops(stop <-chan struct{}, done *sync.WaitGroup) {
	done.Add(2)
	go func() {
		defer done.Done()
		rt.keep(stop)
	}()
	go func() {
		defer done.Done()
		rt.reap(stop)
	}()
}

// keep renews the leases of the runs this replica holds and records its
// heartbeat, every Renew.
func (rt *Runtime) keep(stop <-chan struct{}) {
	t := time.NewTicker(rt.cfg.Renew)
	defer t.Stop()
	rt.heartbeat()
	for {
		select {
		case <-stop:
			rt.flushRecords() // a last try: what is left is taken over later
			return
		case <-t.C:
			rt.heartbeat()
			rt.renew()
			rt.flushRecords()
		}
	}
}

func (rt *Runtime) heartbeat() {
	_, err := rt.cfg.Shared.Heartbeat(store.Replica{Name: rt.cfg.Replica, Started: rt.started, Version: rt.version.Load()})
	if err != nil {
		rt.noteStore(err)
	}
	rt.robs.Heartbeat(err == nil)
}

// renew renews every lease held, in one call; a run no longer held is
// dropped.
func (rt *Runtime) renew() {
	runs := rt.held.list()
	if len(runs) == 0 {
		return
	}
	start := time.Now()
	held := make([]store.Held, len(runs))
	for i, r := range runs {
		held[i] = store.Held{Task: r.name, Slot: r.slot, Epoch: r.epoch}
	}
	ok, err := rt.cfg.Shared.Renew(rt.cfg.Replica, rt.cfg.Lease, held)
	if err != nil {
		rt.noteStore(err)
		return // the leases run out by themselves: the API client stops sending their pages
	}
	valid := start.Add(rt.cfg.Lease - rt.leaseMargin()).UnixNano()
	for i, r := range runs {
		if ok[i] {
			r.leaseValid.Store(valid)
			continue
		}
		if r.lose("its lease was lost (another replica took it over, or it had ended)") {
			rt.robs.Fenced(FencedRenew)
		}
	}
}

// reap takes over the lapsed runs of this replica's tasks, every
// ReaperInterval (with a little jitter, so replicas do not all ask at once).
func (rt *Runtime) reap(stop <-chan struct{}) {
	for {
		d := rt.cfg.ReaperInterval
		d += time.Duration(rand.Int64N(int64(d)/5 + 1))
		select {
		case <-stop:
			return
		case <-time.After(d):
		}
		// Records left over from an outage go first: this replica's own
		// lapsed runs are recorded rather than taken over and run again.
		rt.flushRecords()
		alarms := rt.names.snapshot()
		if len(alarms) == 0 {
			continue
		}
		names := slices.Collect(maps.Keys(alarms))
		taken, err := rt.cfg.Shared.TakeOver(rt.cfg.Replica, rt.cfg.Lease, names, reapLimit)
		if err != nil {
			rt.noteStore(err)
			continue
		}
		if len(taken) > 0 {
			rt.robs.TakenOver(len(taken))
		}
		for _, h := range taken {
			if a := alarms[h.Task]; a != nil {
				rt.log.Warn().Str("task", h.Task).Time("slot", h.Slot).Int64("epoch", h.Epoch).Int("pages_done", h.Progress.Pages).
					Msg("took over a run whose lease lapsed (its replica died, stalled or was cut off)")
				rt.engine.Send(a.pid, msg.TakeOver{Slot: h.Slot, Epoch: h.Epoch, Progress: h.Progress})
			}
		}
	}
}

// reapLimit bounds the runs one reaper pass takes over.
const reapLimit = 100

// lose drops a run whose lease this replica no longer holds: it is not
// recorded (its new owner records it) and its context ends, so its
// executor stops. It reports whether the run was still going.
func (r *run) lose(why string) bool {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return false
	}
	r.finished = true
	r.result = task.Run{Task: r.name, Slot: r.slot, Start: r.start, Outcome: task.OutcomeFailed,
		Pages: r.progress.Pages, Items: r.progress.Items, Status: r.status, Err: why, Epoch: r.epoch}
	notify := r.notify
	r.mu.Unlock()
	r.ctx.end(errLost)
	r.rt.release(r)
	r.rt.log.Warn().Str("task", r.name).Time("slot", r.slot).Int64("epoch", r.epoch).Msg("run dropped: " + why)
	if notify {
		r.rt.engine.Send(r.owner, runDone{run: r})
	}
	return true
}

// Valid implements apiclient.Lease: whether the run's lease still holds by
// this replica's clock (always, without a shared store).
func (r *run) Valid(now time.Time) bool {
	v := r.leaseValid.Load()
	return v == 0 || now.UnixNano() < v
}
