package supervisor_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

func hours(hs ...float64) []time.Duration {
	out := make([]time.Duration, len(hs))
	for i, h := range hs {
		out[i] = time.Duration(h * float64(time.Hour))
	}
	return out
}

// A restart keeps the slots of a fixed-rate task on the grid of the first
// start (the anchor is stored), and slots missed while the process was
// down follow the misfire policy: skip waits for the next slot, once fires
// the most recent missed slot at start, within misfire_grace.
func TestMisfirePolicies(t *testing.T) {
	cases := []struct {
		name    string
		misfire task.Misfire
		grace   time.Duration
		// fires of the second process, as offsets from the first start
		want []time.Duration
	}{
		{"skip", task.MisfireSkip, 0, hours(6, 7)},
		{"once", task.MisfireOnce, 0, hours(5, 6, 7)},
		{"once within grace", task.MisfireOnce, time.Hour, hours(5, 6, 7)},
		{"once beyond grace", task.MisfireOnce, 10 * time.Minute, hours(6, 7)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				st := store.NewMemory()
				spec := jobSpec("hourly", time.Hour, noop)
				spec.Misfire, spec.MisfireGrace = tc.misfire, tc.grace

				first := startSystem(t, []task.Spec{spec}, nil, supervisor.WithStore(st))
				time.Sleep(3*time.Hour + 10*time.Minute)
				synctest.Wait()
				first.stop()
				if got := slotsOf(first.rec.firesOf("hourly"), t0); !slices.Equal(got, hours(1, 2, 3)) {
					t.Fatalf("first process fired at %v", got)
				}

				time.Sleep(2*time.Hour + 20*time.Minute) // down over the 4h and 5h slots
				second := startSystem(t, []task.Spec{spec}, nil, supervisor.WithStore(st))
				defer second.stop()
				time.Sleep(2 * time.Hour)
				synctest.Wait()
				if got := slotsOf(second.rec.firesOf("hourly"), t0); !slices.Equal(got, tc.want) {
					t.Errorf("second process fired at %v, want %v", got, tc.want)
				}
				if second.rec.missed != 2 {
					t.Errorf("%d missed slots counted, want 2", second.rec.missed)
				}
			})
		})
	}
}

// A slot claimed before is never fired again, even when the wall clock
// says it is still ahead (the clock moved back, or another process with a
// clock ahead claimed it): the actor arms nothing at or before the last
// claimed slot, and the store refuses such a claim anyway.
func TestClaimedSlotNeverFiresTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		st := store.NewMemory()
		// The slot at 2h was claimed and run by an earlier process.
		claimed := t0.Add(2 * time.Hour)
		b := &store.Batch{
			Anchors: []store.Anchor{{Task: "hourly", Anchor: t0}},
			Claims:  []store.Claim{{Task: "hourly", Slot: claimed}},
			Runs:    []task.Run{{Task: "hourly", Slot: claimed, Start: claimed, Outcome: task.OutcomeOK}},
		}
		if err := st.Commit(b); err != nil || !b.Claims[0].Won {
			t.Fatal(b.Claims, err)
		}
		sys := startSystem(t, []task.Spec{jobSpec("hourly", time.Hour, noop)}, nil, supervisor.WithStore(st))
		defer sys.stop()
		time.Sleep(4*time.Hour + time.Minute)
		synctest.Wait()
		if got := slotsOf(sys.rec.firesOf("hourly"), t0); !slices.Equal(got, hours(3, 4)) {
			t.Errorf("fired at %v, want only the unclaimed slots 3h and 4h", got)
		}
	})
}

