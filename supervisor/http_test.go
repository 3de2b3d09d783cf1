package supervisor_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

func newStub(email bool) *mojodexstub.Stub {
	return mojodexstub.New(mojodexstub.Options{Secret: testSecret, EmailConfigured: email, Backlog: mojodexstub.DefaultBacklog()})
}

// waitRecord runs virtual time until the task has n records.
func waitRecords(t *testing.T, sys *system, name string, n int) []task.Run {
	t.Helper()
	for i := 0; i < 600; i++ {
		synctest.Wait()
		if recs := sys.rec.recordsOf(name); len(recs) >= n {
			return recs
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s: fewer than %d runs after 10 virtual minutes: %+v", name, n, sys.rec.recordsOf(name))
	return nil
}

// Each of the seven default tasks, run once against the contract-enforcing
// stub: the right method, path, secret, fields and pagination, and every
// page of the backlog fetched.
func TestDefaultTasksAgainstContract(t *testing.T) {
	type want struct {
		method, path string
		auth         bool
		pages, items int
		sizeField    string
		offsets      []float64 // offset mode: the offsets sent, in order
		body         map[string]any
		query        map[string]string
	}
	wants := map[string]want{
		"purchases-expiration-checker":      {method: "POST", path: "/check_expired_purchases", auth: true, pages: 2, items: 60, sizeField: "n_purchases", query: map[string]string{"n_purchases": "50"}},
		"extract-todos":                     {method: "POST", path: "/extract_todos", pages: 1, items: 3},
		"reschedule-todos":                  {method: "POST", path: "/reschedule_todo", pages: 1, items: 4},
		"send-todo-daily-emails":            {method: "POST", path: "/events_generation", auth: true, pages: 3, items: 120, sizeField: "n_events", offsets: []float64{0, 50, 100}, body: map[string]any{"event_type": "todo_daily_emails"}},
		"check-disengaged-free-trial-users": {method: "POST", path: "/check_disengaged_free_trial_users", auth: true, pages: 2, items: 75, sizeField: "n_disengaged_users", offsets: []float64{0, 50}},
		"first-home-chat-of-week":           {method: "PUT", path: "/home_chat", auth: true, pages: 3, items: 110, sizeField: "n_users", offsets: []float64{0, 50, 100}},
		"relaunch-locked-steps":             {method: "POST", path: "/relaunch_locked_workflow_step_executions", auth: true, pages: 1, items: 2},
	}
	synctest.Test(t, func(t *testing.T) {
		stub := newStub(true)
		specs, err := task.Defaults()
		if err != nil {
			t.Fatal(err)
		}
		sys := startSystem(t, specs, stubClient(t, stub, nil), supervisor.WithManual())
		defer sys.stop()
		for _, s := range specs {
			sys.trigger(s.Name)
		}
		for name, w := range wants {
			recs := waitRecords(t, sys, name, 1)
			r := recs[0]
			if r.Outcome != task.OutcomeOK || r.Pages != w.pages || r.Items != w.items || r.Status != 200 {
				t.Errorf("%s: %+v, want ok with %d pages, %d items", name, r, w.pages, w.items)
			}
			calls := stub.CallsTo(w.path)
			if len(calls) != w.pages {
				t.Fatalf("%s: %d calls to %s, want %d", name, len(calls), w.path, w.pages)
			}
			for i, c := range calls {
				if c.Method != w.method || c.Status != 200 {
					t.Errorf("%s call %d: %s -> %d", name, i, c.Method, c.Status)
				}
				if w.auth && c.Auth != testSecret {
					t.Errorf("%s call %d: Authorization %q, want the secret verbatim", name, i, c.Auth)
				}
				if !w.auth && c.Auth != "" {
					t.Errorf("%s call %d: sent the secret to an endpoint that does not need it", name, i)
				}
				if _, ok := c.Body["datetime"].(string); !ok {
					t.Errorf("%s call %d: no datetime in %v", name, i, c.Body)
				}
				if w.sizeField != "" && c.Body[w.sizeField] != float64(50) {
					t.Errorf("%s call %d: %s = %v, want 50", name, i, w.sizeField, c.Body[w.sizeField])
				}
				if w.offsets != nil && c.Body["offset"] != w.offsets[i] {
					t.Errorf("%s call %d: offset %v, want %v", name, i, c.Body["offset"], w.offsets[i])
				}
				for k, v := range w.body {
					if c.Body[k] != v {
						t.Errorf("%s call %d: body %s = %v, want %v", name, i, k, c.Body[k], v)
					}
				}
				for k, v := range w.query {
					if c.Query.Get(k) != v {
						t.Errorf("%s call %d: query %s = %q, want %q", name, i, k, c.Query.Get(k), v)
					}
				}
			}
		}
		// The email gate was probed with the secret.
		probes := stub.CallsTo("/is_email_service_configured")
		if len(probes) == 0 || probes[0].Auth != testSecret || probes[0].Query.Get("datetime") == "" {
			t.Errorf("email probe calls: %+v", probes)
		}
	})
}

// max_pages bounds a drain that never shrinks: the run stops, failed, with
// exactly max_pages calls.
func TestMaxPagesBoundsEndlessDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stub := newStub(true)
		stub.SetAlwaysFull("/check_expired_purchases", true)
		spec := defaultSpec(t, "purchases-expiration-checker")
		spec.Paginate.MaxPages = 7
		sys := startSystem(t, []task.Spec{spec}, stubClient(t, stub, nil), supervisor.WithManual())
		defer sys.stop()
		sys.trigger(spec.Name)
		r := waitRecords(t, sys, spec.Name, 1)[0]
		if r.Outcome != task.OutcomeFailed || r.Pages != 7 || r.Items != 350 || !strings.Contains(r.Err, "max_pages (7)") {
			t.Errorf("record %+v", r)
		}
		if n := len(stub.CallsTo("/check_expired_purchases")); n != 7 {
			t.Errorf("%d calls, want 7", n)
		}
	})
}

