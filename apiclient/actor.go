package apiclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

// ErrStopped ends the runs the API-client actor still held when it crashed
// or was stopped.
var ErrStopped = errors.New("the API client stopped")

// Stats is both the request and the reply of the actor's statistics query:
// send a Stats{} (e.g. with engine.Request) and it responds with a filled-in
// Stats.
type Stats struct {
	// InFlight is the number of attempts running now, per service.
	InFlight map[task.Service]int
	// Waiting is the number of runs waiting for an in-flight slot or a
	// rate-limit token (the bounded queue).
	Waiting int
	// Held is the number of runs the actor holds (waiting, in flight or
	// sleeping before a retry).
	Held int
}

// attemptDone carries the outcome of one attempt back from its goroutine.
type attemptDone struct {
	run *apiRun
	out attemptResult
}

// retryDue re-queues a run whose retry backoff has passed.
type retryDue struct{ run *apiRun }

// pageSaved re-queues a run whose checkpoint its sink has saved.
type pageSaved struct{ run *apiRun }

// wake makes the actor dispatch again once a rate-limit token is due.
type wake struct{ at time.Time }

// apiRun is a run held by the actor. Only the actor's goroutine touches it,
// except req and page, which an attempt's goroutine reads while the run is
// in flight (the actor does not touch them meanwhile).
type apiRun struct {
	req      *RunRequest
	progress task.Progress
	status   int
	attempt  int         // attempts made for the current page
	retry    *time.Timer // the backoff before the next attempt, if sleeping
	page     Request     // the request of the current page, built before each attempt
	waitFrom time.Time   // when the run started waiting for a token (zero: not waiting)
	stop     func()      // cancels the attempt in flight (nil when none)
}

// lane is one service's queue and in-flight budget (the bulkhead).
type lane struct {
	service  task.Service
	queue    []*apiRun
	inFlight int
}

type apiActor struct {
	client *Client
	log    zerolog.Logger

	engine *actor.Engine
	self   *actor.PID
	lanes  []*lane
	next   int // the lane served first by the next dispatch (round robin)
	held   map[*apiRun]struct{}
	// waiting counts the runs in the lanes' queues (each bounded by
	// QueueSize).
	waiting int
	wakeAt  time.Time
	wakeT   *time.Timer
	// parked holds runs whose lease may have lapsed; they go back to their
	// queue at the next wake-up.
	parked  []*apiRun
	crashed bool
	stopped bool
}

// NewActor returns the producer of the API-client actor. The actor takes
// whole runs (*RunRequest) and drives their pages: each service has its own
// budget of calls in flight (Config.MaxInFlight each), so a hung backend
// never starves background calls; an attempt first needs a free slot of its
// service, then a token of the shared rate limiter, and neither waiting for
// a token nor sleeping before a retry holds a slot. At most
// Config.QueueSize runs of each service wait; beyond that a run is finished as skipped
// (task.SkipQueueFull) at once. The actor never blocks its inbox on I/O:
// each attempt runs in a goroutine it owns, at most the in-flight budgets
// at once.
//
// A panic in the actor is recovered: every run it held is finished as
// failed at once (ErrStopped), and a Crashed-like report goes to its parent
// through onCrash. When the actor is stopped, the runs it still holds are
// left to their owners (who cancel them).
//
// The actor also answers a Stats message (via Respond).
func NewActor(c *Client, onCrash func(ctx *actor.Context, reason any, stack []byte)) actor.Producer {
	if c == nil {
		panic("apiclient: NewActor with nil Client")
	}
	return func() actor.Receiver {
		a := &apiActor{client: c, log: c.log, held: make(map[*apiRun]struct{})}
		for _, s := range task.Services {
			a.lanes = append(a.lanes, &lane{service: s})
		}
		return &crashGuard{a: a, onCrash: onCrash}
	}
}

// crashGuard recovers a panic in the actor's Receive, fails every run the
// actor held and reports the crash; later messages are dropped until the
// actor is stopped.
type crashGuard struct {
	a       *apiActor
	onCrash func(ctx *actor.Context, reason any, stack []byte)
}

