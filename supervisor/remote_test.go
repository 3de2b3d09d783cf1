package supervisor_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"google.golang.org/protobuf/proto"
)

// controlRequest sends a control-plane request and checks that the reply is
// a protobuf message of the expected type: a Go value would panic the
// process when the requester is remote.
func controlRequest[R proto.Message](t *testing.T, sys *system, req proto.Message) R {
	t.Helper()
	v := sys.request(req)
	r, ok := v.(R)
	if !ok {
		t.Fatalf("%s: reply is %T, want %T", proto.MessageName(req), v, *new(R))
	}
	return r
}

func idleJob(context.Context) (int, error) { return 1, nil }

// The supervisor answers every control request with a protobuf message,
// mapping its errors to codes; a remote trigger is decided from the
// supervisor's own state.
func TestControlPlaneRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		slow := func(ctx context.Context) (int, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return 2, nil
		}
		crash := func(context.Context) (int, error) { panic("boom") }
		sys := startSystem(t, []task.Spec{
			jobSpec("hourly", time.Hour, idleJob),
			jobSpec("slow", time.Hour, slow),
			jobSpec("crasher", time.Second, crash),
		}, nil, supervisor.WithRestartPolicy(supervisor.RestartPolicy{Initial: time.Second, Max: time.Second, Window: time.Minute, MaxFailures: 1}))
		defer sys.stop()
		defer close(release)
		time.Sleep(30 * time.Second)
		synctest.Wait()

		list := controlRequest[*controlv1.ListTasksResponse](t, sys, &controlv1.ListTasksRequest{})
		var names []string
		for _, tk := range list.GetTasks() {
			names = append(names, tk.GetName()+"="+tk.GetState())
		}
		if want := []string{"hourly=scheduled", "slow=scheduled", "crasher=failed"}; !slices.Equal(names, want) {
			t.Fatalf("list: %v, want %v", names, want)
		}
		if h := list.GetTasks()[0]; h.GetSchedule() != "every 1h0m0s" || h.GetNextFire() == nil || h.GetLastRun() != nil || len(h.GetRuns()) != 0 {
			t.Errorf("hourly in list: %v", h)
		}

		tr := controlRequest[*controlv1.TriggerTaskResponse](t, sys, &controlv1.TriggerTaskRequest{Name: "hourly"})
		if !tr.GetStarted() || tr.GetError() != nil {
			t.Fatalf("trigger hourly: %v", tr)
		}
		synctest.Wait()
		got := controlRequest[*controlv1.GetTaskResponse](t, sys, &controlv1.GetTaskRequest{Name: "hourly"})
		if runs := got.GetTask().GetRuns(); len(runs) != 1 || !runs[0].GetManual() || runs[0].GetOutcome() != "ok" || runs[0].GetItems() != 1 {
			t.Errorf("hourly runs after a trigger: %v", runs)
		}

		// The second trigger sees the first run in progress at once.
		if tr := controlRequest[*controlv1.TriggerTaskResponse](t, sys, &controlv1.TriggerTaskRequest{Name: "slow"}); !tr.GetStarted() {
			t.Fatalf("trigger slow: %v", tr)
		}
		tr = controlRequest[*controlv1.TriggerTaskResponse](t, sys, &controlv1.TriggerTaskRequest{Name: "slow"})
		if tr.GetStarted() || tr.GetReason() != "the previous run is still in progress" || tr.GetSkipReason() != "overlap" || tr.GetError() != nil {
			t.Errorf("second trigger of slow: %v", tr)
		}

		for _, c := range []struct {
			req  proto.Message
			code controlv1.Code
		}{
			{&controlv1.TriggerTaskRequest{Name: "nope"}, controlv1.Code_UNKNOWN_TASK},
			{&controlv1.TriggerTaskRequest{Name: "crasher"}, controlv1.Code_FAILED_PRECONDITION},
			{&controlv1.GetTaskRequest{Name: "nope"}, controlv1.Code_UNKNOWN_TASK},
			{&controlv1.PauseTaskRequest{Name: "nope"}, controlv1.Code_UNKNOWN_TASK},
			{&controlv1.PauseTaskRequest{Name: "crasher"}, controlv1.Code_FAILED_PRECONDITION},
			{&controlv1.ResumeTaskRequest{Name: "nope"}, controlv1.Code_UNKNOWN_TASK},
			{&controlv1.ReloadRequest{}, controlv1.Code_FAILED_PRECONDITION}, // no reloader
		} {
			reply := sys.request(c.req).(proto.Message)
			e, _ := reply.ProtoReflect().Get(reply.ProtoReflect().Descriptor().Fields().ByName("error")).Message().Interface().(*controlv1.Error)
			if e.GetCode() != c.code || e.GetMessage() == "" {
				t.Errorf("%s %v: error %v, want code %s", proto.MessageName(c.req), c.req, e, c.code)
			}
		}

		p := controlRequest[*controlv1.TaskControlResponse](t, sys, &controlv1.PauseTaskRequest{Name: "hourly"})
		if p.GetError() != nil || p.GetTask().GetState() != "paused" || p.GetTask().GetNextFire() != nil {
			t.Errorf("pause: %v", p)
		}
		r := controlRequest[*controlv1.TaskControlResponse](t, sys, &controlv1.ResumeTaskRequest{Name: "hourly"})
		if r.GetError() != nil || r.GetTask().GetState() != "scheduled" {
			t.Errorf("resume: %v", r)
		}
	})
}

