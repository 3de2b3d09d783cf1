package statuspage

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
)

// countingWriter is a ResponseWriter that only counts the bytes written.
type countingWriter struct {
	h http.Header
	n int
}

func (w *countingWriter) Header() http.Header         { return w.h }
func (w *countingWriter) WriteHeader(int)             {}
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// syntheticTasks returns n task statuses with full histories (20 runs,
// every fifth failed with a 120-byte error), as GetTask would give them.
func syntheticTasks(n int, now time.Time) ([]task.Status, [][]task.Run) {
	list := make([]task.Status, n)
	hist := make([][]task.Run, n)
	for i := range list {
		name := fmt.Sprintf("task-%04d", i)
		runs := make([]task.Run, StripLength)
		for j := range runs {
			r := task.Run{Task: name, Slot: now.Add(-time.Duration(StripLength-j) * time.Hour), Outcome: task.OutcomeOK,
				Duration: 420 * time.Millisecond, Pages: 3, Items: 120, Status: 200, Lateness: 2 * time.Millisecond}
			r.Start = r.Slot.Add(r.Lateness)
			if j%5 == 4 {
				r.Outcome, r.Status = task.OutcomeFailed, 500
				r.Err = "POST /events_generation: unexpected status 500: {\"error\":\"the database did not answer within 30 s; retry later please\"}"
			}
			runs[j] = r
		}
		last := runs[len(runs)-1]
		list[i] = task.Status{Name: name, Schedule: "every 1h0m0s", State: task.StateScheduled, Next: now.Add(time.Hour), Last: &last}
		hist[i] = runs
	}
	return list, hist
}

// BenchmarkRenderTasksPage measures the page's own cost for 1,000 tasks:
// building the rows (with their 20-run strips) and executing the
// template, without asking the supervisor.
func BenchmarkRenderTasksPage(b *testing.B) {
	tmpl, err := parseTemplates()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	list, hist := syntheticTasks(1000, now)
	w := &countingWriter{h: http.Header{}}
	cpu := CPUTime()
	for b.Loop() {
		w.n = 0
		rows := make([]taskRow, len(list))
		for i := range list {
			rows[i] = newTaskRow(list[i], hist[i], nil, now, false)
		}
		html, err := tmpl.renderRows(rows)
		if err != nil {
			b.Fatal(err)
		}
		if err := tmpl.render(w, http.StatusOK, "tasks", pageData{
			Title: "Tasks", Section: "tasks", RefreshMS: 5000, Rendered: newWhen(now, now),
			Content: tasksContent{Rows: html, Summary: newSummary(list)},
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(CPUTime()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(w.n), "bytes/page")
}
