//go:build linux

package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/anthdm/hollywood/remote"
	"github.com/mojodex/mojodex-scheduler/internal/remotetest"
	"github.com/mojodex/mojodex-scheduler/internal/testnet"
	"github.com/mojodex/mojodex-scheduler/supervisor"
)

// These tests attack the remote control endpoint of a running `run`
// process over loopback: malformed envelopes, idle connections, dead reply
// addresses.

// supervisorTarget is the control-plane actor of a running scheduler.
const supervisorTarget = supervisor.Kind + "/" + supervisor.ID

// listRequest is a well-formed ListTasksRequest for the supervisor at addr.
func listRequest(addr string, sender *actor.PID) *remote.Envelope {
	return remotetest.ListTasks(addr, supervisorTarget, sender)
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
		"target: a task actor":      mut(func(e *remote.Envelope) { e.Targets[0].ID = supervisorTarget + "/task/quick.1" }),
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
		rc := remotetest.Dial(t, srv.addr, nil)
		_ = rc.Send(env) // may fail once the scheduler has closed the connection
		if !rc.ClosedWithin(2 * time.Second) {
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
	rc := remotetest.Dial(t, srv.addr, nil)
	_ = rc.SendBytes([]byte{0xff, 0xff, 0xff})
	if !rc.ClosedWithin(2 * time.Second) {
		t.Error("undecodable envelope: connection still open 2s later")
	}

	const flood = 300
	start := time.Now()
	for i := range flood {
		rc := remotetest.Dial(t, srv.addr, nil)
		// The scheduler may close the connection before Send returns.
		_ = rc.Send(listRequest(srv.addr, actor.NewPID("", "x")))
		if !rc.ClosedWithin(2 * time.Second) {
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
		serverEnv, clientEnv = p.issueEnv(t, "scheduler"), p.issueEnv(t, "operator")
	}
	var wrap []string
	if p, err := exec.LookPath("prlimit"); err == nil {
		wrap = []string{p, "--nofile=512:512"}
	} else {
		t.Log("prlimit not found: the scheduler runs with the test's descriptor limit")
	}
	httpAddr := testnet.FreeAddr(t)
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
	srv := startServer(t, stub, writeFile(t, twoTasks), p.issueEnv(t, "scheduler")...)
	clientCert, clientKey := p.issue(t, "operator")
	clientEnv := tlsEnv(clientCert, clientKey, p.ca())
	cfg, err := mutualTLS(tlsFiles{cert: clientCert, key: clientKey, ca: p.ca(), certName: "cert", keyName: "key", caName: "ca"})
	if err != nil {
		t.Fatal(err)
	}

	var dead []string
	for range 20 {
		dead = append(dead, testnet.FreeAddr(t))
	}
	blackhole := testnet.FullBacklog(t)
	dead = append(dead, testnet.MuteListener(t), blackhole)
	rc := remotetest.Dial(t, srv.addr, cfg)
	for _, d := range dead {
		if err := rc.Send(listRequest(srv.addr, actor.NewPID(d, "response/1"))); err != nil {
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

// 500 control requests without a sender (nobody to answer) cost one
// warning line per 10 s, with the count, not a line each; an honest ctl
// list is still answered.
func TestRemoteRequestsWithoutSender(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	srv := startServer(t, stub, writeFile(t, twoTasks))
	const n = 500
	rc := remotetest.Dial(t, srv.addr, nil)
	start := time.Now()
	for i := range n {
		if err := rc.Send(listRequest(srv.addr, nil)); err != nil {
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
