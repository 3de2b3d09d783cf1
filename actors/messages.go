// Package actors holds the task actor: one per scheduled task, owning its
// timer, its run in progress and its pagination, and the middleware that
// turns a panic in any of our actors into a message to its supervisor.
package actors

import (
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
)

// Outcome is how a run ended.
type Outcome string

// Run outcomes.
const (
	OutcomeOK      Outcome = "ok"
	OutcomeFailed  Outcome = "failed"
	OutcomeSkipped Outcome = "skipped"
)

// RunRecord describes one run of a task.
type RunRecord struct {
	Task     string        // task name
	Slot     time.Time     // the scheduled time the run belongs to (the trigger time for manual runs)
	Manual   bool          // started by Trigger rather than by the schedule
	Start    time.Time     // when the run started
	Lateness time.Duration // Start minus Slot (0 for manual runs)
	Duration time.Duration // from Start to the end of the last page
	Outcome  Outcome       // ok, failed or skipped
	Pages    int           // HTTP pages fetched (successful or not)
	Items    int           // items in the replies' lists
	Status   int           // HTTP status of the last reply (0 when none)
	Err      string        // why the run failed or was skipped
}

// Observer receives a task actor's events, for metrics and for the once
// command. Methods are called from the actor's goroutine: they must be fast
// and must not block.
type Observer interface {
	// Fired is called when a run starts, with how late it started.
	Fired(taskName string, slot time.Time, lateness time.Duration)
	// Skipped is called when a fire is dropped (run in progress, gate closed, draining).
	Skipped(taskName string, slot time.Time, reason string)
	// Missed is called when slots passed without firing (process stalled or clock jumped).
	Missed(taskName string, slots int)
	// RunFinished is called when a run ends, with its record.
	RunFinished(rec RunRecord)
}

// Trigger asks a task actor to run now, outside its schedule. When the
// message has a sender (a request), the actor responds with TriggerReply.
type Trigger struct{}

// TriggerReply answers Trigger.
type TriggerReply struct {
	Task    string
	Started bool   // false when the run was skipped
	Reason  string // why it was skipped
}

// GateState tells a task actor whether its gate is open. Known is false
// until the first probe answered.
type GateState struct {
	Gate  task.Gate
	Known bool
	Open  bool
}

// Drain makes a task actor stop its timer, finish the run in progress and
// then report Idle to its parent. No new run starts afterwards.
type Drain struct{}

// Pause stops a task actor's timer: no scheduled fire happens until Resume.
// A run in progress finishes; Trigger still runs the task.
type Pause struct{}

// Resume re-arms a paused task actor's timer for the next slot from now.
type Resume struct{}

// APIRestarted tells a task actor that the API-client actor was restarted:
// a call in flight will never be answered, so the run fails.
type APIRestarted struct{}

// RunStarted reports to the parent that a run started.
type RunStarted struct {
	Task string
	Gen  uint64
	Slot time.Time
}

// RunFinished reports to the parent that a run ended.
type RunFinished struct {
	Gen    uint64
	Record RunRecord
	// Running is how many runs of the task are still in progress (a manual
	// trigger skipped during a run reports 1).
	Running int
}

// GateWaiting reports to the parent that a fire waits for, or was dropped by, the gate.
type GateWaiting struct {
	Task   string
	Gen    uint64
	Closed bool
}

// Idle reports to the parent, after Drain, that no run is in progress.
type Idle struct {
	Task string
	Gen  uint64
}

// Crashed reports to the parent that an actor panicked. The actor ignores
// every further message until it is stopped.
type Crashed struct {
	Name   string // task name, or the name of another supervised actor
	Gen    uint64 // incarnation that crashed
	Reason string // the panic value
	Stack  string // the goroutine's stack at the panic
}
