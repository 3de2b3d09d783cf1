package actors

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/internal/msg"
	"github.com/mojodex/mojodex-scheduler/schedule"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// MaxMissedCount bounds the count of missed slots reported at once (after a
// stall, or while no process ran); slots beyond it are still skipped.
const MaxMissedCount = 100_000

// TaskConfig configures one incarnation of a task actor.
type TaskConfig struct {
	// Spec is the task (normalized and validated); it must not change
	// while the actor runs.
	Spec *task.Spec
	// Schedule yields the fire instants (built by the supervisor, which
	// owns the anchor so that every incarnation keeps the same slots).
	Schedule schedule.Schedule
	// Gen numbers this incarnation.
	Gen uint64
	// Stored is what the store held about the task when this incarnation
	// was spawned: last claimed slot, paused flag, latest run, runs in
	// progress (which the actor resumes).
	Stored store.TaskState
	// Start is the scheduler's start: no slot at or before it is armed
	// (the first slot of a fixed rate is one period after its anchor).
	Start time.Time
	// FireAtStart also fires once as soon as the actor starts (run_on_start).
	FireAtStart bool
	// Manual arms no timer and resumes nothing: the task runs only when
	// triggered (the once command).
	Manual bool
	// Gate is the gate's state when the actor starts.
	Gate msg.Gate
}

// NewTask returns the producer of a task actor sharing rt. Spawn it with a
// small inbox (it holds a handful of messages at a time) and without
// middleware: the actor recovers its own panics and reports them to its
// parent as msg.Crashed, then ignores every message until it is stopped.
func NewTask(rt *Runtime, cfg TaskConfig) actor.Producer {
	c := &cfg // one copy, shared by the producer and the actor it makes
	return func() actor.Receiver {
		return &taskActor{
			rt:     rt,
			cfg:    c,
			name:   c.Spec.Name,
			jitter: c.Spec.JitterDelay(),
			limit:  c.Spec.RunDeadline(rt.cfg.AttemptTimeout, rt.cfg.Attempts, rt.cfg.BackoffMax),
			gate:   c.Gate,
		}
	}
}

// pendingFire is a fire waiting for the gate's first probe, or for the run
// in progress (overlap: queue_one). claimed is true when its slot was
// claimed (it must then be recorded, run or skipped).
type pendingFire struct {
	slot    time.Time
	manual  bool
	claimed bool
}

// checkDeadlines makes the actor end the runs past their deadline.
type checkDeadlines struct{}

// BackstopGrace is how long after a run's deadline its task actor ends it
// if its executor has not: the executor's own deadline (a job's context,
// the API client's attempt timeouts) gets the first chance, with the more
// precise error; the task actor's is for a result that never comes back.
const BackstopGrace = time.Second

// persisted reports that a pause or resume was stored.
type persisted struct {
	paused bool
	err    error
	reply  chan<- error
}

type taskActor struct {
	rt     *Runtime
	cfg    *TaskConfig
	name   string
	jitter time.Duration
	limit  time.Duration // run deadline
	self   *actor.PID
	parent *actor.PID

	alarm     *alarm
	notBefore time.Time

	gate     msg.Gate
	paused   bool
	draining bool
	idleSent bool
	crashed  bool
	retired  string // why the task is being retired; empty otherwise

	runs    []*run // runs in progress: one, or a few with overlap: allow
	queued  *pendingFire
	pending *pendingFire
	// last is the latest result (valid when hasLast), kept by value: a
	// fire allocates nothing for it.
	last    task.Run
	hasLast bool

	backstop   *time.Timer
	backstopAt time.Time
}

// Receive implements actor.Receiver. It only dispatches: every case is a
// method of its own.
func (t *taskActor) Receive(c *actor.Context) {
	if t.crashed {
		t.receiveCrashed(c)
		return
	}
	defer t.guard()
	if f, ok := c.Message().(*fire); ok {
		t.onFireMessage(f)
		t.settle()
		return
	}
	if t.receiveOther(c) {
		t.settle()
	}
}

// errCrashed answers the requests a crashed actor gets before it is stopped.
var errCrashed = errors.New("the task crashed and is being restarted")

