package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/bench/harness"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/task"
)

// API scenario settings.
const (
	apiMaxInFlight = 64
	apiBurst       = 5
	// apiOutstanding is how many calls the load generator keeps queued at
	// the API-client actor: twice its in-flight cap, so it never idles.
	apiOutstanding = 2 * apiMaxInFlight
	// apiWarmup is excluded from the unthrottled rate (connection set-up).
	apiWarmup = 500 * time.Millisecond
)

// minimalReply is what the minimal loopback server answers every call with.
const minimalReply = `{"ids":[]}`

// startMinimal serves minimalReply on a loopback port and returns its URL
// and a function that stops it.
func startMinimal() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, minimalReply)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// callLog is an apiclient.Observer that keeps the start instant and the
// duration of every attempt in preallocated arrays (lock-free).
type callLog struct {
	starts []time.Time
	next   atomic.Int64
	dur    *harness.Histogram
	errs   atomic.Int64
}

var _ apiclient.Observer = (*callLog)(nil)

// CallDone implements apiclient.Observer: the attempt started d ago (the
// client measures d from just before its HTTP round trip, after the rate
// limiter admitted it).
func (l *callLog) CallDone(_ apiclient.Request, _ int, err error, d time.Duration) {
	now := time.Now()
	if i := l.next.Add(1) - 1; i < int64(len(l.starts)) {
		l.starts[i] = now.Add(-d)
	}
	l.dur.Record(d)
	if err != nil {
		l.errs.Add(1)
	}
}

// Retried implements apiclient.Observer.
func (l *callLog) Retried(apiclient.Request, int, string) {}

// RateWaited implements apiclient.Observer.
func (l *callLog) RateWaited(apiclient.Request, time.Duration) {}

// loadgen is an actor that keeps apiOutstanding one-page runs queued at the
// API-client actor until stopping is set, counting the answers that arrive
// inside the measured window.
type loadgen struct {
	api         *actor.PID
	req         *task.Request
	from, until time.Time
	stopping    *atomic.Bool
	done        chan struct{}

	outstanding int
	nextID      uint64
	inWindow    int
	errs        int
	firstErr    error
	answered    int
}

func (g *loadgen) send(c *actor.Context) {
	g.nextID++
	g.outstanding++
	c.Send(g.api, &apiclient.RunRequest{
		Task: "bench", Request: g.req, Slot: time.Unix(0, int64(g.nextID)), Ctx: context.Background(),
		Sink: loadSink{engine: c.Engine(), to: c.PID()},
	})
}

// loadSink reports a run's end to the load generator.
type loadSink struct {
	engine *actor.Engine
	to     *actor.PID
}

func (loadSink) Progress(_ task.Progress, _ int, saved func()) { saved() }
func (s loadSink) Finish(r apiclient.RunResult)                { s.engine.Send(s.to, r) }

// Receive implements actor.Receiver.
func (g *loadgen) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case actor.Started:
		for range apiOutstanding {
			g.send(c)
		}
	case apiclient.RunResult:
		g.outstanding--
		g.answered++
		if m.Err != nil {
			g.errs++
			if g.firstErr == nil {
				g.firstErr = m.Err
			}
		}
		if now := time.Now(); !now.Before(g.from) && now.Before(g.until) {
			g.inWindow++
		}
		if !g.stopping.Load() {
			g.send(c)
		} else if g.outstanding == 0 {
			close(g.done)
		}
	}
}

// runAPI measures the API-client actor's call rate against a loopback
// server. Variants: unlimited (rate limit off, minimal server), unlimited-stub
// (rate limit off, mojodexstub's POST /relaunch_locked_workflow_step_executions
// with the secret), rate-100 and rate-1000 (the limit at 100/s and 1000/s,
// burst 5, minimal server).
func runAPI(variant string, d time.Duration, p profiles) harness.Result {
	res := harness.Result{Scenario: 5, Scheduler: "ours", Variant: variant, Duration: d,
		Burst: apiBurst, MaxInFlight: apiMaxInFlight}
	var (
		url  string
		stop func()
		err  error
		req  = &task.Request{Service: task.ServiceBackend, Method: http.MethodPost, Path: "/bench"}
	)
	switch variant {
	case "unlimited", "unlimited-stub":
		res.Rate = -1
	case "rate-100":
		res.Rate = 100
	case "rate-1000":
		res.Rate = 1000
	default:
		res.Error = fmt.Sprintf("unknown variant %q (unlimited, unlimited-stub, rate-100, rate-1000)", variant)
		return res
	}
	if variant == "unlimited-stub" {
		var stub *mojodexstub.Stub
		stub, err = mojodexstub.Start(mojodexstub.Options{Secret: benchSecret})
		if err == nil {
			url, stop = stub.BackendURL(), func() { _ = stub.Close() }
		}
		req.Path, req.Auth = "/relaunch_locked_workflow_step_executions", true
	} else {
		url, stop, err = startMinimal()
	}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer stop()
	capacity := 4_000_000
	if res.Rate > 0 {
		capacity = int(res.Rate*(d.Seconds()+5)) + 10_000
	}
	log := &callLog{starts: make([]time.Time, capacity), dur: harness.NewHistogram()}
	client, err := apiclient.NewClient(apiclient.Config{
		BackendURL: url, BackgroundURL: url, Secret: benchSecret,
		Rate: res.Rate, Burst: apiBurst, MaxInFlight: apiMaxInFlight,
		Observer: log,
	})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		res.Error = err.Error()
		return res
	}
	api := engine.Spawn(apiclient.NewActor(client, nil), "api")
	warm := apiWarmup
	if res.Rate > 0 {
		warm = 0 // the limiter is checked from its very first call
	}
	begin := time.Now()
	gen := &loadgen{api: api, req: req, from: begin.Add(warm), until: begin.Add(warm + d),
		stopping: new(atomic.Bool), done: make(chan struct{})}
	before := harness.Self()
	stopCPU := p.startCPU()
	lg := engine.Spawn(func() actor.Receiver { return gen }, "loadgen")
	time.Sleep(time.Until(gen.until))
	gen.stopping.Store(true)
	after := harness.Self()
	stopCPU()
	select {
	case <-gen.done:
	case <-time.After(30 * time.Second):
		res.Notes = append(res.Notes, "calls still outstanding 30 s after the window")
	}
	p.writeHeap()
	engine.Poison(lg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	<-engine.PoisonCtx(ctx, api).Done()
	cancel()
	win := after.Sub(before)
	res.Window = after.At.Sub(before.At)
	res.CPUWindow = win.CPU
	res.WakeWindow = win.Voluntary
	res.Calls = gen.inWindow
	res.Errors = gen.errs
	if gen.firstErr != nil {
		res.Notes = append(res.Notes, "first error: "+gen.firstErr.Error())
	}
	res.CallsPerSec = float64(gen.inWindow) / d.Seconds()
	res.CallP50, res.CallP99 = log.dur.Quantile(0.5), log.dur.Quantile(0.99)
	if res.Rate > 0 {
		n := int(min(log.next.Load(), int64(len(log.starts))))
		rc := harness.CheckRate(log.starts[:n], res.Rate, apiBurst)
		res.RateCheck = &rc
		res.CallsPerSec = rc.Achieved
		res.Calls = rc.Calls
	}
	if n := log.next.Load(); n > int64(len(log.starts)) {
		res.Notes = append(res.Notes, fmt.Sprintf("%d attempts not timestamped (log full)", n-int64(len(log.starts))))
	}
	if res.Errors > 0 {
		res.Error = errors.Join(fmt.Errorf("%d calls failed", res.Errors), gen.firstErr).Error()
	}
	return res
}
