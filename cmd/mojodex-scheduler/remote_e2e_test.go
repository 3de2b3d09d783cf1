package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// These tests run `run` with its remote control endpoint and `ctl` as a
// second process, over real loopback TCP.

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a `run` process with its remote endpoint.
type server struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	addr string
}

// startServer runs `run --tasks tasks` against stub with the remote endpoint
// on a free port, and waits until the endpoint listens.
func startServer(t *testing.T, stub *mojodexstub.Stub, tasks string, env ...string) *server {
	t.Helper()
	return startServerWrapped(t, stub, tasks, nil, env...)
}

// startServerWrapped is startServer with the binary run by a wrapper
// command (such as prlimit) when wrap is not empty.
func startServerWrapped(t *testing.T, stub *mojodexstub.Stub, tasks string, wrap []string, env ...string) *server {
	t.Helper()
	addr := freeAddr(t)
	cmd := command(t, stub, "run", "--tasks", tasks)
	if len(wrap) > 0 {
		w := exec.Command(wrap[0], append(append(wrap[1:], cmd.Path), cmd.Args[1:]...)...)
		w.Env = cmd.Env
		cmd = w
	}
	cmd.Env = append(cmd.Env, "MOJODEX_SCHEDULER_REMOTE_ADDR="+addr)
	cmd.Env = append(cmd.Env, env...)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: logs, addr: addr}
	t.Cleanup(func() { s.stop(t) })
	waitFor(t, "the remote endpoint to listen", func() bool {
		return strings.Contains(logs.String(), `"message":"remote control endpoint listening"`)
	})
	return s
}

// stop sends SIGTERM and expects a clean exit.
func (s *server) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("scheduler exit: %v\n%s", err, s.logs.String())
		}
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		t.Errorf("scheduler did not stop on SIGTERM")
	}
	if l := s.logs.String(); strings.Contains(l, "panic") || strings.Contains(l, "goroutine ") {
		t.Errorf("the scheduler panicked:\n%s", l)
	}
}

// alive fails the test unless the process is still running.
func (s *server) alive(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the scheduler is gone: %v\n%s", err, s.logs.String())
	}
}

// ctlResult is what a ctl process printed.
type ctlResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// ctl runs `ctl args... --addr addr` with env (and nothing else but PATH).
func ctl(t *testing.T, addr string, env []string, args ...string) ctlResult {
	t.Helper()
	cmd := exec.Command(binary(t), append(append([]string{"ctl"}, args...), "--addr", addr)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := ctlResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("ctl %v: %v", args, err)
	}
	return r
}

