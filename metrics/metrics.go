// Package metrics exports the scheduler's Prometheus metrics and serves its
// health endpoints.
//
// New creates the series on a registry. Tasks and API return observers to
// plug into the supervisor (supervisor.WithObserver) and the API client
// (apiclient.Config.Observer); WatchSupervisor adds a collector that asks the
// supervisor for its tasks at each scrape. Handler serves /metrics, /healthz
// and /readyz.
//
// Label values are bounded: task names (from the task set), run outcomes,
// fixed skip reasons, task states, services, methods, endpoint paths (from
// the task set), HTTP status codes and the API client's short retry reasons.
// Free text such as error messages or skip explanations never becomes a label.
package metrics

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/schedule"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every series of the scheduler.
const Namespace = "mojodex_scheduler"

// Histogram buckets, in seconds.
var (
	// LatenessBuckets resolve firing punctuality down to half a millisecond.
	LatenessBuckets = []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// RunDurationBuckets cover runs from a few milliseconds to ten minutes.
	RunDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	// CallDurationBuckets cover HTTP attempts up to the default 30s timeout and beyond.
	CallDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
)

// Metrics holds the scheduler's Prometheus series.
type Metrics struct {
	reg prometheus.Registerer

	runs        *prometheus.CounterVec
	runDuration *prometheus.HistogramVec
	lateness    *prometheus.HistogramVec
	skipped     *prometheus.CounterVec
	missed      *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	interval    *prometheus.GaugeVec

	commits        *prometheus.CounterVec
	commitWrites   prometheus.Histogram
	commitDuration prometheus.Histogram

	apiCalls     *prometheus.CounterVec
	apiDuration  *prometheus.HistogramVec
	apiRetries   *prometheus.CounterVec
	rateWait     prometheus.Counter
	rateWaitsNum prometheus.Counter
}

