// Package supervisor holds the supervisor actor: it spawns the API-client
// actor and one task actor per task, probes the backend's gates, restarts
// crashed actors with exponential backoff within a restart-intensity window,
// and answers questions about the tasks. It is also the embedding API: a
// host program builds a Producer with New and spawns it into its own engine.
package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/actors"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/schedule"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

// The supervisor's stable address: spawn it with
// engine.Spawn(producer, Kind, actor.WithID(ID)), so its PID's ID is
// "mojodex-scheduler/supervisor".
const (
	Kind = "mojodex-scheduler"
	ID   = "supervisor"
)

// Spawn spawns the supervisor built by New into engine at its stable
// address (Kind/ID), with hollywood's restart budget out of the way (a
// budget that runs out crashes the process).
func Spawn(engine *actor.Engine, producer actor.Producer) *actor.PID {
	return engine.Spawn(producer, Kind, actor.WithID(ID), actor.WithMaxRestarts(math.MaxInt32))
}

// HistorySize is how many runs GetTask returns: the state store keeps that
// many per task.
const HistorySize = store.HistorySize

// taskInbox is the initial inbox size of a task actor: it holds a handful
// of messages at a time (hollywood doubles a full inbox), and a small inbox
// keeps the per-task memory low.
const taskInbox = 4

// apiName names the API-client actor in Crashed reports.
const apiName = "api-client"

// State is the state of a task as the supervisor sees it.
type State string

// Task states.
const (
	StateScheduled  State = "scheduled"  // waiting for its next slot
	StateRunning    State = "running"    // a run is in progress
	StateGated      State = "gated"      // its gate's service is not configured
	StateRestarting State = "restarting" // crashed, waiting for its backoff
	StateFailed     State = "failed"     // crashed too often; no longer restarted
	StatePaused     State = "paused"     // paused by an operator; fires nothing until resumed
)

// Option configures the supervisor.
type Option func(*options)

type options struct {
	logger       zerolog.Logger
	observer     actors.Observer
	policy       RestartPolicy
	gateInterval time.Duration
	manual       bool
	start        time.Time
	reloader     func() ([]task.Spec, error)
	store        store.Store
}

// WithStore sets the state store: claimed slots, anchors, run history,
// paused flags and pagination checkpoints survive a restart through it.
// The default is an in-memory store (nothing survives the process).
func WithStore(st store.Store) Option { return func(o *options) { o.store = st } }

// WithLogger sets the logger (default: none).
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.logger = l } }

// WithObserver sets an observer of every task's runs.
func WithObserver(obs actors.Observer) Option { return func(o *options) { o.observer = obs } }

// WithRestartPolicy sets the restart policy (zero fields keep their defaults).
func WithRestartPolicy(p RestartPolicy) Option { return func(o *options) { o.policy = p } }

// WithGateInterval sets how often gates are probed again (default 10m).
func WithGateInterval(d time.Duration) Option { return func(o *options) { o.gateInterval = d } }

// WithManual arms no timers: tasks run only when triggered (the once command).
func WithManual() Option { return func(o *options) { o.manual = true } }

// WithStart sets the anchor of fixed-rate schedules (default: when the
// supervisor starts).
func WithStart(t time.Time) Option { return func(o *options) { o.start = t } }

// WithReloader lets remote callers reload the task set: a
// controlv1.ReloadRequest calls f (outside the supervisor's goroutine,
// typically to read the task file again) and applies its result as Reload
// does. Without it such requests are refused with FAILED_PRECONDITION.
func WithReloader(f func() ([]task.Spec, error)) Option {
	return func(o *options) { o.reloader = f }
}

