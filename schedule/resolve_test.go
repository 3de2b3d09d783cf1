package schedule

import (
	"fmt"
	"testing"
	"time"
)

func TestResolveTable(t *testing.T) {
	type civ struct {
		y          int
		mo         time.Month
		d, h, m, s int
	}
	cases := []struct {
		zone string
		in   civ
		want time.Time // UTC
		note string
	}{
		// Europe/Paris 2026: 02:00 CET -> 03:00 CEST on 29 March; 03:00 CEST -> 02:00 CET on 25 October.
		{"Europe/Paris", civ{2026, 3, 29, 1, 59, 59}, utc(2026, 3, 29, 0, 59, 59), "last second before the gap"},
		{"Europe/Paris", civ{2026, 3, 29, 2, 0, 0}, utc(2026, 3, 29, 1, 0, 0), "gap start"},
		{"Europe/Paris", civ{2026, 3, 29, 2, 30, 0}, utc(2026, 3, 29, 1, 0, 0), "inside gap"},
		{"Europe/Paris", civ{2026, 3, 29, 2, 59, 59}, utc(2026, 3, 29, 1, 0, 0), "gap end"},
		{"Europe/Paris", civ{2026, 3, 29, 3, 0, 0}, utc(2026, 3, 29, 1, 0, 0), "first time after the gap"},
		{"Europe/Paris", civ{2026, 3, 29, 3, 0, 1}, utc(2026, 3, 29, 1, 0, 1), "after the gap"},
		{"Europe/Paris", civ{2026, 10, 25, 1, 59, 59}, utc(2026, 10, 24, 23, 59, 59), "before the overlap"},
		{"Europe/Paris", civ{2026, 10, 25, 2, 0, 0}, utc(2026, 10, 25, 0, 0, 0), "overlap start, first pass"},
		{"Europe/Paris", civ{2026, 10, 25, 2, 30, 0}, utc(2026, 10, 25, 0, 30, 0), "overlap, first pass (CEST)"},
		{"Europe/Paris", civ{2026, 10, 25, 2, 59, 59}, utc(2026, 10, 25, 0, 59, 59), "overlap end, first pass"},
		{"Europe/Paris", civ{2026, 10, 25, 3, 0, 0}, utc(2026, 10, 25, 2, 0, 0), "after the overlap (CET)"},
		{"Europe/Paris", civ{2027, 3, 28, 2, 30, 0}, utc(2027, 3, 28, 1, 0, 0), "2027 gap"},
		{"Europe/Paris", civ{2027, 10, 31, 2, 30, 0}, utc(2027, 10, 31, 0, 30, 0), "2027 overlap"},
		{"Europe/Paris", civ{2027, 10, 31, 3, 30, 0}, utc(2027, 10, 31, 2, 30, 0), "2027 after overlap"},
		// America/New_York: gap 02:00-03:00 on 8 March 2026 and 14 March 2027; overlap 01:00-02:00 on 1 November 2026 and 7 November 2027.
		{"America/New_York", civ{2026, 3, 8, 1, 59, 59}, utc(2026, 3, 8, 6, 59, 59), "before the gap"},
		{"America/New_York", civ{2026, 3, 8, 2, 0, 0}, utc(2026, 3, 8, 7, 0, 0), "gap start"},
		{"America/New_York", civ{2026, 3, 8, 2, 30, 0}, utc(2026, 3, 8, 7, 0, 0), "inside gap"},
		{"America/New_York", civ{2026, 3, 8, 3, 0, 0}, utc(2026, 3, 8, 7, 0, 0), "after the gap"},
		{"America/New_York", civ{2026, 11, 1, 0, 59, 59}, utc(2026, 11, 1, 4, 59, 59), "before the overlap"},
		{"America/New_York", civ{2026, 11, 1, 1, 0, 0}, utc(2026, 11, 1, 5, 0, 0), "overlap start (EDT)"},
		{"America/New_York", civ{2026, 11, 1, 1, 30, 0}, utc(2026, 11, 1, 5, 30, 0), "overlap (EDT)"},
		{"America/New_York", civ{2026, 11, 1, 2, 0, 0}, utc(2026, 11, 1, 7, 0, 0), "after the overlap (EST)"},
		{"America/New_York", civ{2027, 3, 14, 2, 30, 0}, utc(2027, 3, 14, 7, 0, 0), "2027 gap"},
		{"America/New_York", civ{2027, 11, 7, 1, 30, 0}, utc(2027, 11, 7, 5, 30, 0), "2027 overlap"},
		// Australia/Lord_Howe: 30-minute shift. +11 -> +10:30 at 02:00 on 5 April 2026
		// (01:30-02:00 repeats); +10:30 -> +11 at 02:00 on 4 October 2026 (02:00-02:30 missing).
		{"Australia/Lord_Howe", civ{2026, 4, 5, 1, 29, 59}, utc(2026, 4, 4, 14, 29, 59), "before the overlap"},
		{"Australia/Lord_Howe", civ{2026, 4, 5, 1, 30, 0}, utc(2026, 4, 4, 14, 30, 0), "overlap start (+11)"},
		{"Australia/Lord_Howe", civ{2026, 4, 5, 1, 45, 0}, utc(2026, 4, 4, 14, 45, 0), "overlap (+11)"},
		{"Australia/Lord_Howe", civ{2026, 4, 5, 2, 0, 0}, utc(2026, 4, 4, 15, 30, 0), "after the overlap (+10:30)"},
		{"Australia/Lord_Howe", civ{2026, 10, 4, 1, 59, 59}, utc(2026, 10, 3, 15, 29, 59), "before the gap"},
		{"Australia/Lord_Howe", civ{2026, 10, 4, 2, 0, 0}, utc(2026, 10, 3, 15, 30, 0), "gap start"},
		{"Australia/Lord_Howe", civ{2026, 10, 4, 2, 15, 0}, utc(2026, 10, 3, 15, 30, 0), "inside gap"},
		{"Australia/Lord_Howe", civ{2026, 10, 4, 2, 30, 0}, utc(2026, 10, 3, 15, 30, 0), "after the gap"},
		{"Australia/Lord_Howe", civ{2027, 4, 4, 1, 45, 0}, utc(2027, 4, 3, 14, 45, 0), "2027 overlap"},
		{"Australia/Lord_Howe", civ{2027, 10, 3, 2, 15, 0}, utc(2027, 10, 2, 15, 30, 0), "2027 gap"},
		// Antarctica/Troll: a two-hour shift.
		{"Antarctica/Troll", civ{2026, 3, 29, 2, 0, 0}, utc(2026, 3, 29, 1, 0, 0), "2h gap"},
		{"Antarctica/Troll", civ{2026, 10, 25, 1, 30, 0}, utc(2026, 10, 24, 23, 30, 0), "2h overlap"},
		// America/Santiago: midnight does not exist on 6 September 2026, 23:xx repeats on 4 April 2026.
		{"America/Santiago", civ{2026, 9, 6, 0, 0, 0}, utc(2026, 9, 6, 4, 0, 0), "midnight gap"},
		{"America/Santiago", civ{2026, 4, 4, 23, 30, 0}, utc(2026, 4, 5, 2, 30, 0), "evening overlap (-03)"},
		// Europe/Dublin uses negative DST in tzdata; the wall clock behaves as usual.
		{"Europe/Dublin", civ{2026, 3, 29, 1, 30, 0}, utc(2026, 3, 29, 1, 0, 0), "gap"},
		{"Europe/Dublin", civ{2026, 10, 25, 1, 30, 0}, utc(2026, 10, 25, 0, 30, 0), "overlap"},
		// Pacific/Apia skipped 30 December 2011 entirely (-10 -> +14).
		{"Pacific/Apia", civ{2011, 12, 30, 12, 0, 0}, utc(2011, 12, 30, 10, 0, 0), "skipped day"},
		{"Pacific/Apia", civ{2011, 12, 31, 0, 0, 0}, utc(2011, 12, 30, 10, 0, 0), "first instant after"},
		// Zones without DST.
		{"UTC", civ{2026, 3, 29, 2, 30, 0}, utc(2026, 3, 29, 2, 30, 0), "UTC"},
		{"Asia/Tokyo", civ{2026, 3, 29, 2, 30, 0}, utc(2026, 3, 28, 17, 30, 0), "Tokyo"},
		{"Asia/Tokyo", civ{2026, 10, 25, 2, 30, 0}, utc(2026, 10, 24, 17, 30, 0), "Tokyo"},
		{"Asia/Kathmandu", civ{2026, 1, 1, 0, 0, 0}, utc(2025, 12, 31, 18, 15, 0), "+05:45"},
		// Leap days and normalisation.
		{"Europe/Paris", civ{2028, 2, 29, 12, 0, 0}, utc(2028, 2, 29, 11, 0, 0), "leap day"},
		{"UTC", civ{2100, 2, 29, 0, 0, 0}, utc(2100, 3, 1, 0, 0, 0), "2100 is not a leap year"},
		{"UTC", civ{2026, 1, 32, 0, 0, 0}, utc(2026, 2, 1, 0, 0, 0), "day 32"},
		{"UTC", civ{2026, 13, 1, 0, 0, 0}, utc(2027, 1, 1, 0, 0, 0), "month 13"},
		{"UTC", civ{2026, 3, 1, -1, 0, 0}, utc(2026, 2, 28, 23, 0, 0), "hour -1"},
		{"UTC", civ{2026, 12, 31, 23, 59, 60}, utc(2027, 1, 1, 0, 0, 0), "second 60"},
		{"Europe/Paris", civ{2026, 3, 28, 26, 30, 0}, utc(2026, 3, 29, 1, 0, 0), "hour 26 lands in the gap"},
		{"Europe/Paris", civ{2026, 2, 57, 2, 30, 0}, utc(2026, 3, 29, 1, 0, 0), "day 57 of February lands in the gap"},
		{"America/New_York", civ{2026, 10, 32, 1, 30, 0}, utc(2026, 11, 1, 5, 30, 0), "31 October + 1 lands in the overlap"},
	}
	for _, c := range cases {
		loc := loadLoc(t, c.zone)
		got := Resolve(c.in.y, c.in.mo, c.in.d, c.in.h, c.in.m, c.in.s, loc)
		if !got.Equal(c.want) {
			t.Errorf("%s %v (%s): got %v (%v), want %v", c.zone, c.in, c.note, got.UTC(), got, c.want)
		}
		if got.Location() != loc {
			t.Errorf("%s %v: result location %v, want %v", c.zone, c.in, got.Location(), loc)
		}
	}
}

func TestResolveNilLocationPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Resolve with nil location did not panic")
		}
	}()
	Resolve(2026, 1, 1, 0, 0, 0, nil)
}

// testZones are the zones used by the exhaustive and property tests: 1h,
// 30min and 2h shifts, southern and northern hemispheres, negative DST,
// midnight transitions, frequent changes and zones without DST.
var testZones = []string{
	"Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Antarctica/Troll",
	"America/Santiago", "Europe/Dublin", "America/St_Johns", "Africa/Casablanca",
	"Asia/Tokyo", "Asia/Kathmandu", "UTC",
}

// TestResolveExhaustive compares Resolve with an independent brute-force
// reference for every civil minute of every day of 2026 and 2027 on which
// the offset changes, and with time.Date at unambiguous times on the other
// days. It also checks that Resolve is non-decreasing in the civil time.
func TestResolveExhaustive(t *testing.T) {
	for _, zone := range testZones {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			loc := loadLoc(t, zone)
			transitionDays := 0
			for day := utc(2026, 1, 1, 0, 0, 0); day.Year() < 2028; day = day.AddDate(0, 0, 1) {
				y, mo, d := day.Date()
				_, o1 := time.Date(y, mo, d, 0, 0, 0, 0, loc).Add(-26 * time.Hour).Zone()
				_, o2 := time.Date(y, mo, d, 0, 0, 0, 0, loc).Add(26 * time.Hour).Zone()
				if o1 == o2 {
					// Quiet day: a few samples, which time.Date handles unambiguously.
					for _, h := range []int{0, 5, 12, 23} {
						want := time.Date(y, mo, d, h, 17, 42, 0, loc)
						if got := Resolve(y, mo, d, h, 17, 42, loc); !got.Equal(want) {
							t.Fatalf("%v %02d:17:42: got %v, want %v", day.Format(time.DateOnly), h, got, want)
						}
					}
					continue
				}
				transitionDays++
				ref := newRefZone(loc, day.Add(-48*time.Hour), day.Add(72*time.Hour))
				var prev time.Time
				for m := 0; m < 24*60; m++ {
					u := day.Add(time.Duration(m) * time.Minute)
					got := Resolve(y, mo, d, 0, m, 0, loc)
					if want := ref.resolve(u); !got.Equal(want) {
						t.Fatalf("%v: got %v, reference %v", u.Format("2006-01-02 15:04"), got, want.In(loc))
					}
					if got.Before(prev) {
						t.Fatalf("%v: Resolve decreased: %v after %v", u, got, prev)
					}
					prev = got
				}
			}
			if zone != "UTC" && zone != "Asia/Tokyo" && zone != "Asia/Kathmandu" && transitionDays == 0 {
				t.Errorf("no transition found in %s; is tzdata installed?", zone)
			}
		})
	}
}

