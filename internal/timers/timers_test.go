package timers

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// delivery is one call of deliver: when it happened and what it carried.
type delivery struct {
	at      time.Time
	entries []int
}

type sink struct {
	mu    sync.Mutex
	calls []delivery
}

func (s *sink) deliver(due []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, delivery{at: time.Now(), entries: slices.Clone(due)})
}

func (s *sink) snapshot() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func TestEntriesDueTogetherAreDeliveredInOneCallAtTheirInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got sink
		s := New(got.deliver)
		defer s.Stop()
		t0 := time.Now()
		for i := range 1000 {
			s.At(t0.Add(time.Second), i)
		}
		s.At(t0.Add(2*time.Second), 5000)
		if n := s.Pending(); n != 1001 {
			t.Fatalf("Pending = %d, want 1001", n)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		calls := got.snapshot()
		if len(calls) != 2 {
			t.Fatalf("%d deliveries, want 2: %v", len(calls), calls)
		}
		if !calls[0].at.Equal(t0.Add(time.Second)) || len(calls[0].entries) != 1000 {
			t.Errorf("first delivery at +%s with %d entries, want +1s with 1000", calls[0].at.Sub(t0), len(calls[0].entries))
		}
		if !calls[1].at.Equal(t0.Add(2*time.Second)) || !slices.Equal(calls[1].entries, []int{5000}) {
			t.Errorf("second delivery at +%s with %v, want +2s with [5000]", calls[1].at.Sub(t0), calls[1].entries)
		}
		if n := s.Pending(); n != 0 {
			t.Errorf("Pending = %d after delivery, want 0", n)
		}
	})
}

func TestEarlierEntryWakesTheServiceAndOrderIsByInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got sink
		s := New(got.deliver)
		defer s.Stop()
		t0 := time.Now()
		s.At(t0.Add(time.Hour), 3)
		synctest.Wait() // the service sleeps until +1h
		s.At(t0.Add(time.Minute), 1)
		s.At(t0.Add(30*time.Minute), 2)
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		calls := got.snapshot()
		var order []int
		for _, c := range calls {
			order = append(order, c.entries...)
		}
		if !slices.Equal(order, []int{1, 2, 3}) {
			t.Fatalf("delivered %v, want [1 2 3]", order)
		}
		wantAt := []time.Duration{time.Minute, 30 * time.Minute, time.Hour}
		for i, c := range calls {
			if d := c.at.Sub(t0); d != wantAt[i] {
				t.Errorf("delivery %d at +%s, want +%s", i, d, wantAt[i])
			}
		}
	})
}

func TestPastInstantIsDeliveredAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got sink
		s := New(got.deliver)
		defer s.Stop()
		t0 := time.Now()
		s.At(t0.Add(-time.Hour), 7)
		synctest.Wait()
		calls := got.snapshot()
		if len(calls) != 1 || !calls[0].at.Equal(t0) || !slices.Equal(calls[0].entries, []int{7}) {
			t.Fatalf("deliveries %v, want [7] at once", calls)
		}
	})
}

func TestInstantsThatPassedDuringADeliveryAreDeliveredTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var calls [][]int
		slow := true
		s := New(func(due []int) {
			mu.Lock()
			calls = append(calls, slices.Clone(due))
			first := slow
			slow = false
			mu.Unlock()
			if first {
				time.Sleep(5 * time.Second) // a slow delivery
			}
		})
		defer s.Stop()
		t0 := time.Now()
		s.At(t0.Add(time.Second), 1)
		s.At(t0.Add(2*time.Second), 2)
		s.At(t0.Add(3*time.Second), 3)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(calls) != 2 || !slices.Equal(calls[0], []int{1}) || !slices.Equal(calls[1], []int{2, 3}) {
			t.Fatalf("deliveries %v, want [[1] [2 3]]", calls)
		}
	})
}

func TestStopDropsPendingEntriesAndLaterArms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got sink
		s := New(got.deliver)
		t0 := time.Now()
		s.At(t0.Add(time.Second), 1)
		s.Stop()
		s.Stop() // idempotent
		s.At(t0.Add(time.Second), 2)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if calls := got.snapshot(); len(calls) != 0 {
			t.Fatalf("deliveries after Stop: %v", calls)
		}
		if n := s.Pending(); n != 0 {
			t.Errorf("Pending = %d after Stop", n)
		}
	})
}

func BenchmarkAtSameInstant(b *testing.B) {
	s := New(func([]int) {})
	defer s.Stop()
	at := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.At(at, i)
	}
}

func BenchmarkAtDistinctInstants(b *testing.B) {
	s := New(func([]int) {})
	defer s.Stop()
	at := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.At(at.Add(time.Duration(i)), i)
	}
}
