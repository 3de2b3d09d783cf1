package endpoint

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/anthdm/hollywood/remote"
	"github.com/rs/zerolog"
	"storj.io/drpc/drpcconn"
)

// These tests run the endpoint on virtual time over in-memory pipes, so the
// deadlines are asserted exactly.

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000} }

// dial returns the client end of a new connection.
func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

// pipeNode starts an engine whose endpoint serves a pipeListener.
func pipeNode(t *testing.T, opts ...Option) (*Endpoint, *pipeListener, *logBuffer) {
	t.Helper()
	s := defaults()
	logs := &logBuffer{}
	s.log = zerolog.New(logs)
	for _, o := range opts {
		if err := o(&s); err != nil {
			t.Fatal(err)
		}
	}
	pl := newPipeListener()
	ep := newEndpoint(pl, "127.0.0.1:4000", "4000", s)
	if _, err := actor.NewEngine(actor.NewEngineConfig().WithRemote(ep)); err != nil {
		t.Fatal(err)
	}
	return ep, pl, logs
}

// closedAfter reads from c until it fails and returns how long that took.
func closedAfter(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	return time.Since(start)
}

// A connection that sends nothing is closed at the first-frame deadline,
// not a moment later, and counted as silent.
func TestFirstFrameDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep, pl, logs := pipeNode(t, WithFirstFrameTimeout(3*time.Second))
		c := pl.dial()
		if d := closedAfter(t, c); d != 3*time.Second {
			t.Errorf("silent connection closed after %v, want 3s", d)
		}
		synctest.Wait()
		if st := ep.Stats(); st.Silent != 1 || st.Conns != 0 {
			t.Errorf("stats %+v", st)
		}
		if n := logs.total(kindSilent); n != 1 {
			t.Errorf("%d silent-connection warnings, want 1:\n%s", n, logs)
		}
		ep.Stop().Wait()
	})
}

// After a valid envelope the idle timeout applies, renewed by every read.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep, pl, _ := pipeNode(t, WithFirstFrameTimeout(time.Second), WithIdleTimeout(10*time.Second))
		c := pl.dial()
		dc := drpcconn.New(c)
		stream, err := remote.NewDRPCRemoteClient(dc).Receive(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for range 3 {
			if err := stream.Send(validEnvelope(ep.Address(), nil)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(8 * time.Second) // below the idle timeout, above the first-frame one
		}
		<-dc.Closed()
		// Last envelope at 16s, closed 10s later.
		if d := time.Since(start); d != 26*time.Second {
			t.Errorf("closed after %v, want 26s", d)
		}
		synctest.Wait()
		if st := ep.Stats(); st.Silent != 0 || st.Delivered != 3 || st.Conns != 0 {
			t.Errorf("stats %+v", st)
		}
		ep.Stop().Wait()
	})
}

// With TLS, a peer that never sends its ClientHello is closed at the
// handshake deadline.
func TestHandshakeDeadline(t *testing.T) {
	server, _, _ := mutualTLS(t)
	synctest.Test(t, func(t *testing.T) {
		ep, pl, logs := pipeNode(t, WithTLS(server), WithHandshakeTimeout(4*time.Second), WithFirstFrameTimeout(time.Minute))
		c := pl.dial()
		if d := closedAfter(t, c); d != 4*time.Second {
			t.Errorf("closed after %v, want 4s", d)
		}
		synctest.Wait()
		if st := ep.Stats(); st.HandshakeFailed != 1 || st.Conns != 0 {
			t.Errorf("stats %+v", st)
		}
		if n := logs.total(kindHandshake); n != 1 {
			t.Errorf("%d handshake warnings, want 1:\n%s", n, logs)
		}
		ep.Stop().Wait()
	})
}

// With TLS, the first-frame deadline starts after the handshake.
func TestFirstFrameAfterHandshake(t *testing.T) {
	server, client, _ := mutualTLS(t)
	// The certificates are valid now, not at the bubble's epoch.
	now := time.Now()
	server.Time = func() time.Time { return now }
	cfg := client.Clone()
	cfg.Time, cfg.ServerName = server.Time, "127.0.0.1"
	synctest.Test(t, func(t *testing.T) {
		ep, pl, _ := pipeNode(t, WithTLS(server), WithHandshakeTimeout(4*time.Second), WithFirstFrameTimeout(6*time.Second))
		tc := tls.Client(pl.dial(), cfg)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if d := closedAfter(t, tc); d != 6*time.Second {
			t.Errorf("closed %v after the handshake, want 6s", d)
		}
		synctest.Wait()
		if st := ep.Stats(); st.Silent != 1 || st.HandshakeFailed != 0 {
			t.Errorf("stats %+v", st)
		}
		ep.Stop().Wait()
	})
}

// A flood of events of one kind writes one line per interval, each with the
// count since the previous one; the flush reports the rest.
func TestRateLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &logBuffer{}
		r := newRateLog(zerolog.New(logs), 10*time.Second)
		for i := range 10000 {
			r.event(zerolog.WarnLevel, "a", "flood", nil)
			if i%1000 == 999 {
				time.Sleep(3 * time.Second) // events at 0s, 3s, ..., 27s
			}
		}
		r.event(zerolog.ErrorLevel, "b", "other", func(ev *zerolog.Event) { ev.Str("peer", "x") })
		lines := logs.lines("a")
		if len(lines) != 3 {
			t.Fatalf("%d lines, want 3 (at 0s, 12s, 24s):\n%s", len(lines), logs)
		}
		for i, want := range []float64{1, 4000, 4000} {
			if lines[i]["count"] != want || lines[i]["level"] != "warn" {
				t.Errorf("line %d: %v, want count %v", i, lines[i], want)
			}
		}
		if b := logs.lines("b"); len(b) != 1 || b[0]["peer"] != "x" || b[0]["level"] != "error" {
			t.Errorf("another kind is limited on its own: %v", b)
		}
		r.flush()
		if n := logs.total("a"); n != 10000 {
			t.Errorf("counts add up to %d, want 10000", n)
		}
		r.flush()
		if n := len(logs.lines("")); n != 5 {
			t.Errorf("%d lines after two flushes, want 5", n)
		}
	})
}

// failingListener fails every Accept as a process out of descriptors does.
type failingListener struct {
	*pipeListener
	calls atomic.Int32
}

func (l *failingListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	l.calls.Add(1)
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// Out of descriptors, the accept loop backs off (up to 1 s between tries)
// instead of spinning, and says so once per interval.
func TestAcceptBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &failingListener{pipeListener: newPipeListener()}
		s := defaults()
		logs := &logBuffer{}
		s.log = zerolog.New(logs)
		ep := newEndpoint(l, "127.0.0.1:4000", "4000", s)
		if _, err := actor.NewEngine(actor.NewEngineConfig().WithRemote(ep)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		// 5, 10, 20, ..., 640 ms: 8 tries in the first second.
		if n := l.calls.Load(); n < 7 || n > 9 {
			t.Errorf("%d accepts in the first second, want about 8", n)
		}
		time.Sleep(10 * time.Second)
		if n := l.calls.Load(); n < 16 || n > 20 {
			t.Errorf("%d accepts in 11 s, want about 18 (one a second once backed off)", n)
		}
		if lines := logs.lines(kindAccept); len(lines) != 2 || !strings.Contains(lines[0]["error"].(string), "too many open files") {
			t.Errorf("accept warnings %v, want 2 lines (at 0 s and after 10 s)", lines)
		}
		ep.Stop().Wait()
	})
}
