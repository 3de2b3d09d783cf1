package supervisor_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

func noop(context.Context) (int, error) { return 0, nil }

// sleep waits d or until ctx ends, as a well-behaved job does.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Fixed rate over 24 virtual hours: every fire lands exactly on its slot,
// anchor + k*period, with zero lateness and no drift, even though each run
// takes time.
func TestFixedRateOver24Hours(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		slow := func(ctx context.Context) (int, error) {
			// Runs take time; the next slot must not move.
			return 1, sleep(ctx, 3*time.Second)
		}
		sys := startSystem(t, []task.Spec{
			jobSpec("every-10s", 10*time.Second, slow),
			jobSpec("every-7m", 7*time.Minute, noop),
		}, nil)
		defer sys.stop()
		time.Sleep(24*time.Hour + time.Millisecond)
		synctest.Wait()

		for _, tc := range []struct {
			name   string
			period time.Duration
		}{{"every-10s", 10 * time.Second}, {"every-7m", 7 * time.Minute}} {
			fires := sys.rec.firesOf(tc.name)
			want := int(24 * time.Hour / tc.period)
			if len(fires) != want {
				t.Fatalf("%s: %d fires in 24h, want %d", tc.name, len(fires), want)
			}
			for k, f := range fires {
				slot := start.Add(time.Duration(k+1) * tc.period)
				if !f.slot.Equal(slot) || !f.at.Equal(slot) || f.lateness != 0 {
					t.Fatalf("%s fire %d: slot %v at %v lateness %v; want exactly %v", tc.name, k, f.slot, f.at, f.lateness, slot)
				}
			}
		}
		if sys.rec.missed != 0 {
			t.Errorf("missed %d slots", sys.rec.missed)
		}
	})
}

// run_on_start fires once at start, then on the schedule.
func TestRunOnStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		spec := jobSpec("eager", time.Hour, noop)
		spec.RunOnStart = true
		sys := startSystem(t, []task.Spec{spec}, nil)
		defer sys.stop()
		time.Sleep(2*time.Hour + time.Second)
		synctest.Wait()
		fires := sys.rec.firesOf("eager")
		want := []time.Time{start, start.Add(time.Hour), start.Add(2 * time.Hour)}
		if len(fires) != len(want) {
			t.Fatalf("%d fires, want %d", len(fires), len(want))
		}
		for i, f := range fires {
			if !f.slot.Equal(want[i]) {
				t.Errorf("fire %d at %v, want %v", i, f.slot, want[i])
			}
		}
	})
}

// Time-of-day tasks fire once per local day at their wall-clock time, and on
// the spring-forward day at the first instant after the gap (Paris,
// 2000-03-26: 02:30 does not exist, so 03:00 CEST).
func TestDailyAcrossSpringForward(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		paris, err := time.LoadLocation("Europe/Paris")
		if err != nil {
			t.Skip("no tzdata:", err)
		}
		sys := startSystem(t, []task.Spec{{Name: "nightly", At: "02:30", Timezone: "Europe/Paris", Job: noop}}, nil)
		defer sys.stop()
		// The bubble starts at 2000-01-01 00:00 UTC; run to April 1st.
		time.Sleep(time.Until(time.Date(2000, 4, 1, 0, 0, 0, 0, time.UTC)))
		synctest.Wait()
		fires := sys.rec.firesOf("nightly")
		if len(fires) != 91 { // Jan 1 .. Mar 31, 2000 (leap year)
			t.Fatalf("%d fires, want 91", len(fires))
		}
		for i, f := range fires {
			local := f.at.In(paris)
			day := time.Date(2000, 1, 1+i, 0, 0, 0, 0, paris)
			if local.Year() != day.Year() || local.YearDay() != day.YearDay() {
				t.Fatalf("fire %d on %v, want day %v", i, local, day.Format("2006-01-02"))
			}
			wantClock := "02:30:00"
			if local.Month() == time.March && local.Day() == 26 {
				wantClock = "03:00:00" // the gap 02:00-03:00 CET->CEST
			}
			if got := local.Format("15:04:05"); got != wantClock || f.lateness != 0 {
				t.Errorf("fire %d: %v (lateness %v), want %s", i, local, f.lateness, wantClock)
			}
		}
	})
}

