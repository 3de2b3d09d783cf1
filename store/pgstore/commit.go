package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mojodex/mojodex-scheduler/store"
)

// commitAttempts is how many times a commit is tried when the server
// reports a deadlock or a serialization failure, or the connection failed
// before anything was sent: nothing was applied then.
const commitAttempts = 3

// Commit implements store.Store: the whole batch in one transaction, sent
// as one pipelined round trip.
func (s *Store) Commit(b *store.Batch) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if s.closed.Load() {
		return s.closedErr("commit")
	}
	ctx, cancel := s.op()
	defer cancel()
	if b.Len() == 0 {
		now, err := s.clock(ctx)
		if err != nil {
			return s.fail("commit", err)
		}
		b.Now = now
		return nil
	}
	args := commitArgs(b)
	for attempt := 1; ; attempt++ {
		res, err := s.send(ctx, b, args)
		if err == nil {
			res.fill(b)
			return nil
		}
		if attempt == commitAttempts || !retryable(err) || ctx.Err() != nil {
			return s.fail(fmt.Sprintf("commit %d writes", b.Len()), err)
		}
		s.log.Warn().Err(&opError{op: "commit", err: err, secrets: s.secrets}).Int("attempt", attempt).
			Msg("commit failed with nothing applied; trying again")
	}
}

// clock reads the database's clock.
func (s *Store) clock(ctx context.Context) (time.Time, error) {
	var now time.Time
	err := s.pool.QueryRow(ctx, s.q.clock).Scan(&now)
	return now.UTC(), err
}

// args are a batch turned into the statements' arrays, built once for
// every attempt.
type args struct {
	ensure, lock []string // sorted, distinct

	ipTask []string // runs in progress to lock: checkpoints' and runs' slots
	ipSlot []int64

	anchorTask []string
	anchorAt   []int64

	claimTask    []string
	claimSlot    []int64
	claimDue     []int64
	claimOwner   []string
	claimLeaseUS []int64
	claimVersion []int64

	cpTask, cpOwner            []string
	cpSlot, cpPages, cpOffset  []int64
	cpItems, cpEpoch           []int64
	runTask, runOutcome        []string
	runReason, runErr, runRepl []string
	runSlot, runStart, runLate []int64
	runDur, runPages, runItems []int64
	runEpoch                   []int64
	runStatus                  []int32
	runManual, runResumed      []bool
	pauseTask                  []string
	pausePaused                []bool
}

