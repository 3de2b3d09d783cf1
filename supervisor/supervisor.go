// Package supervisor holds the supervisor actor and the embedding API. The
// supervisor spawns the API-client actor and one task actor per task,
// restarts crashed actors with exponential backoff within a
// restart-intensity window, probes the backend's gates, reloads the task
// set, and answers questions about the tasks by asking the task actors,
// which own their state. It owns the runtime the task actors share (the
// timer service, the job workers and the state store's committer): it
// starts them when it starts and stops them, after its children, when it
// stops.
//
// A host program builds the supervisor with New and spawns it into its own
// engine with Spawn; the messages of api.go (or the protobuf messages of
// control/v1, from another process) control it.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/actors"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/internal/msg"
	"github.com/mojodex/mojodex-scheduler/schedule"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

// The supervisor's stable address: Spawn uses it, so its PID's ID is
// "mojodex-scheduler/supervisor".
const (
	Kind = "mojodex-scheduler"
	ID   = "supervisor"
)

// HistorySize is how many runs GetTask returns: the state store keeps that
// many per task.
const HistorySize = store.HistorySize

// taskInbox is the initial inbox size of a task actor: it holds a handful
// of messages at a time (hollywood doubles a full inbox), and a small inbox
// keeps the per-task memory low.
const taskInbox = 4

// apiName names the API-client actor in crash reports.
const apiName = "api-client"

// Spawn spawns the supervisor built by New into engine at its stable
// address (Kind/ID), with hollywood's restart budget out of the way (a
// budget that runs out crashes the process).
func Spawn(engine *actor.Engine, producer actor.Producer) *actor.PID {
	return engine.Spawn(producer, Kind, actor.WithID(ID), actor.WithMaxRestarts(math.MaxInt32))
}

// life is where a task actor is in its supervision.
type life int

const (
	alive      life = iota // its actor runs
	restarting             // crashed (or reloading), waiting to be spawned again
	failed                 // crashed too often; not restarted until resumed
)

// entry is the supervisor's record of a task: its spec and schedule (fixed
// for the entry's life), its actor and its supervision. What the task is
// doing is the actor's, and is asked for.
type entry struct {
	spec     *task.Spec
	sched    schedule.Schedule
	stored   store.TaskState // the stored state the next incarnation starts from
	first    bool            // the next incarnation is the first since the scheduler started
	gen      uint64
	pid      *actor.PID
	life     life
	fails    failures
	restarts int
	respawn  *time.Timer
	idle     bool     // drained
	waiting  []waiter // requests answered when the task is spawned again
}

// waiter is a request waiting for a task's respawn (a resume of a failed task).
type waiter struct {
	to    *actor.PID
	proto bool
}

// New validates the tasks, loads their stored state, stores the anchors of
// fixed-rate schedules that have none, and returns the producer of the
// supervisor actor. client performs every HTTP call (it may be nil when
// every task is an in-process job); the supervisor spawns the API-client
// actor around it.
func New(specs []task.Spec, client *apiclient.Client, opts ...Option) (actor.Producer, error) {
	o := defaultOptions()
	var errs []error
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	o.policy = o.policy.withDefaults()
	if o.store == nil {
		o.store = store.NewMemory()
	}
	if o.start.IsZero() {
		o.start = time.Now()
	}
	specs = slices.Clone(specs)
	var version int64
	if sh, ok := o.store.(store.Shared); ok {
		if o.replica == "" {
			return nil, errors.New("supervisor: replicas sharing a store need a name (WithReplica)")
		}
		var err error
		if specs, version, err = publishTaskSet(o, sh, specs); err != nil {
			return nil, fmt.Errorf("supervisor: %w", err)
		}
	}
	if err := task.ValidateSet(specs); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	for _, s := range specs {
		if s.Request != nil && client == nil {
			return nil, errors.New("supervisor: HTTP tasks need an API client")
		}
	}
	entries, err := prepare(o, specs)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	for _, e := range entries {
		e.first = true
	}
	return func() actor.Receiver {
		return &supervisor{opts: o, client: client, log: o.logger, entries: entries, version: version}
	}, nil
}

