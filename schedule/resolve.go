package schedule

import "time"

// zoneWindow bounds how far from a wall-clock time the instants that can
// show it lie. UTC offsets stay well within ±16h (even historical local mean
// times), so 48h is a generous margin.
const zoneWindow = 48 * time.Hour

// maxZonePeriods bounds the number of zone periods walked in one call. Real
// zones change at most a few times within 2*zoneWindow.
const maxZonePeriods = 64

// Resolve maps a civil (wall-clock) date and time in loc to the instant at
// which it fires. Out-of-range fields (e.g. day 32, hour 24) are normalised as
// by time.Date. The result is in loc.
//
// The daylight-saving rules are explicit rather than left to time.Date:
//
//   - a wall-clock time inside a spring-forward gap (one that does not exist)
//     resolves to the first instant after the gap, i.e. the transition
//     instant: Europe/Paris 2026-03-29 02:30 resolves to 03:00 CEST;
//   - a wall-clock time that occurs twice at fall-back resolves to its first
//     occurrence: Europe/Paris 2026-10-25 02:30 resolves to 02:30 CEST.
//
// Both are the same rule: the result is the earliest instant whose wall clock
// in loc reads the given civil time or later. Resolve is therefore
// non-decreasing in the civil time.
//
// Resolve panics if loc is nil, as time.Date does.
func Resolve(year int, month time.Month, day, hour, min, sec int, loc *time.Location) time.Time {
	if loc == nil {
		panic("schedule: Resolve called with a nil *time.Location")
	}
	return resolveWall(time.Date(year, month, day, hour, min, sec, 0, time.UTC), loc)
}

// resolveWall returns the earliest instant whose wall clock in loc is at or
// after the civil time u, where u carries the civil fields in UTC.
//
// Within one zone period [start, end) with UTC offset off, the wall clock of
// instant x is x+off, so the earliest instant of the period reading u or
// later is max(start, u-off), provided it is before end. Walking the periods
// in order, the first that yields such an instant gives the answer. Periods
// starting more than zoneWindow before u cannot (their wall clocks are
// earlier than u), so the walk starts there.
func resolveWall(u time.Time, loc *time.Location) time.Time {
	x := u.Add(-zoneWindow)
	for range maxZonePeriods {
		xl := x.In(loc)
		_, off := xl.Zone()
		start, end := xl.ZoneBounds()
		cand := u.Add(-time.Duration(off) * time.Second)
		if !start.IsZero() && cand.Before(start) {
			cand = start
		}
		if end.IsZero() || cand.Before(end) {
			return cand.In(loc)
		}
		x = end
	}
	// Unreachable for real time zone data; fall back to the standard library.
	y, mo, d := u.Date()
	h, mi, s := u.Clock()
	return time.Date(y, mo, d, h, mi, s, u.Nanosecond(), loc)
}

// firstCivilAfter returns the smallest wall-clock time c (a UTC time carrying
// civil fields, nanosecond precision) such that every civil slot at or after
// c resolves, under resolveWall, to an instant strictly after t, while every
// earlier slot resolves to t or before.
//
// Since resolveWall(c) is the earliest instant whose wall clock reads c or
// later, resolveWall(c) > t exactly when c exceeds every wall-clock reading
// shown up to and including t. That is the wall clock of t itself, unless the
// clocks were set back recently: within the second pass of a repeated hour the
// first pass already reached later readings, up to (excluding) the wall clock
// at which the earlier zone period ended.
func firstCivilAfter(t time.Time, loc *time.Location) time.Time {
	tl := t.In(loc)
	_, off := tl.Zone()
	lb := t.UTC().Add(time.Duration(off)*time.Second + time.Nanosecond)
	start, _ := tl.ZoneBounds()
	for range maxZonePeriods {
		if start.IsZero() || t.Sub(start) >= zoneWindow {
			break
		}
		prev := start.Add(-time.Nanosecond).In(loc)
		_, poff := prev.Zone()
		// The previous period showed wall clocks up to, but excluding, sup.
		if sup := start.UTC().Add(time.Duration(poff) * time.Second); sup.After(lb) {
			lb = sup
		}
		start, _ = prev.ZoneBounds()
	}
	return lb
}
