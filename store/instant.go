package store

import "time"

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
