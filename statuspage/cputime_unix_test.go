//go:build unix

package statuspage

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time (user and system) the test process has used, all
// goroutines and the garbage collector included. Benchmarks report it per
// operation: unlike wall time it does not grow while other processes hold
// the machine's cores.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
