//go:build !unix

package statuspage

import "time"

// CPUTime is not measured on this system (see cputime_unix_test.go).
func CPUTime() time.Duration { return 0 }
