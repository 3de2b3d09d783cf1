package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
)

// gatedStore wraps a Store: while the gate is shut, Commit signals entered
// and waits, so a test can queue batches behind a commit in progress. It
// can also be made to fail.
type gatedStore struct {
	Store
	entered chan struct{} // receives once per Commit while shut
	gate    chan struct{} // closed to let commits through
	commits atomic.Int32
	fail    atomic.Pointer[error]
}

func newGatedStore(st Store) *gatedStore {
	g := &gatedStore{Store: st, entered: make(chan struct{}, 100), gate: make(chan struct{})}
	return g
}

func (g *gatedStore) Commit(b *Batch) error {
	select {
	case <-g.gate:
	default:
		g.entered <- struct{}{}
		<-g.gate
	}
	g.commits.Add(1)
	if err := g.fail.Load(); err != nil {
		return fmt.Errorf("commit: %w", *err)
	}
	return g.Store.Commit(b)
}

func (g *gatedStore) open() { close(g.gate) }

func (g *gatedStore) failWith(err error) {
	if err == nil {
		g.fail.Store(nil)
		return
	}
	g.fail.Store(&err)
}

// countCommits returns an option counting commits and merged batches.
func countCommits(commits, batches *atomic.Int64) CommitterOption {
	return OnCommit(func(s CommitStats) {
		if s.Writes > 0 {
			commits.Add(1)
			batches.Add(int64(s.Batches))
		}
	})
}

// TestCommitterMergesConcurrentClaims holds the first commit while n-1
// other callers submit, so the rest is exactly one commit: one bbolt write
// transaction for n-1 callers, each handed its own results.
func TestCommitterMergesConcurrentClaims(t *testing.T) {
	t.Parallel()
	const n = 300
	b := openTestBolt(t)
	// Every task has slot 10 claimed and an anchor already, except the odd
	// ones, which have no anchor.
	pre := &Batch{}
	for i := range n {
		name := fmt.Sprintf("t%03d", i)
		pre.Claims = append(pre.Claims, Claim{Task: name, Slot: slot(10)})
		if i%2 == 0 {
			pre.Anchors = append(pre.Anchors, Anchor{Task: name, Anchor: slot(-1)})
		}
	}
	mustCommit(t, b, pre)
	g := newGatedStore(b)
	var commits, batches atomic.Int64
	c := NewCommitter(g, countCommits(&commits, &batches))
	defer c.Close()
	writesBefore := b.writes.Load()

	type result struct {
		batch *Batch
		err   error
	}
	results := make([]chan result, n)
	submit := func(i int) {
		name := fmt.Sprintf("t%03d", i)
		batch := &Batch{
			Anchors: []Anchor{{Task: name, Anchor: slot(i)}},
			Claims:  []Claim{{Task: name, Slot: slot(5)}, {Task: name, Slot: slot(11)}},
		}
		results[i] = make(chan result, 1)
		c.Submit(batch, func(err error) { results[i] <- result{batch, err} })
	}
	submit(0)
	<-g.entered // the first commit is in progress
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Go(func() { submit(i) })
	}
	wg.Wait() // Submit returns once the batch is queued
	g.open()
	for i := range n {
		r := <-results[i]
		if r.err != nil {
			t.Fatalf("caller %d: %v", i, r.err)
		}
		if r.batch.Claims[0].Won || !r.batch.Claims[1].Won {
			t.Errorf("caller %d: claims %+v, want slot 5 refused and slot 11 won", i, r.batch.Claims)
		}
		want := slot(i)
		if i%2 == 0 {
			want = slot(-1)
		}
		if !r.batch.Anchors[0].Stored.Equal(want) {
			t.Errorf("caller %d: anchor stored %s, want %s", i, r.batch.Anchors[0].Stored, want)
		}
	}
	if got := commits.Load(); got != 2 {
		t.Errorf("%d callers took %d commits, want 2 (the first, then all the others)", n, got)
	}
	if got := batches.Load(); got != n {
		t.Errorf("the commits merged %d batches, want %d", got, n)
	}
	if got := b.writes.Load() - writesBefore; got != 2 {
		t.Errorf("%d bbolt write transactions (two fdatasyncs each), want 2", got)
	}
	// Each slot was claimed once: claiming them all again loses every one.
	again := &Batch{}
	for i := range n {
		again.Claims = append(again.Claims, Claim{Task: fmt.Sprintf("t%03d", i), Slot: slot(11)})
	}
	check(t, c.Commit(again))
	for _, cl := range again.Claims {
		if cl.Won {
			t.Fatalf("slot 11 of %s claimed twice", cl.Task)
		}
	}
}

