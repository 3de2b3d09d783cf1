package store

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mojodex/mojodex-scheduler/task"
)

// The benchmarks measure what the scheduler pays per fire:
//
//   - BenchmarkClaimsThroughCommitter: durable claims per second when many
//     task actors claim at once through one Committer (each claim on disk,
//     fsynced, before its caller hears it was won).
//   - BenchmarkCommit10kClaims, BenchmarkCommit10kRuns: one batch of 10,000
//     claims, then one of 10,000 run records: what one fire instant of
//     10,000 tasks costs, in a file holding a full history for each.
//   - BenchmarkBoltOptions: the same with other bbolt options, to show the
//     effect of the ones OpenBolt chooses.
//
// Run them with: go test -run '^$' -bench . -benchmem ./store

// benchStores are the stores the benchmarks compare.
var benchStores = []struct {
	name string
	open func(b *testing.B) Store
}{
	{"bolt", func(b *testing.B) Store { return openTestBolt(b) }},
	{"memory", func(*testing.B) Store { return NewMemory() }},
}

func BenchmarkClaimsThroughCommitter(b *testing.B) {
	for _, st := range benchStores {
		for _, claimers := range []int{64, 256, 1024} {
			b.Run(fmt.Sprintf("%s/claimers=%d", st.name, claimers), func(b *testing.B) {
				benchClaims(b, st.open(b), claimers)
			})
		}
	}
}

// benchClaims has claimers goroutines (each its own task, as when that many
// tasks fire at once) claim their next slot, b.N claims in all. After each
// won claim the goroutine submits the run's record without waiting for it,
// as a task does when its run ends, so slots do not pile up in progress.
func benchClaims(b *testing.B, s Store, claimers int) {
	var commits atomic.Int64
	c := NewCommitter(s, OnCommit(func(cs CommitStats) {
		if cs.Writes > 0 {
			commits.Add(1)
		}
	}))
	defer c.Close()
	var next atomic.Int64
	before := pages(s)
	// RunParallel starts parallelism*GOMAXPROCS goroutines.
	b.SetParallelism(max(1, claimers/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		name := fmt.Sprintf("task-%d", next.Add(1))
		i := 0
		for pb.Next() {
			i++
			at := base.Add(time.Duration(i) * time.Second)
			batch := &Batch{Claims: []Claim{{Task: name, Slot: at}}}
			if err := c.Commit(batch); err != nil || !batch.Claims[0].Won {
				b.Errorf("claim %d of %s: won %t, %v", i, name, batch.Claims[0].Won, err)
				return
			}
			r := task.Run{Task: name, Slot: at, Start: at, Outcome: task.OutcomeOK, Pages: 1, Status: 200}
			c.Submit(&Batch{Runs: []task.Run{r}}, func(err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if err := c.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((cpuTime()-cpuStart).Microseconds())/float64(b.N), "cpu-us/claim")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "claims/s")
	// Memory commits each batch on its caller's goroutine, unmerged.
	if n := commits.Load(); n > 0 {
		if _, ok := s.(*Bolt); ok {
			b.ReportMetric(float64(b.N)/float64(n), "claims/commit")
			b.ReportMetric(float64(pages(s)-before)/float64(n), "pages/commit")
		}
	}
}

const fireTasks = 10_000

// fireState fills s with fireTasks tasks, each with a full run history,
// and returns their names.
func fireState(b *testing.B, s Store) []string {
	names := make([]string, fireTasks)
	for i := range names {
		names[i] = fmt.Sprintf("mojodex-task-%05d", i)
	}
	for r := range HistorySize {
		mustCommit(b, s, claimsAt(names, slot(r)))
		mustCommit(b, s, runsAt(names, r))
	}
	return names
}

func claimsAt(names []string, at time.Time) *Batch {
	batch := &Batch{Claims: make([]Claim, len(names))}
	for i, name := range names {
		batch.Claims[i] = Claim{Task: name, Slot: at}
	}
	return batch
}

func runsAt(names []string, i int) *Batch {
	batch := &Batch{Runs: make([]task.Run, len(names))}
	for j, name := range names {
		batch.Runs[j] = run(name, i)
	}
	return batch
}

// pages returns the pages bbolt wrote so far (0 for other stores).
func pages(s Store) int64 {
	if bs, ok := s.(*Bolt); ok {
		st := bs.db.Stats()
		return st.TxStats.GetWrite()
	}
	return 0
}

// benchFire commits, per iteration, the claims of fireTasks tasks for the
// next slot and then their runs; only the claims (runs false) or only the
// runs (runs true) are timed.
func benchFire(b *testing.B, s Store, runs bool) {
	names := fireState(b, s)
	i := HistorySize
	var written int64
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		claims := claimsAt(names, slot(i))
		recorded := runsAt(names, i)
		timed, untimed := claims, recorded
		if runs {
			b.StopTimer()
			mustCommit(b, s, claims)
			b.StartTimer()
			timed, untimed = recorded, nil
		}
		before, cpuBefore := pages(s), cpuTime()
		mustCommit(b, s, timed)
		written += pages(s) - before
		cpu += cpuTime() - cpuBefore
		if untimed != nil {
			b.StopTimer()
			mustCommit(b, s, untimed)
			b.StartTimer()
		}
		for _, c := range claims.Claims {
			if !c.Won {
				b.Fatalf("claim of %s refused", c.Task)
			}
		}
		i++
	}
	if _, ok := s.(*Bolt); ok {
		b.ReportMetric(float64(written)/float64(b.N), "pages/op")
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// cpuTime returns the CPU time (user and system) the process has used:
// unlike the wall time, it does not count waiting for fdatasync, or for
// the other processes of a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOpenBolt measures OpenBolt of a file holding 10,000 tasks with
// a full history each: the read-only verification (every value decoded,
// bbolt's consistency check), then the opening for writing (which, without
// a synced free-page list, walks the file to rebuild it).
func BenchmarkOpenBolt(b *testing.B) {
	for _, tu := range benchTunings {
		b.Run(tu.name, func(b *testing.B) {
			s := openTestBoltWith(b, tu.tune)
			fireState(b, s)
			path := s.Path()
			check(b, s.Close())
			for b.Loop() {
				s, err := openBolt(path, tu.tune)
				check(b, err)
				check(b, s.Close())
			}
		})
	}
}

func BenchmarkCommit10kClaims(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) { benchFire(b, st.open(b), false) })
	}
}

func BenchmarkCommit10kRuns(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) { benchFire(b, st.open(b), true) })
	}
}