// New validates the tasks and returns the producer of the supervisor actor.
// client performs every HTTP call; it is wrapped in the API-client actor,
// which the supervisor spawns as its child.
func New(specs []task.Spec, client *apiclient.Client, opts ...Option) (actor.Producer, error) {
	o := options{logger: zerolog.Nop(), gateInterval: 10 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	o.policy = o.policy.withDefaults()
	if o.store == nil {
		o.store = store.NewMemory()
	}
	if o.gateInterval <= 0 {
		return nil, fmt.Errorf("supervisor: gate interval %s must be positive", o.gateInterval)
	}
	specs = append([]task.Spec(nil), specs...)
	if err := task.ValidateSet(specs); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	needsClient := false
	for _, s := range specs {
		needsClient = needsClient || s.Request != nil
	}
	if needsClient && client == nil {
		return nil, errors.New("supervisor: HTTP tasks need an API client")
	}
	return func() actor.Receiver {
		return &supervisor{opts: o, specs: specs, client: client, log: o.logger}
	}, nil
}

// Messages the supervisor answers (send them with engine.Request).

// ListTasks asks for every task's status; the reply is a TaskList.
type ListTasks struct{}

// TaskList answers ListTasks, in the order of the task set.
type TaskList struct{ Tasks []TaskStatus }

// GetTask asks for one task's status with its run history; the reply is a TaskReply.
type GetTask struct{ Name string }

// TaskReply answers GetTask. Err is set (to an error wrapping ErrUnknownTask) when there is no such task.
type TaskReply struct {
	Task TaskStatus
	Err  error
}

// TriggerTask runs a task now; the reply is an actors.TriggerReply, or a
// TriggerError when the task cannot be triggered at all.
type TriggerTask struct{ Name string }

// TriggerError answers TriggerTask for an unknown, failed or restarting task.
type TriggerError struct{ Err error }

// Drain stops every timer and waits for the runs in progress; the reply,
// Drained, comes when no run is left. Used for graceful shutdown.
type Drain struct{}

// Drained answers Drain.
type Drained struct{}

// PauseTask stops a task's timer until ResumeTask; the reply is a ControlReply.
type PauseTask struct{ Name string }

// ResumeTask re-arms a paused task, or revives a task marked failed; the
// reply is a ControlReply.
type ResumeTask struct{ Name string }

// ControlReply answers PauseTask and ResumeTask. Err is nil on success.
type ControlReply struct {
	Task TaskStatus
	Err  error
}

// Reload replaces the task set: new tasks are added, removed ones stopped,
// changed ones restarted, and unchanged ones left running with their timers
// undisturbed. An invalid set changes nothing. The reply is a ReloadReply.
type Reload struct{ Tasks []task.Spec }

// ReloadReply answers Reload with the names in each group, or with Err
// (listing every problem) when the new set is invalid.
type ReloadReply struct {
	Added, Removed, Changed, Unchanged []string
	Err                                error
}

// ErrUnknownTask is wrapped by errors about a task name that is not in the set.
var ErrUnknownTask = errors.New("unknown task")

// TaskStatus describes a task.
type TaskStatus struct {
	Name     string
	Schedule string // the schedule in words
	Gate     task.Gate
	State    State
	Next     time.Time // zero when nothing is armed
	Restarts int
	LastRun  *actors.RunRecord
	History  []actors.RunRecord // newest last; only in TaskReply
}

type entry struct {
	spec     *task.Spec // shared with the task actor; never modified
	sched    schedule.Schedule
	gen      uint64
	pid      *actor.PID
	state    State
	last     *actors.RunRecord // the latest run; the history is in the store
	fails    failures
	restarts int
	respawn  *time.Timer
	idle     bool
	paused   bool
	// notBefore: slots at or before it are not armed (see actors.TaskConfig).
	notBefore time.Time
}

type gateEntry struct {
	state actors.GateState
	probe uint64 // ID of the probe in flight
}

type respawnMsg struct {
	name string
	gen  uint64
}

type gateTick struct{}

type supervisor struct {
	opts   options
	specs  []task.Spec
	client *apiclient.Client
	log    zerolog.Logger

	engine *actor.Engine
	self   *actor.PID
	api    *actor.PID
	apiGen uint64
	apiF   failures

	order    []string
	tasks    map[string]*entry
	gates    map[task.Gate]*gateEntry
	gateT    *time.Timer
	probes   uint64
	drainers []*actor.PID
	draining bool
}

func (s *supervisor) Receive(c *actor.Context) {
	// A panic here would reach hollywood, whose restart would run Started
	// again over live children, and whose restart budget crashes the
	// process when exhausted: log it and drop the message instead.
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Str("panic", fmt.Sprint(v)).Str("stack", string(debug.Stack())).
				Str("message", fmt.Sprintf("%T", c.Message())).Msg("supervisor: a message made it panic; the message was dropped")
		}
	}()
	switch m := c.Message().(type) {
	case actor.Started:
		s.onStarted(c)
	case actors.RunStarted:
		if e := s.current(m.Task, m.Gen); e != nil {
			e.state = StateRunning
		}
	case actors.RunFinished:
		if e := s.current(m.Record.Task, m.Gen); e != nil {
			rec := m.Record
			e.last = &rec
			if m.Running == 0 {
				e.state = s.idleState(e)
			}
		}
	case actors.GateWaiting:
		if e := s.current(m.Task, m.Gen); e != nil {
			e.state = s.idleState(e)
		}
	case actors.Idle:
		if e := s.current(m.Task, m.Gen); e != nil {
			e.idle = true
			s.checkDrained()
		}
	case actors.Crashed:
		s.onCrashed(c, m)
	case respawnMsg:
		s.onRespawn(c, m)
	case apiclient.Result:
		s.onProbeResult(m)
	case gateTick:
		s.probeGates()
		s.gateT = time.AfterFunc(s.opts.gateInterval, func() { s.engine.Send(s.self, gateTick{}) })
	case ListTasks:
		list := TaskList{Tasks: make([]TaskStatus, 0, len(s.order))}
		for _, name := range s.order {
			list.Tasks = append(list.Tasks, s.status(s.tasks[name], false))
		}
		c.Respond(list)
	case GetTask:
		e, ok := s.tasks[m.Name]
		if !ok {
			c.Respond(TaskReply{Err: fmt.Errorf("%w: %q", ErrUnknownTask, m.Name)})
			return
		}
		c.Respond(TaskReply{Task: s.status(e, true)})
	case TriggerTask:
		s.onTrigger(c, m)
	case PauseTask:
		c.Respond(s.onPause(c, m.Name))
	case ResumeTask:
		c.Respond(s.onResume(c, m.Name))
	case Reload:
		c.Respond(s.onReload(c, m.Tasks))
	case Drain:
		s.onDrain(c)
	case actor.Stopped:
		if s.gateT != nil {
			s.gateT.Stop()
		}
		for _, e := range s.tasks {
			if e.respawn != nil {
				e.respawn.Stop()
			}
		}
	default:
		s.onControl(c) // the control plane's protobuf requests (remote.go)
	}
}

