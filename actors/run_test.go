package actors

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

// recObserver records the runs reported.
type recObserver struct {
	nopObserver
	mu   sync.Mutex
	runs []task.Run
}

func (o *recObserver) RunFinished(r task.Run) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.runs = append(o.runs, r)
}

func (o *recObserver) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.runs)
}

func newTestRuntime(t *testing.T, st store.Store) (*Runtime, *recObserver) {
	t.Helper()
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		t.Fatal(err)
	}
	obs := &recObserver{}
	c := store.NewCommitter(st)
	rt, err := NewRuntime(RuntimeConfig{Engine: engine, Committer: c, Logger: zerolog.Nop(), Observer: obs, JobWorkers: 2, JobQueue: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.Stop(time.Second)
		c.Close()
	})
	return rt, obs
}

func newTestRun(rt *Runtime, slot time.Time) *run {
	r := &run{rt: rt, name: "t", slot: slot, due: slot, start: slot, epoch: 1}
	return r
}

func TestRunContextIsLazyAndEndsOnce(t *testing.T) {
	var c runCtx
	c.deadline = time.Unix(100, 0)
	if dl, ok := c.Deadline(); !ok || !dl.Equal(time.Unix(100, 0)) || c.Err() != nil || c.Value("k") != nil {
		t.Fatalf("fresh context: %v %v %v", dl, ok, c.Err())
	}
	if c.done != nil {
		t.Fatal("Done channel made before anyone asked")
	}
	done := c.Done()
	c.end(context.DeadlineExceeded)
	c.end(context.Canceled) // later ends do nothing
	select {
	case <-done:
	default:
		t.Fatal("Done not closed")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", c.Err())
	}
	var late runCtx
	late.end(context.Canceled)
	select {
	case <-late.Done(): // asked after the end: a closed channel
	default:
		t.Fatal("Done of an ended context is not closed")
	}
}

// A context derived from a run's context ends with it, through AfterFunc:
// no goroutine watches it meanwhile.
func TestRunContextPropagatesWithoutAGoroutine(t *testing.T) {
	var c runCtx
	before := runtime.NumGoroutine()
	children := make([]context.Context, 100)
	cancels := make([]context.CancelFunc, 100)
	for i := range children {
		children[i], cancels[i] = context.WithCancel(&c)
	}
	defer func() {
		for _, cancel := range cancels {
			cancel()
		}
	}()
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines for 100 derived contexts, want none", n-before)
	}
	c.end(context.Canceled)
	for i, child := range children {
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("child %d not cancelled", i)
		}
	}
	var stopped runCtx
	fired := atomic.Bool{}
	stop := stopped.AfterFunc(func() { fired.Store(true) })
	if !stop() || stop() {
		t.Fatal("stop: want true once, then false")
	}
	stopped.end(context.Canceled)
	time.Sleep(10 * time.Millisecond)
	if fired.Load() {
		t.Fatal("a stopped AfterFunc ran")
	}
}

// Many finishers race (the executor, the deadline, a crash): exactly one
// wins, the run is reported and recorded once, and a waiting owner is told.
func TestRunFinishesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := store.NewMemory()
		rt, obs := newTestRuntime(t, st)
		slot := time.Now()
		b := &store.Batch{Claims: []store.Claim{{Task: "t", Slot: slot}}}
		if err := st.Commit(b); err != nil || !b.Claims[0].Won {
			t.Fatal(b.Claims, err)
		}
		r := newTestRun(rt, slot)
		told := make(chan actor.Envelope, 4)
		r.owner = rt.engine.SpawnFunc(func(c *actor.Context) {
			if _, ok := c.Message().(runDone); ok {
				told <- actor.Envelope{Msg: c.Message()}
			}
		}, "owner")
		if r.watch() {
			t.Fatal("watch: finished before any finisher")
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if r.finish(task.OutcomeFailed, "", &task.Progress{Pages: i}, 0, errors.New("x")) {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		if wins.Load() != 1 || !r.done() || r.abandon() || r.lose("late") {
			t.Fatalf("%d finishers won; done %v", wins.Load(), r.done())
		}
		if obs.count() != 1 {
			t.Errorf("reported %d times, want once", obs.count())
		}
		if runs, _ := st.History("t", 20); len(runs) != 1 {
			t.Errorf("recorded %d times, want once", len(runs))
		}
		if len(told) != 1 {
			t.Errorf("the owner was told %d times, want once", len(told))
		}
		if states, _ := st.Load([]string{"t"}); len(states["t"].InProgress) != 0 {
			t.Errorf("the slot is still in progress: %+v", states["t"])
		}
	})
}

// An abandoned run (shutdown) is not recorded: its slot stays in progress.
func TestAbandonLeavesTheSlotInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := store.NewMemory()
		rt, obs := newTestRuntime(t, st)
		slot := time.Now()
		b := &store.Batch{Claims: []store.Claim{{Task: "t", Slot: slot}}}
		_ = st.Commit(b)
		r := newTestRun(rt, slot)
		if !r.abandon() || r.finish(task.OutcomeOK, "", nil, 0, nil) {
			t.Fatal("abandon did not win, or finish won after it")
		}
		synctest.Wait()
		if !errors.Is(r.ctx.Err(), context.Canceled) {
			t.Errorf("context: %v", r.ctx.Err())
		}
		states, _ := st.Load([]string{"t"})
		if obs.count() != 0 || len(states["t"].InProgress) != 1 {
			t.Errorf("abandoned run reported %d times, in progress %+v; want unreported and still in progress", obs.count(), states["t"].InProgress)
		}
	})
}

// The job pool runs at most its workers at once and refuses jobs beyond
// its queue; stopping it cancels the running jobs.
func TestJobPoolIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt, _ := newTestRuntime(t, store.NewMemory()) // 2 workers, queue of 3
		release := make(chan struct{})
		var running, most atomic.Int32
		job := func(ctx context.Context) (int, error) {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			defer running.Add(-1)
			select {
			case <-release:
				return 1, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		accepted := 0
		for range 6 {
			r := newTestRun(rt, time.Now())
			r.job = job
			if rt.jobs.submit(r) {
				accepted++
			}
			synctest.Wait()
		}
		if accepted != 5 || most.Load() != 2 {
			t.Fatalf("accepted %d of 6 (want 2 running + 3 queued), at most %d running (want 2)", accepted, most.Load())
		}
		rt.jobs.stop(time.Second)
		synctest.Wait()
		if running.Load() != 0 {
			t.Errorf("%d jobs still running after stop", running.Load())
		}
		close(release)
	})
}
