// Package store persists what the scheduler must remember across crashes and
// restarts, per task: the last slot fired, the anchor of fixed-rate schedules,
// the recent run history, the paused flag and the pagination checkpoint of a
// run in progress.
//
// The central operation is Claim: "task T fires slot S" succeeds once per
// slot, ever, so a restarted process neither loses nor repeats work. Two
// implementations are provided: Memory (tests, or persistence switched off)
// and Bolt (one bbolt file). A store shared by several replicas can implement
// the same Store interface later.
package store

import (
	"errors"
	"fmt"
	"time"
)

// HistorySize is how many runs are kept per task.
const HistorySize = 20

// Errors reported by the stores; they are wrapped with context, so test them
// with errors.Is.
var (
	// ErrClosed is returned by every operation on a closed store.
	ErrClosed = errors.New("state store is closed")
	// ErrInUse is returned by OpenBolt when another process (or another
	// OpenBolt in this process) holds the state file.
	ErrInUse = errors.New("in use by another process")
	// ErrCorrupt is returned by OpenBolt when the state file is damaged,
	// truncated, not a bbolt database or not a scheduler state file. The
	// file is left untouched.
	ErrCorrupt = errors.New("corrupt")
	// ErrNewerSchema is returned by OpenBolt when the state file was written
	// by a newer version of the scheduler, with a schema this code does not
	// understand.
	ErrNewerSchema = errors.New("schema version newer than supported")
)

// Run is a finished run as persisted (the same fields the control plane shows).
type Run struct {
	// Slot is the scheduled instant of the run (may be zero for manual runs).
	Slot time.Time
	// Start is when the run actually started.
	Start time.Time
	// Manual is true for a run triggered by hand.
	Manual bool
	// Lateness is how late the run started relative to its slot.
	Lateness time.Duration
	// Duration is how long the run took.
	Duration time.Duration
	// Outcome is ok, failed or skipped.
	Outcome string
	// Pages is the number of pages fetched.
	Pages int
	// Items is the number of items seen.
	Items int
	// Status is the last HTTP status.
	Status int
	// Err is the error of a failed run.
	Err string
}

// Checkpoint is the progress of a paginated run in progress.
type Checkpoint struct {
	Slot   time.Time // the slot of the run
	Mode   string    // "offset" or "drain"
	Pages  int       // pages completed
	Offset int       // next offset to request (offset mode)
	Items  int       // items seen so far
}

// TaskState is everything stored about one task.
type TaskState struct {
	Anchor     time.Time   // zero if never set
	LastSlot   time.Time   // the last claimed slot; zero if none
	Paused     bool        // the task is paused
	Runs       []Run       // oldest first, at most HistorySize
	Checkpoint *Checkpoint // nil when no run is in progress
}

// Store persists task state. Implementations are safe for concurrent use.
//
// Every time returned by a Store is in UTC without a monotonic clock reading;
// times are stored with nanosecond precision and compare Equal to the ones
// given. Task names must not be empty.
type Store interface {
	// Claim records that task fires slot. It returns true exactly once for a
	// slot, ever, and false for a slot at or before the last claimed one (so
	// a restarted process never fires a claimed slot again). Slots are
	// compared as instants (UTC, nanoseconds). A zero slot is an error.
	Claim(task string, slot time.Time) (bool, error)
	// Load returns the task's state (the zero TaskState for an unknown task).
	Load(task string) (TaskState, error)
	// SetAnchor stores the anchor of a fixed-rate schedule if none is stored
	// yet, and returns the stored one (the existing one wins). A zero anchor
	// is an error.
	SetAnchor(task string, anchor time.Time) (time.Time, error)
	// RecordRun appends a finished run (keeping the last HistorySize) and
	// clears the checkpoint of that run's slot, in one transaction.
	RecordRun(task string, r Run) error
	// SaveCheckpoint stores the progress of the run in progress (replacing
	// any). A zero checkpoint slot is an error.
	SaveCheckpoint(task string, c Checkpoint) error
	// SetPaused stores the paused flag.
	SetPaused(task string, paused bool) error
	// Forget deletes everything about a task (it was removed from the task
	// set on purpose). Its slots may then be claimed again. Forgetting an
	// unknown task is not an error.
	Forget(task string) error
	// Tasks lists the tasks with stored state, sorted.
	Tasks() ([]string, error)
	// Close releases the store. Later operations fail with ErrClosed.
	Close() error
}

// checkTask rejects an empty task name.
func checkTask(task string) error {
	if task == "" {
		return errors.New("empty task name")
	}
	return nil
}

// checkTime rejects a zero time, what names it (slot, anchor).
func checkTime(what string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("zero %s", what)
	}
	return nil
}

// utc returns t in UTC without its monotonic clock reading (the zero time
// stays zero).
func utc(t time.Time) time.Time {
	return t.UTC()
}

// normalizeRun returns r with its times in UTC.
func normalizeRun(r Run) Run {
	r.Slot, r.Start = utc(r.Slot), utc(r.Start)
	return r
}

// appendRun appends r to runs, keeping the last HistorySize, in a new slice.
func appendRun(runs []Run, r Run) []Run {
	out := make([]Run, 0, min(len(runs)+1, HistorySize))
	if drop := len(runs) + 1 - HistorySize; drop > 0 {
		runs = runs[drop:]
	}
	out = append(out, runs...)
	return append(out, r)
}