func (s *supervisor) onStarted(c *actor.Context) {
	s.engine, s.self = c.Engine(), c.PID()
	if s.opts.start.IsZero() {
		s.opts.start = time.Now()
	}
	start := s.opts.start
	s.tasks = make(map[string]*entry, len(s.specs))
	s.gates = make(map[task.Gate]*gateEntry)
	if s.client != nil {
		s.spawnAPI(c)
	}
	ups := make(map[string]startup, len(s.specs))
	for i := range s.specs {
		spec := &s.specs[i]
		e, up, err := s.prepare(spec, start)
		if err != nil { // kept visible rather than dropped
			s.log.Error().Err(err).Str("task", spec.Name).Msg("task cannot start")
			e = &entry{spec: spec, state: StateFailed}
		}
		s.tasks[spec.Name] = e
		s.order = append(s.order, spec.Name)
		ups[spec.Name] = up
		if g := spec.EnabledIf; g != task.GateNone && s.gates[g] == nil {
			s.gates[g] = &gateEntry{state: actors.GateState{Gate: g}}
		}
	}
	for _, name := range s.order {
		if e := s.tasks[name]; e.sched != nil {
			s.spawnTask(c, e, ups[name])
		}
	}
	if len(s.gates) > 0 {
		s.probeGates()
		if !s.opts.manual {
			s.gateT = time.AfterFunc(s.opts.gateInterval, func() { s.engine.Send(s.self, gateTick{}) })
		}
	}
	s.log.Info().Int("tasks", len(s.order)).Bool("manual", s.opts.manual).Msg("supervisor started")
}

func (s *supervisor) spawnAPI(c *actor.Context) {
	s.apiGen++
	s.api = c.SpawnChild(apiclient.NewActor(s.client), "api", actor.WithID("client"),
		actor.WithMiddleware(actors.Recover(apiName, s.apiGen)), actor.WithMaxRestarts(math.MaxInt32))
}

// startup is what a task's first incarnation does as it starts.
type startup struct {
	fireAtStart bool              // run_on_start
	catchUp     time.Time         // a missed slot to fire once (misfire: once)
	resume      *store.Checkpoint // a run the previous process left unfinished
}

