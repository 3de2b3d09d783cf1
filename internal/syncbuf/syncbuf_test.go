package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Concurrent writers and readers: every write is kept whole (run with
// -race to see that reads and writes do not race).
func TestConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := b.Write([]byte("line\n")); err != nil {
					t.Error(err)
				}
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != 800 || len(b.String()) != 800*len("line\n") {
		t.Errorf("%d whole lines in %d bytes, want 800 in %d", got, len(b.String()), 800*len("line\n"))
	}
}
