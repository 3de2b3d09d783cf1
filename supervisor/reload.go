package supervisor

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/internal/msg"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// reloadLoaded carries the task set read by the reloader (a remote reload).
type reloadLoaded struct {
	req     request
	specs   []task.Spec
	content []byte
	err     error
}

// reloadReady: the actors of the removed and changed tasks have stopped,
// and the entries of the added and changed ones are prepared.
type reloadReady struct {
	req     request
	reply   ReloadReply
	order   []string
	entries []*entry
	version int64 // the task set version now run (0: unchanged)
	err     error
}

// remoteReload calls the reloader on a goroutine (it reads a file), then
// applies its result as Reload does.
func (s *supervisor) remoteReload(req request) {
	if s.opts.reloader == nil {
		s.answer(req, req.failure(errorf(CodeFailedPrecondition, "this scheduler was started without a task source to reload from")))
		return
	}
	reloader, engine, self := s.opts.reloader, s.engine, s.self
	go func() {
		specs, content, err := callReloader(reloader)
		engine.Send(self, reloadLoaded{req: req, specs: specs, content: content, err: err})
	}()
}

// callReloader calls f, turning a panic into an error.
func callReloader(f Reloader) (specs []task.Spec, content []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("the task reloader panicked: %v", v)
		}
	}()
	return f()
}

func (s *supervisor) onReloadLoaded(m reloadLoaded) {
	if m.err != nil {
		s.log.Error().Err(m.err).Msg("reload refused; the running task set is unchanged")
		s.answer(m.req, ReloadReply{Err: errorf(CodeInvalidArgument, "%v", m.err)})
		return
	}
	s.reloadTasks(m.req, m.specs, m.content, 0)
}

// reloadTasks applies a new task set: unchanged tasks keep their actor (and
// so their timer and slots); removed and changed ones are retired (their
// runs in progress end as failed); then, once their actors have stopped,
// the added and changed ones are prepared from the store and spawned. With
// a shared store, content (the task file's text, when known) is published
// as the current task set; version is the set's version when it follows
// one published elsewhere.
func (s *supervisor) reloadTasks(req request, specs []task.Spec, content []byte, version int64) {
	switch {
	case s.draining:
		s.answer(req, ReloadReply{Err: errorf(CodeUnavailable, "the scheduler is shutting down")})
		return
	case s.reloading:
		s.answer(req, ReloadReply{Err: errorf(CodeFailedPrecondition, "a reload is in progress; try again")})
		return
	}
	specs = slices.Clone(specs)
	if err := task.ValidateSet(specs); err != nil {
		s.log.Error().Err(err).Msg("reload refused; the running task set is unchanged")
		s.answer(req, ReloadReply{Err: errorf(CodeInvalidArgument, "%v", err)})
		return
	}
	var reply ReloadReply
	var fresh []task.Spec
	var retired []*actor.PID
	order := make([]string, 0, len(specs))
	keep := make(map[string]bool, len(specs))
	for i := range specs {
		spec := &specs[i]
		order = append(order, spec.Name)
		keep[spec.Name] = true
		old, exists := s.tasks[spec.Name]
		switch {
		case exists && old.life != failed && sameSpec(old.spec, spec):
			reply.Unchanged = append(reply.Unchanged, spec.Name)
			continue
		case exists:
			reply.Changed = append(reply.Changed, spec.Name)
			retired = s.retire(old, "its task was changed by a reload", retired)
			old.life = restarting
		default:
			reply.Added = append(reply.Added, spec.Name)
		}
		fresh = append(fresh, *spec)
	}
	for _, name := range s.order {
		if !keep[name] {
			reply.Removed = append(reply.Removed, name)
			retired = s.retire(s.tasks[name], "its task was removed by a reload", retired)
			delete(s.tasks, name)
		}
	}
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return !keep[n] })
	s.reloading = true
	o, engine, self, committer := s.opts, s.engine, s.self, s.committer
	go func() {
		for _, pid := range retired {
			<-engine.Poison(pid).Done()
		}
		ready := reloadReady{req: req, reply: reply, order: order, version: version}
		if sh, ok := o.store.(store.Shared); ok && content != nil && version == 0 {
			_, ready.version, ready.err = sh.PublishTaskSet(content, taskSetHash(content), true)
		}
		if ready.err == nil {
			ready.err = committer.Flush()
		}
		if ready.err == nil && len(fresh) > 0 {
			ready.entries, ready.err = prepare(o, fresh)
		}
		engine.Send(self, ready)
	}()
}

// retire tells a task's actor why it stops, and stops it.
func (s *supervisor) retire(e *entry, why string, pids []*actor.PID) []*actor.PID {
	if e.respawn != nil {
		e.respawn.Stop()
		e.respawn = nil
	}
	if e.pid != nil && e.life == alive {
		s.engine.Send(e.pid, msg.Retire{Reason: why})
		pids = append(pids, e.pid)
	}
	e.pid = nil
	e.gen++ // reports of the retired incarnation, and pending respawns, are stale now
	return pids
}

func (s *supervisor) onReloadReady(c *actor.Context, m reloadReady) {
	s.reloading = false
	defer func() {
		if p := s.pendingSet; p != nil {
			s.pendingSet = nil
			s.onSharedTaskSet(*p)
		}
	}()
	if m.err != nil {
		for _, name := range append(slices.Clone(m.reply.Added), m.reply.Changed...) {
			if e := s.tasks[name]; e != nil {
				e.life = failed
			}
		}
		s.log.Error().Err(m.err).Msg("reload: the state store failed; the changed tasks are stopped (marked failed)")
		s.answer(m.req, ReloadReply{Err: errorf(CodeUnavailable, "state store: %v", m.err)})
		return
	}
	for _, e := range m.entries {
		if old := s.tasks[e.spec.Name]; old != nil {
			e.gen, e.restarts = old.gen, old.restarts
		}
		s.tasks[e.spec.Name] = e
		if s.addGate(e.spec.EnabledIf) {
			s.probeGates()
			s.armGateTick()
		}
		if !s.draining {
			s.spawnTask(c, e)
		}
	}
	s.order = m.order
	if m.version != 0 {
		s.version = m.version
		s.rt.SetVersion(m.version)
	}
	s.log.Info().Strs("added", m.reply.Added).Strs("removed", m.reply.Removed).Strs("changed", m.reply.Changed).
		Int("unchanged", len(m.reply.Unchanged)).Msg("task set reloaded")
	s.answer(m.req, m.reply)
}

// sameSpec reports whether two specs describe the same task. A task with
// an in-process Job is never the same: two closures of one function
// literal with different captured values cannot be told apart.
func sameSpec(a, b *task.Spec) bool {
	if a.Job != nil || b.Job != nil {
		return false
	}
	return reflect.DeepEqual(*a, *b)
}
