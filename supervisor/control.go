package supervisor

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/internal/msg"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
)

// This file serves the control requests: the Go messages of api.go and the
// protobuf messages of control/v1 go through the same operations; only the
// encoding of the reply differs (converted in protoedge.go). Receive only
// routes: anything that waits (asking task actors, reading the store's
// history) runs on a control goroutine, at most opts.maxControl at once,
// which answers the requester itself. A panic there answers with
// CodeInternal.

// op is a control operation.
type op int

const (
	opList op = iota
	opGet
	opTrigger
	opPause
	opResume
	opReload
	opReplicas
)

// request is a control request decoded from its Go or protobuf form.
type request struct {
	op    op
	name  string
	proto bool
	from  *actor.PID
	// internal is set for a request the supervisor makes of itself (a
	// reload following another replica): nobody is answered.
	internal bool
}

// decode recognises a control request.
func decode(m any, from *actor.PID) (request, bool) {
	r := request{from: from}
	switch m := m.(type) {
	case ListTasks:
		r.op = opList
	case GetTask:
		r.op, r.name = opGet, m.Name
	case TriggerTask:
		r.op, r.name = opTrigger, m.Name
	case PauseTask:
		r.op, r.name = opPause, m.Name
	case ResumeTask:
		r.op, r.name = opResume, m.Name
	case *controlv1.ListTasksRequest:
		r.op, r.proto = opList, true
	case *controlv1.GetTaskRequest:
		r.op, r.name, r.proto = opGet, m.GetName(), true
	case *controlv1.TriggerTaskRequest:
		r.op, r.name, r.proto = opTrigger, m.GetName(), true
	case *controlv1.PauseTaskRequest:
		r.op, r.name, r.proto = opPause, m.GetName(), true
	case *controlv1.ResumeTaskRequest:
		r.op, r.name, r.proto = opResume, m.GetName(), true
	case *controlv1.ReloadRequest:
		r.op, r.proto = opReload, true
	case ListReplicas:
		r.op = opReplicas
	case *controlv1.ListReplicasRequest:
		r.op, r.proto = opReplicas, true
	default:
		return r, false
	}
	return r, true
}

// failure returns the reply of r's kind carrying err.
func (r request) failure(err error) any {
	switch r.op {
	case opList:
		return TaskList{Err: err}
	case opTrigger:
		return TriggerReply{Task: r.name, Err: err}
	case opReload:
		return ReloadReply{Err: err}
	case opReplicas:
		return ReplicaList{Err: err}
	default:
		return TaskReply{Err: err}
	}
}

// view is what a control goroutine needs of a task, copied in Receive.
type view struct {
	name     string
	spec     *task.Spec
	schedule string
	gate     task.Gate
	pid      *actor.PID
	life     life
	restarts int
}

func (s *supervisor) view(e *entry) view {
	v := view{name: e.spec.Name, spec: e.spec, gate: e.spec.EnabledIf, pid: e.pid, life: e.life, restarts: e.restarts}
	if e.sched != nil {
		v.schedule = e.sched.String()
	}
	return v
}

// serve routes a control request (or drops an unknown message).
func (s *supervisor) serve(c *actor.Context) {
	req, ok := decode(c.Message(), c.Sender())
	if !ok {
		if m, isProto := c.Message().(proto.Message); isProto {
			s.log.Debug().Str("type", string(proto.MessageName(m))).Msg("supervisor: a protobuf message it does not serve was dropped")
		}
		return
	}
	if req.op == opList {
		views := make([]view, 0, len(s.order))
		for _, name := range s.order {
			views = append(views, s.view(s.tasks[name]))
		}
		s.async(req, func() any { return TaskList{Tasks: s.gather(views)} })
		return
	}
	if req.op == opReload {
		s.remoteReload(req)
		return
	}
	if req.op == opReplicas {
		s.async(req, func() any { return s.listReplicas() })
		return
	}
	e, ok := s.tasks[req.name]
	if !ok {
		s.answer(req, req.failure(unknownTask(req.name)))
		return
	}
	v := s.view(e)
	switch req.op {
	case opGet:
		s.async(req, func() any { return TaskReply{Task: s.status(v, true)} })
	case opTrigger:
		if v.life != alive {
			s.answer(req, req.failure(errorf(CodeFailedPrecondition, "task %q is %s", v.name, lifeState(v.life))))
			return
		}
		s.async(req, func() any { return s.trigger(v) })
	case opPause:
		if v.life == failed {
			s.answer(req, TaskReply{Task: s.lifeStatus(v), Err: errorf(CodeFailedPrecondition, "task %q is failed; resume revives it", v.name)})
			return
		}
		s.async(req, func() any { return s.setPaused(v, true) })
	case opResume:
		if e.life == failed && !s.draining {
			// Revive: the supervisor owns a task without an actor.
			e.fails.at = e.fails.at[:0]
			e.life = restarting
			e.waiting = append(e.waiting, waiter{to: req.from, proto: req.proto})
			s.log.Info().Str("task", req.name).Msg("failed task revived")
			s.reload(e, true)
			return
		}
		s.async(req, func() any { return s.setPaused(v, false) })
	}
}