// receiveCrashed is Receive once the actor has crashed: it does nothing but
// answer requests (so that no asker waits for its timeout) until it is
// stopped.
func (t *taskActor) receiveCrashed(c *actor.Context) {
	switch m := c.Message().(type) {
	case actor.Stopped:
		t.onStopped()
	case msg.Status:
		m.Reply <- task.Status{Name: t.name, Gate: t.cfg.Spec.EnabledIf, State: task.StateRestarting}
	case msg.Trigger:
		m.Reply <- msg.TriggerResult{Err: errCrashed}
	case msg.Pause:
		m.Reply <- errCrashed
	case msg.Resume:
		m.Reply <- errCrashed
	}
}

// onFireMessage handles the one message of a fire.
func (t *taskActor) onFireMessage(m *fire) {
	f := *m // the timer service reuses the message for the next fire
	if f.seq != 0 {
		t.alarm.pending.Store(false) // taken: the next slot may fire
	}
	t.collect()
	t.onFire(&f, time.Now())
}

// receiveOther handles every message but a fire; it reports whether the
// actor should settle afterwards.
func (t *taskActor) receiveOther(c *actor.Context) bool {
	switch m := c.Message().(type) {
	case runDone:
		t.collect()
	case checkDeadlines:
		t.collect()
		t.onDeadlines()
	case jobPanic:
		panic(m)
	case msg.Trigger:
		t.onTrigger(m)
	case msg.Status:
		t.collect()
		st := t.status()
		if m.Upcoming > 0 {
			st.Upcoming = t.upcoming(m.Upcoming)
		}
		m.Reply <- st
	case msg.Pause:
		t.onPause(m.Reply)
	case msg.Resume:
		t.onResume(m.Reply)
	case persisted:
		t.onPersisted(m)
	case msg.Gate:
		t.collect()
		t.onGate(m)
	case msg.Drain:
		t.collect()
		t.onDrain()
	case msg.Retire:
		t.retired = m.Reason
		t.disarm()
	case msg.TakeOver:
		t.collect()
		t.onTakeOver(m)
	case msg.SyncPaused:
		t.onSyncPaused(m.Paused)
	case actor.Started:
		t.onStarted(c)
	case actor.Stopped:
		t.onStopped()
		return false
	default:
		return false
	}
	return true
}

// onTrigger runs the task now, if it may, and answers.
func (t *taskActor) onTrigger(m msg.Trigger) {
	t.collect()
	now := time.Now()
	started, reason := t.start(now, true, false, now)
	m.Reply <- msg.TriggerResult{Started: started, Reason: reason}
}

// guard recovers a panic in Receive: the runs in progress fail, the parent
// is told, and the actor ignores everything but Stopped from then on.
func (t *taskActor) guard() {
	v := recover()
	if v == nil {
		return
	}
	stack := debug.Stack()
	if jp, ok := v.(jobPanic); ok {
		v, stack = jp.value, jp.stack
	}
	t.crashed = true
	t.disarm()
	t.stopBackstop()
	for _, r := range t.runs {
		r.finish(task.OutcomeFailed, "", nil, 0, fmt.Errorf("the task crashed: %v", v))
	}
	t.runs = nil
	if t.parent != nil {
		t.rt.engine.Send(t.parent, msg.Crashed{Name: t.name, Gen: t.cfg.Gen, Reason: fmt.Sprint(v), Stack: string(stack)})
	}
}

