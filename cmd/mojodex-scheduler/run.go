package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/actors"
	"github.com/mojodex/mojodex-scheduler/config"
	"github.com/mojodex/mojodex-scheduler/metrics"
	"github.com/mojodex/mojodex-scheduler/statuspage"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/store/pgstore"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	oklogrun "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// demoSecret is the secret shared by the demo stub and the scheduler.
const demoSecret = "demo-scheduler-secret"

// Health components: ready once the scheduler has started, and while the
// state store accepts commits (no slot fires without its claim).
const (
	healthScheduler = "scheduler"
	healthStore     = "store"
)

type runCmd struct {
	taskFlag
	Demo bool `help:"Start a built-in stub of the Mojodex backend and background on loopback and run against it, every task firing at start."`
}

// Run serves until SIGINT or SIGTERM, then drains within the shutdown
// timeout. The signal handlers are installed first: a signal that comes
// during start-up is kept and stops the process as soon as it has started.
func (r *runCmd) Run(a *appEnv) error {
	stopSignals := make(chan os.Signal, 2)
	signal.Notify(stopSignals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(stopSignals)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, specs, err := a.load(r.Tasks)
	if err != nil {
		return err
	}
	log := a.logger(cfg)
	for _, w := range a.warnings {
		log.Warn().Str("variable", w.Variable).Str("did_you_mean", w.Suggestion).Msg(w.String())
	}
	if r.Demo {
		// A little latency, so that runs in progress show on the status page.
		stub, err := startDemo(&cfg, 20*time.Millisecond)
		if err != nil {
			return err
		}
		defer stub.Close()
		cfg.State = "off" // the demo starts afresh every time and leaves no file behind
		fireAtStart(specs)
	}
	if err := cfg.CheckURIs(needsSecret(specs)); err != nil {
		return err
	}
	build := currentBuild()
	log.Info().EmbedObject(build).Msg("starting")
	log.Info().Int("tasks", len(specs)).Object("config", cfg).Msg("configuration in effect")

	st, err := openStore(cfg, r.Demo, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error().Err(err).Msg("closing the state store")
		}
	}()

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := metrics.RegisterBuildInfo(reg, build.metricsInfo()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.Prepare(specs, time.Now())
	health := metrics.NewHealth(healthScheduler, healthStore)
	health.SetReady(healthStore)
	if err := m.WatchHealth(health); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	client, err := newClient(cfg, log, m.API())
	if err != nil {
		return err
	}
	engine, ep, err := newEngine(cfg, log)
	if err != nil {
		return err
	}
	if ep != nil {
		defer ep.Stop()
	}
	httpSrv, httpLn, err := listenHTTP(cfg, reg, health, engine, log)
	if err != nil {
		return err
	}
	reloader := r.reloader(cfg)
	commits := m.Commits()
	shared, replica, err := replicaOptions(cfg, st, a.taskSet, m, health)
	if err != nil {
		return err
	}
	srv, err := supervisor.NewServer(engine, specs, client, append(shared,
		supervisor.WithLogger(log),
		supervisor.WithStore(st),
		supervisor.WithObserver(m.Tasks()),
		supervisor.WithCommitObserver(func(c store.CommitStats) {
			commits(c)
			if c.Writes > 0 {
				health.Set(healthStore, c.Err == nil)
			}
		}),
		supervisor.WithGateInterval(cfg.GateInterval),
		supervisor.WithReloader(func() ([]task.Spec, []byte, error) {
			specs, content, err := reloader()
			if err == nil {
				m.Prepare(specs, time.Now())
			}
			return specs, content, err
		}))...)
	if err != nil {
		return err
	}
	startCtx, cancelStart := context.WithTimeout(context.Background(), time.Minute)
	err = srv.Start(startCtx)
	cancelStart()
	if err != nil {
		return err
	}
	if err := m.WatchSupervisor(engine, srv.PID()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	health.SetReady(healthScheduler)
	ready := log.Info().Int("tasks", len(specs)).Str("supervisor", srv.PID().String())
	if replica != "" {
		ready = ready.Str("replica", replica)
	}
	if r.Demo {
		ready.Msg(demoReady(listenAddr(httpLn), ep != nil, os.Args[0]))
	} else {
		ready.Msg("mojodex-scheduler running")
	}

	// The parts that run until the process stops, stopped in this order
	// when the first of them returns: the signal handler, the scheduler
	// (drained while /healthz still answers), the reloader, the HTTP server.
	var g oklogrun.Group
	quit := make(chan struct{})
	g.Add(func() error {
		select {
		case sig := <-stopSignals:
			log.Info().Str("signal", sig.String()).Float64("deadline_s", cfg.ShutdownTimeout.Seconds()).
				Msg("shutting down: timers stopped, waiting for the runs in progress")
		case <-quit:
		}
		return nil
	}, func(error) { close(quit) })

	done := make(chan struct{})
	g.Add(func() error {
		<-done
		return nil
	}, func(error) {
		defer close(done)
		health.SetNotReady(healthScheduler)
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn().Err(err).Msg("shutdown")
		}
	})

	// SIGHUP reloads run one at a time on a goroutine of their own, so that
	// a reload that blocks (a task file that is a pipe nobody writes, a
	// stalled file system) never delays the stop: the process exits without
	// waiting for it. A SIGHUP during a reload runs one more after it.
	stopReload := make(chan struct{})
	g.Add(func() error {
		pending := make(chan struct{}, 1)
		go func() {
			for range pending {
				select {
				case <-stopReload:
					return
				default:
				}
				reload(srv, reloader, log)
			}
		}()
		defer close(pending)
		for {
			select {
			case <-hup:
				select {
				case pending <- struct{}{}:
				default: // one is pending already: it reads the newest file
				}
			case <-stopReload:
				return nil
			}
		}
	}, func(error) { close(stopReload) })

	if httpSrv != nil {
		g.Add(func() error {
			if err := httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("MOJODEX_SCHEDULER_HTTP_ADDR: the listener stopped: %w", err)
			}
			return nil
		}, func(error) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = httpSrv.Shutdown(ctx)
		})
	}
	err = g.Run()
	log.Info().Msg("stopped")
	return err
}