// A run interrupted mid-pagination resumes from its checkpoint in offset
// mode (the pages already fetched are not fetched again, with the same
// idempotency keys for the rest), and starts its pagination over in drain
// mode; the slot is not claimed again and the run is recorded once.
func TestResumeFromCheckpoint(t *testing.T) {
	cases := []struct {
		name       string
		task, path string
		progress   task.Progress
		offsets    []any // offsets sent after the restart (offset mode)
		pages      int
		items      int
	}{
		{"offset resumes", "first-home-chat-of-week", "/home_chat",
			task.Progress{Pages: 1, Offset: 50, Items: 50}, []any{50.0, 100.0}, 3, 110},
		{"drain restarts", "purchases-expiration-checker", "/check_expired_purchases",
			task.Progress{Pages: 1, Items: 50}, nil, 2, 60},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				slot := time.Now().Add(-time.Minute)
				st := store.NewMemory()
				b := &store.Batch{
					Claims:      []store.Claim{{Task: tc.task, Slot: slot}},
					Checkpoints: []store.Checkpoint{{Task: tc.task, Slot: slot, Progress: tc.progress}},
				}
				if err := st.Commit(b); err != nil || !b.Claims[0].Won {
					t.Fatal(b.Claims, err)
				}
				stub := newStub(true)
				sys := startSystem(t, []task.Spec{defaultSpec(t, tc.task)}, stubClient(t, stub, nil), supervisor.WithStore(st))
				defer sys.stop()
				recs := waitRecords(t, sys, tc.task, 1)
				synctest.Wait()
				r := recs[0]
				if r.Outcome != task.OutcomeOK || !r.Slot.Equal(slot) || r.Pages != tc.pages || r.Items != tc.items {
					t.Errorf("record %+v, want ok for the checkpoint's slot with %d pages, %d items", r, tc.pages, tc.items)
				}
				calls := stub.CallsTo(tc.path)
				if tc.offsets != nil {
					var got []any
					for _, c := range calls {
						got = append(got, c.Body["offset"])
					}
					if !slices.Equal(got, tc.offsets) {
						t.Errorf("offsets after restart %v, want %v", got, tc.offsets)
					}
					if calls[0].IdempotencyKey != apiclient.IdempotencyKey(tc.task, slot, 2) {
						t.Errorf("resumed page 2 has key %q, want the key of page 2 of that slot", calls[0].IdempotencyKey)
					}
				}
				states, err := st.Load([]string{tc.task})
				history, herr := st.History(tc.task, store.HistorySize)
				if err != nil || herr != nil || len(states[tc.task].InProgress) != 0 || len(history) != 1 {
					t.Errorf("stored state after the run: %+v, %d runs, %v, %v (want nothing in progress and one run)", states[tc.task], len(history), err, herr)
				}
				if len(sys.rec.recordsOf(tc.task)) != 1 {
					t.Errorf("%d records, want 1", len(sys.rec.recordsOf(tc.task)))
				}
			})
		})
	}
}

// Every call of a run carries an Idempotency-Key derived from task, slot and
// page: the same on a retry, different between pages and slots.
func TestIdempotencyKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stub := newStub(true)
		stub.Inject("/home_chat", mojodexstub.Fault{Status: 503})
		spec := defaultSpec(t, "first-home-chat-of-week")
		sys := startSystem(t, []task.Spec{spec}, stubClient(t, stub, nil))
		defer sys.stop()
		time.Sleep(time.Hour + time.Minute)
		synctest.Wait()
		calls := stub.CallsTo("/home_chat")
		if len(calls) != 4 { // page 1 (503), page 1 retried, pages 2 and 3
			t.Fatalf("%d calls, want 4", len(calls))
		}
		slot := sys.rec.firesOf(spec.Name)[0].slot
		want := []string{
			apiclient.IdempotencyKey(spec.Name, slot, 1), apiclient.IdempotencyKey(spec.Name, slot, 1),
			apiclient.IdempotencyKey(spec.Name, slot, 2), apiclient.IdempotencyKey(spec.Name, slot, 3),
		}
		for i, c := range calls {
			if c.IdempotencyKey != want[i] || len(c.IdempotencyKey) != 32 {
				t.Errorf("call %d: key %q, want %q", i, c.IdempotencyKey, want[i])
			}
		}
		if want[1] == want[2] || apiclient.IdempotencyKey(spec.Name, slot.Add(time.Hour), 1) == want[0] {
			t.Error("keys do not differ between pages or slots")
		}
	})
}

// Pause survives a restart.
func TestPauseSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := store.NewMemory()
		spec := jobSpec("p", time.Minute, noop)
		first := startSystem(t, []task.Spec{spec}, nil, supervisor.WithStore(st))
		if r := first.request(supervisor.PauseTask{Name: "p"}).(supervisor.TaskReply); r.Err != nil {
			t.Fatal(r.Err)
		}
		first.stop()
		second := startSystem(t, []task.Spec{spec}, nil, supervisor.WithStore(st))
		defer second.stop()
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if st := second.list()["p"]; st.State != task.StatePaused {
			t.Errorf("state after restart: %s, want paused", st.State)
		}
		if n := len(second.rec.firesOf("p")); n != 0 {
			t.Errorf("%d fires while paused", n)
		}
		second.request(supervisor.ResumeTask{Name: "p"})
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(second.rec.firesOf("p")); n != 1 {
			t.Errorf("%d fires in the minute after resume, want 1", n)
		}
	})
}