// prepare loads the stored state of specs, stores the anchors of their
// fixed-rate schedules where none is stored (the existing one wins, so
// slots stay on one grid across restarts and replicas), and builds their
// entries.
func prepare(o options, specs []task.Spec) ([]*entry, error) {
	names := make([]string, len(specs))
	for i := range specs {
		names[i] = specs[i].Name
	}
	stored, err := o.store.Load(names)
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	anchors := &store.Batch{}
	for i := range specs {
		if specs[i].Every > 0 && stored[specs[i].Name].Anchor.IsZero() {
			anchors.Anchors = append(anchors.Anchors, store.Anchor{Task: specs[i].Name, Anchor: o.start})
		}
	}
	if len(anchors.Anchors) > 0 {
		if err := o.store.Commit(anchors); err != nil {
			return nil, fmt.Errorf("state store: store the anchors: %w", err)
		}
		for _, a := range anchors.Anchors {
			st := stored[a.Task]
			st.Anchor = a.Stored
			stored[a.Task] = st
		}
	}
	entries := make([]*entry, len(specs))
	for i := range specs {
		spec := &specs[i]
		st := stored[spec.Name]
		anchor := o.start
		if spec.Every > 0 {
			anchor = st.Anchor
		}
		sched, err := spec.Schedule(anchor)
		if err != nil {
			return nil, err
		}
		entries[i] = &entry{spec: spec, sched: sched, stored: st}
	}
	return entries, nil
}

// supervisor is the supervisor actor.
type supervisor struct {
	opts    options
	client  *apiclient.Client
	log     zerolog.Logger
	entries []*entry // until Started

	engine    *actor.Engine
	self      *actor.PID
	committer *store.Committer
	rt        *actors.Runtime
	api       *actor.PID
	apiGen    uint64
	apiF      failures
	apiAt     time.Time // earliest respawn of the API-client actor
	letters   *actor.PID

	order []string
	tasks map[string]*entry
	gates map[task.Gate]*gate
	gateT *time.Timer

	draining  bool
	drainers  []*actor.PID
	reloading bool

	// Replicas sharing a store (replicas.go).
	version     int64          // the task set version this replica runs
	pendingSet  *sharedTaskSet // a task set to follow once the reload in progress ends
	stopWatcher context.CancelFunc

	ctlSem  chan struct{}
	ctlWG   sync.WaitGroup
	noReply rateLimited
}

// Internal messages of the supervisor.
type (
	// apiStopped: the crashed API-client actor of gen has left the engine.
	apiStopped struct{ gen uint64 }
	// apiRespawn: time to spawn the API-client actor again.
	apiRespawn struct{ gen uint64 }
	// respawnDue: a crashed task's backoff has passed.
	respawnDue struct {
		name string
		gen  uint64
	}
	// respawnReady: a task's previous actor has stopped and its stored
	// state is loaded again.
	respawnReady struct {
		name  string
		gen   uint64
		state store.TaskState
		err   error
	}
)

