//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/anthdm/hollywood/remote"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"google.golang.org/protobuf/proto"
	"storj.io/drpc"
	"storj.io/drpc/drpcconn"
)

// These tests attack the remote control endpoint of a running `run`
// process over loopback: malformed envelopes, idle connections, dead reply
// addresses.

// rawRemote is a client of the remote service built from hollywood's
// generated DRPC client: its frames are well-formed DRPC, whatever
// envelope they carry.
type rawRemote struct {
	dc     *drpcconn.Conn
	stream remote.DRPCRemote_ReceiveClient
}

func dialRemote(t *testing.T, addr string, cfg *tls.Config) *rawRemote {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	var conn net.Conn
	var err error
	if cfg != nil {
		conn, err = tls.DialWithDialer(d, "tcp", addr, cfg)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	dc := drpcconn.New(conn)
	stream, err := remote.NewDRPCRemoteClient(dc).Receive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &rawRemote{dc: dc, stream: stream}
}

// closedWithin reports whether the scheduler closed the connection within d.
func (r *rawRemote) closedWithin(d time.Duration) bool {
	defer r.dc.Close()
	select {
	case <-r.dc.Closed():
		return true
	case <-time.After(d):
		return false
	}
}

type rawFrame []byte

type rawFrameEncoding struct{}

func (rawFrameEncoding) Marshal(m drpc.Message) ([]byte, error) { return m.(rawFrame), nil }
func (rawFrameEncoding) Unmarshal([]byte, drpc.Message) error   { return fmt.Errorf("not used") }

// listRequest is a well-formed ListTasksRequest for the supervisor at addr.
func listRequest(addr string, sender *actor.PID) *remote.Envelope {
	data, _ := proto.Marshal(&controlv1.ListTasksRequest{})
	env := &remote.Envelope{
		TypeNames: []string{"mojodex.scheduler.control.v1.ListTasksRequest"},
		Targets:   []*actor.PID{actor.NewPID(addr, supervisor.Kind+"/"+supervisor.ID)},
		Messages:  []*remote.Message{{Data: data}},
	}
	if sender != nil {
		env.Senders = []*actor.PID{sender}
	}
	return env
}

// badFrames are envelopes that crash hollywood v1.0.5's own reader or
// reach what they must not.
func badFrames(addr string) map[string]*remote.Envelope {
	reply := actor.NewPID("127.0.0.1:1", "response/1")
	mut := func(f func(*remote.Envelope)) *remote.Envelope {
		env := listRequest(addr, reply)
		f(env)
		return env
	}
	return map[string]*remote.Envelope{
		"type index out of range":   mut(func(e *remote.Envelope) { e.Messages[0].TypeNameIndex = 5 }),
		"type index negative":       mut(func(e *remote.Envelope) { e.Messages[0].TypeNameIndex = -1 }),
		"target index out of range": mut(func(e *remote.Envelope) { e.Messages[0].TargetIndex = 5 }),
		"target index negative":     mut(func(e *remote.Envelope) { e.Messages[0].TargetIndex = -7 }),
		"sender index out of range": mut(func(e *remote.Envelope) { e.Messages[0].SenderIndex = 5 }),
		"sender index negative":     mut(func(e *remote.Envelope) { e.Messages[0].SenderIndex = -1 }),
		"no targets":                mut(func(e *remote.Envelope) { e.Targets = nil }),
		"unknown type":              mut(func(e *remote.Envelope) { e.TypeNames[0] = "nope.Nope" }),
		"a PID as message":          mut(func(e *remote.Envelope) { e.TypeNames[0] = "actor.PID" }),
		"target: event stream":      mut(func(e *remote.Envelope) { e.Targets[0].ID = "eventstream" }),
		"target: a stream writer":   mut(func(e *remote.Envelope) { e.Targets[0].ID = "stream/127.0.0.1:1" }),
		"target: a task actor":      mut(func(e *remote.Envelope) { e.Targets[0].ID = supervisor.Kind + "/" + supervisor.ID + "/task/quick.1" }),
		"target: another address":   mut(func(e *remote.Envelope) { e.Targets[0].Address = "127.0.0.1:1" }),
		"sender: the scheduler":     mut(func(e *remote.Envelope) { e.Senders[0] = actor.NewPID(addr, "eventstream") }),
		"sender: no address":        mut(func(e *remote.Envelope) { e.Senders[0].Address = "" }),
		"garbage data":              mut(func(e *remote.Envelope) { e.Messages[0].Data = []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f} }),
	}
}

