package supervisor_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mojodex/mojodex-scheduler/actors"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

// crashAPI makes the API-client actor panic: it gets a run whose sink
// panics when the actor reports to it.
func (s *system) crashAPI(t *testing.T) {
	t.Helper()
	pid := s.engine.Registry.GetPID(supervisor.Kind+"/"+supervisor.ID+"/api", "client")
	if pid == nil {
		t.Fatal("no API-client actor")
	}
	s.engine.Send(pid, &apiclient.RunRequest{
		Task: "x", Request: &task.Request{Service: "no-such-service", Method: "POST", Path: "/x"},
		Ctx: context.Background(), Sink: panickingSink{},
	})
}

type panickingSink struct{}

func (panickingSink) Progress(task.Progress, int, func()) { panic("sink exploded") }
func (panickingSink) Finish(apiclient.RunResult)          { panic("sink exploded") }

// The wedge: the API-client actor crashes while a run's call is in flight.
// The run fails at once (not at some timeout), a run started while the
// actor is being restarted fails at once too (through the engine's dead
// letters), and the task goes on: its next slot fires and a trigger works.
func TestAPICrashFailsRunsAtOnceAndTheTaskGoesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stub := newStub(true)
		stub.Inject("/extract_todos", mojodexstub.Fault{Delay: 20 * time.Second})
		spec := defaultSpec(t, "extract-todos") // every 10m
		sys := startSystem(t, []task.Spec{spec}, stubClient(t, stub, nil))
		defer sys.stop()
		sys.trigger(spec.Name)
		time.Sleep(time.Second) // the call is in flight
		synctest.Wait()
		crashAt := time.Now()
		sys.crashAPI(t)
		synctest.Wait()
		recs := sys.rec.recordsOf(spec.Name)
		if len(recs) != 1 || recs[0].Outcome != task.OutcomeFailed || !strings.Contains(recs[0].Err, "the API client stopped: it crashed") ||
			!recs[0].Start.Add(recs[0].Duration).Equal(crashAt) {
			t.Fatalf("runs after the crash: %+v; want the run in flight failed at the crash", recs)
		}
		// The actor restarts after 1s; a trigger meanwhile fails at once.
		sys.trigger(spec.Name)
		synctest.Wait()
		recs = sys.rec.recordsOf(spec.Name)
		if len(recs) != 2 || recs[1].Outcome != task.OutcomeFailed || !strings.Contains(recs[1].Err, "restarting after a crash") || recs[1].Duration != 0 {
			t.Fatalf("a run during the restart: %+v; want it failed at once", recs[len(recs)-1])
		}
		time.Sleep(2 * time.Second) // restarted
		sys.trigger(spec.Name)
		time.Sleep(21 * time.Second)
		synctest.Wait()
		recs = sys.rec.recordsOf(spec.Name)
		if len(recs) != 3 || recs[2].Outcome != task.OutcomeOK {
			t.Fatalf("a trigger after the restart: %+v; want ok", recs[len(recs)-1])
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if got := sys.rec.firesOf(spec.Name); len(got) != 4 || got[3].slot.IsZero() {
			t.Fatalf("%d fires; want the next scheduled slot to fire after the three triggers", len(got))
		}
	})
}

// blockingTransport answers nothing and ignores its request's context
// until released: a result that never comes back.
type blockingTransport struct{ release chan struct{} }

func (b blockingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	<-b.release
	return nil, errors.New("released")
}

// A result that never comes back (a transport that ignores its context)
// cannot wedge a task: the run fails at its run_timeout and the next slot
// fires as usual.
func TestLostResultEndsAtTheRunDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		client := stubClient(t, newStub(true), func(c *apiclient.Config) {
			c.HTTPClient = &http.Client{Transport: blockingTransport{release: release}}
		})
		spec := defaultSpec(t, "extract-todos")
		spec.Every, spec.RunTimeout = time.Minute, 30*time.Second
		spec.Overlap = task.OverlapSkip
		t0 := time.Now()
		sys := startSystem(t, []task.Spec{spec}, client)
		defer sys.stop()
		time.Sleep(2*time.Minute + 32*time.Second)
		synctest.Wait()
		recs := sys.rec.recordsOf(spec.Name)
		if len(recs) != 2 {
			t.Fatalf("%d runs in 2 minutes, want 2 (each failed at its deadline): %+v", len(recs), recs)
		}
		for i, r := range recs {
			if r.Outcome != task.OutcomeFailed || !strings.Contains(r.Err, "deadline exceeded") || r.Duration != 30*time.Second+actors.BackstopGrace ||
				!r.Slot.Equal(t0.Add(time.Duration(i+1)*time.Minute)) {
				t.Errorf("run %d: %+v; want failed after its 30s run_timeout", i, r)
			}
		}
		if len(sys.rec.skipsSnapshot()) != 0 {
			t.Errorf("skipped fires %v: the wedged run must not hold up the next slot", sys.rec.skipsSnapshot())
		}
	})
}