// Receive implements actor.Receiver.
func (s *supervisor) Receive(c *actor.Context) {
	// A panic here would reach hollywood, whose restart would run Started
	// again over live children and whose restart budget crashes the process
	// when exhausted: log it, answer the request if it was one, go on.
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Str("panic", fmt.Sprint(v)).Str("stack", string(debug.Stack())).
				Str("message", fmt.Sprintf("%T", c.Message())).Msg("supervisor: a message made it panic")
			s.answerPanic(c, v)
		}
	}()
	switch m := c.Message().(type) {
	case actor.Started:
		s.onStarted(c)
	case actor.Stopped:
		s.onStopped()
	case msg.Crashed:
		s.onCrashed(c, m)
	case msg.Idle:
		if e := s.tasks[m.Task]; e != nil && e.gen == m.Gen {
			e.idle = true
			s.checkDrained()
		}
	case respawnDue:
		s.onRespawnDue(m)
	case respawnReady:
		s.onRespawnReady(c, m)
	case apiStopped:
		if m.gen == s.apiGen {
			s.scheduleAPIRespawn(m.gen)
		}
	case apiRespawn:
		if m.gen == s.apiGen && !s.draining {
			s.spawnAPI(c)
			s.log.Info().Str("actor", apiName).Msg("API client restarted")
		}
	case gateResult:
		s.onGateResult(m)
	case gateTick:
		s.probeGates()
		s.armGateTick()
	case reloadLoaded:
		s.onReloadLoaded(m)
	case sharedPauses:
		s.onSharedPauses(m)
	case sharedTaskSet:
		s.onSharedTaskSet(m)
	case reloadReady:
		s.onReloadReady(c, m)
	case Drain:
		s.onDrain(c.Sender())
	case Reload:
		s.reloadTasks(request{op: opReload, from: c.Sender()}, m.Tasks, m.Content, 0)
	default:
		s.serve(c) // the control requests (control.go)
	}
}

func (s *supervisor) onStarted(c *actor.Context) {
	s.engine, s.self = c.Engine(), c.PID()
	s.ctlSem = make(chan struct{}, s.opts.maxControl)
	s.committer = store.NewCommitter(s.opts.store, store.OnCommit(s.opts.onCommit))
	cfg := actors.RuntimeConfig{
		Engine: s.engine, Committer: s.committer,
		JobWorkers: s.opts.jobWorkers, JobQueue: s.opts.jobQueue,
		Replica: s.opts.replica, Logger: s.log, Observer: s.opts.observer,
	}
	sh, shared := s.opts.store.(store.Shared)
	if shared {
		cfg.Shared, cfg.Lease, cfg.Renew, cfg.ReaperInterval = sh, s.opts.lease, s.opts.renew, s.opts.reaper
		cfg.ReplicaObserver = s.opts.replicaObs
	}
	if s.client != nil {
		cc := s.client.Config()
		cfg.AttemptTimeout, cfg.Attempts, cfg.BackoffMax = cc.Timeout, cc.MaxAttempts, cc.BackoffMax
		s.spawnAPI(c)
		cfg.API = s.api
		s.letters = c.SpawnChild(newDeadLetters(s.log), "dead-letters", actor.WithID("watcher"), actor.WithMaxRestarts(math.MaxInt32))
		s.engine.Subscribe(s.letters)
	}
	rt, err := actors.NewRuntime(cfg)
	if err != nil {
		s.log.Error().Err(err).Msg("supervisor: cannot start the runtime; no task runs")
		return
	}
	s.rt = rt
	rt.SetVersion(s.version)
	if shared {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopWatcher = cancel
		s.watchShared(ctx, sh)
	}
	s.tasks = make(map[string]*entry, len(s.entries))
	s.gates = make(map[task.Gate]*gate)
	for _, e := range s.entries {
		s.tasks[e.spec.Name] = e
		s.order = append(s.order, e.spec.Name)
		s.addGate(e.spec.EnabledIf)
	}
	s.entries = nil
	for _, name := range s.order {
		s.spawnTask(c, s.tasks[name])
	}
	s.probeGates()
	s.armGateTick()
	ev := s.log.Info().Int("tasks", len(s.order))
	if s.opts.manual {
		ev = ev.Bool("manual", true) // the flag is logged only when set, as on runs
	}
	ev.Msg("supervisor started")
}

// onStopped runs after hollywood has stopped every child: it stops the
// runtime (timers, job workers) and the committer, in that order, so that
// the last runs are recorded. It must not panic.
func (s *supervisor) onStopped() {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Str("panic", fmt.Sprint(v)).Msg("panic while stopping the supervisor")
		}
	}()
	if s.gateT != nil {
		s.gateT.Stop()
	}
	for _, e := range s.tasks {
		if e.respawn != nil {
			e.respawn.Stop()
		}
	}
	if s.letters != nil {
		s.engine.Unsubscribe(s.letters)
	}
	if s.stopWatcher != nil {
		s.stopWatcher()
	}
	if s.rt != nil {
		s.rt.Stop(s.opts.shutdownGrace)
	}
	if s.committer != nil {
		s.committer.Close()
	}
}

