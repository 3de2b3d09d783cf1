package metrics

import (
	"errors"
	"fmt"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/prometheus/client_golang/prometheus"
)

// SupervisorTimeout bounds how long a scrape waits for the supervisor's
// answer to ListTasks.
const SupervisorTimeout = time.Second

// States lists every task state, in the order they are exported: each is
// always present in mojodex_scheduler_tasks, 0 when no task is in it.
var States = []supervisor.State{
	supervisor.StateScheduled,
	supervisor.StateRunning,
	supervisor.StatePaused,
	supervisor.StateGated,
	supervisor.StateRestarting,
	supervisor.StateFailed,
}

// WatchSupervisor registers a collector that, at each scrape, asks the supervisor (engine.Request(pid, supervisor.ListTasks{}, timeout)) for its tasks and exports tasks by state and restarts by task. A supervisor that does not answer within 1s makes the collector emit nothing for those series (never block a scrape longer, never panic).
//
// The collector also exports mojodex_scheduler_supervisor_up: 1 when the
// supervisor answered the scrape's question, 0 when it did not.
func (m *Metrics) WatchSupervisor(engine *actor.Engine, pid *actor.PID) error {
	if engine == nil || pid == nil {
		return errors.New("metrics: WatchSupervisor needs an engine and a supervisor PID")
	}
	c := &supervisorCollector{
		ask: func() (any, error) {
			return engine.Request(pid, supervisor.ListTasks{}, SupervisorTimeout).Result()
		},
		tasks: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "tasks"),
			"Tasks by state, as the supervisor reports them at scrape time.",
			[]string{"state"}, nil),
		restarts: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "task_restarts_total"),
			"Restarts of a task by the supervisor after a crash.",
			[]string{"task"}, nil),
		up: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "supervisor_up"),
			"1 when the supervisor answered the scrape's question about its tasks within 1s, else 0.",
			nil, nil),
	}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// supervisorCollector turns the supervisor's TaskList into const metrics.
type supervisorCollector struct {
	ask                 func() (any, error)
	tasks, restarts, up *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *supervisorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tasks
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
	counts := make(map[supervisor.State]int, len(States))
	for _, t := range list.Tasks {
		counts[t.State]++
	}
	for _, s := range States {
		ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	seen := make(map[string]bool, len(list.Tasks))
	for _, t := range list.Tasks {
		if seen[t.Name] { // a duplicate would make the whole scrape fail
			continue
		}
		seen[t.Name] = true
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(t.Restarts), t.Name)
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
	return list, ok
}
