package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/task"
)

// sink records what the actor reports about one run.
type sink struct {
	mu       sync.Mutex
	progress []task.Progress
	results  []RunResult
	done     chan RunResult
	// panicOnProgress makes Progress panic (a bug in a sink crashes the actor).
	panicOnProgress bool
	// saves, when not nil, receives each checkpoint's saved callback
	// instead of Progress calling it at once (a store still writing).
	saves chan func()
}

func newSink() *sink { return &sink{done: make(chan RunResult, 4)} }

func (s *sink) Progress(p task.Progress, _ int, saved func()) {
	if s.panicOnProgress {
		panic("sink exploded")
	}
	s.mu.Lock()
	s.progress = append(s.progress, p)
	s.mu.Unlock()
	if s.saves != nil {
		s.saves <- saved
		return
	}
	saved()
}

func (s *sink) Finish(r RunResult) {
	s.mu.Lock()
	s.results = append(s.results, r)
	s.mu.Unlock()
	s.done <- r
}

// wait returns the run's result, failing the test if none comes within an
// hour of virtual time.
func (s *sink) wait(t *testing.T) RunResult {
	t.Helper()
	select {
	case r := <-s.done:
		return r
	case <-time.After(time.Hour):
		t.Fatal("the run never finished")
		return RunResult{}
	}
}

// finishes returns how many times Finish was called.
func (s *sink) finishes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.results)
}

func newEngine(t *testing.T) *actor.Engine {
	t.Helper()
	e, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// startActor spawns the API-client actor over a client that h answers
// (mod, when not nil, may change the client's configuration first).
func startActor(t *testing.T, h http.RoundTripper, mod func(*Config)) (*actor.Engine, *actor.PID) {
	t.Helper()
	e := newEngine(t)
	return e, e.Spawn(NewActor(fakeClient(t, h, mod), nil), "api")
}

// runReq is a run of one page (or paginated with p) to path on service.
func runReq(service task.Service, path string, p *task.Paginate, s RunSink) *RunRequest {
	return &RunRequest{
		Task: "t", Request: &task.Request{Service: service, Method: "POST", Path: path, Auth: true},
		Paginate: p, Slot: time.Unix(1_800_000_000, 0), Ctx: context.Background(), Sink: s,
	}
}

func stats(t *testing.T, e *actor.Engine, pid *actor.PID) Stats {
	t.Helper()
	v, err := e.Request(pid, Stats{}, time.Second).Result()
	if err != nil {
		t.Fatalf("Stats request: %v", err)
	}
	return v.(Stats)
}

// handler is an in-memory service: it records each request's body and
// answers with answer(path, n) where n counts that path's requests.
type handler struct {
	mu                    sync.Mutex
	bodies                map[string][]map[string]any
	keys                  map[string][]string
	hosts                 []string
	inFlight, maxInFlight map[string]int
	answer                func(r *http.Request, n int) (*http.Response, error)
}

func newHandler(answer func(r *http.Request, n int) (*http.Response, error)) *handler {
	return &handler{bodies: map[string][]map[string]any{}, keys: map[string][]string{},
		inFlight: map[string]int{}, maxInFlight: map[string]int{}, answer: answer}
}

func (h *handler) RoundTrip(r *http.Request) (*http.Response, error) {
	var body map[string]any
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		_ = json.Unmarshal(b, &body)
	}
	h.mu.Lock()
	n := len(h.bodies[r.URL.Path])
	h.bodies[r.URL.Path] = append(h.bodies[r.URL.Path], body)
	h.keys[r.URL.Path] = append(h.keys[r.URL.Path], r.Header.Get("Idempotency-Key"))
	h.hosts = append(h.hosts, r.URL.Host)
	h.inFlight[r.URL.Host]++
	h.maxInFlight[r.URL.Host] = max(h.maxInFlight[r.URL.Host], h.inFlight[r.URL.Host])
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inFlight[r.URL.Host]--
		h.mu.Unlock()
	}()
	return h.answer(r, n)
}

func (h *handler) calls(path string) ([]map[string]any, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies[path]), slices.Clone(h.keys[path])
}

