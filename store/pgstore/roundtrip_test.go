package pgstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/store/pgstore"
	"github.com/mojodex/mojodex-scheduler/task"
)

var base = time.Date(2026, 3, 29, 1, 59, 59, 123456789, time.UTC)

func slot(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

// fullBatch writes every kind of write for each task: claims of slot i,
// checkpoints of slot i-1, runs of slot i-2, anchors and pauses.
func fullBatch(tasks []string, i int) *store.Batch {
	b := &store.Batch{}
	for _, name := range tasks {
		b.Anchors = append(b.Anchors, store.Anchor{Task: name, Anchor: slot(0)})
		b.Claims = append(b.Claims, store.Claim{Task: name, Slot: slot(i), Owner: "r1", Lease: time.Minute})
		b.Checkpoints = append(b.Checkpoints, store.Checkpoint{Task: name, Slot: slot(i - 1), Progress: task.Progress{Pages: 1}, Owner: "r1", Epoch: 1})
		b.Runs = append(b.Runs, task.Run{Task: name, Slot: slot(i - 2), Outcome: task.OutcomeOK, Replica: "r1", Epoch: 1})
		b.Pauses = append(b.Pauses, store.Pause{Task: name, Paused: i%2 == 0})
	}
	return b
}

// A commit is one round trip whatever the number of tasks: BEGIN, one
// statement per list of the batch (and two that lock), COMMIT. So is a
// load.
func TestCommitIsOneRoundTrip(t *testing.T) {
	var w wire
	s := open(t, pgtest.New(t), w.option(), pgstore.WithPoolSize(1))
	for _, n := range []int{1, 500} {
		tasks := names(fmt.Sprintf("n%d", n), n)
		// The first commits on a connection prepare the statements.
		for i := 1; i <= 2; i++ {
			if err := s.Commit(fullBatch(tasks, i)); err != nil {
				t.Fatal(err)
			}
		}
		w.reset()
		b := fullBatch(tasks, 3)
		if err := s.Commit(b); err != nil {
			t.Fatal(err)
		}
		if rt, st := w.roundTrips.Load(), w.statements.Load(); rt != 1 || st != 10 {
			t.Errorf("%d tasks: a commit took %d round trips and %d statements, want 1 and 10", n, rt, st)
		}
		for _, c := range b.Claims {
			if !c.Won {
				t.Fatalf("claim refused: %+v", c)
			}
		}
		if b.RunsFenced != nil {
			t.Errorf("runs fenced: %v", b.RunsFenced)
		}
		for _, c := range b.Checkpoints {
			if c.Fenced {
				t.Fatalf("checkpoint fenced: %+v", c)
			}
		}
		if _, err := s.Load(tasks); err != nil { // prepares
			t.Fatal(err)
		}
		w.reset()
		st, err := s.Load(tasks)
		if err != nil {
			t.Fatal(err)
		}
		if rt := w.roundTrips.Load(); rt != 1 {
			t.Errorf("%d tasks: a load took %d round trips, want 1", n, rt)
		}
		if got := st[tasks[n-1]]; len(got.InProgress) != 2 || got.Last == nil || got.InProgress[0].Progress.Pages != 1 {
			t.Errorf("%d tasks: state of the last task = %+v", n, got)
		}
	}
}
