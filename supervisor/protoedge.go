package supervisor

import (
	"encoding/json"
	"time"

	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/task"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file is the protobuf edge of the control plane: replies of the
// supervisor's operations converted to control/v1 messages, which is what
// a remote caller can receive (a Go value sent to a remote sender would
// panic the sending engine).

// protoReply converts the Go reply of op.
func protoReply(op op, reply any) proto.Message {
	switch r := reply.(type) {
	case TaskList:
		out := &controlv1.ListTasksResponse{Error: ErrorProto(r.Err)}
		for _, st := range r.Tasks {
			out.Tasks = append(out.Tasks, TaskProto(st))
		}
		return out
	case TaskReply:
		var t *controlv1.Task
		if r.Task.Name != "" {
			t = TaskProto(r.Task)
		}
		if op == opGet {
			return &controlv1.GetTaskResponse{Task: t, Error: ErrorProto(r.Err)}
		}
		return &controlv1.TaskControlResponse{Task: t, Error: ErrorProto(r.Err)}
	case TriggerReply:
		return &controlv1.TriggerTaskResponse{Started: r.Started, Reason: r.Detail, SkipReason: string(r.Reason), Error: ErrorProto(r.Err)}
	case ReplicaList:
		out := &controlv1.ListReplicasResponse{Error: ErrorProto(r.Err)}
		for _, rep := range r.Replicas {
			out.Replicas = append(out.Replicas, &controlv1.Replica{Name: rep.Name, Started: timestamp(rep.Started), Seen: timestamp(rep.Seen), Version: rep.Version})
		}
		return out
	case ReloadReply:
		return &controlv1.ReloadResponse{Added: r.Added, Removed: r.Removed, Changed: r.Changed, Unchanged: r.Unchanged, Error: ErrorProto(r.Err)}
	}
	return &controlv1.ListTasksResponse{Error: &controlv1.Error{Code: controlv1.Code_INTERNAL, Message: "no protobuf form for this reply"}}
}

// ErrorProto converts an error of the supervisor (nil stays nil).
func ErrorProto(err error) *controlv1.Error {
	if err == nil {
		return nil
	}
	code := controlv1.Code_INTERNAL
	switch CodeOf(err) {
	case CodeUnknownTask:
		code = controlv1.Code_UNKNOWN_TASK
	case CodeInvalidArgument:
		code = controlv1.Code_INVALID_ARGUMENT
	case CodeFailedPrecondition:
		code = controlv1.Code_FAILED_PRECONDITION
	case CodeUnavailable:
		code = controlv1.Code_UNAVAILABLE
	}
	return &controlv1.Error{Code: code, Message: err.Error()}
}

// TaskProto converts a task's status; runs are included when st has a history.
func TaskProto(st task.Status) *controlv1.Task {
	t := &controlv1.Task{
		Name:      st.Name,
		Schedule:  st.Schedule,
		State:     string(st.State),
		Restarts:  int32(st.Restarts),
		Gate:      string(st.Gate),
		GateKnown: st.GateKnown,
		GateOpen:  st.GateOpen,
		NextFire:  timestamp(st.Next),
	}
	if st.Last != nil {
		t.LastRun = RunProto(*st.Last)
	}
	for _, r := range st.History {
		t.Runs = append(t.Runs, RunProto(r))
	}
	for _, at := range st.Upcoming {
		t.Upcoming = append(t.Upcoming, timestamp(at))
	}
	if st.Spec != nil {
		t.Spec = SpecProto(st.Spec)
	}
	for _, r := range st.Running {
		t.Running = append(t.Running, &controlv1.RunInProgress{
			Slot: timestamp(r.Slot), Start: timestamp(r.Start), Manual: r.Manual, Resumed: r.Resumed,
			Pages: int32(r.Progress.Pages), Items: int32(r.Progress.Items), Offset: int32(r.Progress.Offset),
			Deadline: timestamp(r.Deadline), Replica: r.Replica, Epoch: r.Epoch, LeaseUntil: timestamp(r.LeaseUntil),
		})
	}
	return t
}

// SpecProto converts a task's spec.
func SpecProto(s *task.Spec) *controlv1.TaskSpec {
	out := &controlv1.TaskSpec{
		At: s.At, Cron: s.Cron, Timezone: s.Timezone, RunOnStart: s.RunOnStart,
		EnabledIf: string(s.EnabledIf), Misfire: string(s.Misfire), Overlap: string(s.Overlap),
		Job: s.Job != nil,
	}
	for _, d := range []struct {
		v   time.Duration
		dst **durationpb.Duration
	}{{s.Every, &out.Every}, {s.MisfireGrace, &out.MisfireGrace}, {s.Jitter, &out.Jitter}, {s.JitterDelay(), &out.JitterDelay},
		{s.Timeout, &out.Timeout}, {s.RunTimeout, &out.RunTimeout}} {
		if d.v != 0 {
			*d.dst = durationpb.New(d.v)
		}
	}
	for _, w := range s.Weekdays {
		out.Weekdays = append(out.Weekdays, w.String())
	}
	if r := s.Request; r != nil {
		out.Service, out.Method, out.Path, out.Auth, out.Query, out.Result = string(r.Service), r.Method, r.Path, r.Auth, r.Query, r.Result
		if len(r.Body) > 0 {
			if b, err := json.Marshal(r.Body); err == nil {
				out.BodyJson = string(b)
			}
		}
	}
	if p := s.Paginate; p != nil {
		out.Paginate = &controlv1.Pagination{Mode: string(p.Mode), Size: int32(p.Size), SizeField: p.SizeField,
			OffsetField: p.OffsetField, Result: p.Result, MaxPages: int32(p.MaxPages)}
	}
	return out
}

// RunProto converts a run.
func RunProto(r task.Run) *controlv1.Run {
	return &controlv1.Run{
		Slot:       timestamp(r.Slot),
		Start:      timestamp(r.Start),
		Duration:   durationpb.New(r.Duration),
		Outcome:    string(r.Outcome),
		Reason:     string(r.Reason),
		Pages:      int32(r.Pages),
		Items:      int32(r.Items),
		HttpStatus: int32(r.Status),
		Error:      r.Err,
		Manual:     r.Manual,
		Resumed:    r.Resumed,
		Replica:    r.Replica,
		Epoch:      r.Epoch,
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
