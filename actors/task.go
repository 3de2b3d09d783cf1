package actors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/schedule"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

// MaxMissedCount bounds the count of missed slots reported at once (after a
// stall, or while no process ran); slots beyond it are still skipped.
const MaxMissedCount = 100_000

// snippetLen is how much of a bad reply goes into errors and logs.
const snippetLen = 200

// TaskConfig configures one incarnation of a task actor.
type TaskConfig struct {
	// Spec is the task (normalized and validated); it must not change while
	// the actor runs.
	Spec *task.Spec
	// Schedule yields the fire instants (built by the supervisor, which owns
	// the anchor so that a restarted actor keeps the same slots).
	Schedule schedule.Schedule
	// API is the API-client actor that performs HTTP calls.
	API *actor.PID
	// Store persists claimed slots, runs and checkpoints (required).
	Store store.Store
	// Gen numbers this incarnation; messages to and from older ones are ignored.
	Gen uint64
	// FireAtStart runs the task as soon as the actor starts (run_on_start).
	FireAtStart bool
	// CatchUp, when not zero, is a missed slot to fire at start (misfire: once).
	CatchUp time.Time
	// Resume, when not nil, is the checkpoint of a run that was interrupted
	// (the process died mid-run): the run is resumed at start.
	Resume *store.Checkpoint
	// NotBefore is the instant after which slots are armed at start: the last
	// slot claimed by an earlier process, or the scheduler's start.
	NotBefore time.Time
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
	c := &cfg // one copy, shared by the producer and the actor it makes
	return func() actor.Receiver {
		return &taskActor{
			cfg:    c,
			log:    &c.Logger,
			gate:   cfg.Gate,
			paused: cfg.Paused,
			jitter: cfg.Spec.JitterDelay(),
		}
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
	id      uint64
	slot    time.Time
	due     time.Time // slot plus the task's jitter
	manual  bool
	resumed bool
	start   time.Time
	pages   int
	items   int
	offset  int
	status  int
	call    uint64 // ID of the call in flight, 0 when none
	cancel  context.CancelFunc
}

type pendingFire struct {
	slot   time.Time
	manual bool
}

type taskActor struct {
	cfg *TaskConfig
	// log is the shared logger: the "task" field is added per event, since
	// a sub-logger would hold a 500-byte context buffer in every task actor.
	log    *zerolog.Logger
	engine *actor.Engine
	self   *actor.PID
	parent *actor.PID
	jitter time.Duration

	timer *time.Timer
	seq   uint64 // arms of the timer; a fire of an older arm is stale

	gate     GateState
	pending  *pendingFire // a fire waiting for the first gate probe
	queued   *pendingFire // a fire waiting for the run in progress (overlap: queue_one)
	nextRun  uint64
	runs     []*run // runs in progress: one, or a few with overlap: allow
	draining bool
	paused   bool
}

func (t *taskActor) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case actor.Started:
		t.onStarted(c)
	case fire:
		if m.seq != t.seq || t.draining || t.paused {
			return
		}
		t.rearm(m.slot)
		if t.claim(m.slot) {
			t.start(m.slot, false)
		}
	case Trigger:
		reply := TriggerReply{Task: t.cfg.Spec.Name}
		reply.Started, reply.Reason = t.start(time.Now(), true)
		if c.Sender() != nil {
			c.Respond(reply)
		}
	case apiclient.Result:
		t.onResult(m)
	case jobDone:
		r := t.runByID(m.run)
		if r == nil {
			return
		}
		r.items = m.items
		if m.err != nil {
			t.finish(r, OutcomeFailed, m.err)
			return
		}
		t.finish(r, OutcomeOK, nil)
	case jobPanic:
		panic(m) // Recover reports it to the supervisor
	case GateState:
		t.onGate(m)
	case APIRestarted:
		for _, r := range t.runs {
			if r.call != 0 {
				r.call = 0
				t.finish(r, OutcomeFailed, errors.New("the API client was restarted while a call was in flight"))
			}
		}
	case Pause:
		t.paused = true
		t.stopTimer()
		t.pending, t.queued = nil, nil
		t.log.Info().Str("task", t.cfg.Spec.Name).Msg("paused")
	case Resume:
		if t.paused && !t.draining {
			t.paused = false
			if !t.cfg.Manual {
				t.arm(t.firstSlot(time.Now()))
			}
			t.log.Info().Str("task", t.cfg.Spec.Name).Msg("resumed")
		}
	case Drain:
		t.draining = true
		t.stopTimer()
		t.pending, t.queued = nil, nil
		if len(t.runs) == 0 {
			c.Send(t.parent, Idle{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen})
		}
	case actor.Stopped:
		t.stopTimer()
		for _, r := range t.runs {
			if r.cancel != nil {
				r.cancel()
			}
		}
	}
}