// reloader returns the function that SIGHUP and a remote reload call: it
// reads the task file (or the embedded defaults) again.
func (r *runCmd) reloader(cfg config.Config) supervisor.Reloader {
	return func() ([]task.Spec, []byte, error) {
		specs, content, err := loadTasks(taskSource(r.Tasks, cfg))
		if err != nil {
			return nil, nil, err
		}
		if r.Demo {
			fireAtStart(specs)
		}
		if err := cfg.CheckURIs(needsSecret(specs)); err != nil {
			return nil, nil, errors.Join(errors.New("the new task set needs settings this process lacks"), err)
		}
		return specs, content, nil
	}
}

// fireAtStart makes every task fire as soon as it starts (the demo).
func fireAtStart(specs []task.Spec) {
	for i := range specs {
		specs[i].RunOnStart = true
	}
}

// reloadTimeout bounds a SIGHUP reload.
const reloadTimeout = time.Minute

// reload reads the task set again and hands it to the scheduler (SIGHUP).
// An invalid file changes nothing. It runs on a goroutine of its own,
// never where signals are handled, and the stop does not wait for it.
func reload(srv *supervisor.Server, reloader supervisor.Reloader, log zerolog.Logger) {
	specs, content, err := reloader()
	if err != nil {
		log.Error().Err(err).Msg("SIGHUP: reload refused; the running task set is unchanged")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	if _, err := srv.Reload(ctx, specs, content); err != nil {
		log.Error().Err(err).Msg("SIGHUP: reload refused; the running task set is unchanged")
	}
}

// openStore opens the state store that MOJODEX_SCHEDULER_STATE names: a
// file (its directory created if needed), memory ("off"), or PostgreSQL.
func openStore(cfg config.Config, demo bool, log zerolog.Logger) (store.Store, error) {
	loc, err := cfg.StateLocation()
	if err != nil {
		return nil, err
	}
	switch loc.Kind {
	case config.StateMemory:
		if !demo {
			log.Warn().Msg("MOJODEX_SCHEDULER_STATE=off: state is kept in memory only; a restart forgets claimed slots, history and pauses")
		}
		return store.NewMemory(), nil
	case config.StateFile:
		dir := filepath.Dir(loc.Path)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			log.Info().Str("dir", dir).Msg("the state file's directory does not exist; creating it")
		}
		st, err := store.OpenBolt(loc.Path)
		if err != nil {
			return nil, fmt.Errorf("MOJODEX_SCHEDULER_STATE: %w", err)
		}
		ev := log.Info().Str("state", st.Path())
		if v := st.MigratedFrom(); v != 0 {
			ev = ev.Int("migrated_from_schema", v)
		}
		ev.Msg("state store opened")
		return st, nil
	case config.StatePostgres:
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		st, err := pgstore.Open(ctx, loc.DSN, pgstore.WithSchema(cfg.PGSchema), pgstore.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("MOJODEX_SCHEDULER_STATE=%s: %w", loc.Redacted(), err)
		}
		log.Info().Str("state", loc.Redacted()).Str("schema", cfg.PGSchema).Msg("shared state store opened (PostgreSQL): this process is one replica of a set")
		return st, nil
	}
	return nil, fmt.Errorf("MOJODEX_SCHEDULER_STATE=%s: a %s store is not supported by this build", loc.Redacted(), loc.Kind)
}

