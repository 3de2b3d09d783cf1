package supervisor_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

func slotsOf(fires []fireEvent, start time.Time) []time.Duration {
	out := make([]time.Duration, len(fires))
	for i, f := range fires {
		out[i] = f.slot.Sub(start)
	}
	return out
}

func minutes(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Minute
	}
	return out
}

// Pause stops scheduled fires (a manual trigger still runs); resume re-arms
// on the original slots.
func TestPauseResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		sys := startSystem(t, []task.Spec{jobSpec("p", time.Minute, noop)}, nil)
		defer sys.stop()
		time.Sleep(150 * time.Second)
		r := sys.request(supervisor.PauseTask{Name: "p"}).(supervisor.TaskReply)
		if r.Err != nil || r.Task.State != task.StatePaused || !r.Task.Next.IsZero() {
			t.Fatalf("pause: %+v", r)
		}
		time.Sleep(5 * time.Minute)
		sys.trigger("p") // at 7m30s
		time.Sleep(3 * time.Minute)
		r = sys.request(supervisor.ResumeTask{Name: "p"}).(supervisor.TaskReply) // at 10m30s
		if r.Err != nil || r.Task.State != task.StateScheduled {
			t.Fatalf("resume: %+v", r)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		got := slotsOf(sys.rec.firesOf("p"), start)
		want := append(minutes(1, 2), 450*time.Second, 11*time.Minute, 12*time.Minute)
		if !slices.Equal(got, want) {
			t.Errorf("fires at %v, want %v", got, want)
		}
		if r := sys.request(supervisor.PauseTask{Name: "nope"}).(supervisor.TaskReply); !errors.Is(r.Err, supervisor.ErrUnknownTask) {
			t.Errorf("pause of an unknown task: %v", r.Err)
		}
	})
}

// Resume revives a task marked failed.
func TestResumeRevivesFailedTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var healthy atomic.Bool
		var ok atomic.Int64
		sys := startSystem(t, []task.Spec{jobSpec("flaky", time.Second, func(context.Context) (int, error) {
			if !healthy.Load() {
				panic("not yet")
			}
			ok.Add(1)
			return 0, nil
		})}, nil)
		defer sys.stop()
		time.Sleep(time.Minute)
		synctest.Wait()
		if st := sys.list()["flaky"]; st.State != task.StateFailed {
			t.Fatalf("state %s, want failed", st.State)
		}
		healthy.Store(true)
		r := sys.request(supervisor.ResumeTask{Name: "flaky"}).(supervisor.TaskReply)
		if r.Err != nil || r.Task.State != task.StateScheduled {
			t.Fatalf("resume: %+v", r)
		}
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		if got := ok.Load(); got != 10 {
			t.Errorf("%d good runs in 10s after revival, want 10", got)
		}
	})
}

// Reload adds, removes and changes tasks; a task restarted by a reload keeps
// its slots (its anchor and last claimed slot are stored): no extra fire,
// none missed. A task with an in-process job is always restarted, since two
// closures cannot be compared. An invalid set changes nothing.
func TestReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		keep := jobSpec("keep", time.Minute, noop)
		sys := startSystem(t, []task.Spec{keep, jobSpec("change", time.Minute, noop), jobSpec("drop", time.Minute, noop)}, nil)
		defer sys.stop()
		time.Sleep(150 * time.Second)

		bad := sys.request(supervisor.Reload{Tasks: []task.Spec{keep, keep}}).(supervisor.ReloadReply)
		if bad.Err == nil || !strings.Contains(bad.Err.Error(), "duplicate") {
			t.Fatalf("invalid reload: %+v", bad)
		}
		if n := len(sys.list()); n != 3 {
			t.Fatalf("%d tasks after an invalid reload, want 3", n)
		}

		reply := sys.request(supervisor.Reload{Tasks: []task.Spec{
			jobSpec("add", 5*time.Minute, noop), keep, jobSpec("change", 2*time.Minute, noop),
		}}).(supervisor.ReloadReply)
		if reply.Err != nil || !slices.Equal(reply.Added, []string{"add"}) || !slices.Equal(reply.Removed, []string{"drop"}) ||
			!slices.Equal(reply.Changed, []string{"keep", "change"}) || len(reply.Unchanged) != 0 {
			t.Fatalf("reload: %+v", reply)
		}
		time.Sleep(8 * time.Minute) // to 10m30s
		synctest.Wait()

		if got, want := slotsOf(sys.rec.firesOf("keep"), start), minutes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10); !slices.Equal(got, want) {
			t.Errorf("keep fired at %v, want %v", got, want)
		}
		if got, want := slotsOf(sys.rec.firesOf("change"), start), minutes(1, 2, 4, 6, 8, 10); !slices.Equal(got, want) {
			t.Errorf("change fired at %v, want %v (every 2m on the original anchor after the reload)", got, want)
		}
		if got, want := slotsOf(sys.rec.firesOf("drop"), start), minutes(1, 2); !slices.Equal(got, want) {
			t.Errorf("drop fired at %v, want %v", got, want)
		}
		if got, want := slotsOf(sys.rec.firesOf("add"), start), minutes(5, 10); !slices.Equal(got, want) {
			t.Errorf("add fired at %v, want %v", got, want)
		}
		var names []string
		for _, st := range sys.request(supervisor.ListTasks{}).(supervisor.TaskList).Tasks {
			names = append(names, st.Name)
		}
		if !slices.Equal(names, []string{"add", "keep", "change"}) {
			t.Errorf("tasks after reload: %v", names)
		}
	})
}