// hang blocks until the request's context ends (a service that never answers).
func hang(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

func TestActorDrivesOffsetPaginationWithCheckpointsAndKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, n int) (*http.Response, error) {
			ids := make([]int, []int{50, 50, 7}[min(n, 2)])
			b, _ := json.Marshal(map[string]any{"user_ids": ids})
			return fakeResponse(r, 200, string(b)), nil
		})
		e, api := startActor(t, h, nil)
		s := newSink()
		p := &task.Paginate{Mode: task.ModeOffset, Size: 50, SizeField: "n_users", OffsetField: "offset", Result: "user_ids", MaxPages: 10}
		req := runReq(task.ServiceBackend, "/home_chat", p, s)
		e.Send(api, req)
		r := s.wait(t)
		if r.Outcome != task.OutcomeOK || r.Progress != (task.Progress{Pages: 3, Offset: 100, Items: 107}) || r.Status != 200 || r.Err != nil {
			t.Fatalf("result %+v", r)
		}
		if want := []task.Progress{{Pages: 1, Offset: 50, Items: 50}, {Pages: 2, Offset: 100, Items: 100}}; !slices.Equal(s.progress, want) {
			t.Errorf("checkpoints %v, want %v", s.progress, want)
		}
		bodies, keys := h.calls("/home_chat")
		for i, b := range bodies {
			if b["offset"] != float64(50*i) || b["n_users"] != 50.0 || b["datetime"] == nil {
				t.Errorf("page %d body %v", i+1, b)
			}
			if keys[i] != IdempotencyKey("t", req.Slot, i+1) {
				t.Errorf("page %d key %q, want the key of page %d", i+1, keys[i], i+1)
			}
		}
		if st := stats(t, e, api); st.Held != 0 || st.Waiting != 0 {
			t.Errorf("stats after the run: %+v", st)
		}
		<-e.Poison(api).Done()
	})
}

// The next page is requested only once the sink has saved the checkpoint
// of the previous one: a page answered is never requested again after a
// crash, however slow the store.
func TestActorWaitsForTheCheckpointBeforeTheNextPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, n int) (*http.Response, error) {
			ids := make([]int, []int{2, 2, 1}[min(n, 2)])
			b, _ := json.Marshal(map[string]any{"ids": ids})
			return fakeResponse(r, 200, string(b)), nil
		})
		e, api := startActor(t, h, nil)
		s := newSink()
		s.saves = make(chan func(), 1)
		e.Send(api, runReq(task.ServiceBackend, "/page", &task.Paginate{Mode: task.ModeOffset, Size: 2, SizeField: "n", OffsetField: "offset", Result: "ids", MaxPages: 5}, s))
		for page := 1; page <= 2; page++ {
			saved := <-s.saves
			time.Sleep(time.Minute) // the store takes its time
			synctest.Wait()
			if bodies, _ := h.calls("/page"); len(bodies) != page {
				t.Fatalf("%d pages requested before checkpoint %d was saved, want %d", len(bodies), page, page)
			}
			saved()
		}
		if r := s.wait(t); r.Outcome != task.OutcomeOK || r.Progress.Pages != 3 {
			t.Fatalf("result %+v", r)
		}
		<-e.Poison(api).Done()
	})
}

func TestActorResumesFromProgressAndStopsAtMaxPages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, n int) (*http.Response, error) {
			return fakeResponse(r, 200, `{"ids":[`+strings.TrimSuffix(strings.Repeat("1,", 5), ",")+`]}`), nil
		})
		e, api := startActor(t, h, nil)
		s := newSink()
		req := runReq(task.ServiceBackground, "/drain", &task.Paginate{Mode: task.ModeOffset, Size: 5, SizeField: "n", OffsetField: "offset", Result: "ids", MaxPages: 4}, s)
		req.From = task.Progress{Pages: 2, Offset: 10, Items: 10}
		e.Send(api, req)
		r := s.wait(t)
		if r.Outcome != task.OutcomeFailed || r.Progress.Pages != 4 || r.Progress.Items != 20 || !strings.Contains(r.Err.Error(), "max_pages (4)") {
			t.Fatalf("result %+v (%v)", r, r.Err)
		}
		bodies, keys := h.calls("/drain")
		if len(bodies) != 2 || bodies[0]["offset"] != 10.0 || keys[0] != IdempotencyKey("t", req.Slot, 3) {
			t.Errorf("resumed calls %v with keys %v: want 2 calls from offset 10, the first with page 3's key", bodies, keys)
		}
		<-e.Poison(api).Done()
	})
}