// replicaName is this process's name among the replicas sharing a store:
// MOJODEX_SCHEDULER_REPLICA, else the host name and the process id.
func replicaName(cfg config.Config) string {
	if cfg.Replica != "" {
		return cfg.Replica
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// replicaOptions returns the supervisor options of a shared store: the
// replica's name, its leases, the task set's text, and the replica metrics,
// whose heartbeats also drive the store's readiness.
func replicaOptions(cfg config.Config, st store.Store, content []byte, m *metrics.Metrics, health *metrics.Health) ([]supervisor.Option, string, error) {
	if _, ok := st.(store.Shared); !ok {
		return nil, "", nil
	}
	obs, err := m.Replicas()
	if err != nil {
		return nil, "", fmt.Errorf("metrics: %w", err)
	}
	name := replicaName(cfg)
	return []supervisor.Option{
		supervisor.WithReplica(name),
		supervisor.WithLeases(cfg.Lease, cfg.LeaseRenew, cfg.ReaperInterval),
		supervisor.WithTaskSet(content),
		supervisor.WithReplicaObserver(heartbeatHealth{ReplicaObserver: obs, health: health}),
	}, name, nil
}

// heartbeatHealth makes each heartbeat's result the store's readiness, as
// each commit's is: a replica cut off from the store is not ready even when
// nothing is due.
type heartbeatHealth struct {
	actors.ReplicaObserver
	health *metrics.Health
}

// Heartbeat implements actors.ReplicaObserver.
func (h heartbeatHealth) Heartbeat(ok bool) {
	h.ReplicaObserver.Heartbeat(ok)
	h.health.Set(healthStore, ok)
}

// listenHTTP listens on the address of the status page, /metrics,
// /healthz and /readyz; it returns a nil server when the listener is off.
// The status page asks the supervisor at its stable address in engine,
// where Server.Start spawns it; the server is served only after that.
func listenHTTP(cfg config.Config, reg *prometheus.Registry, health *metrics.Health, engine *actor.Engine, log zerolog.Logger) (*http.Server, net.Listener, error) {
	if cfg.HTTPAddr == "off" {
		return nil, nil, nil
	}
	page, err := statuspage.New(engine, actor.NewPID(engine.Address(), supervisor.Kind+"/"+supervisor.ID),
		statuspage.WithLogger(log), statuspage.WithToken(cfg.UIToken), statuspage.WithAuth(cfg.UIAuth))
	if err != nil {
		return nil, nil, fmt.Errorf("status page: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("MOJODEX_SCHEDULER_HTTP_ADDR: %w", err)
	}
	probes := metrics.Handler(reg, health)
	mux := http.NewServeMux()
	mux.Handle("/metrics", probes)
	mux.Handle("/healthz", probes)
	mux.Handle("/readyz", probes)
	mux.Handle("/", page)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          httpErrorLog(log),
	}
	log.Info().Str("addr", ln.Addr().String()).Bool("ui_actions", cfg.UIToken != "").Str("ui_auth", cfg.UIAuth).
		Msg("serving the status page at /, and /metrics, /healthz and /readyz")
	return srv, ln, nil
}