// Overlap policies: queue_one runs one queued fire after the run in
// progress and drops the rest; allow runs alongside.
func TestOverlapPolicies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		long := func(d time.Duration) task.JobFunc {
			return func(ctx context.Context) (int, error) { return 0, sleep(ctx, d) }
		}
		queue := jobSpec("queue", time.Minute, long(130*time.Second))
		queue.Overlap = task.OverlapQueueOne
		allow := jobSpec("allow", time.Minute, long(150*time.Second))
		allow.Overlap = task.OverlapAllow
		sys := startSystem(t, []task.Spec{queue, allow}, nil)
		defer sys.stop()
		time.Sleep(390 * time.Second)
		synctest.Wait()
		// queue: run(60s) ends 190s, runs slot 120s then, ends 320s, runs
		// slot 240s; fires at 180s and 300s find the queue taken.
		var started []time.Duration
		for _, f := range sys.rec.firesOf("queue") {
			started = append(started, f.at.Sub(t0))
		}
		if want := []time.Duration{60 * time.Second, 190 * time.Second, 320 * time.Second}; !slices.Equal(started, want) {
			t.Errorf("queue_one runs started at %v, want %v", started, want)
		}
		if got, want := slotsOf(sys.rec.firesOf("queue"), t0), minutes(1, 2, 4); !slices.Equal(got, want) {
			t.Errorf("queue_one ran slots %v, want %v", got, want)
		}
		if got, want := slotsOf(sys.rec.firesOf("allow"), t0), minutes(1, 2, 3, 4, 5, 6); !slices.Equal(got, want) {
			t.Errorf("allow ran slots %v, want %v", got, want)
		}
	})
}

// Jitter delays every fire by the same amount below its bound, across
// restarts, and lateness is measured against the jittered time.
func TestJitterIsStable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		st := store.NewMemory()
		spec := jobSpec("jittery", time.Minute, noop)
		spec.Jitter = 20 * time.Second
		d := spec.JitterDelay()
		if d <= 0 || d >= 20*time.Second {
			t.Fatalf("delay %v", d)
		}
		first := startSystem(t, []task.Spec{spec}, nil, supervisor.WithStore(st))
		time.Sleep(3*time.Minute + 30*time.Second)
		synctest.Wait()
		first.stop()
		second := startSystem(t, []task.Spec{spec}, nil, supervisor.WithStore(st))
		defer second.stop()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		fires := append(first.rec.firesOf("jittery"), second.rec.firesOf("jittery")...)
		if len(fires) != 5 {
			for _, f := range fires {
				t.Logf("slot %v at %v", f.slot.Sub(t0), f.at.Sub(t0))
			}
			t.Fatalf("%d fires, want 5", len(fires))
		}
		for i, f := range fires {
			slot := t0.Add(time.Duration(i+1) * time.Minute)
			if !f.slot.Equal(slot) || !f.at.Equal(slot.Add(d)) || f.lateness != 0 {
				t.Errorf("fire %d: slot %v at %v lateness %v; want slot %v at +%v", i, f.slot.Sub(t0), f.at.Sub(t0), f.lateness, slot.Sub(t0), d)
			}
		}
	})
}

// A flood: 300 tasks due at the same instant with a 5/s limit. Every call
// happens, none beyond the rate, and the number of goroutines stays bounded
// by the in-flight cap rather than growing with the backlog.
func TestFloodRespectsRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, rate, burst = 300, 5, 2
		stub := newStub(true)
		var specs []task.Spec
		for i := range n {
			s := defaultSpec(t, "extract-todos")
			s.Name = fmt.Sprintf("flood-%d", i)
			s.Every = time.Hour
			specs = append(specs, s)
		}
		client := stubClient(t, stub, func(c *apiclient.Config) { c.Rate, c.Burst, c.MaxInFlight = rate, burst, 4 })
		sys := startSystem(t, specs, client)
		defer sys.stop()
		time.Sleep(time.Hour + 30*time.Second) // mid-flood
		synctest.Wait()
		if g := runtime.NumGoroutine(); g > 40 {
			t.Errorf("%d goroutines mid-flood with 300 calls queued", g)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		calls := stub.CallsTo("/extract_todos")
		if len(calls) != n {
			t.Fatalf("%d calls, want %d", len(calls), n)
		}
		for i := range calls {
			// Any window of one second holds at most rate+burst calls.
			j := i
			for j < len(calls) && calls[j].At.Sub(calls[i].At) < time.Second {
				j++
			}
			if j-i > rate+burst {
				t.Fatalf("%d calls within 1s from call %d", j-i, i)
			}
		}
		if span := calls[n-1].At.Sub(calls[0].At); span < time.Duration(float64(n-burst)/rate*float64(time.Second)) {
			t.Errorf("300 calls took %v, want at least (N-burst)/rate", span)
		}
		ok := 0
		for _, r := range sys.rec.records {
			if r.Outcome == task.OutcomeOK {
				ok++
			}
		}
		if ok != n {
			t.Errorf("%d runs ok, want %d", ok, n)
		}
	})
}