func (s *supervisor) spawnAPI(c *actor.Context) {
	s.apiGen++
	gen, parent := s.apiGen, c.PID()
	onCrash := func(ctx *actor.Context, reason any, stack []byte) {
		ctx.Engine().Send(parent, msg.Crashed{Name: apiName, Gen: gen, Reason: fmt.Sprint(reason), Stack: string(stack)})
	}
	s.api = c.SpawnChild(apiclient.NewActor(s.client, onCrash), "api", actor.WithID("client"), actor.WithMaxRestarts(math.MaxInt32))
}

// spawnTask spawns a new incarnation of e's task from e.stored. Each
// incarnation has its own ID, so that messages meant for an earlier one
// (a fire already in flight) never reach it.
func (s *supervisor) spawnTask(c *actor.Context, e *entry) {
	e.gen++
	e.idle = false
	e.life = alive
	cfg := actors.TaskConfig{
		Spec:        e.spec,
		Schedule:    e.sched,
		Gen:         e.gen,
		Stored:      e.stored,
		Start:       s.opts.start,
		FireAtStart: e.first && e.spec.RunOnStart,
		Manual:      s.opts.manual,
		Gate:        s.gateState(e.spec.EnabledIf),
	}
	e.first = false
	e.stored = store.TaskState{}
	e.pid = c.SpawnChild(actors.NewTask(s.rt, cfg), "task", actor.WithID(fmt.Sprintf("%s.%d", e.spec.Name, e.gen)),
		actor.WithInboxSize(taskInbox), actor.WithMaxRestarts(math.MaxInt32))
	for _, w := range e.waiting {
		s.answerResumed(w, e)
	}
	e.waiting = nil
}

func (s *supervisor) onCrashed(c *actor.Context, m msg.Crashed) {
	if m.Name == apiName {
		s.onAPICrashed(c, m)
		return
	}
	e := s.tasks[m.Name]
	if e == nil || e.gen != m.Gen || e.life != alive {
		return
	}
	delay, giveUp := s.opts.policy.record(&e.fails, time.Now())
	if giveUp {
		e.life = failed
		s.log.Error().Str("task", e.spec.Name).Str("panic", m.Reason).Int("failures", len(e.fails.at)).
			Float64("window_s", s.opts.policy.Window.Seconds()).Msg("task crashed too often; marked failed and no longer restarted (resume revives it)")
	} else {
		e.life = restarting
		s.log.Error().Str("task", e.spec.Name).Str("panic", m.Reason).Str("stack", m.Stack).Float64("backoff_s", delay.Seconds()).
			Int("failures_in_window", len(e.fails.at)).Msg("task crashed; restarting after backoff")
		name, gen := e.spec.Name, e.gen
		e.respawn = time.AfterFunc(delay, func() { s.engine.Send(s.self, respawnDue{name: name, gen: gen}) })
	}
	s.checkDrained()
}

func (s *supervisor) onRespawnDue(m respawnDue) {
	e := s.tasks[m.name]
	if e == nil || e.gen != m.gen || e.life != restarting || s.draining {
		return
	}
	e.respawn = nil
	e.restarts++
	s.reload(e, false)
}

// reload stops e's actor if it still exists, then (on a goroutine) waits
// for it to leave, lets every write it made reach the store, and loads the
// task's state again; respawnReady brings it back.
func (s *supervisor) reload(e *entry, clearPause bool) {
	name, gen, pid := e.spec.Name, e.gen, e.pid
	engine, self, committer, st := s.engine, s.self, s.committer, s.opts.store
	go func() {
		if pid != nil {
			<-engine.Poison(pid).Done()
		}
		var err error
		if clearPause {
			err = committer.Commit(&store.Batch{Pauses: []store.Pause{{Task: name, Paused: false}}})
		} else {
			err = committer.Flush()
		}
		var state store.TaskState
		if err == nil {
			var states map[string]store.TaskState
			states, err = st.Load([]string{name})
			state = states[name]
		}
		engine.Send(self, respawnReady{name: name, gen: gen, state: state, err: err})
	}()
}

