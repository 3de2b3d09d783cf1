package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/internal/syncbuf"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/store/pgstore"
	"github.com/mojodex/mojodex-scheduler/task"
)

// next waits up to d for a value on ch.
func next(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: Changes closed", what)
		}
	case <-time.After(d):
		t.Fatalf("%s: no value on Changes within %s", what, d)
	}
}

// eventually retries f until it succeeds, for up to d.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A stalled server (every process SIGSTOPped) makes every call fail within
// the operation timeout, with an error that says so; Changes keeps
// polling; once the server continues, the store serves again.
func TestStalledServer(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn := srv.NewDatabase(t)
	const timeout = time.Second
	s := open(t, dsn, pgstore.WithOperationTimeout(timeout), pgstore.WithPoolSize(2), pgstore.WithPollInterval(200*time.Millisecond))
	b := &store.Batch{Claims: []store.Claim{{Task: "a", Slot: slot(1), Owner: "r1", Lease: time.Minute}}}
	if err := s.Commit(b); err != nil || !b.Claims[0].Won {
		t.Fatalf("claim: %v %+v", err, b.Claims[0])
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := s.Changes(ctx)
	next(t, changes, 10*time.Second, "before the stall")

	srv.Pause(t)
	calls := map[string]func() error{
		"Commit": func() error {
			return s.Commit(&store.Batch{Claims: []store.Claim{{Task: "a", Slot: slot(2)}}})
		},
		"Load":    func() error { _, err := s.Load([]string{"a"}); return err },
		"History": func() error { _, err := s.History("a", 5); return err },
		"Tasks":   func() error { _, err := s.Tasks(); return err },
		"Forget":  func() error { return s.Forget("b") },
		"Heartbeat": func() error {
			_, err := s.Heartbeat(store.Replica{Name: "r1"})
			return err
		},
		"Replicas": func() error { _, err := s.Replicas(time.Minute); return err },
		"Renew": func() error {
			_, err := s.Renew("r1", time.Minute, []store.Held{{Task: "a", Slot: slot(1), Epoch: 1}})
			return err
		},
		"TakeOver":       func() error { _, err := s.TakeOver("r2", time.Minute, []string{"a"}, 5); return err },
		"PublishTaskSet": func() error { _, _, err := s.PublishTaskSet([]byte("x"), "x", false); return err },
		"TaskSet":        func() error { _, _, err := s.TaskSet(); return err },
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() {
			start := time.Now()
			err := call()
			took := time.Since(start)
			switch {
			case err == nil:
				t.Errorf("%s on a stalled server succeeded", name)
			case took > 3*timeout:
				t.Errorf("%s on a stalled server took %s (timeout %s): %v", name, took, timeout, err)
			case !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer from PostgreSQL within 1s"):
				t.Errorf("%s on a stalled server: %v, want a timeout that says so", name, err)
			}
		})
	}
	wg.Wait()
	// Changes goes on polling while it cannot listen.
	for i := range 3 {
		next(t, changes, 5*time.Second, fmt.Sprintf("poll %d during the stall", i))
	}

	srv.Resume(t)
	eventually(t, 20*time.Second, "a commit after the stall", func() error {
		return s.Commit(&store.Batch{Claims: []store.Claim{{Task: "a", Slot: slot(3)}}})
	})
	if _, err := s.Load([]string{"a"}); err != nil {
		t.Error(err)
	}
	next(t, changes, 5*time.Second, "after the stall")
}

