package store

import (
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
)

// Memory is an in-memory Store (tests, benchmarks, and persistence switched
// off). Nothing survives the process. The zero value is not usable: use
// NewMemory.
//
// Tasks are spread over memShards shards, each with its own lock, so that
// workers recording the runs of different tasks do not wait for each
// other; a batch locks the shards it touches, in order, so it is applied
// atomically.
type Memory struct {
	shards [memShards]memShard
	closed atomic.Bool
	// shared turns on the rules of a Shared store (SharedMemory).
	shared *sharedState
}

// memShards is the number of shards of a Memory store.
const memShards = 64

type memShard struct {
	mu    sync.Mutex
	tasks map[string]*memTask
}

var _ Store = (*Memory)(nil)

// memTask is the state of one task. Runs are kept compact (memRun) in a
// ring of at most HistorySize, since a scheduler may hold many tasks.
type memTask struct {
	anchor, last int64 // unix nanoseconds; 0 when unset
	paused       bool
	runs         []memRun // ring: runs[head] is the oldest once full
	head         int
	inProgress   []InProgress
}

// memRun is a finished run without its task name, in 64 bytes plus its
// error text.
type memRun struct {
	slot, start        int64
	lateness, duration time.Duration
	pages, items       int32
	status             int32
	outcome            uint8
	reason             uint8
	manual, resumed    bool
	err, replica       string
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	m := &Memory{}
	for i := range m.shards {
		m.shards[i].tasks = make(map[string]*memTask)
	}
	return m
}

// shardSeed seeds the hash that spreads task names over the shards.
var shardSeed = maphash.MakeSeed()

// shard returns the index of the shard holding name.
func shard(name string) int {
	return int(maphash.String(shardSeed, name) % memShards)
}

// lockFor locks the shards of names, in order, and returns the function
// that unlocks them.
func (m *Memory) lockFor(names func(yield func(string) bool)) func() {
	var used [memShards]bool
	for n := range names {
		used[shard(n)] = true
	}
	for i := range m.shards {
		if used[i] {
			m.shards[i].mu.Lock()
		}
	}
	return func() {
		for i := range m.shards {
			if used[i] {
				m.shards[i].mu.Unlock()
			}
		}
	}
}

// outcomeCode and reasonCode pack the enums of a run into bytes (index + 1
// in task.Outcomes and task.SkipReasons; 0 is unknown or none).
func outcomeCode(o task.Outcome) uint8 {
	return uint8(slices.Index(task.Outcomes, o) + 1)
}

func reasonCode(r task.SkipReason) uint8 {
	return uint8(slices.Index(task.SkipReasons, r) + 1)
}

func packRun(r task.Run) memRun {
	return memRun{
		slot: UnixNanos(r.Slot), start: UnixNanos(r.Start), lateness: r.Lateness, duration: r.Duration,
		pages: int32(r.Pages), items: int32(r.Items), status: int32(r.Status),
		outcome: outcomeCode(r.Outcome), reason: reasonCode(r.Reason),
		manual: r.Manual, resumed: r.Resumed, err: r.Err, replica: r.Replica,
	}
}

func (r memRun) unpack(name string) task.Run {
	out := task.Run{
		Task: name, Slot: FromUnixNanos(r.slot), Start: FromUnixNanos(r.start), Lateness: r.lateness, Duration: r.duration,
		Pages: int(r.pages), Items: int(r.items), Status: int(r.status),
		Manual: r.manual, Resumed: r.resumed, Err: r.err, Replica: r.replica,
	}
	if r.outcome > 0 {
		out.Outcome = task.Outcomes[r.outcome-1]
	}
	if r.reason > 0 {
		out.Reason = task.SkipReasons[r.reason-1]
	}
	return out
}

// history returns the task's runs oldest first.
func (t *memTask) history() []memRun {
	out := make([]memRun, 0, len(t.runs))
	out = append(out, t.runs[t.head:]...)
	return append(out, t.runs[:t.head]...)
}

func (t *memTask) append(r memRun) {
	if len(t.runs) < HistorySize {
		t.runs = append(t.runs, r)
		return
	}
	t.runs[t.head] = r
	t.head = (t.head + 1) % HistorySize
}

func (t *memTask) latest() (memRun, bool) {
	if len(t.runs) == 0 {
		return memRun{}, false
	}
	if len(t.runs) < HistorySize {
		return t.runs[len(t.runs)-1], true
	}
	return t.runs[(t.head+HistorySize-1)%HistorySize], true
}

// inProgressOf returns the run in progress of slot, or nil (claimed slots
// are distinct: each is after the task's last one).
func (t *memTask) inProgressOf(slot time.Time) *InProgress {
	i := slices.IndexFunc(t.inProgress, func(p InProgress) bool { return p.Slot.Equal(slot) })
	if i < 0 {
		return nil
	}
	return &t.inProgress[i]
}

// task returns the state of name, creating it. Called with its shard locked.
func (m *Memory) task(name string) *memTask {
	tasks := m.shards[shard(name)].tasks
	st := tasks[name]
	if st == nil {
		st = &memTask{}
		tasks[name] = st
	}
	return st
}

// lookup returns the state of name, or nil. Called with its shard locked.
func (m *Memory) lookup(name string) *memTask {
	return m.shards[shard(name)].tasks[name]
}

