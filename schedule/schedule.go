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
// latest of them. The count stops at limit (n is then limit). It never
// walks the instants one by one beyond limit: a fixed rate is counted by
// arithmetic, and for calendar schedules the latest instant is found by
// looking back from until in growing steps once limit instants were walked.
func Missed(s Schedule, after, until time.Time, limit int) (latest time.Time, n int) {
	limit = max(limit, 0)
	if sp, ok := s.(spanner); ok {
		latest, count := sp.span(after, until)
		return latest, int(min(count, int64(limit)))
	}
	for t := after; ; {
		next := s.Next(t)
		if next.IsZero() || next.After(until) {
			return latest, n
		}
		latest, t = next, next
		if n++; n >= limit {
			return latestBefore(s, latest, until), min(n, limit)
		}
	}
}

// spanner is implemented by schedules that count their instants in a span
// by arithmetic.
type spanner interface {
	// span returns the latest instant in (after, until] and how many there are.
	span(after, until time.Time) (latest time.Time, n int64)
}

// latestBefore returns the latest instant of s in (known, until], given
// that known is an instant of s at or before until. It looks back from
// until in doubling steps for a start whose next instant is at or before
// until, then walks forward from there: O(log gap) Next calls plus the
// instants of the last step.
func latestBefore(s Schedule, known, until time.Time) time.Time {
	from := known
	for step := time.Second; ; step *= 2 {
		back := until.Add(-step)
		if !back.After(known) || step > 100*365*24*time.Hour {
			break
		}
		if next := s.Next(back); !next.IsZero() && !next.After(until) {
			from = back
			break
		}
	}
	latest := known
	for t := from; ; {
		next := s.Next(t)
		if next.IsZero() || next.After(until) {
			return latest
		}
		latest, t = next, next
	}
}
