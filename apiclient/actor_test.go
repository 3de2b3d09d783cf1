package apiclient

import (
	"context"
	"errors"
	"fmt"
	"github.com/mojodex/mojodex-scheduler/task"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anthdm/hollywood/actor"
)

// received is a Result as seen by the test actor.
type received struct {
	res    Result
	sender *actor.PID
}

// sendCalls is the message that makes the test actor send Calls.
type sendCalls struct {
	to    *actor.PID
	calls []Call
	// viaSender leaves ReplyTo nil for odd IDs (the actor then answers the
	// Call's sender).
	viaSender bool
}

// spawnCollector spawns a test actor that sends Calls on request and
// forwards every Result it gets to the returned channel.
func spawnCollector(e *actor.Engine) (*actor.PID, chan received) {
	ch := make(chan received, 1024)
	pid := e.SpawnFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case sendCalls:
			for _, call := range m.calls {
				if m.viaSender && call.ID%2 == 1 {
					call.ReplyTo = nil
				} else {
					call.ReplyTo = c.PID()
				}
				c.Send(m.to, call)
			}
		case Result:
			ch <- received{res: m, sender: c.Sender()}
		}
	}, "collector")
	return pid, ch
}

func newEngine(t *testing.T) *actor.Engine {
	t.Helper()
	e, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func calls(n int, path func(id uint64) string) []Call {
	out := make([]Call, n)
	for i := range out {
		id := uint64(i + 1)
		out[i] = Call{ID: id, Request: Request{Task: "t", Service: task.ServiceBackend, Method: "POST", Path: path(id)}}
	}
	return out
}

func collect(t *testing.T, ch chan received, n int) []received {
	t.Helper()
	out := make([]received, 0, n)
	for len(out) < n {
		select {
		case r := <-ch:
			out = append(out, r)
		case <-time.After(time.Hour): // virtual time: only fires on a deadlock-free hang
			t.Fatalf("got %d of %d results", len(out), n)
		}
	}
	synctest.Wait()
	select {
	case r := <-ch:
		t.Fatalf("extra result %+v", r.res)
	default:
	}
	return out
}

func stats(t *testing.T, e *actor.Engine, pid *actor.PID) Stats {
	t.Helper()
	v, err := e.Request(pid, Stats{}, time.Second).Result()
	if err != nil {
		t.Fatalf("Stats request: %v", err)
	}
	s, ok := v.(Stats)
	if !ok {
		t.Fatalf("Stats reply is %T", v)
	}
	return s
}

func stopAll(e *actor.Engine, pids ...*actor.PID) {
	for _, pid := range pids {
		<-e.Poison(pid).Done()
	}
}

func TestActorAllResultsOnceAndInFlightCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, maxInFlight = 50, 3
		var conc concurrency
		rt := rtFunc(func(req *http.Request) (*http.Response, error) {
			conc.enter()
			defer conc.leave()
			time.Sleep(100 * time.Millisecond)
			return fakeResponse(req, 200, req.URL.Path), nil
		})
		c := fakeClient(t, rt, func(cfg *Config) { cfg.MaxInFlight = maxInFlight })
		e := newEngine(t)
		api := e.Spawn(NewActor(c), "apiclient")
		col, ch := spawnCollector(e)

		start := time.Now()
		e.Send(col, sendCalls{to: api, calls: calls(n, func(id uint64) string { return fmt.Sprintf("/p/%d", id) }), viaSender: true})
		got := collect(t, ch, n)
		if elapsed, want := time.Since(start), time.Duration((n+maxInFlight-1)/maxInFlight)*100*time.Millisecond; elapsed != want {
			t.Fatalf("took %v, want %v", elapsed, want)
		}
		seen := map[uint64]bool{}
		for _, r := range got {
			if seen[r.res.ID] {
				t.Fatalf("ID %d answered twice", r.res.ID)
			}
			seen[r.res.ID] = true
			if r.res.Err != nil || string(r.res.Response.Body) != fmt.Sprintf("/p/%d", r.res.ID) {
				t.Fatalf("result %d: err %v body %q", r.res.ID, r.res.Err, r.res.Response.Body)
			}
			if r.sender == nil || r.sender.String() != api.String() {
				t.Fatalf("result %d sent by %v, want the API actor %v", r.res.ID, r.sender, api)
			}
		}
		if len(seen) != n {
			t.Fatalf("%d distinct IDs", len(seen))
		}
		if m := conc.max.Load(); m != maxInFlight {
			t.Fatalf("max in flight %d, want %d", m, maxInFlight)
		}
		if s := stats(t, e, api); s != (Stats{Done: n}) {
			t.Fatalf("stats %+v", s)
		}
		stopAll(e, api, col)
	})
}

func TestActorQueueIsFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu    sync.Mutex
			order []string
		)
		rt := rtFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			order = append(order, req.URL.Path)
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			return fakeResponse(req, 200, `{}`), nil
		})
		c := fakeClient(t, rt, func(cfg *Config) { cfg.MaxInFlight = 1 })
		e := newEngine(t)
		api := e.Spawn(NewActor(c), "apiclient")
		col, ch := spawnCollector(e)
		const n = 20
		e.Send(col, sendCalls{to: api, calls: calls(n, func(id uint64) string { return fmt.Sprintf("/%d", id) })})
		got := collect(t, ch, n)
		for i, r := range got {
			if r.res.ID != uint64(i+1) {
				t.Fatalf("result %d has ID %d", i, r.res.ID)
			}
			if want := fmt.Sprintf("/%d", i+1); order[i] != want {
				t.Fatalf("call %d went out as %s, want %s", i, order[i], want)
			}
		}
		stopAll(e, api, col)
	})
}

func TestActorStatsAndStopWithQueuedCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var started atomic.Int32
		rt := rtFunc(func(req *http.Request) (*http.Response, error) {
			started.Add(1)
			<-req.Context().Done() // never answers
			return nil, req.Context().Err()
		})
		c := fakeClient(t, rt, func(cfg *Config) { cfg.MaxInFlight = 2 })
		e := newEngine(t)
		// The middleware delivers Stopped twice, as the engine may.
		twice := func(next actor.ReceiveFunc) actor.ReceiveFunc {
			return func(ctx *actor.Context) {
				next(ctx)
				if _, ok := ctx.Message().(actor.Stopped); ok {
					next(ctx)
				}
			}
		}
		api := e.Spawn(NewActor(c), "apiclient", actor.WithMiddleware(twice))
		col, ch := spawnCollector(e)
		const n = 6
		e.Send(col, sendCalls{to: api, calls: calls(n, func(uint64) string { return "/slow" })})
		synctest.Wait()
		if s := stats(t, e, api); s != (Stats{InFlight: 2, Queued: 4}) {
			t.Fatalf("stats %+v", s)
		}
		<-e.Poison(api).Done()
		got := collect(t, ch, n)
		var stopped, cancelled int
		for _, r := range got {
			switch {
			case r.res.Err == ErrStopped:
				stopped++
				if r.res.ID <= 2 {
					t.Errorf("call %d was in flight but got a queued ErrStopped", r.res.ID)
				}
			case errors.Is(r.res.Err, ErrStopped) && errors.Is(r.res.Err, context.Canceled):
				cancelled++
				if r.res.Response.Attempts != 1 {
					t.Errorf("in-flight call %d: %+v", r.res.ID, r.res.Response)
				}
			default:
				t.Errorf("result %d: unexpected err %v", r.res.ID, r.res.Err)
			}
		}
		if stopped != 4 || cancelled != 2 || started.Load() != 2 {
			t.Fatalf("stopped %d, cancelled %d, started %d", stopped, cancelled, started.Load())
		}
		stopAll(e, col)
	})
}

func TestActorSurvivesPanickingRoundTripper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := rtFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Path == "/boom" {
				panic("transport exploded")
			}
			return fakeResponse(req, 200, `{}`), nil
		})
		c := fakeClient(t, rt, func(cfg *Config) { cfg.MaxInFlight = 1 })
		e := newEngine(t)
		api := e.Spawn(NewActor(c), "apiclient")
		col, ch := spawnCollector(e)
		e.Send(col, sendCalls{to: api, calls: calls(4, func(id uint64) string {
			if id%2 == 1 {
				return "/boom"
			}
			return "/ok"
		})})
		got := collect(t, ch, 4)
		for _, r := range got {
			if r.res.ID%2 == 1 {
				if r.res.Err == nil || !strings.Contains(r.res.Err.Error(), "panic") || !strings.Contains(r.res.Err.Error(), "transport exploded") {
					t.Fatalf("result %d: err %v, want the recovered panic", r.res.ID, r.res.Err)
				}
			} else if r.res.Err != nil {
				t.Fatalf("result %d: %v", r.res.ID, r.res.Err)
			}
		}
		// Still running: it answers and performs more calls.
		if s := stats(t, e, api); s != (Stats{Done: 4}) {
			t.Fatalf("stats %+v", s)
		}
		e.Send(col, sendCalls{to: api, calls: calls(2, func(uint64) string { return "/ok" })})
		for _, r := range collect(t, ch, 2) {
			if r.res.Err != nil {
				t.Fatalf("after panic: %v", r.res.Err)
			}
		}
		stopAll(e, api, col)
	})
}

func TestActorCallAfterStopAndStopTwice(t *testing.T) {
	c := fakeClient(t, rtFunc(nil), nil)
	a := NewActor(c)().(*apiActor)
	// Stopped before Started, twice: no panic.
	a.stop()
	a.stop()
	if !a.stopped {
		t.Fatal("not stopped")
	}
}

func TestActorRateLimitShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := rtFunc(func(req *http.Request) (*http.Response, error) {
			return fakeResponse(req, 200, `{}`), nil
		})
		c := fakeClient(t, rt, func(cfg *Config) {
			cfg.Rate = 4
			cfg.Burst = 2
			cfg.MaxInFlight = 8
		})
		e := newEngine(t)
		api := e.Spawn(NewActor(c), "apiclient")
		col, ch := spawnCollector(e)
		start := time.Now()
		e.Send(col, sendCalls{to: api, calls: calls(10, func(uint64) string { return "/x" })})
		collect(t, ch, 10)
		if got, want := time.Since(start), 2*time.Second; got != want { // (10-2)/4
			t.Fatalf("took %v, want %v", got, want)
		}
		stopAll(e, api, col)
	})
}