func (t *taskActor) onStarted(c *actor.Context) {
	t.engine, t.self, t.parent = c.Engine(), c.PID(), c.Parent()
	now := time.Now()
	if !t.cfg.Manual && !t.paused {
		t.arm(t.firstSlot(now))
	}
	if cp := t.cfg.Resume; cp != nil && !t.paused {
		t.resume(*cp)
	}
	if !t.cfg.CatchUp.IsZero() && !t.paused {
		t.log.Info().Str("task", t.cfg.Spec.Name).Time("slot", t.cfg.CatchUp).Msg("firing the most recent missed slot once (misfire: once)")
		if t.claim(t.cfg.CatchUp) {
			t.start(t.cfg.CatchUp, false)
		}
	}
	if t.cfg.FireAtStart && !t.paused && t.claim(now) {
		t.start(now, false)
	}
}

func (t *taskActor) runByID(id uint64) *run {
	for _, r := range t.runs {
		if r.id == id {
			return r
		}
	}
	return nil
}

// firstSlot is the slot to arm when the actor starts or resumes: the first
// one whose jittered fire time is still ahead, but none at or before
// NotBefore (a slot already claimed, or the start slot of a fixed rate).
func (t *taskActor) firstSlot(now time.Time) time.Time {
	return FirstSlot(t.cfg.Schedule, t.jitter, t.cfg.NotBefore, now)
}

// FirstSlot is the slot a task actor arms when it starts or resumes at now:
// the first one whose fire time (slot plus jitter) is still ahead, but none
// at or before notBefore. The supervisor uses it to show a task's next fire.
func FirstSlot(s schedule.Schedule, jitter time.Duration, notBefore, now time.Time) time.Time {
	from := now.Add(-jitter)
	if from.Before(notBefore) {
		from = notBefore
	}
	return s.Next(from)
}

// resume continues a run that a previous process left unfinished. Its slot
// was claimed before, so it is not claimed again. Offset pagination resumes
// at the checkpoint's offset; drain pagination cannot (the rows already
// processed left the result, and the backend's view may have moved), so a
// drain run starts its pagination over, still bounded by max_pages.
func (t *taskActor) resume(cp store.Checkpoint) {
	t.log.Info().Str("task", t.cfg.Spec.Name).Time("slot", cp.Slot).Int("pages_done", cp.Pages).Int("offset", cp.Offset).Str("mode", cp.Mode).
		Msg("resuming a run interrupted by the previous process")
	r := t.newRun(cp.Slot, false)
	r.resumed = true
	if p := t.cfg.Spec.Paginate; p != nil && p.Mode == task.ModeOffset && cp.Mode == string(task.ModeOffset) {
		r.pages, r.offset, r.items = cp.Pages, cp.Offset, cp.Items
	}
	t.launch(r)
}

