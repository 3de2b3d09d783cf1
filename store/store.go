// Package store persists what the scheduler must remember across crashes
// and restarts, per task: the anchor of a fixed-rate schedule, the last
// claimed slot, the paused flag, the runs in progress (with how far each has
// got) and the last HistorySize runs.
//
// The central operation is the claim: "task T fires slot S" is won once per
// slot, ever, so a restarted process neither loses nor repeats a slot. A
// claimed slot is a run in progress until its run is recorded: a process
// killed in between finds it at its next start and resumes it.
//
// Writes come as batches. Store.Commit applies a whole Batch atomically,
// in one transaction; the Committer groups the batches of concurrent callers
// (the timer service claiming the slots due at one instant, task actors
// saving pauses, workers recording runs and checkpoints) into one Commit
// while the previous one is being written, so one fsync (or one round trip
// to a database) serves many fires. Memory keeps state in the process; Bolt
// keeps it in one bbolt file.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mojodex/mojodex-scheduler/task"
)

// HistorySize is how many finished runs are kept per task.
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

// Store persists task state. Implementations are safe for concurrent use.
//
// Every time returned by a Store is in UTC without a monotonic clock
// reading, with the nanosecond precision it was given, so it compares Equal
// to the time stored.
//
// How an implementation batches: Commit receives one Batch holding many
// tasks' writes and applies all of it in one transaction (for bbolt one
// db.Update, so one fsync; for a networked store one round trip, turning
// each list into one statement over arrays). It fills in every result
// field (Claim.Won, Anchor.Stored) before it returns. If it returns an
// error, nothing of the batch was applied. Callers do not call Commit once
// per fire: they go through a Committer, which merges concurrent batches.
type Store interface {
	// Load returns the stored state of the named tasks, in one read
	// transaction. A task with nothing stored is absent from the map.
	Load(tasks []string) (map[string]TaskState, error)
	// History returns the task's last n finished runs (at most
	// HistorySize), oldest first.
	History(task string, n int) ([]task.Run, error)
	// Commit applies b atomically and fills in its results; see Batch for
	// the order of application and the rules of each part.
	Commit(b *Batch) error
	// Forget deletes everything about a task (it was removed from the task
	// set on purpose). Its slots may then be claimed again. Forgetting an
	// unknown task is not an error.
	Forget(task string) error
	// Tasks lists the tasks with stored state, sorted.
	Tasks() ([]string, error)
	// Close releases the store. Later operations fail with ErrClosed.
	// Closing twice is not an error.
	Close() error
}

// TaskState is what is stored about one task.
type TaskState struct {
	// Anchor is the anchor of a fixed-rate schedule; zero if never set.
	Anchor time.Time
	// LastSlot is the last claimed slot; zero if none.
	LastSlot time.Time
	// Paused is the paused flag.
	Paused bool
	// Last is the latest finished run; nil before the first.
	Last *task.Run
	// InProgress lists the claimed slots whose run has not been recorded
	// yet (the process died during the run, or the run is still going),
	// oldest first.
	InProgress []InProgress
}

// InProgress is a claimed slot whose run has not been recorded yet.
type InProgress struct {
	// Slot is the claimed slot.
	Slot time.Time
	// Progress is the run's last checkpoint (zero before its first page).
	Progress task.Progress
	// Owner, Epoch and LeaseUntil say who holds the run and until when
	// (Shared stores; empty, 0 and zero otherwise).
	Owner      string
	Epoch      int64
	LeaseUntil time.Time
}

// Batch is a set of writes applied atomically by Store.Commit, in this
// order: anchors, claims, checkpoints, runs, pauses. Result fields are
// filled in by Commit.
type Batch struct {
	// Anchors are stored where none is yet (the existing anchor wins).
	Anchors []Anchor
	// Claims claim slots: a claim is won when its slot is after the task's
	// last claimed slot (and after the other claims of the task earlier in
	// the batch); a won claim moves the last claimed slot to it and records
	// the slot as in progress.
	Claims []Claim
	// Checkpoints update the progress of runs in progress. A checkpoint of
	// a slot that is not in progress (its run was recorded already) is
	// ignored, never resurrected.
	Checkpoints []Checkpoint
	// Runs append finished runs to their task's history (keeping the last
	// HistorySize). A run that is not Manual also ends its slot's time in
	// progress. On a Shared store, a run with an owner (Run.Replica) and an
	// epoch (Run.Epoch > 0) is recorded only if that owner still holds the
	// slot at that epoch; otherwise it is fenced: not recorded, and
	// RunsFenced[i] is set.
	Runs []task.Run
	// Pauses store paused flags.
	Pauses []Pause

	// RunsFenced is a result: RunsFenced[i] is true when Runs[i] was fenced
	// (nil when none was).
	RunsFenced []bool
	// Now is a result of Shared stores: the store's clock when the batch
	// was applied (zero otherwise).
	Now time.Time
}

