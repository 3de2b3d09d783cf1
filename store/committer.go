package store

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Committer groups the batches of concurrent callers into one Store.Commit.
// While one commit is being written, batches submitted meanwhile wait; the
// next commit takes all of them at once. So one transaction (one fsync, or
// one round trip) serves every fire due at the same moment, and a commit
// never waits for a timer. A store whose commits do no I/O (Memory) is
// committed on the caller's goroutine instead.
//
// Submit never blocks. The completion callback runs on the committer's
// goroutine (or the caller's, for inline stores): it must be quick and must
// not block, typically sending a message.
type Committer struct {
	// write commits a merged batch: the store's Commit, or, for a store of
	// this package, its commit of a batch validated already (Submit
	// validated every batch, and a merge of valid batches is valid).
	write    func(*Batch) error
	inline   bool
	onCommit func(CommitStats)

	mu      sync.Mutex
	queue   []pending
	closed  bool
	lastErr error
	failing atomic.Bool // lastErr != nil, read without the lock on every commit
	// isClosed mirrors closed for inline commits, read without the lock.
	isClosed atomic.Bool
	wake     chan struct{}
	stopped  chan struct{}
}

// CommitStats describes one commit, for metrics and health.
type CommitStats struct {
	// Batches is how many submitted batches the commit merged.
	Batches int
	// Writes is the number of writes in the commit.
	Writes int
	// Duration is how long Store.Commit took.
	Duration time.Duration
	// Err is the commit's error, nil when it succeeded.
	Err error
}

type pending struct {
	b    *Batch
	done func(error)
}

// CommitterOption configures a Committer.
type CommitterOption func(*Committer)

// OnCommit sets a function called after every commit (on the committer's
// goroutine), for metrics.
func OnCommit(f func(CommitStats)) CommitterOption {
	return func(c *Committer) { c.onCommit = f }
}

// NewCommitter returns a Committer writing to st and starts its goroutine
// (stopped by Close). A Memory store, whose commits do no I/O, is
// committed on the callers' goroutines instead.
func NewCommitter(st Store, opts ...CommitterOption) *Committer {
	c := &Committer{write: st.Commit, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	// The stores themselves, not types embedding them: a wrapper's Commit
	// (a test's failing or cut-off store) must not be bypassed.
	switch s := st.(type) {
	case *Memory:
		c.write, c.inline = s.commitValidated, true
	case *SharedMemory: // stands for a database: grouped, not inline
		c.write = s.commitValidated
	case *Bolt:
		c.write = s.commitValidated
	}
	if c.inline {
		close(c.stopped)
		return c
	}
	go c.loop()
	return c
}

// Submit queues b for the next commit and calls done (if not nil) with the
// commit's error once it is written; b's result fields are filled in
// before done is called. A batch that fails Validate is refused at once.
// After Close, done gets ErrClosed.
func (c *Committer) Submit(b *Batch, done func(error)) {
	if err := b.Validate(); err != nil {
		callDone(done, fmt.Errorf("commit: %w", err))
		return
	}
	if c.inline {
		if c.isClosed.Load() {
			callDone(done, fmt.Errorf("commit: %w", ErrClosed))
			return
		}
		// No I/O to time: an inline commit's duration is not measured.
		err := c.write(b)
		c.record(CommitStats{Batches: 1, Writes: b.Len(), Err: err})
		callDone(done, err)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		callDone(done, fmt.Errorf("commit: %w", ErrClosed))
		return
	}
	c.queue = append(c.queue, pending{b: b, done: done})
	c.mu.Unlock()
	c.wakeLoop()
}

// Commit submits b and waits for its commit.
func (c *Committer) Commit(b *Batch) error {
	ch := make(chan error, 1)
	c.Submit(b, func(err error) { ch <- err })
	return <-ch
}

// Flush waits until every batch submitted before it is committed, and
// returns the error of the last commit (nil if it succeeded).
func (c *Committer) Flush() error {
	if err := c.Commit(&Batch{}); err != nil {
		return err
	}
	// The empty batch wrote nothing itself: report the last commit that did.
	return c.Err()
}

// Err returns the error of the most recent commit: nil once a commit
// succeeds again. Readiness uses it.
func (c *Committer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Close commits what is queued, stops the goroutine and refuses later
// batches. It does not close the store. Closing twice is not an error.
func (c *Committer) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.stopped
		return
	}
	c.closed = true
	c.isClosed.Store(true)
	c.mu.Unlock()
	c.wakeLoop()
	<-c.stopped
}

// wakeLoop wakes the committer's goroutine (one pending wake-up is enough).
func (c *Committer) wakeLoop() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Committer) loop() {
	defer close(c.stopped)
	for {
		<-c.wake
		c.mu.Lock()
		queue, closed := c.queue, c.closed
		c.queue = nil
		c.mu.Unlock()
		if len(queue) > 0 {
			c.commit(queue)
		}
		if closed {
			c.mu.Lock()
			rest := c.queue
			c.queue = nil
			c.mu.Unlock()
			if len(rest) > 0 {
				c.commit(rest)
			}
			return
		}
	}
}

// commit merges the queued batches into one, commits it and hands each
// caller its results.
func (c *Committer) commit(queue []pending) {
	merged := queue[0].b
	if len(queue) > 1 {
		merged = &Batch{}
		for _, p := range queue {
			merged.Anchors = append(merged.Anchors, p.b.Anchors...)
			merged.Claims = append(merged.Claims, p.b.Claims...)
			merged.Checkpoints = append(merged.Checkpoints, p.b.Checkpoints...)
			merged.Runs = append(merged.Runs, p.b.Runs...)
			merged.Pauses = append(merged.Pauses, p.b.Pauses...)
		}
	}
	start := time.Now()
	var err error
	if merged.Len() > 0 {
		err = c.write(merged)
	}
	c.record(CommitStats{Batches: len(queue), Writes: merged.Len(), Duration: time.Since(start), Err: err})
	if len(queue) > 1 && err == nil {
		anchors, claims, checkpoints := merged.Anchors, merged.Claims, merged.Checkpoints
		fenced := merged.RunsFenced
		for _, p := range queue {
			anchors = anchors[copy(p.b.Anchors, anchors):]
			claims = claims[copy(p.b.Claims, claims):]
			checkpoints = checkpoints[copy(p.b.Checkpoints, checkpoints):]
			if n := len(p.b.Runs); fenced != nil && n > 0 {
				p.b.RunsFenced = fenced[:n:n]
				fenced = fenced[n:]
			}
			p.b.Now = merged.Now
		}
	}
	for _, p := range queue {
		callDone(p.done, err)
	}
}

func (c *Committer) record(s CommitStats) {
	if s.Writes > 0 && (s.Err != nil || c.failing.Load()) {
		c.mu.Lock()
		c.lastErr = s.Err
		c.failing.Store(s.Err != nil)
		c.mu.Unlock()
	}
	if c.onCommit != nil {
		c.onCommit(s)
	}
}

// callDone calls done, if any, with err.
func callDone(done func(error), err error) {
	if done != nil {
		done(err)
	}
}
