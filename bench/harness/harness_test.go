package harness

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	h := NewHistogram()
	var all []time.Duration
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		all = append(all, d)
		h.Record(d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if got < exact || got-exact > Resolution {
			t.Errorf("q%.3f: got %s, exact %s (must be within one bucket above)", q, got, exact)
		}
	}
	if h.Max() != all[len(all)-1] {
		t.Errorf("max %s, want %s", h.Max(), all[len(all)-1])
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram()
	h.Record(-5 * time.Millisecond) // early: bucket 0
	h.Record(0)
	h.Record(15 * time.Second)  // coarse tier
	h.Record(200 * time.Second) // overflow
	if h.Count() != 4 || h.Early() != 1 {
		t.Fatalf("count %d early %d", h.Count(), h.Early())
	}
	if got := h.Quantile(0.5); got != Resolution {
		t.Errorf("p50 %s, want the first bucket's upper edge", got)
	}
	if got := h.Quantile(0.75); got != 15*time.Second+time.Millisecond {
		t.Errorf("p75 %s, want 15.001s", got)
	}
	if got := h.Quantile(1); got != 200*time.Second {
		t.Errorf("p100 %s, want the max", got)
	}
	if h.Min() != -5*time.Millisecond {
		t.Errorf("min %s", h.Min())
	}
	for _, d := range []time.Duration{0, Resolution - 1, Resolution, Fine - 1, Fine, Range - 1, Range} {
		i := bucketOf(d)
		if i < Buckets() && d > 0 && d >= UpperEdge(i) || i > 0 && d < UpperEdge(i-1) {
			t.Errorf("%s in bucket %d [%s, %s)", d, i, UpperEdge(i-1), UpperEdge(i))
		}
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10_000 {
				h.Record(time.Duration(g*10_000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if h.Count() != 80_000 || h.Max() != 79_999*time.Microsecond || h.Min() != 0 {
		t.Fatalf("count %d max %s min %s", h.Count(), h.Max(), h.Min())
	}
}

func TestFiresSlot(t *testing.T) {
	f := NewFires(3, 2)
	for _, c := range []struct {
		task int
		k    int64
		want bool
	}{
		{0, 1, true}, {0, 2, true}, {0, 2, false}, // doubled
		{1, 1, true}, {1, 3, false}, // beyond
		{2, 0, false}, // off the grid
	} {
		if got := f.Slot(c.task, c.k); got != c.want {
			t.Errorf("Slot(%d, %d) = %v", c.task, c.k, got)
		}
	}
	f.Close()
	if f.Slot(1, 2) {
		t.Error("a fire after Close counted")
	}
	got := f.Counts()
	want := Counts{Tasks: 3, Expected: 6, Delivered: 3, Doubled: 1, Beyond: 1, OffGrid: 1, AfterClose: 1, ShortTasks: 2}
	if got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
}

func TestFiresNext(t *testing.T) {
	f := NewFires(2, 2)
	for i, want := range []bool{true, true, false} {
		n, ok := f.Next(0)
		if n != int64(i+1) || ok != want {
			t.Errorf("fire %d: n=%d ok=%v", i, n, ok)
		}
	}
	f.Next(1)
	f.Close()
	got := f.Counts()
	if got.Delivered != 3 || got.Beyond != 1 || got.ShortTasks != 1 {
		t.Errorf("counts %+v", got)
	}
}

func TestCheckRate(t *testing.T) {
	start := time.Unix(1000, 0)
	const rate, burst = 100.0, 5
	// A full bucket: burst calls at once, then one every 1/rate.
	var at []time.Time
	for range burst {
		at = append(at, start)
	}
	for i := 1; i <= 1000; i++ {
		at = append(at, start.Add(time.Duration(i)*10*time.Millisecond))
	}
	rc := CheckRate(at, rate, burst)
	if rc.Achieved < 99.99 || rc.Achieved > 100.01 {
		t.Errorf("achieved %.3f, want 100", rc.Achieved)
	}
	if rc.MaxWindow > burst+1e-9 {
		t.Errorf("max window %.3f, want <= %d", rc.MaxWindow, burst)
	}
	// Two extra calls squeezed in overrun the bucket.
	at = append(at, start.Add(500*time.Millisecond), start.Add(500*time.Millisecond))
	if rc := CheckRate(at, rate, burst); rc.MaxWindow < burst+1.5 {
		t.Errorf("max window %.3f, want > %d", rc.MaxWindow, burst+1)
	}
}

func TestMergeSeen(t *testing.T) {
	// Two replicas over 3 tasks and 2 slots: task 0 slot 1 fired by both
	// (doubled), task 1 slot 2 by none, slot 3 (beyond the window) ignored.
	a := []uint64{1 << 1, 1 << 1, 1<<1 | 1<<2 | 1<<3}
	b := []uint64{1<<1 | 1<<2, 0, 0}
	c := MergeSeen(2, [][]uint64{a, b})
	want := Counts{Tasks: 3, Expected: 6, Delivered: 5, Doubled: 1, ShortTasks: 1}
	if c != want {
		t.Errorf("MergeSeen: %+v, want %+v", c, want)
	}
}

func TestHistogramAdd(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	for i := range 90 {
		a.Record(time.Duration(i) * time.Millisecond)
	}
	for range 10 {
		b.Record(500 * time.Millisecond)
	}
	m := NewHistogram()
	m.Add(a.Snapshot())
	m.Add(b.Snapshot())
	if m.Count() != 100 {
		t.Fatalf("count %d, want 100", m.Count())
	}
	if q := m.Quantile(0.95); q < 500*time.Millisecond || q > 500*time.Millisecond+Resolution {
		t.Errorf("p95 %v, want 500ms (within a bucket)", q)
	}
	if q := m.Quantile(0.5); q < 49*time.Millisecond || q > 50*time.Millisecond+Resolution {
		t.Errorf("p50 %v, want about 49ms", q)
	}
}
