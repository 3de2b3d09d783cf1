// Package pgtest runs throwaway PostgreSQL clusters for tests, from the
// server binaries installed on the machine (Debian's postgresql-15 puts
// them in /usr/lib/postgresql/15/bin). No container and no download.
//
// A test package shares one cluster, started on first use and stopped by
// Main; each test gets a database of its own from New:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.New(t) // postgres://postgres@127.0.0.1:PORT/tN?sslmode=disable
//		...
//	}
//
// A test that restarts, stalls or cuts off the server starts a cluster of
// its own with NewServer, so that it disturbs no other test.
//
// Without PostgreSQL binaries (or in -short mode) the tests that need one
// are skipped; with CI=true in the environment a missing PostgreSQL fails
// them instead, so that a CI machine without it cannot pass unnoticed.
//
// As root, the cluster runs as the postgres user (PostgreSQL refuses to run
// as root): its directory is created with os.MkdirTemp and given to that
// user, and initdb and pg_ctl run with its credentials. The server listens
// on a free loopback TCP port and on a unix socket in its directory, with
// fsync off.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDirEnv names the environment variable that may point at the directory
// holding initdb and pg_ctl; otherwise they are looked for on PATH, then in
// /usr/lib/postgresql/15/bin and the other /usr/lib/postgresql/*/bin.
const BinDirEnv = "PGTEST_BINDIR"

// dirPrefix starts the name of every cluster directory (under os.TempDir),
// so that clusters left behind by a killed test process can be found.
const dirPrefix = "pgtest-"

// Server is a running throwaway PostgreSQL cluster. Its methods are safe
// for concurrent use.
type Server struct {
	bin  string // directory of initdb and pg_ctl
	dir  string // the cluster's own directory (data, log, socket)
	port int
	cred *syscall.Credential // nil: run as the current user

	dbs     atomic.Int64 // databases created
	mu      sync.Mutex   // serializes restarts, pauses and Stop
	paused  bool
	down    bool // stopped by Down, to be started again by Up
	stopped bool
}

// shared is the package's cluster, started by the first New.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Main runs the tests of m and stops the package's cluster, if one was
// started; it returns m.Run's exit code. Call it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}
	return code
}

// New returns the URL of a new, empty database in the package's cluster
// (started on first use; see Main). It skips t when PostgreSQL is not
// available, or fails it under CI=true.
func New(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("pgtest: PostgreSQL tests are skipped in -short mode")
	}
	shared.once.Do(func() { shared.srv, shared.err = Start() })
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	return shared.srv.NewDatabase(t)
}

// NewServer starts a cluster for t alone, stopped when t ends. It skips t
// when PostgreSQL is not available, or fails it under CI=true.
func NewServer(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("pgtest: PostgreSQL tests are skipped in -short mode")
	}
	s, err := Start()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// unavailable skips t, or fails it when CI=true.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: PostgreSQL is required under CI=true: %v", err)
	}
	t.Skipf("pgtest: PostgreSQL not available: %v", err)
}

// Start initializes and starts a new cluster. Stop it with Stop.
func Start() (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user to run the server as (the postgresql package creates it): %w", err)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("user postgres: %w", err)
		}
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	reapStale()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("create the cluster directory: %w", err)
	}
	s.dir = dir
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		s.remove()
		return nil, fmt.Errorf("write the owner file: %w", err)
	}
	if s.cred != nil {
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			s.remove()
			return nil, fmt.Errorf("give %s to the postgres user: %w", dir, err)
		}
	}
	if err := s.run(2*time.Minute, "initdb", "-U", "postgres", "-A", "trust", "--no-sync",
		"-E", "UTF8", "--locale=C", "-D", s.data()); err != nil {
		s.remove()
		return nil, err
	}
	// A free port is picked by the kernel and released for the server: if
	// another process takes it meanwhile, start again on another.
	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err == nil {
			if err = s.pgctl("start"); err == nil {
				return s, nil
			}
		}
		if attempt == 3 {
			s.remove()
			return nil, err
		}
	}
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findBinaries returns the directory holding initdb and pg_ctl.
func findBinaries() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv(BinDirEnv); dir != "" {
		if !has(dir) {
			return "", fmt.Errorf("%s=%s holds no initdb, pg_ctl and postgres", BinDirEnv, dir)
		}
		return dir, nil
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	candidates := []string{"/usr/lib/postgresql/15/bin"}
	others, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(others, func(a, b string) int { return versionOf(b) - versionOf(a) }) // newest first
	for _, dir := range append(candidates, others...) {
		if has(dir) {
			return dir, nil
		}
	}
	return "", errors.New("no initdb and pg_ctl on PATH, in $" + BinDirEnv + " or in /usr/lib/postgresql/*/bin (apt-get install postgresql-15)")
}

