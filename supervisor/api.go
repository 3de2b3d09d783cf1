package supervisor

import (
	"errors"
	"fmt"

	"github.com/mojodex/mojodex-scheduler/task"
)

// Messages the supervisor answers: send them with engine.Request from a
// goroutine of yours (never from inside an actor's Receive that the
// supervisor might be waiting on). Each is answered once, by the reply type
// named in its comment. The same requests also come as protobuf messages
// of control/v1 (from another process, through the remote endpoint); both
// are served by one code path and differ only in their encoding.

// ListTasks asks for every task's status; the reply is a TaskList.
type ListTasks struct{}

// TaskList answers ListTasks, in the order of the task set. Err is set
// when the request could not be served (e.g. CodeUnavailable).
type TaskList struct {
	Tasks []task.Status
	Err   error
}

// GetTask asks for one task's status with its last runs; the reply is a
// TaskReply.
type GetTask struct{ Name string }

// TaskReply answers GetTask, PauseTask and ResumeTask. Err is set when the
// request was refused; Task is then the task's status if it exists.
type TaskReply struct {
	Task task.Status
	Err  error
}

// TriggerTask runs a task now, outside its schedule; the reply is a
// TriggerReply.
type TriggerTask struct{ Name string }

// TriggerReply answers TriggerTask: Started, or the reason the run was
// skipped (overlap, gate, shutdown), or Err when the task cannot be
// triggered at all (unknown, failed, restarting).
type TriggerReply struct {
	Task    string
	Started bool
	Reason  task.SkipReason
	// Detail says why the run was skipped, in words.
	Detail string
	Err    error
}

// PauseTask stops a task's timer until ResumeTask; a run in progress
// finishes and a trigger still runs the task. The pause is stored before
// the reply (a TaskReply), so it survives a restart.
type PauseTask struct{ Name string }

// ResumeTask re-arms a paused task, or revives a task marked failed; the
// reply is a TaskReply.
type ResumeTask struct{ Name string }

// Reload replaces the task set: new tasks are added, removed ones stopped,
// changed ones restarted (their runs in progress are ended as failed), and
// unchanged ones left running with their timers undisturbed. A task with
// an in-process Job is always restarted (two closures cannot be told
// apart). An invalid set changes nothing. The reply is a ReloadReply.
type Reload struct {
	Tasks []task.Spec
	// Content is the text of the task file Tasks were read from (nil for a
	// set built in code): replicas sharing a store publish it, and the
	// others follow.
	Content []byte
}

// ReloadReply answers Reload with the names in each group, or with Err
// (listing every problem) when the new set is invalid.
type ReloadReply struct {
	Added, Removed, Changed, Unchanged []string
	Err                                error
}

// Drain stops every timer and waits for the runs in progress; the reply,
// Drained, comes when no run is left. Used for a graceful shutdown.
type Drain struct{}

// Drained answers Drain.
type Drained struct{}

// Code classifies the errors of the supervisor's replies; the control
// plane maps it to its protobuf code.
type Code int

// Error codes.
const (
	// CodeUnknownTask: no task by that name.
	CodeUnknownTask Code = iota + 1
	// CodeInvalidArgument: the request or the new task set is invalid.
	CodeInvalidArgument
	// CodeFailedPrecondition: the task or the scheduler is not in a state
	// that allows the request (a failed task, no task file to reload from).
	CodeFailedPrecondition
	// CodeUnavailable: the scheduler cannot serve the request now (busy,
	// shutting down, the state store failing).
	CodeUnavailable
	// CodeInternal: a bug in the scheduler.
	CodeInternal
)

// Error is the error of a refused request.
type Error struct {
	Code    Code
	Message string
}

// Error implements error.
func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrUnknownTask) (and the other sentinels) match
// any *Error of the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrUnknownTask        = &Error{Code: CodeUnknownTask}
	ErrInvalidArgument    = &Error{Code: CodeInvalidArgument}
	ErrFailedPrecondition = &Error{Code: CodeFailedPrecondition}
	ErrUnavailable        = &Error{Code: CodeUnavailable}
	ErrInternal           = &Error{Code: CodeInternal}
)

// CodeOf returns the code of err (CodeInternal for an error that is not an
// *Error, 0 for nil).
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

func errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func unknownTask(name string) error {
	return errorf(CodeUnknownTask, "unknown task %q", name)
}