// Receive implements actor.Receiver.
func (g *crashGuard) Receive(c *actor.Context) {
	if g.a.crashed {
		if _, ok := c.Message().(actor.Stopped); ok {
			g.a.stop()
		}
		return
	}
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		stack := debug.Stack()
		g.a.crashed = true
		g.a.failAll(fmt.Errorf("%w: it crashed (%v)", ErrStopped, v))
		if g.onCrash != nil {
			g.onCrash(c, v, stack)
		}
	}()
	g.a.Receive(c)
}

// Receive handles one message.
func (a *apiActor) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case actor.Started:
		a.engine, a.self = c.Engine(), c.PID()
	case actor.Stopped:
		a.stop()
	case *RunRequest:
		a.accept(m)
	case attemptDone:
		a.onAttempt(m.run, m.out)
	case retryDue:
		m.run.retry = nil
		if _, ok := a.held[m.run]; ok {
			a.enqueue(m.run)
		}
	case pageSaved:
		if _, ok := a.held[m.run]; ok {
			a.enqueue(m.run)
		}
	case wake:
		if m.at.Equal(a.wakeAt) {
			a.wakeAt = time.Time{}
		}
		a.unpark()
	case Stats, *Stats:
		st := Stats{InFlight: make(map[task.Service]int, len(a.lanes)), Waiting: a.waiting, Held: len(a.held)}
		for _, l := range a.lanes {
			st.InFlight[l.service] = l.inFlight
		}
		c.Respond(st)
		return
	default:
		return
	}
	a.dispatch()
}

// accept takes a new run, unless the queue is full or the run was ended
// already.
func (a *apiActor) accept(req *RunRequest) {
	if req == nil || req.Sink == nil || req.Request == nil {
		a.log.Error().Msg("API client: a run request without a request or a sink was dropped")
		return
	}
	if a.stopped {
		req.Sink.Finish(RunResult{Outcome: task.OutcomeFailed, Progress: req.From, Err: ErrStopped})
		return
	}
	// Each service has its own bound, so that the runs piling up behind a
	// hung service never keep the other's out.
	if l := a.lane(req.Request.Service); l != nil && len(l.queue) >= a.client.cfg.QueueSize {
		req.Sink.Finish(RunResult{Outcome: task.OutcomeSkipped, Reason: task.SkipQueueFull, Progress: req.From,
			Err: fmt.Errorf("%d runs of the %s service are already waiting for the API client (MOJODEX_SCHEDULER_QUEUE_SIZE)", len(l.queue), l.service)})
		return
	}
	r := &apiRun{req: req, progress: req.From}
	a.held[r] = struct{}{}
	a.enqueue(r)
}

func (a *apiActor) lane(s task.Service) *lane {
	for _, l := range a.lanes {
		if l.service == s {
			return l
		}
	}
	return nil
}

// enqueue puts a run at the back of its service's queue.
func (a *apiActor) enqueue(r *apiRun) {
	l := a.lane(r.req.Request.Service)
	if l == nil {
		a.finish(r, RunResult{Outcome: task.OutcomeFailed, Err: fmt.Errorf("unknown service %q", r.req.Request.Service)})
		return
	}
	l.queue = append(l.queue, r)
	a.waiting++
}

// dispatch starts attempts while a service has both a queued run and a free
// slot, and a rate-limit token is available. When the next token is not
// due yet it arms one wake-up and returns, holding no slot.
func (a *apiActor) dispatch() {
	if a.stopped {
		return
	}
	now := time.Now()
	for {
		started := false
		for i := range a.lanes {
			idx := (a.next + i) % len(a.lanes)
			l := a.lanes[idx]
			if l.inFlight >= a.client.cfg.MaxInFlight || len(l.queue) == 0 {
				continue
			}
			r := l.queue[0]
			if a.expired(r, now) {
				a.pop(l)
				started = true
				continue
			}
			if r.req.Lease != nil && !r.req.Lease.Valid(now) {
				a.pop(l)
				a.park(r, now)
				started = true
				continue
			}
			if d := a.client.reserveToken(now); d > 0 {
				if r.waitFrom.IsZero() {
					r.waitFrom = now
				}
				a.armWake(now.Add(d))
				return
			}
			a.pop(l)
			a.next = (idx + 1) % len(a.lanes)
			a.launch(l, r, now)
			started = true
		}
		if !started {
			return
		}
	}
}

