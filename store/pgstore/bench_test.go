package pgstore_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/store/pgstore"
	"github.com/mojodex/mojodex-scheduler/task"
)

// Claims through a Committer, from many claimers at once, as task actors
// claim their slots: each claimer submits a one-claim batch for its task
// and waits for it before claiming its next slot. The Committer merges
// what is submitted while a commit is in flight, so round trips (and
// statements) per claim fall as claimers are added.
//
//	go test -run '^$' -bench ClaimsThroughCommitter -benchtime 20000x ./store/pgstore/
func BenchmarkClaimsThroughCommitter(b *testing.B) {
	for _, claimers := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("claimers=%d", claimers), func(b *testing.B) {
			var w wire
			s := open(b, pgtest.New(b), w.option())
			var commits atomic.Int64
			c := store.NewCommitter(s, store.OnCommit(func(st store.CommitStats) {
				if st.Err != nil {
					b.Error(st.Err)
				}
				commits.Add(1)
			}))
			defer c.Close()
			// Warm up: every connection of the pool prepares its statements.
			for i := range 8 {
				if err := c.Commit(&store.Batch{Claims: []store.Claim{{Task: "warm", Slot: slot(i + 1)}}}); err != nil {
					b.Fatal(err)
				}
			}
			w.reset()
			commits.Store(0)
			var (
				left = atomic.Int64{}
				wg   sync.WaitGroup
			)
			left.Store(int64(b.N))
			b.ResetTimer()
			start := time.Now()
			for k := range claimers {
				name := fmt.Sprintf("task-%05d", k)
				wg.Go(func() {
					done := make(chan error, 1)
					for i := 1; left.Add(-1) >= 0; i++ {
						bt := &store.Batch{Claims: []store.Claim{{Task: name, Slot: slot(i), Owner: "r1", Lease: time.Minute}}}
						c.Submit(bt, func(err error) { done <- err })
						if err := <-done; err != nil {
							b.Error(err)
							return
						}
						if !bt.Claims[0].Won {
							b.Errorf("claim of %s slot %d refused: %s", name, i, bt.Claims[0].Refused)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(n/elapsed.Seconds(), "claims/s")
			b.ReportMetric(float64(w.roundTrips.Load())/n, "roundtrips/claim")
			b.ReportMetric(float64(w.statements.Load())/n, "statements/claim")
			b.ReportMetric(n/float64(max(commits.Load(), 1)), "claims/commit")
		})
	}
}

// One Commit of 10,000 claims (10,000 tasks), with owners and leases.
//
//	go test -run '^$' -bench Commit10k -benchtime 20x ./store/pgstore/
func BenchmarkCommit10kClaims(b *testing.B) {
	const n = 10000
	var w wire
	s := open(b, pgtest.New(b), w.option(), pgstore.WithPoolSize(1))
	tasks := names("t", n)
	claims := func(i int) *store.Batch {
		bt := &store.Batch{Claims: make([]store.Claim, n)}
		for k, name := range tasks {
			bt.Claims[k] = store.Claim{Task: name, Slot: slot(i), Owner: "r1", Lease: time.Minute}
		}
		return bt
	}
	if err := s.Commit(claims(1)); err != nil { // creates the tasks' rows, prepares
		b.Fatal(err)
	}
	w.reset()
	b.ResetTimer()
	for i := range b.N {
		bt := claims(i + 2)
		if err := s.Commit(bt); err != nil {
			b.Fatal(err)
		}
		if !bt.Claims[n-1].Won {
			b.Fatal("claim refused")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(w.roundTrips.Load())/float64(b.N), "roundtrips/commit")
	b.ReportMetric(float64(w.statements.Load())/float64(b.N), "statements/commit")
	b.ReportMetric(float64(w.bytes.Load())/float64(b.N), "bytes-sent/commit")
}

// One Commit of 10,000 run records (10,000 tasks), each fenced by its
// owner and epoch, ending its slot in progress and pruning the history.
func BenchmarkCommit10kRuns(b *testing.B) {
	const n = 10000
	var w wire
	s := open(b, pgtest.New(b), w.option(), pgstore.WithPoolSize(1))
	tasks := names("t", n)
	var rt, st int64
	for i := range b.N {
		b.StopTimer()
		claim := &store.Batch{Claims: make([]store.Claim, n)}
		runs := &store.Batch{Runs: make([]task.Run, n)}
		for k, name := range tasks {
			claim.Claims[k] = store.Claim{Task: name, Slot: slot(i + 1), Owner: "r1", Lease: time.Minute}
			runs.Runs[k] = task.Run{Task: name, Slot: slot(i + 1), Start: slot(i + 1), Duration: time.Second,
				Outcome: task.OutcomeOK, Pages: 3, Items: 120, Status: 200, Replica: "r1", Epoch: 1}
		}
		if err := s.Commit(claim); err != nil {
			b.Fatal(err)
		}
		rt0, st0 := w.roundTrips.Load(), w.statements.Load()
		b.StartTimer()
		if err := s.Commit(runs); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if runs.RunsFenced != nil {
			b.Fatal("runs fenced")
		}
		if i > 0 { // the first commit of runs prepares its statement
			rt += w.roundTrips.Load() - rt0
			st += w.statements.Load() - st0
		}
	}
	if b.N > 1 {
		b.ReportMetric(float64(rt)/float64(b.N-1), "roundtrips/commit")
		b.ReportMetric(float64(st)/float64(b.N-1), "statements/commit")
	}
}
