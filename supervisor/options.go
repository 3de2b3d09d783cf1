package supervisor

import (
	"errors"
	"fmt"
	"time"

	"github.com/mojodex/mojodex-scheduler/actors"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

// Option configures the supervisor. A bad option makes New fail.
type Option func(*options) error

type options struct {
	logger        zerolog.Logger
	observer      task.Observer
	policy        RestartPolicy
	gateInterval  time.Duration
	manual        bool
	start         time.Time
	reloader      Reloader
	store         store.Store
	onCommit      func(store.CommitStats)
	jobWorkers    int
	jobQueue      int
	replica       string
	askTimeout    time.Duration
	maxControl    int
	shutdownGrace time.Duration
	lease         time.Duration
	renew         time.Duration
	reaper        time.Duration
	taskSet       []byte
	replicaObs    actors.ReplicaObserver
}

// MinGateInterval is the shortest gate interval New accepts: probing more
// often would spend the rate limit on probes.
const MinGateInterval = time.Second

// DefaultGateInterval is how often gates are probed again by default.
const DefaultGateInterval = 10 * time.Minute

func defaultOptions() options {
	return options{
		logger:        zerolog.Nop(),
		gateInterval:  DefaultGateInterval,
		askTimeout:    5 * time.Second,
		maxControl:    32,
		shutdownGrace: 5 * time.Second,
		lease:         DefaultLease,
		renew:         DefaultLeaseRenew,
		reaper:        DefaultReaperInterval,
	}
}

// WithStore sets the state store: claimed slots, anchors, run history,
// paused flags and runs in progress survive a restart through it. The
// default is an in-memory store (nothing survives the process). The caller
// closes it after the supervisor has stopped.
func WithStore(st store.Store) Option {
	return func(o *options) error {
		if st == nil {
			return errors.New("WithStore: nil store")
		}
		o.store = st
		return nil
	}
}

// WithLogger sets the logger (default: none).
func WithLogger(l zerolog.Logger) Option {
	return func(o *options) error { o.logger = l; return nil }
}

// WithObserver sets an observer of every task's runs (metrics, or an
// embedding program's own bookkeeping).
func WithObserver(obs task.Observer) Option {
	return func(o *options) error { o.observer = obs; return nil }
}

// WithRestartPolicy sets the restart policy (zero fields keep their defaults).
func WithRestartPolicy(p RestartPolicy) Option {
	return func(o *options) error { o.policy = p; return nil }
}

// WithGateInterval sets how often gates are probed again (default
// DefaultGateInterval, at least MinGateInterval).
func WithGateInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < MinGateInterval {
			return fmt.Errorf("WithGateInterval: %s is shorter than %s", d, MinGateInterval)
		}
		o.gateInterval = d
		return nil
	}
}

// WithManual arms no timers and resumes nothing: tasks run only when
// triggered (the once command).
func WithManual() Option {
	return func(o *options) error { o.manual = true; return nil }
}

// WithStart sets the anchor of fixed-rate schedules that have none stored
// yet (default: when New is called).
func WithStart(t time.Time) Option {
	return func(o *options) error {
		if t.IsZero() {
			return errors.New("WithStart: zero time")
		}
		o.start = t
		return nil
	}
}

// A Reloader reads the task set again: its specs, and the text of the task
// file they come from (nil for a set built in code).
type Reloader func() (specs []task.Spec, content []byte, err error)

// WithReloader lets remote callers reload the task set: a
// controlv1.ReloadRequest calls f (on a goroutine of the supervisor's, not
// in its Receive; typically to read the task file again) and applies its
// result as Reload does. Without it such requests are refused with
// CodeFailedPrecondition.
func WithReloader(f Reloader) Option {
	return func(o *options) error { o.reloader = f; return nil }
}

// WithCommitObserver sets a function called after every commit of the
// state store (on the committer's goroutine), for metrics.
func WithCommitObserver(f func(store.CommitStats)) Option {
	return func(o *options) error { o.onCommit = f; return nil }
}

// WithJobWorkers sets how many goroutines run in-process jobs (default 8)
// and how many jobs may wait for one (default 1,048,576); a fire beyond
// that is skipped.
func WithJobWorkers(workers, queue int) Option {
	return func(o *options) error {
		if workers < 1 || queue < 1 {
			return fmt.Errorf("WithJobWorkers: %d workers and a queue of %d must both be at least 1", workers, queue)
		}
		o.jobWorkers, o.jobQueue = workers, queue
		return nil
	}
}

// Defaults of WithLeases.
const (
	DefaultLease          = 15 * time.Second
	DefaultLeaseRenew     = 5 * time.Second
	DefaultReaperInterval = 5 * time.Second
)

// WithReplica names this process among the replicas sharing a store (a
// store.Shared, given with WithStore); it is required then, and shown in
// the run records.
func WithReplica(name string) Option {
	return func(o *options) error { o.replica = name; return nil }
}

// WithLeases sets, for replicas sharing a store, how long a run is its
// owner's without a renewal (default 15s), how often the owner renews (5s,
// at most half the lease) and how often the runs of replicas whose lease
// lapsed are looked for (5s).
func WithLeases(lease, renew, reaper time.Duration) Option {
	return func(o *options) error {
		if lease <= 0 || renew <= 0 || reaper <= 0 || renew > lease/2 {
			return fmt.Errorf("WithLeases: lease %s, renewal %s and reaper interval %s must be positive, with the renewal at most half the lease", lease, renew, reaper)
		}
		o.lease, o.renew, o.reaper = lease, renew, reaper
		return nil
	}
}

// WithTaskSet gives the text of the task file the specs were read from.
// With a shared store it is published as a version of the task set: claims
// carry that version and are refused from a replica on another one, and a
// replica started with a file that is an older published version runs the
// current one (read from the store) instead.
func WithTaskSet(content []byte) Option {
	return func(o *options) error { o.taskSet = content; return nil }
}

// WithReplicaObserver sets an observer of the replica events (claims won
// and lost, leases held, runs taken over, fenced writes), for metrics.
func WithReplicaObserver(obs actors.ReplicaObserver) Option {
	return func(o *options) error { o.replicaObs = obs; return nil }
}

// WithAskTimeout bounds how long a control request waits for a task
// actor's answer (default 5s).
func WithAskTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("WithAskTimeout: %s must be positive", d)
		}
		o.askTimeout = d
		return nil
	}
}
