package supervisor

import (
	"errors"
	"fmt"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/actors"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/task"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file answers the protobuf requests of the remote control plane
// (package controlv1). They may come from another process through
// hollywood's remote endpoint, so every reply is a protobuf message: a Go
// value responded to a remote sender would panic the process.

// reloadLoaded carries the result of a Reloader back into the supervisor.
type reloadLoaded struct {
	replyTo *actor.PID
	specs   []task.Spec
	err     error
}

// reasonRunning is the reason a trigger is refused while the task runs; it
// is the task actor's own wording.
const reasonRunning = "the previous run is still in progress"

// onControl handles the messages that Receive does not know: the protobuf
// requests of the control plane and the supervisor's own reloadLoaded.
// Anything else is logged and dropped.
func (s *supervisor) onControl(c *actor.Context) {
	if m, ok := c.Message().(proto.Message); ok {
		s.log.Debug().Str("request", string(proto.MessageName(m))).Str("sender", pidString(c.Sender())).Msg("control request")
	}
	switch m := c.Message().(type) {
	case *controlv1.ListTasksRequest:
		resp := &controlv1.ListTasksResponse{Tasks: make([]*controlv1.Task, 0, len(s.order))}
		for _, name := range s.order {
			resp.Tasks = append(resp.Tasks, taskProto(s.status(s.tasks[name], false)))
		}
		s.reply(c, c.Sender(), resp)
	case *controlv1.GetTaskRequest:
		resp := &controlv1.GetTaskResponse{}
		if e, ok := s.tasks[m.GetName()]; ok {
			resp.Task = taskProto(s.status(e, true))
		} else {
			resp.Error = unknownTask(m.GetName())
		}
		s.reply(c, c.Sender(), resp)
	case *controlv1.TriggerTaskRequest:
		s.reply(c, c.Sender(), s.onRemoteTrigger(c, m.GetName()))
	case *controlv1.PauseTaskRequest:
		s.reply(c, c.Sender(), controlProto(s.onPause(c, m.GetName())))
	case *controlv1.ResumeTaskRequest:
		s.reply(c, c.Sender(), controlProto(s.onResume(c, m.GetName())))
	case *controlv1.ReloadRequest:
		s.onRemoteReload(c)
	case reloadLoaded:
		s.onReloadLoaded(c, m)
	default:
		s.log.Debug().Str("type", fmt.Sprintf("%T", m)).Str("sender", pidString(c.Sender())).Msg("supervisor: message of an unknown type dropped")
	}
}

// reply sends resp to the requester. A request sent without a sender
// (engine.Send rather than engine.Request) gets no reply.
func (s *supervisor) reply(c *actor.Context, to *actor.PID, resp proto.Message) {
	if to == nil {
		s.log.Warn().Str("reply", string(proto.MessageName(resp))).Msg("control request without a sender; nobody to answer")
		return
	}
	c.Engine().Send(to, resp)
}

// onRemoteTrigger decides from the supervisor's own state whether the task
// can run, and hands it a Trigger without a sender: the task actor's reply
// is a Go value, which must never go to a remote caller.
//
// Started is true when the trigger was handed to an idle task. In the rare
// case where the task's own timer fires at the same instant, the task actor
// skips the manual run and records it as skipped in the task's runs.
func (s *supervisor) onRemoteTrigger(c *actor.Context, name string) *controlv1.TriggerTaskResponse {
	e, ok := s.tasks[name]
	switch {
	case !ok:
		return &controlv1.TriggerTaskResponse{Error: unknownTask(name)}
	case e.state == StateFailed || e.state == StateRestarting || e.pid == nil:
		return &controlv1.TriggerTaskResponse{Error: &controlv1.Error{
			Code:    controlv1.Code_FAILED_PRECONDITION,
			Message: fmt.Sprintf("task %q is %s", name, e.state),
		}}
	case s.draining:
		return &controlv1.TriggerTaskResponse{Reason: "the scheduler is shutting down"}
	case e.state == StateRunning:
		s.log.Info().Str("task", name).Str("reason", reasonRunning).Msg("remote trigger skipped")
		return &controlv1.TriggerTaskResponse{Reason: reasonRunning}
	case e.state == StateGated:
		// The task actor records the skipped manual run, so the task's
		// runs show it as for any other trigger.
		c.Send(e.pid, actors.Trigger{})
		g := e.spec.EnabledIf
		return &controlv1.TriggerTaskResponse{Reason: fmt.Sprintf("the %s service is not configured (enabled_if: %s)", g, g)}
	}
	c.Send(e.pid, actors.Trigger{})
	// Until the task actor reports RunStarted (or a skip), a second trigger
	// must already see the run: the actor's next report corrects the state.
	e.state = StateRunning
	s.log.Info().Str("task", name).Msg("remote trigger: run started")
	return &controlv1.TriggerTaskResponse{Started: true}
}

// onRemoteReload runs the reloader in a goroutine of its own, so that a slow
// file system never blocks the supervisor, and applies its result when
// reloadLoaded comes back.
func (s *supervisor) onRemoteReload(c *actor.Context) {
	if s.opts.reloader == nil {
		s.reply(c, c.Sender(), &controlv1.ReloadResponse{Error: &controlv1.Error{
			Code:    controlv1.Code_FAILED_PRECONDITION,
			Message: "this scheduler was started without a task source to reload from",
		}})
		return
	}
	reload, engine, self, replyTo := s.opts.reloader, c.Engine(), c.PID(), c.Sender()
	go func() {
		specs, err := callReloader(reload)
		engine.Send(self, reloadLoaded{replyTo: replyTo, specs: specs, err: err})
	}()
}

// callReloader calls f, turning a panic into an error.
func callReloader(f func() ([]task.Spec, error)) (specs []task.Spec, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("the task reloader panicked: %v", v)
		}
	}()
	return f()
}

