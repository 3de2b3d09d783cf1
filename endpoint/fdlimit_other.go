//go:build !unix

package endpoint

import "errors"

// openFileLimit is unknown on this platform: only the configured caps apply.
func openFileLimit() (uint64, error) {
	return 0, errors.New("RLIMIT_NOFILE is not available on this platform")
}
