package actors

import (
	"context"
	"sync"
	"time"
)

// runCtx is the context of one run: a job receives it, and the API-client
// actor drops a run whose context is done. It is done when the run ends
// (Canceled: finished elsewhere, abandoned, stopped) or when its task actor
// enforces its deadline (DeadlineExceeded). It costs one small struct and
// no timer or goroutine per run: the task actor's single backstop timer
// keeps the time, and the Done channel is made only if someone asks for it
// (a job that never looks at its context costs nothing). It implements
// AfterFunc, so contexts derived from it (context.WithCancel) register a
// callback instead of starting a goroutine to watch it.
type runCtx struct {
	deadline time.Time

	mu    sync.Mutex
	done  chan struct{}
	err   error
	after []*afterFunc
}

type afterFunc struct{ f func() }

var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

var _ context.Context = (*runCtx)(nil)

// Deadline implements context.Context.
func (c *runCtx) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

// Done implements context.Context.
func (c *runCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedDone
		}
		c.done = make(chan struct{})
	}
	return c.done
}

// Err implements context.Context.
func (c *runCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value implements context.Context: a run's context carries no values.
func (c *runCtx) Value(any) any { return nil }

// AfterFunc arranges for f to run in its own goroutine once the context is
// done, and returns a function that cancels that (reporting whether it did),
// as context.AfterFunc does.
func (c *runCtx) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.after = append(c.after, a)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.after {
			if x == a {
				c.after = append(c.after[:i], c.after[i+1:]...)
				return true
			}
		}
		return false
	}
}

// end makes the context done with err (context.Canceled or
// context.DeadlineExceeded); later calls do nothing.
func (c *runCtx) end(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	after := c.after
	c.after = nil
	c.mu.Unlock()
	for _, a := range after {
		go a.f()
	}
}

// String describes the context (for %v in errors and logs).
func (c *runCtx) String() string { return "mojodex-scheduler run context" }
