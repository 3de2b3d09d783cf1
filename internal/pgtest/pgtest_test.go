package pgtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// query runs SELECT 1 on c within d.
func query(c *pgx.Conn, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var n int
	return c.QueryRow(ctx, "SELECT 1").Scan(&n)
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestNewGivesFreshDatabases(t *testing.T) {
	a, b := New(t), New(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	ca := connect(t, a)
	ctx := context.Background()
	if _, err := ca.Exec(ctx, "CREATE TABLE x (i int)"); err != nil {
		t.Fatal(err)
	}
	cb := connect(t, b)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n); err != nil || n != 0 {
		t.Errorf("the second database sees the first's table: %d, %v", n, err)
	}
	var fsync string
	if err := ca.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Errorf("fsync = %q, %v; want off", fsync, err)
	}
}

func TestServerChaos(t *testing.T) {
	s := NewServer(t)
	dsn := s.NewDatabase(t)
	if !strings.Contains(dsn, "127.0.0.1:") {
		t.Errorf("DSN %s is not on loopback", dsn)
	}
	// The unix socket serves the same database.
	connect(t, s.SocketDSN("postgres"))

	c := connect(t, dsn)
	if err := query(c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := s.TerminateBackends(t); n < 1 {
		t.Errorf("TerminateBackends ended %d connections, want at least 1", n)
	}
	if err := query(c, 5*time.Second); err == nil {
		t.Error("a terminated connection still answers")
	}

	c = connect(t, dsn)
	s.Pause(t)
	start := time.Now()
	err := query(c, 300*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("query on a paused server: %v, want a timeout", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if c2, err := pgx.Connect(ctx, dsn); err == nil {
		c2.Close(context.Background())
		t.Error("a paused server accepted a connection")
	}
	cancel()
	if time.Since(start) > 5*time.Second {
		t.Errorf("timeouts took %s", time.Since(start))
	}
	s.Resume(t)
	connect(t, dsn) // served again

	c = connect(t, dsn)
	if _, err := c.Exec(context.Background(), "CREATE TABLE kept (i int)"); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	if err := query(c, 5*time.Second); err == nil {
		t.Error("a connection survived a restart")
	}
	c = connect(t, dsn) // what was committed survived the restart
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM kept").Scan(&n); err != nil {
		t.Errorf("a table committed before an immediate restart: %v", err)
	}

	// Down refuses connections; Up serves the same data on the same port.
	s.Down(t)
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	if c2, err := pgx.Connect(ctx, dsn); err == nil {
		c2.Close(context.Background())
		t.Error("a stopped server accepted a connection")
	}
	cancel()
	s.Up(t)
	c = connect(t, dsn)
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM kept").Scan(&n); err != nil {
		t.Errorf("a table committed before Down: %v", err)
	}
}

// CPUTime counts the cluster's processes, those still running and the
// backends that have exited: work done by a connection that is then
// closed still counts, and the figure never goes back.
func TestCPUTime(t *testing.T) {
	s := NewServer(t)
	before, err := s.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, s.DSN("postgres"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// About a second of CPU in one backend.
	if _, err := c.Exec(ctx, "SELECT count(*) FROM generate_series(1, 20000000)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	// The backend exits, and the postmaster reaps it, soon after.
	var after time.Duration
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if after, err = s.CPUTime(); err != nil {
			t.Fatal(err)
		}
		if after-before >= 100*time.Millisecond {
			return
		}
	}
	t.Errorf("CPU time went from %s to %s across a query that burns CPU in a backend since closed", before, after)
}
