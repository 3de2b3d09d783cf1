// Package msg is the scheduler's internal actor protocol: the messages the
// supervisor and its control plane send to task actors, and what task
// actors report back. It is internal so that the public API of the
// supervisor package stays what an embedding program needs.
//
// Requests carry a buffered reply channel rather than relying on
// engine.Request: the asker (a control goroutine of the supervisor, never an
// actor's Receive) waits on it with a timeout, and gathering the status of
// many tasks costs one message each and no temporary actor.
package msg

import (
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
)

// Trigger asks a task actor to run now, outside its schedule.
type Trigger struct {
	// Reply receives the answer; it must have room for one value.
	Reply chan<- TriggerResult
}

// TriggerResult answers Trigger.
type TriggerResult struct {
	// Started is false when the run was skipped.
	Started bool
	// Reason says why it was skipped.
	Reason task.SkipReason
	// Err is set when the actor cannot run anything (it crashed).
	Err error
}

// Pause stops a task actor's timer until Resume; a run in progress
// finishes and a trigger still runs the task. The flag is stored before
// the reply.
type Pause struct {
	// Reply receives nil once the pause is stored, or the store's error.
	Reply chan<- error
}

// Resume re-arms a paused task actor for its next slot from now, once the
// flag is stored.
type Resume struct {
	// Reply receives nil once the flag is stored, or the store's error.
	Reply chan<- error
}

// Drain makes a task actor stop its timer and report Idle to its parent
// once no run is in progress. No new run starts afterwards.
type Drain struct{}

// Retire tells a task actor that it is about to be stopped for good (its
// task was removed or changed by a reload): its runs in progress are ended
// and recorded as failed with Reason, rather than left to be resumed.
type Retire struct {
	Reason string
}

// Gate tells a task actor whether its gate is open. Known is false until
// the first probe answered.
type Gate struct {
	Gate  task.Gate
	Known bool
	Open  bool
}

// Status asks a task actor for its status.
type Status struct {
	// Reply receives the answer; it must have room for one value.
	Reply chan<- task.Status
	// Upcoming asks for this many next fires too (0: none).
	Upcoming int
}

// SyncPaused tells a task actor the paused flag the shared store holds (set
// from another replica): it pauses or resumes without storing it again.
type SyncPaused struct {
	Paused bool
}

// TakeOver hands a task actor a run this replica took over from another
// whose lease lapsed: the actor resumes it at Epoch from Progress.
type TakeOver struct {
	Slot     time.Time
	Epoch    int64
	Progress task.Progress
}

// Idle reports to the parent, after Drain, that no run is in progress.
type Idle struct {
	Task string
	Gen  uint64
}

// Crashed reports to the parent that an actor panicked. The actor ignores
// every further message until it is stopped.
type Crashed struct {
	// Name is the task's name, or the name of another supervised actor.
	Name string
	// Gen is the incarnation that crashed.
	Gen uint64
	// Reason is the panic value.
	Reason string
	// Stack is the goroutine's stack at the panic.
	Stack string
}
