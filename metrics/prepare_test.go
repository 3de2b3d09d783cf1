package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/schedule"
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

// countingSchedule counts the Next calls made on the schedule it wraps.
type countingSchedule struct {
	schedule.Schedule
	calls int
}

func (c *countingSchedule) Next(t time.Time) time.Time {
	c.calls++
	return c.Schedule.Next(t)
}

// A cron schedule with a seconds field fires 31 million times a year: its
// interval is found without walking every fire, and a long gap beyond the
// fires walked one by one is still found.
func TestIntervalOfDenseSchedules(t *testing.T) {
	now := time.Date(2026, time.January, 10, 12, 0, 0, 0, time.UTC)
	end := now.Add(366 * 24 * time.Hour)
	if got := Interval(&task.Spec{Name: "s", Cron: "* * * * * *"}, now); got != time.Second {
		t.Errorf("Interval of a cron every second = %s, want 1s", got)
	}
	everySecond, err := schedule.Cron("* * * * * *", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingSchedule{Schedule: everySecond}
	if got := longestGap(c, now, end); got != time.Second {
		t.Errorf("longest gap of a cron every second = %s, want 1s", got)
	}
	if c.calls > intervalFires+400 {
		t.Errorf("%d Next calls for a cron every second; want at most %d", c.calls, intervalFires+400)
	}
	// Every 10 s in January only: the long gap is from the last fire of
	// January to the next January, well beyond the first 10,000 fires.
	january, err := schedule.Cron("*/10 * * * 1 *", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2027, time.January, 1, 0, 0, 0, 0, time.UTC).Sub(time.Date(2026, time.January, 31, 23, 59, 50, 0, time.UTC))
	if got := longestGap(january, now, end); got > want || got < want-24*time.Hour {
		t.Errorf("longest gap of every 10 s in January = %s, want %s (less at most a day)", got, want)
	}
}
