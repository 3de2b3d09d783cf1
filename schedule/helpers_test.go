package schedule

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// loadLoc loads a time zone from the system tzdata or fails the test.
func loadLoc(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

// utc builds a UTC instant.
func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

// must returns a function that unwraps a (Schedule, error) pair, failing
// the test on error: must(t)(Every(time.Hour, anchor)).
func must(tb testing.TB) func(Schedule, error) Schedule {
	return func(s Schedule, err error) Schedule {
		tb.Helper()
		if err != nil {
			tb.Fatalf("unexpected error: %v", err)
		}
		return s
	}
}

// wantErrNaming checks that err is non-nil and quotes value.
func wantErrNaming(tb testing.TB, err error, value string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("%q: expected an error, got nil", value)
	}
	if !strings.Contains(err.Error(), strconv.Quote(value)) {
		tb.Errorf("error %q does not name the value %q", err, value)
	}
}

// fmtTimes renders instants in UTC for failure messages.
func fmtTimes(ts []time.Time) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.UTC().Format(time.RFC3339Nano)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// checkUpcoming compares Upcoming(s, from, len(want)) with want (as instants).
func checkUpcoming(tb testing.TB, s Schedule, from time.Time, want []time.Time) {
	tb.Helper()
	got := Upcoming(s, from, len(want))
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Equal(want[i])
	}
	if !ok {
		tb.Errorf("%s: Upcoming(%s)\n got %s\nwant %s", s, from.UTC().Format(time.RFC3339), fmtTimes(got), fmtTimes(want))
	}
}