func (t *taskActor) onStarted(c *actor.Context) {
	t.self, t.parent = c.PID(), c.Parent()
	t.alarm = &alarm{pid: t.self, name: t.name, sched: t.cfg.Schedule, jitter: t.jitter}
	if t.rt.Shared() {
		t.rt.names.put(t.alarm) // the reaper hands this actor the runs it takes over
	}
	st := t.cfg.Stored
	t.paused = st.Paused
	if st.Last != nil {
		t.last, t.hasLast = *st.Last, true
	}
	t.notBefore = t.cfg.Start
	if st.LastSlot.After(t.notBefore) {
		t.notBefore = st.LastSlot
	}
	if t.cfg.Manual || t.paused {
		return
	}
	now := time.Now()
	if !t.rt.Shared() {
		// With a shared store, runs left in progress are resumed through
		// the reaper, once their owner's lease has lapsed.
		for _, ip := range st.InProgress {
			t.resume(ip, now)
		}
	}
	var catchUp time.Time
	if !st.LastSlot.IsZero() {
		// Slots whose (jittered) fire time passed while no process ran.
		latest, n := schedule.Missed(t.cfg.Schedule, st.LastSlot, now.Add(-t.jitter), MaxMissedCount)
		if n > 0 {
			spec := t.cfg.Spec
			ev := t.rt.log.Warn().Str("task", t.name).Int("missed_slots", n).Time("latest", latest).Str("misfire", string(spec.Misfire))
			if spec.Misfire == task.MisfireOnce && (spec.MisfireGrace == 0 || now.Sub(latest) <= spec.MisfireGrace) {
				catchUp = latest
				ev.Msg("slots missed while the scheduler was down; firing the most recent one once")
			} else {
				ev.Msg("slots missed while the scheduler was down; skipped")
			}
			t.rt.obs.Missed(t.name, n)
		}
	}
	t.armSlot(t.firstSlot(now))
	if !catchUp.IsZero() {
		t.fireOnce(catchUp)
	}
	if t.cfg.FireAtStart {
		t.fireOnce(now)
	}
}

// fireOnce claims slot outside the timer (a catch-up, a start-up fire); its
// fire message follows like any other.
func (t *taskActor) fireOnce(slot time.Time) {
	t.rt.claim([]alarmEntry{entry(t.alarm, 0, slot, slot)})
}

// resume continues a run that a previous process (or incarnation) left in
// progress; its slot was claimed before, so it is not claimed again. Offset
// pagination resumes at the checkpoint's offset with the same
// Idempotency-Key for the page it was on; drain pagination starts over
// (the rows processed have left the result, and resuming could not be told
// from starting over); a run without pagination runs again.
func (t *taskActor) resume(ip store.InProgress, now time.Time) {
	from := t.resumeFrom(ip.Progress)
	t.rt.log.Info().Str("task", t.name).Time("slot", ip.Slot).Int("pages_done", ip.Progress.Pages).Int("offset", from.Offset).
		Msg("resuming a run left in progress by the previous process")
	t.launch(ip.Slot, false, true, from, 1, now)
}

// onTakeOver resumes a run this replica took over (see resume).
func (t *taskActor) onTakeOver(m msg.TakeOver) {
	t.launch(m.Slot, false, true, t.resumeFrom(m.Progress), m.Epoch, time.Now())
}

// resumeFrom is where a run left in progress at checkpoint p starts again:
// at p in offset pagination, from the start otherwise (see resume).
func (t *taskActor) resumeFrom(p task.Progress) task.Progress {
	if pg := t.cfg.Spec.Paginate; pg != nil && pg.Mode == task.ModeOffset {
		return p
	}
	return task.Progress{}
}

// firstSlot is the slot to arm at start or on resume: the first whose fire
// time (slot plus jitter) is still ahead, but none at or before notBefore.
func (t *taskActor) firstSlot(now time.Time) time.Time {
	return FirstSlot(t.cfg.Schedule, t.jitter, t.notBefore, now)
}

// FirstSlot is the slot a task actor arms when it starts or resumes at now:
// the first one whose fire time (slot plus jitter) is still ahead, but none
// at or before notBefore.
func FirstSlot(s schedule.Schedule, jitter time.Duration, notBefore, now time.Time) time.Time {
	from := now.Add(-jitter)
	if from.Before(notBefore) {
		from = notBefore
	}
	return s.Next(from)
}

// armSlot arms the timer for slot (fired at slot plus jitter). It is on
// the fire path: it calls the timer service directly, with a small entry.
func (t *taskActor) armSlot(slot time.Time) {
	if slot.IsZero() {
		t.noFurtherFire()
		return
	}
	seq := t.alarm.set(slot.UnixNano())
	t.alarm.pending.Store(false)
	t.rt.arm(t.alarm, seq, slot.UnixNano())
}

