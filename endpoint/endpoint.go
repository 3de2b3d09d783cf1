// Package endpoint is a hollywood actor.Remoter with the bounds that
// hollywood v1.0.5's own remote lacks. It speaks the same wire protocol (the
// DRPC service and the Envelope and Message types that hollywood's remote
// package exports), so a host using stock remote.New can still talk to an
// engine using it and get its replies, and the reverse.
//
// What it adds:
//
//   - Listening with bounds: a cap on inbound connections (a connection that
//     has sent nothing yet is dropped to admit a new one; when every slot
//     holds a connection that has proved itself, a new one is closed at
//     once), the cap lowered so that the process keeps descriptors in
//     reserve (RLIMIT_NOFILE), a TLS handshake deadline, a deadline for the
//     first envelope and an idle timeout.
//   - Every envelope validated before any of its messages is delivered:
//     indexes in range, a type from an allowlist that unmarshals, a target on
//     this endpoint whose ID is allowed (never hollywood's internals), a sane
//     sender. A bad envelope closes its connection; warnings are rate-limited.
//   - Sending that never stalls: one writer per destination address, each
//     with a bounded queue, a dial timeout, write deadlines and no retry loop
//     shared with other destinations; a cap on destinations, the least
//     recently used closed to make room.
//
// Create it with Listen and pass it to actor.NewEngineConfig().WithRemote.
package endpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/anthdm/hollywood/remote"
	"github.com/rs/zerolog"
	"storj.io/drpc"
	"storj.io/drpc/drpcmanager"
	"storj.io/drpc/drpcmux"
	"storj.io/drpc/drpcserver"
	"storj.io/drpc/drpcwire"
)

// Endpoint is an actor.Remoter: it listens for envelopes addressed to
// actors of its engine and sends its engine's messages to other engines.
type Endpoint struct {
	s       settings
	addr    string // Address(): as configured, with the bound port if it was 0
	port    string
	ln      net.Listener
	warn    *rateLog
	connCap int
	destCap int

	ctx    context.Context // cancelled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the endpoint
	engine atomic.Pointer[actor.Engine]

	started  atomic.Bool
	stopOnce sync.Once

	mu      sync.Mutex
	stopped bool
	conns   map[*inConn]struct{}
	writers map[string]*writer

	n counters
}

// counters are the endpoint's cumulative statistics.
type counters struct {
	accepted, refused, evicted, silent, handshakeFailed atomic.Uint64
	violations, delivered, deliveryFailed               atomic.Uint64
	sent, dropped, unsendable                           atomic.Uint64
}

// Stats is a snapshot of an endpoint's connections and counters.
type Stats struct {
	// Conns is the number of inbound connections held now.
	Conns int
	// Pending is how many of them have not yet completed their TLS
	// handshake (with TLS) or sent a valid envelope (without).
	Pending int
	// Destinations is the number of outbound writers.
	Destinations int
	// MaxConns and MaxDestinations are the caps in force (the options,
	// lowered by the descriptor limit).
	MaxConns, MaxDestinations int
	// Accepted counts the connections admitted; Refused those closed at
	// once because every slot held a proven connection; Evicted the
	// connections that had sent nothing and were dropped to admit a new
	// one; Silent those dropped at the first-frame deadline;
	// HandshakeFailed the failed TLS handshakes.
	Accepted, Refused, Evicted, Silent, HandshakeFailed uint64
	// Violations counts the envelopes refused (each closed its connection).
	Violations uint64
	// Delivered counts the messages handed to local actors;
	// DeliveryFailed those whose delivery panicked.
	Delivered, DeliveryFailed uint64
	// Sent counts the messages written to a destination; Dropped those
	// dropped (queue full, destination unreachable, writer closed);
	// Unsendable those that could not be encoded (not protobuf).
	Sent, Dropped, Unsendable uint64
}

// Listen binds addr (host:port; port 0 picks a free one) and returns an
// endpoint that serves once an engine starts it. The caps in force are the
// options' lowered, if need be, so that inbound connections and outbound
// destinations together leave a reserve of the process's descriptors.
func Listen(addr string, opts ...Option) (*Endpoint, error) {
	s := defaults()
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("remote address %q is not host:port: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err // names the address: "listen tcp ADDR: ..."
	}
	if port == "0" {
		_, port, _ = net.SplitHostPort(ln.Addr().String())
		addr = net.JoinHostPort(host, port)
	}
	return newEndpoint(ln, addr, port, s), nil
}