// ok runs ctl and fails the test unless it exits 0.
func ctlOK(t *testing.T, addr string, env []string, args ...string) string {
	t.Helper()
	r := ctl(t, addr, env, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("ctl %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// ctlFails runs ctl, expects a non-zero exit and one line on stderr
// containing every want, and returns that line.
func ctlFails(t *testing.T, addr string, env []string, wants []string, args ...string) ctlResult {
	t.Helper()
	r := ctl(t, addr, env, args...)
	if r.code == 0 {
		t.Fatalf("ctl %v: exit 0, want an error\nstdout:\n%s", args, r.stdout)
	}
	if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(lines) != 1 {
		t.Errorf("ctl %v: %d lines on stderr, want 1:\n%s", args, len(lines), r.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("ctl %v: stderr lacks %q:\n%s", args, w, r.stderr)
		}
	}
	return r
}

// jsonRun and jsonTask decode `ctl -o json` (protojson with proto names).
type jsonRun struct {
	Outcome    string `json:"outcome"`
	Pages      int    `json:"pages"`
	Items      int    `json:"items"`
	HTTPStatus int    `json:"http_status"`
	Error      string `json:"error"`
	Manual     bool   `json:"manual"`
}

type jsonTask struct {
	Name     string     `json:"name"`
	Schedule string     `json:"schedule"`
	State    string     `json:"state"`
	NextFire *time.Time `json:"next_fire"`
	LastRun  *jsonRun   `json:"last_run"`
	Runs     []jsonRun  `json:"runs"`
	Restarts int        `json:"restarts"`
}

func listJSON(t *testing.T, addr string, env []string) map[string]jsonTask {
	t.Helper()
	var reply struct {
		Tasks []jsonTask `json:"tasks"`
		Error any        `json:"error"`
	}
	out := ctlOK(t, addr, env, "list", "-o", "json")
	if err := json.Unmarshal([]byte(out), &reply); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}
	if reply.Error != nil {
		t.Fatalf("list -o json: error %v", reply.Error)
	}
	tasks := map[string]jsonTask{}
	for _, tk := range reply.Tasks {
		tasks[tk.Name] = tk
	}
	return tasks
}

const twoTasks = `
tasks:
  - name: hourly
    every: 1h
    request: {service: background, method: POST, path: /reschedule_todo, auth: false, result: todo_pks}
  - name: quick
    every: 1s
    request: {service: background, method: POST, path: /extract_todos, auth: false, result: user_task_execution_pks}
`

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
	fresh := `
  - name: fresh
    every: 1h
    request: {service: backend, method: POST, path: /relaunch_locked_workflow_step_executions}
`
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
	dead := freeAddr(t)
	r = ctlFails(t, dead, nil, []string{dead, "cannot connect"}, "list")
	t.Logf("ctl against a closed port failed in %v: %s", r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
	if r.took > 10*time.Second {
		t.Errorf("ctl took %v to fail", r.took)
	}

	// Something listening that never answers: one line after --timeout.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	r = ctlFails(t, mute.Addr().String(), nil, []string{"no answer from " + mute.Addr().String() + " within 1s"}, "list", "--timeout", "1s")
	t.Logf("ctl against a mute endpoint failed in %v: %s", r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
	if r.took > 10*time.Second {
		t.Errorf("ctl took %v to fail", r.took)
	}
	srv.alive(t)
}

// pki is a throw-away CA with certificates signed by it.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{dir: t.TempDir(), caCert: cert, caKey: key}
	writePEM(t, filepath.Join(p.dir, "ca.pem"), "CERTIFICATE", der)
	return p
}

// issue writes NAME.pem and NAME-key.pem: a certificate for 127.0.0.1 with
// both server and client usages, since hollywood dials back with the same
// TLS configuration it listens with.
func (p *pki) issue(t *testing.T, name string, serial int64) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &k.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writePEM(t, cert, "CERTIFICATE", der)
	writePEM(t, key, "PRIVATE KEY", keyDER)
	return cert, key
}

func (p *pki) ca() string { return filepath.Join(p.dir, "ca.pem") }

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// With mutual TLS, only a peer holding a certificate of the CA gets past the
// handshake; anything else is refused and the scheduler keeps serving.
func TestCtlMutualTLS(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	p := newPKI(t, "mojodex-scheduler test CA")
	serverCert, serverKey := p.issue(t, "scheduler", 2)
	clientCert, clientKey := p.issue(t, "operator", 3)
	srv := startServer(t, stub, writeFile(t, twoTasks),
		"MOJODEX_SCHEDULER_TLS_CERT="+serverCert, "MOJODEX_SCHEDULER_TLS_KEY="+serverKey, "MOJODEX_SCHEDULER_TLS_CA="+p.ca())
	if !strings.Contains(srv.logs.String(), `"mutual_tls":true`) {
		t.Fatalf("the endpoint does not say it uses mutual TLS:\n%s", srv.logs.String())
	}
	clientEnv := []string{"MOJODEX_SCHEDULER_TLS_CERT=" + clientCert, "MOJODEX_SCHEDULER_TLS_KEY=" + clientKey, "MOJODEX_SCHEDULER_TLS_CA=" + p.ca()}

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
	rogueCert, rogueKey := other.issue(t, "rogue", 2)
	r = ctlFails(t, srv.addr, []string{"MOJODEX_SCHEDULER_TLS_CERT=" + rogueCert, "MOJODEX_SCHEDULER_TLS_KEY=" + rogueKey, "MOJODEX_SCHEDULER_TLS_CA=" + p.ca()},
		[]string{"no answer from " + srv.addr, "TLS"}, "list", "--timeout", "1s")
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
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	tconn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", srv.addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
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

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// The endpoint refuses to start beyond loopback without mutual TLS unless
// told to accept the risk, and bad TLS settings are clear errors.
func TestRemoteStartup(t *testing.T) {
	t.Parallel()
	stub := startStub(t)
	tasks := writeFile(t, twoTasks)
	p := newPKI(t, "startup CA")
	cert, key := p.issue(t, "scheduler", 2)
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
			cmd.Env = append(cmd.Env, "MOJODEX_SCHEDULER_REMOTE_ADDR="+freeAddr(t))
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
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 || !exit.Exited() {
				t.Fatalf("err %v, want a non-zero exit at start; output:\n%s", err, out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	t.Run("all interfaces, insecure accepted", func(t *testing.T) {
		cmd := command(t, stub, "run", "--tasks", tasks)
		cmd.Env = append(cmd.Env, "MOJODEX_SCHEDULER_REMOTE_ADDR=0.0.0.0:0", "MOJODEX_SCHEDULER_INSECURE_REMOTE=true")
		logs := &syncBuffer{}
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s := &server{cmd: cmd, logs: logs}
		defer s.stop(t)
		waitFor(t, "the remote endpoint to listen", func() bool {
			return strings.Contains(logs.String(), `"message":"remote control endpoint listening"`)
		})
		if !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), "without TLS") {
			t.Errorf("no warning about the insecure endpoint:\n%s", logs.String())
		}
	})
}