// taskNames yields the task name of every write in b (with repeats).
func (b *Batch) taskNames(yield func(string) bool) {
	for _, a := range b.Anchors {
		if !yield(a.Task) {
			return
		}
	}
	for _, c := range b.Claims {
		if !yield(c.Task) {
			return
		}
	}
	for _, c := range b.Checkpoints {
		if !yield(c.Task) {
			return
		}
	}
	for _, r := range b.Runs {
		if !yield(r.Task) {
			return
		}
	}
	for _, p := range b.Pauses {
		if !yield(p.Task) {
			return
		}
	}
}

// oneTask returns the task of b's writes when they all concern one task.
func (b *Batch) oneTask() (string, bool) {
	name, first := "", true
	for n := range b.taskNames {
		if first {
			name, first = n, false
		} else if n != name {
			return "", false
		}
	}
	return name, !first
}

// Len returns the number of writes in b.
func (b *Batch) Len() int {
	return len(b.Anchors) + len(b.Claims) + len(b.Checkpoints) + len(b.Runs) + len(b.Pauses)
}

// Anchor asks to store the anchor of a fixed-rate schedule.
type Anchor struct {
	// Task and Anchor are the request (Anchor must not be zero).
	Task   string
	Anchor time.Time
	// Stored is the result: the anchor stored now (the existing one, or
	// Anchor if there was none).
	Stored time.Time
}

// Claim asks to claim a slot.
type Claim struct {
	// Task and Slot are the request (Slot must not be zero).
	Task string
	Slot time.Time
	// Due is when the slot fires (the slot plus the task's jitter; zero:
	// the slot). A Shared store refuses a claim whose due time is ahead of
	// its own clock (Refused = RefusedEarly), so that a replica whose clock
	// runs ahead cannot fire early.
	Due time.Time
	// Owner names the replica claiming (empty for a single process). A won
	// claim makes it the owner of the run, at epoch 1.
	Owner string
	// Lease is how long the run is the owner's without a renewal (Shared
	// stores; zero: no lease).
	Lease time.Duration
	// Version is the task set version the claimer runs (0: unversioned). A
	// Shared store refuses a claim from a version other than its current
	// one (Refused = RefusedStale).
	Version int64
	// Won is the result: true when the claim was won; otherwise Refused
	// says why.
	Won     bool
	Refused Refusal
}

// DueTime returns when the claim's slot fires: Due, or the slot when Due
// is zero.
func (c *Claim) DueTime() time.Time {
	if c.Due.IsZero() {
		return c.Slot
	}
	return c.Due
}

// Refusal says why a claim was not won.
type Refusal string

// Refusals.
const (
	// RefusedClaimed: the slot is at or before the task's last claimed slot.
	RefusedClaimed Refusal = "claimed"
	// RefusedEarly: the slot is not due yet by the store's clock (Batch.Now).
	RefusedEarly Refusal = "early"
	// RefusedStale: the claimer runs another task set version than the
	// store's current one.
	RefusedStale Refusal = "stale"
)

// Checkpoint records how far the run of a claimed slot has got.
type Checkpoint struct {
	Task     string
	Slot     time.Time
	Progress task.Progress
	// Owner and Epoch identify the run's holder (empty and 0 for a single
	// process). A Shared store applies a checkpoint with an epoch (Epoch >
	// 0) only if the run is still held by them; otherwise Fenced is set
	// (the run was taken over). As for runs, Epoch 0 is not fenced.
	Owner string
	Epoch int64
	// Fenced is the result: the write was refused.
	Fenced bool
}

