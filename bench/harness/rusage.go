package harness

import (
	"syscall"
	"time"
)

// Usage is a snapshot of this process's resource usage (all threads).
type Usage struct {
	CPU       time.Duration // user + system time
	MaxRSS    int64         // peak resident set size, in bytes
	Switches  int64         // voluntary + involuntary context switches
	Voluntary int64         // voluntary context switches (a thread blocked: wake-ups)
	At        time.Time     // when the snapshot was taken
}

// Self returns the current usage of this process (getrusage RUSAGE_SELF).
func Self() Usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return FromRusage(&ru, time.Now())
}

// FromRusage converts a rusage record (Linux: ru_maxrss in KiB).
func FromRusage(ru *syscall.Rusage, at time.Time) Usage {
	return Usage{
		CPU:       time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		MaxRSS:    int64(ru.Maxrss) * 1024,
		Switches:  int64(ru.Nvcsw + ru.Nivcsw),
		Voluntary: int64(ru.Nvcsw),
		At:        at,
	}
}

// Sub returns the usage between b and u (MaxRSS is u's).
func (u Usage) Sub(b Usage) Usage {
	return Usage{
		CPU:       u.CPU - b.CPU,
		MaxRSS:    u.MaxRSS,
		Switches:  u.Switches - b.Switches,
		Voluntary: u.Voluntary - b.Voluntary,
		At:        u.At,
	}
}