// answer sends the reply of req, encoded as the request was.
func (s *supervisor) answer(req request, reply any) {
	if req.internal {
		if r, ok := reply.(ReloadReply); ok && r.Err != nil {
			s.log.Error().Err(r.Err).Msg("following the current task set failed")
		}
		return
	}
	if req.from == nil {
		s.noReply.warn(s.log, "a control request came without a sender; nobody to answer")
		return
	}
	if req.proto {
		s.engine.Send(req.from, protoReply(req.op, reply))
		return
	}
	s.engine.Send(req.from, reply)
}

// async runs f on a control goroutine and answers req with its result.
func (s *supervisor) async(req request, f func() any) {
	if req.from == nil {
		s.noReply.warn(s.log, "a control request came without a sender; nobody to answer")
		return
	}
	select {
	case s.ctlSem <- struct{}{}:
	default:
		s.answer(req, req.failure(errorf(CodeUnavailable, "%d control requests are in progress; try again", cap(s.ctlSem))))
		return
	}
	s.ctlWG.Add(1)
	go func() {
		defer s.ctlWG.Done()
		defer func() { <-s.ctlSem }()
		s.answer(req, s.safely(req, f))
	}()
}

// safely calls f, turning a panic into an error reply.
func (s *supervisor) safely(req request, f func() any) (reply any) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Str("panic", fmt.Sprint(v)).Msg("supervisor: a control request made it panic")
			reply = req.failure(errorf(CodeInternal, "internal error while serving the request: %v", v))
		}
	}()
	return f()
}

// answerPanic answers the request whose handling in Receive panicked.
func (s *supervisor) answerPanic(c *actor.Context, v any) {
	err := errorf(CodeInternal, "internal error while serving the request: %v", v)
	if req, ok := decode(c.Message(), c.Sender()); ok {
		s.answer(req, req.failure(err))
		return
	}
	switch c.Message().(type) {
	case Reload:
		if c.Sender() != nil {
			s.engine.Send(c.Sender(), ReloadReply{Err: err})
		}
	}
}

// lifeState is the state of a task whose actor is not running.
func lifeState(l life) task.State {
	if l == failed {
		return task.StateFailed
	}
	return task.StateRestarting
}

// lifeStatus describes a task from the supervisor's record only.
func (s *supervisor) lifeStatus(v view) task.Status {
	st := task.Status{Name: v.name, Schedule: v.schedule, Gate: v.gate, Restarts: v.restarts, State: task.StateScheduled}
	if v.life != alive {
		st.State = lifeState(v.life)
	}
	return st
}

// UpcomingFires is how many next fires GetTask returns.
const UpcomingFires = 5

// gather asks every live task actor for its status, all at once, and
// waits up to the ask timeout for the answers.
func (s *supervisor) gather(views []view) []task.Status {
	return s.gatherDetail(views, 0)
}

