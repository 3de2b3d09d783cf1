package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/go-co-op/gocron/v2"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/bench/harness"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/robfig/cron/v3"
)

// benchSecret is the shared secret between the benchmark's client and stub.
const benchSecret = "bench-secret"

// runIdle measures the CPU time of a scheduler that has nothing due: ours
// with the seven default tasks (every 10 min to 24 h, anchored at start)
// against the loopback stub, the peers with seven no-op jobs at the same
// periods, and "none" (no scheduler at all: the Go runtime's own floor).
//
// The idle window opens after warm-up (our gated tasks probe the backend
// once at start).
func runIdle(scheduler string, window, warmup time.Duration, p profiles) harness.Result {
	res := harness.Result{Scenario: 4, Scheduler: scheduler, Duration: window}
	specs, err := task.Defaults()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.N = len(specs)
	var (
		stop = func() error { return nil }
		stub *mojodexstub.Stub
	)
	switch scheduler {
	case "ours":
		stub, err = mojodexstub.Start(mojodexstub.Options{Secret: benchSecret})
		if err != nil {
			res.Error = err.Error()
			return res
		}
		defer stub.Close()
		client, err := apiclient.NewClient(apiclient.Config{
			BackendURL: stub.BackendURL(), BackgroundURL: stub.BackgroundURL(), Secret: benchSecret,
		})
		if err != nil {
			res.Error = err.Error()
			return res
		}
		producer, err := supervisor.New(specs, client, supervisor.WithStore(store.NewMemory()))
		if err != nil {
			res.Error = err.Error()
			return res
		}
		engine, err := actor.NewEngine(actor.NewEngineConfig())
		if err != nil {
			res.Error = err.Error()
			return res
		}
		pid := supervisor.Spawn(engine, producer)
		stop = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			<-engine.PoisonCtx(ctx, pid).Done()
			return ctx.Err()
		}
	case "robfig":
		c := cron.New(cron.WithSeconds(), cron.WithLogger(cron.DiscardLogger))
		for _, s := range specs {
			if _, err := c.AddFunc("@every "+s.Every.String(), func() {}); err != nil {
				res.Error = err.Error()
				return res
			}
		}
		c.Start()
		stop = func() error { <-c.Stop().Done(); return nil }
	case "gocron":
		s, err := gocron.NewScheduler()
		if err != nil {
			res.Error = err.Error()
			return res
		}
		for _, sp := range specs {
			if _, err := s.NewJob(gocron.DurationJob(sp.Every), gocron.NewTask(func() {})); err != nil {
				res.Error = err.Error()
				return res
			}
		}
		s.Start()
		stop = s.Shutdown
	case "none":
		res.N = 0
	default:
		res.Error = fmt.Sprintf("unknown scheduler %q (ours, robfig, gocron, none)", scheduler)
		return res
	}
	time.Sleep(warmup)
	calls0 := 0
	if stub != nil {
		calls0 = len(stub.Calls())
	}
	before := harness.Self()
	stopCPU := p.startCPU()
	time.Sleep(window)
	after := harness.Self()
	stopCPU()
	if stub != nil {
		res.StubCalls = len(stub.Calls()) - calls0
		if calls0 > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%d stub calls before the window (gate probes at start)", calls0))
		}
	}
	win := after.Sub(before)
	res.Window = after.At.Sub(before.At)
	res.CPUWindow = win.CPU
	res.WakeWindow = win.Voluntary
	res.CPUPerIdleM = time.Duration(float64(win.CPU) * float64(time.Minute) / float64(res.Window))
	res.Goroutines = runtime.NumGoroutine()
	p.writeHeap()
	if err := stop(); err != nil {
		res.Notes = append(res.Notes, "stop: "+err.Error())
	}
	return res
}
