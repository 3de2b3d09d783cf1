package endpoint

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/internal/remotetest"
	"github.com/mojodex/mojodex-scheduler/internal/testnet"
	"go.uber.org/goleak"
)

// These tests run engines with the endpoint over real loopback TCP.

// Every bad envelope, sent as a well-formed DRPC frame, closes its
// connection and delivers nothing; the engine keeps answering, and the
// warnings are one line per interval with the count.
func TestBadFramesThenValidRequest(t *testing.T) {
	server := newNode(t)
	spawnAnswerer(server.engine)
	client := clientNode(t)
	addr := server.ep.Address()
	if _, err := listTasks(t, client.engine, addr, 2*time.Second); err != nil {
		t.Fatalf("before the bad frames: %v", err)
	}

	sent := 0
	for _, tc := range badEnvelopes(addr) {
		if tc.name == "nil message" {
			continue // a nil element is encoded as an empty, valid message
		}
		rc := remotetest.Dial(t, addr, nil)
		_ = rc.Send(tc.env) // may fail once the endpoint has closed the connection
		sent++
		if !rc.ClosedWithin(2 * time.Second) {
			t.Errorf("%s: connection still open 2s after a bad envelope", tc.name)
		}
	}
	for name, b := range map[string][]byte{
		"not protobuf":       {0xff, 0xff, 0xff, 0xff},
		"truncated envelope": {0x0a, 0x10, 0x0a},
	} {
		rc := remotetest.Dial(t, addr, nil)
		_ = rc.SendBytes(b)
		sent++
		if !rc.ClosedWithin(2 * time.Second) {
			t.Errorf("%s: connection still open 2s after an undecodable envelope", name)
		}
	}

	took, err := listTasks(t, client.engine, addr, 2*time.Second)
	if err != nil {
		t.Fatalf("after %d bad frames: %v", sent, err)
	}
	t.Logf("%d bad frames refused; a valid request answered in %v", sent, took)
	if !waitUntil(time.Second, func() bool {
		st := server.ep.Stats()
		return st.Violations == uint64(sent) && st.Delivered == 2 && st.DeliveryFailed == 0
	}) {
		t.Errorf("stats %+v; want %d violations, 2 deliveries", server.ep.Stats(), sent)
	}
	if n := len(server.logs.lines(kindViolation)); n != 1 {
		t.Errorf("%d protocol warnings for %d bad frames, want 1 line within the interval", n, sent)
	}
	stopWithin(t, server.ep, 5*time.Second)
	if n := server.logs.total(kindViolation); n != sent {
		t.Errorf("warnings count %d violations, want %d:\n%s", n, sent, server.logs)
	}
	if strings.Contains(server.logs.String(), "panic") {
		t.Errorf("logs mention a panic:\n%s", server.logs)
	}
}

// 2,000 connections that never send anything: the endpoint holds at most
// its cap, each new one displacing the oldest silent one, so an honest
// request is answered at once and the process keeps free descriptors.
func TestIdleConnectionFlood(t *testing.T) {
	const flood, maxConns = 2000, 64
	server := newNode(t, WithMaxConns(maxConns))
	spawnAnswerer(server.engine)
	client := clientNode(t)
	addr := server.ep.Address()

	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	most := 0
	start := time.Now()
	for i := range flood {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if i%50 == 0 {
			most = max(most, server.ep.Stats().Conns)
		}
	}
	if !waitUntil(10*time.Second, func() bool { return server.ep.Stats().Accepted >= flood }) {
		t.Fatalf("accepted %d of %d connections", server.ep.Stats().Accepted, flood)
	}
	st := server.ep.Stats()
	most = max(most, st.Conns)
	if most > maxConns || st.Conns != maxConns || st.Evicted != flood-maxConns {
		t.Errorf("held at most %d connections (now %+v), want at most %d, %d evicted", most, st, maxConns, flood-maxConns)
	}

	took, err := listTasks(t, client.engine, addr, 2*time.Second)
	if err != nil || took > time.Second {
		t.Fatalf("honest request after %d idle connections: %v after %v", flood, err, took)
	}
	t.Logf("%d idle connections: at most %d held, %d evicted; honest request answered in %v", flood, most, st.Evicted, took)

	// The process still has descriptors: a file, and another listener.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatalf("opening a file: %v", err)
	}
	f.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	defer ln.Close()
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
		}
	}()
	if c, err := ln.Accept(); err != nil {
		t.Fatalf("accepting on another listener: %v", err)
	} else {
		c.Close()
	}
	// One line per interval (10 s) while the flood lasts.
	if n, most := len(server.logs.lines(kindEvicted)), 1+int(time.Since(start)/DefaultLogInterval); n < 1 || n > most {
		t.Errorf("%d eviction warnings in %v, want at most %d", n, time.Since(start), most)
	}
}

