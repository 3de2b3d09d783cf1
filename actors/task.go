package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/schedule"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

// maxMissedCount bounds the loop that counts slots missed after a stall.
const maxMissedCount = 100_000

// snippetLen is how much of a bad reply goes into errors and logs.
const snippetLen = 200

// TaskConfig configures one incarnation of a task actor.
type TaskConfig struct {
	// Spec is the task (normalized and validated).
	Spec task.Spec
	// Schedule yields the fire instants (built by the supervisor, which owns
	// the anchor so that a restarted actor keeps the same slots).
	Schedule schedule.Schedule
	// API is the API-client actor that performs HTTP calls.
	API *actor.PID
	// Gen numbers this incarnation; messages to and from older ones are ignored.
	Gen uint64
	// FireAtStart runs the task as soon as the actor starts (run_on_start).
	FireAtStart bool
	// Manual arms no timer: the task runs only on Trigger.
	Manual bool
	// Paused starts the actor paused (see Pause).
	Paused bool
	// Gate is the gate's state when the actor starts.
	Gate GateState
	// Logger receives the actor's events; a "task" field is added.
	Logger zerolog.Logger
	// Observer, if not nil, receives run events.
	Observer Observer
}

// NewTask returns the producer of a task actor.
func NewTask(cfg TaskConfig) actor.Producer {
	return func() actor.Receiver {
		return &taskActor{cfg: cfg, gate: cfg.Gate, paused: cfg.Paused, log: cfg.Logger.With().Str("task", cfg.Spec.Name).Logger()}
	}
}

type fire struct {
	seq  uint64
	slot time.Time
}

type jobDone struct {
	run   uint64
	items int
	err   error
}

type run struct {
	id     uint64
	slot   time.Time
	manual bool
	start  time.Time
	pages  int
	items  int
	offset int
	status int
	call   uint64 // ID of the call in flight
	cancel context.CancelFunc
}

type pendingFire struct {
	slot   time.Time
	manual bool
}

type taskActor struct {
	cfg    TaskConfig
	log    zerolog.Logger
	engine *actor.Engine
	self   *actor.PID
	parent *actor.PID

	timer *time.Timer
	seq   uint64 // arms of the timer; a fire of an older arm is stale
	next  time.Time

	gate     GateState
	pending  *pendingFire // a fire waiting for the first gate probe
	runs     uint64
	cur      *run
	draining bool
	paused   bool
}

func (t *taskActor) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case actor.Started:
		t.engine, t.self, t.parent = c.Engine(), c.PID(), c.Parent()
		now := time.Now()
		if !t.cfg.Manual && !t.paused {
			t.arm(t.cfg.Schedule.Next(now))
		}
		if t.cfg.FireAtStart && !t.paused {
			t.start(now, false)
		}
	case fire:
		if m.seq != t.seq || t.draining || t.paused {
			return
		}
		t.rearm(m.slot)
		t.start(m.slot, false)
	case Trigger:
		reply := TriggerReply{Task: t.cfg.Spec.Name}
		reply.Started, reply.Reason = t.start(time.Now(), true)
		if c.Sender() != nil {
			c.Respond(reply)
		}
	case apiclient.Result:
		t.onResult(m)
	case jobDone:
		if t.cur == nil || t.cur.id != m.run {
			return
		}
		t.cur.items = m.items
		if m.err != nil {
			t.finish(OutcomeFailed, m.err)
			return
		}
		t.finish(OutcomeOK, nil)
	case jobPanic:
		panic(m) // Recover reports it to the supervisor
	case GateState:
		t.onGate(m)
	case APIRestarted:
		if t.cur != nil && t.cur.call != 0 {
			t.finish(OutcomeFailed, errors.New("the API client was restarted while a call was in flight"))
		}
	case Pause:
		t.paused = true
		t.stopTimer()
		t.pending = nil
		t.log.Info().Msg("paused")
	case Resume:
		if t.paused && !t.draining {
			t.paused = false
			if !t.cfg.Manual {
				t.arm(t.cfg.Schedule.Next(time.Now()))
			}
			t.log.Info().Time("next", t.next).Msg("resumed")
		}
	case Drain:
		t.draining = true
		t.stopTimer()
		t.pending = nil
		if t.cur == nil {
			c.Send(t.parent, Idle{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen})
		}
	case actor.Stopped:
		t.stopTimer()
		if t.cur != nil && t.cur.cancel != nil {
			t.cur.cancel()
		}
	}
}

// arm sets the timer for the slot at next.
func (t *taskActor) arm(next time.Time) {
	t.stopTimer()
	if next.IsZero() {
		t.log.Warn().Msg("schedule has no further fire time; the task will not fire again")
		return
	}
	t.seq++
	seq, engine, self := t.seq, t.engine, t.self
	t.next = next
	t.timer = time.AfterFunc(time.Until(next), func() {
		engine.Send(self, fire{seq: seq, slot: next})
	})
	t.tell(Armed{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen, Next: next})
}

