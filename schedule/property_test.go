package schedule

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	cron "github.com/netresearch/go-cron"
)

// refSched is a naive model of a Daily or Cron schedule: field bit sets
// checked one civil minute at a time.
type refSched struct {
	second, minute, hour, dom, month, dow uint64
	or                                    bool // classic cron OR of day fields
}

func refFromCron(tb testing.TB, expr string) refSched {
	tb.Helper()
	p := cron.MustNewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor | cron.DowOrDom)
	s, err := p.Parse(expr)
	if err != nil {
		tb.Fatalf("parse %q: %v", expr, err)
	}
	spec := s.(*cron.SpecSchedule)
	const star = 1 << 63
	return refSched{
		second: spec.Second, minute: spec.Minute, hour: spec.Hour,
		dom: spec.Dom, month: spec.Month, dow: cron.NormalizeDOW(spec.Dow),
		or: spec.Dom&star == 0 && spec.Dow&star == 0,
	}
}

func refFromDaily(at TimeOfDay, weekdays []time.Weekday) refSched {
	r := refSched{second: 1 << at.Second, minute: 1 << at.Minute, hour: 1 << at.Hour, dom: ^uint64(0), month: ^uint64(0)}
	for _, d := range weekdays {
		r.dow |= 1 << d
	}
	if len(weekdays) == 0 {
		r.dow = ^uint64(0)
	}
	return r
}

func (r refSched) dayMatches(d time.Time) bool {
	if r.month&(1<<d.Month()) == 0 {
		return false
	}
	dm, wm := r.dom&(1<<d.Day()) != 0, r.dow&(1<<d.Weekday()) != 0
	if r.or {
		return dm || wm
	}
	return dm && wm
}

// next returns the earliest resolved civil slot strictly after t, by
// enumerating civil minutes from three hours before t's wall clock. Slots are
// resolved with the brute-force refZone, and every slot that could resolve
// before the best candidate is examined, so it assumes nothing about the
// order of resolutions. It gives up (zero) after maxDays civil days.
func (r refSched) next(z *refZone, t time.Time, maxDays int) time.Time {
	maxOff := time.Duration(-1 << 62)
	for off := range z.offsets {
		maxOff = max(maxOff, time.Duration(off)*time.Second)
	}
	m := z.wall(t).Add(-3 * time.Hour).Truncate(time.Minute)
	end := m.AddDate(0, 0, maxDays)
	var best time.Time
	for m.Before(end) {
		if !best.IsZero() && m.Add(-maxOff).After(best) {
			break // every later slot resolves after best
		}
		if !r.dayMatches(m) {
			y, mo, d := m.Date()
			m = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if r.hour&(1<<m.Hour()) == 0 {
			m = m.Truncate(time.Hour).Add(time.Hour)
			continue
		}
		if r.minute&(1<<m.Minute()) != 0 {
			for s := range 60 {
				if r.second&(1<<s) == 0 {
					continue
				}
				res := z.resolve(m.Add(time.Duration(s) * time.Second))
				if res.After(t) && (best.IsZero() || res.Before(best)) {
					best = res
				}
			}
		}
		m = m.Add(time.Minute)
	}
	return best
}

type propCase struct {
	name string
	make func(*time.Location) (Schedule, error)
	ref  refSched
	days int // reference search window in days
}

func propCases(tb testing.TB) []propCase {
	var cases []propCase
	for _, d := range []struct {
		at   TimeOfDay
		days []time.Weekday
	}{
		{TimeOfDay{2, 30, 0}, nil},
		{TimeOfDay{1, 30, 0}, nil},
		{TimeOfDay{0, 0, 0}, nil},
		{TimeOfDay{23, 30, 0}, []time.Weekday{time.Saturday, time.Sunday}},
		{TimeOfDay{2, 15, 30}, []time.Weekday{time.Sunday}},
	} {
		cases = append(cases, propCase{
			name: fmt.Sprintf("daily %v %v", d.at, d.days),
			make: func(loc *time.Location) (Schedule, error) { return Daily(d.at, d.days, loc) },
			ref:  refFromDaily(d.at, d.days),
			days: 9,
		})
	}
	for _, expr := range []string{
		"* * * * *", "*/7 * * * *", "30 2 * * *", "*/20 * 1-3 * * *", "0 0,30 0-3 * * SUN",
		"15 1,2 * * 0", "0 0 13 * FRI", "0 30 23 * * *", "*/10 59 1 * * *", "0 0 29 2 *",
	} {
		days := 9
		if expr == "0 0 29 2 *" {
			days = 9 * 366 // 2096-02-29 is followed by 2104-02-29
		}
		cases = append(cases, propCase{
			name: "cron " + expr,
			make: func(loc *time.Location) (Schedule, error) { return Cron(expr, loc) },
			ref:  refFromCron(tb, expr),
			days: days,
		})
	}
	return cases
}

// checkNext verifies the properties of Next at t against the reference.
func checkNext(tb testing.TB, s Schedule, ref refSched, z *refZone, t time.Time, days int) {
	tb.Helper()
	n := s.Next(t)
	if n.IsZero() {
		tb.Fatalf("%s: Next(%v) is zero", s, t)
	}
	if !n.After(t) {
		tb.Fatalf("%s: Next(%v) = %v is not after t", s, t, n)
	}
	if again := s.Next(n.Add(-1)); !again.Equal(n) {
		tb.Fatalf("%s: Next(%v) = %v but Next(that - 1ns) = %v", s, t, n, again)
	}
	if want := ref.next(z, t, days); !n.Equal(want) {
		tb.Fatalf("%s: Next(%v) = %v (%v), reference %v (%v)", s, t.UTC(), n.UTC(), n, want.UTC(), want.In(z.loc))
	}
}

// TestNextProperties checks, for random instants over several years and
// instants near every DST transition, in many zones: Next(t) > t,
// Next(Next(t)-1ns) == Next(t), and agreement with a naive minute-by-minute
// reference (so that no civil slot between t and Next(t) is missed).
func TestNextProperties(t *testing.T) {
	from, to := utc(2026, 1, 1, 0, 0, 0), utc(2031, 1, 1, 0, 0, 0)
	cases := propCases(t)
	for zi, zone := range testZones {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			loc := loadLoc(t, zone)
			z := newRefZone(loc, from.AddDate(0, 0, -3), to.AddDate(2, 0, 0))
			rng := rand.New(rand.NewPCG(uint64(zi), 42))
			var ts []time.Time
			for range 60 {
				ts = append(ts, from.Add(time.Duration(rng.Int64N(int64(to.Sub(from))))))
			}
			// Around each transition: just before/after it and random nearby instants.
			for _, tr := range z.transitions {
				ts = append(ts, tr.Add(-1), tr, tr.Add(-time.Hour), tr.Add(time.Hour))
				for range 3 {
					ts = append(ts, tr.Add(time.Duration(rng.Int64N(int64(6*time.Hour)))-3*time.Hour))
				}
			}
			for _, c := range cases {
				s := must(t)(c.make(loc))
				for _, tt := range ts {
					if !tt.Before(to) {
						continue
					}
					checkNext(t, s, c.ref, z, tt, c.days)
				}
			}
		})
	}
}

