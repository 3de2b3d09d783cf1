package schedule

import (
	"fmt"
	"math"
	"time"
)

// every is a fixed-rate schedule: anchor + k*period for k >= 0.
type every struct {
	period time.Duration
	anchor time.Time
}

// Every returns a fixed-rate schedule whose slots are anchor + k*period for
// every integer k >= 0.
//
// Next(t) is the smallest such slot strictly after t, so
// Next(anchor.Add(-1)) == anchor and Next(anchor) == anchor.Add(period).
// Slots are computed by multiplication from the anchor, never by repeated
// addition from the previous fire, so they never drift. They are derived with
// anchor.Add and t.Sub(anchor): when both anchor and t carry a monotonic clock
// reading (as values from time.Now do), the arithmetic uses it and is immune
// to wall-clock jumps, and the returned instants keep the anchor's monotonic
// reading and location.
//
// The period must be positive.
func Every(period time.Duration, anchor time.Time) (Schedule, error) {
	if period <= 0 {
		return nil, fmt.Errorf("schedule: every: period must be positive, got %v", period)
	}
	return &every{period: period, anchor: anchor}, nil
}

// maxEveryRebase bounds the anchor re-basing loop in Next for instants that
// are absurdly far (hundreds of thousands of years) from the anchor.
const maxEveryRebase = 1000

// Next implements Schedule.
func (e *every) Next(t time.Time) time.Time {
	anchor := e.anchor
	if t.Before(anchor) {
		return anchor
	}
	d := t.Sub(anchor)
	// t.Sub saturates after ~292 years; move the anchor forward by an exact
	// multiple of the period until the difference is representable.
	for i := 0; d == time.Duration(math.MaxInt64); i++ {
		if i == maxEveryRebase {
			return time.Time{}
		}
		k := (time.Duration(math.MaxInt64) / 2) / e.period
		anchor = anchor.Add(k * e.period)
		d = t.Sub(anchor)
	}
	// Slots 0..k lie at or before t. k*period <= d cannot overflow; the
	// final period is added separately so that d+period cannot overflow either.
	k := d / e.period
	return anchor.Add(k * e.period).Add(e.period)
}

// String implements Schedule, e.g. "every 1h0m0s".
func (e *every) String() string {
	return "every " + e.period.String()
}

// span implements spanner: the slots in (after, until] by arithmetic.
func (e *every) span(after, until time.Time) (time.Time, int64) {
	first := e.Next(after)
	if first.IsZero() || first.After(until) {
		return time.Time{}, 0
	}
	k := until.Sub(first) / e.period // saturates only beyond 292 years
	return first.Add(k * e.period), int64(k) + 1
}
