package pgstore_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
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

// Replicas, each with a pool of its own, claim the same 1,000 (task, slot)
// pairs at once, as every replica of a scheduler runs every task: each
// pair has exactly one winner, and the run in progress is the winner's.
// Each replica claims the slots in order, in batches of mixed sizes with
// the tasks shuffled (so that row locks are requested in every order),
// some through a Committer that merges concurrent batches.
func TestReplicasClaimEachSlotOnce(t *testing.T) {
	const (
		replicas = 6
		tasks    = 50
		slots    = 20 // 1,000 pairs
	)
	dsn := pgtest.New(t)
	taskNames := names("t", tasks)
	stores := make([]*pgstore.Store, replicas)
	for r := range stores {
		stores[r] = open(t, dsn, pgstore.WithPoolSize(2))
	}
	type pair struct {
		task string
		slot int
	}
	var (
		mu      sync.Mutex
		winners = map[pair][]string{}
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for r, s := range stores {
		owner := fmt.Sprintf("r%d", r)
		var com *store.Committer
		if r%2 == 1 {
			com = store.NewCommitter(s)
			defer com.Close()
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			<-start
			for i := 1; i <= slots; {
				// One to three slots per batch, every task of each.
				n := min(1+rng.IntN(3), slots-i+1)
				b := &store.Batch{}
				for k := range n {
					order := slices.Clone(taskNames)
					rng.Shuffle(len(order), func(x, y int) { order[x], order[y] = order[y], order[x] })
					for _, name := range order {
						b.Claims = append(b.Claims, store.Claim{Task: name, Slot: slot(i + k), Owner: owner, Lease: time.Minute})
					}
				}
				var err error
				if com != nil {
					// Split into per-task batches submitted at once: the
					// committer merges them.
					err = commitSplit(com, b)
				} else {
					err = s.Commit(b)
				}
				if err != nil {
					t.Errorf("replica %s: %v", owner, err)
					return
				}
				mu.Lock()
				for _, c := range b.Claims {
					if c.Won {
						p := pair{c.Task, int(c.Slot.Sub(base) / time.Minute)}
						winners[p] = append(winners[p], owner)
					} else if c.Refused != store.RefusedClaimed {
						t.Errorf("claim refused %q: %+v", c.Refused, c)
					}
				}
				mu.Unlock()
				i += n
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(winners) != tasks*slots {
		t.Errorf("%d pairs won, want %d", len(winners), tasks*slots)
	}
	for p, w := range winners {
		if len(w) != 1 {
			t.Errorf("%s slot %d won by %v", p.task, p.slot, w)
		}
	}
	st, err := stores[0].Load(taskNames)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range taskNames {
		ips := st[name].InProgress
		if len(ips) != slots {
			t.Errorf("%s: %d runs in progress, want %d", name, len(ips), slots)
			continue
		}
		for i, ip := range ips {
			if w := winners[pair{name, i + 1}]; len(w) != 1 || ip.Owner != w[0] || ip.Epoch != 1 {
				t.Errorf("%s slot %d: in progress held by %s at %d, won by %v", name, i+1, ip.Owner, ip.Epoch, w)
			}
		}
	}
}

// commitSplit submits b as one batch per task to c, at once, and waits for
// all; the claims' results are copied back into b.
func commitSplit(c *store.Committer, b *store.Batch) error {
	parts := map[string]*store.Batch{}
	var order []string
	for _, cl := range b.Claims {
		p := parts[cl.Task]
		if p == nil {
			p = &store.Batch{}
			parts[cl.Task] = p
			order = append(order, cl.Task)
		}
		p.Claims = append(p.Claims, cl)
	}
	errs := make(chan error, len(parts))
	for _, name := range order {
		c.Submit(parts[name], func(err error) { errs <- err })
	}
	for range order {
		if err := <-errs; err != nil {
			return err
		}
	}
	next := map[string]int{}
	for i := range b.Claims {
		name := b.Claims[i].Task
		b.Claims[i] = parts[name].Claims[next[name]]
		next[name]++
	}
	return nil
}

// Commits that claim, checkpoint and record runs of overlapping tasks in
// every order, while replicas renew their leases and take lapsed runs
// over: no deadlock or serialization failure reaches a caller, and every
// write of a run that was not taken over is applied.
func TestConcurrentWritersNeverDeadlock(t *testing.T) {
	const (
		writers = 6
		rounds  = 30
		tasks   = 12
	)
	dsn := pgtest.New(t)
	taskNames := names("d", tasks)
	var (
		wg   sync.WaitGroup
		logs syncbuf.Buffer // a retried commit would be logged
	)
	for w := range writers {
		s := open(t, dsn, pgstore.WithPoolSize(2), pgstore.WithLogger(zerolog.New(&logs).Level(zerolog.WarnLevel)))
		owner := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			var held []store.Held
			for i := range rounds {
				order := slices.Clone(taskNames)
				rng.Shuffle(len(order), func(x, y int) { order[x], order[y] = order[y], order[x] })
				b := &store.Batch{}
				for _, name := range order[:1+rng.IntN(tasks)] {
					b.Claims = append(b.Claims, store.Claim{Task: name, Slot: slot(w*1000 + i), Owner: owner, Lease: 200 * time.Millisecond})
				}
				// Checkpoint and record the runs held so far, in a random order.
				rng.Shuffle(len(held), func(x, y int) { held[x], held[y] = held[y], held[x] })
				for j, h := range held {
					if j%2 == 0 {
						b.Checkpoints = append(b.Checkpoints, store.Checkpoint{Task: h.Task, Slot: h.Slot, Progress: task.Progress{Pages: i}, Owner: owner, Epoch: h.Epoch})
					} else {
						b.Runs = append(b.Runs, task.Run{Task: h.Task, Slot: h.Slot, Outcome: task.OutcomeOK, Replica: owner, Epoch: h.Epoch})
					}
				}
				if err := s.Commit(b); err != nil {
					t.Errorf("%s: commit: %v", owner, err)
					return
				}
				var next []store.Held
				for j, h := range held {
					if j%2 == 0 && !b.Checkpoints[j/2].Fenced {
						next = append(next, h)
					}
				}
				for _, c := range b.Claims {
					if c.Won {
						next = append(next, store.Held{Task: c.Task, Slot: c.Slot, Epoch: 1})
					}
				}
				held = next
				ok, err := s.Renew(owner, 200*time.Millisecond, held)
				if err != nil {
					t.Errorf("%s: renew: %v", owner, err)
					return
				}
				kept := held[:0]
				for j, h := range held {
					if ok[j] {
						kept = append(kept, h)
					}
				}
				held = kept
				taken, err := s.TakeOver(owner, 200*time.Millisecond, taskNames, 3)
				if err != nil {
					t.Errorf("%s: take over: %v", owner, err)
					return
				}
				held = append(held, taken...)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("writers still running after 2 min")
	}
	if out := logs.String(); out != "" {
		t.Errorf("the store logged (a commit was retried?):\n%s", out)
	}
}

// A heartbeat deletes the rows of replicas not seen for ReplicaRetention,
// and keeps the others (and its own).
func TestHeartbeatPrunesReplicasLongGone(t *testing.T) {
	dsn := pgtest.New(t)
	s := open(t, dsn)
	for _, name := range []string{"gone", "recent", "me"} {
		if _, err := s.Heartbeat(store.Replica{Name: name, Version: 1}); err != nil {
			t.Fatal(err)
		}
	}
	age := func(name string, d time.Duration) {
		sql(t, dsn, `UPDATE mojodex_scheduler.scheduler_replicas SET seen = now() - $2 * interval '1 second' WHERE name = $1`,
			name, d.Seconds()).Close()
	}
	age("gone", pgstore.ReplicaRetention+time.Hour)
	age("recent", pgstore.ReplicaRetention-time.Hour)
	age("me", pgstore.ReplicaRetention+time.Hour) // its own row is refreshed, never deleted
	if _, err := s.Heartbeat(store.Replica{Name: "me", Version: 1}); err != nil {
		t.Fatal(err)
	}
	names := column[string](t, dsn, `SELECT name FROM mojodex_scheduler.scheduler_replicas ORDER BY name`)
	if fmt.Sprint(names) != "[me recent]" {
		t.Errorf("replica rows after a heartbeat: %v, want [me recent]", names)
	}
}
