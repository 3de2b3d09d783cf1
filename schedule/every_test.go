package schedule

import (
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestEveryPeriodErrors(t *testing.T) {
	for _, p := range []time.Duration{0, -1, -time.Hour} {
		s, err := Every(p, time.Now())
		if err == nil || s != nil {
			t.Errorf("Every(%v): got (%v, %v), want an error", p, s, err)
			continue
		}
		if !strings.Contains(err.Error(), p.String()) {
			t.Errorf("Every(%v): error %q does not name the period", p, err)
		}
	}
}

func TestEveryString(t *testing.T) {
	for p, want := range map[time.Duration]string{
		time.Hour:                       "every 1h0m0s",
		90 * time.Second:                "every 1m30s",
		time.Nanosecond:                 "every 1ns",
		36*time.Hour + time.Millisecond: "every 36h0m0.001s",
	} {
		s := must(t)(Every(p, time.Unix(0, 0)))
		if got := s.String(); got != want {
			t.Errorf("Every(%v).String() = %q, want %q", p, got, want)
		}
	}
}

// TestEverySecondsOverDay checks all 86400 one-second slots of a day (with an
// anchor that has a fractional second, on a DST day) against anchor + k*period.
func TestEverySecondsOverDay(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	anchor := time.Date(2026, 3, 28, 23, 0, 0, 123456789, paris)
	s := must(t)(Every(time.Second, anchor))
	const n = 86400
	// Chained fires.
	got := Upcoming(s, anchor.Add(-1), n+1)
	if len(got) != n+1 {
		t.Fatalf("Upcoming returned %d instants, want %d", len(got), n+1)
	}
	for k := 0; k <= n; k++ {
		want := anchor.Add(time.Duration(k) * time.Second)
		if got[k] != want { // exact: same wall, location, no drift
			t.Fatalf("slot %d: got %v, want %v", k, got[k], want)
		}
	}
	// Queries just before, on and between slots.
	for k := 0; k < n; k++ {
		slot := anchor.Add(time.Duration(k) * time.Second)
		next := anchor.Add(time.Duration(k+1) * time.Second)
		if g := s.Next(slot.Add(-1)); !g.Equal(slot) {
			t.Fatalf("Next(slot %d - 1ns) = %v, want %v", k, g, slot)
		}
		if g := s.Next(slot); !g.Equal(next) {
			t.Fatalf("Next(slot %d) = %v, want %v", k, g, next)
		}
		if g := s.Next(slot.Add(time.Second / 2)); !g.Equal(next) {
			t.Fatalf("Next(slot %d + 0.5s) = %v, want %v", k, g, next)
		}
	}
}

// TestEveryHourlyOverYear checks a year of hourly slots. Fixed-rate slots are
// absolute durations: across a DST change the wall-clock reading shifts.
func TestEveryHourlyOverYear(t *testing.T) {
	ny := loadLoc(t, "America/New_York")
	anchor := time.Date(2026, 1, 1, 0, 30, 0, 0, ny)
	s := must(t)(Every(time.Hour, anchor))
	const n = 365 * 24
	got := Upcoming(s, anchor.Add(-time.Nanosecond), n+1)
	for k := 0; k <= n; k++ {
		want := anchor.Add(time.Duration(k) * time.Hour)
		if !got[k].Equal(want) {
			t.Fatalf("slot %d: got %v, want %v", k, got[k], want)
		}
		if m := got[k].Minute(); m != 30 {
			t.Fatalf("slot %d: minute %d, want 30", k, m)
		}
	}
	// 2026-03-08 is the spring-forward day: slot at 01:30 EST is followed by 03:30 EDT.
	at := s.Next(time.Date(2026, 3, 8, 1, 0, 0, 0, ny))
	if want := time.Date(2026, 3, 8, 1, 30, 0, 0, ny); !at.Equal(want) {
		t.Fatalf("got %v want %v", at, want)
	}
	if after := s.Next(at); after.In(ny).Hour() != 3 || after.Sub(at) != time.Hour {
		t.Errorf("after %v got %v, want 03:30 EDT one hour later", at, after.In(ny))
	}
}

func TestEveryEdges(t *testing.T) {
	anchor := time.Date(2026, 5, 17, 10, 0, 0, 0, time.UTC)
	p := 7 * time.Minute
	s := must(t)(Every(p, anchor))
	cases := []struct {
		name string
		t    time.Time
		want time.Time
	}{
		{"1ns before anchor", anchor.Add(-1), anchor},
		{"years before anchor", anchor.AddDate(-30, 0, 0), anchor},
		{"zero time", time.Time{}, anchor},
		{"on anchor", anchor, anchor.Add(p)},
		{"on slot 5", anchor.Add(5 * p), anchor.Add(6 * p)},
		{"just before slot 5", anchor.Add(5*p - 1), anchor.Add(5 * p)},
		{"just after slot 5", anchor.Add(5*p + 1), anchor.Add(6 * p)},
		{"other location", anchor.Add(5 * p).In(loadLoc(t, "Asia/Tokyo")), anchor.Add(6 * p)},
	}
	for _, c := range cases {
		if got := s.Next(c.t); !got.Equal(c.want) {
			t.Errorf("%s: Next(%v) = %v, want %v", c.name, c.t, got, c.want)
		}
	}
	if got := s.Next(anchor); got.Location() != time.UTC {
		t.Errorf("result location %v, want the anchor's", got.Location())
	}
}

// TestEveryHugeK exercises very large slot numbers: 1ns periods a century
// after the anchor and periods longer than the distance to the anchor.
func TestEveryHugeK(t *testing.T) {
	anchor := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	centuryLater := time.Date(2099, 12, 31, 23, 59, 59, 999999998, time.UTC)
	for _, p := range []time.Duration{1, 3, 7, time.Microsecond + 1, time.Second, 13 * time.Hour, 97 * 365 * 24 * time.Hour, 150 * 365 * 24 * time.Hour} {
		s := must(t)(Every(p, anchor))
		for _, tt := range []time.Time{centuryLater, centuryLater.Add(-p), anchor.AddDate(50, 0, 0)} {
			got := s.Next(tt)
			if !got.After(tt) || got.Sub(tt) > p {
				t.Errorf("period %v: Next(%v) = %v, want within (t, t+period]", p, tt, got)
				continue
			}
			if d := got.Sub(anchor); d%p != 0 {
				t.Errorf("period %v: Next(%v) = %v is not on the grid (offset %v)", p, tt, got, d%p)
			}
		}
	}
	// 1ns period: the next slot is exactly t+1ns.
	s := must(t)(Every(1, anchor))
	if got, want := s.Next(centuryLater), centuryLater.Add(1); !got.Equal(want) {
		t.Errorf("got %v want %v", got, want)
	}
}

// TestEveryBeyondDurationRange covers instants so far from the anchor that
// t.Sub(anchor) saturates (about 292 years).
func TestEveryBeyondDurationRange(t *testing.T) {
	anchor := time.Date(2000, 1, 1, 0, 0, 0, 500, time.UTC)
	for _, p := range []time.Duration{time.Hour, 7 * time.Second, 1} {
		s := must(t)(Every(p, anchor))
		tt := time.Date(2400, 6, 1, 12, 0, 0, 0, time.UTC)
		got := s.Next(tt)
		if !got.After(tt) || got.Sub(tt) > p {
			t.Fatalf("period %v: Next(%v) = %v, want within (t, t+period]", p, tt, got)
		}
		// Check grid membership with exact integer arithmetic.
		diff := new(big.Int).Mul(big.NewInt(got.Unix()-anchor.Unix()), big.NewInt(int64(time.Second)))
		diff.Add(diff, big.NewInt(int64(got.Nanosecond()-anchor.Nanosecond())))
		if r := new(big.Int).Mod(diff, big.NewInt(int64(p))); r.Sign() != 0 {
			t.Errorf("period %v: %v is not on the grid (remainder %v ns)", p, got, r)
		}
	}
}

// TestEveryMonotonic documents that the anchor's monotonic clock reading is
// kept. When both the anchor and t carry a monotonic reading (values derived
// from time.Now), t.Sub(anchor) and t.Before(anchor) use it, so a wall-clock
// step (NTP, manual change) does not move the slots. A genuine wall-clock
// jump cannot be simulated in a test, since no API builds a Time whose wall
// and monotonic readings disagree; we check instead that results carry the
// monotonic reading and are computed from it.
func TestEveryMonotonic(t *testing.T) {
	anchor := time.Now()
	if !strings.Contains(anchor.String(), "m=") {
		t.Skip("time.Now carries no monotonic reading on this platform")
	}
	s := must(t)(Every(time.Minute, anchor))
	later := anchor.Add(90 * time.Second) // keeps the monotonic reading
	got := s.Next(later)
	if want := anchor.Add(2 * time.Minute); got != want { // == compares wall, monotonic and location
		t.Errorf("Next = %v, want %v", got, want)
	}
	if !strings.Contains(got.String(), "m=") {
		t.Errorf("Next lost the anchor's monotonic reading: %v", got)
	}
	if d := got.Sub(later); d != 30*time.Second {
		t.Errorf("monotonic difference %v, want 30s", d)
	}
	// A query without monotonic reading falls back to the wall clock and agrees.
	if g := s.Next(later.Round(0)); !g.Equal(got) {
		t.Errorf("wall-clock query: %v, want %v", g, got)
	}
}

func TestMissed(t *testing.T) {
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Every(time.Hour, anchor)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		after, until time.Time
		limit        int
		latest       time.Time
		n            int
	}{
		{anchor, anchor.Add(30 * time.Minute), 10, time.Time{}, 0},
		{anchor, anchor.Add(time.Hour), 10, anchor.Add(time.Hour), 1},
		{anchor, anchor.Add(5*time.Hour + time.Minute), 10, anchor.Add(5 * time.Hour), 5},
		{anchor.Add(2 * time.Hour), anchor.Add(5 * time.Hour), 10, anchor.Add(5 * time.Hour), 3},
		{anchor, anchor.Add(100 * time.Hour), 10, anchor.Add(100 * time.Hour), 10},
	}
	for _, tc := range cases {
		latest, n := Missed(s, tc.after, tc.until, tc.limit)
		if !latest.Equal(tc.latest) || n != tc.n {
			t.Errorf("Missed(%v, %v, %d) = %v, %d; want %v, %d", tc.after, tc.until, tc.limit, latest, n, tc.latest, tc.n)
		}
	}
}
