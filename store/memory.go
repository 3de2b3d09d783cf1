package store

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Memory is an in-memory Store (tests, and when persistence is switched off).
// Nothing survives the process. The zero value is not usable: use NewMemory.
type Memory struct {
	mu     sync.Mutex
	tasks  map[string]*TaskState
	closed bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{tasks: make(map[string]*TaskState)}
}

// task returns the state of name, creating it when create is true (nil
// otherwise). It is called with m.mu held.
func (m *Memory) task(name string, create bool) *TaskState {
	st := m.tasks[name]
	if st == nil && create {
		st = &TaskState{}
		m.tasks[name] = st
	}
	return st
}

// lock takes m.mu and fails if the store is closed or the task name is bad.
// On success the caller must unlock m.mu.
func (m *Memory) lock(task string) error {
	if err := checkTask(task); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Claim implements Store.
func (m *Memory) Claim(task string, slot time.Time) (bool, error) {
	if err := checkTime("slot", slot); err != nil {
		return false, fmt.Errorf("claim slot of task %q: %w", task, err)
	}
	if err := m.lock(task); err != nil {
		return false, fmt.Errorf("claim slot %s of task %q: %w", slot, task, err)
	}
	defer m.mu.Unlock()
	slot = utc(slot)
	st := m.task(task, true)
	if !st.LastSlot.IsZero() && !slot.After(st.LastSlot) {
		return false, nil
	}
	st.LastSlot = slot
	return true, nil
}

// Load implements Store. The returned state is a copy.
func (m *Memory) Load(task string) (TaskState, error) {
	if err := m.lock(task); err != nil {
		return TaskState{}, fmt.Errorf("load task %q: %w", task, err)
	}
	defer m.mu.Unlock()
	st := m.task(task, false)
	if st == nil {
		return TaskState{}, nil
	}
	out := *st
	out.Runs = slices.Clone(st.Runs)
	if st.Checkpoint != nil {
		cp := *st.Checkpoint
		out.Checkpoint = &cp
	}
	return out, nil
}

// SetAnchor implements Store.
func (m *Memory) SetAnchor(task string, anchor time.Time) (time.Time, error) {
	if err := checkTime("anchor", anchor); err != nil {
		return time.Time{}, fmt.Errorf("set anchor of task %q: %w", task, err)
	}
	if err := m.lock(task); err != nil {
		return time.Time{}, fmt.Errorf("set anchor of task %q: %w", task, err)
	}
	defer m.mu.Unlock()
	st := m.task(task, true)
	if st.Anchor.IsZero() {
		st.Anchor = utc(anchor)
	}
	return st.Anchor, nil
}

// RecordRun implements Store.
func (m *Memory) RecordRun(task string, r Run) error {
	if err := m.lock(task); err != nil {
		return fmt.Errorf("record run of task %q: %w", task, err)
	}
	defer m.mu.Unlock()
	r = normalizeRun(r)
	st := m.task(task, true)
	// In place: Load hands out copies, so the slice is never shared.
	if len(st.Runs) < HistorySize {
		st.Runs = append(st.Runs, r)
	} else {
		copy(st.Runs, st.Runs[1:])
		st.Runs[len(st.Runs)-1] = r
	}
	if st.Checkpoint != nil && st.Checkpoint.Slot.Equal(r.Slot) {
		st.Checkpoint = nil
	}
	return nil
}

// SaveCheckpoint implements Store.
func (m *Memory) SaveCheckpoint(task string, c Checkpoint) error {
	if err := checkTime("checkpoint slot", c.Slot); err != nil {
		return fmt.Errorf("save checkpoint of task %q: %w", task, err)
	}
	if err := m.lock(task); err != nil {
		return fmt.Errorf("save checkpoint of task %q: %w", task, err)
	}
	defer m.mu.Unlock()
	c.Slot = utc(c.Slot)
	m.task(task, true).Checkpoint = &c
	return nil
}

// SetPaused implements Store.
func (m *Memory) SetPaused(task string, paused bool) error {
	if err := m.lock(task); err != nil {
		return fmt.Errorf("set paused flag of task %q: %w", task, err)
	}
	defer m.mu.Unlock()
	m.task(task, true).Paused = paused
	return nil
}

// Forget implements Store.
func (m *Memory) Forget(task string) error {
	if err := m.lock(task); err != nil {
		return fmt.Errorf("forget task %q: %w", task, err)
	}
	defer m.mu.Unlock()
	delete(m.tasks, task)
	return nil
}

// Tasks implements Store.
func (m *Memory) Tasks() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("list tasks: %w", ErrClosed)
	}
	names := make([]string, 0, len(m.tasks))
	for name := range m.tasks {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// Close implements Store. Closing twice is not an error.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.tasks = nil
	return nil
}
