//go:build unix

package endpoint

import (
	"fmt"
	"syscall"
)

// openFileLimit returns the soft RLIMIT_NOFILE of the process.
func openFileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	return uint64(r.Cur), nil
}
