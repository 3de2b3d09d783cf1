package supervisor

import (
	"time"
)

// RestartPolicy decides how a crashed task actor is restarted: after an
// exponential backoff, unless it crashed more than MaxFailures times within
// Window, in which case the task is marked failed and left stopped.
type RestartPolicy struct {
	// Initial is the delay before the first restart (default 1s).
	Initial time.Duration
	// Max caps the delay (default 5m).
	Max time.Duration
	// MaxFailures is the number of failures tolerated within Window (default 5).
	MaxFailures int
	// Window is the restart-intensity window (default 10m).
	Window time.Duration
}

// DefaultRestartPolicy returns the default policy: 1s doubling to 5m, failed
// after more than 5 failures in 10 minutes.
func DefaultRestartPolicy() RestartPolicy {
	return RestartPolicy{Initial: time.Second, Max: 5 * time.Minute, MaxFailures: 5, Window: 10 * time.Minute}
}

func (p RestartPolicy) withDefaults() RestartPolicy {
	d := DefaultRestartPolicy()
	if p.Initial > 0 {
		d.Initial = p.Initial
	}
	if p.Max > 0 {
		d.Max = p.Max
	}
	if p.MaxFailures > 0 {
		d.MaxFailures = p.MaxFailures
	}
	if p.Window > 0 {
		d.Window = p.Window
	}
	if d.Max < d.Initial {
		d.Max = d.Initial
	}
	return d
}

// failures is the crash history of one task.
type failures struct {
	at []time.Time // crash times within the window, oldest first
}

// record notes a crash at now and returns the delay before the restart, or
// giveUp when the intensity limit is exceeded. The delay doubles with each
// crash still inside the window: Initial, 2*Initial, 4*Initial, ... up to Max.
func (p RestartPolicy) record(f *failures, now time.Time) (delay time.Duration, giveUp bool) {
	cut := 0
	for cut < len(f.at) && now.Sub(f.at[cut]) >= p.Window {
		cut++
	}
	f.at = append(f.at[cut:], now)
	n := len(f.at)
	if n > p.MaxFailures {
		return 0, true
	}
	delay = p.Initial
	for i := 1; i < n && delay < p.Max; i++ {
		delay *= 2
	}
	return min(delay, p.Max), false
}
