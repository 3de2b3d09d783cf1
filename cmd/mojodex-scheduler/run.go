package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/config"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

// demoSecret is the secret shared by the demo stub and the scheduler.
const demoSecret = "demo-scheduler-secret"

type runCmd struct {
	taskFlag
	Demo bool `help:"Start a built-in stub of the Mojodex backend and background on loopback and run against it, every task firing at start."`
}

// reload re-reads the task file (or the embedded defaults) and hands the new
// set to the supervisor. An invalid file changes nothing.
func (r *runCmd) reload(a *appEnv, engine *actor.Engine, pid *actor.PID, cfg config.Config, log zerolog.Logger) {
	path := r.Tasks
	if path == "" {
		path = cfg.Tasks
	}
	var specs []task.Spec
	var err error
	if path != "" {
		specs, err = task.LoadFile(path)
	} else {
		specs, err = task.Defaults()
	}
	if err == nil && r.Demo {
		for i := range specs {
			specs[i].RunOnStart = true
		}
	}
	if err == nil {
		err = cfg.CheckURIs(needsSecret(specs))
	}
	if err != nil {
		log.Error().Err(err).Msg("SIGHUP: reload refused; the running task set is unchanged")
		return
	}
	v, err := engine.Request(pid, supervisor.Reload{Tasks: specs}, 10*time.Second).Result()
	if err != nil {
		log.Error().Err(err).Msg("SIGHUP: the supervisor did not answer the reload")
		return
	}
	if rep := v.(supervisor.ReloadReply); rep.Err != nil {
		log.Error().Err(rep.Err).Msg("SIGHUP: reload refused; the running task set is unchanged")
	}
}

// Run serves until SIGINT or SIGTERM, then drains within the shutdown timeout.
func (r *runCmd) Run(a *appEnv) error {
	cfg, specs, err := a.load(r.Tasks)
	if err != nil {
		return err
	}
	log := a.logger(cfg)
	if r.Demo {
		stub, err := mojodexstub.Start(mojodexstub.Options{
			Secret:          demoSecret,
			EmailConfigured: true,
			Backlog:         mojodexstub.DefaultBacklog(),
			Latency:         20 * time.Millisecond,
		})
		if err != nil {
			return fmt.Errorf("demo stub: %w", err)
		}
		defer stub.Close()
		cfg.BackendURI, cfg.BackgroundURI, cfg.Secret = stub.BackendURL(), stub.BackgroundURL(), demoSecret
		for i := range specs {
			specs[i].RunOnStart = true
		}
		log.Info().Str("backend", cfg.BackendURI).Str("background", cfg.BackgroundURI).
			Msg("demo: serving a stub of the Mojodex services on loopback; every task fires now, then on its schedule")
	}
	if err := cfg.CheckURIs(needsSecret(specs)); err != nil {
		return err
	}
	client, err := newClient(cfg, log)
	if err != nil {
		return err
	}
	producer, err := supervisor.New(specs, client,
		supervisor.WithLogger(log),
		supervisor.WithGateInterval(cfg.GateInterval),
		supervisor.WithReloader(r.reloader(cfg)))
	if err != nil {
		return err
	}
	engine, err := newEngine(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pid := engine.Spawn(producer, supervisor.Kind, actor.WithID(supervisor.ID), actor.WithMaxRestarts(math.MaxInt32))
	log.Info().Int("tasks", len(specs)).Str("supervisor", pid.String()).Msg("mojodex-scheduler running")

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for waiting := true; waiting; {
		select {
		case <-hup:
			r.reload(a, engine, pid, cfg, log)
		case <-ctx.Done():
			waiting = false
		}
	}
	stop()
	log.Info().Dur("deadline", cfg.ShutdownTimeout).Msg("shutting down: timers stopped, waiting for runs in progress")
	if _, err := engine.Request(pid, supervisor.Drain{}, cfg.ShutdownTimeout).Result(); err != nil {
		log.Warn().Dur("deadline", cfg.ShutdownTimeout).Msg("runs still in progress at the shutdown deadline; cancelling them")
	}
	select {
	case <-engine.Poison(pid).Done():
	case <-time.After(5 * time.Second):
		log.Warn().Msg("actors did not stop within 5s; exiting anyway")
	}
	log.Info().Msg("stopped")
	return nil
}
