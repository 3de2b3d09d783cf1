package schedule

import (
	"testing"
	"time"
)

func benchNext(b *testing.B, s Schedule, t time.Time) {
	b.Helper()
	var sink time.Time
	for b.Loop() {
		sink = s.Next(t)
	}
	if sink.IsZero() {
		b.Fatal("zero Next")
	}
}

func BenchmarkCronNextEverySecond(b *testing.B) {
	s := must(b)(Cron("* * * * * *", loadLoc(b, "Europe/Paris")))
	benchNext(b, s, utc(2026, 6, 1, 12, 0, 0).Add(123))
}

func BenchmarkCronNextEverySecondInGap(b *testing.B) {
	s := must(b)(Cron("* * * * * *", loadLoc(b, "Europe/Paris")))
	benchNext(b, s, utc(2026, 3, 29, 0, 59, 59))
}

func BenchmarkCronNextEverySecondSecondPass(b *testing.B) {
	s := must(b)(Cron("* * * * * *", loadLoc(b, "Europe/Paris")))
	benchNext(b, s, utc(2026, 10, 25, 1, 30, 0))
}

// BenchmarkCronNextLeapDay searches from 2026 to 2028-02-29.
func BenchmarkCronNextLeapDay(b *testing.B) {
	s := must(b)(Cron("0 0 29 2 *", loadLoc(b, "Europe/Paris")))
	benchNext(b, s, utc(2026, 3, 1, 0, 0, 0))
}

// BenchmarkCronNextLeapDaySkip2100 searches from 2096 to 2104, skipping 2100.
func BenchmarkCronNextLeapDaySkip2100(b *testing.B) {
	s := must(b)(Cron("0 0 29 2 *", loadLoc(b, "America/New_York")))
	benchNext(b, s, utc(2096, 3, 1, 0, 0, 0))
}

func BenchmarkDailyNext(b *testing.B) {
	s := must(b)(Daily(TimeOfDay{2, 30, 0}, nil, loadLoc(b, "America/New_York")))
	benchNext(b, s, utc(2026, 11, 1, 6, 15, 0))
}

func BenchmarkWeeklyNext(b *testing.B) {
	s := must(b)(Daily(TimeOfDay{9, 30, 0}, []time.Weekday{time.Monday}, time.UTC))
	benchNext(b, s, utc(2026, 6, 2, 12, 0, 0))
}

func BenchmarkEveryNext(b *testing.B) {
	anchor := time.Now()
	s := must(b)(Every(time.Second, anchor))
	benchNext(b, s, anchor.Add(100*365*24*time.Hour))
}

func BenchmarkResolve(b *testing.B) {
	loc := loadLoc(b, "Europe/Paris")
	for b.Loop() {
		Resolve(2026, 3, 29, 2, 30, 0, loc)
	}
}

func BenchmarkCronParse(b *testing.B) {
	loc := loadLoc(b, "Europe/Paris")
	for b.Loop() {
		if _, err := Cron("0 */5 9-17 * * MON-FRI", loc); err != nil {
			b.Fatal(err)
		}
	}
}
