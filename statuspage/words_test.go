package statuspage

import (
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/schedule"
	"github.com/mojodex/mojodex-scheduler/task"
)

// The schedules' own descriptions, as the supervisor reports them, put
// into words.
func TestScheduleWords(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tod := func(s string) schedule.TimeOfDay {
		v, err := schedule.ParseTimeOfDay(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	every := func(d time.Duration) string {
		s, err := schedule.Every(d, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		return s.String()
	}
	daily := func(at string, loc *time.Location, days ...time.Weekday) string {
		s, err := schedule.Daily(tod(at), days, loc)
		if err != nil {
			t.Fatal(err)
		}
		return s.String()
	}
	cron := func(expr string, loc *time.Location) string {
		s, err := schedule.Cron(expr, loc)
		if err != nil {
			t.Fatal(err)
		}
		return s.String()
	}
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	for _, c := range []struct{ desc, want string }{
		{every(10 * time.Minute), "every 10 min"},
		{every(time.Hour), "every hour"},
		{every(30 * time.Minute), "every 30 min"},
		{every(24 * time.Hour), "every day"},
		{every(48 * time.Hour), "every 2 days"},
		{every(2 * time.Hour), "every 2 h"},
		{every(90 * time.Minute), "every 90 min"},
		{every(time.Second), "every second"},
		{every(45 * time.Second), "every 45 s"},
		{every(1500 * time.Millisecond), "every 1500 ms"},
		{every(time.Minute), "every minute"},
		{daily("09:00", paris), "daily 09:00 Europe/Paris"},
		{daily("09:30:15", time.UTC), "daily 09:30:15 UTC"},
		{daily("09:00", paris, weekdays...), "daily 09:00 Europe/Paris, Mon–Fri"},
		{daily("09:30", time.UTC, time.Monday, time.Thursday), "daily 09:30 UTC, Mon, Thu"},
		{daily("08:00", time.UTC, time.Saturday, time.Sunday), "daily 08:00 UTC, Sat, Sun"},
		{daily("08:00", time.UTC, time.Friday, time.Saturday, time.Sunday, time.Monday), "daily 08:00 UTC, Mon, Fri–Sun"},
		{daily("07:00", time.UTC, time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday), "daily 07:00 UTC"},
		{cron("0 15 3 * * *", ny), "cron 0 15 3 * * * in America/New_York"},
		{cron("*/5 * * * *", time.UTC), "cron */5 * * * * in UTC"},
		{"something else", "something else"},
		{"every soon", "every soon"},
		{"weekly on Funday at 09:00:00 (UTC)", "weekly on Funday at 09:00:00 (UTC)"},
	} {
		if got := scheduleWords(c.desc); got != c.want {
			t.Errorf("scheduleWords(%q) = %q, want %q", c.desc, got, c.want)
		}
	}
}

// Every default task's schedule reads as words, not as Go durations.
func TestScheduleWordsOfTheDefaults(t *testing.T) {
	specs, err := task.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"purchases-expiration-checker":      "every hour",
		"extract-todos":                     "every 10 min",
		"reschedule-todos":                  "every hour",
		"send-todo-daily-emails":            "every hour",
		"check-disengaged-free-trial-users": "every day",
		"first-home-chat-of-week":           "every hour",
		"relaunch-locked-steps":             "every 30 min",
	}
	for _, s := range specs {
		sc, err := s.Schedule(time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if got := scheduleWords(sc.String()); got != want[s.Name] {
			t.Errorf("%s: %q, want %q", s.Name, got, want[s.Name])
		}
	}
}

func TestDurationWords(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0 ms"},
		{250 * time.Microsecond, "0.25 ms"},
		{340 * time.Millisecond, "340 ms"},
		{1234 * time.Millisecond, "1.2 s"},
		{42 * time.Second, "42 s"},
		{3*time.Minute + 4*time.Second, "3 min 4 s"},
		{5 * time.Minute, "5 min"},
		{2*time.Hour + 5*time.Minute + 59*time.Second, "2 h 5 min"},
		{3*24*time.Hour + 4*time.Hour, "3 d 4 h"},
		{-1500 * time.Millisecond, "−1.5 s"},
	} {
		if got := durationWords(c.d); got != c.want {
			t.Errorf("durationWords(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestRelativeWords(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"},
		{999 * time.Millisecond, "just now"},
		{-999 * time.Millisecond, "just now"},
		{5 * time.Second, "in 5 s"},
		{-59 * time.Second, "59 s ago"},
		{4*time.Minute + 59*time.Second, "in 4 min"},
		{-3 * time.Hour, "3 h ago"},
		{2*time.Hour + 5*time.Minute, "in 2 h 5 min"},
		{23*time.Hour + 59*time.Minute, "in 23 h 59 min"},
		{72 * time.Hour, "in 3 days"},
		{-50 * time.Hour, "2 days ago"},
	} {
		if got := relativeWords(now.Add(c.d), now); got != c.want {
			t.Errorf("relativeWords(now%+v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/tasks/a":             "/tasks/a",
		"/?x=1":                "/?x=1",
		"":                     "/",
		"//evil.example/":      "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"/a\r\nSet-Cookie: x":  "/",
		"tasks":                "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