// gatherDetail is gather, asking for upcoming fires too.
func (s *supervisor) gatherDetail(views []view, upcoming int) []task.Status {
	out := make([]task.Status, len(views))
	index := make(map[string]int, len(views))
	ch := make(chan task.Status, len(views))
	asked := 0
	for i, v := range views {
		out[i] = s.lifeStatus(v)
		if v.life == alive {
			index[v.name] = i
			s.engine.Send(v.pid, msg.Status{Reply: ch, Upcoming: upcoming})
			asked++
		} else {
			out[i].Last = s.lastRun(v.name)
		}
	}
	timeout := time.NewTimer(s.opts.askTimeout)
	defer timeout.Stop()
	for ; asked > 0; asked-- {
		select {
		case st := <-ch:
			i := index[st.Name]
			st.Schedule, st.Restarts = out[i].Schedule, out[i].Restarts
			out[i] = st
		case <-timeout.C:
			s.log.Warn().Int("unanswered", asked).Msg("supervisor: task actors did not answer a status request in time")
			asked = 0
		}
	}
	s.mergeShared(out)
	return out
}

// status returns one task's status, with its spec, its upcoming fires and
// its history if asked.
func (s *supervisor) status(v view, history bool) task.Status {
	if !history {
		return s.gather([]view{v})[0]
	}
	st := s.gatherDetail([]view{v}, UpcomingFires)[0]
	st.Spec = v.spec
	{
		runs, err := s.opts.store.History(v.name, HistorySize)
		if err != nil {
			s.log.Error().Err(err).Str("task", v.name).Msg("state store: cannot read the run history")
		}
		st.History = runs
	}
	return st
}

// lastRun reads a task's latest run from the store (for a task without an
// actor).
func (s *supervisor) lastRun(name string) *task.Run {
	runs, err := s.opts.store.History(name, 1)
	if err != nil || len(runs) == 0 {
		return nil
	}
	return &runs[0]
}

// trigger asks the task actor to run now: it alone decides.
func (s *supervisor) trigger(v view) TriggerReply {
	ch := make(chan msg.TriggerResult, 1)
	s.engine.Send(v.pid, msg.Trigger{Reply: ch})
	select {
	case r := <-ch:
		if r.Err != nil {
			return TriggerReply{Task: v.name, Err: errorf(CodeFailedPrecondition, "task %q: %v", v.name, r.Err)}
		}
		reply := TriggerReply{Task: v.name, Started: r.Started, Reason: r.Reason}
		if !r.Started {
			reply.Detail = r.Reason.Describe(v.gate)
		}
		return reply
	case <-time.After(s.opts.askTimeout):
		return TriggerReply{Task: v.name, Err: errorf(CodeUnavailable, "task %q did not answer the trigger within %s", v.name, s.opts.askTimeout)}
	}
}

// setPaused pauses or resumes a task: its actor stores the flag and
// answers; a task whose actor is restarting gets the flag in the store,
// which its next incarnation reads.
func (s *supervisor) setPaused(v view, paused bool) TaskReply {
	var err error
	if v.life == alive {
		ch := make(chan error, 1)
		if paused {
			s.engine.Send(v.pid, msg.Pause{Reply: ch})
		} else {
			s.engine.Send(v.pid, msg.Resume{Reply: ch})
		}
		select {
		case err = <-ch:
		case <-time.After(s.opts.askTimeout):
			err = fmt.Errorf("task %q did not answer within %s", v.name, s.opts.askTimeout)
		}
	} else {
		err = s.committer.Commit(&store.Batch{Pauses: []store.Pause{{Task: v.name, Paused: paused}}})
	}
	if err != nil {
		return TaskReply{Task: s.lifeStatus(v), Err: errorf(CodeUnavailable, "task %q: the paused flag was not stored: %v", v.name, err)}
	}
	return TaskReply{Task: s.status(v, false)}
}

// answerResumed answers a resume that waited for a failed task's respawn.
func (s *supervisor) answerResumed(w waiter, e *entry) {
	req := request{op: opResume, name: e.spec.Name, proto: w.proto, from: w.to}
	v := s.view(e)
	s.async(req, func() any { return TaskReply{Task: s.status(v, false)} })
}

// rateLimited logs a repeated warning at most once per interval, with the
// number of occurrences in between.
type rateLimited struct {
	last       atomic.Int64 // unix nanoseconds of the last line
	suppressed atomic.Int64
}

// rateLimitInterval is the shortest time between two lines of one warning.
const rateLimitInterval = 10 * time.Second

func (r *rateLimited) warn(log zerolog.Logger, text string) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(rateLimitInterval) || !r.last.CompareAndSwap(last, now) {
		r.suppressed.Add(1)
		return
	}
	log.Warn().Int64("suppressed", r.suppressed.Swap(0)).Msg(text)
}
