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
	"github.com/mojodex/mojodex-scheduler/task"
	"strconv"
	"strings"
	"time"

	"github.com/mojodex/mojodex-scheduler/actors"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every series of the scheduler.
const Namespace = "mojodex_scheduler"

// Skip reasons, the values of the reason label of
// mojodex_scheduler_fires_skipped_total.
const (
	SkipOverlap  = "overlap"  // the previous run of the task was still in progress
	SkipGated    = "gated"    // the task's gate (enabled_if) was closed
	SkipDraining = "draining" // the scheduler was shutting down
	SkipOther    = "other"    // any other reason
)

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
			Help:      "Runs of a task that ended, by outcome (ok, failed, skipped).",
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
			Help:      "Fires of a task that were dropped, by reason (overlap, gated, draining, other).",
		}, []string{"task", "reason"}),
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "slots_missed_total",
			Help:      "Scheduled slots of a task that passed without firing (process stalled or clock jumped).",
		}, []string{"task"}),
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
			Help:      "HTTP attempts that failed transiently and were retried, by path and reason.",
		}, []string{"path", "reason"}),
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
		m.runs, m.runDuration, m.lateness, m.skipped, m.missed,
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

// Tasks returns an actors.Observer that records task events.
func (m *Metrics) Tasks() actors.Observer { return taskObserver{m} }

// API returns an apiclient.Observer that records API calls.
func (m *Metrics) API() apiclient.Observer { return apiObserver{m} }

// taskObserver records task actor events. Every method only updates
// in-memory series: cheap, goroutine-safe and non-blocking.
type taskObserver struct{ m *Metrics }

var _ actors.Observer = taskObserver{}

// Fired implements actors.Observer.
func (o taskObserver) Fired(taskName string, _ time.Time, lateness time.Duration) {
	o.m.lateness.WithLabelValues(taskName).Observe(nonNegative(lateness))
}

// Skipped implements actors.Observer.
func (o taskObserver) Skipped(taskName string, _ time.Time, reason string) {
	o.m.skipped.WithLabelValues(taskName, SkipReason(reason)).Inc()
}

// Missed implements actors.Observer.
func (o taskObserver) Missed(taskName string, slots int) {
	if slots <= 0 {
		return
	}
	o.m.missed.WithLabelValues(taskName).Add(float64(slots))
}

// RunFinished implements actors.Observer.
func (o taskObserver) RunFinished(rec actors.RunRecord) {
	outcome := outcomeLabel(rec.Outcome)
	o.m.runs.WithLabelValues(rec.Task, outcome).Inc()
	if rec.Outcome != actors.OutcomeSkipped {
		o.m.runDuration.WithLabelValues(rec.Task).Observe(nonNegative(rec.Duration))
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
	o.m.apiRetries.WithLabelValues(req.Path, retryReasonLabel(reason)).Inc()
}

// RateWaited implements apiclient.Observer.
func (o apiObserver) RateWaited(_ apiclient.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	o.m.rateWait.Add(d.Seconds())
	o.m.rateWaitsNum.Inc()
}

// SkipReason maps the free-text reason of a skipped fire (as the task actor
// words it) to one of SkipOverlap, SkipGated, SkipDraining or SkipOther.
func SkipReason(text string) string {
	t := strings.ToLower(text)
	switch {
	case strings.Contains(t, "in progress") || strings.Contains(t, "overlap"):
		return SkipOverlap
	case strings.Contains(t, "not configured") || strings.Contains(t, "enabled_if") || strings.Contains(t, "gate"):
		return SkipGated
	case strings.Contains(t, "shutting down") || strings.Contains(t, "drain"):
		return SkipDraining
	default:
		return SkipOther
	}
}

func outcomeLabel(o actors.Outcome) string {
	switch o {
	case actors.OutcomeOK, actors.OutcomeFailed, actors.OutcomeSkipped:
		return string(o)
	default:
		return "other"
	}
}

func serviceLabel(s task.Service) string {
	switch s {
	case task.ServiceBackend, task.ServiceBackground:
		return string(s)
	default:
		return "other"
	}
}

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