// claim records in the store that slot fires now. A slot claimed before
// (by this process or one before it) is not fired again.
func (t *taskActor) claim(slot time.Time) bool {
	ok, err := t.cfg.Store.Claim(t.cfg.Spec.Name, slot)
	switch {
	case err != nil:
		t.log.Error().Str("task", t.cfg.Spec.Name).Err(err).Time("slot", slot).Msg("state store: cannot claim the slot; not firing it")
		rec := RunRecord{Task: t.cfg.Spec.Name, Slot: slot, Start: time.Now(), Outcome: OutcomeFailed, Err: fmt.Sprintf("state store: %v", err)}
		t.report(rec)
		return false
	case !ok:
		t.log.Warn().Str("task", t.cfg.Spec.Name).Time("slot", slot).Msg("slot already claimed; not firing it again")
		if t.cfg.Observer != nil {
			t.cfg.Observer.Skipped(t.cfg.Spec.Name, slot, "slot already claimed")
		}
		return false
	}
	return true
}

// arm sets the timer for the slot at next (plus the task's jitter).
func (t *taskActor) arm(next time.Time) {
	t.stopTimer()
	if next.IsZero() {
		t.log.Warn().Str("task", t.cfg.Spec.Name).Msg("schedule has no further fire time; the task will not fire again")
		return
	}
	t.seq++
	seq, engine, self := t.seq, t.engine, t.self
	t.timer = time.AfterFunc(time.Until(next.Add(t.jitter)), func() {
		engine.Send(self, fire{seq: seq, slot: next})
	})
}

// rearm arms the slot after the one firing now. Slots that have already
// passed (the process stalled, or the wall clock jumped forward) are counted
// and skipped: the next slot is always computed from the schedule, never
// from when this run ends, so firing does not drift.
func (t *taskActor) rearm(slot time.Time) {
	latest, missed := schedule.Missed(t.cfg.Schedule, slot, time.Now().Add(-t.jitter), MaxMissedCount)
	if missed == 0 {
		latest = slot
	}
	next := t.cfg.Schedule.Next(latest)
	if missed > 0 {
		t.log.Warn().Str("task", t.cfg.Spec.Name).Int("missed_slots", missed).Time("slot", slot).Time("next", next).Msg("slots passed without firing; skipped to the next one")
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

// start begins a run for slot unless the overlap policy, the gate or
// draining says otherwise. It reports whether the run started (or waits for
// its gate or its turn), or why not.
func (t *taskActor) start(slot time.Time, manual bool) (bool, string) {
	if t.draining {
		return t.skip(slot, manual, "the scheduler is shutting down")
	}
	if len(t.runs) > 0 {
		switch t.cfg.Spec.Overlap {
		case task.OverlapAllow:
		case task.OverlapQueueOne:
			if t.queued == nil {
				t.queued = &pendingFire{slot: slot, manual: manual}
				t.log.Info().Str("task", t.cfg.Spec.Name).Time("slot", slot).Msg("run in progress; this fire is queued (overlap: queue_one)")
				return true, ""
			}
			return t.skip(slot, manual, "the previous run is still in progress and one fire is already queued")
		default:
			return t.skip(slot, manual, "the previous run is still in progress")
		}
	}
	if t.cfg.Spec.EnabledIf != task.GateNone {
		switch {
		case !t.gate.Known:
			t.pending = &pendingFire{slot: slot, manual: manual}
			t.log.Debug().Str("task", t.cfg.Spec.Name).Str("gate", string(t.cfg.Spec.EnabledIf)).Msg("fire waits for the first gate probe")
			t.tell(GateWaiting{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen})
			return true, ""
		case !t.gate.Open:
			return t.skip(slot, manual, t.gateClosed())
		}
	}
	t.launch(t.newRun(slot, manual))
	return true, ""
}

func (t *taskActor) gateClosed() string {
	g := t.cfg.Spec.EnabledIf
	return fmt.Sprintf("the %s service is not configured (enabled_if: %s)", g, g)
}

func (t *taskActor) skip(slot time.Time, manual bool, reason string) (bool, string) {
	ev := t.log.Info().Str("task", t.cfg.Spec.Name)
	if len(t.runs) > 0 {
		ev = t.log.Warn().Str("task", t.cfg.Spec.Name)
	}
	ev.Time("slot", slot).Bool("manual", manual).Str("reason", reason).Msg("fire skipped")
	if t.cfg.Observer != nil {
		t.cfg.Observer.Skipped(t.cfg.Spec.Name, slot, reason)
	}
	if manual {
		// A manual run that cannot happen is recorded, so whoever asked sees why.
		rec := RunRecord{Task: t.cfg.Spec.Name, Slot: slot, Manual: true, Start: slot, Outcome: OutcomeSkipped, Err: reason}
		t.report(rec)
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
		t.skip(p.slot, p.manual, t.gateClosed())
		t.tell(GateWaiting{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen, Closed: true})
		return
	}
	if !t.draining {
		t.start(p.slot, p.manual)
	}
}

func (t *taskActor) newRun(slot time.Time, manual bool) *run {
	t.nextRun++
	r := &run{id: t.nextRun, slot: slot, due: slot, manual: manual, start: time.Now()}
	if !manual {
		r.due = slot.Add(t.jitter)
	}
	return r
}

// launch starts a run: its first (or next, when resumed) page, or its job.
func (t *taskActor) launch(r *run) {
	t.runs = append(t.runs, r)
	lateness := r.start.Sub(r.due)
	if r.manual || r.resumed || lateness < 0 {
		lateness = 0
	}
	t.log.Info().Str("task", t.cfg.Spec.Name).Time("slot", r.slot).Dur("lateness", lateness).Bool("manual", r.manual).Bool("resumed", r.resumed).Msg("run started")
	if t.cfg.Observer != nil {
		t.cfg.Observer.Fired(t.cfg.Spec.Name, r.slot, lateness)
	}
	t.tell(RunStarted{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen, Slot: r.slot})
	if t.cfg.Spec.Job != nil {
		t.runJob(r)
		return
	}
	t.sendPage(r)
}

// runJob runs an in-process job in a goroutine owned by this actor: it is
// cancelled when the actor stops, and its panic is re-raised in Receive.
func (t *taskActor) runJob(r *run) {
	ctx, cancel := context.WithCancel(context.Background())
	if t.cfg.Spec.Timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), t.cfg.Spec.Timeout)
	}
	r.cancel = cancel
	id, job, engine, self := r.id, t.cfg.Spec.Job, t.engine, t.self
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
func (t *taskActor) callID(r *run) uint64 {
	return t.cfg.Gen<<40 | (r.id&0xFFFFF)<<20 | uint64(r.pages&0xFFFFF)
}

