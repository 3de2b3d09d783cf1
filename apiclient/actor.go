package apiclient

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/anthdm/hollywood/actor"
	"github.com/rs/zerolog"
)

// Call asks the API-client actor to perform Request; the result is sent to
// ReplyTo as a Result (from the actor's own PID). When ReplyTo is nil the
// sender of the Call is answered instead.
type Call struct {
	// ID is echoed in the Result so that callers can match answers.
	ID uint64
	// Request is the call to perform.
	Request Request
	// ReplyTo receives the Result.
	ReplyTo *actor.PID
}

// Result answers a Call.
type Result struct {
	// ID is the ID of the Call.
	ID uint64
	// Response is the outcome of the call (see Client.Do).
	Response Response
	// Err is nil only for a 2xx answer. Calls cancelled because the actor
	// stopped have errors.Is(Err, ErrStopped).
	Err error
}

// ErrStopped is the Err of Results for calls still queued when the actor
// stops. Calls that were in flight at that moment are cancelled and their
// Err wraps both ErrStopped and context.Canceled.
var ErrStopped = errors.New("apiclient: actor stopped")

// Stats is both the request and the reply of the actor's statistics query:
// send a Stats{} (e.g. with engine.Request) and the actor responds with a
// filled-in Stats.
type Stats struct {
	// InFlight is the number of calls running now.
	InFlight int
	// Queued is the number of admitted calls waiting for a free slot.
	Queued int
	// Done is the number of calls that finished running (answered by a
	// worker goroutine, successfully or not).
	Done uint64
}

// callDone is sent by a worker goroutine to the actor's own PID when its
// call has been answered; owner identifies the actor instance (after an
// engine restart, a fresh instance ignores its predecessor's workers).
type callDone struct{ owner *apiActor }

// pending is an admitted call with its resolved reply address.
type pending struct {
	call    Call
	replyTo *actor.PID
}

// apiActor is the receiver behind NewActor. Its state is touched only from
// Receive; worker goroutines read the fields set at Started, which never
// change afterwards.
type apiActor struct {
	client *Client
	max    int
	log    zerolog.Logger

	engine *actor.Engine
	self   *actor.PID
	ctx    context.Context
	cancel context.CancelCauseFunc

	queue    []pending
	inFlight int
	done     uint64
	stopped  bool
}

// NewActor returns the producer of the API-client actor. It never blocks
// its inbox on network I/O: each admitted call runs in a goroutine owned by
// the actor (cancelled when the actor stops); at most Config().MaxInFlight
// calls run at once, the rest wait in a FIFO queue (nothing is dropped).
// When a goroutine finishes it sends an internal done message to the
// actor's own PID, which admits the next queued call.
//
// The actor also answers a Stats message (via Respond). Calls still in the
// actor's inbox when it is stopped non-gracefully (engine.Stop) are never
// seen by it; use engine.Poison so that they are answered with ErrStopped.
// NewActor panics if c is nil.
func NewActor(c *Client) actor.Producer {
	if c == nil {
		panic("apiclient: NewActor with nil Client")
	}
	return func() actor.Receiver {
		return &apiActor{client: c, max: c.cfg.MaxInFlight, log: c.log}
	}
}

// Receive implements actor.Receiver.
func (a *apiActor) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case actor.Started:
		a.start(c)
	case actor.Stopped:
		a.stop()
	case Call:
		a.enqueue(c, m)
	case *Call:
		if m != nil {
			a.enqueue(c, *m)
		}
	case callDone:
		if m.owner != a {
			return
		}
		a.inFlight--
		a.done++
		a.admit()
	case Stats, *Stats:
		c.Respond(Stats{InFlight: a.inFlight, Queued: len(a.queue), Done: a.done})
	}
}

func (a *apiActor) start(c *actor.Context) {
	if a.ctx != nil {
		return
	}
	a.engine = c.Engine()
	a.self = c.PID()
	parent := c.Context()
	if parent == nil {
		parent = context.Background()
	}
	a.ctx, a.cancel = context.WithCancelCause(parent)
}

// stop cancels the running calls and answers the queued ones with
// ErrStopped. It is idempotent and must never panic (the engine does not
// recover panics in Stopped handlers).
func (a *apiActor) stop() {
	if a.stopped {
		return
	}
	a.stopped = true
	defer func() {
		if r := recover(); r != nil {
			a.log.Error().Str("panic", a.client.redact(fmt.Sprint(r))).Msg("panic while stopping the API-client actor")
		}
	}()
	if a.cancel != nil {
		a.cancel(ErrStopped)
	}
	queued := a.queue
	a.queue = nil
	for _, p := range queued {
		a.reply(p.replyTo, Result{ID: p.call.ID, Err: ErrStopped})
	}
}

func (a *apiActor) enqueue(c *actor.Context, call Call) {
	replyTo := call.ReplyTo
	if replyTo == nil {
		replyTo = c.Sender()
	}
	if a.ctx == nil {
		a.start(c)
	}
	if a.stopped {
		a.reply(replyTo, Result{ID: call.ID, Err: ErrStopped})
		return
	}
	a.queue = append(a.queue, pending{call: call, replyTo: replyTo})
	a.admit()
}

// admit starts queued calls, oldest first, while slots are free.
func (a *apiActor) admit() {
	for !a.stopped && a.inFlight < a.max && len(a.queue) > 0 {
		p := a.queue[0]
		a.queue[0] = pending{}
		a.queue = a.queue[1:]
		if len(a.queue) == 0 {
			a.queue = nil
		}
		a.inFlight++
		go a.run(a.ctx, p)
	}
}

// run performs one call in a worker goroutine, answers it and tells the
// actor that the slot is free. Panics (e.g. from a RoundTripper) become an
// error Result.
func (a *apiActor) run(ctx context.Context, p pending) {
	res := Result{ID: p.call.ID}
	defer func() {
		if r := recover(); r != nil {
			req := p.call.Request
			res.Err = fmt.Errorf("%s %s %s: panic during call: %s", req.Service, req.Method, req.Path, a.client.redact(fmt.Sprint(r)))
			a.log.Error().Str("task", req.Task).Str("service", string(req.Service)).
				Str("method", req.Method).Str("path", req.Path).
				Str("panic", a.client.redact(fmt.Sprint(r))).
				Str("stack", string(debug.Stack())).
				Msg("recovered panic in API call")
		}
		a.reply(p.replyTo, res)
		if !errors.Is(context.Cause(ctx), ErrStopped) {
			// After Stopped nobody needs the slot back (and the PID is gone).
			a.notifyDone()
		}
	}()
	resp, err := a.client.Do(ctx, p.call.Request)
	if err != nil && errors.Is(err, context.Canceled) && errors.Is(context.Cause(ctx), ErrStopped) {
		err = fmt.Errorf("%w: %w", ErrStopped, err)
	}
	res.Response, res.Err = resp, err
}

// reply sends res to replyTo from the actor's PID, never panicking.
func (a *apiActor) reply(replyTo *actor.PID, res Result) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error().Uint64("id", res.ID).Str("panic", fmt.Sprint(r)).Msg("panic while sending an API result")
		}
	}()
	if replyTo == nil {
		a.log.Warn().Uint64("id", res.ID).Msg("API call has no reply address; result dropped")
		return
	}
	a.engine.SendWithSender(replyTo, res, a.self)
}

func (a *apiActor) notifyDone() {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error().Str("panic", fmt.Sprint(r)).Msg("panic while releasing an API call slot")
		}
	}()
	a.engine.Send(a.self, callDone{owner: a})
}