// benchTunings are the bbolt options BenchmarkBoltOptions compares.
var benchTunings = []struct {
	name string
	tune boltTuning
}{
	{"chosen(nofreelistsync,map)", defaultTuning},
	{"bbolt-defaults(freelistsync,array)", boltTuning{noFreelistSync: false, freelist: bolt.FreelistArrayType}},
	{"freelistsync,map", boltTuning{noFreelistSync: false, freelist: bolt.FreelistMapType}},
	{"nofreelistsync,array", boltTuning{noFreelistSync: true, freelist: bolt.FreelistArrayType}},
}

// BenchmarkBoltOptions compares bbolt's defaults with the options OpenBolt
// chooses (and each alone).
func BenchmarkBoltOptions(b *testing.B) {
	for _, tu := range benchTunings {
		b.Run("claims/"+tu.name, func(b *testing.B) { benchFire(b, openTestBoltWith(b, tu.tune), false) })
		b.Run("runs/"+tu.name, func(b *testing.B) { benchFire(b, openTestBoltWith(b, tu.tune), true) })
		b.Run("committer-256/"+tu.name, func(b *testing.B) { benchClaims(b, openTestBoltWith(b, tu.tune), 256) })
		b.Run("one-claim/"+tu.name, func(b *testing.B) { benchOneClaim(b, openTestBoltWith(b, tu.tune)) })
	}
}

// benchOneClaim commits one claim at a time into a file of fireTasks tasks
// that has seen two more fire instants (so that runs were deleted and its
// free-page list is not empty): the smallest commit, where writing the
// free-page list weighs most.
func benchOneClaim(b *testing.B, s *Bolt) {
	names := fireState(b, s)
	for i := HistorySize; i < HistorySize+2; i++ {
		mustCommit(b, s, claimsAt(names, slot(i)))
		mustCommit(b, s, runsAt(names, i))
	}
	freePages := s.db.Stats().FreePageN
	runtime.GC() // the setup's garbage is not the claims' CPU time
	before, cpuBefore := pages(s), cpuTime()
	i := 0
	for b.Loop() {
		mustCommit(b, s, &Batch{Claims: []Claim{{Task: names[i%len(names)], Slot: slot(HistorySize + 2 + i/len(names))}}})
		i++
	}
	b.ReportMetric(float64(pages(s)-before)/float64(b.N), "pages/op")
	b.ReportMetric(float64((cpuTime()-cpuBefore).Microseconds())/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(freePages), "free-pages")
}