// IdempotencyKey is the Idempotency-Key of a page of a task's run for a
// slot: the same on every retry and after a restart, so a backend can drop
// duplicates.
func IdempotencyKey(taskName string, slot time.Time, page int) string {
	sum := sha256.Sum256([]byte(taskName + "\x00" + strconv.FormatInt(slot.UnixNano(), 10) + "\x00" + strconv.Itoa(page)))
	return hex.EncodeToString(sum[:16])
}

func (t *taskActor) sendPage(r *run) {
	spec := t.cfg.Spec
	req := spec.Request
	body := make(map[string]any, len(req.Body)+2)
	maps.Copy(body, req.Body)
	if p := spec.Paginate; p != nil {
		body[p.SizeField] = p.Size
		if p.Mode == task.ModeOffset {
			body[p.OffsetField] = r.offset
		}
	}
	r.call = t.callID(r)
	t.engine.SendWithSender(t.cfg.API, apiclient.Call{
		ID: r.call,
		Request: apiclient.Request{
			Task:           spec.Name,
			Service:        req.Service,
			Method:         req.Method,
			Path:           req.Path,
			Query:          req.Query,
			Body:           body,
			Auth:           req.Auth,
			Timeout:        spec.Timeout,
			IdempotencyKey: IdempotencyKey(spec.Name, r.slot, r.pages+1),
		},
		ReplyTo: t.self,
	}, t.self)
}