// A hung backend takes only the backend's in-flight budget: background
// calls go on at full speed (the bulkhead).
func TestActorHungServiceDoesNotStarveTheOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, _ int) (*http.Response, error) {
			if r.URL.Host == "mojodex_backend:5000" {
				return hang(r)
			}
			return fakeResponse(r, 200, `{}`), nil
		})
		e, api := startActor(t, h, func(cfg *Config) { cfg.MaxInFlight = 2; cfg.Timeout = 40 * time.Second })
		var hung []*sink
		for range 6 {
			s := newSink()
			hung = append(hung, s)
			e.Send(api, runReq(task.ServiceBackend, "/slow", nil, s))
		}
		start := time.Now()
		for i := range 20 {
			s := newSink()
			e.Send(api, runReq(task.ServiceBackground, "/fast", nil, s))
			if r := s.wait(t); r.Outcome != task.OutcomeOK {
				t.Fatalf("background run %d: %+v", i, r)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("20 background runs took %s of virtual time while the backend hung; want no wait at all", d)
		}
		synctest.Wait() // every attempt launched has reached the transport
		st := stats(t, e, api)
		if st.InFlight[task.ServiceBackend] != 2 || st.InFlight[task.ServiceBackground] != 0 || st.Waiting != 4 {
			t.Errorf("stats %+v: want the backend's 2 slots busy, 4 backend runs waiting", st)
		}
		h.mu.Lock()
		if h.maxInFlight["mojodex_backend:5000"] != 2 {
			t.Errorf("backend in flight at most %d, want 2", h.maxInFlight["mojodex_backend:5000"])
		}
		h.mu.Unlock()
		for _, s := range hung[:2] { // the first two time out after 40s, then the next two get their slots
			if r := s.wait(t); r.Outcome != task.OutcomeFailed || !strings.Contains(r.Err.Error(), "timed out after 40s") {
				t.Errorf("hung run: %+v (%v)", r, r.Err)
			}
		}
		<-e.Poison(api).Done()
	})
}

// A run sleeping before a retry, or waiting for a token, holds no slot: with
// one slot per service, a run whose first attempt got 503 + Retry-After 5s
// lets the next run through meanwhile.
func TestActorRetryBackoffHoldsNoSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, n int) (*http.Response, error) {
			if r.URL.Path == "/flaky" && n == 0 {
				return fakeResponse(r, 503, `{"error":"busy"}`, "Retry-After", "5"), nil
			}
			return fakeResponse(r, 200, `{}`), nil
		})
		e, api := startActor(t, h, func(cfg *Config) { cfg.MaxInFlight = 1; cfg.BackoffMax = 10 * time.Second })
		flaky, other := newSink(), newSink()
		start := time.Now()
		e.Send(api, runReq(task.ServiceBackend, "/flaky", nil, flaky))
		synctest.Wait()
		e.Send(api, runReq(task.ServiceBackend, "/other", nil, other))
		if r := other.wait(t); r.Outcome != task.OutcomeOK || time.Since(start) != 0 {
			t.Fatalf("other run: %+v after %s; want ok at once while /flaky sleeps", r, time.Since(start))
		}
		if r := flaky.wait(t); r.Outcome != task.OutcomeOK || time.Since(start) < 5*time.Second {
			t.Fatalf("flaky run: %+v after %s; want ok after Retry-After", r, time.Since(start))
		}
		<-e.Poison(api).Done()
	})
}

func TestActorRateLimitShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, _ int) (*http.Response, error) { return fakeResponse(r, 200, `{}`), nil })
		e, api := startActor(t, h, func(cfg *Config) { cfg.Rate = 4; cfg.Burst = 2; cfg.MaxInFlight = 8 })
		start := time.Now()
		var sinks []*sink
		for i := range 10 {
			s := newSink()
			sinks = append(sinks, s)
			service := task.Services[i%2] // both services share the limiter
			e.Send(api, runReq(service, "/x", nil, s))
		}
		for _, s := range sinks {
			s.wait(t)
		}
		if got, want := time.Since(start), 2*time.Second; got != want { // (10-2)/4
			t.Fatalf("took %v, want %v", got, want)
		}
		<-e.Poison(api).Done()
	})
}

// Beyond QueueSize waiting runs, a run is skipped at once.
func TestActorQueueIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, _ int) (*http.Response, error) { return hang(r) })
		e, api := startActor(t, h, func(cfg *Config) { cfg.MaxInFlight = 1; cfg.QueueSize = 3 })
		for range 4 { // one in flight, three waiting
			e.Send(api, runReq(task.ServiceBackend, "/x", nil, newSink()))
		}
		over := newSink()
		e.Send(api, runReq(task.ServiceBackend, "/x", nil, over))
		r := over.wait(t)
		if r.Outcome != task.OutcomeSkipped || r.Reason != task.SkipQueueFull || !strings.Contains(r.Err.Error(), "QUEUE_SIZE") {
			t.Fatalf("run beyond the queue: %+v (%v)", r, r.Err)
		}
		if st := stats(t, e, api); st.Waiting != 3 || st.Held != 4 {
			t.Errorf("stats %+v", st)
		}
		e.Stop(api)
	})
}

// The queue bound is per service too: runs piling up behind a hung backend
// fill the backend's queue only, and background runs are still taken and
// answered.
func TestActorQueueBoundPerService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, _ int) (*http.Response, error) {
			if r.URL.Host == "mojodex_backend:5000" {
				return hang(r)
			}
			return fakeResponse(r, 200, `{}`), nil
		})
		e, api := startActor(t, h, func(cfg *Config) { cfg.MaxInFlight = 1; cfg.QueueSize = 3 })
		for range 4 { // one in flight, three waiting
			e.Send(api, runReq(task.ServiceBackend, "/slow", nil, newSink()))
		}
		for i := range 5 {
			s := newSink()
			e.Send(api, runReq(task.ServiceBackground, "/fast", nil, s))
			if r := s.wait(t); r.Outcome != task.OutcomeOK {
				t.Fatalf("background run %d while the backend's queue is full: %+v (%v)", i, r, r.Err)
			}
		}
		over := newSink()
		e.Send(api, runReq(task.ServiceBackend, "/slow", nil, over))
		if r := over.wait(t); r.Outcome != task.OutcomeSkipped || r.Reason != task.SkipQueueFull || !strings.Contains(r.Err.Error(), "backend service") {
			t.Fatalf("backend run beyond its queue: %+v (%v)", r, r.Err)
		}
		e.Stop(api)
	})
}

// A run past its deadline is failed, never sent; an attempt never outlives
// the deadline; a run whose owner cancelled it is dropped without a result.
func TestActorDeadlineAndCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, _ int) (*http.Response, error) { return hang(r) })
		e, api := startActor(t, h, func(cfg *Config) { cfg.MaxInFlight = 1; cfg.Timeout = time.Hour })
		start := time.Now()
		first, queued, cancelled := newSink(), newSink(), newSink()
		r1 := runReq(task.ServiceBackend, "/x", nil, first)
		r1.Deadline = start.Add(10 * time.Second)
		r2 := runReq(task.ServiceBackend, "/x", nil, queued)
		r2.Deadline = start.Add(5 * time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		r3 := runReq(task.ServiceBackend, "/x", nil, cancelled)
		r3.Ctx = ctx
		e.Send(api, r1)
		e.Send(api, r2)
		e.Send(api, r3)
		cancel()
		if r := first.wait(t); r.Outcome != task.OutcomeFailed || time.Since(start) != 10*time.Second {
			t.Fatalf("first run: %+v (%v) after %s; want failed at its 10s deadline", r, r.Err, time.Since(start))
		}
		if r := queued.wait(t); r.Outcome != task.OutcomeFailed || !strings.Contains(r.Err.Error(), "deadline exceeded") {
			t.Fatalf("queued run: %+v (%v); want failed for its deadline, never sent", r, r.Err)
		}
		synctest.Wait()
		if n := cancelled.finishes(); n != 0 {
			t.Errorf("a cancelled run was reported %d times, want 0", n)
		}
		if bodies, _ := h.calls("/x"); len(bodies) != 1 {
			t.Errorf("%d calls, want only the first run's", len(bodies))
		}
		<-e.Poison(api).Done()
	})
}

