//go:build !linux

package endpoint

import "testing"

// fullBacklog needs Linux's accept-queue behaviour.
func fullBacklog(t *testing.T) string {
	t.Helper()
	t.Skip("a full accept queue that drops connection attempts is set up on Linux only")
	return ""
}
