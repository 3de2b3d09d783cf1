package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/task"
)

// Server runs a scheduler in an engine with an ordered lifecycle, for the
// binary and for embedding programs alike: Start spawns the supervisor
// (which starts its runtime, the API-client actor and the task actors, in
// that order) and returns once it answers; Shutdown stops every timer,
// lets the runs in progress finish until its context ends (the runs still
// going are then interrupted and left in progress in the store, so the
// next start resumes them), and stops the supervisor, which stops its
// children and then its runtime. The engine, the API client and the store
// belong to the caller: it closes the store after Shutdown.
type Server struct {
	engine   *actor.Engine
	producer actor.Producer

	mu    sync.Mutex
	state serverState
	pid   *actor.PID
}

type serverState int

const (
	serverNew serverState = iota
	serverRunning
	serverStopped
)

// ErrServerStopped is returned by Start after Shutdown, and by Shutdown
// called twice.
var ErrServerStopped = errors.New("supervisor: server stopped")

// NewServer validates the tasks and prepares a server (see New for specs,
// client and the options).
func NewServer(engine *actor.Engine, specs []task.Spec, client *apiclient.Client, opts ...Option) (*Server, error) {
	if engine == nil {
		return nil, errors.New("supervisor: NewServer needs an engine")
	}
	producer, err := New(specs, client, opts...)
	if err != nil {
		return nil, err
	}
	return &Server{engine: engine, producer: producer}, nil
}

// Start spawns the supervisor at its stable address and waits until it
// answers (its task actors are then spawned and armed), or ctx ends.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case serverRunning:
		return errors.New("supervisor: server already started")
	case serverStopped:
		return ErrServerStopped
	}
	s.pid = Spawn(s.engine, s.producer)
	s.state = serverRunning
	timeout := time.Minute
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	v, err := s.engine.Request(s.pid, ListTasks{}, timeout).Result()
	if err != nil {
		return fmt.Errorf("supervisor: did not start: %w", err)
	}
	if l, ok := v.(TaskList); ok && l.Err != nil {
		return fmt.Errorf("supervisor: did not start: %w", l.Err)
	}
	return nil
}

// PID is the supervisor's address (nil before Start).
func (s *Server) PID() *actor.PID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Reload replaces the task set (see the Reload message); content is the
// text of the task file (nil for a set built in code).
func (s *Server) Reload(ctx context.Context, specs []task.Spec, content []byte) (ReloadReply, error) {
	pid := s.PID()
	if pid == nil {
		return ReloadReply{}, errors.New("supervisor: server not started")
	}
	v, err := s.engine.Request(pid, Reload{Tasks: specs, Content: content}, remaining(ctx, time.Minute)).Result()
	if err != nil {
		return ReloadReply{}, fmt.Errorf("supervisor: reload: %w", err)
	}
	rep, _ := v.(ReloadReply)
	return rep, rep.Err
}

// Shutdown drains the scheduler until ctx ends, then stops it and waits for
// every actor to stop (at most a further stopWait). It returns
// context.DeadlineExceeded (wrapped) when runs were still in progress at
// the deadline; they were interrupted and will be resumed at the next
// start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	state, pid := s.state, s.pid
	s.state = serverStopped
	s.mu.Unlock()
	switch state {
	case serverNew:
		return nil
	case serverStopped:
		return ErrServerStopped
	}
	var drainErr error
	drained := make(chan error, 1)
	go func() { // Result cannot be interrupted by ctx: wait for either
		_, err := s.engine.Request(pid, Drain{}, remaining(ctx, 30*time.Second)).Result()
		drained <- err
	}()
	select {
	case err := <-drained:
		if err != nil {
			drainErr = fmt.Errorf("supervisor: runs still in progress at the shutdown deadline were interrupted: %w", context.DeadlineExceeded)
		}
	case <-ctx.Done():
		drainErr = fmt.Errorf("supervisor: runs still in progress at the shutdown were interrupted: %w", ctx.Err())
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), stopWait)
	defer cancel()
	select {
	case <-s.engine.PoisonCtx(stopCtx, pid).Done():
	case <-stopCtx.Done():
	}
	if stopCtx.Err() != nil {
		return errors.Join(drainErr, fmt.Errorf("supervisor: actors did not stop within %s", stopWait))
	}
	return drainErr
}

// stopWait bounds how long Shutdown waits for the actors to stop after the
// drain.
const stopWait = 10 * time.Second

// remaining is the time left before ctx's deadline, or def without one.
func remaining(ctx context.Context, def time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return def
}