// leaseRecheck is how often a run whose lease may have lapsed is looked at
// again.
const leaseRecheck = time.Second

// park sets aside a run whose lease may have lapsed.
func (a *apiActor) park(r *apiRun, now time.Time) {
	a.parked = append(a.parked, r)
	a.armWake(now.Add(leaseRecheck))
}

// unpark puts the parked runs back in their queues.
func (a *apiActor) unpark() {
	parked := a.parked
	a.parked = nil
	for _, r := range parked {
		if _, ok := a.held[r]; ok {
			a.enqueue(r)
		}
	}
}

func (a *apiActor) pop(l *lane) {
	l.queue[0] = nil
	l.queue = l.queue[1:]
	if len(l.queue) == 0 {
		l.queue = nil
	}
	a.waiting--
}

// expired ends a queued run whose owner ended it or whose deadline passed.
func (a *apiActor) expired(r *apiRun, now time.Time) bool {
	switch {
	case r.req.Ctx != nil && r.req.Ctx.Err() != nil:
		a.release(r)
		return true
	case !r.req.Deadline.IsZero() && !now.Before(r.req.Deadline):
		a.finish(r, RunResult{Outcome: task.OutcomeFailed, Err: fmt.Errorf("deadline exceeded after %d pages", r.progress.Pages)})
		return true
	}
	return false
}

func (a *apiActor) armWake(at time.Time) {
	if !a.wakeAt.IsZero() && !at.Before(a.wakeAt) {
		return
	}
	a.wakeAt = at
	engine, self := a.engine, a.self
	if a.wakeT != nil {
		a.wakeT.Stop()
	}
	a.wakeT = time.AfterFunc(time.Until(at), func() { engine.Send(self, wake{at: at}) })
}

// launch runs one attempt of r's current page in a goroutine.
func (a *apiActor) launch(l *lane, r *apiRun, now time.Time) {
	l.inFlight++
	r.attempt++
	if !r.waitFrom.IsZero() {
		if obs := a.client.cfg.Observer; obs != nil {
			obs.RateWaited(r.page, now.Sub(r.waitFrom))
		}
		r.waitFrom = time.Time{}
	}
	r.page = a.pageRequest(r)
	timeout := r.req.Timeout
	if timeout <= 0 {
		timeout = a.client.cfg.Timeout
	}
	if !r.req.Deadline.IsZero() {
		timeout = min(timeout, r.req.Deadline.Sub(now))
	}
	ctx, cancel := context.WithCancel(r.req.Ctx)
	r.stop = cancel
	engine, self, client, page := a.engine, a.self, a.client, r.page
	go func() {
		var out attemptResult
		defer func() {
			if v := recover(); v != nil {
				out = attemptResult{retryAfter: -1, err: fmt.Errorf("panic during the call: %s", client.redact(fmt.Sprint(v)))}
			}
			engine.Send(self, attemptDone{run: r, out: out})
		}()
		out = client.try(ctx, page, timeout)
	}()
}

// pageRequest builds the request of r's next page.
func (a *apiActor) pageRequest(r *apiRun) Request {
	q := r.req.Request
	body := make(map[string]any, len(q.Body)+2)
	maps.Copy(body, q.Body)
	if p := r.req.Paginate; p != nil {
		body[p.SizeField] = p.Size
		if p.Mode == task.ModeOffset {
			body[p.OffsetField] = r.progress.Offset
		}
	}
	return Request{
		Task:           r.req.Task,
		Service:        q.Service,
		Method:         q.Method,
		Path:           q.Path,
		Query:          q.Query,
		Body:           body,
		Auth:           q.Auth,
		IdempotencyKey: IdempotencyKey(r.req.Task, r.req.Slot, r.progress.Pages+1),
	}
}

