package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/config"
	"github.com/mojodex/mojodex-scheduler/metrics"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// demoSecret is the secret shared by the demo stub and the scheduler.
const demoSecret = "demo-scheduler-secret"

type runCmd struct {
	taskFlag
	Demo bool `help:"Start a built-in stub of the Mojodex backend and background on loopback and run against it, every task firing at start."`
}

// reloader returns the function that SIGHUP and a remote reload call: it
// reads the task file (or the embedded defaults) again.
func (r *runCmd) reloader(cfg config.Config) func() ([]task.Spec, error) {
	return func() ([]task.Spec, error) {
		path := r.Tasks
		if path == "" {
			path = cfg.Tasks
		}
		specs, err := loadTasks(path)
		if err != nil {
			return nil, err
		}
		if r.Demo {
			fireAtStart(specs)
		}
		if err := cfg.CheckURIs(needsSecret(specs)); err != nil {
			return nil, errors.Join(errors.New("the new task set needs settings this process lacks"), err)
		}
		return specs, nil
	}
}

// fireAtStart makes every task fire as soon as it starts (the demo).
func fireAtStart(specs []task.Spec) {
	for i := range specs {
		specs[i].RunOnStart = true
	}
}

// reload hands the task set read again by the reloader to the supervisor
// (SIGHUP). An invalid file changes nothing.
func reload(engine *actor.Engine, pid *actor.PID, reloader func() ([]task.Spec, error), log zerolog.Logger) {
	specs, err := reloader()
	if err != nil {
		log.Error().Err(err).Msg("SIGHUP: reload refused; the running task set is unchanged")
		return
	}
	v, err := engine.Request(pid, supervisor.Reload{Tasks: specs}, 10*time.Second).Result()
	if err != nil {
		log.Error().Err(err).Msg("SIGHUP: the supervisor did not answer the reload")
		return
	}
	if rep, ok := v.(supervisor.ReloadReply); !ok || rep.Err != nil {
		log.Error().Err(rep.Err).Msg("SIGHUP: reload refused; the running task set is unchanged")
	}
}

// openStore opens the state file, or an in-memory store when it is "off".
func openStore(path string, log zerolog.Logger) (store.Store, error) {
	if strings.EqualFold(strings.TrimSpace(path), "off") {
		log.Warn().Msg("MOJODEX_SCHEDULER_STATE=off: state is kept in memory only; a restart forgets claimed slots, history and pauses")
		return store.NewMemory(), nil
	}
	st, err := store.OpenBolt(path)
	if err != nil {
		return nil, fmt.Errorf("MOJODEX_SCHEDULER_STATE: %w", err)
	}
	log.Info().Str("state", st.Path()).Msg("state store opened")
	return st, nil
}

// serveHTTP starts the /metrics, /healthz and /readyz listener; it returns
// nil when the listener is off.
func serveHTTP(addr string, reg *prometheus.Registry, health *metrics.Health, log zerolog.Logger) (*http.Server, error) {
	if strings.EqualFold(strings.TrimSpace(addr), "off") {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("MOJODEX_SCHEDULER_HTTP_ADDR: %w", err)
	}
	srv := &http.Server{Handler: metrics.Handler(reg, health), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("metrics and health listener stopped")
		}
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics, /healthz and /readyz")
	return srv, nil
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
		fireAtStart(specs)
		log.Info().Str("backend", cfg.BackendURI).Str("background", cfg.BackgroundURI).
			Msg("demo: serving a stub of the Mojodex services on loopback; every task fires now, then on its schedule")
	}
	if err := cfg.CheckURIs(needsSecret(specs)); err != nil {
		return err
	}
	if r.Demo {
		cfg.State = "off" // the demo starts afresh every time and leaves no file behind
	}
	st, err := openStore(cfg.State, log)
	if err != nil {
		return err
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	health := metrics.NewHealth("supervisor")
	srv, err := serveHTTP(cfg.HTTPAddr, reg, health, log)
	if err != nil {
		return err
	}
	if srv != nil {
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}

	client, err := newClient(cfg, log, m.API())
	if err != nil {
		return err
	}
	reloader := r.reloader(cfg)
	producer, err := supervisor.New(specs, client,
		supervisor.WithLogger(log),
		supervisor.WithStore(st),
		supervisor.WithObserver(m.Tasks()),
		supervisor.WithGateInterval(cfg.GateInterval),
		supervisor.WithReloader(reloader))
	if err != nil {
		return err
	}
	engine, err := newEngine(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pid := supervisor.Spawn(engine, producer)
	if err := m.WatchSupervisor(engine, pid); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	// Ready once the supervisor has spawned its tasks and answers.
	if _, err := engine.Request(pid, supervisor.ListTasks{}, 10*time.Second).Result(); err != nil {
		return fmt.Errorf("supervisor did not start: %w", err)
	}
	health.SetReady("supervisor")
	log.Info().Int("tasks", len(specs)).Str("supervisor", pid.String()).Msg("mojodex-scheduler running")

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for waiting := true; waiting; {
		select {
		case <-hup:
			reload(engine, pid, reloader, log)
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
