// Package harness holds the measuring instruments of the scheduler
// benchmark: a lock-free lateness histogram, per-task fire accounting, the
// process's resource usage, the rate-limit checks and the result record that
// a benchmark process hands to the driver.
package harness

import (
	"math"
	"sync/atomic"
	"time"
)

// The histogram's buckets: Resolution wide up to Fine, then Coarse wide up
// to Range; later durations land in the overflow bucket (their exact
// maximum is still kept).
const (
	Resolution = 10 * time.Microsecond
	Fine       = 10 * time.Second
	Coarse     = time.Millisecond
	Range      = 120 * time.Second
)

const (
	fineBuckets = int(Fine / Resolution)
	buckets     = fineBuckets + int((Range-Fine)/Coarse)
)

// Histogram counts durations in fixed buckets, 10 µs wide from 0 to 10 s and
// 1 ms wide from 10 s to 120 s, with atomic counters, so that any number of
// goroutines can record into it at once without a lock. Negative durations
// are counted in the first bucket (and in Early when below -EarlyThreshold).
// The zero value is not usable: use NewHistogram.
type Histogram struct {
	counts   []atomic.Uint64 // buckets+1: the last one is the overflow
	total    atomic.Uint64
	sumNanos atomic.Int64
	maxNanos atomic.Int64
	minNanos atomic.Int64
	early    atomic.Uint64
}

// EarlyThreshold is how early a fire must be (before its due time) to be
// counted in Early: clock granularity makes a few microseconds meaningless.
const EarlyThreshold = time.Millisecond

// NewHistogram returns an empty histogram (9 MB of counters, touched lazily:
// only the pages of buckets that receive values become resident).
func NewHistogram() *Histogram {
	h := &Histogram{counts: make([]atomic.Uint64, buckets+1)}
	h.minNanos.Store(math.MaxInt64)
	h.maxNanos.Store(math.MinInt64)
	return h
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	n := int64(d)
	if d < -EarlyThreshold {
		h.early.Add(1)
	}
	h.counts[bucketOf(d)].Add(1)
	h.total.Add(1)
	h.sumNanos.Add(n)
	h.extremes(n)
}

// extremes raises the maximum to n and lowers the minimum to n where n
// passes them.
func (h *Histogram) extremes(n int64) {
	for {
		m := h.maxNanos.Load()
		if n <= m || h.maxNanos.CompareAndSwap(m, n) {
			break
		}
	}
	for {
		m := h.minNanos.Load()
		if n >= m || h.minNanos.CompareAndSwap(m, n) {
			break
		}
	}
}

// bucketOf returns the index of the bucket holding d.
func bucketOf(d time.Duration) int {
	switch {
	case d <= 0:
		return 0
	case d < Fine:
		return int(d / Resolution)
	case d < Range:
		return fineBuckets + int((d-Fine)/Coarse)
	default:
		return buckets
	}
}

// UpperEdge returns the upper edge of bucket i (Range for the overflow).
func UpperEdge(i int) time.Duration {
	switch {
	case i < fineBuckets:
		return time.Duration(i+1) * Resolution
	case i < buckets:
		return Fine + time.Duration(i-fineBuckets+1)*Coarse
	default:
		return Range
	}
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Early returns how many durations were below -EarlyThreshold.
func (h *Histogram) Early() uint64 { return h.early.Load() }

// Max returns the largest duration recorded (0 when empty).
func (h *Histogram) Max() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.maxNanos.Load())
}

// Min returns the smallest duration recorded (0 when empty).
func (h *Histogram) Min() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.minNanos.Load())
}

// Mean returns the mean of the recorded durations (0 when empty).
func (h *Histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sumNanos.Load() / int64(n))
}

// Quantile returns the upper edge of the bucket holding the q-th quantile
// (0 < q <= 1): the smallest bucket edge that at least ceil(q*count)
// durations do not exceed, never above Max. Its error is at most one
// bucket (10 µs below 10 s, 1 ms above); in the overflow bucket it is Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if cum >= rank {
			if i == buckets {
				return h.Max()
			}
			return min(UpperEdge(i), max(h.Max(), 0))
		}
	}
	return h.Max()
}

// Bucket is one non-empty histogram bucket: Count durations below
// UpperEdge(Index) and at or above UpperEdge(Index-1); Index equal to
// Buckets() is the overflow (at or above Range).
type Bucket struct {
	Index int    `json:"i"`
	Count uint64 `json:"n"`
}

// Snapshot returns the non-empty buckets in order.
func (h *Histogram) Snapshot() []Bucket {
	var out []Bucket
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			out = append(out, Bucket{Index: i, Count: c})
		}
	}
	return out
}

// Buckets is the number of regular buckets (the overflow bucket's index).
func Buckets() int { return buckets }

// Add merges the buckets of another histogram (its Snapshot) into h. Each
// merged duration counts as its bucket's upper edge for Max, Min and Mean,
// so those are within one bucket of the other histogram's own.
func (h *Histogram) Add(bs []Bucket) {
	for _, b := range bs {
		if b.Index < 0 || b.Index > buckets || b.Count == 0 {
			continue
		}
		h.counts[b.Index].Add(b.Count)
		h.total.Add(b.Count)
		edge := int64(UpperEdge(b.Index))
		h.sumNanos.Add(edge * int64(b.Count))
		h.extremes(edge)
	}
}