// prepare builds a task's entry from its spec and its stored state: the
// anchor of a fixed-rate schedule (kept across restarts, so slots do not
// move), the paused flag, the run history, the misfire decision and the
// checkpoint of an interrupted run.
func (s *supervisor) prepare(spec *task.Spec, now time.Time) (*entry, startup, error) {
	name := spec.Name
	st, err := s.opts.store.Load(name)
	if err != nil {
		return nil, startup{}, fmt.Errorf("task %q: state store: %w", name, err)
	}
	anchor := s.opts.start
	if spec.Every > 0 {
		if anchor, err = s.opts.store.SetAnchor(name, s.opts.start); err != nil {
			return nil, startup{}, fmt.Errorf("task %q: state store: %w", name, err)
		}
	}
	sched, err := spec.Schedule(anchor)
	if err != nil {
		return nil, startup{}, err
	}
	e := &entry{spec: spec, sched: sched, state: StateScheduled, paused: st.Paused, notBefore: s.opts.start}
	if st.LastSlot.After(e.notBefore) {
		e.notBefore = st.LastSlot
	}
	if n := len(st.Runs); n > 0 {
		last := actors.FromStore(name, st.Runs[n-1])
		e.last = &last
	}
	up := startup{fireAtStart: spec.RunOnStart}
	if s.opts.manual || st.Paused {
		return e, up, nil
	}
	up.resume = st.Checkpoint
	if !st.LastSlot.IsZero() {
		// Slots whose (jittered) fire time passed while no process ran.
		latest, n := schedule.Missed(sched, st.LastSlot, now.Add(-spec.JitterDelay()), actors.MaxMissedCount)
		if n > 0 {
			ev := s.log.Warn().Str("task", name).Int("missed_slots", n).Time("latest", latest).Str("misfire", string(spec.Misfire))
			if spec.Misfire == task.MisfireOnce && (spec.MisfireGrace == 0 || now.Sub(latest) <= spec.MisfireGrace) {
				up.catchUp = latest
				ev.Msg("slots missed while the scheduler was down; firing the most recent one once")
			} else {
				ev.Dur("misfire_grace", spec.MisfireGrace).Msg("slots missed while the scheduler was down; skipped")
			}
			if s.opts.observer != nil {
				s.opts.observer.Missed(name, n)
			}
		}
	}
	return e, up, nil
}

func (s *supervisor) spawnTask(c *actor.Context, e *entry, up startup) {
	e.gen++
	e.idle = false
	var gate actors.GateState
	if g := s.gates[e.spec.EnabledIf]; g != nil {
		gate = g.state
	}
	cfg := actors.TaskConfig{
		Spec:        e.spec,
		Schedule:    e.sched,
		API:         s.api,
		Store:       s.opts.store,
		Gen:         e.gen,
		FireAtStart: up.fireAtStart,
		CatchUp:     up.catchUp,
		NotBefore:   e.notBefore,
		Resume:      up.resume,
		Manual:      s.opts.manual,
		Gate:        gate,
		Paused:      e.paused,
		Logger:      s.log,
		Observer:    s.opts.observer,
	}
	e.state = s.idleState(e)
	// Each incarnation has its own ID, so a new one never collides with the
	// previous one while that is still leaving the registry.
	e.pid = c.SpawnChild(actors.NewTask(cfg), "task", actor.WithID(fmt.Sprintf("%s.%d", e.spec.Name, e.gen)), actor.WithInboxSize(taskInbox),
		actor.WithMiddleware(actors.Recover(e.spec.Name, e.gen)), actor.WithMaxRestarts(math.MaxInt32))
}

// current returns the task's entry if gen is its live incarnation.
func (s *supervisor) current(name string, gen uint64) *entry {
	e := s.tasks[name]
	if e == nil || e.gen != gen || e.state == StateFailed || e.state == StateRestarting {
		return nil
	}
	return e
}

func (s *supervisor) idleState(e *entry) State {
	if e.paused {
		return StatePaused
	}
	if g := s.gates[e.spec.EnabledIf]; g != nil && g.state.Known && !g.state.Open {
		return StateGated
	}
	return StateScheduled
}