// Offset pagination also stops at max_pages when the backend never returns
// a short page.
func TestMaxPagesBoundsEndlessOffset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stub := newStub(true)
		stub.SetAlwaysFull("/home_chat", true)
		spec := defaultSpec(t, "first-home-chat-of-week")
		sys := startSystem(t, []task.Spec{spec}, stubClient(t, stub, nil), supervisor.WithManual())
		defer sys.stop()
		sys.trigger(spec.Name)
		r := waitRecords(t, sys, spec.Name, 1)[0]
		if r.Outcome != task.OutcomeFailed || r.Pages != task.DefaultMaxPages {
			t.Errorf("record %+v", r)
		}
		calls := stub.CallsTo("/home_chat")
		if len(calls) != task.DefaultMaxPages || calls[len(calls)-1].Body["offset"] != float64(50*(task.DefaultMaxPages-1)) {
			t.Errorf("%d calls, last offset %v", len(calls), calls[len(calls)-1].Body["offset"])
		}
	})
}

// Gates: a task behind the email gate makes no call while the probe says
// "not configured", starts running once the backend says it is (without a
// restart), and stops again when it goes back; a failed probe counts as not
// configured.
func TestGateTurnsOnAndOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stub := newStub(false)
		spec := defaultSpec(t, "send-todo-daily-emails")
		spec.Every = 15 * time.Minute
		sys := startSystem(t, []task.Spec{spec}, stubClient(t, stub, nil), supervisor.WithGateInterval(10*time.Minute))
		defer sys.stop()
		const path = "/events_generation"

		time.Sleep(time.Second)
		synctest.Wait()
		if st := sys.list()[spec.Name]; st.State != task.StateGated {
			t.Fatalf("state %s before the first slot, want gated", st.State)
		}
		time.Sleep(16 * time.Minute) // slot at 15 min: gated
		synctest.Wait()
		if n := len(stub.CallsTo(path)); n != 0 {
			t.Fatalf("%d calls while the email service is not configured", n)
		}
		stub.SetEmailConfigured(true) // seen by the probe at 20 min
		time.Sleep(15 * time.Minute)  // slot at 30 min runs
		synctest.Wait()
		if n := len(stub.CallsTo(path)); n != 3 {
			t.Fatalf("%d calls after the gate opened, want 3 (one run of 3 pages)", n)
		}
		stub.Inject("/is_email_service_configured", mojodexstub.Fault{Status: 500}) // probe at 40 min fails
		time.Sleep(15 * time.Minute)                                                // slot at 45 min: gated again
		synctest.Wait()
		if n := len(stub.CallsTo(path)); n != 3 {
			t.Fatalf("%d calls after a failed probe, want still 3", n)
		}
		if st := sys.list()[spec.Name]; st.State != task.StateGated {
			t.Errorf("state %s after a failed probe, want gated", st.State)
		}
		time.Sleep(15 * time.Minute) // probe at 50 min succeeds; slot at 60 min runs
		synctest.Wait()
		if n := len(stub.CallsTo(path)); n != 6 {
			t.Fatalf("%d calls, want 6 after the gate reopened", n)
		}
	})
}

// A manual run of a gated task is recorded as skipped, with the reason.
func TestTriggerGatedTaskIsSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stub := newStub(false)
		spec := defaultSpec(t, "check-disengaged-free-trial-users")
		sys := startSystem(t, []task.Spec{spec}, stubClient(t, stub, nil), supervisor.WithManual())
		defer sys.stop()
		sys.request(supervisor.TriggerTask{Name: spec.Name})
		r := waitRecords(t, sys, spec.Name, 1)[0]
		if r.Outcome != task.OutcomeSkipped || !strings.Contains(r.Err, "email service is not configured") {
			t.Errorf("record %+v", r)
		}
		if n := len(stub.CallsTo("/check_disengaged_free_trial_users")); n != 0 {
			t.Errorf("%d calls", n)
		}
	})
}