// rearm arms the slot after the one firing now. Slots that have already
// passed (the process stalled, or the wall clock jumped forward) are counted
// and skipped: the next slot is always computed from the schedule, never
// from when this run ends, so firing does not drift.
func (t *taskActor) rearm(slot time.Time) {
	now := time.Now()
	next := t.cfg.Schedule.Next(slot)
	missed := 0
	for !next.IsZero() && !next.After(now) && missed < maxMissedCount {
		missed++
		next = t.cfg.Schedule.Next(next)
	}
	if missed == maxMissedCount {
		next = t.cfg.Schedule.Next(now)
	}
	if missed > 0 {
		t.log.Warn().Int("missed_slots", missed).Time("slot", slot).Time("next", next).Msg("slots passed without firing; skipped to the next one")
		if t.cfg.Observer != nil {
			t.cfg.Observer.Missed(t.cfg.Spec.Name, missed)
		}
	}
	t.arm(next)
}

func (t *taskActor) stopTimer() {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
}

func (t *taskActor) tell(msg any) {
	if t.parent != nil {
		t.engine.Send(t.parent, msg)
	}
}

// start begins a run for slot unless one is in progress, the gate is closed
// or the actor is draining. It reports whether the run started, or why not.
func (t *taskActor) start(slot time.Time, manual bool) (bool, string) {
	switch {
	case t.draining:
		return t.skip(slot, manual, "the scheduler is shutting down")
	case t.cur != nil:
		return t.skip(slot, manual, "the previous run is still in progress")
	}
	if t.cfg.Spec.EnabledIf != task.GateNone {
		switch {
		case !t.gate.Known:
			t.pending = &pendingFire{slot: slot, manual: manual}
			t.log.Debug().Str("gate", string(t.cfg.Spec.EnabledIf)).Msg("fire waits for the first gate probe")
			t.tell(GateWaiting{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen})
			return true, ""
		case !t.gate.Open:
			return t.skip(slot, manual, fmt.Sprintf("the %s service is not configured (enabled_if: %s)", t.cfg.Spec.EnabledIf, t.cfg.Spec.EnabledIf))
		}
	}
	t.begin(slot, manual)
	return true, ""
}

func (t *taskActor) skip(slot time.Time, manual bool, reason string) (bool, string) {
	ev := t.log.Info()
	if t.cur != nil {
		ev = t.log.Warn()
	}
	ev.Time("slot", slot).Bool("manual", manual).Str("reason", reason).Msg("fire skipped")
	if t.cfg.Observer != nil {
		t.cfg.Observer.Skipped(t.cfg.Spec.Name, slot, reason)
	}
	if manual {
		// A manual run that cannot happen is recorded, so whoever asked sees why.
		rec := RunRecord{Task: t.cfg.Spec.Name, Slot: slot, Manual: true, Start: slot, Outcome: OutcomeSkipped, Err: reason}
		if t.cfg.Observer != nil {
			t.cfg.Observer.RunFinished(rec)
		}
		t.tell(RunFinished{Gen: t.cfg.Gen, Record: rec})
	}
	return false, reason
}

func (t *taskActor) onGate(g GateState) {
	if g.Gate != t.cfg.Spec.EnabledIf {
		return
	}
	t.gate = g
	if t.pending == nil || !g.Known {
		return
	}
	p := *t.pending
	t.pending = nil
	if !g.Open {
		t.skip(p.slot, p.manual, fmt.Sprintf("the %s service is not configured (enabled_if: %s)", g.Gate, g.Gate))
		t.tell(GateWaiting{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen, Closed: true})
		return
	}
	if t.cur == nil && !t.draining {
		t.begin(p.slot, p.manual)
	}
}

func (t *taskActor) begin(slot time.Time, manual bool) {
	now := time.Now()
	t.runs++
	t.cur = &run{id: t.runs, slot: slot, manual: manual, start: now}
	lateness := now.Sub(slot)
	if manual {
		lateness = 0
	}
	t.log.Info().Time("slot", slot).Dur("lateness", lateness).Bool("manual", manual).Msg("run started")
	if t.cfg.Observer != nil {
		t.cfg.Observer.Fired(t.cfg.Spec.Name, slot, lateness)
	}
	t.tell(RunStarted{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen, Slot: slot})
	if t.cfg.Spec.Job != nil {
		t.runJob()
		return
	}
	t.sendPage()
}

// runJob runs an in-process job in a goroutine owned by this actor: it is
// cancelled when the actor stops, and its panic is re-raised in Receive.
func (t *taskActor) runJob() {
	ctx, cancel := context.WithCancel(context.Background())
	if t.cfg.Spec.Timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), t.cfg.Spec.Timeout)
	}
	t.cur.cancel = cancel
	id, job, engine, self := t.cur.id, t.cfg.Spec.Job, t.engine, t.self
	go func() {
		defer cancel()
		defer func() {
			if v := recover(); v != nil {
				engine.Send(self, jobPanic{value: v, stack: debug.Stack()})
			}
		}()
		items, err := job(ctx)
		engine.Send(self, jobDone{run: id, items: items, err: err})
	}()
}