func (s *supervisor) status(e *entry, history bool) TaskStatus {
	st := TaskStatus{Name: e.spec.Name, Gate: e.spec.EnabledIf, State: e.state, Restarts: e.restarts}
	if e.sched != nil {
		st.Schedule = e.sched.String()
	}
	if e.sched != nil && !s.opts.manual && e.state != StateFailed && e.state != StateRestarting && e.state != StatePaused {
		// The slot the task actor has armed: computed here rather than
		// reported by the actor on every fire, which keeps the supervisor's
		// inbox out of the per-fire path.
		j := e.spec.JitterDelay()
		if n := actors.FirstSlot(e.sched, j, e.notBefore, time.Now()); !n.IsZero() {
			st.Next = n.Add(j)
		}
	}
	if e.last != nil {
		last := *e.last
		st.LastRun = &last
	}
	if history {
		// The store keeps the last HistorySize runs; the supervisor keeps
		// only the latest, so a task costs no history in memory twice.
		stored, err := s.opts.store.Load(e.spec.Name)
		if err != nil {
			s.log.Error().Err(err).Str("task", e.spec.Name).Msg("state store: cannot read the run history")
		}
		for _, r := range stored.Runs {
			st.History = append(st.History, actors.FromStore(e.spec.Name, r))
		}
	}
	return st
}

func (s *supervisor) onCrashed(c *actor.Context, m actors.Crashed) {
	if m.Name == apiName {
		if m.Gen != s.apiGen {
			return
		}
		s.log.Error().Str("actor", apiName).Str("panic", m.Reason).Str("stack", m.Stack).Msg("API client crashed; restarting it")
		c.Engine().Stop(s.api)
		delay, _ := s.opts.policy.record(&s.apiF, time.Now())
		if delay == 0 {
			delay = s.opts.policy.Max
		}
		time.AfterFunc(delay, func() { s.engine.Send(s.self, respawnMsg{name: apiName, gen: m.Gen}) })
		for _, e := range s.tasks {
			if e.pid != nil && (e.state == StateRunning || e.state == StateScheduled || e.state == StateGated) {
				c.Send(e.pid, actors.APIRestarted{})
			}
		}
		return
	}
	e := s.tasks[m.Name]
	if e == nil || e.gen != m.Gen || e.state == StateFailed || e.state == StateRestarting {
		return
	}
	c.Engine().Stop(e.pid)
	delay, giveUp := s.opts.policy.record(&e.fails, time.Now())
	if giveUp {
		e.state = StateFailed
		s.log.Error().Str("task", e.spec.Name).Str("panic", m.Reason).Int("failures", len(e.fails.at)).
			Dur("window", s.opts.policy.Window).Msg("task crashed too often; marked failed and no longer restarted")
		s.checkDrained()
		return
	}
	e.state = StateRestarting
	s.log.Error().Str("task", e.spec.Name).Str("panic", m.Reason).Str("stack", m.Stack).Dur("backoff", delay).
		Int("failures_in_window", len(e.fails.at)).Msg("task crashed; restarting after backoff")
	gen := e.gen
	e.respawn = time.AfterFunc(delay, func() { s.engine.Send(s.self, respawnMsg{name: e.spec.Name, gen: gen}) })
	s.checkDrained()
}

func (s *supervisor) onRespawn(c *actor.Context, m respawnMsg) {
	if s.draining {
		return
	}
	if m.name == apiName {
		if m.gen != s.apiGen {
			return
		}
		if c.Engine().Registry.GetPID(s.self.ID+"/api", "client") != nil {
			time.AfterFunc(10*time.Millisecond, func() { s.engine.Send(s.self, m) })
			return
		}
		s.spawnAPI(c)
		s.log.Info().Str("actor", apiName).Msg("API client restarted")
		return
	}
	e := s.tasks[m.name]
	if e == nil || e.gen != m.gen || e.state != StateRestarting {
		return
	}
	e.respawn = nil
	e.restarts++
	s.spawnTask(c, e, startup{})
	s.log.Info().Str("task", e.spec.Name).Uint64("incarnation", e.gen).Msg("task restarted")
}

func (s *supervisor) onTrigger(c *actor.Context, m TriggerTask) {
	e, ok := s.tasks[m.Name]
	switch {
	case !ok:
		c.Respond(TriggerError{Err: fmt.Errorf("%w: %q", ErrUnknownTask, m.Name)})
	case e.state == StateFailed || e.state == StateRestarting || e.pid == nil:
		c.Respond(TriggerError{Err: fmt.Errorf("task %q is %s", m.Name, e.state)})
	default:
		// The task actor answers the requester directly.
		c.Engine().SendWithSender(e.pid, actors.Trigger{}, c.Sender())
	}
}

