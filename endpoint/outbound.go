package endpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/anthdm/hollywood/remote"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
	"storj.io/drpc/drpcconn"
	"storj.io/drpc/drpcmanager"
	"storj.io/drpc/drpcwire"
)

// writer sends the messages for one destination address, in order, over
// one connection that it dials when it has something to send.
type writer struct {
	addr   string
	queue  chan *remote.Envelope
	ctx    context.Context // cancelled when the writer is evicted or the endpoint stops
	cancel context.CancelFunc
	used   time.Time // guarded by Endpoint.mu
}

// Send encodes msg (a protobuf message) for the actor pid on another engine
// and queues it on the writer of pid's address. It never blocks: a message
// that is not protobuf, or that finds its destination's queue full, is
// dropped with a rate-limited log line. The engine calls it for every PID
// whose address is not its own.
func (e *Endpoint) Send(pid *actor.PID, msg any, sender *actor.PID) {
	defer func() {
		if v := recover(); v != nil {
			e.unsendable(pid, msg, fmt.Errorf("encoding failed: %v", v))
		}
	}()
	if pid == nil || pid.Address == "" || pid.ID == "" {
		e.unsendable(pid, msg, fmt.Errorf("target PID without an address or ID"))
		return
	}
	pm, ok := msg.(proto.Message)
	if !ok || pm == nil {
		e.unsendable(pid, msg, fmt.Errorf("a %T is not a protobuf message; only protobuf crosses a remote", msg))
		return
	}
	data, err := proto.Marshal(pm)
	if err != nil {
		e.unsendable(pid, msg, fmt.Errorf("encoding: %w", err))
		return
	}
	env := &remote.Envelope{
		Targets:   []*actor.PID{actor.NewPID(pid.Address, pid.ID)},
		TypeNames: []string{string(pm.ProtoReflect().Descriptor().FullName())},
		Messages:  []*remote.Message{{Data: data}},
	}
	// One message per envelope: hollywood's reader takes an envelope
	// without senders as "no sender", so a nil sender never borrows
	// another message's.
	if sender != nil {
		env.Senders = []*actor.PID{actor.NewPID(sender.Address, sender.ID)}
	}
	e.enqueue(pid.Address, env)
}

func (e *Endpoint) unsendable(pid *actor.PID, msg any, err error) {
	e.n.unsendable.Add(1)
	e.warn.event(zerolog.ErrorLevel, kindUnsendable, "message not sent to a remote actor", func(ev *zerolog.Event) {
		ev.Str("target", pidString(pid)).Str("type", fmt.Sprintf("%T", msg)).Err(err)
	})
}

// enqueue queues env on the writer of addr, creating it (and evicting the
// least recently used writer at the cap) if need be.
func (e *Endpoint) enqueue(addr string, env *remote.Envelope) {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		e.n.dropped.Add(1)
		return
	}
	w := e.writers[addr]
	var evicted *writer
	if w == nil {
		if len(e.writers) >= e.destCap {
			for _, o := range e.writers {
				if evicted == nil || o.used.Before(evicted.used) {
					evicted = o
				}
			}
			delete(e.writers, evicted.addr)
		}
		w = &writer{addr: addr, queue: make(chan *remote.Envelope, e.s.queueSize)}
		w.ctx, w.cancel = context.WithCancel(e.ctx)
		e.writers[addr] = w
		e.wg.Add(1)
		go e.runWriter(w)
	}
	w.used = time.Now()
	full := false
	select {
	case w.queue <- env:
	default:
		full = true
	}
	e.mu.Unlock()
	if evicted != nil {
		evicted.cancel()
		e.warn.event(zerolog.WarnLevel, kindEvictDest, "remote destination writer closed to make room for another", func(ev *zerolog.Event) {
			ev.Str("dest", evicted.addr).Int("max_destinations", e.destCap)
		})
	}
	if full {
		e.n.dropped.Add(1)
		e.warn.event(zerolog.WarnLevel, kindQueueFull, "remote destination's queue is full; message dropped", func(ev *zerolog.Event) {
			ev.Str("dest", addr).Int("queue", e.s.queueSize)
		})
	}
}