// callID ties a call to this incarnation, run and page, so that a late reply
// to an earlier one is recognised and dropped.
func (t *taskActor) callID() uint64 {
	return t.cfg.Gen<<40 | (t.cur.id&0xFFFFF)<<20 | uint64(t.cur.pages&0xFFFFF)
}

func (t *taskActor) sendPage() {
	spec := t.cfg.Spec
	r := spec.Request
	body := make(map[string]any, len(r.Body)+2)
	maps.Copy(body, r.Body)
	if p := spec.Paginate; p != nil {
		body[p.SizeField] = p.Size
		if p.Mode == task.ModeOffset {
			body[p.OffsetField] = t.cur.offset
		}
	}
	t.cur.call = t.callID()
	t.engine.SendWithSender(t.cfg.API, apiclient.Call{
		ID: t.cur.call,
		Request: apiclient.Request{
			Task:    spec.Name,
			Service: r.Service,
			Method:  r.Method,
			Path:    r.Path,
			Query:   r.Query,
			Body:    body,
			Auth:    r.Auth,
			Timeout: spec.Timeout,
		},
		ReplyTo: t.self,
	}, t.self)
}

func (t *taskActor) onResult(res apiclient.Result) {
	if t.cur == nil || t.cur.call != res.ID {
		t.log.Debug().Uint64("call", res.ID).Msg("dropped a reply to an earlier run")
		return
	}
	t.cur.call = 0
	t.cur.pages++
	t.cur.status = res.Response.Status
	if res.Err != nil {
		var se *apiclient.StatusError
		if errors.As(res.Err, &se) {
			t.cur.status = se.Status
		}
		t.finish(OutcomeFailed, res.Err)
		return
	}
	key := t.cfg.Spec.Request.Result
	p := t.cfg.Spec.Paginate
	if p != nil {
		key = p.Result
	}
	n, err := CountList(res.Response.Body, key)
	if err != nil {
		t.finish(OutcomeFailed, fmt.Errorf("page %d: HTTP %d: %w", t.cur.pages, res.Response.Status, err))
		return
	}
	t.cur.items += n
	if p == nil || n < p.Size {
		t.finish(OutcomeOK, nil)
		return
	}
	if t.cur.pages >= p.MaxPages {
		t.finish(OutcomeFailed, fmt.Errorf("max_pages (%d) reached with the list still full: the run was stopped", p.MaxPages))
		return
	}
	if p.Mode == task.ModeOffset {
		t.cur.offset += p.Size
	}
	t.sendPage()
}

func (t *taskActor) finish(outcome Outcome, err error) {
	r := t.cur
	t.cur = nil
	rec := RunRecord{
		Task:     t.cfg.Spec.Name,
		Slot:     r.slot,
		Manual:   r.manual,
		Start:    r.start,
		Duration: time.Since(r.start),
		Outcome:  outcome,
		Pages:    r.pages,
		Items:    r.items,
		Status:   r.status,
	}
	if !r.manual {
		rec.Lateness = r.start.Sub(r.slot)
	}
	if r.cancel != nil {
		r.cancel()
	}
	ev := t.log.Info()
	if err != nil {
		rec.Err = err.Error()
		ev = t.log.Error().Err(err)
	}
	ev.Time("slot", rec.Slot).Str("outcome", string(outcome)).Int("pages", rec.Pages).Int("items", rec.Items).
		Int("status", rec.Status).Dur("duration", rec.Duration).Msg("run finished")
	if t.cfg.Observer != nil {
		t.cfg.Observer.RunFinished(rec)
	}
	t.tell(RunFinished{Gen: t.cfg.Gen, Record: rec})
	if t.draining {
		t.tell(Idle{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen})
	}
}

// CountList checks that body is a JSON object and returns the length of the
// list under key (when key is empty, only the object is checked). Any other
// shape is an error that quotes the first 200 bytes of the body.
func CountList(body []byte, key string) (int, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return 0, fmt.Errorf("reply is not a JSON object: %s", Snippet(body))
	}
	if key == "" {
		return 0, nil
	}
	raw, ok := obj[key]
	if !ok {
		return 0, fmt.Errorf("reply has no %q list: %s", key, Snippet(body))
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return 0, fmt.Errorf("reply's %q is not a list: %s", key, Snippet(body))
	}
	return len(list), nil
}

// Snippet quotes at most the first 200 bytes of b.
func Snippet(b []byte) string {
	if len(b) > snippetLen {
		return strconv.Quote(string(b[:snippetLen])) + "..."
	}
	return strconv.Quote(string(b))
}
