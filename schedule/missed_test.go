package schedule

import (
	"math/rand/v2"
	"testing"
	"time"
)

// walkMissed is the definition Missed must agree with: every instant in
// (after, until], one by one.
func walkMissed(s Schedule, after, until time.Time) (latest time.Time, n int) {
	for t := after; ; {
		next := s.Next(t)
		if next.IsZero() || next.After(until) {
			return latest, n
		}
		latest, t, n = next, next, n+1
	}
}

// countingSchedule counts the Next calls made on the schedule it wraps.
type countingSchedule struct {
	Schedule
	calls int
}

func (c *countingSchedule) Next(t time.Time) time.Time {
	c.calls++
	return c.Schedule.Next(t)
}

func TestMissedAgreesWithTheWalk(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	anchor := utc(2026, time.March, 28, 23, 59, 58)
	schedules := map[string]Schedule{
		"every 7s":          must(t)(Every(7*time.Second, anchor)),
		"every 1h":          must(t)(Every(time.Hour, anchor)),
		"daily 02:30 Paris": must(t)(Daily(TimeOfDay{Hour: 2, Minute: 30}, nil, paris)),
		"weekly Mon/Fri":    must(t)(Daily(TimeOfDay{Hour: 9}, []time.Weekday{time.Monday, time.Friday}, paris)),
		"cron every 5s":     must(t)(Cron("*/5 * * * * *", paris)),
		"cron 15 3 * * *":   must(t)(Cron("0 15 3 * * *", paris)),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for name, s := range schedules {
		for range 100 {
			after := anchor.Add(time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))
			until := after.Add(time.Duration(rng.Int64N(int64(36 * time.Hour))))
			wantLatest, wantN := walkMissed(s, after, until)
			for _, limit := range []int{0, 1, 3, 100, 1_000_000} {
				latest, n := Missed(s, after, until, limit)
				if !latest.Equal(wantLatest) || n != min(wantN, limit) {
					t.Fatalf("%s: Missed(%s, %s, %d) = %s, %d; the walk gives %s, %d (capped at %d)",
						name, after, until, limit, latest, n, wantLatest, wantN, limit)
				}
			}
		}
	}
}

func TestMissedIsCheapAfterALongOutage(t *testing.T) {
	anchor := utc(2026, time.January, 1, 0, 0, 0)
	after := anchor.Add(time.Second)
	until := after.Add(31 * 24 * time.Hour) // a month down: 2.7M slots of a 1s schedule
	// A fixed rate is counted by arithmetic (span), whatever the span.
	var _ spanner = must(t)(Every(time.Second, anchor)).(*every)
	latest, n := Missed(must(t)(Every(time.Second, anchor)), after, until.Add(100*365*24*time.Hour), 100_000)
	if n != 100_000 || !latest.Equal(until.Add(100*365*24*time.Hour)) {
		t.Errorf("every 1s over a century: Missed = %s, %d", latest, n)
	}
	cron := &countingSchedule{Schedule: must(t)(Cron("* * * * * *", time.UTC))}
	latest, n = Missed(cron, after, until, 1000)
	if n != 1000 || !latest.Equal(until) {
		t.Errorf("cron every second: Missed = %s, %d; want %s, 1000", latest, n, until)
	}
	if cron.calls > 1100 {
		t.Errorf("cron every second: %d Next calls for a limit of 1000; the walk must stop at the limit", cron.calls)
	}
}