// A weekly task in New York fires on its weekdays only, at 01:30 local,
// and on the fall-back day (2000-10-29, 01:30 happens twice) only once, at
// the first occurrence (EDT).
func TestWeeklyAcrossFallBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ny, err := time.LoadLocation("America/New_York")
		if err != nil {
			t.Skip("no tzdata:", err)
		}
		sys := startSystem(t, []task.Spec{{
			Name: "weekly", At: "01:30", Timezone: "America/New_York",
			Weekdays: []time.Weekday{time.Sunday, time.Wednesday}, Job: noop,
		}}, nil)
		defer sys.stop()
		time.Sleep(time.Until(time.Date(2000, 11, 15, 0, 0, 0, 0, time.UTC)))
		synctest.Wait()
		fires := sys.rec.firesOf("weekly")
		// Count the Sundays and Wednesdays from 2000-01-01 to 2000-11-14.
		want := 0
		for d := time.Date(2000, 1, 1, 12, 0, 0, 0, ny); d.Before(time.Date(2000, 11, 15, 0, 0, 0, 0, ny)); d = d.AddDate(0, 0, 1) {
			if d.Weekday() == time.Sunday || d.Weekday() == time.Wednesday {
				want++
			}
		}
		if len(fires) != want {
			t.Fatalf("%d fires, want %d", len(fires), want)
		}
		sawFallBack := false
		for i, f := range fires {
			local := f.at.In(ny)
			if wd := local.Weekday(); wd != time.Sunday && wd != time.Wednesday {
				t.Errorf("fire %d on a %v", i, wd)
			}
			if local.Format("15:04:05") != "01:30:00" {
				t.Errorf("fire %d at %v, want 01:30 local", i, local)
			}
			if i > 0 && local.YearDay() == fires[i-1].at.In(ny).YearDay() {
				t.Errorf("fire %d repeats the day of fire %d: %v", i, i-1, local)
			}
			if local.Month() == time.October && local.Day() == 29 {
				sawFallBack = true
				if _, off := local.Zone(); off != -4*3600 {
					t.Errorf("fall-back fire at %v, want the first occurrence (EDT, -04:00)", local)
				}
			}
		}
		if !sawFallBack {
			t.Error("no fire on the fall-back Sunday 2000-10-29")
		}
	})
}

// A job that panics on every run is restarted after 1s, 2s, 4s, 8s, 16s,
// and marked failed at the sixth crash within the 10-minute window. The
// engine is never asked to restart anything, the process keeps running, and
// another task keeps firing exactly on its slots throughout.
func TestCrashBackoffAndIntensityWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var calls []time.Duration
		boom := func(context.Context) (int, error) {
			calls = append(calls, time.Since(start))
			panic("job exploded")
		}
		var steady atomic.Int64
		sys := startSystem(t, []task.Spec{
			jobSpec("crashy", time.Second, boom),
			jobSpec("steady", time.Second, func(context.Context) (int, error) { steady.Add(1); return 0, nil }),
		}, nil)
		defer sys.stop()
		time.Sleep(2 * time.Minute)
		synctest.Wait()

		// Crash at 1s; respawn after 1s (2s) arms slot 3s; crash; respawn
		// after 2s (5s) arms 6s; +4s -> 11s; +8s -> 20s; +16s -> 37s: the
		// sixth crash within 10 minutes marks the task failed.
		want := []time.Duration{1, 3, 6, 11, 20, 37}
		if len(calls) != len(want) {
			t.Fatalf("job ran at %v, want %v seconds", calls, want)
		}
		for i := range want {
			if calls[i] != want[i]*time.Second {
				t.Fatalf("job ran at %v, want %v seconds", calls, want)
			}
		}
		st := sys.list()
		if st["crashy"].State != task.StateFailed || st["crashy"].Restarts != 5 {
			t.Errorf("crashy: state %s restarts %d, want failed after 5 restarts", st["crashy"].State, st["crashy"].Restarts)
		}
		if st["steady"].State != task.StateScheduled {
			t.Errorf("steady: state %s", st["steady"].State)
		}
		if got := steady.Load(); got != 120 {
			t.Errorf("steady fired %d times in 2 minutes, want 120", got)
		}
		for _, f := range sys.rec.firesOf("steady") {
			if f.lateness != 0 {
				t.Fatalf("steady fired late: %+v", f)
			}
		}
		// Triggering a failed task is refused with a clear error.
		if r, ok := sys.request(supervisor.TriggerTask{Name: "crashy"}).(supervisor.TriggerReply); !ok || r.Err == nil || !strings.Contains(r.Err.Error(), "failed") {
			t.Errorf("trigger of a failed task: %#v", r)
		}
	})
}