// A panic in the actor fails every run it holds at once and reports the
// crash; nothing is left waiting.
func TestActorCrashFailsItsRunsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, n int) (*http.Response, error) {
			if r.URL.Path == "/hang" {
				return hang(r)
			}
			return fakeResponse(r, 200, `{"ids":[1,2]}`), nil
		})
		c := fakeClient(t, h, func(cfg *Config) { cfg.MaxInFlight = 1 })
		e := newEngine(t)
		crashed := make(chan string, 1)
		api := e.Spawn(NewActor(c, func(_ *actor.Context, reason any, _ []byte) { crashed <- fmt.Sprint(reason) }), "api")
		waiting := newSink()
		e.Send(api, runReq(task.ServiceBackground, "/hang", nil, newSink()))
		e.Send(api, runReq(task.ServiceBackground, "/hang", nil, waiting))
		bad := newSink()
		bad.panicOnProgress = true
		e.Send(api, runReq(task.ServiceBackend, "/page", &task.Paginate{Mode: task.ModeDrain, Size: 2, SizeField: "n", Result: "ids", MaxPages: 5}, bad))
		if reason := <-crashed; reason != "sink exploded" {
			t.Fatalf("crash reason %q", reason)
		}
		if r := waiting.wait(t); r.Outcome != task.OutcomeFailed || !errors.Is(r.Err, ErrStopped) {
			t.Fatalf("waiting run after the crash: %+v (%v)", r, r.Err)
		}
		<-e.Poison(api).Done()
	})
}

// Redirects are answers, never followed: the secret never reaches the
// other address, and the error says where the redirect pointed.
func TestActorRefusesRedirects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, _ int) (*http.Response, error) {
			return fakeResponse(r, 307, ``, "Location", "http://127.0.0.1:9999/steal"), nil
		})
		e, api := startActor(t, h, nil)
		s := newSink()
		e.Send(api, runReq(task.ServiceBackend, "/x", nil, s))
		r := s.wait(t)
		if r.Outcome != task.OutcomeFailed || r.Status != 307 || !strings.Contains(r.Err.Error(), "redirect to http://127.0.0.1:9999/steal refused") {
			t.Fatalf("result %+v (%v)", r, r.Err)
		}
		h.mu.Lock()
		if !slices.Equal(h.hosts, []string{"mojodex_backend:5000"}) {
			t.Errorf("requests went to %v; want only the backend", h.hosts)
		}
		h.mu.Unlock()
		<-e.Poison(api).Done()
	})
}

// A 200 reply that echoes the secret and fails parsing: the error quoting
// it never holds the secret.
func TestActorRedactsEchoedSecret(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler(func(r *http.Request, _ int) (*http.Response, error) {
			return fakeResponse(r, 200, `<html>your Authorization was `+r.Header.Get("Authorization")+`</html>`), nil
		})
		e, api := startActor(t, h, nil)
		s := newSink()
		e.Send(api, runReq(task.ServiceBackend, "/x", nil, s))
		r := s.wait(t)
		if r.Outcome != task.OutcomeFailed || strings.Contains(r.Err.Error(), "fake-secret") || !strings.Contains(r.Err.Error(), "[REDACTED]") {
			t.Fatalf("error %q: want the snippet with the secret redacted", r.Err)
		}
		<-e.Poison(api).Done()
	})
}

func TestActorStopTwiceDoesNotPanic(t *testing.T) {
	c := fakeClient(t, rtFunc(nil), nil)
	g := NewActor(c, nil)().(*crashGuard)
	g.a.stop()
	g.a.stop()
	if !g.a.stopped {
		t.Fatal("not stopped")
	}
}
