package supervisor_test

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
)

// BenchmarkFireLateness runs N in-process no-op tasks every 100 ms on the
// real clock for the benchmark time and reports how late fires landed
// against their due time (p50, p99, max, in ms) and the fires per second.
// The scheduler is measured, not HTTP.
func BenchmarkFireLateness(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			specs := make([]task.Spec, n)
			for i := range specs {
				specs[i] = jobSpec(fmt.Sprintf("task-%d", i), 100*time.Millisecond, noop)
			}
			sys := startSystem(b, specs, nil)
			began := time.Now()
			for b.Loop() {
				time.Sleep(100 * time.Millisecond)
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