// Crashes spread wider than the window never mark the task failed: old
// failures leave the window.
func TestCrashesOutsideWindowKeepRestarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		sys := startSystem(t, []task.Spec{jobSpec("sometimes", 5*time.Minute, func(context.Context) (int, error) {
			n.Add(1)
			panic("again")
		})}, nil, supervisor.WithRestartPolicy(supervisor.RestartPolicy{MaxFailures: 2, Window: 9 * time.Minute}))
		defer sys.stop()
		time.Sleep(time.Hour)
		synctest.Wait()
		// One crash every 5 minutes (the backoff is shorter than a period):
		// at most 2 in any 9-minute window... 3 crashes at 5, 10, 15 fall
		// within 10 minutes, so a 9-minute window holds 2.
		if st := sys.list()["sometimes"]; st.State == task.StateFailed {
			t.Fatalf("task failed after %d crashes spread over an hour", n.Load())
		}
		if n.Load() < 10 {
			t.Errorf("only %d runs in an hour", n.Load())
		}
	})
}

// A run still in progress when the next slot comes makes that fire skip
// (logged and counted), not queue.
func TestOverlapSkips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int64
		sys := startSystem(t, []task.Spec{jobSpec("long", time.Minute, func(ctx context.Context) (int, error) {
			runs.Add(1)
			return 0, sleep(ctx, 150*time.Second) // spans two more slots
		})}, nil)
		defer sys.stop()
		time.Sleep(6*time.Minute + time.Second)
		synctest.Wait()
		// Slots 1..6 min: runs start at 1 (busy until 3:30), 4 (busy until 6:30);
		// 2, 3, 5, 6 are skipped.
		if got := runs.Load(); got != 2 {
			t.Errorf("%d runs, want 2", got)
		}
		skips := sys.rec.skipsSnapshot()
		if len(skips) != 4 || !strings.Contains(skips[0], "still in progress") {
			t.Errorf("skips: %q", skips)
		}
	})
}

// Drain waits for the run in progress and then answers; no fire happens
// afterwards.
func TestDrainWaitsForRunInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int64
		sys := startSystem(t, []task.Spec{jobSpec("slow", time.Minute, func(ctx context.Context) (int, error) {
			runs.Add(1)
			return 0, sleep(ctx, 20*time.Second)
		})}, nil)
		defer sys.stop()
		time.Sleep(time.Minute + 5*time.Second) // a run is in progress
		synctest.Wait()
		began := time.Now()
		if _, err := sys.engine.Request(sys.pid, supervisor.Drain{}, time.Minute).Result(); err != nil {
			t.Fatalf("drain: %v", err)
		}
		if waited := time.Since(began); waited != 15*time.Second {
			t.Errorf("drain answered after %v, want 15s (the rest of the run)", waited)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if got := runs.Load(); got != 1 {
			t.Errorf("%d runs, want 1 (none after drain)", got)
		}
		if recs := sys.rec.recordsOf("slow"); len(recs) != 1 || recs[0].Outcome != "ok" {
			t.Errorf("records: %+v", recs)
		}
	})
}