// New creates the series and registers them (and the Go/process collectors) on reg.
// Go and process collectors that reg already holds (as the default registry
// does) are kept rather than reported as errors.
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registerer")
	}
	m := &Metrics{
		reg: reg,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "runs_total",
			Help:      "Runs of a task that ended, by outcome (" + valueList(task.Outcomes) + ").",
		}, []string{"task", "outcome"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "run_duration_seconds",
			Help:      "Duration of the runs of a task that started (all pages), whatever their outcome.",
			Buckets:   RunDurationBuckets,
		}, []string{"task"}),
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "fire_lateness_seconds",
			Help:      "How late a run started after its scheduled slot (0 for manual runs).",
			Buckets:   LatenessBuckets,
		}, []string{"task"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "fires_skipped_total",
			Help:      "Fires of a task that started no run, by reason (" + valueList(task.SkipReasons) + ").",
		}, []string{"task", "reason"}),
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "slots_missed_total",
			Help:      "Scheduled slots of a task that passed without firing (process stalled or clock jumped).",
		}, []string{"task"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "task_last_success_timestamp_seconds",
			Help:      "When the last successful run of a task ended (unix seconds; 0 before the first since the process started).",
		}, []string{"task"}),
		interval: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "task_interval_seconds",
			Help:      "A task's period: its every: duration, or the longest gap between consecutive fires of its at/cron schedule.",
		}, []string{"task"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "store_commits_total",
			Help:      "Commits of the state store (each one transaction, grouping the writes of many fires), by result (ok, error).",
		}, []string{"result"}),
		commitWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "store_commit_writes",
			Help:      "Writes (claims, checkpoints, runs, pauses) grouped into one commit of the state store.",
			Buckets:   prometheus.ExponentialBuckets(1, 4, 10),
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "store_commit_duration_seconds",
			Help:      "Duration of one commit of the state store.",
			Buckets:   []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "api_calls_total",
			Help:      "HTTP attempts to the Mojodex services, by service, method, path and status (\"error\" when no response was received).",
		}, []string{"service", "method", "path", "status"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "api_call_duration_seconds",
			Help:      "Duration of each HTTP attempt to the Mojodex services, by service, method and path.",
			Buckets:   CallDurationBuckets,
		}, []string{"service", "method", "path"}),
		apiRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "api_retries_total",
			Help:      "HTTP attempts that failed transiently and were retried, by service, method, path and reason.",
		}, []string{"service", "method", "path", "reason"}),
		rateWait: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "rate_limit_wait_seconds_total",
			Help:      "Total time HTTP attempts spent waiting for the API client's rate limiter.",
		}),
		rateWaitsNum: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "rate_limit_waits_total",
			Help:      "HTTP attempts that had to wait for the API client's rate limiter.",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.runs, m.runDuration, m.lateness, m.skipped, m.missed, m.lastSuccess, m.interval,
		m.commits, m.commitWrites, m.commitDuration,
		m.apiCalls, m.apiDuration, m.apiRetries, m.rateWait, m.rateWaitsNum,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Tasks returns the task.Observer that records task events (pass it to
// supervisor.WithObserver).
func (m *Metrics) Tasks() task.Observer { return taskObserver{m} }

// API returns an apiclient.Observer that records API calls.
func (m *Metrics) API() apiclient.Observer { return apiObserver{m} }

// Commits returns the function that records the state store's commits
// (pass it to supervisor.WithCommitObserver).
func (m *Metrics) Commits() func(store.CommitStats) {
	return func(c store.CommitStats) {
		if c.Writes == 0 {
			return
		}
		result := "ok"
		if c.Err != nil {
			result = "error"
		}
		m.commits.WithLabelValues(result).Inc()
		m.commitWrites.Observe(float64(c.Writes))
		m.commitDuration.Observe(nonNegative(c.Duration))
	}
}

// Prepare creates the series of every task in specs at their starting
// values, so that alert rules and dashboards see every task × outcome,
// every task × skip reason and every task's missed slots from the first
// scrape (no `or vector(0)` needed), and records each task's interval
// (mojodex_scheduler_task_interval_seconds). Call it again after a reload;
// it leaves existing counters as they are.
func (m *Metrics) Prepare(specs []task.Spec, now time.Time) {
	for i := range specs {
		s := &specs[i]
		for _, o := range task.Outcomes {
			m.runs.WithLabelValues(s.Name, string(o))
		}
		for _, r := range task.SkipReasons {
			m.skipped.WithLabelValues(s.Name, string(r))
		}
		m.missed.WithLabelValues(s.Name)
		m.lastSuccess.WithLabelValues(s.Name)
		if d := Interval(s, now); d > 0 {
			m.interval.WithLabelValues(s.Name).Set(d.Seconds())
		}
	}
}

// Interval is a task's period: its every: duration, or the longest gap
// between consecutive fires of its at/cron schedule over the next year
// (0 when the schedule cannot be built or has fewer than two fires). A
// schedule that fires more than intervalFires times a year is walked fire
// by fire that far only; over the rest of the year each day's start is
// probed for the gap that follows it.
func Interval(s *task.Spec, now time.Time) time.Duration {
	if s.Every > 0 {
		return s.Every
	}
	sched, err := s.Schedule(now)
	if err != nil {
		return 0
	}
	return longestGap(sched, now, now.Add(366*24*time.Hour))
}

// intervalFires bounds the fires longestGap walks one by one: a cron
// schedule with a seconds field fires 31 million times a year.
const intervalFires = 10_000

// longestGap is the longest gap between consecutive fires of sched that
// start in [from, end).
func longestGap(sched schedule.Schedule, from, end time.Time) time.Duration {
	var longest time.Duration
	prev := sched.Next(from)
	for i := 0; !prev.IsZero() && prev.Before(end); i++ {
		if i == intervalFires {
			// A gap that spans the start of a day is found from there
			// (shortened by the part before it); shorter ones repeat
			// those already walked.
			for day := prev; day.Before(end); day = day.Add(24 * time.Hour) {
				next := sched.Next(day)
				if next.IsZero() {
					break
				}
				longest = max(longest, next.Sub(day))
			}
			break
		}
		next := sched.Next(prev)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(prev))
		prev = next
	}
	return longest
}

// taskObserver records task actor events. Every method only updates
// in-memory series: cheap, goroutine-safe and non-blocking.
type taskObserver struct{ m *Metrics }

