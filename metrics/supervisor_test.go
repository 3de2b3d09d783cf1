package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var watchedSeries = []string{
	"mojodex_scheduler_tasks",
	"mojodex_scheduler_task_restarts_total",
	"mojodex_scheduler_supervisor_up",
}

func newEngine(t *testing.T) *actor.Engine {
	t.Helper()
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return engine
}

func spawnSupervisor(t *testing.T, engine *actor.Engine, specs []task.Spec, opts ...supervisor.Option) *actor.PID {
	t.Helper()
	producer, err := supervisor.New(specs, nil, append([]supervisor.Option{supervisor.WithManual()}, opts...)...)
	if err != nil {
		t.Fatalf("supervisor.New: %v", err)
	}
	pid := supervisor.Spawn(engine, producer)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		<-engine.PoisonCtx(ctx, pid).Done()
	})
	return pid
}

func okJob(context.Context) (int, error) { return 0, nil }

func TestWatchSupervisor(t *testing.T) {
	engine := newEngine(t)
	pid := spawnSupervisor(t, engine, []task.Spec{
		{Name: "a", Every: time.Hour, Job: okJob},
		{Name: "b", Every: time.Hour, Job: okJob},
	})
	m, reg := newTestMetrics(t)
	if err := m.WatchSupervisor(engine, pid); err != nil {
		t.Fatalf("WatchSupervisor: %v", err)
	}
	want := `
# HELP mojodex_scheduler_supervisor_up 1 when the supervisor answered the scrape's question about its tasks within 1s, else 0.
# TYPE mojodex_scheduler_supervisor_up gauge
mojodex_scheduler_supervisor_up 1
# HELP mojodex_scheduler_task_restarts_total Restarts of a task by the supervisor after a crash.
# TYPE mojodex_scheduler_task_restarts_total counter
mojodex_scheduler_task_restarts_total{task="a"} 0
mojodex_scheduler_task_restarts_total{task="b"} 0
# HELP mojodex_scheduler_tasks Tasks by state, as the supervisor reports them at scrape time.
# TYPE mojodex_scheduler_tasks gauge
mojodex_scheduler_tasks{state="failed"} 0
mojodex_scheduler_tasks{state="gated"} 0
mojodex_scheduler_tasks{state="restarting"} 0
mojodex_scheduler_tasks{state="paused"} 0
mojodex_scheduler_tasks{state="running"} 0
mojodex_scheduler_tasks{state="scheduled"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), watchedSeries...); err != nil {
		t.Error(err)
	}
	// A second watcher on the same registry would export the series twice.
	if err := m.WatchSupervisor(engine, pid); err == nil {
		t.Error("second WatchSupervisor on the same registry: no error")
	}
	if err := m.WatchSupervisor(nil, pid); err == nil {
		t.Error("WatchSupervisor(nil engine): no error")
	}
	if err := m.WatchSupervisor(engine, nil); err == nil {
		t.Error("WatchSupervisor(nil pid): no error")
	}
}

func TestWatchSupervisorRestarts(t *testing.T) {
	engine := newEngine(t)
	pid := spawnSupervisor(t, engine, []task.Spec{
		{Name: "boom", Every: time.Hour, Job: func(context.Context) (int, error) { panic("job exploded") }},
		{Name: "calm", Every: time.Hour, Job: okJob},
	}, supervisor.WithRestartPolicy(supervisor.RestartPolicy{Initial: 5 * time.Millisecond, Max: 5 * time.Millisecond}))
	m, reg := newTestMetrics(t)
	if err := m.WatchSupervisor(engine, pid); err != nil {
		t.Fatalf("WatchSupervisor: %v", err)
	}

	if _, err := engine.Request(pid, supervisor.TriggerTask{Name: "boom"}, time.Second).Result(); err != nil {
		t.Fatalf("TriggerTask: %v", err)
	}
	// Wait until the supervisor itself reports the restart (a condition, not
	// a guess), then scrape.
	deadline := time.Now().Add(3 * time.Second)
	for {
		reply, err := engine.Request(pid, supervisor.GetTask{Name: "boom"}, time.Second).Result()
		if err != nil {
			t.Fatalf("GetTask: %v", err)
		}
		st := reply.(supervisor.TaskReply).Task
		if st.Restarts == 1 && st.State == task.StateScheduled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("boom never restarted: %+v", st)
		}
		time.Sleep(2 * time.Millisecond)
	}

	want := `
# HELP mojodex_scheduler_supervisor_up 1 when the supervisor answered the scrape's question about its tasks within 1s, else 0.
# TYPE mojodex_scheduler_supervisor_up gauge
mojodex_scheduler_supervisor_up 1
# HELP mojodex_scheduler_task_restarts_total Restarts of a task by the supervisor after a crash.
# TYPE mojodex_scheduler_task_restarts_total counter
mojodex_scheduler_task_restarts_total{task="boom"} 1
mojodex_scheduler_task_restarts_total{task="calm"} 0
# HELP mojodex_scheduler_tasks Tasks by state, as the supervisor reports them at scrape time.
# TYPE mojodex_scheduler_tasks gauge
mojodex_scheduler_tasks{state="failed"} 0
mojodex_scheduler_tasks{state="gated"} 0
mojodex_scheduler_tasks{state="restarting"} 0
mojodex_scheduler_tasks{state="paused"} 0
mojodex_scheduler_tasks{state="running"} 0
mojodex_scheduler_tasks{state="scheduled"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), watchedSeries...); err != nil {
		t.Error(err)
	}
}