// When every slot holds a connection that has sent a valid envelope, a new
// connection is closed at once.
func TestRefusedWhenEverySlotIsActive(t *testing.T) {
	server := newNode(t, WithMaxConns(2))
	addr := server.ep.Address()
	for range 2 {
		rc := remotetest.Dial(t, addr, nil)
		if err := rc.Send(validEnvelope(addr, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if !waitUntil(2*time.Second, func() bool { st := server.ep.Stats(); return st.Conns == 2 && st.Pending == 0 }) {
		t.Fatalf("stats %+v", server.ep.Stats())
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("third connection: %v, want it closed", err)
	}
	t.Logf("third connection closed after %v", time.Since(start))
	if st := server.ep.Stats(); st.Refused != 1 || st.Conns != 2 {
		t.Errorf("stats %+v", st)
	}
}

// Real sockets: a silent peer is dropped at the first-frame deadline, and
// a TLS peer that never says hello at the handshake deadline.
func TestSilentPeersDropped(t *testing.T) {
	serverTLS, _, _ := mutualTLS(t)
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"plain", []Option{WithFirstFrameTimeout(300 * time.Millisecond)}},
		{"TLS", []Option{WithTLS(serverTLS), WithHandshakeTimeout(300 * time.Millisecond), WithFirstFrameTimeout(time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := newNode(t, tc.opts...)
			c, err := net.Dial("tcp", server.ep.Address())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			_, err = c.Read(make([]byte, 1))
			took := time.Since(start)
			if err == nil || isTimeout(err) || took < 250*time.Millisecond || took > 1300*time.Millisecond {
				t.Fatalf("silent peer: %v after %v, want closed after about 300ms", err, took)
			}
			t.Logf("silent peer dropped after %v", took)
			if !waitUntil(2*time.Second, func() bool { st := server.ep.Stats(); return st.Silent+st.HandshakeFailed == 1 && st.Conns == 0 }) {
				t.Errorf("stats %+v", server.ep.Stats())
			}
		})
	}
}

// Mutual TLS end to end: a client with a certificate of the CA is
// answered; one with another CA's certificate gets nothing through.
func TestMutualTLS(t *testing.T) {
	serverTLS, clientTLS, rogueTLS := mutualTLS(t)
	server := newNode(t, WithTLS(serverTLS))
	spawnAnswerer(server.engine)
	client := clientNode(t, WithTLS(clientTLS))
	if took, err := listTasks(t, client.engine, server.ep.Address(), 2*time.Second); err != nil {
		t.Fatalf("over mutual TLS: %v", err)
	} else {
		t.Logf("answered over mutual TLS in %v", took)
	}
	rogue := clientNode(t, WithTLS(rogueTLS))
	if _, err := listTasks(t, rogue.engine, server.ep.Address(), 500*time.Millisecond); err == nil {
		t.Fatal("a client of another CA was answered")
	}
	if !waitUntil(2*time.Second, func() bool { return server.ep.Stats().HandshakeFailed >= 1 }) {
		t.Errorf("stats %+v", server.ep.Stats())
	}
	if !waitUntil(time.Second, func() bool { return server.ep.Stats().Delivered == 1 }) {
		t.Errorf("delivered %d, want 1", server.ep.Stats().Delivered)
	}
}

// Requests whose reply addresses are dead (closed ports, a listener that
// never speaks, one whose accept queue is full) do not delay the reply to
// an honest request sent right after them.
func TestDeadReplyAddresses(t *testing.T) {
	serverTLS, clientTLS, _ := mutualTLS(t)
	for _, tc := range []struct {
		name           string
		server, client *tls.Config
	}{
		{"plain", nil, nil},
		{"TLS", serverTLS, clientTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sopts, copts := []Option{WithTLS(tc.server)}, []Option{WithTLS(tc.client)}
			server := newNode(t, sopts...)
			spawnAnswerer(server.engine)
			client := clientNode(t, copts...)
			addr := server.ep.Address()

			var dead []string
			for range 20 {
				dead = append(dead, testnet.FreeAddr(t))
			}
			dead = append(dead, testnet.MuteListener(t), testnet.FullBacklog(t))
			rc := remotetest.Dial(t, addr, tc.client)
			for _, d := range dead {
				if err := rc.Send(validEnvelope(addr, actor.NewPID(d, "response/1"))); err != nil {
					t.Fatal(err)
				}
			}
			took, err := listTasks(t, client.engine, addr, time.Second)
			if err != nil || took > time.Second {
				t.Fatalf("honest request after %d dead reply addresses: %v after %v", len(dead), err, took)
			}
			t.Logf("honest request answered in %v after %d requests with dead reply addresses", took, len(dead))

			// Every dead reply is dropped within the dial timeout, with a
			// warning line per interval. (Without TLS the mute listener
			// takes its reply: the kernel buffers it.)
			want := uint64(len(dead))
			if tc.server == nil {
				want--
			}
			if !waitUntil(DefaultDialTimeout+3*time.Second, func() bool { return server.ep.Stats().Dropped >= want }) {
				t.Errorf("dropped %d replies, want %d", server.ep.Stats().Dropped, want)
			}
			if n := len(server.logs.lines(kindUnreach)); n != 1 {
				t.Errorf("%d unreachable-destination lines, want 1", n)
			}
		})
	}
}

// A full queue drops, the destination cap evicts the least recently used
// writer, and neither delays another destination.
func TestSendBounds(t *testing.T) {
	serverTLS, clientTLS, _ := mutualTLS(t)
	sender := newNode(t, WithTLS(serverTLS), WithQueueSize(2), WithMaxDestinations(3), WithDialTimeout(time.Second))
	got := make(chan *controlv1.ListTasksResponse, 16)
	good := newNode(t, WithTLS(clientTLS), WithTargets(IDs("sink/1")))
	good.engine.SpawnFunc(func(c *actor.Context) {
		if m, ok := c.Message().(*controlv1.ListTasksResponse); ok {
			got <- m
		}
	}, "sink", actor.WithID("1"))

	mute := testnet.MuteListener(t) // accepts TCP, never completes a TLS handshake
	for range 10 {
		sender.ep.Send(actor.NewPID(mute, "x/1"), &controlv1.ListTasksResponse{}, nil)
	}
	if d := sender.ep.Stats().Dropped; d < 7 || d > 8 {
		t.Errorf("dropped %d of 10 at once, want 7 or 8 (queue of 2, one dialling)", d)
	}
	start := time.Now()
	sender.ep.Send(actor.NewPID(good.ep.Address(), "sink/1"), &controlv1.ListTasksResponse{}, nil)
	select {
	case <-got:
		t.Logf("delivered to a good destination in %v while another dials", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("a good destination waited behind a dead one")
	}
	if !waitUntil(3*time.Second, func() bool { return sender.ep.Stats().Dropped == 10 }) {
		t.Errorf("stats %+v, want the 10 messages to the mute listener dropped", sender.ep.Stats())
	}

	// The destination cap: four mute destinations, at most three writers.
	for range 4 {
		sender.ep.Send(actor.NewPID(testnet.MuteListener(t), "x/1"), &controlv1.ListTasksResponse{}, nil)
		if n := sender.ep.Stats().Destinations; n > 3 {
			t.Fatalf("%d destinations, cap 3", n)
		}
	}
	if n := len(sender.logs.lines(kindEvictDest)); n != 1 {
		t.Errorf("%d eviction lines, want 1", n)
	}
}

// Sending something that is not protobuf is logged, never a panic.
func TestSendUnsendable(t *testing.T) {
	n := newNode(t)
	n.ep.Send(actor.NewPID("127.0.0.1:1", "x/1"), struct{ A int }{1}, nil)
	n.ep.Send(actor.NewPID("127.0.0.1:1", "x/1"), nil, nil)
	n.ep.Send(nil, &controlv1.ListTasksRequest{}, nil)
	n.ep.Send(actor.NewPID("", "x/1"), &controlv1.ListTasksRequest{}, nil)
	var nilReq *controlv1.ListTasksRequest
	n.ep.Send(actor.NewPID(testnet.FreeAddr(t), "x/1"), nilReq, nil) // a typed nil encodes as an empty message
	if st := n.ep.Stats(); st.Unsendable != 4 {
		t.Errorf("stats %+v, want 4 unsendable", st)
	}
	lines := n.logs.lines(kindUnsendable)
	if len(lines) != 1 || lines[0]["level"] != "error" || !strings.Contains(lines[0]["error"].(string), "not a protobuf message") {
		t.Errorf("log lines %v", lines)
	}
}

// An idle writer closes; a peer that closes an idle connection is dialled
// again; both deliver the next message.
func TestWriterIdleAndRedial(t *testing.T) {
	sender := newNode(t, WithWriterIdle(200*time.Millisecond))
	got := make(chan struct{}, 16)
	peer := newNode(t, WithTargets(IDs("sink/1")), WithIdleTimeout(300*time.Millisecond))
	peer.engine.SpawnFunc(func(c *actor.Context) {
		if _, ok := c.Message().(*controlv1.ListTasksResponse); ok {
			got <- struct{}{}
		}
	}, "sink", actor.WithID("1"))
	to := actor.NewPID(peer.ep.Address(), "sink/1")
	deliver := func(what string) {
		t.Helper()
		sender.ep.Send(to, &controlv1.ListTasksResponse{}, nil)
		select {
		case <-got:
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: not delivered", what)
		}
	}
	deliver("first")
	if !waitUntil(2*time.Second, func() bool { return sender.ep.Stats().Destinations == 0 }) {
		t.Fatal("idle writer not closed")
	}
	deliver("after the writer closed")

	// The peer closes the idle connection before the writer does.
	sender2 := newNode(t, WithWriterIdle(time.Minute))
	sender2.ep.Send(to, &controlv1.ListTasksResponse{}, nil)
	<-got
	if !waitUntil(2*time.Second, func() bool { return peer.ep.Stats().Conns == 0 }) {
		t.Fatal("peer kept the idle connection")
	}
	for i := range 3 {
		sender2.ep.Send(to, &controlv1.ListTasksResponse{}, nil)
		select {
		case <-got:
		case <-time.After(2 * time.Second):
			t.Fatalf("message %d after the peer closed: not delivered", i)
		}
	}
}

// A peer that never reads: the write deadline ends every blocked write,
// and every message is either sent or dropped.
func TestWriteDeadline(t *testing.T) {
	sender := newNode(t, WithWriteTimeout(200*time.Millisecond), WithQueueSize(64))
	mute := testnet.MuteListener(t)
	big := &controlv1.ListTasksResponse{Tasks: []*controlv1.Task{{Name: strings.Repeat("x", 1<<20)}}}
	const n = 30
	for range n {
		sender.ep.Send(actor.NewPID(mute, "x/1"), big, nil)
	}
	if !waitUntil(10*time.Second, func() bool { st := sender.ep.Stats(); return st.Sent+st.Dropped == n }) {
		t.Fatalf("stats %+v: writes still blocked", sender.ep.Stats())
	}
	st := sender.ep.Stats()
	if st.Dropped == 0 {
		t.Errorf("stats %+v: a peer that never reads took everything", st)
	}
	t.Logf("peer that never reads: %d sent into socket buffers, %d dropped", st.Sent, st.Dropped)
}

// Start and Stop: Start once, Stop idempotent, nothing left running.
func TestLifecycleLeavesNoGoroutine(t *testing.T) {
	// The test's mute listener is closed by its cleanup, after this check.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/mojodex/mojodex-scheduler/internal/testnet.MuteListener.func1"))
	server := newNode(t)
	spawnAnswerer(server.engine)
	client := clientNode(t)
	if _, err := listTasks(t, client.engine, server.ep.Address(), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := server.ep.Start(server.engine); err == nil {
		t.Error("second Start accepted")
	}
	// Connections and writers in every state: idle, mid-dial, established.
	idle, err := net.Dial("tcp", server.ep.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	server.ep.Send(actor.NewPID(testnet.MuteListener(t), "x/1"), &controlv1.ListTasksResponse{}, nil)
	rc := remotetest.Dial(t, server.ep.Address(), nil)
	if err := rc.Send(validEnvelope(server.ep.Address(), actor.NewPID(client.ep.Address(), "response/1"))); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(2*time.Second, func() bool { return server.ep.Stats().Delivered == 2 }) {
		t.Fatalf("stats %+v", server.ep.Stats())
	}
	wg := server.ep.Stop()
	if again := server.ep.Stop(); again != wg {
		t.Error("a second Stop returned another WaitGroup")
	}
	stopWithin(t, server.ep, 5*time.Second)
	stopWithin(t, client.ep, 5*time.Second)
	if err := server.ep.Start(server.engine); err == nil {
		t.Error("Start after Stop accepted")
	}
	_ = rc.Close()
	if st := server.ep.Stats(); st.Conns != 0 || st.Destinations != 0 {
		t.Errorf("after Stop: %+v", st)
	}
}
