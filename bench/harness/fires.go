package harness

import (
	"math/bits"
	"sync/atomic"
)

// MaxSlots is the largest number of slots per task in a window that Fires
// can tell apart (one bit per slot).
const MaxSlots = 63

// Fires accounts for the fires of N tasks over a window of K slots per task
// (slots 1..K, due at anchor + k*period): every fire of every task is
// counted once, and a second fire of the same slot (for schedulers that
// report the slot) is counted as doubled. All methods are safe for
// concurrent use and lock-free.
type Fires struct {
	k       int
	seen    []atomic.Uint64 // per task: bit k set when slot k fired (slot-reporting schedulers)
	fired   []atomic.Uint32 // per task: fires so far (schedulers that do not report the slot)
	closed  atomic.Bool
	deliv   atomic.Uint64
	doubled atomic.Uint64
	beyond  atomic.Uint64
	offgrid atomic.Uint64
	late    atomic.Uint64
}

// NewFires returns the accounting of n tasks over k slots each (1 <= k <=
// MaxSlots).
func NewFires(n, k int) *Fires {
	if k < 1 || k > MaxSlots {
		panic("harness: slots per task out of range")
	}
	return &Fires{k: k, seen: make([]atomic.Uint64, n), fired: make([]atomic.Uint32, n)}
}

// Slots returns K, the slots per task in the window.
func (f *Fires) Slots() int { return f.k }

// Close ends the window: fires reported afterwards are counted in
// AfterClose only.
func (f *Fires) Close() { f.closed.Store(true) }

// Slot records a fire of task i for slot k (1-based index of the slot since
// the anchor). It reports whether the fire counts as delivered in the window
// (so that its lateness should be recorded): a slot outside 1..K, a slot
// fired before, or a fire after Close does not.
func (f *Fires) Slot(i int, k int64) bool {
	if f.closed.Load() {
		f.late.Add(1)
		return false
	}
	if k < 1 {
		f.offgrid.Add(1)
		return false
	}
	if k > int64(f.k) {
		f.beyond.Add(1)
		return false
	}
	bit := uint64(1) << uint(k)
	if f.seen[i].Or(bit)&bit != 0 {
		f.doubled.Add(1)
		return false
	}
	f.deliv.Add(1)
	return true
}

// Next records the next fire of task i for schedulers that do not report
// which slot a fire belongs to: the n-th fire of a task is taken to be for
// slot n. It returns n and whether the fire counts as delivered in the window
// (n <= K and before Close).
func (f *Fires) Next(i int) (int64, bool) {
	if f.closed.Load() {
		f.late.Add(1)
		return 0, false
	}
	n := int64(f.fired[i].Add(1))
	if n > int64(f.k) {
		f.beyond.Add(1)
		return n, false
	}
	f.deliv.Add(1)
	return n, true
}

// Seen returns the slots of task i fired so far (by Slot), one bit per
// slot: bit k for slot k.
func (f *Fires) Seen(i int) uint64 { return f.seen[i].Load() }

// MergeSeen returns the Counts of several processes that shared N tasks
// over the same window of k slots (replicas of one scheduler), from each
// one's Seen bits per task: a slot fired by two of them counts as doubled,
// a slot fired by none is not delivered.
func MergeSeen(k int, seen [][]uint64) Counts {
	n := 0
	for _, s := range seen {
		n = max(n, len(s))
	}
	c := Counts{Tasks: n, Expected: uint64(n) * uint64(k)}
	window := (uint64(1)<<uint(k+1) - 1) &^ 1 // slots 1..k
	for i := range n {
		var union uint64
		for _, s := range seen {
			if i >= len(s) {
				continue
			}
			c.Doubled += uint64(bits.OnesCount64(union & s[i] & window))
			union |= s[i]
		}
		got := bits.OnesCount64(union & window)
		c.Delivered += uint64(got)
		if got < k {
			c.ShortTasks++
		}
	}
	return c
}

// Counts is the outcome of a window.
type Counts struct {
	Tasks      int    `json:"tasks"`
	Expected   uint64 `json:"expected"`    // Tasks * K
	Delivered  uint64 `json:"delivered"`   // distinct slots 1..K fired before Close
	Doubled    uint64 `json:"doubled"`     // second fires of a slot already fired
	Beyond     uint64 `json:"beyond"`      // fires of slots after K (due after the window) before Close
	OffGrid    uint64 `json:"off_grid"`    // fires whose slot is not anchor + k*period, k >= 1
	AfterClose uint64 `json:"after_close"` // fires reported after Close (not counted)
	ShortTasks int    `json:"short_tasks"` // tasks with fewer than K slots delivered
}

// Counts summarises the window (call it after Close).
func (f *Fires) Counts() Counts {
	c := Counts{
		Tasks:      len(f.seen),
		Expected:   uint64(len(f.seen)) * uint64(f.k),
		Delivered:  f.deliv.Load(),
		Doubled:    f.doubled.Load(),
		Beyond:     f.beyond.Load(),
		OffGrid:    f.offgrid.Load(),
		AfterClose: f.late.Load(),
	}
	for i := range f.seen {
		got := bits.OnesCount64(f.seen[i].Load()) + int(min(f.fired[i].Load(), uint32(f.k)))
		if got < f.k {
			c.ShortTasks++
		}
	}
	return c
}
