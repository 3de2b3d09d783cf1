// Package schedule implements the fire-time arithmetic of the job scheduler.
//
// It offers three kinds of schedules, all behind the [Schedule] interface:
//
//   - [Every]: fixed-rate slots anchor + k*period, computed by multiplication
//     so that they never drift;
//   - [Daily]: once a day (or on selected weekdays) at a wall-clock time in a
//     time zone;
//   - [Cron]: a 5- or 6-field cron expression evaluated in a time zone.
//
// Daily and Cron schedules are defined on the civil (wall-clock) calendar and
// share one set of daylight-saving rules, implemented by [Resolve]:
//
//   - a wall-clock time that does not exist because the clocks spring forward
//     fires once, at the first instant after the gap (the transition
//     instant itself);
//   - a wall-clock time that occurs twice because the clocks fall back fires
//     once, at its first occurrence.
//
// Consequently Next is strictly increasing, every civil slot fires at most
// once, the civil slots inside a gap collapse into a single fire, and the
// second pass through a repeated hour fires nothing.
//
// The package is pure: no goroutines, timers, global state or logging. Time
// zone data come from the system (or from a binary that imports time/tzdata).
package schedule

import "time"

// horizonYears is how far ahead (in civil years) Next searches for calendar
// based schedules before giving up.
const horizonYears = 10

// Schedule yields the instants at which a task fires.
type Schedule interface {
	// Next returns the first fire instant strictly after t, or the zero Time
	// if there is none within the search horizon (10 years).
	Next(t time.Time) time.Time
	// String describes the schedule in words, e.g. "every 1h0m0s",
	// "daily at 10:00:00 (Europe/Paris)",
	// "weekly on Monday, Friday at 09:30:00 (UTC)",
	// "cron \"0 */5 * * * *\" (America/New_York)".
	String() string
}

// Upcoming returns the next n fire instants of s strictly after t, in
// increasing order. It returns fewer than n instants if the schedule ends
// (Next returns the zero Time), and nil if n <= 0.
func Upcoming(s Schedule, t time.Time, n int) []time.Time {
	if n <= 0 {
		return nil
	}
	out := make([]time.Time, 0, min(n, 1024))
	for len(out) < n {
		next := s.Next(t)
		if next.IsZero() || !next.After(t) {
			break
		}
		out = append(out, next)
		t = next
	}
	return out
}

// Missed counts the fire instants of s in (after, until] and returns the
// latest of them. The count stops at limit (n is then limit), but the walk
// goes on to find the latest instant.
func Missed(s Schedule, after, until time.Time, limit int) (latest time.Time, n int) {
	for t := after; ; {
		next := s.Next(t)
		if next.IsZero() || next.After(until) {
			return latest, n
		}
		if n < limit {
			n++
		}
		latest, t = next, next
	}
}
