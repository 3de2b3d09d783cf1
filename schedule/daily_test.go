package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestDailyErrors(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	cases := []struct {
		at       TimeOfDay
		weekdays []time.Weekday
		loc      *time.Location
		want     string
	}{
		{TimeOfDay{10, 0, 0}, nil, nil, "nil"},
		{TimeOfDay{24, 0, 0}, nil, paris, "hour 24"},
		{TimeOfDay{10, 60, 0}, nil, paris, "minute 60"},
		{TimeOfDay{10, 0, -1}, nil, paris, "second -1"},
		{TimeOfDay{10, 0, 0}, []time.Weekday{time.Monday, 7}, paris, "weekday 7"},
		{TimeOfDay{10, 0, 0}, []time.Weekday{-1}, paris, "weekday -1"},
	}
	for _, c := range cases {
		s, err := Daily(c.at, c.weekdays, c.loc)
		if err == nil {
			t.Errorf("Daily(%v, %v, %v) = %v, want an error", c.at, c.weekdays, c.loc, s)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Daily(%v, %v): error %q does not mention %q", c.at, c.weekdays, err, c.want)
		}
	}
}

func TestDailyString(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	cases := []struct {
		at       TimeOfDay
		weekdays []time.Weekday
		loc      *time.Location
		want     string
	}{
		{TimeOfDay{10, 0, 0}, nil, paris, "daily at 10:00:00 (Europe/Paris)"},
		{TimeOfDay{9, 30, 0}, []time.Weekday{time.Friday, time.Monday, time.Friday}, time.UTC, "weekly on Monday, Friday at 09:30:00 (UTC)"},
		{TimeOfDay{23, 59, 59}, []time.Weekday{time.Saturday, time.Sunday}, loadLoc(t, "America/New_York"), "weekly on Sunday, Saturday at 23:59:59 (America/New_York)"},
	}
	for _, c := range cases {
		s := must(t)(Daily(c.at, c.weekdays, c.loc))
		if got := s.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

// TestDailyDST checks daily schedules across the Paris and New York
// transitions of 2026 and 2027.
func TestDailyDST(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	ny := loadLoc(t, "America/New_York")
	lh := loadLoc(t, "Australia/Lord_Howe")
	cases := []struct {
		name string
		at   TimeOfDay
		loc  *time.Location
		from time.Time
		want []time.Time
	}{
		{"Paris 02:30 spring 2026", TimeOfDay{2, 30, 0}, paris, utc(2026, 3, 27, 0, 0, 0), []time.Time{
			utc(2026, 3, 27, 1, 30, 0), utc(2026, 3, 28, 1, 30, 0),
			utc(2026, 3, 29, 1, 0, 0), // gap: 03:00 CEST
			utc(2026, 3, 30, 0, 30, 0), utc(2026, 3, 31, 0, 30, 0),
		}},
		{"Paris 02:30 autumn 2026", TimeOfDay{2, 30, 0}, paris, utc(2026, 10, 24, 0, 0, 0), []time.Time{
			utc(2026, 10, 24, 0, 30, 0),
			utc(2026, 10, 25, 0, 30, 0), // first occurrence (CEST) only
			utc(2026, 10, 26, 1, 30, 0),
		}},
		{"Paris 02:30 spring 2027", TimeOfDay{2, 30, 0}, paris, utc(2027, 3, 27, 12, 0, 0), []time.Time{
			utc(2027, 3, 28, 1, 0, 0), utc(2027, 3, 29, 0, 30, 0),
		}},
		{"Paris 02:30 autumn 2027", TimeOfDay{2, 30, 0}, paris, utc(2027, 10, 30, 12, 0, 0), []time.Time{
			utc(2027, 10, 31, 0, 30, 0), utc(2027, 11, 1, 1, 30, 0),
		}},
		{"Paris 03:00 spring", TimeOfDay{3, 0, 0}, paris, utc(2026, 3, 28, 12, 0, 0), []time.Time{
			utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 30, 1, 0, 0),
		}},
		{"Paris 02:00 autumn", TimeOfDay{2, 0, 0}, paris, utc(2026, 10, 24, 12, 0, 0), []time.Time{
			utc(2026, 10, 25, 0, 0, 0), utc(2026, 10, 26, 1, 0, 0),
		}},
		{"NY 02:30 spring 2026", TimeOfDay{2, 30, 0}, ny, utc(2026, 3, 7, 0, 0, 0), []time.Time{
			utc(2026, 3, 7, 7, 30, 0), utc(2026, 3, 8, 7, 0, 0), utc(2026, 3, 9, 6, 30, 0),
		}},
		{"NY 03:00 spring 2026", TimeOfDay{3, 0, 0}, ny, utc(2026, 3, 7, 12, 0, 0), []time.Time{
			utc(2026, 3, 8, 7, 0, 0), utc(2026, 3, 9, 7, 0, 0),
		}},
		{"NY 01:30 autumn 2026", TimeOfDay{1, 30, 0}, ny, utc(2026, 10, 31, 0, 0, 0), []time.Time{
			utc(2026, 10, 31, 5, 30, 0),
			utc(2026, 11, 1, 5, 30, 0), // 01:30 EDT only
			utc(2026, 11, 2, 6, 30, 0),
		}},
		{"NY 01:30 autumn 2027", TimeOfDay{1, 30, 0}, ny, utc(2027, 11, 6, 12, 0, 0), []time.Time{
			utc(2027, 11, 7, 5, 30, 0), utc(2027, 11, 8, 6, 30, 0),
		}},
		{"NY 02:30 spring 2027", TimeOfDay{2, 30, 0}, ny, utc(2027, 3, 13, 12, 0, 0), []time.Time{
			utc(2027, 3, 14, 7, 0, 0), utc(2027, 3, 15, 6, 30, 0),
		}},
		{"Lord Howe 02:15 gap", TimeOfDay{2, 15, 0}, lh, utc(2026, 10, 2, 0, 0, 0), []time.Time{
			utc(2026, 10, 2, 15, 45, 0), utc(2026, 10, 3, 15, 30, 0), utc(2026, 10, 4, 15, 15, 0),
		}},
		{"Lord Howe 01:45 overlap", TimeOfDay{1, 45, 0}, lh, utc(2026, 4, 3, 0, 0, 0), []time.Time{
			utc(2026, 4, 3, 14, 45, 0), utc(2026, 4, 4, 14, 45, 0), utc(2026, 4, 5, 15, 15, 0),
		}},
	}
	for _, c := range cases {
		s := must(t)(Daily(c.at, nil, c.loc))
		checkUpcoming(t, s, c.from, c.want)
	}
}

// TestDailySecondPass checks queries made during the repeated hour: the
// second pass fires nothing and Next moves on to the next day.
func TestDailySecondPass(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	ny := loadLoc(t, "America/New_York")
	cases := []struct {
		at        TimeOfDay
		loc       *time.Location
		t, want   time.Time
		situation string
	}{
		{TimeOfDay{2, 30, 0}, paris, utc(2026, 10, 25, 0, 30, 0), utc(2026, 10, 26, 1, 30, 0), "on the fire"},
		{TimeOfDay{2, 30, 0}, paris, utc(2026, 10, 25, 1, 0, 0), utc(2026, 10, 26, 1, 30, 0), "start of second pass"},
		{TimeOfDay{2, 30, 0}, paris, utc(2026, 10, 25, 1, 15, 0), utc(2026, 10, 26, 1, 30, 0), "second pass before 02:30"},
		{TimeOfDay{2, 30, 0}, paris, utc(2026, 10, 25, 1, 30, 0), utc(2026, 10, 26, 1, 30, 0), "second 02:30"},
		{TimeOfDay{2, 30, 0}, paris, utc(2026, 10, 25, 0, 29, 59), utc(2026, 10, 25, 0, 30, 0), "just before"},
		{TimeOfDay{3, 0, 0}, paris, utc(2026, 10, 25, 1, 15, 0), utc(2026, 10, 25, 2, 0, 0), "03:00 CET follows the second pass"},
		{TimeOfDay{1, 30, 0}, ny, utc(2026, 11, 1, 6, 15, 0), utc(2026, 11, 2, 6, 30, 0), "01:15 EST"},
		{TimeOfDay{1, 30, 0}, ny, utc(2026, 11, 1, 6, 45, 0), utc(2026, 11, 2, 6, 30, 0), "01:45 EST"},
		{TimeOfDay{1, 30, 0}, ny, utc(2026, 11, 1, 5, 29, 59), utc(2026, 11, 1, 5, 30, 0), "01:29:59 EDT"},
		{TimeOfDay{2, 30, 0}, ny, utc(2026, 3, 8, 6, 59, 59), utc(2026, 3, 8, 7, 0, 0), "just before the gap"},
		{TimeOfDay{2, 30, 0}, ny, utc(2026, 3, 8, 7, 0, 0), utc(2026, 3, 9, 6, 30, 0), "at the gap's fire"},
	}
	for _, c := range cases {
		s := must(t)(Daily(c.at, nil, c.loc))
		if got := s.Next(c.t); !got.Equal(c.want) {
			t.Errorf("%s %s: Next(%v) = %v, want %v", s, c.situation, c.t, got.UTC(), c.want)
		}
	}
}

func TestWeekly(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	cases := []struct {
		name     string
		at       TimeOfDay
		weekdays []time.Weekday
		loc      *time.Location
		from     time.Time
		want     []time.Time
	}{
		{"Monday across year end", TimeOfDay{10, 0, 0}, []time.Weekday{time.Monday}, paris,
			time.Date(2026, 12, 30, 10, 0, 0, 0, paris), []time.Time{
				time.Date(2027, 1, 4, 10, 0, 0, 0, paris), time.Date(2027, 1, 11, 10, 0, 0, 0, paris),
			}},
		{"Mon Wed Fri across month end", TimeOfDay{9, 30, 0}, []time.Weekday{time.Friday, time.Wednesday, time.Monday, time.Monday}, time.UTC,
			utc(2026, 1, 28, 9, 30, 0), []time.Time{ // Wednesday 28 January, on the fire
				utc(2026, 1, 30, 9, 30, 0), utc(2026, 2, 2, 9, 30, 0), utc(2026, 2, 4, 9, 30, 0), utc(2026, 2, 6, 9, 30, 0),
			}},
		{"Thursday across year end", TimeOfDay{9, 0, 0}, []time.Weekday{time.Thursday}, time.UTC,
			utc(2026, 12, 31, 12, 0, 0), []time.Time{utc(2027, 1, 7, 9, 0, 0), utc(2027, 1, 14, 9, 0, 0)}},
		{"same day, earlier", TimeOfDay{9, 0, 0}, []time.Weekday{time.Thursday}, time.UTC,
			utc(2026, 12, 31, 8, 59, 59), []time.Time{utc(2026, 12, 31, 9, 0, 0)}},
		{"Sunday on DST day", TimeOfDay{2, 30, 0}, []time.Weekday{time.Sunday}, paris,
			utc(2026, 3, 22, 12, 0, 0), []time.Time{utc(2026, 3, 29, 1, 0, 0), utc(2026, 4, 5, 0, 30, 0)}},
		{"Tuesday leap day", TimeOfDay{12, 0, 0}, []time.Weekday{time.Tuesday}, time.UTC,
			utc(2028, 2, 23, 12, 0, 0), []time.Time{utc(2028, 2, 29, 12, 0, 0), utc(2028, 3, 7, 12, 0, 0)}},
		{"weekends", TimeOfDay{0, 0, 0}, []time.Weekday{time.Saturday, time.Sunday}, time.UTC,
			utc(2026, 2, 27, 0, 0, 0), []time.Time{utc(2026, 2, 28, 0, 0, 0), utc(2026, 3, 1, 0, 0, 0), utc(2026, 3, 7, 0, 0, 0)}},
	}
	for _, c := range cases {
		s := must(t)(Daily(c.at, c.weekdays, c.loc))
		checkUpcoming(t, s, c.from, c.want)
	}
}

func TestDailyLeapDays(t *testing.T) {
	s := must(t)(Daily(TimeOfDay{12, 0, 0}, nil, time.UTC))
	checkUpcoming(t, s, utc(2028, 2, 28, 12, 0, 0), []time.Time{utc(2028, 2, 29, 12, 0, 0), utc(2028, 3, 1, 12, 0, 0)})
	checkUpcoming(t, s, utc(2100, 2, 28, 12, 0, 0), []time.Time{utc(2100, 3, 1, 12, 0, 0)})
	checkUpcoming(t, s, utc(2000, 2, 28, 12, 0, 0), []time.Time{utc(2000, 2, 29, 12, 0, 0)})
	checkUpcoming(t, s, utc(2026, 12, 31, 12, 0, 0), []time.Time{utc(2027, 1, 1, 12, 0, 0)})
}

// TestDailyOneFirePerDay runs 400 consecutive Next calls for many zones and
// times of day, including times inside gaps and overlaps, and checks that the
// fires are strictly increasing, one per civil day, with no day skipped, each
// at the resolved time.
func TestDailyOneFirePerDay(t *testing.T) {
	times := []TimeOfDay{{0, 0, 0}, {0, 30, 0}, {1, 30, 0}, {2, 0, 0}, {2, 15, 0}, {2, 30, 0}, {3, 0, 0}, {12, 0, 0}, {23, 30, 0}, {23, 59, 59}}
	starts := []time.Time{utc(2026, 1, 1, 0, 0, 0), utc(2026, 9, 1, 0, 0, 0), utc(2027, 2, 10, 13, 0, 0)}
	for _, zone := range testZones {
		loc := loadLoc(t, zone)
		for _, at := range times {
			s := must(t)(Daily(at, nil, loc))
			for _, start := range starts {
				fires := Upcoming(s, start, 400)
				if len(fires) != 400 {
					t.Fatalf("%s: %d fires", s, len(fires))
				}
				w := start.In(loc)
				day := time.Date(w.Year(), w.Month(), w.Day(), 0, 0, 0, 0, time.UTC)
				if Resolve(w.Year(), w.Month(), w.Day(), at.Hour, at.Minute, at.Second, loc).After(start) {
					day = day.AddDate(0, 0, -1) // today's slot is still to come
				}
				prev := start
				for i, f := range fires {
					day = day.AddDate(0, 0, 1)
					want := Resolve(day.Year(), day.Month(), day.Day(), at.Hour, at.Minute, at.Second, loc)
					if !f.Equal(want) || !f.After(prev) {
						t.Fatalf("%s from %v: fire %d = %v, want %v (civil day %v), previous %v",
							s, start, i, f, want, day.Format(time.DateOnly), prev)
					}
					prev = f
				}
			}
		}
	}
}

func TestWeeklyOneFirePerMatchingDay(t *testing.T) {
	days := []time.Weekday{time.Sunday, time.Wednesday, time.Saturday}
	for _, zone := range []string{"Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Santiago"} {
		loc := loadLoc(t, zone)
		for _, at := range []TimeOfDay{{0, 0, 0}, {2, 30, 0}, {1, 30, 0}, {23, 30, 0}} {
			s := must(t)(Daily(at, days, loc))
			fires := Upcoming(s, utc(2026, 1, 1, 0, 0, 0), 400)
			day := utc(2026, 1, 1, 0, 0, 0).In(loc)
			d := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
			for i := 0; i < len(fires); d = d.AddDate(0, 0, 1) {
				wd := d.Weekday()
				if wd != time.Sunday && wd != time.Wednesday && wd != time.Saturday {
					continue
				}
				want := Resolve(d.Year(), d.Month(), d.Day(), at.Hour, at.Minute, at.Second, loc)
				if !want.After(utc(2026, 1, 1, 0, 0, 0)) {
					continue
				}
				if !fires[i].Equal(want) {
					t.Fatalf("%s: fire %d = %v, want %v", s, i, fires[i], want)
				}
				i++
			}
		}
	}
}