// onAttempt handles the outcome of an attempt: the next page, a retry after
// a backoff, or the end of the run.
func (a *apiActor) onAttempt(r *apiRun, out attemptResult) {
	if l := a.lane(r.req.Request.Service); l != nil {
		l.inFlight--
	}
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
	if _, ok := a.held[r]; !ok {
		return
	}
	if r.req.Ctx != nil && r.req.Ctx.Err() != nil {
		a.release(r)
		return
	}
	if out.err != nil {
		if out.status != 0 {
			r.status = out.status
		}
		if wait, ok := a.client.retryWait(r.page, out, r.attempt); ok {
			if dl := r.req.Deadline; dl.IsZero() || time.Now().Add(wait).Before(dl) {
				a.client.noteRetry(r.page, out, r.attempt, wait)
				engine, self := a.engine, a.self
				r.retry = time.AfterFunc(wait, func() { engine.Send(self, retryDue{run: r}) })
				return
			}
		}
		r.progress.Pages++
		a.finish(r, RunResult{Outcome: task.OutcomeFailed, Err: a.client.attemptError(r.page, r.attempt, out.err)})
		return
	}
	r.progress.Pages++
	r.status = out.status
	r.attempt = 0
	key := r.req.Request.Result
	p := r.req.Paginate
	if p != nil {
		key = p.Result
	}
	n, err := a.client.CountList(out.body, key)
	if err != nil {
		a.finish(r, RunResult{Outcome: task.OutcomeFailed, Err: fmt.Errorf("page %d: HTTP %d: %w", r.progress.Pages, out.status, err)})
		return
	}
	r.progress.Items += n
	if p == nil || n < p.Size {
		a.finish(r, RunResult{Outcome: task.OutcomeOK})
		return
	}
	if r.progress.Pages >= p.MaxPages {
		a.finish(r, RunResult{Outcome: task.OutcomeFailed,
			Err: fmt.Errorf("max_pages (%d) reached with the list still full: the run was stopped", p.MaxPages)})
		return
	}
	if p.Mode == task.ModeOffset {
		r.progress.Offset += p.Size
	}
	engine, self := a.engine, a.self
	r.req.Sink.Progress(r.progress, r.status, func() { engine.Send(self, pageSaved{run: r}) })
}

// finish ends a run held by the actor and reports it.
func (a *apiActor) finish(r *apiRun, res RunResult) {
	a.release(r)
	if res.Progress == (task.Progress{}) {
		res.Progress = r.progress
	}
	if res.Status == 0 {
		res.Status = r.status
	}
	r.req.Sink.Finish(res)
}

// release forgets a run without reporting it.
func (a *apiActor) release(r *apiRun) {
	delete(a.held, r)
	if r.retry != nil {
		r.retry.Stop()
		r.retry = nil
	}
}

// failAll finishes every run the actor holds with err.
func (a *apiActor) failAll(err error) {
	for r := range a.held {
		if r.stop != nil {
			r.stop()
		}
		a.finish(r, RunResult{Outcome: task.OutcomeFailed, Err: err})
	}
	for _, l := range a.lanes {
		l.queue = nil
	}
	a.waiting = 0
}

// stop is the Stopped handler: it must not panic (hollywood does not
// recover panics there). The attempts in flight are cancelled (the actor
// owns their goroutines); the runs still held are left to their owners.
func (a *apiActor) stop() {
	defer func() {
		if v := recover(); v != nil {
			a.log.Error().Str("panic", fmt.Sprint(v)).Msg("panic while stopping the API-client actor")
		}
	}()
	if a.stopped {
		return
	}
	a.stopped = true
	if a.wakeT != nil {
		a.wakeT.Stop()
	}
	for r := range a.held {
		if r.retry != nil {
			r.retry.Stop()
		}
		if r.stop != nil {
			r.stop()
		}
	}
}