// refZone is a brute-force model of a time zone over a window: the set of
// UTC offsets in use, found by sampling, and the transitions between them,
// found by bisection. It does not use ZoneBounds.
type refZone struct {
	loc         *time.Location
	offsets     map[int]bool
	transitions []time.Time
	from, to    time.Time
}

func newRefZone(loc *time.Location, from, to time.Time) *refZone {
	z := &refZone{loc: loc, offsets: map[int]bool{}, from: from, to: to}
	const step = 15 * time.Minute
	_, prevOff := from.In(loc).Zone()
	z.offsets[prevOff] = true
	for x := from.Add(step); !x.After(to); x = x.Add(step) {
		_, off := x.In(loc).Zone()
		z.offsets[off] = true
		if off != prevOff {
			lo, hi := x.Add(-step), x // offset(lo) == prevOff, offset(hi) == off
			for hi.Sub(lo) > 1 {
				mid := lo.Add(hi.Sub(lo) / 2)
				if _, o := mid.In(loc).Zone(); o == prevOff {
					lo = mid
				} else {
					hi = mid
				}
			}
			z.transitions = append(z.transitions, hi)
		}
		prevOff = off
	}
	return z
}

// wall returns the wall clock of x as a UTC time with the same fields.
func (z *refZone) wall(x time.Time) time.Time {
	_, off := x.In(z.loc).Zone()
	return x.UTC().Add(time.Duration(off) * time.Second)
}

// resolve applies the DST rules by brute force: the earliest instant showing
// the civil time u (carried in UTC); failing that (a gap), the transition
// instant at which the clock jumps over u.
func (z *refZone) resolve(u time.Time) time.Time {
	var best time.Time
	for off := range z.offsets {
		x := u.Add(-time.Duration(off) * time.Second)
		if z.wall(x).Equal(u) && (best.IsZero() || x.Before(best)) {
			best = x
		}
	}
	if !best.IsZero() {
		return best
	}
	for _, tr := range z.transitions {
		before := z.wall(tr.Add(-1))
		after := z.wall(tr)
		if before.Before(u) && !after.Before(u) {
			return tr
		}
	}
	panic(fmt.Sprintf("refZone: cannot resolve %v in %v", u, z.loc))
}