func commitArgs(b *store.Batch) *args {
	a := &args{}
	ensure := map[string]bool{}
	lock := map[string]bool{}
	for _, x := range b.Anchors {
		ensure[x.Task] = true
		a.anchorTask = append(a.anchorTask, x.Task)
		a.anchorAt = append(a.anchorAt, store.UnixNanos(x.Anchor))
	}
	for _, c := range b.Claims {
		ensure[c.Task] = true
		var lease int64
		if c.Lease > 0 {
			lease = c.Lease.Microseconds()
		}
		a.claimTask = append(a.claimTask, c.Task)
		a.claimSlot = append(a.claimSlot, store.UnixNanos(c.Slot))
		a.claimDue = append(a.claimDue, store.UnixNanos(c.DueTime()))
		a.claimOwner = append(a.claimOwner, text(c.Owner))
		a.claimLeaseUS = append(a.claimLeaseUS, lease)
		a.claimVersion = append(a.claimVersion, c.Version)
	}
	type key struct {
		task string
		slot int64
	}
	ip := map[key]bool{}
	for _, c := range b.Checkpoints {
		lock[c.Task] = true
		ip[key{c.Task, store.UnixNanos(c.Slot)}] = true
		a.cpTask = append(a.cpTask, c.Task)
		a.cpSlot = append(a.cpSlot, store.UnixNanos(c.Slot))
		a.cpPages = append(a.cpPages, int64(c.Progress.Pages))
		a.cpOffset = append(a.cpOffset, int64(c.Progress.Offset))
		a.cpItems = append(a.cpItems, int64(c.Progress.Items))
		a.cpOwner = append(a.cpOwner, text(c.Owner))
		a.cpEpoch = append(a.cpEpoch, c.Epoch)
	}
	for _, r := range b.Runs {
		ensure[r.Task] = true
		if !r.Manual {
			ip[key{r.Task, store.UnixNanos(r.Slot)}] = true
		}
		a.runTask = append(a.runTask, r.Task)
		a.runSlot = append(a.runSlot, store.UnixNanos(r.Slot))
		a.runStart = append(a.runStart, store.UnixNanos(r.Start))
		a.runLate = append(a.runLate, int64(r.Lateness))
		a.runDur = append(a.runDur, int64(r.Duration))
		a.runOutcome = append(a.runOutcome, text(string(r.Outcome)))
		a.runReason = append(a.runReason, text(string(r.Reason)))
		a.runPages = append(a.runPages, int64(r.Pages))
		a.runItems = append(a.runItems, int64(r.Items))
		a.runStatus = append(a.runStatus, int32(r.Status))
		a.runErr = append(a.runErr, text(r.Err))
		a.runRepl = append(a.runRepl, text(r.Replica))
		a.runEpoch = append(a.runEpoch, r.Epoch)
		a.runManual = append(a.runManual, r.Manual)
		a.runResumed = append(a.runResumed, r.Resumed)
	}
	for _, p := range b.Pauses {
		ensure[p.Task] = true
		a.pauseTask = append(a.pauseTask, p.Task)
		a.pausePaused = append(a.pausePaused, p.Paused)
	}
	maps.Copy(lock, ensure)
	// Sorted as the database sorts text COLLATE "C": bytewise, as Go does.
	a.ensure = slices.Sorted(maps.Keys(ensure))
	a.lock = slices.Sorted(maps.Keys(lock))
	keys := slices.SortedFunc(maps.Keys(ip), func(x, y key) int {
		return cmp.Or(strings.Compare(x.task, y.task), cmp.Compare(x.slot, y.slot))
	})
	for _, k := range keys {
		a.ipTask = append(a.ipTask, k.task)
		a.ipSlot = append(a.ipSlot, k.slot)
	}
	return a
}

// results are what a commit reports, kept apart until it succeeded.
type results struct {
	now         time.Time
	anchors     []int64
	claims      string // one code per claim
	checkpoints []int64
	runs        []int64 // positions (from 1) of fenced runs
}

// fill copies r into b's result fields.
func (r *results) fill(b *store.Batch) {
	for i := range b.Anchors {
		b.Anchors[i].Stored = store.FromUnixNanos(r.anchors[i])
	}
	for i := range b.Claims {
		c := &b.Claims[i]
		c.Won, c.Refused = false, ""
		switch r.claims[i] {
		case 'w':
			c.Won = true
		case 'e':
			c.Refused = store.RefusedEarly
		case 's':
			c.Refused = store.RefusedStale
		default:
			c.Refused = store.RefusedClaimed
		}
	}
	for i := range b.Checkpoints {
		b.Checkpoints[i].Fenced = false
	}
	for _, pos := range r.checkpoints {
		b.Checkpoints[pos-1].Fenced = true
	}
	b.RunsFenced = nil
	if len(r.runs) > 0 {
		b.RunsFenced = make([]bool, len(b.Runs))
		for _, pos := range r.runs {
			b.RunsFenced[pos-1] = true
		}
	}
	b.Now = r.now
}

