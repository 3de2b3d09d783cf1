package main

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/testnet"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// These tests run `run` with its remote control endpoint and `ctl` as a
// second process, over real loopback TCP.

// Every ctl command against a running scheduler, and ctl's failures.
func TestCtl(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	tasks := writeFile(t, twoTasks)
	srv := startServer(t, stub, tasks)
	started := time.Now()
	waitFor(t, "a run of quick", func() bool { return len(stub.CallsTo("/extract_todos")) >= 1 })
	time.Sleep(100 * time.Millisecond) // the run's report reaches the supervisor

	// list, as a table.
	out := ctlOK(t, srv.addr, nil, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^NAME\s+STATE\s+SCHEDULE\s+NEXT\s+LAST-RUN\s+OUTCOME\s+PAGES\s+ITEMS\s+STATUS$`).MatchString(lines[0]) {
		t.Fatalf("list:\n%s", out)
	}
	if !regexp.MustCompile(`^hourly\s+scheduled\s+every 1h0m0s\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z+-][A-Za-z0-9+-]*\s+-\s+-\s+-\s+-\s+-$`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^quick\s+(scheduled|running)\s+every 1s\s+\S+ \S+ \S+\s+\S+ \S+ \S+\s+ok\s+1\s+3\s+200$`).MatchString(lines[2]) {
		t.Errorf("list rows:\n%s", out)
	}

	// list, as JSON.
	list := listJSON(t, srv.addr, nil)
	h, q := list["hourly"], list["quick"]
	if h.State != "scheduled" || h.Schedule != "every 1h0m0s" || h.LastRun != nil || h.NextFire == nil {
		t.Errorf("hourly: %+v", h)
	} else if d := h.NextFire.Sub(started); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("hourly fires next in %v, want about 1h", d)
	}
	if q.LastRun == nil || q.LastRun.Outcome != "ok" || q.LastRun.Pages != 1 || q.LastRun.Items != 3 || q.LastRun.HTTPStatus != 200 || q.LastRun.Manual {
		t.Errorf("quick's last run: %+v", q.LastRun)
	}

	// show.
	out = ctlOK(t, srv.addr, nil, "show", "quick")
	if !regexp.MustCompile(`(?m)^name:\s+quick$`).MatchString(out) || !regexp.MustCompile(`(?m)^schedule:\s+every 1s$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^START\s+SLOT\s+TRIGGER\s+DURATION\s+OUTCOME\s+PAGES\s+ITEMS\s+STATUS\s+REPLICA\s+ERROR$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)\sschedule\s+\S+\s+ok\s+1\s+3\s+200\s+-\s+-$`).MatchString(out) {
		t.Errorf("show quick:\n%s", out)
	}

	// trigger: a manual run of hourly.
	if out := ctlOK(t, srv.addr, nil, "trigger", "hourly"); out != "started hourly\n" {
		t.Errorf("trigger: %q", out)
	}
	waitFor(t, "the triggered call", func() bool {
		c := stub.CallsTo("/reschedule_todo")
		return len(c) == 1 && c[0].Status == 200
	})
	var shown struct {
		Task jsonTask `json:"task"`
	}
	waitFor(t, "the manual run in hourly's runs", func() bool {
		out := ctlOK(t, srv.addr, nil, "show", "hourly", "-o", "json")
		if err := json.Unmarshal([]byte(out), &shown); err != nil {
			t.Fatalf("show -o json: %v\n%s", err, out)
		}
		return len(shown.Task.Runs) == 1
	})
	if r := shown.Task.Runs[0]; !r.Manual || r.Outcome != "ok" || r.HTTPStatus != 200 || r.Pages != 1 {
		t.Errorf("manual run: %+v", r)
	}

	// A second trigger while a slow run is in progress is skipped.
	stub.Inject("/reschedule_todo", mojodexstub.Fault{Delay: 2 * time.Second})
	if out := ctlOK(t, srv.addr, nil, "trigger", "hourly"); out != "started hourly\n" {
		t.Errorf("slow trigger: %q", out)
	}
	if out := ctlOK(t, srv.addr, nil, "trigger", "hourly"); out != "skipped hourly: the previous run is still in progress\n" {
		t.Errorf("trigger during a run: %q", out)
	}

	// pause: quick stops firing and is listed paused.
	if out := ctlOK(t, srv.addr, nil, "pause", "quick"); !strings.HasPrefix(out, "paused quick: state ") {
		t.Errorf("pause: %q", out)
	}
	waitFor(t, "quick listed paused", func() bool { return listJSON(t, srv.addr, nil)["quick"].State == "paused" })
	if out := ctlOK(t, srv.addr, nil, "list"); !regexp.MustCompile(`(?m)^quick\s+paused\s+every 1s\s+-\s`).MatchString(out) {
		t.Errorf("list after pause:\n%s", out)
	}
	before := len(stub.CallsTo("/extract_todos"))
	time.Sleep(1500 * time.Millisecond)
	if n := len(stub.CallsTo("/extract_todos")); n != before {
		t.Errorf("%d calls while paused", n-before)
	}

	// resume: quick fires again.
	if out := ctlOK(t, srv.addr, nil, "resume", "quick"); !strings.HasPrefix(out, "resumed quick: state scheduled, next ") {
		t.Errorf("resume: %q", out)
	}
	waitFor(t, "a fire after resume", func() bool { return len(stub.CallsTo("/extract_todos")) > before })

	// reload after rewriting the file: hourly unchanged, quick changed, fresh added.
	fresh := taskYAML("fresh", relaunchSteps, "every: 1h")
	write := func(body string) {
		if err := os.WriteFile(tasks, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Replace(twoTasks, "every: 1s", "every: 2s", 1) + fresh)
	out = ctlOK(t, srv.addr, nil, "reload", "-o", "json")
	var rel struct{ Added, Removed, Changed, Unchanged []string }
	if err := json.Unmarshal([]byte(out), &rel); err != nil {
		t.Fatalf("reload -o json: %v\n%s", err, out)
	}
	if !slices.Equal(rel.Added, []string{"fresh"}) || len(rel.Removed) != 0 || !slices.Equal(rel.Changed, []string{"quick"}) || !slices.Equal(rel.Unchanged, []string{"hourly"}) {
		t.Errorf("reload: %+v", rel)
	}
	if q := listJSON(t, srv.addr, nil)["quick"]; q.Schedule != "every 2s" {
		t.Errorf("quick after reload: %+v", q)
	}

	// An invalid file: an error naming the problem, and nothing changes.
	write("tasks:\n  - name: broken\n    every: soon\n    request: {service: backend, path: /p}\n")
	ctlFails(t, srv.addr, nil, []string{`"broken"`, "soon"}, "reload")
	if got := listJSON(t, srv.addr, nil); len(got) != 3 || got["fresh"].Name == "" || got["quick"].Schedule != "every 2s" {
		t.Errorf("tasks after an invalid reload: %+v", got)
	}

	// Back to the first file, as a table: fresh removed.
	write(twoTasks)
	out = ctlOK(t, srv.addr, nil, "reload")
	for _, re := range []string{`(?m)^added:\s+-$`, `(?m)^removed:\s+fresh$`, `(?m)^changed:\s+quick$`, `(?m)^unchanged:\s+hourly$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("reload output lacks %s:\n%s", re, out)
		}
	}

	// Unknown task: the server's error, exit non-zero.
	for _, args := range [][]string{{"show", "nope"}, {"trigger", "nope"}, {"pause", "nope"}, {"resume", "nope"}} {
		ctlFails(t, srv.addr, nil, []string{`unknown task "nope"`}, args...)
	}
	r := ctl(t, srv.addr, nil, "show", "nope", "-o", "json")
	if r.code == 0 || !strings.Contains(r.stdout, `"code": "UNKNOWN_TASK"`) && !strings.Contains(r.stdout, `"code":  "UNKNOWN_TASK"`) {
		t.Errorf("show nope -o json: exit %d\n%s", r.code, r.stdout)
	}

	// Nothing listening: one line naming the address, at once.
	dead := testnet.FreeAddr(t)
	r = ctlFails(t, dead, nil, []string{dead, "cannot connect"}, "list")
	t.Logf("ctl against a closed port failed in %v: %s", r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
	if r.took > 10*time.Second {
		t.Errorf("ctl took %v to fail", r.took)
	}

	// Something listening that never answers: one line after --timeout.
	mute := testnet.MuteListener(t)
	r = ctlFails(t, mute, nil, []string{"no answer from " + mute + " within 1s"}, "list", "--timeout", "1s")
	t.Logf("ctl against a mute endpoint failed in %v: %s", r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
	if r.took > 10*time.Second {
		t.Errorf("ctl took %v to fail", r.took)
	}
	srv.alive(t)
}

// With mutual TLS, only a peer holding a certificate of the CA gets past the
// handshake; anything else is refused and the scheduler keeps serving.
func TestCtlMutualTLS(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	p := newPKI(t, "mojodex-scheduler test CA")
	srv := startServer(t, stub, writeFile(t, twoTasks), p.issueEnv(t, "scheduler")...)
	if !strings.Contains(srv.logs.String(), `"mutual_tls":true`) {
		t.Fatalf("the endpoint does not say it uses mutual TLS:\n%s", srv.logs.String())
	}
	clientCert, clientKey := p.issue(t, "operator")
	clientEnv := tlsEnv(clientCert, clientKey, p.ca())

	answers := func() {
		t.Helper()
		if out := ctlOK(t, srv.addr, clientEnv, "list"); !strings.Contains(out, "hourly") || !strings.Contains(out, "quick") {
			t.Errorf("list over mutual TLS:\n%s", out)
		}
	}
	answers()
	// The same, with flags instead of the environment.
	if out := ctlOK(t, srv.addr, nil, "show", "hourly", "--tls-cert", clientCert, "--tls-key", clientKey, "--tls-ca", p.ca()); !strings.Contains(out, "every 1h0m0s") {
		t.Errorf("show over mutual TLS:\n%s", out)
	}

	// ctl without a certificate gets no answer.
	r := ctlFails(t, srv.addr, nil, []string{"no answer from " + srv.addr, "--tls-cert"}, "list", "--timeout", "1s")
	t.Logf("ctl without a certificate: %s", strings.TrimSpace(r.stderr))
	// ctl with a certificate of another CA is refused in the handshake.
	other := newPKI(t, "rogue CA")
	rogueCert, rogueKey := other.issue(t, "rogue")
	r = ctlFails(t, srv.addr, tlsEnv(rogueCert, rogueKey, p.ca()), []string{"no answer from " + srv.addr, "TLS"}, "list", "--timeout", "1s")
	t.Logf("ctl with a certificate of another CA: %s", strings.TrimSpace(r.stderr))

	// Plain TCP garbage: the connection is closed, nothing is read.
	conn, err := net.DialTimeout("tcp", srv.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("GET / HTTP/1.0\r\n\r\n\x00\x01\x02garbage\xff\xfe")); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(make([]byte, 64)); err == nil || isTimeout(err) {
		t.Errorf("plain TCP garbage: read %d bytes, err %v; want the connection refused", n, err)
	}
	conn.Close()

	// A TLS client without a certificate: refused at the handshake (with TLS
	// 1.3 the client learns it on its first read).
	tconn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", srv.addr, &tls.Config{RootCAs: p.Pool(), MinVersion: tls.VersionTLS12})
	if err == nil {
		_ = tconn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = tconn.Write([]byte("hello"))
		if err == nil {
			_, err = tconn.Read(make([]byte, 64))
		}
		tconn.Close()
	}
	if err == nil || isTimeout(err) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("TLS without a client certificate: %v; want the handshake refused", err)
	}

	srv.alive(t)
	answers()
}

// The endpoint refuses to start beyond loopback without mutual TLS unless
// told to accept the risk, and bad TLS settings are clear errors.
func TestRemoteStartup(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	tasks := writeFile(t, twoTasks)
	p := newPKI(t, "startup CA")
	cert, key := p.issue(t, "scheduler")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	for _, tc := range []struct {
		name  string
		env   []string
		wants []string
	}{
		{"all interfaces without TLS", []string{"MOJODEX_SCHEDULER_REMOTE_ADDR=0.0.0.0:0"},
			[]string{"MOJODEX_SCHEDULER_REMOTE_ADDR=0.0.0.0:0", "not a loopback address", "MOJODEX_SCHEDULER_INSECURE_REMOTE"}},
		{"certificate without key and CA", []string{"MOJODEX_SCHEDULER_TLS_CERT=" + cert},
			[]string{"MOJODEX_SCHEDULER_TLS_CERT set", "MOJODEX_SCHEDULER_TLS_KEY and MOJODEX_SCHEDULER_TLS_CA missing"}},
		{"missing certificate file", []string{"MOJODEX_SCHEDULER_TLS_CERT=/nonexistent/cert.pem", "MOJODEX_SCHEDULER_TLS_KEY=" + key, "MOJODEX_SCHEDULER_TLS_CA=" + p.ca()},
			[]string{"MOJODEX_SCHEDULER_TLS_CERT=/nonexistent/cert.pem", "no such file"}},
		{"CA file without a certificate", []string{"MOJODEX_SCHEDULER_TLS_CERT=" + cert, "MOJODEX_SCHEDULER_TLS_KEY=" + key, "MOJODEX_SCHEDULER_TLS_CA=" + tasks},
			[]string{"MOJODEX_SCHEDULER_TLS_CA=" + tasks, "no PEM certificate"}},
		{"not host:port", []string{"MOJODEX_SCHEDULER_REMOTE_ADDR=localhost"}, []string{"MOJODEX_SCHEDULER_REMOTE_ADDR", `"localhost"`, "host:port"}},
		{"port in use", []string{"MOJODEX_SCHEDULER_REMOTE_ADDR=" + busy.Addr().String()}, []string{"MOJODEX_SCHEDULER_REMOTE_ADDR=" + busy.Addr().String(), "address already in use"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(t, stub, "run", "--tasks", tasks)
			cmd.Env = append(cmd.Env, "MOJODEX_SCHEDULER_REMOTE_ADDR="+testnet.FreeAddr(t))
			cmd.Env = append(cmd.Env, tc.env...)
			done := make(chan struct{})
			timer := time.AfterFunc(10*time.Second, func() {
				select {
				case <-done:
				default:
					_ = cmd.Process.Kill()
				}
			})
			out, err := cmd.CombinedOutput()
			close(done)
			timer.Stop()
			if code := exitCode(t, err); code == 0 || code == -1 { // -1: ended by a signal
				t.Fatalf("exit %d, want a non-zero exit at start; output:\n%s", code, out)
			}
			containsAll(t, string(out), tc.wants...)
		})
	}

	t.Run("all interfaces, insecure accepted", func(t *testing.T) {
		// The address given wins over startServer's own.
		srv := startServer(t, stub, tasks, "MOJODEX_SCHEDULER_REMOTE_ADDR=0.0.0.0:0", "MOJODEX_SCHEDULER_INSECURE_REMOTE=true")
		if l := srv.logs.String(); !strings.Contains(l, `"level":"warn"`) || !strings.Contains(l, "without TLS") {
			t.Errorf("no warning about the insecure endpoint:\n%s", l)
		}
	})
}
