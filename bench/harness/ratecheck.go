package harness

import (
	"slices"
	"time"
)

// RateCheck is what a sequence of call instants says about a token-bucket
// rate limit of Rate per second with burst Burst.
type RateCheck struct {
	Calls int `json:"calls"`
	// Achieved is the steady rate: the calls after the initial burst divided
	// by the time from the first call to the last, (Calls-Burst)/(t_last-t_first).
	// A full bucket admits Burst calls at once, then one per 1/Rate.
	Achieved float64 `json:"achieved"`
	// MaxWindow is the largest number of calls in any window [t_i, t_j]
	// minus Rate*(t_j-t_i): a token bucket never lets it exceed Burst.
	MaxWindow float64 `json:"max_window"`
	// WorstWindowLen is the length of the window where MaxWindow was reached.
	WorstWindowLen time.Duration `json:"worst_window_ns"`
}

// CheckRate examines call instants (any order; they are sorted in place)
// against a limit of rate per second with the given burst.
func CheckRate(at []time.Time, rate float64, burst int) RateCheck {
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	rc := RateCheck{Calls: len(at)}
	if len(at) < 2 {
		rc.MaxWindow = float64(len(at))
		return rc
	}
	span := at[len(at)-1].Sub(at[0]).Seconds()
	if span > 0 {
		rc.Achieved = float64(len(at)-burst) / span
	}
	// Calls in [t_i, t_j] = j-i+1; with g(x) = x - rate*t_x, the excess is
	// g(j) - g(i) + 1, maximised over i <= j by keeping the running minimum
	// of g.
	t0 := at[0]
	g := func(x int) float64 { return float64(x) - rate*at[x].Sub(t0).Seconds() }
	minG, minI := g(0), 0
	rc.MaxWindow = 1
	for j := range at {
		gj := g(j)
		if gj < minG {
			minG, minI = gj, j
		}
		if w := gj - minG + 1; w > rc.MaxWindow {
			rc.MaxWindow, rc.WorstWindowLen = w, at[j].Sub(at[minI])
		}
	}
	return rc
}