// Shared is implemented by a store that several replicas of the scheduler
// share (PostgreSQL). Claims are the arbiter: every replica runs every task
// and a slot fires where its claim was won. A won claim makes the claimer
// the run's owner, with an epoch and a lease; the owner renews the lease
// while the run goes on, and when it lapses (the owner died, stalled or was
// cut off) another replica takes the run over with the next epoch and
// resumes it from its checkpoint. The writes of a run carry its owner and
// epoch and are refused (fenced) once it was taken over.
type Shared interface {
	Store
	// Heartbeat records that the replica is alive, and returns the store's
	// clock.
	Heartbeat(r Replica) (time.Time, error)
	// Replicas lists the replicas seen within the last maxAge, by name.
	Replicas(maxAge time.Duration) ([]Replica, error)
	// Renew extends to lease the leases of the runs owner holds, and
	// reports per run whether it still holds it (false: taken over or
	// recorded).
	Renew(owner string, lease time.Duration, held []Held) ([]bool, error)
	// TakeOver gives owner, with the next epoch and a fresh lease, at most
	// limit runs of the named tasks whose lease has lapsed, and returns them
	// with their checkpoints.
	TakeOver(owner string, lease time.Duration, tasks []string, limit int) ([]Held, error)
	// PublishTaskSet stores content as a new version, made current, when no
	// version has its hash yet (a new task file), and returns the version
	// that has this hash and the current version: a replica restarted with
	// an older file gets back that older version, and does not make it
	// current again. With force (an explicit reload), the version of this
	// hash becomes current whatever it is, so going back to an older file
	// works.
	PublishTaskSet(content []byte, hash string, force bool) (version, current int64, err error)
	// TaskSet returns the current task set version and its content (0 and
	// nil when none was published).
	TaskSet() (int64, []byte, error)
	// Changes returns a channel that receives a value whenever paused flags
	// or the task set may have changed (a notification, a reconnection
	// after which notifications may have been lost, and at least every
	// poll interval). It is closed when ctx ends.
	Changes(ctx context.Context) <-chan struct{}
}

// Replica describes a replica of the scheduler.
type Replica struct {
	// Name is the replica's name (MOJODEX_SCHEDULER_REPLICA).
	Name string
	// Started is when it started; Seen when its last heartbeat was stored.
	Started, Seen time.Time
	// Version is the task set version it runs.
	Version int64
}

// Held is a run in progress as its owner holds it.
type Held struct {
	Task     string
	Slot     time.Time
	Epoch    int64
	Progress task.Progress // set by TakeOver
}

// Pause stores a task's paused flag.
type Pause struct {
	Task   string
	Paused bool
}

// Validate checks what a Store checks before writing: task names set,
// valid UTF-8 and free of NUL bytes (stores use NUL as a separator in keys,
// and PostgreSQL text holds neither), slots and anchors not zero, and every time within
// the range a store keeps to the nanosecond (after the Unix epoch, before
// the year 2262). Every problem is reported.
func (b *Batch) Validate() error {
	var errs []error
	checkTime := func(what, name string, t time.Time, need bool) {
		if t.IsZero() {
			if need {
				errs = append(errs, fmt.Errorf("%s of task %q: zero time", what, name))
			}
		} else if err := checkInstant(t); err != nil {
			errs = append(errs, fmt.Errorf("%s of task %q: time %w", what, name, err))
		}
	}
	check := func(what, name string, t time.Time, needTime bool) {
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("%s: empty task name", what))
		case strings.IndexByte(name, 0) >= 0:
			errs = append(errs, fmt.Errorf("%s of task %q: NUL byte in the task name", what, name))
		case !utf8.ValidString(name):
			errs = append(errs, fmt.Errorf("%s of task %q: the task name is not valid UTF-8", what, name))
		}
		checkTime(what, name, t, needTime)
	}
	for _, a := range b.Anchors {
		check("anchor", a.Task, a.Anchor, true)
	}
	for _, c := range b.Claims {
		check("claim", c.Task, c.Slot, true)
	}
	for _, c := range b.Checkpoints {
		check("checkpoint", c.Task, c.Slot, true)
	}
	for _, r := range b.Runs {
		check("run", r.Task, r.Slot, true)
		checkTime("run start", r.Task, r.Start, false)
	}
	for _, p := range b.Pauses {
		check("pause", p.Task, time.Time{}, false)
	}
	return errors.Join(errs...)
}