// A job that ignores its context is failed at its deadline; a job that
// honours it sees context.DeadlineExceeded.
func TestJobRunDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := make(chan struct{})
		defer close(stuck)
		var sawDeadline atomic.Bool
		ignores := jobSpec("ignores", time.Hour, func(context.Context) (int, error) { <-stuck; return 0, nil })
		ignores.RunTimeout = time.Minute
		honours := jobSpec("honours", time.Hour, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			sawDeadline.Store(errors.Is(ctx.Err(), context.DeadlineExceeded))
			return 0, ctx.Err()
		})
		honours.Timeout = 2 * time.Minute
		sys := startSystem(t, []task.Spec{ignores, honours}, nil)
		defer sys.stop()
		sys.trigger("ignores")
		sys.trigger("honours")
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		r := sys.rec.recordsOf("ignores")
		if len(r) != 1 || r[0].Outcome != task.OutcomeFailed || r[0].Duration != time.Minute+actors.BackstopGrace || !strings.Contains(r[0].Err, "run_timeout (1m0s)") {
			t.Errorf("a job ignoring its context: %+v", r)
		}
		r = sys.rec.recordsOf("honours")
		if len(r) != 1 || r[0].Outcome != task.OutcomeFailed || r[0].Duration != 2*time.Minute || !sawDeadline.Load() {
			t.Errorf("a job honouring its context: %+v (saw DeadlineExceeded: %v)", r, sawDeadline.Load())
		}
	})
}

// A claimed slot is a run in progress until its run is recorded: a process
// killed while the first call of a run was in flight (no checkpoint yet)
// has the run resumed at the next start, page 1 with the same
// Idempotency-Key; with overlap: allow, every run of the task in progress
// is resumed, each from its own checkpoint.
func TestClaimedSlotsAreResumed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		st := store.NewMemory()
		plain := defaultSpec(t, "extract-todos")
		paged := defaultSpec(t, "first-home-chat-of-week") // offset pagination
		paged.Overlap = task.OverlapAllow
		slots := []time.Time{now.Add(-3 * time.Hour), now.Add(-2 * time.Hour), now.Add(-time.Hour)}
		b := &store.Batch{
			Claims: []store.Claim{{Task: plain.Name, Slot: slots[2]}, {Task: paged.Name, Slot: slots[0]}, {Task: paged.Name, Slot: slots[1]}, {Task: paged.Name, Slot: slots[2]}},
			Checkpoints: []store.Checkpoint{
				{Task: paged.Name, Slot: slots[0], Progress: task.Progress{Pages: 1, Offset: 50, Items: 50}},
				// slots[1]: its first call was in flight, no checkpoint
				{Task: paged.Name, Slot: slots[2], Progress: task.Progress{Pages: 2, Offset: 100, Items: 100}},
			},
		}
		if err := st.Commit(b); err != nil {
			t.Fatal(err)
		}
		stub := newStub(true)
		sys := startSystem(t, []task.Spec{plain, paged}, stubClient(t, stub, nil), supervisor.WithStore(st))
		defer sys.stop()
		waitRecords(t, sys, paged.Name, 3)
		waitRecords(t, sys, plain.Name, 1)
		if calls := stub.CallsTo("/extract_todos"); len(calls) != 1 || calls[0].IdempotencyKey != apiclient.IdempotencyKey(plain.Name, slots[2], 1) {
			t.Errorf("extract-todos after the restart: %d calls; want page 1 of the claimed slot again, same key", len(calls))
		}
		offsets := map[string][]any{}
		for _, c := range stub.CallsTo("/home_chat") {
			offsets[c.IdempotencyKey] = append(offsets[c.IdempotencyKey], c.Body["offset"])
		}
		for i, want := range []struct{ page, offset int }{{2, 50}, {1, 0}, {3, 100}} {
			key := apiclient.IdempotencyKey(paged.Name, slots[i], want.page)
			if got := offsets[key]; len(got) != 1 || got[0] != float64(want.offset) {
				t.Errorf("slot %d: resumed call with page %d's key at offsets %v; want once at offset %d", i, want.page, got, want.offset)
			}
		}
		var resumed []time.Time
		for _, r := range sys.rec.recordsOf(paged.Name) {
			if r.Outcome != task.OutcomeOK || !r.Resumed {
				t.Errorf("resumed run %+v", r)
			}
			resumed = append(resumed, r.Slot)
		}
		slices.SortFunc(resumed, time.Time.Compare)
		if !slices.EqualFunc(resumed, slots, time.Time.Equal) {
			t.Errorf("resumed slots %v, want %v", resumed, slots)
		}
		states, err := st.Load([]string{plain.Name, paged.Name})
		if err != nil || len(states[plain.Name].InProgress)+len(states[paged.Name].InProgress) != 0 {
			t.Errorf("runs still in progress after the resumed runs were recorded: %+v, %v", states, err)
		}
	})
}