// Changes sends a value when it starts listening, after every reconnection
// (a server restart, its connection terminated), and after every
// notification on the new connection; its channel closes with its context
// and with the store.
func TestChangesReconnects(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn := srv.NewDatabase(t)
	var logs syncbuf.Buffer
	s := open(t, dsn, pgstore.WithPollInterval(time.Hour), pgstore.WithOperationTimeout(2*time.Second),
		pgstore.WithLogger(zerolog.New(&logs)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Changes(ctx)
	// With an hour between polls, every value below has one cause.
	next(t, ch, 10*time.Second, "listening")
	pause := func(paused bool) func() error {
		return func() error {
			return s.Commit(&store.Batch{Pauses: []store.Pause{{Task: "a", Paused: paused}}})
		}
	}
	eventually(t, 5*time.Second, "pause", pause(true))
	next(t, ch, 10*time.Second, "a pause")

	srv.Restart(t)
	next(t, ch, 20*time.Second, "reconnection after a restart")
	eventually(t, 20*time.Second, "a commit after the restart", pause(false))
	next(t, ch, 10*time.Second, "a pause after the restart")
	if _, _, err := s.PublishTaskSet([]byte("one"), "one", false); err != nil {
		t.Fatal(err)
	}
	next(t, ch, 10*time.Second, "a publication after the restart")

	srv.TerminateBackends(t)
	next(t, ch, 20*time.Second, "reconnection after the connections were terminated")
	eventually(t, 20*time.Second, "a commit after the terminations", pause(true))
	next(t, ch, 10*time.Second, "a pause after the terminations")
	if !strings.Contains(logs.String(), "reconnecting") {
		t.Errorf("the lost connection was not logged:\n%s", logs.String())
	}

	cancel()
	eventuallyClosed(t, ch)
	ch = s.Changes(context.Background())
	next(t, ch, 10*time.Second, "listening again")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	eventuallyClosed(t, ch)
	if _, ok := <-s.Changes(context.Background()); ok {
		t.Error("Changes of a closed store sent a value")
	}
}

// eventuallyClosed drains ch until it is closed (within 10 s).
func eventuallyClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Changes not closed within 10 s")
		}
	}
}

// Without notifications, Changes sends a value every poll interval.
func TestChangesPolls(t *testing.T) {
	var logs syncbuf.Buffer // a poll must not cost the listening connection
	s := open(t, pgtest.New(t), pgstore.WithPollInterval(50*time.Millisecond), pgstore.WithLogger(zerolog.New(&logs).Level(zerolog.WarnLevel)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Changes(ctx)
	start := time.Now()
	for i := range 6 {
		next(t, ch, 5*time.Second, fmt.Sprintf("poll %d", i))
	}
	// The first value comes on connection; five polls at 50 ms take at
	// least 200 ms (a value may wait in the channel's buffer of one).
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("6 values in %s: faster than the poll interval allows", took)
	}
	if out := logs.String(); out != "" {
		t.Errorf("the listener logged:\n%s", out)
	}
}

// The connection's password appears in no error and no log line, whatever
// the form of the connection string.
func TestPasswordNeverShown(t *testing.T) {
	const pw = "Sup3r-s3cret-pw"
	dsn := pgtest.New(t)
	withPw := strings.Replace(dsn, "postgres@", "postgres:"+pw+"@", 1)
	var logs syncbuf.Buffer
	// The test cluster trusts every connection: the password is ignored.
	s := open(t, withPw, pgstore.WithLogger(zerolog.New(&logs)), pgstore.WithPollInterval(50*time.Millisecond),
		pgstore.WithOperationTimeout(time.Second))
	ctx := context.Background()
	bad := []string{
		"postgres://u:" + pw + "@127.0.0.1:1/db?connect_timeout=1",
		"postgres://u:" + pw + "@127.0.0.1:notaport/db",
		"postgresql://u@127.0.0.1:1/db?password=" + pw + "&connect_timeout=1",
		"postgres://u:" + pw + "@127.0.0.1:1/db?sslmode=bogus",
		"host=127.0.0.1 port=1 user=u password=" + pw + " connect_timeout=1",
		"host=127.0.0.1 port=1 user=u password='" + pw + "' sslmode=bogus",
		"postgres://u:" + strings.ReplaceAll(pw, "-", "%2D") + "@127.0.0.1:1/db?connect_timeout=1",
	}
	for _, d := range bad {
		_, err := pgstore.Open(ctx, d)
		if err == nil {
			t.Errorf("Open(%q) succeeded", d)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("Open error shows the password: %v", err)
		}
		if _, _, err := pgstore.Migrate(ctx, d, "x"); err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("Migrate error shows the password, or none: %v", err)
		}
	}
	// The store's database disappears: calls and the listener fail.
	listening := s.Changes(ctx)
	next(t, listening, 10*time.Second, "listening")
	sql(t, dsn, "SELECT 1").Close()
	db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	adm := strings.Replace(dsn, "/"+db+"?", "/postgres?", 1)
	sql(t, adm, "DROP DATABASE "+db+" WITH (FORCE)").Close()
	eventually(t, 10*time.Second, "the listener's failure logged", func() error {
		if !strings.Contains(logs.String(), "cannot listen") {
			return errors.New("not yet")
		}
		return nil
	})
	if err := s.Commit(&store.Batch{Runs: []task.Run{{Task: "a", Slot: slot(1)}}}); err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("Commit on a dropped database: %v", err)
	}
	if out := logs.String(); strings.Contains(out, pw) {
		t.Errorf("a log line shows the password:\n%s", out)
	}
}