// send runs the batch's transaction as one pipelined pgx.Batch.
func (s *Store) send(ctx context.Context, b *store.Batch, a *args) (*results, error) {
	q := &pgx.Batch{}
	q.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	if len(a.ensure) > 0 {
		q.Queue(s.q.ensureTasks, a.ensure)
	}
	q.Queue(s.q.lockTasks, a.lock)
	if len(a.ipTask) > 0 {
		q.Queue(s.q.lockInProgress, a.ipTask, a.ipSlot)
	}
	if len(a.anchorTask) > 0 {
		q.Queue(s.q.anchors, a.anchorTask, a.anchorAt)
	}
	if len(a.claimTask) > 0 {
		q.Queue(s.q.claims, a.claimTask, a.claimSlot, a.claimDue, a.claimOwner, a.claimLeaseUS, a.claimVersion)
	}
	if len(a.cpTask) > 0 {
		q.Queue(s.q.checkpoints, a.cpTask, a.cpSlot, a.cpPages, a.cpOffset, a.cpItems, a.cpOwner, a.cpEpoch)
	}
	if len(a.runTask) > 0 {
		q.Queue(s.q.runs, a.runTask, a.runSlot, a.runStart, a.runLate, a.runDur, a.runOutcome, a.runReason,
			a.runPages, a.runItems, a.runStatus, a.runErr, a.runRepl, a.runEpoch, a.runManual, a.runResumed)
	}
	if len(a.pauseTask) > 0 {
		q.Queue(s.q.pauses, a.pauseTask, a.pausePaused)
	}
	q.Queue("COMMIT")

	br := s.pool.SendBatch(ctx, q)
	res, err := readCommit(br, b, a)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close the batch: %w", cerr)
	}
	return res, err
}

// readCommit reads the results of send's statements, in order.
func readCommit(br pgx.BatchResults, b *store.Batch, a *args) (*results, error) {
	res := &results{}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	if len(a.ensure) > 0 {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("store the rows of %d tasks: %w", len(a.ensure), err)
		}
	}
	var locked int64
	if err := br.QueryRow().Scan(&res.now, &locked); err != nil {
		return nil, fmt.Errorf("lock the rows of %d tasks: %w", len(a.lock), err)
	}
	if len(a.ipTask) > 0 {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("lock %d runs in progress: %w", len(a.ipTask), err)
		}
	}
	if len(a.anchorTask) > 0 {
		if err := br.QueryRow().Scan(&res.anchors); err != nil {
			return nil, fmt.Errorf("anchors: %w", err)
		}
		if len(res.anchors) != len(b.Anchors) {
			return nil, fmt.Errorf("anchors: %d results for %d anchors", len(res.anchors), len(b.Anchors))
		}
	}
	if len(a.claimTask) > 0 {
		if err := br.QueryRow().Scan(&res.claims, &res.now); err != nil {
			return nil, fmt.Errorf("claims: %w", err)
		}
		if len(res.claims) != len(b.Claims) {
			return nil, fmt.Errorf("claims: %d results for %d claims", len(res.claims), len(b.Claims))
		}
	}
	if len(a.cpTask) > 0 {
		if err := br.QueryRow().Scan(&res.checkpoints); err != nil {
			return nil, fmt.Errorf("checkpoints: %w", err)
		}
		if err := positions(res.checkpoints, len(b.Checkpoints)); err != nil {
			return nil, fmt.Errorf("checkpoints: %w", err)
		}
	}
	if len(a.runTask) > 0 {
		if err := br.QueryRow().Scan(&res.runs); err != nil {
			return nil, fmt.Errorf("runs: %w", err)
		}
		if err := positions(res.runs, len(b.Runs)); err != nil {
			return nil, fmt.Errorf("runs: %w", err)
		}
	}
	if len(a.pauseTask) > 0 {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("pauses: %w", err)
		}
	}
	tag, err := br.Exec()
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		return nil, errors.New("the transaction was rolled back")
	}
	res.now = res.now.UTC()
	return res, nil
}

// positions checks positions from 1 to n.
func positions(pos []int64, n int) error {
	for _, p := range pos {
		if p < 1 || p > int64(n) {
			return fmt.Errorf("position %d out of 1..%d", p, n)
		}
	}
	return nil
}
