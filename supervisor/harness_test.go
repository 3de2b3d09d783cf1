package supervisor_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/internal/stubclient"
	"github.com/mojodex/mojodex-scheduler/internal/tasktest"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

const testSecret = "s3cret-for-tests"

// stubClient returns an API client that talks to stub in memory.
func stubClient(t *testing.T, stub *mojodexstub.Stub, mutate func(*apiclient.Config)) *apiclient.Client {
	t.Helper()
	return stubclient.New(t, stub, testSecret, mutate)
}

type fireEvent struct {
	task     string
	slot     time.Time
	at       time.Time
	lateness time.Duration
}

// recorder is a task.Observer that keeps every event.
type recorder struct {
	mu      sync.Mutex
	fires   []fireEvent
	skips   []string
	missed  int
	records []task.Run
}

func (r *recorder) Fired(name string, slot time.Time, lateness time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fires = append(r.fires, fireEvent{task: name, slot: slot, at: time.Now(), lateness: lateness})
}

func (r *recorder) Skipped(name string, _ time.Time, reason task.SkipReason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skips = append(r.skips, name+": "+reason.Describe(""))
}

func (r *recorder) Missed(_ string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.missed += n
}

func (r *recorder) RunFinished(rec task.Run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
}

func (r *recorder) firesOf(name string) []fireEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []fireEvent
	for _, f := range r.fires {
		if f.task == name {
			out = append(out, f)
		}
	}
	return out
}

func (r *recorder) recordsOf(name string) []task.Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []task.Run
	for _, rec := range r.records {
		if rec.Task == name {
			out = append(out, rec)
		}
	}
	return out
}

func (r *recorder) skipsSnapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.skips...)
}

// system is a supervisor running in an engine, stopped at cleanup.
type system struct {
	t      testing.TB
	engine *actor.Engine
	pid    *actor.PID
	rec    *recorder
}

// startSystem spawns a supervisor for specs. It must be called inside the
// synctest bubble when the test uses virtual time.
func startSystem(t testing.TB, specs []task.Spec, client *apiclient.Client, opts ...supervisor.Option) *system {
	t.Helper()
	rec := &recorder{}
	opts = append([]supervisor.Option{supervisor.WithObserver(rec)}, opts...)
	producer, err := supervisor.New(specs, client, opts...)
	if err != nil {
		t.Fatalf("supervisor.New: %v", err)
	}
	return startSystemWith(t, producer, rec)
}

// startSystemWith spawns a supervisor built by the caller; rec is the
// observer it was given.
func startSystemWith(t testing.TB, producer actor.Producer, rec *recorder) *system {
	t.Helper()
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	pid := supervisor.Spawn(engine, producer)
	return &system{t: t, engine: engine, pid: pid, rec: rec}
}

// stop poisons the supervisor and waits for every actor to stop, so no
// timer outlives the test.
func (s *system) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-s.engine.PoisonCtx(ctx, s.pid).Done():
	case <-ctx.Done():
		s.t.Errorf("supervisor did not stop")
	}
}

func (s *system) request(msg any) any {
	s.t.Helper()
	v, err := s.engine.Request(s.pid, msg, 5*time.Second).Result()
	if err != nil {
		s.t.Fatalf("request %T: %v", msg, err)
	}
	return v
}

func (s *system) list() map[string]task.Status {
	s.t.Helper()
	out := map[string]task.Status{}
	for _, st := range s.request(supervisor.ListTasks{}).(supervisor.TaskList).Tasks {
		out[st.Name] = st
	}
	return out
}

// trigger runs a task now and fails the test unless it started.
func (s *system) trigger(name string) {
	s.t.Helper()
	switch r := s.request(supervisor.TriggerTask{Name: name}).(type) {
	case supervisor.TriggerReply:
		if r.Err != nil {
			s.t.Fatalf("trigger %s: %v", name, r.Err)
		}
		if !r.Started {
			s.t.Fatalf("trigger %s: not started: %s", name, r.Reason)
		}
	default:
		s.t.Fatalf("trigger %s: unexpected reply %T", name, r)
	}
}

// defaultSpec returns one of the Mojodex default tasks.
func defaultSpec(t *testing.T, name string) task.Spec {
	t.Helper()
	return tasktest.DefaultSpec(t, name)
}

func jobSpec(name string, every time.Duration, job task.JobFunc) task.Spec {
	return task.Spec{Name: name, Every: every, Job: job}
}