func TestWatchSupervisorUnknownPID(t *testing.T) {
	engine := newEngine(t)
	m, reg := newTestMetrics(t)
	missing := actor.NewPID(engine.Address(), supervisor.Kind+"/nobody")
	if err := m.WatchSupervisor(engine, missing); err != nil {
		t.Fatalf("WatchSupervisor: %v", err)
	}
	m.Tasks().Missed("a", 1) // the other series are still exported

	start := time.Now()
	mfs, err := reg.Gather()
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	if elapsed < SupervisorTimeout/2 || elapsed > SupervisorTimeout+500*time.Millisecond {
		t.Errorf("scrape took %s, want about %s", elapsed, SupervisorTimeout)
	}
	names := map[string]bool{}
	up := -1.0
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetName() == "mojodex_scheduler_supervisor_up" && len(mf.GetMetric()) == 1 {
			up = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	for _, n := range []string{"mojodex_scheduler_tasks", "mojodex_scheduler_task_restarts_total"} {
		if names[n] {
			t.Errorf("%s exported although the supervisor did not answer", n)
		}
	}
	if !names["mojodex_scheduler_slots_missed_total"] || !names["go_goroutines"] {
		t.Errorf("other series missing from the scrape: %v", names)
	}
	if up != 0 {
		t.Errorf("supervisor_up = %v, want 0", up)
	}
}

// The collector survives a wrong reply and a panic while asking.
func TestSupervisorCollectorBadAnswers(t *testing.T) {
	for name, ask := range map[string]func() (any, error){
		"wrong type": func() (any, error) { return "hello", nil },
		"nil reply":  func() (any, error) { return nil, nil },
		"panic":      func() (any, error) { panic("engine gone") },
	} {
		t.Run(name, func(t *testing.T) {
			c := newSupervisorCollector(ask)
			if n := testutil.CollectAndCount(c); n != 1 {
				t.Errorf("%d series, want only supervisor_up", n)
			}
			if got := testutil.ToFloat64(c); got != 0 {
				t.Errorf("supervisor_up = %v, want 0", got)
			}
		})
	}
}

// A task list with a state outside the five, or a duplicate name, still
// gives a valid scrape.
func TestSupervisorCollectorOddList(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := newSupervisorCollector(func() (any, error) {
		return supervisor.TaskList{Tasks: []task.Status{
			{Name: "x", State: task.StateFailed, Restarts: 6},
			{Name: "x", State: task.StateFailed, Restarts: 6},
			{Name: "y", State: "mystery", Restarts: 1},
			{Name: "z", State: task.StateRestarting, Restarts: 2},
			{Name: "w", State: task.StateGated},
		}}, nil
	})
	reg.MustRegister(c)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP mojodex_scheduler_supervisor_up 1 when the supervisor answered the scrape's question about its tasks within 1s, else 0.
# TYPE mojodex_scheduler_supervisor_up gauge
mojodex_scheduler_supervisor_up 1
# HELP mojodex_scheduler_task_restarts_total Restarts of a task by the supervisor after a crash.
# TYPE mojodex_scheduler_task_restarts_total counter
mojodex_scheduler_task_restarts_total{task="w"} 0
mojodex_scheduler_task_restarts_total{task="x"} 6
mojodex_scheduler_task_restarts_total{task="y"} 1
mojodex_scheduler_task_restarts_total{task="z"} 2
# HELP mojodex_scheduler_task_state 1 for the state a task is in, 0 for the others (scheduled, running, paused, gated, restarting, failed).
# TYPE mojodex_scheduler_task_state gauge
mojodex_scheduler_task_state{state="failed",task="w"} 0
mojodex_scheduler_task_state{state="failed",task="x"} 1
mojodex_scheduler_task_state{state="failed",task="y"} 0
mojodex_scheduler_task_state{state="failed",task="z"} 0
mojodex_scheduler_task_state{state="gated",task="w"} 1
mojodex_scheduler_task_state{state="gated",task="x"} 0
mojodex_scheduler_task_state{state="gated",task="y"} 0
mojodex_scheduler_task_state{state="gated",task="z"} 0
mojodex_scheduler_task_state{state="paused",task="w"} 0
mojodex_scheduler_task_state{state="paused",task="x"} 0
mojodex_scheduler_task_state{state="paused",task="y"} 0
mojodex_scheduler_task_state{state="paused",task="z"} 0
mojodex_scheduler_task_state{state="restarting",task="w"} 0
mojodex_scheduler_task_state{state="restarting",task="x"} 0
mojodex_scheduler_task_state{state="restarting",task="y"} 0
mojodex_scheduler_task_state{state="restarting",task="z"} 1
mojodex_scheduler_task_state{state="running",task="w"} 0
mojodex_scheduler_task_state{state="running",task="x"} 0
mojodex_scheduler_task_state{state="running",task="y"} 0
mojodex_scheduler_task_state{state="running",task="z"} 0
mojodex_scheduler_task_state{state="scheduled",task="w"} 0
mojodex_scheduler_task_state{state="scheduled",task="x"} 0
mojodex_scheduler_task_state{state="scheduled",task="y"} 0
mojodex_scheduler_task_state{state="scheduled",task="z"} 0
# HELP mojodex_scheduler_tasks Tasks by state, as the supervisor reports them at scrape time.
# TYPE mojodex_scheduler_tasks gauge
mojodex_scheduler_tasks{state="failed"} 2
mojodex_scheduler_tasks{state="gated"} 1
mojodex_scheduler_tasks{state="paused"} 0
mojodex_scheduler_tasks{state="restarting"} 1
mojodex_scheduler_tasks{state="running"} 0
mojodex_scheduler_tasks{state="scheduled"} 0
`)); err != nil {
		t.Error(err)
	}
}