// A manual trigger skipped because a run is in progress leaves the task
// shown as running until that run ends.
func TestSkippedTriggerKeepsRunningState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := startSystem(t, []task.Spec{jobSpec("slow", time.Minute, func(ctx context.Context) (int, error) {
			return 0, sleep(ctx, 30*time.Second)
		})}, nil)
		defer sys.stop()
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if r, ok := sys.request(supervisor.TriggerTask{Name: "slow"}).(supervisor.TriggerReply); !ok || r.Started {
			t.Fatalf("trigger during a run: %+v", r)
		}
		synctest.Wait()
		if st := sys.list()["slow"]; st.State != task.StateRunning || st.Last == nil || st.Last.Outcome != task.OutcomeSkipped {
			t.Errorf("after a skipped trigger: state %s, last run %+v; want running, last run skipped", st.State, st.Last)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if st := sys.list()["slow"]; st.State != task.StateScheduled {
			t.Errorf("after the run: state %s, want scheduled", st.State)
		}
	})
}

// A reload hands a task with a job its new closure, even one of the same
// function literal (same code, other captured values), while an HTTP task
// whose spec did not change keeps its actor, timer and slots.
func TestReloadSwapsJobClosureAndKeepsUnchangedHTTPTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var hits [2]atomic.Int32
		closure := func(i int) task.JobFunc {
			return func(context.Context) (int, error) { hits[i].Add(1); return 0, nil }
		}
		stub := newStub(true)
		todos := defaultSpec(t, "extract-todos") // every 10m
		sys := startSystem(t, []task.Spec{jobSpec("job", time.Minute, closure(0)), todos}, stubClient(t, stub, nil))
		defer sys.stop()
		time.Sleep(90 * time.Second)
		synctest.Wait()
		if hits[0].Load() != 1 {
			t.Fatalf("first closure ran %d times before the reload, want 1", hits[0].Load())
		}
		reply := sys.request(supervisor.Reload{Tasks: []task.Spec{jobSpec("job", time.Minute, closure(1)), todos}}).(supervisor.ReloadReply)
		if reply.Err != nil || !slices.Equal(reply.Changed, []string{"job"}) || !slices.Equal(reply.Unchanged, []string{"extract-todos"}) {
			t.Fatalf("reload: %+v", reply)
		}
		time.Sleep(9 * time.Minute) // to 10m30s
		synctest.Wait()
		if a, b := hits[0].Load(), hits[1].Load(); a != 1 || b != 9 {
			t.Errorf("after the reload the old closure ran %d times in all and the new one %d; want 1 and 9", a, b)
		}
		if got := slotsOf(sys.rec.firesOf("extract-todos"), start); !slices.Equal(got, minutes(10)) {
			t.Errorf("extract-todos fired at %v, want only its 10m slot", got)
		}
	})
}