// versionOf is the major version in /usr/lib/postgresql/N/bin (0 if none).
func versionOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func (s *Server) data() string    { return filepath.Join(s.dir, "data") }
func (s *Server) logFile() string { return filepath.Join(s.dir, "log") }

// options are the server's settings, passed to postgres by pg_ctl -o.
func (s *Server) options() string {
	return strings.Join([]string{
		"-k", s.dir, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		// No fsync, but every commit written to the kernel: an immediate
		// restart (a crash of the server, not of the machine) loses nothing.
		"-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB",
	}, " ")
}

// pgctl runs pg_ctl action (start, restart) and waits for the server.
// The log file is always given: without it the server would inherit the
// output pipe and the command would never return.
func (s *Server) pgctl(action string, extra ...string) error {
	args := append([]string{action, "-w", "-t", "60", "-D", s.data(), "-l", s.logFile(), "-o", s.options()}, extra...)
	return s.run(90*time.Second, "pg_ctl", args...)
}

// stop stops the server at once (pg_ctl stop -m immediate, as a crash
// would) and waits for it.
func (s *Server) stop() error {
	return s.run(90*time.Second, "pg_ctl", "stop", "-w", "-t", "60", "-m", "immediate", "-D", s.data())
}

// run runs a server binary as the cluster's user, in the cluster's
// directory, and reports its output when it fails.
func (s *Server) run(timeout time.Duration, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if log, lerr := os.ReadFile(s.logFile()); lerr == nil && len(log) > 0 {
			msg += "\nserver log:\n" + tail(string(log), 2000)
		}
		return fmt.Errorf("%s %s: %w\n%s", name, args[0], err, msg)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Dir is the cluster's directory (data directory, log, unix socket).
func (s *Server) Dir() string { return s.dir }

// DSN returns the URL of database db as the superuser, over loopback TCP.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// SocketDSN returns the URL of database db over the unix socket.
func (s *Server) SocketDSN(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", db, s.dir, s.port)
}

// admin runs f on a connection to the postgres database, within 30 s.
func (s *Server) admin(f func(ctx context.Context, c *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("connect to the test cluster: %w", err)
	}
	defer c.Close(context.Background())
	return f(ctx, c)
}

// NewDatabase creates an empty database and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d", s.dbs.Add(1))
	err := s.admin(func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "CREATE DATABASE "+name)
		return err
	})
	if err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return s.DSN(name)
}

// Restart stops the server at once (as a crash would: pg_ctl restart -m
// immediate, so the restarted server recovers from its log) and starts it
// again on the same port. Every connection is lost.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused || s.down {
		t.Fatal("pgtest: Restart of a paused or stopped server")
	}
	if err := s.pgctl("restart", "-m", "immediate"); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// Down stops the server at once (pg_ctl stop -m immediate, as a crash
// would), keeping its data: connections are refused until Up starts it
// again on the same port. Up is also called when t ends.
func (s *Server) Down(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused || s.down {
		t.Fatal("pgtest: Down of a paused or stopped server")
	}
	if err := s.stop(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s.down = true
	t.Cleanup(func() { s.Up(t) })
}

// Up starts again a server stopped by Down (nothing when it runs).
func (s *Server) Up(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down || s.stopped {
		return
	}
	if err := s.pgctl("start"); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s.down = false
}

// Pause stalls the server as a hung machine would: SIGSTOP to the
// postmaster (no new connection is served) and to every process it
// started (open connections get no answer). Resume undoes it; it is also
// called when t ends.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		return
	}
	if s.down {
		t.Fatal("pgtest: Pause of a stopped server")
	}
	pm, err := s.postmaster()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		t.Fatalf("pgtest: SIGSTOP the postmaster: %v", err)
	}
	s.paused = true
	for _, pid := range children(pm) {
		_ = syscall.Kill(pid, syscall.SIGSTOP) // a child may have exited meanwhile
	}
	t.Cleanup(func() { s.Resume(t) })
}

