package store

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EarlyTolerance is how far ahead of a Shared store's clock a claim's due
// time may be and still be won: the claimer's timer and the store's clock
// differ by that much in normal operation.
const EarlyTolerance = 50 * time.Millisecond

// SharedMemory is an in-memory Shared store: several supervisors in one
// process (tests, simulations) can share it as replicas share a database.
// Its clock is the process's, or behind it by SetClockBehind.
type SharedMemory struct {
	*Memory
}

var _ Shared = (*SharedMemory)(nil)

// NewSharedMemory returns an empty in-memory Shared store.
func NewSharedMemory() *SharedMemory {
	m := NewMemory()
	m.shared = &sharedState{replicas: make(map[string]Replica), hashes: make(map[string]int64), contents: make(map[int64][]byte)}
	return &SharedMemory{Memory: m}
}

// sharedState is what a shared store holds besides the tasks' state.
type sharedState struct {
	mu       sync.Mutex
	version  int64 // the current version
	hash     string
	content  []byte
	hashes   map[string]int64 // the version of every content published
	contents map[int64][]byte
	next     int64 // the last version number given
	replicas map[string]Replica
	watchers []chan struct{}
	behind   atomic.Int64 // how far the store's clock is behind the process's
}

// SetClockBehind makes the store's clock run d behind the process's, as a
// database server's clock may run behind a replica's: claims due within d
// (less EarlyTolerance) are then refused as early.
func (s *SharedMemory) SetClockBehind(d time.Duration) {
	s.shared.behind.Store(int64(d))
}

// now is the store's clock: UTC, without a monotonic reading (the times a
// shared store returns are the database's).
func (s *sharedState) now() time.Time {
	return time.Now().Add(-time.Duration(s.behind.Load())).UTC()
}

// stale reports whether a claim from version must be refused. Called with
// mu held.
func (s *sharedState) stale(version int64) bool {
	return version != 0 && s.version != 0 && version != s.version
}

// notify wakes every watcher (non-blocking). Called with mu held.
func (s *sharedState) notify() {
	for _, w := range s.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// holds reports whether owner holds the run in progress ip at epoch.
func holds(ip InProgress, owner string, epoch int64) bool {
	return ip.Owner == owner && ip.Epoch == epoch
}

// Heartbeat implements Shared.
func (s *SharedMemory) Heartbeat(r Replica) (time.Time, error) {
	sh := s.shared
	now := sh.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.replicas[r.Name]; ok && r.Started.IsZero() {
		r.Started = old.Started
	}
	r.Started = r.Started.UTC()
	r.Seen = now
	sh.replicas[r.Name] = r
	return now, nil
}

// Replicas implements Shared.
func (s *SharedMemory) Replicas(maxAge time.Duration) ([]Replica, error) {
	sh := s.shared
	now := sh.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []Replica
	for _, r := range sh.replicas {
		if now.Sub(r.Seen) <= maxAge {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Replica) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Renew implements Shared.
func (s *SharedMemory) Renew(owner string, lease time.Duration, held []Held) ([]bool, error) {
	now := s.shared.now()
	s.shared.mu.Lock()
	defer s.shared.mu.Unlock()
	out := make([]bool, len(held))
	names := func(yield func(string) bool) {
		for _, h := range held {
			if !yield(h.Task) {
				return
			}
		}
	}
	defer s.lockFor(names)()
	for i, h := range held {
		st := s.lookup(h.Task)
		if st == nil {
			continue
		}
		if ip := st.inProgressOf(h.Slot); ip != nil && holds(*ip, owner, h.Epoch) {
			ip.LeaseUntil = now.Add(lease)
			out[i] = true
		}
	}
	return out, nil
}

// TakeOver implements Shared.
func (s *SharedMemory) TakeOver(owner string, lease time.Duration, tasks []string, limit int) ([]Held, error) {
	now := s.shared.now()
	s.shared.mu.Lock()
	defer s.shared.mu.Unlock()
	defer s.lockFor(slices.Values(tasks))()
	var out []Held
	for _, name := range tasks {
		st := s.lookup(name)
		if st == nil {
			continue
		}
		for j := range st.inProgress {
			ip := &st.inProgress[j]
			if len(out) >= limit || ip.LeaseUntil.IsZero() || ip.LeaseUntil.After(now) {
				continue
			}
			ip.Owner, ip.Epoch, ip.LeaseUntil = owner, ip.Epoch+1, now.Add(lease)
			out = append(out, Held{Task: name, Slot: ip.Slot, Epoch: ip.Epoch, Progress: ip.Progress})
		}
	}
	return out, nil
}

// PublishTaskSet implements Shared.
func (s *SharedMemory) PublishTaskSet(content []byte, hash string, force bool) (int64, int64, error) {
	sh := s.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	v, known := sh.hashes[hash]
	if !known {
		sh.next++
		v = sh.next
		sh.hashes[hash] = v
		sh.contents[v] = slices.Clone(content)
	}
	if (!known || force) && sh.version != v {
		sh.version, sh.hash, sh.content = v, hash, sh.contents[v]
		sh.notify()
	}
	return v, sh.version, nil
}

// TaskSet implements Shared.
func (s *SharedMemory) TaskSet() (int64, []byte, error) {
	sh := s.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.version, slices.Clone(sh.content), nil
}

// Changes implements Shared: a notification after every commit of paused
// flags and every new task set.
func (s *SharedMemory) Changes(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	sh := s.shared
	sh.mu.Lock()
	sh.watchers = append(sh.watchers, ch)
	sh.mu.Unlock()
	out := make(chan struct{})
	go func() {
		defer close(out)
		defer func() {
			sh.mu.Lock()
			sh.watchers = slices.DeleteFunc(sh.watchers, func(c chan struct{}) bool { return c == ch })
			sh.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				select {
				case out <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