// newEndpoint serves ln (bound to addr, whose port is port) with s.
func newEndpoint(ln net.Listener, addr, port string, s settings) *Endpoint {
	s.log = s.log.With().Str("component", "remote").Logger()
	e := &Endpoint{
		s:       s,
		addr:    addr,
		port:    port,
		ln:      ln,
		warn:    newRateLog(s.log, s.logInterval),
		conns:   make(map[*inConn]struct{}),
		writers: make(map[string]*writer),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	limit, err := s.openFileLimit()
	if err != nil {
		s.log.Warn().Err(err).Msg("descriptor limit unknown; only the configured caps apply")
	}
	e.connCap, e.destCap = descriptorBudget(limit, s.maxConns, s.maxDests)
	if e.connCap < s.maxConns || e.destCap < s.maxDests {
		s.log.Warn().Uint64("rlimit_nofile", limit).Int("max_conns", e.connCap).Int("max_destinations", e.destCap).
			Msg("remote caps lowered to keep descriptors in reserve for the process")
	}
	return e
}

// Address returns the endpoint's address: the one given to Listen, with
// the bound port if it was 0. The engine's PIDs carry it.
func (e *Endpoint) Address() string { return e.addr }

// Start serves inbound connections, delivering to e's actors. The engine
// calls it (actor.NewEngine); it fails when called twice or after Stop.
func (e *Endpoint) Start(engine *actor.Engine) error {
	if engine == nil {
		return errors.New("remote endpoint: nil engine")
	}
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if stopped {
		return fmt.Errorf("remote endpoint %s: stopped", e.addr)
	}
	if !e.started.CompareAndSwap(false, true) {
		return fmt.Errorf("remote endpoint %s: already started", e.addr)
	}
	e.engine.Store(engine)
	e.wg.Add(1)
	go e.acceptLoop()
	e.s.log.Debug().Str("addr", e.addr).Int("max_conns", e.connCap).Int("max_destinations", e.destCap).
		Bool("tls", e.s.tls != nil).Msg("remote endpoint serving")
	return nil
}

// Stop closes the listener, every connection and every writer (queued
// messages are dropped). It returns a WaitGroup that is done when every
// goroutine of the endpoint has returned; calling it again returns the same.
func (e *Endpoint) Stop() *sync.WaitGroup {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.stopped = true
		conns, writers := e.conns, e.writers
		e.conns, e.writers = map[*inConn]struct{}{}, map[string]*writer{}
		e.mu.Unlock()
		e.cancel()
		_ = e.ln.Close()
		for c := range conns {
			_ = c.raw.Close()
		}
		for _, w := range writers {
			w.cancel()
		}
		e.warn.flush()
		e.s.log.Debug().Str("addr", e.addr).Msg("remote endpoint stopped")
	})
	return &e.wg
}

// Stats returns the connections held now and the counters.
func (e *Endpoint) Stats() Stats {
	e.mu.Lock()
	st := Stats{Conns: len(e.conns), Destinations: len(e.writers), MaxConns: e.connCap, MaxDestinations: e.destCap}
	for c := range e.conns {
		if c.pending {
			st.Pending++
		}
	}
	st.Accepted, st.Refused, st.Evicted = e.n.accepted.Load(), e.n.refused.Load(), e.n.evicted.Load()
	e.mu.Unlock()
	st.Silent, st.HandshakeFailed = e.n.silent.Load(), e.n.handshakeFailed.Load()
	st.Violations, st.Delivered, st.DeliveryFailed = e.n.violations.Load(), e.n.delivered.Load(), e.n.deliveryFailed.Load()
	st.Sent, st.Dropped, st.Unsendable = e.n.sent.Load(), e.n.dropped.Load(), e.n.unsendable.Load()
	return st
}

// inConn is an inbound connection holding a slot.
type inConn struct {
	raw     net.Conn
	peer    string
	since   time.Time
	pending bool // guarded by Endpoint.mu: nothing proven yet
}

// acceptLoop admits connections until the listener is closed. Accept
// errors (EMFILE when the process is out of descriptors) back off instead
// of spinning.
func (e *Endpoint) acceptLoop() {
	defer e.wg.Done()
	var backoff time.Duration
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if e.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			e.warn.event(zerolog.WarnLevel, kindAccept, "remote endpoint cannot accept connections", func(ev *zerolog.Event) {
				ev.Err(err).Float64("retry_in_s", backoff.Seconds())
			})
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-e.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		e.admit(c)
	}
}

