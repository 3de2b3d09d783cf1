package pgstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// Heartbeat implements store.Shared: an upsert of the replica's row
// (keeping its start time when r.Started is zero), returning the
// database's clock.
func (s *Store) Heartbeat(r store.Replica) (time.Time, error) {
	op := fmt.Sprintf("heartbeat of replica %q", r.Name)
	if s.closed.Load() {
		return time.Time{}, s.closedErr(op)
	}
	ctx, cancel := s.op()
	defer cancel()
	var seen time.Time
	if err := s.pool.QueryRow(ctx, s.q.heartbeat, text(r.Name), store.UnixNanos(r.Started), r.Version).Scan(&seen); err != nil {
		return time.Time{}, s.fail(op, err)
	}
	return seen.UTC(), nil
}

// Replicas implements store.Shared.
func (s *Store) Replicas(maxAge time.Duration) ([]store.Replica, error) {
	const op = "list replicas"
	if s.closed.Load() {
		return nil, s.closedErr(op)
	}
	ctx, cancel := s.op()
	defer cancel()
	rows, err := s.pool.Query(ctx, s.q.replicas, maxAge.Microseconds())
	if err != nil {
		return nil, s.fail(op, err)
	}
	var (
		r       store.Replica
		started int64
		out     []store.Replica
	)
	if _, err := pgx.ForEachRow(rows, []any{&r.Name, &started, &r.Seen, &r.Version}, func() error {
		r.Started, r.Seen = store.FromUnixNanos(started), r.Seen.UTC()
		out = append(out, r)
		return nil
	}); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// Renew implements store.Shared, in one statement over arrays.
func (s *Store) Renew(owner string, lease time.Duration, held []store.Held) ([]bool, error) {
	op := fmt.Sprintf("renew the leases of replica %q", owner)
	if s.closed.Load() {
		return nil, s.closedErr(op)
	}
	out := make([]bool, len(held))
	if len(held) == 0 {
		return out, nil
	}
	tasks := make([]string, len(held))
	slots := make([]int64, len(held))
	epochs := make([]int64, len(held))
	for i, h := range held {
		tasks[i], slots[i], epochs[i] = text(h.Task), store.UnixNanos(h.Slot), h.Epoch
	}
	ctx, cancel := s.op()
	defer cancel()
	var renewed []int64
	if err := s.pool.QueryRow(ctx, s.q.renew, text(owner), tasks, slots, epochs, lease.Microseconds()).Scan(&renewed); err != nil {
		return nil, s.fail(fmt.Sprintf("%s (%d runs)", op, len(held)), err)
	}
	if err := positions(renewed, len(held)); err != nil {
		return nil, s.fail(op, err)
	}
	for _, p := range renewed {
		out[p-1] = true
	}
	return out, nil
}

// TakeOver implements store.Shared: the lapsed runs of tasks, oldest lease
// first, skipping those another replica is taking at the same moment (FOR
// UPDATE SKIP LOCKED), with the next epoch, a lease from the database's
// clock and their checkpoints; sorted by task and slot.
func (s *Store) TakeOver(owner string, lease time.Duration, tasks []string, limit int) ([]store.Held, error) {
	op := fmt.Sprintf("take over runs for replica %q", owner)
	if s.closed.Load() {
		return nil, s.closedErr(op)
	}
	names := storable(tasks)
	if limit <= 0 || len(names) == 0 {
		return nil, nil
	}
	ctx, cancel := s.op()
	defer cancel()
	rows, err := s.pool.Query(ctx, s.q.takeOver, names, limit, text(owner), lease.Microseconds())
	if err != nil {
		return nil, s.fail(op, err)
	}
	var (
		h                    store.Held
		slot                 int64
		pages, offset, items int64
		out                  []store.Held
	)
	if _, err := pgx.ForEachRow(rows, []any{&h.Task, &slot, &h.Epoch, &pages, &offset, &items}, func() error {
		h.Slot = store.FromUnixNanos(slot)
		h.Progress = task.Progress{Pages: int(pages), Offset: int(offset), Items: int(items)}
		out = append(out, h)
		return nil
	}); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// PublishTaskSet implements store.Shared: a content never published is a
// new version, made current; a known one keeps its version and is made
// current again only with force. A change of the current version is
// notified to the listening replicas; the publications of several
// replicas are serialized by a table lock that readers do not wait for.
func (s *Store) PublishTaskSet(content []byte, hash string, force bool) (int64, int64, error) {
	const op = "publish the task set"
	if s.closed.Load() {
		return 0, 0, s.closedErr(op)
	}
	if content == nil {
		content = []byte{}
	}
	ctx, cancel := s.op()
	defer cancel()
	q := &pgx.Batch{}
	q.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	q.Queue(s.q.lockTaskSets)
	q.Queue(s.q.publish, text(hash), content, force)
	q.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, q)
	var version, current, notified int64
	err := func() error {
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if err := br.QueryRow().Scan(&version, &current, &notified); err != nil {
			return err
		}
		_, err := br.Exec()
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, s.fail(op, err)
	}
	return version, current, nil
}

// TaskSet implements store.Shared.
func (s *Store) TaskSet() (int64, []byte, error) {
	const op = "read the task set"
	if s.closed.Load() {
		return 0, nil, s.closedErr(op)
	}
	ctx, cancel := s.op()
	defer cancel()
	var (
		version int64
		content []byte
	)
	err := s.pool.QueryRow(ctx, s.q.taskSet).Scan(&version, &content)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil, nil
	case err != nil:
		return 0, nil, s.fail(op, err)
	}
	if content == nil {
		content = []byte{}
	}
	return version, content, nil
}