// Transient failures are retried (503, 429 with Retry-After); 400 is not;
// a reply slower than the timeout fails the run; malformed replies fail the
// run with the status and the start of the body, never a crash.
func TestFailuresAndRetries(t *testing.T) {
	const path = "/check_expired_purchases"
	cases := []struct {
		name     string
		faults   []mojodexstub.Fault
		outcome  task.Outcome
		calls    int
		errHas   string
		minSpent time.Duration
	}{
		{name: "503 then 200", faults: []mojodexstub.Fault{{Status: 503}}, outcome: task.OutcomeOK, calls: 3},
		{name: "429 with Retry-After", faults: []mojodexstub.Fault{{Status: 429, RetryAfter: "3"}}, outcome: task.OutcomeOK, calls: 3, minSpent: 3 * time.Second},
		{name: "400 not retried", faults: []mojodexstub.Fault{{Status: 400, Body: `{"error":"bad"}`}}, outcome: task.OutcomeFailed, calls: 1, errHas: "400"},
		{name: "503 three times", faults: []mojodexstub.Fault{{Status: 503}, {Status: 503}, {Status: 503}}, outcome: task.OutcomeFailed, calls: 3, errHas: "503"},
		{name: "slower than the timeout", faults: []mojodexstub.Fault{{Delay: time.Minute}}, outcome: task.OutcomeFailed, calls: 1, errHas: "deadline", minSpent: 30 * time.Second},
		{name: "HTML", faults: []mojodexstub.Fault{{Body: "<html>oops</html>"}}, outcome: task.OutcomeFailed, calls: 1, errHas: `HTTP 200: reply is not a JSON object: "<html>oops</html>"`},
		{name: "truncated JSON", faults: []mojodexstub.Fault{{Body: `{"purchase_pks": [1, 2`}}, outcome: task.OutcomeFailed, calls: 1, errHas: "not a JSON object"},
		{name: "wrong type", faults: []mojodexstub.Fault{{Body: `{"purchase_pks": "1,2"}`}}, outcome: task.OutcomeFailed, calls: 1, errHas: `"purchase_pks" is not a list`},
		{name: "missing list", faults: []mojodexstub.Fault{{Body: `{"other": []}`}}, outcome: task.OutcomeFailed, calls: 1, errHas: `no "purchase_pks" list`},
		{name: "JSON array", faults: []mojodexstub.Fault{{Body: `[1,2,3]`}}, outcome: task.OutcomeFailed, calls: 1, errHas: "not a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stub := newStub(true)
				stub.Inject(path, tc.faults...)
				spec := defaultSpec(t, "purchases-expiration-checker")
				sys := startSystem(t, []task.Spec{spec}, stubClient(t, stub, func(c *apiclient.Config) { c.Timeout = 30 * time.Second }), supervisor.WithManual())
				defer sys.stop()
				began := time.Now()
				sys.trigger(spec.Name)
				r := waitRecords(t, sys, spec.Name, 1)[0]
				if r.Outcome != tc.outcome || !strings.Contains(r.Err, tc.errHas) {
					t.Errorf("record %+v, want %s with error containing %q", r, tc.outcome, tc.errHas)
				}
				if n := len(stub.CallsTo(path)); n != tc.calls {
					t.Errorf("%d calls, want %d", n, tc.calls)
				}
				if spent := r.Start.Add(r.Duration).Sub(began); spent < tc.minSpent {
					t.Errorf("run took %v, want at least %v", spent, tc.minSpent)
				}
			})
		})
	}
}

// The run history keeps the last 20 runs; GetTask of an unknown task is an error.
func TestHistoryAndUnknownTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stub := newStub(true)
		spec := defaultSpec(t, "extract-todos")
		spec.Every = time.Minute
		sys := startSystem(t, []task.Spec{spec}, stubClient(t, stub, nil))
		defer sys.stop()
		time.Sleep(25*time.Minute + time.Second)
		synctest.Wait()
		reply := sys.request(supervisor.GetTask{Name: spec.Name}).(supervisor.TaskReply)
		if reply.Err != nil || len(reply.Task.History) != supervisor.HistorySize {
			t.Fatalf("history of %d runs (err %v), want %d", len(reply.Task.History), reply.Err, supervisor.HistorySize)
		}
		last := reply.Task.History[len(reply.Task.History)-1]
		if reply.Task.Last == nil || !reply.Task.Last.Slot.Equal(last.Slot) || last.Slot.Minute()%60 != 25 {
			t.Errorf("last run %+v", reply.Task.Last)
		}
		if want := time.Now().Truncate(time.Minute).Add(time.Minute); !reply.Task.Next.Equal(want) {
			t.Errorf("next %v, want %v", reply.Task.Next, want)
		}
		bad := sys.request(supervisor.GetTask{Name: "nope"}).(supervisor.TaskReply)
		if bad.Err == nil || !strings.Contains(bad.Err.Error(), `unknown task "nope"`) || !errors.Is(bad.Err, supervisor.ErrUnknownTask) {
			t.Errorf("unknown task: %v", bad.Err)
		}
	})
}