// The backend down for several periods: each run makes its bounded
// attempts and fails, nothing crashes or loops, and runs succeed again on
// the first slot after it comes back.
func TestBackendDownThenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stub := newStub(true)
		spec := defaultSpec(t, "extract-todos")
		spec.Every = time.Minute
		sys := startSystem(t, []task.Spec{spec}, stubClient(t, stub, nil))
		defer sys.stop()
		stub.SetDown(true)
		time.Sleep(5*time.Minute + 30*time.Second)
		synctest.Wait()
		down := len(stub.CallsTo("/extract_todos"))
		if down != 5*3 {
			t.Errorf("%d attempts over 5 slots while down, want 15 (3 per run)", down)
		}
		stub.SetDown(false)
		time.Sleep(time.Minute)
		synctest.Wait()
		recs := sys.rec.recordsOf(spec.Name)
		if len(recs) != 6 {
			t.Fatalf("%d runs, want 6", len(recs))
		}
		for i, r := range recs[:5] {
			if r.Outcome != task.OutcomeFailed || !strings.Contains(r.Err, "connection reset") {
				t.Errorf("run %d while down: %+v", i, r)
			}
		}
		if r := recs[5]; r.Outcome != task.OutcomeOK {
			t.Errorf("run after recovery: %+v", r)
		}
		if st := sys.list()[spec.Name]; st.State != task.StateScheduled || st.Restarts != 0 {
			t.Errorf("state %s restarts %d", st.State, st.Restarts)
		}
	})
}

// stallingObserver blocks the task actor inside its first Fired call, as a
// stalled process (or a wall clock jumping forward) would.
type stallingObserver struct {
	*recorder
	stalled atomic.Bool
	stall   time.Duration
}

func (o *stallingObserver) Fired(name string, slot time.Time, lateness time.Duration) {
	o.recorder.Fired(name, slot, lateness)
	if o.stalled.CompareAndSwap(false, true) {
		time.Sleep(o.stall)
	}
}

// Fault: the task actor is stalled for 4.5 periods while it starts a run,
// as a stalled process or a wall clock jumping forward would. Asserted: the
// fire that was already due during the stall finds the run in progress and
// is skipped (overlap); the slots that passed meanwhile are counted as
// missed, not fired; no slot fires twice and the following slots are on
// time again.
func TestStallSkipsMissedSlotsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		obs := &stallingObserver{recorder: &recorder{}, stall: 270 * time.Second}
		producer, err := supervisor.New([]task.Spec{jobSpec("stalled", time.Minute, noop)}, nil, supervisor.WithObserver(obs))
		if err != nil {
			t.Fatal(err)
		}
		sys := startSystemWith(t, producer, obs.recorder)
		defer sys.stop()
		time.Sleep(10*time.Minute + time.Second)
		synctest.Wait()
		got := slotsOf(obs.firesOf("stalled"), t0)
		// 1m fires and stalls until 5m30s; the 2m fire, delivered then, meets
		// the 1m run still in progress; 3m, 4m and 5m passed unfired; then
		// 6m ... 10m on time.
		if want := minutes(1, 6, 7, 8, 9, 10); !slices.Equal(got, want) {
			t.Errorf("fired slots %v, want %v", got, want)
		}
		if obs.missed != 3 {
			t.Errorf("%d missed slots counted, want 3", obs.missed)
		}
		if skips := obs.skipsSnapshot(); len(skips) != 1 || !strings.Contains(skips[0], "in progress") {
			t.Errorf("skips %q, want the 2m fire skipped for overlap", skips)
		}
		for _, f := range obs.firesOf("stalled")[1:] {
			if f.lateness != 0 {
				t.Errorf("slot %v late by %v after the stall", f.slot.Sub(t0), f.lateness)
			}
		}
	})
}