// armed returns the slot armed (zero when none).
func (t *taskActor) armed() time.Time {
	if t.alarm == nil {
		return time.Time{}
	}
	if n := t.alarm.armed(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// noFurtherFire disarms a schedule that has ended.
func (t *taskActor) noFurtherFire() {
	t.disarm()
	t.rt.log.Warn().Str("task", t.name).Msg("the schedule has no further fire time; the task will not fire again")
}

func (t *taskActor) disarm() {
	if t.alarm != nil {
		t.alarm.set(0)
	}
}

// onFire handles a fire: a scheduled one still armed, or a one-off; a
// slot whose claim was won starts, the others are counted and logged.
func (t *taskActor) onFire(f *fire, now time.Time) {
	oneOff := f.seq == 0
	if !oneOff {
		if f.seq != t.alarm.seq.Load() {
			t.stale(f, now)
			return
		}
	} else if t.paused || t.draining || t.retired != "" {
		t.stale(f, now)
		return
	}
	switch {
	case f.err != nil:
		t.rt.obs.Skipped(t.name, f.slot, task.SkipStore)
		t.retryAfterStoreError(f.slot, now)
	case f.refused == store.RefusedStale:
		t.rt.log.Warn().Str("task", t.name).Time("slot", f.slot).Int64("version", t.rt.version.Load()).
			Msg("not firing: this replica runs an older task set than the shared store's current one")
		t.rt.obs.Skipped(t.name, f.slot, task.SkipStale)
	case !f.won:
		if t.rt.Shared() {
			// Another replica won it: the normal case with replicas.
			t.rt.log.Debug().Str("task", t.name).Time("slot", f.slot).Msg("slot claimed by another replica")
		} else {
			t.rt.log.Warn().Str("task", t.name).Time("slot", f.slot).Msg("slot already claimed; not firing it again")
		}
		t.rt.obs.Skipped(t.name, f.slot, task.SkipClaimed)
	default:
		t.start(f.slot, false, true, now)
	}
}

// storeRetry is how long after a failed claim a misfire: once task tries
// its slot again.
const storeRetry = time.Second

// retryAfterStoreError applies the misfire policy to a slot whose claim
// failed (the store was unreachable): a misfire: once task tries it again
// until the store answers or its next slot comes (then it is missed); the
// others miss it.
func (t *taskActor) retryAfterStoreError(slot, now time.Time) {
	spec := t.cfg.Spec
	retryAt := now.Add(storeRetry)
	if spec.Misfire != task.MisfireOnce || (spec.MisfireGrace > 0 && retryAt.Sub(slot) > spec.MisfireGrace) ||
		(!t.armed().IsZero() && !retryAt.Before(t.armed().Add(t.jitter))) {
		t.rt.obs.Missed(t.name, 1)
		return
	}
	t.rt.timers.At(retryAt, entry(t.alarm, 0, slot, slot.Add(t.jitter)))
}

// stale handles a fire that lost its arming (paused, drained, retired
// meanwhile): a slot it claimed is recorded as skipped, so that it does not
// stay in progress.
func (t *taskActor) stale(f *fire, now time.Time) {
	if !f.won {
		return
	}
	reason := task.SkipPaused
	if t.draining || t.retired != "" {
		reason = task.SkipDraining
	}
	t.skip(f.slot, false, true, reason, now)
}

// start begins a run for slot unless the overlap policy, the gate or
// draining says otherwise; it reports whether the run started (or waits
// for its gate or its turn), or why not.
func (t *taskActor) start(slot time.Time, manual, claimed bool, now time.Time) (bool, task.SkipReason) {
	if t.draining || t.retired != "" {
		return t.skip(slot, manual, claimed, task.SkipDraining, now)
	}
	if len(t.runs) > 0 {
		switch t.cfg.Spec.Overlap {
		case task.OverlapAllow:
		case task.OverlapQueueOne:
			if t.queued == nil {
				t.queued = &pendingFire{slot: slot, manual: manual, claimed: claimed}
				t.rt.log.Info().Str("task", t.name).Time("slot", slot).Msg("run in progress; this fire is queued (overlap: queue_one)")
				return true, ""
			}
			return t.skip(slot, manual, claimed, task.SkipOverlap, now)
		default:
			return t.skip(slot, manual, claimed, task.SkipOverlap, now)
		}
	}
	if t.cfg.Spec.EnabledIf != task.GateNone {
		switch {
		case !t.gate.Known && t.pending == nil:
			t.pending = &pendingFire{slot: slot, manual: manual, claimed: claimed}
			t.rt.log.Debug().Str("task", t.name).Str("gate", string(t.cfg.Spec.EnabledIf)).Msg("fire waits for the first gate probe")
			return true, ""
		case !t.gate.Known:
			return t.skip(slot, manual, claimed, task.SkipOverlap, now)
		case !t.gate.Open:
			return t.skip(slot, manual, claimed, task.SkipGated, now)
		}
	}
	epoch := int64(1)
	if manual {
		epoch = 0
	}
	t.launch(slot, manual, false, task.Progress{}, epoch, now)
	return true, ""
}

// skip drops a fire: logged, counted, and recorded when it was manual or
// its slot was claimed.
func (t *taskActor) skip(slot time.Time, manual, claimed bool, reason task.SkipReason, now time.Time) (bool, task.SkipReason) {
	text := reason.Describe(t.cfg.Spec.EnabledIf)
	ev := t.rt.log.Info()
	if reason == task.SkipOverlap {
		ev = t.rt.log.Warn()
	}
	ev = ev.Str("task", t.name).Time("slot", slot).Str("reason", string(reason))
	if manual {
		ev = ev.Bool("manual", true)
	}
	ev.Msg("fire skipped: " + text)
	t.rt.obs.Skipped(t.name, slot, reason)
	if manual || claimed {
		rec := task.Run{Task: t.name, Slot: slot, Manual: manual, Start: now, Outcome: task.OutcomeSkipped,
			Reason: reason, Err: text, Replica: t.rt.cfg.Replica}
		t.last, t.hasLast = rec, true
		t.rt.record(rec, nil, func(bool) { t.rt.obs.RunFinished(rec) })
	}
	return false, reason
}

// launch starts a run and hands it to its executor.
func (t *taskActor) launch(slot time.Time, manual, resumed bool, from task.Progress, epoch int64, now time.Time) {
	spec := t.cfg.Spec
	r := &run{
		rt: t.rt, owner: t.self, name: t.name, job: spec.Job,
		slot: slot, due: slot, start: now, deadline: now.Add(t.limit),
		manual: manual, resumed: resumed, progress: from, epoch: epoch,
	}
	if t.rt.Shared() && !manual {
		t.rt.hold(r, now)
	}
	r.ctx.deadline = r.deadline
	if !manual {
		r.due = slot.Add(t.jitter)
	}
	if armed := t.armed(); !armed.IsZero() {
		r.next = armed.Add(t.jitter)
	}
	t.runs = append(t.runs, r)
	t.started(r, now)
	t.armBackstop(r.deadline, now)
	if spec.Job != nil {
		if !t.rt.jobs.submit(r) {
			t.queueFull(r)
		}
		return
	}
	t.sendRun(r, from)
}

// queueFull skips a run the job workers cannot take.
func (t *taskActor) queueFull(r *run) {
	r.finish(task.OutcomeSkipped, task.SkipQueueFull, nil, 0, fmt.Errorf("%d jobs are already waiting for a worker", t.rt.cfg.JobQueue))
}

// sendRun hands an HTTP run to the API-client actor.
func (t *taskActor) sendRun(r *run, from task.Progress) {
	spec := t.cfg.Spec
	t.rt.engine.Send(t.rt.cfg.API, &apiclient.RunRequest{
		Task: t.name, Request: spec.Request, Paginate: spec.Paginate, Slot: r.slot, From: from,
		Timeout: spec.Timeout, Deadline: r.deadline, Ctx: &r.ctx, Sink: r, Lease: r,
	})
}

// started logs and counts a run that starts.
func (t *taskActor) started(r *run, now time.Time) {
	lateness := now.Sub(r.due)
	if r.manual || r.resumed || lateness < 0 {
		lateness = 0
	}
	ev := t.rt.log.Info().Str("task", t.name).Time("slot", r.slot).Float64("lateness_s", lateness.Seconds())
	if r.manual {
		ev = ev.Bool("manual", true)
	}
	if r.resumed {
		ev = ev.Bool("resumed", true)
	}
	ev.Msg("run started")
	t.rt.obs.Fired(t.name, r.slot, lateness)
}

// collect forgets the runs that have finished, keeping the latest result.
func (t *taskActor) collect() {
	n := 0
	for _, r := range t.runs {
		if r.done() {
			if !t.hasLast || !r.result.Start.Before(t.last.Start) {
				t.last, t.hasLast = r.result, true
			}
			continue
		}
		t.runs[n] = r
		n++
	}
	clear(t.runs[n:])
	t.runs = t.runs[:n] // the backing array is kept for the next fire
}

// settle does what waits for the runs to end: start the queued fire, report
// idle after a drain; and asks to be told when they do.
func (t *taskActor) settle() {
	if len(t.runs) == 0 {
		if q := t.queued; q != nil {
			t.queued = nil
			t.start(q.slot, q.manual, q.claimed, time.Now())
		}
		if t.draining && !t.idleSent && len(t.runs) == 0 {
			t.idleSent = true
			t.rt.engine.Send(t.parent, msg.Idle{Task: t.name, Gen: t.cfg.Gen})
		}
		return
	}
	if t.queued != nil || t.draining {
		for _, r := range t.runs {
			if r.watch() {
				// It finished meanwhile: look again.
				t.rt.engine.Send(t.self, runDone{run: r})
			}
		}
	}
}

// armBackstop makes sure the actor looks at its runs by at, whatever
// happens to their executors (a lost message, a hung job).
func (t *taskActor) armBackstop(at, now time.Time) {
	if !t.backstopAt.IsZero() && t.backstopAt.After(now) && !at.Before(t.backstopAt) {
		return
	}
	t.backstopAt = at
	if t.backstop == nil {
		engine, self := t.rt.engine, t.self
		t.backstop = time.AfterFunc(at.Sub(now), func() { engine.Send(self, checkDeadlines{}) })
		return
	}
	t.backstop.Reset(at.Sub(now))
}

func (t *taskActor) stopBackstop() {
	if t.backstop != nil {
		t.backstop.Stop()
	}
	t.backstopAt = time.Time{}
}

// onDeadlines enforces the runs' deadlines: at its deadline a run's context
// is done (DeadlineExceeded), so a job or an HTTP call that honours it
// stops; BackstopGrace later the run is failed if its executor has not
// ended it. The backstop is then armed for the next such instant.
func (t *taskActor) onDeadlines() {
	now := time.Now()
	t.backstopAt = time.Time{}
	for _, r := range t.runs {
		if !now.Before(r.deadline) {
			r.ctx.end(context.DeadlineExceeded)
		}
		if !now.Before(r.deadline.Add(BackstopGrace)) {
			r.finish(task.OutcomeFailed, "", nil, 0, fmt.Errorf("%w: the run took longer than its run_timeout (%s)", errDeadline, t.limit))
		}
	}
	t.collect()
	var next time.Time
	for _, r := range t.runs {
		at := r.deadline
		if !now.Before(at) {
			at = at.Add(BackstopGrace)
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if !next.IsZero() {
		t.armBackstop(next, now)
	}
}

func (t *taskActor) onGate(g msg.Gate) {
	if g.Gate != t.cfg.Spec.EnabledIf {
		return
	}
	t.gate = g
	if t.pending == nil || !g.Known {
		return
	}
	p := *t.pending
	t.pending = nil
	t.start(p.slot, p.manual, p.claimed, time.Now())
}

// dropWaiting skips the fires waiting for the gate or for the run in
// progress.
func (t *taskActor) dropWaiting(reason task.SkipReason) {
	now := time.Now()
	for _, p := range []*pendingFire{t.pending, t.queued} {
		if p != nil {
			t.skip(p.slot, p.manual, p.claimed, reason, now)
		}
	}
	t.pending, t.queued = nil, nil
}

func (t *taskActor) onPause(reply chan<- error) {
	if !t.paused {
		t.paused = true
		t.disarm()
		t.dropWaiting(task.SkipPaused)
		t.rt.log.Info().Str("task", t.name).Int("runs_in_progress", len(t.runs)).Msg("task paused")
	}
	t.persist(true, reply)
}

// onSyncPaused follows a pause or a resume made on another replica.
func (t *taskActor) onSyncPaused(paused bool) {
	switch {
	case paused && !t.paused:
		t.paused = true
		t.disarm()
		t.dropWaiting(task.SkipPaused)
		t.rt.log.Info().Str("task", t.name).Msg("task paused (on another replica)")
	case !paused && t.paused:
		t.paused = false
		if !t.cfg.Manual && !t.draining && t.retired == "" {
			t.armSlot(t.firstSlot(time.Now()))
		}
		t.rt.log.Info().Str("task", t.name).Msg("task resumed (on another replica)")
	}
}

func (t *taskActor) onResume(reply chan<- error) {
	t.persist(false, reply)
}

// persist stores the paused flag; the reply is sent once it is stored.
func (t *taskActor) persist(paused bool, reply chan<- error) {
	engine, self := t.rt.engine, t.self
	t.rt.Committer().Submit(&store.Batch{Pauses: []store.Pause{{Task: t.name, Paused: paused}}}, func(err error) {
		engine.Send(self, persisted{paused: paused, err: err, reply: reply})
	})
}

func (t *taskActor) onPersisted(p persisted) {
	if p.err != nil {
		t.rt.log.Error().Str("task", t.name).Bool("paused", p.paused).Err(p.err).Msg("state store: cannot store the paused flag")
	} else if !p.paused && t.paused {
		t.paused = false
		if !t.cfg.Manual && !t.draining && t.retired == "" {
			t.armSlot(t.firstSlot(time.Now()))
		}
		t.rt.log.Info().Str("task", t.name).Msg("task resumed")
	}
	if p.reply != nil {
		p.reply <- p.err
	}
}

func (t *taskActor) onDrain() {
	t.draining = true
	t.disarm()
	t.dropWaiting(task.SkipDraining)
}

// onStopped is the Stopped handler: it must not panic (hollywood does not
// recover panics there). Runs still in progress are abandoned (left in
// progress in the store, for the next start to resume) at a shutdown, or
// ended as failed when the task is retired or crashed.
func (t *taskActor) onStopped() {
	defer func() {
		if v := recover(); v != nil {
			t.rt.log.Error().Str("task", t.name).Str("panic", fmt.Sprint(v)).Msg("panic while stopping a task actor")
		}
	}()
	t.disarm()
	t.stopBackstop()
	if t.alarm != nil {
		t.rt.names.drop(t.alarm)
	}
	for _, r := range t.runs {
		switch {
		case t.retired != "":
			r.finish(task.OutcomeFailed, "", nil, 0, fmt.Errorf("stopped: %s", t.retired))
		case r.manual:
			r.finish(task.OutcomeFailed, "", nil, 0, fmt.Errorf("interrupted by the shutdown"))
		case r.abandon():
			t.rt.log.Warn().Str("task", t.name).Time("slot", r.slot).
				Msg("run interrupted by the shutdown; the next start resumes it")
		}
	}
	t.runs = nil
}

// upcoming returns the next n fires (jitter included) from the slot armed.
func (t *taskActor) upcoming(n int) []time.Time {
	armed := t.armed()
	if armed.IsZero() {
		return nil
	}
	slots := append([]time.Time{armed}, schedule.Upcoming(t.cfg.Schedule, armed, n-1)...)
	for i := range slots {
		slots[i] = slots[i].Add(t.jitter)
	}
	return slots
}

// status describes the task as the actor sees it.
func (t *taskActor) status() task.Status {
	spec := t.cfg.Spec
	st := task.Status{Name: t.name, Gate: spec.EnabledIf, GateKnown: t.gate.Known, GateOpen: t.gate.Open, State: task.StateScheduled}
	switch {
	case len(t.runs) > 0:
		st.State = task.StateRunning
	case t.paused:
		st.State = task.StatePaused
	case spec.EnabledIf != task.GateNone && t.gate.Known && !t.gate.Open:
		st.State = task.StateGated
	}
	if armed := t.armed(); !armed.IsZero() {
		st.Next = armed.Add(t.jitter)
	}
	for _, r := range t.runs {
		st.Running = append(st.Running, r.running())
	}
	slices.SortFunc(st.Running, func(a, b task.Running) int { return a.Start.Compare(b.Start) })
	if t.hasLast {
		last := t.last
		st.Last = &last
	}
	return st
}