func (s *supervisor) onDrain(c *actor.Context) {
	if c.Sender() != nil {
		s.drainers = append(s.drainers, c.Sender())
	}
	if !s.draining {
		s.draining = true
		if s.gateT != nil {
			s.gateT.Stop()
		}
		for _, e := range s.tasks {
			if e.respawn != nil {
				e.respawn.Stop()
			}
			if e.pid != nil && e.state != StateFailed && e.state != StateRestarting {
				c.Send(e.pid, actors.Drain{})
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
		if !e.idle && e.pid != nil && e.state != StateFailed && e.state != StateRestarting {
			return
		}
	}
	for _, p := range s.drainers {
		s.engine.Send(p, Drained{})
	}
	s.drainers = nil
}

// probeGates asks the backend whether each gate's service is configured.
func (s *supervisor) probeGates() {
	for g, ge := range s.gates {
		s.probes++
		ge.probe = 1<<63 | s.probes
		s.engine.SendWithSender(s.api, apiclient.Call{
			ID:      ge.probe,
			Request: apiclient.Request{Task: "gate-" + string(g), Service: task.ServiceBackend, Method: "GET", Path: g.ProbePath(), Auth: true},
			ReplyTo: s.self,
		}, s.self)
	}
}

func (s *supervisor) onProbeResult(r apiclient.Result) {
	for g, ge := range s.gates {
		if ge.probe != r.ID {
			continue
		}
		ge.probe = 0
		open, err := parseProbe(r)
		if err != nil {
			s.log.Warn().Err(err).Str("gate", string(g)).Msg("gate probe failed; treating the service as not configured")
		}
		prev := ge.state
		ge.state = actors.GateState{Gate: g, Known: true, Open: open}
		if prev != ge.state {
			s.log.Info().Str("gate", string(g)).Bool("configured", open).Msg("gate changed")
		}
		for _, e := range s.tasks {
			if e.spec.EnabledIf != g {
				continue
			}
			if e.pid != nil && e.state != StateFailed && e.state != StateRestarting {
				s.engine.Send(e.pid, ge.state)
			}
			if e.state == StateScheduled || e.state == StateGated {
				e.state = s.idleState(e)
			}
		}
		return
	}
}

func parseProbe(r apiclient.Result) (bool, error) {
	if r.Err != nil {
		return false, r.Err
	}
	var v struct {
		IsConfigured *bool `json:"is_configured"`
	}
	if err := json.Unmarshal(r.Response.Body, &v); err != nil || v.IsConfigured == nil {
		return false, fmt.Errorf("probe reply has no is_configured boolean: %s", actors.Snippet(r.Response.Body))
	}
	return *v.IsConfigured, nil
}

func (s *supervisor) onPause(c *actor.Context, name string) ControlReply {
	e, ok := s.tasks[name]
	switch {
	case !ok:
		return ControlReply{Err: fmt.Errorf("%w: %q", ErrUnknownTask, name)}
	case e.state == StateFailed:
		return ControlReply{Task: s.status(e, false), Err: fmt.Errorf("task %q is failed; resume revives it", name)}
	}
	if !e.paused {
		if err := s.opts.store.SetPaused(name, true); err != nil {
			return ControlReply{Task: s.status(e, false), Err: fmt.Errorf("task %q: state store: %w", name, err)}
		}
		e.paused = true
		if e.pid != nil && e.state != StateRestarting {
			c.Send(e.pid, actors.Pause{})
		}
		if e.state == StateScheduled || e.state == StateGated {
			e.state = StatePaused
		}
		s.log.Info().Str("task", name).Msg("task paused")
	}
	return ControlReply{Task: s.status(e, false)}
}

func (s *supervisor) onResume(c *actor.Context, name string) ControlReply {
	e, ok := s.tasks[name]
	if !ok {
		return ControlReply{Err: fmt.Errorf("%w: %q", ErrUnknownTask, name)}
	}
	wasPaused := e.paused
	if wasPaused {
		if err := s.opts.store.SetPaused(name, false); err != nil {
			return ControlReply{Task: s.status(e, false), Err: fmt.Errorf("task %q: state store: %w", name, err)}
		}
	}
	e.paused = false
	switch {
	case e.state == StateFailed && e.sched != nil && !s.draining:
		e.fails.at = e.fails.at[:0]
		s.spawnTask(c, e, startup{})
		s.log.Info().Str("task", name).Msg("failed task revived")
	case e.state == StateRestarting:
		// The pending respawn starts it unpaused.
	case wasPaused && e.pid != nil:
		c.Send(e.pid, actors.Resume{})
		if e.state == StatePaused {
			e.state = s.idleState(e)
		}
		s.log.Info().Str("task", name).Msg("task resumed")
	}
	return ControlReply{Task: s.status(e, false)}
}

// onReload applies a new task set. Unchanged tasks keep their actor, and so
// their timer and slots; changed ones get a new actor (a run in progress is
// stopped); removed ones are stopped.
func (s *supervisor) onReload(c *actor.Context, specs []task.Spec) ReloadReply {
	specs = append([]task.Spec(nil), specs...)
	if err := task.ValidateSet(specs); err != nil {
		return ReloadReply{Err: err}
	}
	now := time.Now()
	type planned struct {
		entry *entry // nil when unchanged
		up    startup
	}
	plan := make(map[string]planned, len(specs))
	for i := range specs {
		spec := &specs[i]
		if old, ok := s.tasks[spec.Name]; ok && sameSpec(*old.spec, *spec) && old.state != StateFailed {
			plan[spec.Name] = planned{}
			continue
		}
		e, up, err := s.prepare(spec, now)
		if err != nil {
			return ReloadReply{Err: err}
		}
		up.fireAtStart = false // run_on_start means the scheduler's start, not a reload
		plan[spec.Name] = planned{e, up}
	}
	var reply ReloadReply
	order := make([]string, 0, len(specs))
	for _, spec := range specs {
		order = append(order, spec.Name)
	}
	for _, name := range s.order {
		if _, keep := plan[name]; keep {
			continue
		}
		s.retire(c, s.tasks[name])
		delete(s.tasks, name)
		reply.Removed = append(reply.Removed, name)
	}
	for _, name := range order {
		p := plan[name]
		old, exists := s.tasks[name]
		switch {
		case p.entry == nil:
			reply.Unchanged = append(reply.Unchanged, name)
			continue
		case exists:
			s.retire(c, old)
			p.entry.gen, p.entry.restarts = old.gen, old.restarts
			reply.Changed = append(reply.Changed, name)
		default:
			reply.Added = append(reply.Added, name)
		}
		s.tasks[name] = p.entry
		s.addGate(p.entry.spec.EnabledIf)
		s.spawnTask(c, p.entry, p.up)
	}
	s.order = order
	s.log.Info().Strs("added", reply.Added).Strs("removed", reply.Removed).Strs("changed", reply.Changed).
		Int("unchanged", len(reply.Unchanged)).Msg("task set reloaded")
	return reply
}

// retire stops a task's actor and any pending respawn.
func (s *supervisor) retire(c *actor.Context, e *entry) {
	if e.respawn != nil {
		e.respawn.Stop()
		e.respawn = nil
	}
	if e.pid != nil {
		c.Engine().Stop(e.pid)
		e.pid = nil
	}
}

// addGate starts probing a gate that a reloaded task introduced.
func (s *supervisor) addGate(g task.Gate) {
	if g == task.GateNone || s.gates[g] != nil {
		return
	}
	s.gates[g] = &gateEntry{state: actors.GateState{Gate: g}}
	s.probeGates()
	if s.gateT == nil && !s.opts.manual {
		s.gateT = time.AfterFunc(s.opts.gateInterval, func() { s.engine.Send(s.self, gateTick{}) })
	}
}

// sameSpec reports whether two specs describe the same task. In-process jobs
// are compared by function identity.
func sameSpec(a, b task.Spec) bool {
	ja, jb := a.Job, b.Job
	if (ja == nil) != (jb == nil) || (ja != nil && reflect.ValueOf(ja).Pointer() != reflect.ValueOf(jb).Pointer()) {
		return false
	}
	a.Job, b.Job = nil, nil
	return reflect.DeepEqual(a, b)
}