// Resume continues a server stalled by Pause.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.resume(); err != nil {
		t.Errorf("pgtest: %v", err)
	}
}

func (s *Server) resume() error {
	if !s.paused {
		return nil
	}
	pm, err := s.postmaster()
	if err != nil {
		return err
	}
	if err := continueAll(pm); err != nil {
		return fmt.Errorf("SIGCONT the postmaster: %w", err)
	}
	s.paused = false
	return nil
}

// continueAll continues (SIGCONT) the processes the postmaster pm started,
// then pm itself: the reverse of Pause. Its error is the postmaster's.
func continueAll(pm int) error {
	for _, pid := range children(pm) {
		_ = syscall.Kill(pid, syscall.SIGCONT) // a child may have exited meanwhile
	}
	return syscall.Kill(pm, syscall.SIGCONT)
}

// TerminateBackends ends every client connection to the server (as an
// operator's pg_terminate_backend or a proxy's reset would) and returns how
// many it ended.
func (s *Server) TerminateBackends(t testing.TB) int {
	t.Helper()
	var n int
	err := s.admin(func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&n)
	})
	if err != nil {
		t.Fatalf("pgtest: terminate backends: %v", err)
	}
	return n
}

// postmaster returns the postmaster's process id, from postmaster.pid.
func (s *Server) postmaster() (int, error) {
	return postmasterOf(s.data())
}

func postmasterOf(data string) (int, error) {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("read the postmaster's pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %w", err)
	}
	return pid, nil
}

// children lists the processes whose parent is pid (from /proc).
func children(pid int) []int {
	var out []int
	for _, p := range processes() {
		if p.ppid == pid {
			out = append(out, p.pid)
		}
	}
	return out
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100
// on Linux).
const clockTick = 10 * time.Millisecond

// proc is what /proc/PID/stat says of a process.
type proc struct {
	pid, ppid int
	// cpu is its user and system time; reaped its exited children's.
	cpu, reaped time.Duration
}

// processes lists the processes of the machine (from /proc).
func processes() []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime stime cutime cstime: comm may
		// hold spaces, so parse after ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		n := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
		ppid, _ := strconv.Atoi(f[1])
		out = append(out, proc{pid: pid, ppid: ppid,
			cpu: time.Duration(n(11)+n(12)) * clockTick, reaped: time.Duration(n(13)+n(14)) * clockTick})
	}
	return out
}

// CPUTime is the CPU time the cluster has used so far: its postmaster,
// the processes it runs, and the backends that have exited (which the
// postmaster reaped).
func (s *Server) CPUTime() (time.Duration, error) {
	pm, err := s.postmaster()
	if err != nil {
		return 0, err
	}
	var cpu time.Duration
	for _, p := range processes() {
		switch {
		case p.pid == pm:
			cpu += p.cpu + p.reaped
		case p.ppid == pm:
			cpu += p.cpu
		}
	}
	return cpu, nil
}

// Stop stops the server at once and removes its directory. Stopping twice
// is not an error.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	err := s.resume()
	if !s.down {
		if serr := s.stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if rerr := os.RemoveAll(s.dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("remove the cluster directory: %w", rerr))
	}
	return err
}

// remove deletes the directory of a cluster that did not start.
func (s *Server) remove() { _ = os.RemoveAll(s.dir) }

// reapStale stops and removes the clusters left behind by test processes
// that were killed before they could stop them (their owner file names a
// process that no longer exists).
func reapStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		if pm, err := postmasterOf(filepath.Join(dir, "data")); err == nil {
			_ = continueAll(pm)                   // it may have been paused
			_ = syscall.Kill(pm, syscall.SIGQUIT) // immediate shutdown
			for i := 0; i < 100 && syscall.Kill(pm, 0) == nil; i++ {
				time.Sleep(50 * time.Millisecond)
			}
		}
		_ = os.RemoveAll(dir)
	}
}