func (s *supervisor) onReloadLoaded(c *actor.Context, m reloadLoaded) {
	if m.err != nil {
		s.log.Error().Err(m.err).Str("requester", pidString(m.replyTo)).Msg("remote reload refused; the running task set is unchanged")
		s.reply(c, m.replyTo, &controlv1.ReloadResponse{Error: &controlv1.Error{
			Code:    controlv1.Code_INVALID_ARGUMENT,
			Message: m.err.Error(),
		}})
		return
	}
	rep := s.onReload(c, m.specs)
	resp := &controlv1.ReloadResponse{Added: rep.Added, Removed: rep.Removed, Changed: rep.Changed, Unchanged: rep.Unchanged}
	if rep.Err != nil {
		s.log.Error().Err(rep.Err).Str("requester", pidString(m.replyTo)).Msg("remote reload refused; the running task set is unchanged")
		resp.Error = &controlv1.Error{Code: controlv1.Code_INVALID_ARGUMENT, Message: rep.Err.Error()}
	}
	s.reply(c, m.replyTo, resp)
}

// controlProto converts the reply of PauseTask or ResumeTask.
func controlProto(r ControlReply) *controlv1.TaskControlResponse {
	resp := &controlv1.TaskControlResponse{}
	if r.Task.Name != "" {
		resp.Task = taskProto(r.Task)
	}
	if r.Err != nil {
		code := controlv1.Code_FAILED_PRECONDITION
		if errors.Is(r.Err, ErrUnknownTask) {
			code = controlv1.Code_UNKNOWN_TASK
		}
		resp.Error = &controlv1.Error{Code: code, Message: r.Err.Error()}
	}
	return resp
}

func unknownTask(name string) *controlv1.Error {
	return &controlv1.Error{Code: controlv1.Code_UNKNOWN_TASK, Message: fmt.Errorf("%w: %q", ErrUnknownTask, name).Error()}
}

// taskProto converts a task's status; runs are included when st has a history.
func taskProto(st TaskStatus) *controlv1.Task {
	t := &controlv1.Task{
		Name:     st.Name,
		Schedule: st.Schedule,
		State:    string(st.State),
		Restarts: int32(st.Restarts),
		Gate:     string(st.Gate),
		NextFire: timestamp(st.Next),
	}
	if st.LastRun != nil {
		t.LastRun = runProto(*st.LastRun)
	}
	for _, r := range st.History {
		t.Runs = append(t.Runs, runProto(r))
	}
	return t
}

func runProto(r actors.RunRecord) *controlv1.Run {
	return &controlv1.Run{
		Slot:       timestamp(r.Slot),
		Start:      timestamp(r.Start),
		Duration:   durationpb.New(r.Duration),
		Outcome:    string(r.Outcome),
		Pages:      int32(r.Pages),
		Items:      int32(r.Items),
		HttpStatus: int32(r.Status),
		Error:      r.Err,
		Manual:     r.Manual,
		Lateness:   durationpb.New(r.Lateness),
	}
}

// timestamp converts t, leaving the zero time unset.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func pidString(p *actor.PID) string {
	if p == nil {
		return ""
	}
	return p.String()
}
