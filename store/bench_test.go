package store

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkBoltClaim measures a granted Claim (one fsynced commit) on a Bolt
// store in a temporary directory, sequentially and from parallel goroutines
// (each on its own task, as when many tasks fire at the same instant), with
// Update (the default) and with bbolt's Batch (its default 10ms delay, and 1ms).
func BenchmarkBoltClaim(b *testing.B) {
	modes := []struct {
		name  string
		delay time.Duration // of Batch; 0: Update
	}{{"update", 0}, {"batch-10ms", 10 * time.Millisecond}, {"batch-1ms", time.Millisecond}}
	for _, m := range modes {
		open := func(b *testing.B) *Bolt {
			s := openTestBolt(b, m.delay > 0)
			s.db.MaxBatchDelay = m.delay
			return s
		}
		b.Run("sequential/"+m.name, func(b *testing.B) {
			s := open(b)
			i := 0
			for b.Loop() {
				i++
				if ok, err := s.Claim("a", base.Add(time.Duration(i))); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
		b.Run("parallel/"+m.name, func(b *testing.B) {
			s := open(b)
			var tasks atomic.Int32
			b.SetParallelism(8) // 16 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				task := fmt.Sprintf("task-%d", tasks.Add(1))
				i := 0
				for pb.Next() {
					i++
					if ok, err := s.Claim(task, base.Add(time.Duration(i))); err != nil || !ok {
						b.Error(ok, err)
						return
					}
				}
			})
		})
	}
	b.Run("refused", func(b *testing.B) {
		s := openTestBolt(b, false)
		if _, err := s.Claim("a", base); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if ok, err := s.Claim("a", base); err != nil || ok {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkMemoryClaim measures Claim on the in-memory store.
func BenchmarkMemoryClaim(b *testing.B) {
	s := NewMemory()
	i := 0
	for b.Loop() {
		i++
		if ok, err := s.Claim("a", base.Add(time.Duration(i))); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
