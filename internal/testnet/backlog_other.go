//go:build !linux

package testnet

import "testing"

// FullBacklog needs Linux's accept-queue behaviour: elsewhere it skips the
// test.
func FullBacklog(t testing.TB) string {
	t.Helper()
	t.Skip("a full accept queue that drops connection attempts is set up on Linux only")
	return ""
}
