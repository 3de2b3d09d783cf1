package supervisor_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

// BenchmarkFireLateness runs N in-process no-op tasks on the real clock for
// the benchmark time and reports how late fires landed against their due
// time (p50, p99, max, in ms) and the fires per second. The scheduler is
// measured, not HTTP. "burst" gives every task the same slots (N fires due
// at one instant, every 100 ms); "spread" runs N tasks every second with a
// jitter of up to 999 ms (Spec.Jitter), so the same N fires a second arrive
// spread over the period. "store=bolt" cases claim and record every fire
// in a bbolt file, as the service does; the others use the memory store.
func BenchmarkFireLateness(b *testing.B) {
	cases := []struct {
		name   string
		n      int
		period time.Duration
		jitter time.Duration
		bolt   bool
	}{
		{"burst/tasks=10", 10, 100 * time.Millisecond, 0, false},
		{"burst/tasks=1000", 1000, 100 * time.Millisecond, 0, false},
		{"spread/tasks=1000", 1000, time.Second, 999 * time.Millisecond, false},
		{"spread/tasks=10000", 10000, time.Second, 999 * time.Millisecond, false},
		{"spread/tasks=10000/store=bolt", 10000, time.Second, 999 * time.Millisecond, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			specs := make([]task.Spec, tc.n)
			for i := range specs {
				specs[i] = jobSpec(fmt.Sprintf("task-%d", i), tc.period, noop)
				specs[i].Jitter = tc.jitter
			}
			var opts []supervisor.Option
			if tc.bolt {
				st, err := store.OpenBolt(filepath.Join(b.TempDir(), "state.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				opts = append(opts, supervisor.WithStore(st))
			}
			sys := startSystem(b, specs, nil, opts...)
			began := time.Now()
			for b.Loop() {
				time.Sleep(tc.period)
			}
			elapsed := time.Since(began)
			sys.stop()
			sys.rec.mu.Lock()
			lat := make([]time.Duration, 0, len(sys.rec.fires))
			for _, f := range sys.rec.fires {
				lat = append(lat, f.lateness)
			}
			sys.rec.mu.Unlock()
			if len(lat) == 0 {
				b.Fatal("no fires")
			}
			slices.Sort(lat)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "fires/s")
		})
	}
}

// BenchmarkMemoryPerTask spawns N idle fixed-rate tasks and reports the heap
// they hold, per task (the actor, its timer and inbox, the supervisor's
// entry and the in-memory store's state).
func BenchmarkMemoryPerTask(b *testing.B) {
	const n = 100_000
	specs := make([]task.Spec, n)
	for i := range specs {
		specs[i] = jobSpec(fmt.Sprintf("task-%d", i), time.Minute, noop)
	}
	var perTask float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		sys := startSystem(b, specs, nil)
		sys.list() // every task spawned
		runtime.GC()
		runtime.ReadMemStats(&after)
		perTask = float64(after.HeapInuse-before.HeapInuse) / n
		sys.stop()
	}
	b.ReportMetric(perTask, "heap-B/task")
}
