package statuspage_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/statuspage"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

// BenchmarkTasksPage measures whole requests against a real supervisor
// whose n tasks each have 20 runs of history (in the in-memory store):
//   - "page": GET /, that is ListTasks, one GetTask per task for the
//     outcome strips (4 at a time), and the rendering;
//   - "json": GET /api/v1/tasks, that is ListTasks and protojson only,
//     which shows what the strips cost.
func BenchmarkTasksPage(b *testing.B) {
	for _, n := range []int{7, 1000} {
		h := benchHandler(b, n)
		for _, c := range []struct{ name, target string }{{"page", "/"}, {"json", "/api/v1/tasks"}} {
			b.Run(fmt.Sprintf("%s/tasks=%d", c.name, n), func(b *testing.B) {
				var size int
				cpu := statuspage.CPUTime()
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.target, nil))
					if rec.Code != http.StatusOK {
						b.Fatalf("GET %s: %d", c.target, rec.Code)
					}
					size = rec.Body.Len()
				}
				// The CPU of the whole process: the page and the supervisor
				// answering it (the tasks are idle).
				b.ReportMetric(float64(statuspage.CPUTime()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
				b.ReportMetric(float64(size), "bytes/page")
			})
		}
	}
}

// benchHandler starts a scheduler of n idle hourly jobs with full
// histories and returns its status page.
func benchHandler(b *testing.B, n int) http.Handler {
	b.Helper()
	st := store.NewMemory()
	specs := make([]task.Spec, n)
	now := time.Now()
	batch := &store.Batch{}
	for i := range specs {
		name := fmt.Sprintf("task-%04d", i)
		specs[i] = task.Spec{Name: name, Every: time.Hour, Job: func(context.Context) (int, error) { return 0, nil }}
		for j := range statuspage.StripLength {
			r := task.Run{Task: name, Manual: true, Slot: now.Add(-time.Duration(statuspage.StripLength-j) * time.Minute),
				Outcome: task.OutcomeOK, Duration: 400 * time.Millisecond, Pages: 3, Items: 120, Status: 200}
			r.Start = r.Slot
			if j%5 == 4 {
				r.Outcome, r.Status, r.Err = task.OutcomeFailed, 500, "POST /events_generation: unexpected status 500: {\"error\":\"database timeout\"}"
			}
			batch.Runs = append(batch.Runs, r)
		}
	}
	if err := st.Commit(batch); err != nil {
		b.Fatal(err)
	}
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		b.Fatal(err)
	}
	srv, err := supervisor.NewServer(engine, specs, nil, supervisor.WithStore(st))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	h, err := statuspage.New(engine, srv.PID())
	if err != nil {
		b.Fatal(err)
	}
	return h
}