func (s *supervisor) onRespawnReady(c *actor.Context, m respawnReady) {
	e := s.tasks[m.name]
	if e == nil || e.gen != m.gen || e.life != restarting {
		return
	}
	if s.draining {
		s.checkDrained()
		return
	}
	if m.err != nil {
		s.log.Error().Str("task", m.name).Err(m.err).Msg("state store: cannot load the task's state to restart it; retrying after backoff")
		name, gen := m.name, m.gen
		e.respawn = time.AfterFunc(s.opts.policy.Initial, func() { s.engine.Send(s.self, respawnDue{name: name, gen: gen}) })
		return
	}
	e.stored = m.state
	s.spawnTask(c, e)
	s.log.Info().Str("task", m.name).Uint64("incarnation", e.gen).Msg("task restarted")
}

func (s *supervisor) onAPICrashed(c *actor.Context, m msg.Crashed) {
	if m.Gen != s.apiGen {
		return
	}
	delay, giveUp := s.opts.policy.record(&s.apiF, time.Now())
	if giveUp {
		delay = s.opts.policy.Max
	}
	s.apiAt = time.Now().Add(delay)
	s.log.Error().Str("actor", apiName).Str("panic", m.Reason).Str("stack", m.Stack).Float64("backoff_s", delay.Seconds()).
		Msg("API client crashed; its runs failed, calls fail at once until it is restarted")
	engine, self, pid, gen := c.Engine(), s.self, s.api, m.Gen
	go func() {
		<-engine.Poison(pid).Done()
		engine.Send(self, apiStopped{gen: gen})
	}()
}

func (s *supervisor) scheduleAPIRespawn(gen uint64) {
	engine, self := s.engine, s.self
	time.AfterFunc(max(0, time.Until(s.apiAt)), func() { engine.Send(self, apiRespawn{gen: gen}) })
}

func (s *supervisor) onDrain(from *actor.PID) {
	if from != nil {
		s.drainers = append(s.drainers, from)
	}
	if !s.draining {
		s.draining = true
		if s.gateT != nil {
			s.gateT.Stop()
		}
		for _, e := range s.tasks {
			if e.respawn != nil {
				e.respawn.Stop()
				e.respawn = nil
			}
			if e.life == alive {
				s.engine.Send(e.pid, msg.Drain{})
			}
		}
	}
	s.checkDrained()
}

func (s *supervisor) checkDrained() {
	if !s.draining {
		return
	}
	for _, e := range s.tasks {
		if e.life == alive && !e.idle {
			return
		}
	}
	for _, p := range s.drainers {
		s.engine.Send(p, Drained{})
	}
	s.drainers = nil
}

// deadLetters watches the engine's dead letters for runs sent to the
// API-client actor while it was being restarted, and fails them at once
// (rather than at their deadline).
type deadLetters struct{ log zerolog.Logger }

func newDeadLetters(log zerolog.Logger) actor.Producer {
	return func() actor.Receiver { return &deadLetters{log: log} }
}

// Receive implements actor.Receiver.
func (d *deadLetters) Receive(c *actor.Context) {
	ev, ok := c.Message().(actor.DeadLetterEvent)
	if !ok {
		return
	}
	if req, ok := ev.Message.(*apiclient.RunRequest); ok && req.Sink != nil {
		req.Sink.Finish(apiclient.RunResult{Outcome: task.OutcomeFailed, Progress: req.From,
			Err: fmt.Errorf("%w: it is restarting after a crash", apiclient.ErrStopped)})
	}
}
