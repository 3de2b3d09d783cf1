package task

import (
	"fmt"
	"time"
)

// Outcome is how a run ended.
type Outcome string

// Run outcomes.
const (
	// OutcomeOK is a run whose every page (or whose job) succeeded.
	OutcomeOK Outcome = "ok"
	// OutcomeFailed is a run that ended with an error (Run.Err says which).
	OutcomeFailed Outcome = "failed"
	// OutcomeSkipped is a fire that started no run (Run.Reason says why).
	// A skipped manual fire, and a scheduled fire skipped after its slot
	// was claimed (overlap, gate, pause, shutdown, full queue), are recorded;
	// a fire whose claim was lost or failed is only counted by the Observer.
	OutcomeSkipped Outcome = "skipped"
)

// Outcomes lists every outcome, in a stable order (metrics pre-create a
// series for each).
var Outcomes = []Outcome{OutcomeOK, OutcomeFailed, OutcomeSkipped}

// SkipReason says why a fire started no run.
type SkipReason string

// Skip reasons.
const (
	// SkipOverlap: the previous run of the task was still in progress
	// (overlap: skip, or a queue_one task with a fire already queued).
	SkipOverlap SkipReason = "overlap"
	// SkipGated: the task's gate (enabled_if) was closed.
	SkipGated SkipReason = "gated"
	// SkipDraining: the scheduler was shutting down.
	SkipDraining SkipReason = "draining"
	// SkipClaimed: the slot had been claimed already, by an earlier process
	// or another replica, so it must not fire again.
	SkipClaimed SkipReason = "claimed"
	// SkipStore: the state store could not record the claim, and a slot is
	// never fired without its claim.
	SkipStore SkipReason = "store"
	// SkipQueueFull: the queue of runs waiting for the API client (or for a
	// job worker) was full.
	SkipQueueFull SkipReason = "queue_full"
	// SkipPaused: the task was paused between its slot's claim and its fire.
	SkipPaused SkipReason = "paused"
	// SkipStale: this replica runs an older task set than the shared
	// store's current one, so its claims are refused until it follows.
	SkipStale SkipReason = "stale"
)

// SkipReasons lists every skip reason, in a stable order.
var SkipReasons = []SkipReason{SkipOverlap, SkipGated, SkipDraining, SkipClaimed, SkipStore, SkipQueueFull, SkipPaused, SkipStale}

// Describe explains the reason in words, for logs and operators; gate is
// the task's gate (used by SkipGated).
func (r SkipReason) Describe(gate Gate) string {
	switch r {
	case SkipOverlap:
		return "the previous run is still in progress"
	case SkipGated:
		return fmt.Sprintf("the %s service is not configured (enabled_if: %s)", gate, gate)
	case SkipDraining:
		return "the scheduler is shutting down"
	case SkipClaimed:
		return "the slot was claimed already (by an earlier process or another replica)"
	case SkipStore:
		return "the state store could not record the claim"
	case SkipQueueFull:
		return "the queue of runs waiting to be executed is full"
	case SkipPaused:
		return "the task was paused"
	case SkipStale:
		return "this replica runs an older task set than the current one"
	}
	return string(r)
}

// State is what a task is doing, as its actor (or, while it has none, the
// supervisor) reports it.
type State string

// Task states.
const (
	// StateScheduled: waiting for its next slot.
	StateScheduled State = "scheduled"
	// StateRunning: a run is in progress.
	StateRunning State = "running"
	// StatePaused: paused by an operator; fires nothing until resumed.
	StatePaused State = "paused"
	// StateGated: its gate's service is not configured; fires are skipped.
	StateGated State = "gated"
	// StateRestarting: its actor crashed and waits for its backoff.
	StateRestarting State = "restarting"
	// StateFailed: crashed too often; no longer restarted until resumed.
	StateFailed State = "failed"
)

// States lists every task state, in a stable order.
var States = []State{StateScheduled, StateRunning, StatePaused, StateGated, StateRestarting, StateFailed}

// Run is one run of a task: the one shape used by the task actors, the
// state store, the control plane, the metrics and the logs (the control
// plane converts it to protobuf, the status page to JSON, at their edges).
type Run struct {
	// Task is the task's name.
	Task string
	// Slot is the scheduled instant the run belongs to (the trigger time of
	// a manual run).
	Slot time.Time
	// Manual is true for a run started by a trigger rather than the schedule.
	Manual bool
	// Resumed is true for a run continued after the process (or replica)
	// that started it died.
	Resumed bool
	// Start is when the run started.
	Start time.Time
	// Lateness is Start minus the slot's due time (slot plus jitter); 0 for
	// manual and resumed runs.
	Lateness time.Duration
	// Duration is from Start to the end of the last page (or of the job).
	Duration time.Duration
	// Outcome is how the run ended.
	Outcome Outcome
	// Reason says why a skipped run did not happen (OutcomeSkipped only).
	Reason SkipReason
	// Pages is the number of HTTP pages answered (successfully or not).
	Pages int
	// Items is the number of items in the replies' lists (or the job's count).
	Items int
	// Status is the HTTP status of the last reply (0 when none).
	Status int
	// Err says why the run failed or was skipped; never holds the secret.
	Err string
	// Replica names the replica that finished the run (empty for a single
	// process with a local store).
	Replica string
	// Epoch counts the owners the run had: 1, or more when it was taken
	// over from a replica that died or stalled (0 when not tracked).
	Epoch int64
}

// Progress is how far a run in progress has got: what a restart resumes it from.
type Progress struct {
	// Pages is the number of pages answered.
	Pages int
	// Offset is the next offset to request (offset pagination).
	Offset int
	// Items is the number of items seen so far.
	Items int
}

// Observer receives the events of every task's runs, for metrics and for
// embedding programs. Its methods are called from the scheduler's
// goroutines (task actors, the API-client actor, job workers): they must be
// safe for concurrent use, fast, and must not block.
type Observer interface {
	// Fired is called when a run starts, with how late it started.
	Fired(task string, slot time.Time, lateness time.Duration)
	// Skipped is called when a fire starts no run.
	Skipped(task string, slot time.Time, reason SkipReason)
	// Missed is called when slots passed without firing (the process was
	// down or stalled, or the clock jumped).
	Missed(task string, slots int)
	// RunFinished is called once per run, when it ends.
	RunFinished(run Run)
}