var _ task.Observer = taskObserver{}

// Fired implements task.Observer.
func (o taskObserver) Fired(taskName string, _ time.Time, lateness time.Duration) {
	o.m.lateness.WithLabelValues(taskName).Observe(nonNegative(lateness))
}

// Skipped implements task.Observer.
func (o taskObserver) Skipped(taskName string, _ time.Time, reason task.SkipReason) {
	o.m.skipped.WithLabelValues(taskName, skipLabel(reason)).Inc()
}

// Missed implements task.Observer.
func (o taskObserver) Missed(taskName string, slots int) {
	if slots <= 0 {
		return
	}
	o.m.missed.WithLabelValues(taskName).Add(float64(slots))
}

// RunFinished implements task.Observer.
func (o taskObserver) RunFinished(rec task.Run) {
	o.m.runs.WithLabelValues(rec.Task, outcomeLabel(rec.Outcome)).Inc()
	if rec.Outcome == task.OutcomeSkipped {
		return
	}
	o.m.runDuration.WithLabelValues(rec.Task).Observe(nonNegative(rec.Duration))
	if rec.Outcome == task.OutcomeOK {
		end := rec.Start.Add(rec.Duration)
		o.m.lastSuccess.WithLabelValues(rec.Task).Set(float64(end.UnixNano()) / 1e9)
	}
}

// apiObserver records API client events, with the same guarantees as
// taskObserver.
type apiObserver struct{ m *Metrics }

var _ apiclient.Observer = apiObserver{}

// CallDone implements apiclient.Observer.
func (o apiObserver) CallDone(req apiclient.Request, status int, _ error, d time.Duration) {
	service, method := serviceLabel(req.Service), methodLabel(req.Method)
	o.m.apiCalls.WithLabelValues(service, method, req.Path, statusLabel(status)).Inc()
	o.m.apiDuration.WithLabelValues(service, method, req.Path).Observe(nonNegative(d))
}

// Retried implements apiclient.Observer.
func (o apiObserver) Retried(req apiclient.Request, _ int, reason string) {
	o.m.apiRetries.WithLabelValues(serviceLabel(req.Service), methodLabel(req.Method), req.Path, retryReasonLabel(reason)).Inc()
}

// RateWaited implements apiclient.Observer.
func (o apiObserver) RateWaited(_ apiclient.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	o.m.rateWait.Add(d.Seconds())
	o.m.rateWaitsNum.Inc()
}

// enumLabel is v as a label when it is one of values (the enum's list),
// else "other".
func enumLabel[T ~string](v T, values []T) string {
	if slices.Contains(values, v) {
		return string(v)
	}
	return "other"
}

// valueList says an enum's values for a help text: "ok, failed, skipped".
func valueList[T ~string](values []T) string {
	words := make([]string, len(values))
	for i, v := range values {
		words[i] = string(v)
	}
	return strings.Join(words, ", ")
}

// skipLabel is the reason as a label: one of task.SkipReasons, or "other".
func skipLabel(r task.SkipReason) string { return enumLabel(r, task.SkipReasons) }

// outcomeLabel is the outcome as a label: one of task.Outcomes, or "other".
func outcomeLabel(o task.Outcome) string { return enumLabel(o, task.Outcomes) }

// serviceLabel is the service as a label: one of task.Services, or "other".
func serviceLabel(s task.Service) string { return enumLabel(s, task.Services) }

func methodLabel(m string) string {
	switch u := strings.ToUpper(m); u {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return u
	default:
		return "OTHER"
	}
}

// statusLabel is the HTTP status code, or "error" when the attempt got no
// response. Codes outside 100..999 (which no server sends) become "other".
func statusLabel(status int) string {
	switch {
	case status <= 0:
		return "error"
	case status < 100 || status > 999:
		return "other"
	default:
		return strconv.Itoa(status)
	}
}

// retryReasonLabel keeps the API client's short reason labels and turns
// anything that does not look like one into "other".
func retryReasonLabel(r string) string {
	if r == "" || len(r) > 32 {
		return "other"
	}
	for _, c := range r {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return "other"
		}
	}
	return r
}

func nonNegative(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}
