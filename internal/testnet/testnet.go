// Package testnet holds loopback network fixtures for tests: an address
// where nothing listens, a listener that accepts and never answers, and an
// address whose accept queue is full (connection attempts hang, as against
// a firewalled host). Each fixture is released when its test ends.
package testnet

import (
	"net"
	"sync"
	"testing"
)

// FreeAddr returns a loopback address ("127.0.0.1:PORT") whose port was
// free a moment ago: nothing listens there, until someone does.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// MuteListener returns the address of a loopback listener that accepts TCP
// connections and never reads or writes; it keeps them open until the test
// ends, then closes them and its listener, and its accepting goroutine has
// returned by the time its cleanup does.
func MuteListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