// Each bad frame closes its connection and nothing else happens: the
// scheduler keeps serving, ctl still works, and a flood of bad frames
// costs a line or two of log, not one per frame.
func TestRemoteBadFrames(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	srv := startServer(t, stub, writeFile(t, twoTasks))
	ctlOK(t, srv.addr, nil, "list")

	// Each bad frame, then an honest ctl list, answered.
	var slowest time.Duration
	for name, env := range badFrames(srv.addr) {
		rc := dialRemote(t, srv.addr, nil)
		_ = rc.stream.Send(env) // may fail once the scheduler has closed the connection
		if !rc.closedWithin(2 * time.Second) {
			t.Errorf("%s: connection still open 2s later", name)
		}
		srv.alive(t)
		r := ctl(t, srv.addr, nil, "list")
		if r.code != 0 || !strings.Contains(r.stdout, "quick") {
			t.Fatalf("ctl list after the bad frame %q: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
		slowest = max(slowest, r.took)
	}
	t.Logf("%d bad frames, each followed by a ctl list answered (the slowest in %v)", len(badFrames(srv.addr)), slowest.Round(time.Millisecond))
	rc := dialRemote(t, srv.addr, nil)
	_ = rc.stream.MsgSend(rawFrame{0xff, 0xff, 0xff}, rawFrameEncoding{})
	if !rc.closedWithin(2 * time.Second) {
		t.Error("undecodable envelope: connection still open 2s later")
	}

	const flood = 300
	start := time.Now()
	for i := range flood {
		rc := dialRemote(t, srv.addr, nil)
		// The scheduler may close the connection before Send returns.
		_ = rc.stream.Send(listRequest(srv.addr, actor.NewPID("", "x")))
		if !rc.closedWithin(2 * time.Second) {
			t.Fatalf("flood %d: connection still open", i)
		}
	}
	elapsed := time.Since(start)
	srv.alive(t)
	out := ctlOK(t, srv.addr, nil, "list")
	if !strings.Contains(out, "hourly") || !strings.Contains(out, "quick") {
		t.Errorf("list after the bad frames:\n%s", out)
	}
	lines := strings.Count(srv.logs.String(), `"event":"protocol"`)
	// One line per 10 s of flood, plus the first.
	if most := 1 + int(elapsed/(10*time.Second)); lines < 1 || lines > most+1 {
		t.Errorf("%d protocol-violation lines for %d bad frames in %v", lines, flood+len(badFrames(srv.addr))+1, elapsed)
	}
	t.Logf("%d bad frames in %v: %d log lines; ctl list still answers", flood+len(badFrames(srv.addr))+1, elapsed.Round(time.Millisecond), lines)
}

// 2,000 connections that never send anything (not even a TLS hello, with
// mutual TLS on), against a scheduler limited to 512 descriptors whose cap
// is 64 connections: it holds at most its cap of them, /healthz answers
// and ctl list is answered at once.
func TestRemoteIdleFlood(t *testing.T) {
	t.Parallel()
	t.Run("plain", func(t *testing.T) { t.Parallel(); idleFlood(t, false) })
	t.Run("mutual TLS", func(t *testing.T) { t.Parallel(); idleFlood(t, true) })
}

func idleFlood(t *testing.T, mutual bool) {
	const flood, maxConns = 2000, 64
	stub := startStub(t)
	var serverEnv, clientEnv []string
	if mutual {
		p := newPKI(t, "idle flood CA")
		serverCert, serverKey := p.issue(t, "scheduler", 2)
		clientCert, clientKey := p.issue(t, "operator", 3)
		serverEnv = []string{"MOJODEX_SCHEDULER_TLS_CERT=" + serverCert, "MOJODEX_SCHEDULER_TLS_KEY=" + serverKey, "MOJODEX_SCHEDULER_TLS_CA=" + p.ca()}
		clientEnv = []string{"MOJODEX_SCHEDULER_TLS_CERT=" + clientCert, "MOJODEX_SCHEDULER_TLS_KEY=" + clientKey, "MOJODEX_SCHEDULER_TLS_CA=" + p.ca()}
	}
	var wrap []string
	if p, err := exec.LookPath("prlimit"); err == nil {
		wrap = []string{p, "--nofile=512:512"}
	} else {
		t.Log("prlimit not found: the scheduler runs with the test's descriptor limit")
	}
	httpAddr := freeAddr(t)
	srv := startServerWrapped(t, stub, writeFile(t, twoTasks), wrap, append(serverEnv, "MOJODEX_SCHEDULER_HTTP_ADDR="+httpAddr)...)
	pid := srv.cmd.Process.Pid
	if wrap != nil {
		limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
		if err != nil || !strings.Contains(string(limits), "Max open files            512                  512") {
			t.Fatalf("the scheduler's descriptor limit is not 512: %v\n%s", err, limits)
		}
	}
	base := fdCount(t, pid)

	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	most := base
	for i := range flood {
		c, err := net.DialTimeout("tcp", srv.addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if i%100 == 0 {
			most = max(most, fdCount(t, pid))
		}
	}
	// Every connection but the cap's worth is closed by the scheduler (the
	// first-frame deadline is 5 s; this must happen sooner, by eviction).
	evicted := 0
	closed := make([]bool, flood)
	waitFor(t, "the scheduler to close the connections beyond its cap", func() bool {
		for i, c := range conns {
			if closed[i] {
				continue
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
				closed[i] = true
				evicted++
			}
		}
		most = max(most, fdCount(t, pid))
		return evicted >= flood-maxConns
	})
	settled := time.Now()
	held := fdCount(t, pid) - base
	// During the flood a few more may be open for a moment: the connection
	// just accepted, and evicted ones whose descriptor is released once
	// their reader returns.
	if most-base > maxConns+8 || held > maxConns+2 || evicted != flood-maxConns {
		t.Errorf("descriptors: %d before the flood, at most %d during it, %d held now; %d connections closed, want %d",
			base, most, held, evicted, flood-maxConns)
	}

	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatalf("/healthz during the flood: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	r := ctl(t, srv.addr, clientEnv, "list")
	if r.code != 0 || r.took > 2*time.Second {
		t.Fatalf("ctl list during the flood: exit %d after %v\n%s", r.code, r.took, r.stderr)
	}
	t.Logf("%d idle connections: %d descriptors before, at most %d during; %d closed by eviction; ctl list answered in %v, %v after the flood settled (handshake and first-frame deadlines 5s)",
		flood, base, most, evicted, r.took.Round(time.Millisecond), time.Since(settled).Round(time.Millisecond))
	if n := strings.Count(srv.logs.String(), `"event":"conn_evicted"`); n < 1 || n > 3 {
		t.Errorf("%d eviction lines for %d evictions", n, evicted)
	}
}

// fdCount returns the number of open descriptors of process pid.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("counting descriptors: %v", err)
	}
	return len(entries)
}

// Twenty requests whose reply addresses are closed ports, one whose reply
// address accepts TCP but never completes a TLS handshake, one whose
// accept queue is full: an honest ctl list right after them is answered at
// once, and ctl itself gives up on an unreachable scheduler at --timeout.
func TestRemoteDeadReplyAddresses(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	p := newPKI(t, "dead replies CA")
	serverCert, serverKey := p.issue(t, "scheduler", 2)
	clientCert, clientKey := p.issue(t, "operator", 3)
	srv := startServer(t, stub, writeFile(t, twoTasks),
		"MOJODEX_SCHEDULER_TLS_CERT="+serverCert, "MOJODEX_SCHEDULER_TLS_KEY="+serverKey, "MOJODEX_SCHEDULER_TLS_CA="+p.ca())
	clientEnv := []string{"MOJODEX_SCHEDULER_TLS_CERT=" + clientCert, "MOJODEX_SCHEDULER_TLS_KEY=" + clientKey, "MOJODEX_SCHEDULER_TLS_CA=" + p.ca()}
	cfg, err := mutualTLS(tlsFiles{cert: clientCert, key: clientKey, ca: p.ca(), certName: "cert", keyName: "key", caName: "ca"})
	if err != nil {
		t.Fatal(err)
	}

	var dead []string
	for range 20 {
		dead = append(dead, freeAddr(t))
	}
	blackhole := fullBacklog(t)
	dead = append(dead, silentListener(t), blackhole)
	rc := dialRemote(t, srv.addr, cfg)
	defer rc.dc.Close()
	for _, d := range dead {
		if err := rc.stream.Send(listRequest(srv.addr, actor.NewPID(d, "response/1"))); err != nil {
			t.Fatal(err)
		}
	}
	r := ctl(t, srv.addr, clientEnv, "list")
	if r.code != 0 || r.took > 2*time.Second {
		t.Fatalf("honest ctl list after %d dead reply addresses: exit %d after %v\n%s", len(dead), r.code, r.took, r.stderr)
	}
	t.Logf("honest ctl list (a new process) answered in %v after %d requests with dead reply addresses", r.took.Round(time.Millisecond), len(dead))
	waitFor(t, "the dead replies to be dropped", func() bool {
		return strings.Contains(srv.logs.String(), `"event":"dest_unreach"`)
	})
	if n := strings.Count(srv.logs.String(), `"event":"dest_unreach"`); n > 2 {
		t.Errorf("%d unreachable-destination lines for %d dead addresses", n, len(dead))
	}

	// ctl against a host that drops the connection attempt: one line at --timeout.
	f := ctlFails(t, blackhole, nil, []string{"cannot connect to " + blackhole}, "list", "--timeout", "1s")
	if f.code != ctlExitNoAnswer || f.took > 3*time.Second {
		t.Errorf("ctl against a blackhole: exit %d after %v", f.code, f.took)
	}
	t.Logf("ctl against a blackhole failed in %v: %s", f.took.Round(time.Millisecond), strings.TrimSpace(f.stderr))
	srv.alive(t)
}

// silentListener accepts TCP connections and never reads or writes.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// fullBacklog returns a loopback address whose listener never accepts and
// whose accept queue is full, so the kernel drops further connection
// attempts: a dial there hangs until its timeout, like a firewalled host.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // the queue is full: this attempt was dropped
		}
		t.Cleanup(func() { c.Close() })
		if i > 16 {
			t.Skip("the kernel keeps accepting into a full backlog")
		}
	}
}

// 500 control requests without a sender (nobody to answer) cost one
// warning line per 10 s, with the count, not a line each; an honest ctl
// list is still answered.
func TestRemoteRequestsWithoutSender(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	srv := startServer(t, stub, writeFile(t, twoTasks))
	const n = 500
	rc := dialRemote(t, srv.addr, nil)
	defer rc.dc.Close()
	start := time.Now()
	for i := range n {
		if err := rc.stream.Send(listRequest(srv.addr, nil)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if out := ctlOK(t, srv.addr, nil, "list"); !strings.Contains(out, "quick") {
		t.Errorf("ctl list after %d requests without a sender:\n%s", n, out)
	}
	waitFor(t, "the first warning", func() bool { return strings.Contains(srv.logs.String(), "came without a sender") })
	elapsed := time.Since(start)
	srv.stop(t)
	lines := linesWith(srv.logs.String(), "came without a sender")
	if most := 1 + int(elapsed/(10*time.Second)); lines < 1 || lines > most {
		t.Errorf("%d warning lines for %d requests without a sender in %v, want at most %d", lines, n, elapsed, most)
	}
	t.Logf("%d requests without a sender in %v: %d warning lines", n, elapsed.Round(time.Millisecond), lines)
}
