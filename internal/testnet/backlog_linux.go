package testnet

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// FullBacklog returns a loopback address whose listener never accepts and
// whose accept queue is full, so that the kernel drops further connection
// attempts: a dial there hangs until its timeout, like a dial to a
// firewalled host. It skips the test when the kernel keeps accepting.
func FullBacklog(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // the queue is full: this attempt was dropped
		}
		t.Cleanup(func() { c.Close() })
		if i > 16 {
			t.Skip("the kernel keeps accepting into a full backlog")
		}
	}
}