func (t *taskActor) onResult(res apiclient.Result) {
	var r *run
	for _, c := range t.runs {
		if c.call != 0 && c.call == res.ID {
			r = c
		}
	}
	if r == nil {
		t.log.Debug().Str("task", t.cfg.Spec.Name).Uint64("call", res.ID).Msg("dropped a reply to an earlier run")
		return
	}
	r.call = 0
	r.pages++
	r.status = res.Response.Status
	if res.Err != nil {
		var se *apiclient.StatusError
		if errors.As(res.Err, &se) {
			r.status = se.Status
		}
		t.finish(r, OutcomeFailed, res.Err)
		return
	}
	key := t.cfg.Spec.Request.Result
	p := t.cfg.Spec.Paginate
	if p != nil {
		key = p.Result
	}
	n, err := CountList(res.Response.Body, key)
	if err != nil {
		t.finish(r, OutcomeFailed, fmt.Errorf("page %d: HTTP %d: %w", r.pages, res.Response.Status, err))
		return
	}
	r.items += n
	if p == nil || n < p.Size {
		t.finish(r, OutcomeOK, nil)
		return
	}
	if r.pages >= p.MaxPages {
		t.finish(r, OutcomeFailed, fmt.Errorf("max_pages (%d) reached with the list still full: the run was stopped", p.MaxPages))
		return
	}
	if p.Mode == task.ModeOffset {
		r.offset += p.Size
	}
	if !r.manual {
		cp := store.Checkpoint{Slot: r.slot, Mode: string(p.Mode), Pages: r.pages, Offset: r.offset, Items: r.items}
		if err := t.cfg.Store.SaveCheckpoint(t.cfg.Spec.Name, cp); err != nil {
			t.log.Error().Str("task", t.cfg.Spec.Name).Err(err).Msg("state store: cannot save the pagination checkpoint")
		}
	}
	t.sendPage(r)
}

func (t *taskActor) finish(r *run, outcome Outcome, err error) {
	t.runs = slices.DeleteFunc(t.runs, func(c *run) bool { return c == r })
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
	if !r.manual && !r.resumed {
		rec.Lateness = max(0, r.start.Sub(r.due))
	}
	if r.cancel != nil {
		r.cancel()
	}
	ev := t.log.Info().Str("task", t.cfg.Spec.Name)
	if err != nil {
		rec.Err = err.Error()
		ev = t.log.Error().Str("task", t.cfg.Spec.Name).Err(err)
	}
	ev.Time("slot", rec.Slot).Str("outcome", string(outcome)).Int("pages", rec.Pages).Int("items", rec.Items).
		Int("status", rec.Status).Dur("duration", rec.Duration).Msg("run finished")
	t.report(rec)
	if q := t.queued; q != nil && len(t.runs) == 0 && !t.draining {
		t.queued = nil
		t.start(q.slot, q.manual)
	}
	if t.draining && len(t.runs) == 0 {
		t.tell(Idle{Task: t.cfg.Spec.Name, Gen: t.cfg.Gen})
	}
}

// report stores a run record and tells the observer and the parent.
func (t *taskActor) report(rec RunRecord) {
	if err := t.cfg.Store.RecordRun(t.cfg.Spec.Name, ToStore(rec)); err != nil {
		t.log.Error().Str("task", t.cfg.Spec.Name).Err(err).Msg("state store: cannot record the run")
	}
	if t.cfg.Observer != nil {
		t.cfg.Observer.RunFinished(rec)
	}
	t.tell(RunFinished{Gen: t.cfg.Gen, Record: rec, Running: len(t.runs)})
}

// ToStore converts a run record to its stored form.
func ToStore(r RunRecord) store.Run {
	return store.Run{
		Slot: r.Slot, Start: r.Start, Manual: r.Manual, Lateness: r.Lateness, Duration: r.Duration,
		Outcome: string(r.Outcome), Pages: r.Pages, Items: r.Items, Status: r.Status, Err: r.Err,
	}
}

// FromStore converts a stored run back to a run record of task.
func FromStore(taskName string, r store.Run) RunRecord {
	return RunRecord{
		Task: taskName, Slot: r.Slot, Start: r.Start, Manual: r.Manual, Lateness: r.Lateness, Duration: r.Duration,
		Outcome: Outcome(r.Outcome), Pages: r.Pages, Items: r.Items, Status: r.Status, Err: r.Err,
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
