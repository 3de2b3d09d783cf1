package pgstore

import (
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// Load implements store.Store: the tasks' rows, runs in progress and last
// runs, read in one repeatable-read transaction, in one round trip.
func (s *Store) Load(names []string) (map[string]store.TaskState, error) {
	const op = "load tasks"
	if s.closed.Load() {
		return nil, s.closedErr(op)
	}
	keys := storable(names)
	out := make(map[string]store.TaskState, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ctx, cancel := s.op()
	defer cancel()
	q := &pgx.Batch{}
	q.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	q.Queue(s.q.loadTasks, keys)
	q.Queue(s.q.loadInProgress, keys)
	q.Queue(s.q.loadLast, keys)
	q.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, q)
	err := readLoad(br, out)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, s.fail(fmt.Sprintf("%s (%d)", op, len(keys)), err)
	}
	return out, nil
}

func readLoad(br pgx.BatchResults, out map[string]store.TaskState) error {
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("tasks: %w", err)
	}
	var (
		name         string
		anchor, last int64
		paused       bool
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &anchor, &last, &paused}, func() error {
		out[name] = store.TaskState{Anchor: store.FromUnixNanos(anchor), LastSlot: store.FromUnixNanos(last), Paused: paused}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tasks: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		return fmt.Errorf("runs in progress: %w", err)
	}
	var (
		slot, pages, offset, items, epoch int64
		owner                             string
		lease                             *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &slot, &pages, &offset, &items, &owner, &epoch, &lease}, func() error {
		st, ok := out[name]
		if !ok {
			return nil // its task row was deleted (Forget) meanwhile
		}
		ip := store.InProgress{
			Slot:     store.FromUnixNanos(slot),
			Progress: task.Progress{Pages: int(pages), Offset: int(offset), Items: int(items)},
			Owner:    owner, Epoch: epoch,
		}
		if lease != nil {
			ip.LeaseUntil = lease.UTC()
		}
		st.InProgress = append(st.InProgress, ip)
		out[name] = st
		return nil
	})
	if err != nil {
		return fmt.Errorf("runs in progress: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		return fmt.Errorf("last runs: %w", err)
	}
	var r runRow
	_, err = pgx.ForEachRow(rows, r.dest(), func() error {
		st, ok := out[r.task]
		if !ok {
			return nil
		}
		run := r.run()
		st.Last = &run
		out[r.task] = st
		return nil
	})
	if err != nil {
		return fmt.Errorf("last runs: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// runRow is a row of scheduler_runs: its task, then runColumns.
type runRow struct {
	task, outcome, reason, err, replica string
	slot, start, lateness, duration     int64
	pages, items, epoch                 int64
	status                              int32
	manual, resumed                     bool
}

func (r *runRow) dest() []any {
	return []any{&r.task, &r.slot, &r.start, &r.lateness, &r.duration, &r.outcome, &r.reason,
		&r.pages, &r.items, &r.status, &r.err, &r.replica, &r.epoch, &r.manual, &r.resumed}
}

func (r *runRow) run() task.Run {
	return task.Run{
		Task: r.task, Slot: store.FromUnixNanos(r.slot), Start: store.FromUnixNanos(r.start),
		Lateness: time.Duration(r.lateness), Duration: time.Duration(r.duration),
		Outcome: task.Outcome(r.outcome), Reason: task.SkipReason(r.reason),
		Pages: int(r.pages), Items: int(r.items), Status: int(r.status),
		Err: r.err, Replica: r.replica, Epoch: r.epoch, Manual: r.manual, Resumed: r.resumed,
	}
}

// History implements store.Store: the last n runs (at most
// store.HistorySize) from the index on (task, seq), oldest first.
func (s *Store) History(name string, n int) ([]task.Run, error) {
	op := fmt.Sprintf("history of task %q", name)
	if s.closed.Load() {
		return nil, s.closedErr(op)
	}
	n = min(n, store.HistorySize)
	if n <= 0 || !validText(name) {
		return nil, nil
	}
	ctx, cancel := s.op()
	defer cancel()
	rows, err := s.pool.Query(ctx, s.q.history, name, n)
	if err != nil {
		return nil, s.fail(op, err)
	}
	var (
		r   runRow
		out []task.Run
	)
	if _, err := pgx.ForEachRow(rows, r.dest(), func() error {
		out = append(out, r.run())
		return nil
	}); err != nil {
		return nil, s.fail(op, err)
	}
	slices.Reverse(out)
	return out, nil
}

// Tasks implements store.Store.
func (s *Store) Tasks() ([]string, error) {
	const op = "list tasks"
	if s.closed.Load() {
		return nil, s.closedErr(op)
	}
	ctx, cancel := s.op()
	defer cancel()
	rows, err := s.pool.Query(ctx, s.q.listTasks)
	if err != nil {
		return nil, s.fail(op, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.fail(op, err)
	}
	if names == nil {
		names = []string{}
	}
	return names, nil
}

// Forget implements store.Store, in one transaction (one round trip).
func (s *Store) Forget(name string) error {
	if name == "" {
		return fmt.Errorf("forget task: empty task name")
	}
	op := fmt.Sprintf("forget task %q", name)
	if s.closed.Load() {
		return s.closedErr(op)
	}
	if !validText(name) {
		return nil // never stored
	}
	ctx, cancel := s.op()
	defer cancel()
	q := &pgx.Batch{}
	q.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	q.Queue(s.q.forgetTask, name)
	q.Queue(s.q.forgetInProgress, name)
	q.Queue(s.q.forgetRuns, name)
	q.Queue("COMMIT")
	if err := s.pool.SendBatch(ctx, q).Close(); err != nil {
		return s.fail(op, err)
	}
	return nil
}