// TestCommitterFreeRunning lets many goroutines claim, each its own task,
// slot after slot, with no gate: every claim is won once and the commits
// are far fewer than the claims.
func TestCommitterFreeRunning(t *testing.T) {
	t.Parallel()
	const (
		claimers = 200
		rounds   = 10
	)
	b := openTestBolt(t)
	var commits, batches atomic.Int64
	c := NewCommitter(b, countCommits(&commits, &batches))
	defer c.Close()
	writesBefore := b.writes.Load()
	var wg sync.WaitGroup
	var won atomic.Int64
	for i := range claimers {
		wg.Go(func() {
			for r := range rounds {
				batch := &Batch{Claims: []Claim{{Task: fmt.Sprintf("t%03d", i), Slot: slot(r)}}}
				if err := c.Commit(batch); err != nil {
					t.Error(err)
					return
				}
				if batch.Claims[0].Won {
					won.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if won.Load() != claimers*rounds {
		t.Errorf("%d claims won, want %d", won.Load(), claimers*rounds)
	}
	writes := int64(b.writes.Load() - writesBefore)
	t.Logf("%d claims in %d commits (%d bbolt write transactions)", claimers*rounds, commits.Load(), writes)
	if commits.Load()*4 > claimers*rounds || writes != commits.Load() {
		t.Errorf("%d claims took %d commits and %d write transactions, want at most a quarter as many, one each",
			claimers*rounds, commits.Load(), writes)
	}
}

// TestCrashBetweenClaimAndRun closes the store after a claim, without
// recording the run: reopened, the slot is in progress and cannot be
// claimed again.
func TestCrashBetweenClaimAndRun(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := OpenBolt(path)
	check(t, err)
	c := NewCommitter(b)
	if !claim(t, c, "a", slot(1)) {
		t.Fatal("claim refused")
	}
	c.Close()
	check(t, b.Close())
	checkClaimedInProgress(t, path, "a", slot(1))
}

// checkClaimedInProgress opens the state file and checks that the slot is
// in progress and cannot be claimed again.
func checkClaimedInProgress(t *testing.T, path, name string, at time.Time) {
	t.Helper()
	b, err := OpenBolt(path)
	check(t, err)
	defer b.Close()
	states, err := b.Load([]string{name})
	check(t, err)
	st := states[name]
	if len(st.InProgress) != 1 || !st.InProgress[0].Slot.Equal(at) {
		t.Errorf("in progress after the crash: %+v, want slot %s", st.InProgress, at)
	}
	if claim(t, b, name, at) {
		t.Error("the slot was claimed again after the crash")
	}
}

// TestKilledAfterClaim kills (SIGKILL) a child process right after its
// claim was committed: the claim survives, in progress.
func TestKilledAfterClaim(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	cmd := helperCommand(t, "TestHelperClaimAndHang", "STORE_TEST_CLAIM="+path)
	stdout, err := cmd.StdoutPipe()
	check(t, err)
	check(t, cmd.Start())
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "claimed\n" {
		t.Fatalf("helper process said %q, %v", line, err)
	}
	check(t, cmd.Process.Signal(syscall.SIGKILL))
	err = cmd.Wait()
	killed = true
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper process ended with %v, want killed", err)
	}
	checkClaimedInProgress(t, path, "a", slot(1))
}

// TestHelperClaimAndHang is not a test: TestKilledAfterClaim runs it in a
// child process, which claims a slot through a Committer, says so, and
// waits to be killed.
func TestHelperClaimAndHang(t *testing.T) {
	path := os.Getenv("STORE_TEST_CLAIM")
	if path == "" {
		t.Skip("helper process only")
	}
	b, err := OpenBolt(path)
	check(t, err)
	c := NewCommitter(b)
	if !claim(t, c, "a", slot(1)) {
		t.Fatal("claim refused")
	}
	fmt.Println("claimed")
	time.Sleep(time.Minute) // killed long before
	t.Fatal("not killed")
}

func TestCommitterFlush(t *testing.T) {
	t.Parallel()
	b := openTestBolt(t)
	g := newGatedStore(b)
	c := NewCommitter(g)
	defer c.Close()
	c.Submit(&Batch{Claims: []Claim{{Task: "a", Slot: slot(1)}}}, nil)
	<-g.entered
	for i := 2; i <= 5; i++ {
		c.Submit(&Batch{Claims: []Claim{{Task: "a", Slot: slot(i)}}}, nil)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- c.Flush() }()
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned %v while a commit was held", err)
	case <-time.After(20 * time.Millisecond):
	}
	g.open()
	check(t, <-flushed)
	states, err := b.Load([]string{"a"})
	check(t, err)
	if st := states["a"]; !st.LastSlot.Equal(slot(5)) || len(st.InProgress) != 5 {
		t.Errorf("after Flush: last slot %s, %d in progress; want slot 5, 5", st.LastSlot, len(st.InProgress))
	}
	// Flush reports the last commit's failure, and its success once it
	// commits again.
	injected := errors.New("injected")
	g.failWith(injected)
	c.Submit(&Batch{Pauses: []Pause{{Task: "a", Paused: true}}}, nil)
	if err := c.Flush(); !errors.Is(err, injected) {
		t.Errorf("Flush after a failed commit = %v, want the failure", err)
	}
	if err := c.Flush(); !errors.Is(err, injected) {
		t.Errorf("second Flush after a failed commit = %v, want the failure", err)
	}
	g.failWith(nil)
	c.Submit(&Batch{Pauses: []Pause{{Task: "a", Paused: true}}}, nil)
	check(t, c.Flush())
	c.Close()
	if err := c.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
}

// TestCommitterCloseDrains closes the committer with batches queued behind
// a commit in progress: Close waits for them, all are written, and later
// batches are refused.
func TestCommitterCloseDrains(t *testing.T) {
	t.Parallel()
	b := openTestBolt(t)
	g := newGatedStore(b)
	c := NewCommitter(g)
	var done sync.WaitGroup
	var failed atomic.Int32
	submit := func(i int) {
		done.Add(1)
		c.Submit(&Batch{Claims: []Claim{{Task: fmt.Sprintf("t%d", i), Slot: slot(1)}}}, func(err error) {
			if err != nil {
				failed.Add(1)
			}
			done.Done()
		})
	}
	submit(0)
	<-g.entered
	for i := 1; i < 50; i++ {
		submit(i)
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a commit was in progress")
	case <-time.After(20 * time.Millisecond):
	}
	g.open()
	<-closed
	done.Wait() // every callback was called before Close returned
	if failed.Load() != 0 {
		t.Errorf("%d queued batches failed", failed.Load())
	}
	names, err := b.Tasks()
	check(t, err)
	if len(names) != 50 {
		t.Errorf("%d tasks written, want 50", len(names))
	}
	var got error
	c.Submit(&Batch{Claims: []Claim{{Task: "late", Slot: slot(1)}}}, func(err error) { got = err })
	if !errors.Is(got, ErrClosed) {
		t.Errorf("Submit after Close: %v, want ErrClosed at once", got)
	}
	c.Close() // twice
}

// TestCommitterErr follows the last commit: an error after a failed
// commit, nil again after a successful one. Empty batches change nothing.
func TestCommitterErr(t *testing.T) {
	t.Parallel()
	b := openTestBolt(t)
	g := newGatedStore(b)
	g.open()
	var stats []CommitStats
	var mu sync.Mutex
	c := NewCommitter(g, OnCommit(func(s CommitStats) { mu.Lock(); stats = append(stats, s); mu.Unlock() }))
	defer c.Close()
	if c.Err() != nil {
		t.Errorf("Err of a new committer = %v", c.Err())
	}
	injected := errors.New("disk on fire")
	g.failWith(injected)
	if err := c.Commit(&Batch{Claims: []Claim{{Task: "a", Slot: slot(1)}}}); !errors.Is(err, injected) {
		t.Errorf("Commit = %v, want the store's error", err)
	}
	if !errors.Is(c.Err(), injected) {
		t.Errorf("Err after a failed commit = %v", c.Err())
	}
	check(t, c.Commit(&Batch{})) // an empty batch does not reach the store
	if !errors.Is(c.Err(), injected) {
		t.Errorf("Err after an empty batch = %v, want the failure still", c.Err())
	}
	g.failWith(nil)
	check(t, c.Commit(&Batch{Claims: []Claim{{Task: "a", Slot: slot(1)}}}))
	if c.Err() != nil {
		t.Errorf("Err after a successful commit = %v, want nil", c.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	var failures int
	for _, s := range stats {
		if s.Err != nil {
			failures++
		}
	}
	if failures != 1 {
		t.Errorf("OnCommit saw %d failed commits, want 1 (%+v)", failures, stats)
	}
}

// TestCommitterFailureReachesEveryCaller fails a merged commit: every
// caller gets the error, and no claim is reported won.
func TestCommitterFailureReachesEveryCaller(t *testing.T) {
	t.Parallel()
	const n = 40
	b := openTestBolt(t)
	g := newGatedStore(b)
	c := NewCommitter(g)
	defer c.Close()
	injected := errors.New("no space left on device")
	c.Submit(&Batch{Pauses: []Pause{{Task: "first", Paused: true}}}, nil)
	<-g.entered
	g.failWith(injected)
	batches := make([]*Batch, n)
	errs := make([]error, n)
	var done sync.WaitGroup
	for i := range n {
		batches[i] = &Batch{Claims: []Claim{{Task: fmt.Sprintf("t%d", i), Slot: slot(1)}}}
		done.Add(1)
		c.Submit(batches[i], func(err error) { errs[i] = err; done.Done() })
	}
	// An invalid batch is refused alone, at once, and does not join.
	var invalid error
	c.Submit(&Batch{Claims: []Claim{{Task: "", Slot: slot(1)}}}, func(err error) { invalid = err })
	if invalid == nil || !strings.Contains(invalid.Error(), "empty task name") {
		t.Errorf("invalid batch: %v", invalid)
	}
	g.open()
	done.Wait()
	for i, err := range errs {
		if !errors.Is(err, injected) {
			t.Errorf("caller %d: %v, want the store's error", i, err)
		}
		if batches[i].Claims[0].Won {
			t.Errorf("caller %d: claim reported won by a failed commit", i)
		}
	}
	if g.commits.Load() != 2 {
		t.Errorf("%d commits, want 2", g.commits.Load())
	}
	names, err := b.Tasks()
	check(t, err)
	if len(names) != 0 {
		t.Errorf("tasks stored by failed commits: %q", names)
	}
}

// TestCommitterInlineMemory commits on the caller's goroutine for Memory.
func TestCommitterInlineMemory(t *testing.T) {
	t.Parallel()
	var commits, batches atomic.Int64
	c := NewCommitter(NewMemory(), countCommits(&commits, &batches))
	batch := &Batch{Claims: []Claim{{Task: "a", Slot: slot(1)}}, Runs: []task.Run{run("a", 0)}}
	var called bool
	c.Submit(batch, func(err error) { called = err == nil })
	if !called || !batch.Claims[0].Won {
		t.Error("an inline commit did not complete within Submit")
	}
	check(t, c.Flush())
	c.Close()
	if err := c.Commit(&Batch{Claims: []Claim{{Task: "a", Slot: slot(2)}}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v", err)
	}
	if commits.Load() != 1 {
		t.Errorf("%d commits, want 1", commits.Load())
	}
}

// Types embedding a store, with a Commit of their own that refuses every
// batch, as tests wrap stores to cut them off.
type (
	refusingMemory struct{ *Memory }
	refusingShared struct{ *SharedMemory }
	refusingBolt   struct{ *Bolt }
)

var errRefusedByWrapper = errors.New("refused by the wrapper")

func (refusingMemory) Commit(*Batch) error { return errRefusedByWrapper }
func (refusingShared) Commit(*Batch) error { return errRefusedByWrapper }
func (refusingBolt) Commit(*Batch) error   { return errRefusedByWrapper }

// TestCommitterUsesAWrappersCommit checks that a Committer writes through
// the Commit of a type that embeds a store, never around it through the
// store's own methods that the type inherits.
func TestCommitterUsesAWrappersCommit(t *testing.T) {
	t.Parallel()
	mem, shared, bolt := NewMemory(), NewSharedMemory(), openTestBolt(t)
	for name, tc := range map[string]struct {
		wrapper, inner Store
	}{
		"Memory":       {refusingMemory{mem}, mem},
		"SharedMemory": {refusingShared{shared}, shared},
		"Bolt":         {refusingBolt{bolt}, bolt},
	} {
		c := NewCommitter(tc.wrapper)
		err := c.Commit(&Batch{Claims: []Claim{{Task: "a", Slot: slot(1)}}})
		c.Close()
		if !errors.Is(err, errRefusedByWrapper) {
			t.Errorf("%s: Commit through a wrapper = %v, want the wrapper's error", name, err)
		}
		if names, err := tc.inner.Tasks(); err != nil || len(names) != 0 {
			t.Errorf("%s: the wrapped store was written to: %q, %v", name, names, err)
		}
	}
}
