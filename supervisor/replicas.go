package supervisor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"github.com/mojodex/mojodex-scheduler/internal/msg"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// This file is what the supervisor does when its store is shared with
// other replicas (a store.Shared): it publishes the task set it runs,
// follows the pauses and the task set changes made on other replicas, and
// answers about tasks from the shared store, so that every replica gives
// the same answers.

// ListReplicas asks for the replicas sharing the store; the reply is a
// ReplicaList.
type ListReplicas struct{}

// ReplicaList answers ListReplicas: the replicas seen within three lease
// renewals, by name. Err is set (CodeFailedPrecondition) when the store is
// not shared.
type ReplicaList struct {
	Replicas []store.Replica
	Err      error
}

// taskSetHash identifies the text of a task set.
func taskSetHash(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}

// publishTaskSet publishes the task set a replica starts with. When its
// file is a version older than the current one (a replica restarted with
// an old file), the current task set is read from the store and run
// instead. It returns the specs to run and their version.
func publishTaskSet(o options, sh store.Shared, specs []task.Spec) ([]task.Spec, int64, error) {
	if o.taskSet == nil {
		return specs, 0, nil
	}
	v, current, err := sh.PublishTaskSet(o.taskSet, taskSetHash(o.taskSet), false)
	if err != nil {
		return nil, 0, fmt.Errorf("state store: publish the task set: %w", err)
	}
	if v == current {
		return specs, v, nil
	}
	cv, content, err := sh.TaskSet()
	if err != nil {
		return nil, 0, fmt.Errorf("state store: read the current task set: %w", err)
	}
	specs, err = task.Parse(bytes.NewReader(content))
	if err != nil {
		return nil, 0, fmt.Errorf("state store: the current task set (version %d) is not valid: %w", cv, err)
	}
	o.logger.Warn().Int64("file_version", v).Int64("current_version", cv).
		Msg("this replica's task file is an older version than the current task set; running the current one, from the state store")
	return specs, cv, nil
}

// sharedPauses carries the paused flags that changed in the shared store.
type sharedPauses struct{ changed map[string]bool }

// sharedTaskSet carries a new current task set of the shared store.
type sharedTaskSet struct {
	version int64
	content []byte
}

// watchShared follows the shared store's changes until ctx ends: on every
// change (and after every reconnection) it reads the paused flags and the
// task set, and sends the supervisor what differs from what it saw last.
func (s *supervisor) watchShared(ctx context.Context, sh store.Shared) {
	engine, self, log := s.engine, s.self, s.log
	go func() {
		prev := map[string]bool{}
		var version int64 = -1
		for range sh.Changes(ctx) {
			names, err := sh.Tasks()
			if err != nil {
				log.Warn().Err(err).Msg("state store: cannot read the paused flags after a change")
				continue
			}
			states, err := sh.Load(names)
			if err != nil {
				log.Warn().Err(err).Msg("state store: cannot read the paused flags after a change")
				continue
			}
			changed := map[string]bool{}
			for _, n := range names {
				if p, seen := prev[n]; !seen || p != states[n].Paused {
					changed[n] = states[n].Paused
				}
				prev[n] = states[n].Paused
			}
			if len(changed) > 0 {
				engine.Send(self, sharedPauses{changed: changed})
			}
			v, content, err := sh.TaskSet()
			if err != nil {
				log.Warn().Err(err).Msg("state store: cannot read the task set after a change")
				continue
			}
			if v != version {
				version = v
				engine.Send(self, sharedTaskSet{version: v, content: content})
			}
		}
	}()
}

// onSharedPauses hands the task actors the paused flags set elsewhere.
func (s *supervisor) onSharedPauses(m sharedPauses) {
	for _, name := range slices.Sorted(maps.Keys(m.changed)) {
		if e := s.tasks[name]; e != nil && e.life == alive {
			s.engine.Send(e.pid, msg.SyncPaused{Paused: m.changed[name]})
		}
	}
}

// onSharedTaskSet follows a task set published by another replica.
func (s *supervisor) onSharedTaskSet(m sharedTaskSet) {
	if m.version == 0 || m.version == s.version {
		return
	}
	if s.reloading {
		s.pendingSet = &m // applied once the reload in progress ends
		return
	}
	specs, err := task.Parse(bytes.NewReader(m.content))
	if err != nil {
		s.log.Error().Err(err).Int64("version", m.version).Msg("the current task set in the state store is not valid; this replica keeps its own (its claims are refused meanwhile)")
		return
	}
	s.log.Info().Int64("version", m.version).Msg("following the task set published by another replica")
	s.reloadTasks(request{op: opReload, internal: true}, specs, nil, m.version)
}

// listReplicas answers ListReplicas.
func (s *supervisor) listReplicas() ReplicaList {
	sh, ok := s.opts.store.(store.Shared)
	if !ok {
		return ReplicaList{Err: errorf(CodeFailedPrecondition, "this scheduler's state store is not shared: it has no replicas")}
	}
	rs, err := sh.Replicas(3 * s.opts.renew)
	if err != nil {
		return ReplicaList{Err: errorf(CodeUnavailable, "state store: %v", err)}
	}
	return ReplicaList{Replicas: rs}
}

// mergeShared replaces, in statuses from this replica's actors, what only
// the shared store knows for every replica: the runs in progress (on any
// replica) and the latest run.
func (s *supervisor) mergeShared(out []task.Status) {
	if _, ok := s.opts.store.(store.Shared); !ok || len(out) == 0 {
		return
	}
	names := make([]string, len(out))
	for i := range out {
		names[i] = out[i].Name
	}
	states, err := s.opts.store.Load(names)
	if err != nil {
		s.log.Warn().Err(err).Msg("state store: cannot read the runs of the other replicas; answering with this replica's own")
		return
	}
	for i := range out {
		st := &out[i]
		stored := states[st.Name]
		if stored.Last != nil && (st.Last == nil || !stored.Last.Start.Before(st.Last.Start)) {
			last := *stored.Last
			st.Last = &last
		}
		running := slices.DeleteFunc(st.Running, func(r task.Running) bool { return !r.Manual })
		for _, ip := range stored.InProgress {
			running = append(running, task.Running{Slot: ip.Slot, Progress: ip.Progress, Replica: ip.Owner, Epoch: ip.Epoch, LeaseUntil: ip.LeaseUntil})
		}
		st.Running = running
		if len(running) > 0 && (st.State == task.StateScheduled || st.State == task.StateGated || st.State == task.StatePaused) {
			st.State = task.StateRunning
		} else if len(running) == 0 && st.State == task.StateRunning {
			st.State = task.StateScheduled
		}
	}
}
