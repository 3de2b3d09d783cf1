package task

import "time"

// Status is what a task is doing: the one status shape shown by the
// control plane, the status page and the metrics.
type Status struct {
	// Name is the task's name.
	Name string
	// Schedule describes the schedule in words, e.g. "every 10m0s".
	Schedule string
	// Gate is the task's gate (GateNone when it has none).
	Gate Gate
	// GateKnown is true once the gate's first probe answered; GateOpen is
	// its last answer.
	GateKnown, GateOpen bool
	// State is what the task is doing.
	State State
	// Next is the next scheduled fire, jitter included; zero when nothing
	// is armed (paused, failed, manual mode, or a schedule without a
	// further fire).
	Next time.Time
	// Restarts counts the restarts of the task's actor after a crash.
	Restarts int
	// Running lists the runs in progress.
	Running []Running
	// Last is the latest finished run; nil before the first.
	Last *Run
	// History holds the last runs, oldest first (only when asked for).
	History []Run
	// Upcoming holds the next fires, jitter included (only when asked for).
	Upcoming []time.Time
	// Spec is the task's spec, shared and read-only (only when asked for).
	Spec *Spec
}

// Running is a run in progress.
type Running struct {
	// Slot, Start, Manual and Resumed are as in Run.
	Slot, Start     time.Time
	Manual, Resumed bool
	// Progress is how far the run has got.
	Progress Progress
	// Deadline is when the run is failed if it has not ended (zero when
	// not known: a run on another replica).
	Deadline time.Time
	// Replica, Epoch and LeaseUntil say which replica holds the run, at
	// which epoch, and until when (replicas sharing a store).
	Replica    string
	Epoch      int64
	LeaseUntil time.Time
}