// runWriter sends w's queue until w is evicted, the endpoint stops, w has
// been idle for the writer-idle time, or its destination fails: then its
// queued messages are dropped and the next message to the address starts a
// new writer (and a new dial).
func (e *Endpoint) runWriter(w *writer) {
	defer e.wg.Done()
	var c *outConn
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	idle := time.NewTimer(e.s.writerIdle)
	defer idle.Stop()
	for {
		var closed <-chan struct{}
		if c != nil {
			closed = c.dc.Closed()
		}
		select {
		case <-w.ctx.Done():
			e.n.dropped.Add(drain(w.queue))
			return
		case <-closed:
			// The peer closed an idle connection: dial again when needed.
			c.close()
			c = nil
		case env := <-w.queue:
			if err := e.write(w, &c, env); err != nil {
				e.retire(w, false)
				n := 1 + drain(w.queue)
				e.n.dropped.Add(n)
				if w.ctx.Err() == nil {
					e.warn.event(zerolog.WarnLevel, kindUnreach, "remote destination unreachable; its queued messages were dropped", func(ev *zerolog.Event) {
						ev.Str("dest", w.addr).Uint64("dropped", n).Err(err)
					})
				}
				w.cancel()
				return
			}
			e.n.sent.Add(1)
			idle.Reset(e.s.writerIdle)
		case <-idle.C:
			if e.retire(w, true) {
				w.cancel()
				return
			}
			idle.Reset(e.s.writerIdle)
		}
	}
}

// retire removes w from the writers. With onlyIfEmpty, it does so only if
// w's queue is empty (under the lock that Send queues under, so that no
// message is left behind) and reports whether it did.
func (e *Endpoint) retire(w *writer, onlyIfEmpty bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if onlyIfEmpty && len(w.queue) > 0 {
		return false
	}
	if e.writers[w.addr] == w {
		delete(e.writers, w.addr)
	}
	return true
}

// write sends env on *c, dialling first if there is no connection. A
// connection that had been idle may have been closed by the peer: a send
// that fails on it for another reason than the write deadline (a peer that
// does not read) is tried once more on a fresh connection.
func (e *Endpoint) write(w *writer, c **outConn, env *remote.Envelope) error {
	reused := *c != nil
	if !reused {
		nc, err := e.dial(w)
		if err != nil {
			return err
		}
		*c = nc
	}
	err := (*c).stream.Send(env)
	if err == nil {
		return nil
	}
	(*c).close()
	*c = nil
	if !reused || isTimeout(err) {
		return fmt.Errorf("sending to %s: %w", w.addr, err)
	}
	nc, err := e.dial(w)
	if err != nil {
		return err
	}
	if err := nc.stream.Send(env); err != nil {
		nc.close()
		return fmt.Errorf("sending to %s: %w", w.addr, err)
	}
	*c = nc
	return nil
}

// outConn is an outbound connection with its one DRPC stream.
type outConn struct {
	dc     *drpcconn.Conn
	stream remote.DRPCRemote_ReceiveClient
	cancel context.CancelFunc
}

// dial connects to w's address (TLS included) within the dial timeout and
// opens the remote service's stream.
func (e *Endpoint) dial(w *writer) (*outConn, error) {
	ctx, cancel := context.WithTimeout(w.ctx, e.s.dialTimeout)
	defer cancel()
	nd := &net.Dialer{}
	var raw net.Conn
	var err error
	if e.s.tls != nil {
		raw, err = (&tls.Dialer{NetDialer: nd, Config: e.s.tls}).DialContext(ctx, "tcp", w.addr)
	} else {
		raw, err = nd.DialContext(ctx, "tcp", w.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("dialling %s: %w", w.addr, err)
	}
	dc := drpcconn.NewWithOptions(&writeDeadlineConn{Conn: raw, write: e.s.writeTimeout}, drpcconn.Options{
		Manager: drpcmanager.Options{Reader: drpcwire.ReaderOptions{MaximumBufferSize: e.s.maxMessageSize}},
	})
	sctx, scancel := context.WithCancel(w.ctx)
	stream, err := remote.NewDRPCRemoteClient(dc).Receive(sctx)
	if err != nil {
		scancel()
		_ = dc.Close()
		return nil, fmt.Errorf("opening a stream to %s: %w", w.addr, err)
	}
	return &outConn{dc: dc, stream: stream, cancel: scancel}, nil
}

func (c *outConn) close() {
	_ = c.stream.Close()
	c.cancel()
	_ = c.dc.Close()
}

// writeDeadlineConn bounds every write.
type writeDeadlineConn struct {
	net.Conn
	write time.Duration
}

// Write writes under the write deadline.
func (c *writeDeadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.write))
	return c.Conn.Write(p)
}

// drain empties q and returns how many messages it held.
func drain(q chan *remote.Envelope) uint64 {
	var n uint64
	for {
		select {
		case <-q:
			n++
		default:
			return n
		}
	}
}

func pidString(p *actor.PID) string {
	if p == nil {
		return "<nil>"
	}
	return clip(p.String())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