// ReloadRequest applies the reloader's task set through the same code path
// as Reload; a reloader error or an invalid set changes nothing and lists
// the problems.
func TestControlPlaneReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keep := jobSpec("keep", time.Minute, idleJob)
		next := []task.Spec{keep, jobSpec("change", 2*time.Minute, idleJob), jobSpec("add", time.Minute, idleJob)}
		var loadErr error
		reloader := func() ([]task.Spec, []byte, error) { return next, nil, loadErr }
		sys := startSystem(t, []task.Spec{keep, jobSpec("change", time.Minute, idleJob), jobSpec("drop", time.Minute, idleJob)}, nil,
			supervisor.WithReloader(reloader))
		defer sys.stop()

		rep := controlRequest[*controlv1.ReloadResponse](t, sys, &controlv1.ReloadRequest{})
		if rep.GetError() != nil || !slices.Equal(rep.GetAdded(), []string{"add"}) || !slices.Equal(rep.GetRemoved(), []string{"drop"}) ||
			!slices.Equal(rep.GetChanged(), []string{"keep", "change"}) || len(rep.GetUnchanged()) != 0 {
			t.Fatalf("reload: %v", rep)
		}
		// Let the retired actors finish stopping: hollywood's graceful stop of
		// the supervisor can hang on a child that is stopping at that moment.
		synctest.Wait()

		loadErr = errors.New("tasks.yaml: line 3: bad")
		rep = controlRequest[*controlv1.ReloadResponse](t, sys, &controlv1.ReloadRequest{})
		if rep.GetError().GetCode() != controlv1.Code_INVALID_ARGUMENT || rep.GetError().GetMessage() != "tasks.yaml: line 3: bad" {
			t.Errorf("reload with a file error: %v", rep)
		}

		loadErr = nil
		next = []task.Spec{{Name: "Bad Name", Every: time.Minute, Job: idleJob}, {Name: "no-schedule", Job: idleJob}}
		rep = controlRequest[*controlv1.ReloadResponse](t, sys, &controlv1.ReloadRequest{})
		msg := rep.GetError().GetMessage()
		if rep.GetError().GetCode() != controlv1.Code_INVALID_ARGUMENT || !strings.Contains(msg, "Bad Name") || !strings.Contains(msg, "no-schedule") {
			t.Errorf("reload of an invalid set: %v", rep)
		}
		list := controlRequest[*controlv1.ListTasksResponse](t, sys, &controlv1.ListTasksRequest{})
		var names []string
		for _, tk := range list.GetTasks() {
			names = append(names, tk.GetName())
		}
		if !slices.Equal(names, []string{"keep", "change", "add"}) {
			t.Errorf("tasks after an invalid reload: %v", names)
		}
	})
}
