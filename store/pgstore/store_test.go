package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// The history keeps Run.Epoch, and text PostgreSQL cannot hold (invalid
// UTF-8, NUL) is stored with U+FFFD in its place rather than failing the
// batch; a task name it cannot hold fails the commit, naming it.
func TestRunTextAndEpoch(t *testing.T) {
	s := open(t, pgtest.New(t))
	r := task.Run{Task: "a", Slot: slot(1), Outcome: task.OutcomeFailed, Err: "bad \xff body \x00 end", Replica: "r\x00", Epoch: 3, Resumed: true, Manual: true}
	b := &store.Batch{Runs: []task.Run{r}}
	if err := s.Commit(b); err != nil || b.RunsFenced != nil {
		t.Fatalf("Commit: %v, fenced %v", err, b.RunsFenced)
	}
	runs, err := s.History("a", 1)
	if err != nil || len(runs) != 1 {
		t.Fatalf("History = %+v, %v", runs, err)
	}
	if got := runs[0]; got.Err != "bad \uFFFD body \uFFFD end" || got.Replica != "r\uFFFD" || got.Epoch != 3 || !got.Resumed {
		t.Errorf("run read back = %+v", got)
	}
	err = s.Commit(&store.Batch{Claims: []store.Claim{{Task: "bad\xff", Slot: slot(1)}, {Task: "b", Slot: slot(1)}}})
	if err == nil || !strings.Contains(err.Error(), `"bad\xff"`) {
		t.Errorf("a task name that is not UTF-8: %v", err)
	}
	if names, _ := s.Tasks(); len(names) != 1 {
		t.Errorf("a refused batch stored tasks: %q", names)
	}
	// Names that cannot be stored have no state.
	if m, err := s.Load([]string{"bad\xff", "a"}); err != nil || len(m) != 1 {
		t.Errorf("Load = %v, %v", m, err)
	}
	if runs, err := s.History("bad\xff", 5); err != nil || len(runs) != 0 {
		t.Errorf("History = %v, %v", runs, err)
	}
}

// The history is pruned in the database, not only when read: a task keeps
// store.HistorySize rows, however many runs one batch records.
func TestHistoryPrunedInTheTable(t *testing.T) {
	dsn := pgtest.New(t)
	s := open(t, dsn)
	b := &store.Batch{}
	for i := range 45 {
		b.Runs = append(b.Runs, task.Run{Task: "a", Slot: slot(i), Outcome: task.OutcomeOK})
	}
	for range 3 {
		if err := s.Commit(b); err != nil {
			t.Fatal(err)
		}
		rows := column[int64](t, dsn, `SELECT count(*) FROM mojodex_scheduler.scheduler_runs WHERE task = 'a'`)
		if rows[0] != store.HistorySize {
			t.Errorf("%d rows of runs, want %d", rows[0], store.HistorySize)
		}
	}
	runs, err := s.History("a", store.HistorySize)
	if err != nil || len(runs) != store.HistorySize || !runs[0].Slot.Equal(slot(25)) || !runs[19].Slot.Equal(slot(44)) {
		t.Errorf("History = %d runs from %v, %v; want the last 20 (slots 25 to 44)", len(runs), runs[0].Slot, err)
	}
	// The history's query reads the primary key (task, seq).
	plan := column[string](t, dsn, `EXPLAIN SELECT * FROM mojodex_scheduler.scheduler_runs WHERE task = 'a' ORDER BY seq DESC LIMIT 20`)
	if !strings.Contains(strings.Join(plan, "\n"), "scheduler_runs_pkey") {
		t.Errorf("the history's plan does not use the index:\n%s", strings.Join(plan, "\n"))
	}
}

func TestClosedShared(t *testing.T) {
	s := open(t, pgtest.New(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err1 := s.Heartbeat(store.Replica{Name: "r"})
	_, err2 := s.Replicas(time.Minute)
	_, err3 := s.Renew("r", time.Minute, []store.Held{{Task: "a", Slot: slot(1), Epoch: 1}})
	_, err4 := s.TakeOver("r", time.Minute, []string{"a"}, 1)
	_, _, err5 := s.PublishTaskSet(nil, "h", false)
	_, _, err6 := s.TaskSet()
	for i, err := range []error{err1, err2, err3, err4, err5, err6} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("call %d after Close: %v, want ErrClosed", i+1, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	select {
	case _, ok := <-s.Changes(ctx):
		if ok {
			t.Error("Changes of a closed store sent a value")
		}
	case <-ctx.Done():
		t.Error("Changes of a closed store is not closed")
	}
}