// admit gives c a slot, dropping the oldest connection that has not proved
// itself if every slot is taken; if every slot holds a proven connection,
// c is closed at once.
func (e *Endpoint) admit(c net.Conn) {
	ic := &inConn{raw: c, peer: c.RemoteAddr().String(), since: time.Now(), pending: true}
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		_ = c.Close()
		return
	}
	var victim *inConn
	if len(e.conns) >= e.connCap {
		for o := range e.conns {
			if o.pending && (victim == nil || o.since.Before(victim.since)) {
				victim = o
			}
		}
		if victim == nil {
			e.n.refused.Add(1)
			e.mu.Unlock()
			_ = c.Close()
			e.warn.event(zerolog.WarnLevel, kindRefused, "remote connection refused: every slot holds an active connection", func(ev *zerolog.Event) {
				ev.Str("peer", ic.peer).Int("max_conns", e.connCap)
			})
			return
		}
		delete(e.conns, victim)
		e.n.evicted.Add(1)
	}
	e.conns[ic] = struct{}{}
	e.n.accepted.Add(1) // under the lock, so that Stats sees conns and counters agree
	e.wg.Add(1)
	e.mu.Unlock()
	if victim != nil {
		_ = victim.raw.Close()
		e.warn.event(zerolog.WarnLevel, kindEvicted, "remote connection that had sent nothing dropped to admit a new one", func(ev *zerolog.Event) {
			ev.Str("peer", victim.peer).Float64("age_s", time.Since(victim.since).Seconds()).Int("max_conns", e.connCap)
		})
	}
	go e.serve(ic)
}

// prove marks ic as having completed its TLS handshake or sent a valid
// envelope: it is no longer dropped to admit a new connection.
func (e *Endpoint) prove(ic *inConn) {
	e.mu.Lock()
	ic.pending = false
	e.mu.Unlock()
}

// release frees ic's slot and closes it.
func (e *Endpoint) release(ic *inConn) {
	e.mu.Lock()
	delete(e.conns, ic)
	e.mu.Unlock()
	_ = ic.raw.Close()
}

// serve runs one inbound connection: the TLS handshake under its deadline,
// then DRPC with the first-frame and idle deadlines.
func (e *Endpoint) serve(ic *inConn) {
	defer e.wg.Done()
	defer e.release(ic)
	conn := ic.raw
	if e.s.tls != nil {
		_ = ic.raw.SetDeadline(time.Now().Add(e.s.handshake))
		tc := tls.Server(ic.raw, e.s.tls)
		ctx, cancel := context.WithTimeout(e.ctx, e.s.handshake)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			if e.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				e.n.handshakeFailed.Add(1)
				e.warn.event(zerolog.WarnLevel, kindHandshake, "remote TLS handshake failed; connection closed", func(ev *zerolog.Event) {
					ev.Str("peer", ic.peer).Err(err)
				})
			}
			return
		}
		e.prove(ic)
		conn = tc
	}
	dc := newDeadlineConn(conn, e.s.firstFrame, e.s.idle, e.s.writeTimeout)
	h := &connHandler{e: e, ic: ic, dc: dc}
	mux := drpcmux.New()
	if err := remote.DRPCRegisterRemote(mux, h); err != nil {
		e.s.log.Error().Err(err).Msg("registering the DRPC remote service")
		return
	}
	srv := drpcserver.NewWithOptions(mux, drpcserver.Options{
		Manager: drpcmanager.Options{Reader: drpcwire.ReaderOptions{MaximumBufferSize: e.s.maxMessageSize}},
	})
	err := srv.ServeOne(e.ctx, dc)
	switch {
	case e.ctx.Err() != nil || h.violated.Load():
	case dc.timedOut.Load() && !dc.established.Load():
		e.n.silent.Add(1)
		e.warn.event(zerolog.WarnLevel, kindSilent, "remote connection sent no valid envelope in time; closed", func(ev *zerolog.Event) {
			ev.Str("peer", ic.peer).Float64("deadline_s", e.s.firstFrame.Seconds())
		})
	default:
		e.s.log.Debug().Str("peer", ic.peer).AnErr("reason", err).Msg("remote connection closed")
	}
}

