// Package timers is the scheduler's shared timer service: task actors arm
// their next fire in it, and one goroutine delivers every entry due at the
// same instant together, in one call, so that their slots are claimed in
// one commit and each actor gets one message. It is the runtime's wheel of
// Erlang's erlang:send_after: the timer belongs to the actor (which arms it
// again after every fire and cancels it by sequence number), the service
// only keeps time.
//
// Entries are grouped by due instant: a min-heap holds the distinct
// instants, a map the entries due at each. Arming is O(1) for an instant
// already present and O(log k) for a new one (k distinct instants
// pending); the goroutine sleeps on one time.Timer until the earliest.
package timers

import (
	"container/heap"
	"sync"
	"time"
)

// Service delivers entries of type T when they come due. The zero value is
// not usable: use New.
type Service[T any] struct {
	deliver func(due []T)

	mu       sync.Mutex
	buckets  map[int64][]T // entries by due instant (unix nanoseconds)
	instants instantHeap
	pending  int
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopped  bool
}

// New starts a service that calls deliver, on its own goroutine, with every
// entry whose instant has come (oldest instants first, all due entries in
// one call). deliver must not block for long: it holds up later timers.
func New[T any](deliver func(due []T)) *Service[T] {
	s := &Service[T]{
		deliver: deliver,
		buckets: make(map[int64][]T),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go s.loop()
	return s
}

// At arranges for v to be delivered at instant at (at once if it has
// passed). Entries are never removed: an owner that re-arms or cancels
// tells stale entries apart itself (e.g. by a sequence number in v). After
// Stop it does nothing.
func (s *Service[T]) At(at time.Time, v T) {
	s.AtUnixNano(at.UnixNano(), v)
}

// AtUnixNano is At with the instant in Unix nanoseconds, for callers that
// keep instants in that form.
func (s *Service[T]) AtUnixNano(key int64, v T) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	b, ok := s.buckets[key]
	s.buckets[key] = append(b, v)
	s.pending++
	earliest := false
	if !ok {
		heap.Push(&s.instants, key)
		earliest = s.instants[0] == key
	}
	s.mu.Unlock()
	if earliest {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Pending returns the number of entries waiting (stale ones included).
func (s *Service[T]) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// Stop stops the goroutine and drops every pending entry. It waits for a
// delivery in progress to return. Stopping twice is not an error.
func (s *Service[T]) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.stopped = true
	s.buckets, s.instants, s.pending = nil, nil, 0
	s.mu.Unlock()
	close(s.stop)
	<-s.done
}

func (s *Service[T]) loop() {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		s.mu.Lock()
		var wait <-chan time.Time
		if len(s.instants) > 0 {
			timer.Reset(time.Until(time.Unix(0, s.instants[0])))
			wait = timer.C
		}
		s.mu.Unlock()
		select {
		case <-s.stop:
			timer.Stop()
			return
		case <-s.wake:
			timer.Stop()
			continue
		case <-wait:
		}
		if due := s.take(time.Now()); len(due) > 0 {
			s.deliver(due)
		}
	}
}

// take removes and returns the entries due at or before now, oldest
// instant first.
func (s *Service[T]) take(now time.Time) []T {
	limit := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []T
	for len(s.instants) > 0 && s.instants[0] <= limit {
		key := heap.Pop(&s.instants).(int64)
		b := s.buckets[key]
		delete(s.buckets, key)
		s.pending -= len(b)
		if due == nil {
			due = b // the common case: one instant; no copy
			continue
		}
		due = append(due, b...)
	}
	return due
}

// instantHeap is a min-heap of unix-nanosecond instants.
type instantHeap []int64

func (h instantHeap) Len() int           { return len(h) }
func (h instantHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h instantHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *instantHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *instantHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
