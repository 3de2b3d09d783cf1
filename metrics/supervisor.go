package metrics

import (
	"errors"
	"fmt"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/prometheus/client_golang/prometheus"
)

// SupervisorTimeout bounds how long a scrape waits for the supervisor's
// answer to ListTasks.
const SupervisorTimeout = time.Second

// WatchSupervisor registers a collector that, at each scrape, asks the
// supervisor (engine.Request(pid, supervisor.ListTasks{}, timeout)) for its
// tasks and exports tasks by state, each task's state (1 for the current
// one, 0 for the others) and restarts by task. A supervisor that does not
// answer within 1s makes the collector emit nothing for those series (never
// block a scrape longer, never panic).
//
// The collector also exports mojodex_scheduler_supervisor_up: 1 when the
// supervisor answered the scrape's question, 0 when it did not.
func (m *Metrics) WatchSupervisor(engine *actor.Engine, pid *actor.PID) error {
	if engine == nil || pid == nil {
		return errors.New("metrics: WatchSupervisor needs an engine and a supervisor PID")
	}
	c := newSupervisorCollector(func() (any, error) {
		return engine.Request(pid, supervisor.ListTasks{}, SupervisorTimeout).Result()
	})
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// newSupervisorCollector returns the collector asking ask for the task list.
func newSupervisorCollector(ask func() (any, error)) *supervisorCollector {
	return &supervisorCollector{
		ask: ask,
		tasks: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "tasks"),
			"Tasks by state, as the supervisor reports them at scrape time.",
			[]string{"state"}, nil),
		state: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "task_state"),
			"1 for the state a task is in, 0 for the others ("+valueList(task.States)+").",
			[]string{"task", "state"}, nil),
		restarts: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "task_restarts_total"),
			"Restarts of a task by the supervisor after a crash.",
			[]string{"task"}, nil),
		up: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "supervisor_up"),
			"1 when the supervisor answered the scrape's question about its tasks within 1s, else 0.",
			nil, nil),
	}
}

// supervisorCollector turns the supervisor's TaskList into const metrics.
type supervisorCollector struct {
	ask                        func() (any, error)
	tasks, state, restarts, up *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *supervisorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tasks
	ch <- c.state
	ch <- c.restarts
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *supervisorCollector) Collect(ch chan<- prometheus.Metric) {
	list, ok := c.list()
	if !ok {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	counts := make(map[task.State]int, len(task.States))
	for _, t := range list.Tasks {
		counts[t.State]++
	}
	for _, s := range task.States {
		ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	seen := make(map[string]bool, len(list.Tasks))
	for _, t := range list.Tasks {
		if seen[t.Name] { // a duplicate would make the whole scrape fail
			continue
		}
		seen[t.Name] = true
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(t.Restarts), t.Name)
		for _, s := range task.States {
			v := 0.0
			if t.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, t.Name, string(s))
		}
	}
}

// list asks the supervisor for its tasks; ok is false when it did not
// answer in time, answered something else, or asking panicked.
func (c *supervisorCollector) list() (list supervisor.TaskList, ok bool) {
	defer func() {
		if recover() != nil {
			list, ok = supervisor.TaskList{}, false
		}
	}()
	reply, err := c.ask()
	if err != nil {
		return supervisor.TaskList{}, false
	}
	list, ok = reply.(supervisor.TaskList)
	return list, ok && list.Err == nil
}
