package testnet

import (
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestFreeAddrRefuses(t *testing.T) {
	addr := FreeAddr(t)
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("FreeAddr = %q (%v), want a 127.0.0.1 address", addr, err)
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("a dial to %s was accepted", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s: %v, want connection refused", addr, err)
	}
}

func TestMuteListenerAcceptsAndNeverAnswers(t *testing.T) {
	addr := MuteListener(t)
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := c.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("read %d bytes, err %v; want nothing until the deadline", n, err)
	}
}

func TestFullBacklogHangsDials(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	addr := FullBacklog(t)
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatalf("a dial to %s was accepted", addr)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) < 300*time.Millisecond {
		t.Errorf("dial %s: %v after %v; want a timeout after 300ms", addr, err, time.Since(start))
	}
}
