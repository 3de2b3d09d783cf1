package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Every task's series exist from the first scrape, at zero, so that alert
// rules need no `or vector(0)`.
func TestPrepareCreatesEverySeries(t *testing.T) {
	m, _ := newTestMetrics(t)
	specs := []task.Spec{
		{Name: "hourly", Every: time.Hour},
		{Name: "weekdays", At: "09:00", Weekdays: []time.Weekday{time.Monday, time.Friday}},
		{Name: "nightly", Cron: "0 15 3 * * *"},
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // a Wednesday
	m.Prepare(specs, now)
	if n := testutil.CollectAndCount(m.runs); n != len(specs)*len(task.Outcomes) {
		t.Errorf("runs_total has %d series, want %d", n, len(specs)*len(task.Outcomes))
	}
	if n := testutil.CollectAndCount(m.skipped); n != len(specs)*len(task.SkipReasons) {
		t.Errorf("fires_skipped_total has %d series, want %d", n, len(specs)*len(task.SkipReasons))
	}
	if n := testutil.CollectAndCount(m.missed); n != len(specs) {
		t.Errorf("slots_missed_total has %d series, want %d", n, len(specs))
	}
	for name, want := range map[string]float64{"hourly": 3600, "weekdays": 4 * 86400, "nightly": 86400} {
		if got := testutil.ToFloat64(m.interval.WithLabelValues(name)); got != want {
			t.Errorf("task_interval_seconds{task=%q} = %v, want %v", name, got, want)
		}
		if got := testutil.ToFloat64(m.lastSuccess.WithLabelValues(name)); got != 0 {
			t.Errorf("last success of %s before any run: %v", name, got)
		}
	}
	// A run that ended at 12:00:05 sets the last success; a failed one does not.
	obs := m.Tasks()
	obs.RunFinished(task.Run{Task: "hourly", Outcome: task.OutcomeOK, Start: now, Duration: 5 * time.Second})
	obs.RunFinished(task.Run{Task: "hourly", Outcome: task.OutcomeFailed, Start: now.Add(time.Hour), Duration: time.Second})
	if got := testutil.ToFloat64(m.lastSuccess.WithLabelValues("hourly")); got != float64(now.Unix()+5) {
		t.Errorf("last success = %v, want %v", got, now.Unix()+5)
	}
}

func TestCommitsAndReadiness(t *testing.T) {
	m, reg := newTestMetrics(t)
	commits := m.Commits()
	commits(store.CommitStats{Batches: 3, Writes: 40, Duration: 2 * time.Millisecond})
	commits(store.CommitStats{Batches: 1, Writes: 1, Err: errors.New("disk full")})
	commits(store.CommitStats{}) // an empty flush: not counted
	if ok, bad := testutil.ToFloat64(m.commits.WithLabelValues("ok")), testutil.ToFloat64(m.commits.WithLabelValues("error")); ok != 1 || bad != 1 {
		t.Errorf("commits ok %v, error %v; want 1 and 1", ok, bad)
	}
	h := NewHealth("scheduler", "store")
	if err := m.WatchHealth(h); err != nil {
		t.Fatal(err)
	}
	ready := func() string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "mojodex_scheduler_ready" {
				return strings.TrimSpace(mf.GetMetric()[0].GetGauge().String())
			}
		}
		return "missing"
	}
	if got := ready(); got != "value:0" {
		t.Errorf("ready before start: %s", got)
	}
	h.SetReady("scheduler")
	h.SetReady("store")
	if got := ready(); got != "value:1" {
		t.Errorf("ready when both are: %s", got)
	}
	h.Set("store", false)
	if got := ready(); got != "value:0" {
		t.Errorf("ready while the store fails: %s", got)
	}
}
