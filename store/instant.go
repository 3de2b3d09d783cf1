package store

import (
	"fmt"
	"math"
	"time"
)

// UnixNanos is how the stores keep an instant: t as nanoseconds since the
// Unix epoch, and the zero time (no instant) as 0.
func UnixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromUnixNanos is the inverse of UnixNanos: 0 is the zero time, any other
// n that instant, in UTC.
func FromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// minTime and maxTime bound the instants UnixNanos keeps (exclusive): after
// the Unix epoch, since 0 means unset, and within int64 nanoseconds.
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// checkInstant returns an error, saying t and the range, when t is outside
// what UnixNanos keeps to the nanosecond.
func checkInstant(t time.Time) error {
	if t.After(minTime) && t.Before(maxTime) {
		return nil
	}
	return fmt.Errorf("%s out of range (after %s, before %s)",
		t.Format(time.RFC3339Nano), minTime.Format(time.RFC3339), maxTime.Format(time.RFC3339))
}