// Load implements Store. The returned state is a copy.
func (m *Memory) Load(names []string) (map[string]TaskState, error) {
	if m.closed.Load() {
		return nil, fmt.Errorf("load tasks: %w", ErrClosed)
	}
	defer m.lockFor(slices.Values(names))()
	out := make(map[string]TaskState, len(names))
	for _, name := range names {
		st := m.lookup(name)
		if st == nil {
			continue
		}
		ts := TaskState{Anchor: FromUnixNanos(st.anchor), LastSlot: FromUnixNanos(st.last), Paused: st.paused}
		if len(st.inProgress) > 0 {
			ts.InProgress = slices.Clone(st.inProgress)
		}
		if r, ok := st.latest(); ok {
			last := r.unpack(name)
			ts.Last = &last
		}
		out[name] = ts
	}
	return out, nil
}

// History implements Store.
func (m *Memory) History(name string, n int) ([]task.Run, error) {
	if m.closed.Load() {
		return nil, fmt.Errorf("history of task %q: %w", name, ErrClosed)
	}
	sh := &m.shards[shard(name)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.tasks[name]
	if st == nil || n <= 0 {
		return nil, nil
	}
	runs := st.history()
	if len(runs) > n {
		runs = runs[len(runs)-n:]
	}
	out := make([]task.Run, len(runs))
	for i, r := range runs {
		out[i] = r.unpack(name)
	}
	return out, nil
}

// Commit implements Store.
func (m *Memory) Commit(b *Batch) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return m.commitValidated(b)
}

// commitValidated is Commit for a batch already validated (by Commit, or by
// the Committer that commits it).
func (m *Memory) commitValidated(b *Batch) error {
	if m.closed.Load() {
		return fmt.Errorf("commit: %w", ErrClosed)
	}
	if m.shared != nil {
		m.shared.mu.Lock() // a shared store's batch also reads the task set version
		defer m.shared.mu.Unlock()
	}
	if name, ok := b.oneTask(); ok {
		sh := &m.shards[shard(name)]
		sh.mu.Lock()
		defer sh.mu.Unlock()
	} else {
		defer m.lockFor(b.taskNames)()
	}
	for i := range b.Anchors {
		a := &b.Anchors[i]
		st := m.task(a.Task)
		if st.anchor == 0 {
			st.anchor = UnixNanos(a.Anchor)
		}
		a.Stored = FromUnixNanos(st.anchor)
	}
	var now time.Time // a shared store's clock
	if m.shared != nil {
		now = m.shared.now()
	}
	for i := range b.Claims {
		c := &b.Claims[i]
		st := m.task(c.Task)
		slot := UnixNanos(c.Slot)
		c.Won, c.Refused = false, ""
		switch {
		case m.shared != nil && m.shared.stale(c.Version):
			c.Refused = RefusedStale
		case m.shared != nil && c.DueTime().After(now.Add(EarlyTolerance)):
			c.Refused = RefusedEarly
		case st.last != 0 && slot <= st.last:
			c.Refused = RefusedClaimed
		default:
			c.Won = true
			st.last = slot
			ip := InProgress{Slot: FromUnixNanos(slot)}
			if m.shared != nil {
				ip.Owner, ip.Epoch = c.Owner, 1
				if c.Lease > 0 {
					ip.LeaseUntil = now.Add(c.Lease)
				}
			}
			st.inProgress = append(st.inProgress, ip)
		}
	}
	for i := range b.Checkpoints {
		c := &b.Checkpoints[i]
		c.Fenced = false
		st := m.lookup(c.Task)
		if st == nil {
			continue
		}
		ip := st.inProgressOf(c.Slot)
		switch {
		case ip == nil:
			// Not in progress (recorded, or never claimed): ignored.
		case m.shared != nil && c.Epoch > 0 && !holds(*ip, c.Owner, c.Epoch):
			c.Fenced = true
		default:
			ip.Progress = c.Progress
		}
	}
	b.RunsFenced = nil
	for i, r := range b.Runs {
		st := m.task(r.Task)
		if m.shared != nil && !r.Manual && r.Epoch > 0 {
			if ip := st.inProgressOf(r.Slot); ip == nil || !holds(*ip, r.Replica, r.Epoch) {
				if b.RunsFenced == nil {
					b.RunsFenced = make([]bool, len(b.Runs))
				}
				b.RunsFenced[i] = true
				continue
			}
		}
		st.append(packRun(r))
		if !r.Manual {
			// In place: the backing array is kept for the next claim.
			st.inProgress = slices.DeleteFunc(st.inProgress, func(p InProgress) bool { return p.Slot.Equal(r.Slot) })
		}
	}
	for _, p := range b.Pauses {
		m.task(p.Task).paused = p.Paused
	}
	if m.shared != nil {
		b.Now = now
		if len(b.Pauses) > 0 {
			m.shared.notify()
		}
	}
	return nil
}

// Forget implements Store.
func (m *Memory) Forget(name string) error {
	if name == "" {
		return fmt.Errorf("forget task: empty task name")
	}
	if m.closed.Load() {
		return fmt.Errorf("forget task %q: %w", name, ErrClosed)
	}
	sh := &m.shards[shard(name)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.tasks, name)
	return nil
}

// Tasks implements Store.
func (m *Memory) Tasks() ([]string, error) {
	if m.closed.Load() {
		return nil, fmt.Errorf("list tasks: %w", ErrClosed)
	}
	var names []string
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for name := range sh.tasks {
			names = append(names, name)
		}
		sh.mu.Unlock()
	}
	if names == nil {
		names = []string{}
	}
	slices.Sort(names)
	return names, nil
}

// Close implements Store. Closing twice is not an error.
func (m *Memory) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		sh.tasks = map[string]*memTask{}
		sh.mu.Unlock()
	}
	return nil
}