// TestUpcomingAgainstReference walks chains of consecutive fires through the
// transition days of several zones and compares each step with the naive
// reference.
func TestUpcomingAgainstReference(t *testing.T) {
	cases := []struct {
		zone, expr string
		from       time.Time
		n          int
	}{
		{"Europe/Paris", "*/5 * * * *", utc(2026, 3, 28, 23, 0, 0), 60},
		{"Europe/Paris", "*/5 * * * *", utc(2026, 10, 24, 22, 0, 0), 80},
		{"America/New_York", "0,30 * * * *", utc(2026, 11, 1, 3, 0, 0), 10},
		{"Australia/Lord_Howe", "*/10 * * * *", utc(2026, 4, 4, 13, 0, 0), 30},
		{"Australia/Lord_Howe", "*/10 * * * *", utc(2026, 10, 3, 14, 0, 0), 30},
		{"Antarctica/Troll", "*/15 * * * *", utc(2026, 3, 28, 23, 0, 0), 20},
		{"Antarctica/Troll", "*/15 * * * *", utc(2026, 10, 24, 22, 0, 0), 30},
		{"America/Santiago", "*/30 * * * *", utc(2026, 9, 6, 2, 0, 0), 10},
		{"America/Santiago", "*/30 * * * *", utc(2026, 4, 5, 1, 0, 0), 10},
	}
	for _, c := range cases {
		loc := loadLoc(t, c.zone)
		s := must(t)(Cron(c.expr, loc))
		ref := refFromCron(t, c.expr)
		z := newRefZone(loc, c.from.AddDate(0, 0, -3), c.from.AddDate(0, 0, 5))
		fires := Upcoming(s, c.from, c.n)
		prev := c.from
		for i, f := range fires {
			if want := ref.next(z, prev, 3); !f.Equal(want) {
				t.Fatalf("%s fire %d after %v: %v, reference %v", s, i, prev.In(loc), f.In(loc), want.In(loc))
			}
			prev = f
		}
		if !sort.SliceIsSorted(fires, func(i, j int) bool { return fires[i].Before(fires[j]) }) {
			t.Errorf("%s: fires not sorted", s)
		}
	}
}

// FuzzNext checks the Next properties for arbitrary instants, zones and
// schedules. Under plain "go test" only the seed corpus runs.
func FuzzNext(f *testing.F) {
	f.Add(utc(2026, 3, 29, 0, 59, 59).Unix(), uint32(999999999), uint8(0), uint8(5))
	f.Add(utc(2026, 10, 25, 1, 30, 0).Unix(), uint32(0), uint8(0), uint8(0))
	f.Add(utc(2026, 11, 1, 6, 15, 0).Unix(), uint32(1), uint8(1), uint8(1))
	f.Add(utc(2026, 10, 3, 15, 29, 59).Unix(), uint32(5), uint8(2), uint8(8))
	f.Add(utc(2026, 9, 6, 3, 59, 59).Unix(), uint32(0), uint8(4), uint8(2))
	f.Add(utc(2027, 6, 1, 12, 0, 0).Unix(), uint32(123), uint8(9), uint8(12))
	cases := propCases(f)
	locs := make([]*time.Location, len(testZones))
	for i, zone := range testZones {
		locs[i] = loadLoc(f, zone)
	}
	f.Fuzz(func(t *testing.T, sec int64, nsec uint32, zi, ci uint8) {
		// Keep to the years where tzdata is well defined and the reference window is cheap.
		const lo, hi = 946684800, 4102444800 // 2000-01-01 .. 2100-01-01
		if sec < lo || sec >= hi {
			sec = lo + (sec%(hi-lo)+(hi-lo))%(hi-lo)
		}
		tt := time.Unix(sec, int64(nsec%1e9)).UTC()
		loc := locs[int(zi)%len(locs)]
		c := cases[int(ci)%len(cases)]
		s := must(t)(c.make(loc))
		z := newRefZone(loc, tt.AddDate(0, 0, -3), tt.AddDate(0, 0, c.days+3))
		checkNext(t, s, c.ref, z, tt, c.days)
	})
}