// deadlineConn applies the read and write deadlines of an inbound
// connection: an absolute deadline for the first envelope, then an idle
// timeout renewed on every read; a write deadline on every write.
type deadlineConn struct {
	net.Conn
	idle, write time.Duration
	established atomic.Bool
	timedOut    atomic.Bool
}

func newDeadlineConn(c net.Conn, first, idle, write time.Duration) *deadlineConn {
	_ = c.SetDeadline(time.Time{})
	_ = c.SetReadDeadline(time.Now().Add(first))
	return &deadlineConn{Conn: c, idle: idle, write: write}
}

// Read reads with the idle deadline once the connection is established.
func (d *deadlineConn) Read(p []byte) (int, error) {
	if d.established.Load() {
		_ = d.Conn.SetReadDeadline(time.Now().Add(d.idle))
	}
	n, err := d.Conn.Read(p)
	if err != nil && isTimeout(err) {
		d.timedOut.Store(true)
	}
	return n, err
}

// Write writes under the write deadline.
func (d *deadlineConn) Write(p []byte) (int, error) {
	_ = d.Conn.SetWriteDeadline(time.Now().Add(d.write))
	return d.Conn.Write(p)
}

// establish switches from the first-frame deadline to the idle timeout.
func (d *deadlineConn) establish() {
	if d.established.CompareAndSwap(false, true) {
		_ = d.Conn.SetReadDeadline(time.Now().Add(d.idle))
	}
}

// connHandler is the DRPC remote service of one connection.
type connHandler struct {
	e        *Endpoint
	ic       *inConn
	dc       *deadlineConn
	violated atomic.Bool
}

// Receive reads envelopes until the stream ends; a bad envelope closes the
// connection without delivering any of its messages.
func (h *connHandler) Receive(stream remote.DRPCRemote_ReceiveStream) error {
	for {
		var got envelopeDecoder
		if err := stream.MsgRecv(&got, envelopeEncoding{}); err != nil {
			return err // the connection ended (closed, reset, deadline, cancelled)
		}
		msgs, err := got.env, got.err
		var in []inbound
		if err == nil {
			in, err = h.e.check(msgs, h.dc.LocalAddr())
		} else {
			err = violated("undecodable envelope: %v", err)
		}
		if err != nil {
			h.violated.Store(true)
			h.e.n.violations.Add(1)
			h.e.warn.event(zerolog.WarnLevel, kindViolation, "remote protocol violation: envelope dropped and connection closed", func(ev *zerolog.Event) {
				ev.Str("peer", h.ic.peer).Str("reason", err.Error())
			})
			_ = h.ic.raw.Close()
			return err
		}
		h.dc.establish()
		h.e.prove(h.ic)
		for _, m := range in {
			h.e.deliver(m)
		}
	}
}

// deliver hands a validated message to the engine, recovering a panic.
func (e *Endpoint) deliver(m inbound) {
	defer func() {
		if v := recover(); v != nil {
			e.n.deliveryFailed.Add(1)
			e.warn.event(zerolog.ErrorLevel, kindDelivery, "remote message could not be delivered", func(ev *zerolog.Event) {
				ev.Str("target", m.target.ID).Str("recovered", fmt.Sprint(v))
			})
		}
	}()
	engine := e.engine.Load()
	if engine == nil {
		return
	}
	engine.SendLocal(m.target, m.payload, m.sender)
	e.n.delivered.Add(1)
}

// envelopeDecoder receives one DRPC message: the envelope, or why it could
// not be decoded. Decoding in the encoding (rather than through drpc's
// generated Recv) tells a malformed envelope, a protocol violation, from a
// connection that ended.
type envelopeDecoder struct {
	env *remote.Envelope
	err error
}

// envelopeEncoding decodes an Envelope with the protobuf runtime.
type envelopeEncoding struct{}

func (envelopeEncoding) Marshal(drpc.Message) ([]byte, error) {
	return nil, errors.New("the endpoint's inbound encoding only decodes")
}

func (envelopeEncoding) Unmarshal(buf []byte, msg drpc.Message) error {
	d, ok := msg.(*envelopeDecoder)
	if !ok {
		return fmt.Errorf("unexpected message %T", msg)
	}
	d.env = new(remote.Envelope)
	d.err = protoUnmarshal(buf, d.env)
	return nil
}
