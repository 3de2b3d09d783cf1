package metrics

import (
	"errors"
	"github.com/mojodex/mojodex-scheduler/task"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, reg
}

// histogramOf returns the sample count and sum of the histogram series name
// with exactly the given labels; found is false when there is no such series.
func histogramOf(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (count uint64, sum float64, found bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if !sameLabels(got, labels) {
				continue
			}
			h := m.GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum(), true
		}
	}
	return 0, 0, false
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestNewRegistersEverything(t *testing.T) {
	m, reg := newTestMetrics(t)
	// Series without labels exist from the start; vectors appear on first use.
	for _, name := range []string{
		"mojodex_scheduler_rate_limit_wait_seconds_total",
		"mojodex_scheduler_rate_limit_waits_total",
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		n, err := testutil.GatherAndCount(reg, name)
		if err != nil {
			t.Fatalf("GatherAndCount(%s): %v", name, err)
		}
		// process_* is only exported where procfs works; Linux is the target.
		if n != 1 {
			t.Errorf("%s: %d series, want 1", name, n)
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP mojodex_scheduler_rate_limit_wait_seconds_total Total time HTTP attempts spent waiting for the API client's rate limiter.
# TYPE mojodex_scheduler_rate_limit_wait_seconds_total counter
mojodex_scheduler_rate_limit_wait_seconds_total 0
`), "mojodex_scheduler_rate_limit_wait_seconds_total"); err != nil {
		t.Error(err)
	}
	if m == nil {
		t.Fatal("nil Metrics")
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("New(nil): no error")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatalf("first New: %v", err)
	}
	if _, err := New(reg); err == nil {
		t.Error("second New on the same registry: no error (series registered twice)")
	}
}

func TestNewKeepsExistingGoAndProcessCollectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if _, err := New(reg); err != nil {
		t.Fatalf("New on a registry with Go/process collectors: %v", err)
	}
	if n, err := testutil.GatherAndCount(reg, "go_goroutines"); err != nil || n != 1 {
		t.Errorf("go_goroutines: %d series, err %v; want 1", n, err)
	}
}

func TestTaskObserver(t *testing.T) {
	m, reg := newTestMetrics(t)
	obs := m.Tasks()
	slot := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

	obs.Fired("a", slot, 3*time.Millisecond)
	obs.Fired("a", slot.Add(time.Hour), 700*time.Microsecond)
	obs.Fired("b", slot, 2*time.Second)
	obs.Fired("b", slot, -time.Millisecond) // clock went back: counted as on time

	obs.RunFinished(task.Run{Task: "a", Outcome: task.OutcomeOK, Duration: 1500 * time.Millisecond})
	obs.RunFinished(task.Run{Task: "a", Outcome: task.OutcomeOK, Duration: 500 * time.Millisecond})
	obs.RunFinished(task.Run{Task: "a", Outcome: task.OutcomeFailed, Duration: 250 * time.Millisecond})
	obs.RunFinished(task.Run{Task: "a", Outcome: task.OutcomeSkipped, Duration: time.Hour, Err: "the previous run is still in progress"})
	obs.RunFinished(task.Run{Task: "b", Outcome: task.OutcomeSkipped, Err: "the email service is not configured (enabled_if: email)"})

	obs.Skipped("a", slot, task.SkipOverlap)
	obs.Skipped("a", slot, task.SkipOverlap)
	obs.Skipped("b", slot, task.SkipGated)
	obs.Skipped("b", slot, task.SkipDraining)
	obs.Skipped("b", slot, task.SkipReason("cosmic rays; secret=hunter2")) // never a label

	obs.Missed("a", 3)
	obs.Missed("a", 2)
	obs.Missed("b", 0) // nothing missed: no series

	for _, c := range []struct {
		task, outcome string
		want          float64
	}{
		{"a", "ok", 2}, {"a", "failed", 1}, {"a", "skipped", 1}, {"b", "skipped", 1},
	} {
		if got := testutil.ToFloat64(m.runs.WithLabelValues(c.task, c.outcome)); got != c.want {
			t.Errorf("runs_total{task=%q,outcome=%q} = %v, want %v", c.task, c.outcome, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.runs); n != 4 {
		t.Errorf("runs_total has %d series, want 4", n)
	}

	// Duration: skipped runs are not observed.
	if n, sum, ok := histogramOf(t, reg, "mojodex_scheduler_run_duration_seconds", map[string]string{"task": "a"}); !ok || n != 3 || !near(sum, 2.25) {
		t.Errorf("run_duration_seconds{task=a}: count %d sum %v found %v; want 3, 2.25", n, sum, ok)
	}
	if _, _, ok := histogramOf(t, reg, "mojodex_scheduler_run_duration_seconds", map[string]string{"task": "b"}); ok {
		t.Error("run_duration_seconds{task=b} exists although b only had skipped runs")
	}

	if n, sum, ok := histogramOf(t, reg, "mojodex_scheduler_fire_lateness_seconds", map[string]string{"task": "a"}); !ok || n != 2 || !near(sum, 0.0037) {
		t.Errorf("fire_lateness_seconds{task=a}: count %d sum %v; want 2, 0.0037", n, sum)
	}
	if n, sum, ok := histogramOf(t, reg, "mojodex_scheduler_fire_lateness_seconds", map[string]string{"task": "b"}); !ok || n != 2 || !near(sum, 2) {
		t.Errorf("fire_lateness_seconds{task=b}: count %d sum %v; want 2, 2", n, sum)
	}

	// The exact exposition: label sets, values, and the skip reasons (never
	// the raw text).
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP mojodex_scheduler_fires_skipped_total Fires of a task that started no run, by reason (overlap, gated, draining, claimed, store, queue_full, paused, stale).
# TYPE mojodex_scheduler_fires_skipped_total counter
mojodex_scheduler_fires_skipped_total{reason="overlap",task="a"} 2
mojodex_scheduler_fires_skipped_total{reason="draining",task="b"} 1
mojodex_scheduler_fires_skipped_total{reason="gated",task="b"} 1
mojodex_scheduler_fires_skipped_total{reason="other",task="b"} 1
# HELP mojodex_scheduler_slots_missed_total Scheduled slots of a task that passed without firing (process stalled or clock jumped).
# TYPE mojodex_scheduler_slots_missed_total counter
mojodex_scheduler_slots_missed_total{task="a"} 5
`), "mojodex_scheduler_fires_skipped_total", "mojodex_scheduler_slots_missed_total"); err != nil {
		t.Error(err)
	}

	// Lateness buckets resolve milliseconds: b's 2s and 0s (clamped) land
	// in the right buckets.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP mojodex_scheduler_fire_lateness_seconds How late a run started after its scheduled slot (0 for manual runs).
# TYPE mojodex_scheduler_fire_lateness_seconds histogram
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="0.0005"} 0
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="0.001"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="0.002"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="0.005"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="0.01"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="0.025"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="0.05"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="0.1"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="0.25"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="0.5"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="1"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="2.5"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="5"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="10"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="a",le="+Inf"} 2
mojodex_scheduler_fire_lateness_seconds_sum{task="a"} 0.0037
mojodex_scheduler_fire_lateness_seconds_count{task="a"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="0.0005"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="0.001"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="0.002"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="0.005"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="0.01"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="0.025"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="0.05"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="0.1"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="0.25"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="0.5"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="1"} 1
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="2.5"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="5"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="10"} 2
mojodex_scheduler_fire_lateness_seconds_bucket{task="b",le="+Inf"} 2
mojodex_scheduler_fire_lateness_seconds_sum{task="b"} 2
mojodex_scheduler_fire_lateness_seconds_count{task="b"} 2
`), "mojodex_scheduler_fire_lateness_seconds"); err != nil {
		t.Error(err)
	}
}

// Every skip reason is its own label value; a value that is not one of
// task.SkipReasons never becomes a label.
func TestSkipLabel(t *testing.T) {
	for _, r := range task.SkipReasons {
		if got := skipLabel(r); got != string(r) {
			t.Errorf("skipLabel(%q) = %q", r, got)
		}
	}
	for _, r := range []task.SkipReason{"", "Authorization: Bearer s3cr3t", "the previous run is still in progress"} {
		if got := skipLabel(r); got != "other" {
			t.Errorf("skipLabel(%q) = %q, want other", r, got)
		}
	}
}

func TestAPIObserver(t *testing.T) {
	m, reg := newTestMetrics(t)
	obs := m.API()
	purchases := apiclient.Request{Task: "purchases-expiration-checker", Service: task.ServiceBackend, Method: "POST", Path: "/check_expired_purchases", Auth: true}
	todos := apiclient.Request{Task: "extract-todos", Service: task.ServiceBackground, Method: "post", Path: "/extract_todos"}
	probe := apiclient.Request{Task: "gate-email", Service: task.ServiceBackend, Method: "GET", Path: "/is_email_service_configured"}

	obs.CallDone(purchases, 503, errors.New("unexpected status 503"), 100*time.Millisecond)
	obs.Retried(purchases, 1, "status_503")
	obs.CallDone(purchases, 200, nil, 50*time.Millisecond)
	obs.CallDone(todos, 0, errors.New("dial tcp: connection refused"), 2*time.Millisecond)
	obs.Retried(todos, 1, "conn_refused")
	obs.CallDone(todos, 0, errors.New("dial tcp: connection refused"), 3*time.Millisecond)
	obs.Retried(todos, 2, "conn_refused")
	obs.CallDone(todos, 200, nil, 5*time.Millisecond)
	obs.CallDone(probe, 200, nil, 10*time.Millisecond)
	obs.Retried(probe, 1, "Some free text: with secret") // not a short label
	obs.RateWaited(purchases, 250*time.Millisecond)
	obs.RateWaited(todos, 750*time.Millisecond)
	obs.RateWaited(todos, 0) // no wait: not counted

	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP mojodex_scheduler_api_calls_total HTTP attempts to the Mojodex services, by service, method, path and status ("error" when no response was received).
# TYPE mojodex_scheduler_api_calls_total counter
mojodex_scheduler_api_calls_total{method="GET",path="/is_email_service_configured",service="backend",status="200"} 1
mojodex_scheduler_api_calls_total{method="POST",path="/check_expired_purchases",service="backend",status="200"} 1
mojodex_scheduler_api_calls_total{method="POST",path="/check_expired_purchases",service="backend",status="503"} 1
mojodex_scheduler_api_calls_total{method="POST",path="/extract_todos",service="background",status="200"} 1
mojodex_scheduler_api_calls_total{method="POST",path="/extract_todos",service="background",status="error"} 2
# HELP mojodex_scheduler_api_retries_total HTTP attempts that failed transiently and were retried, by service, method, path and reason.
# TYPE mojodex_scheduler_api_retries_total counter
mojodex_scheduler_api_retries_total{method="GET",path="/is_email_service_configured",reason="other",service="backend"} 1
mojodex_scheduler_api_retries_total{method="POST",path="/check_expired_purchases",reason="status_503",service="backend"} 1
mojodex_scheduler_api_retries_total{method="POST",path="/extract_todos",reason="conn_refused",service="background"} 2
# HELP mojodex_scheduler_rate_limit_wait_seconds_total Total time HTTP attempts spent waiting for the API client's rate limiter.
# TYPE mojodex_scheduler_rate_limit_wait_seconds_total counter
mojodex_scheduler_rate_limit_wait_seconds_total 1
# HELP mojodex_scheduler_rate_limit_waits_total HTTP attempts that had to wait for the API client's rate limiter.
# TYPE mojodex_scheduler_rate_limit_waits_total counter
mojodex_scheduler_rate_limit_waits_total 2
`), "mojodex_scheduler_api_calls_total", "mojodex_scheduler_api_retries_total",
		"mojodex_scheduler_rate_limit_wait_seconds_total", "mojodex_scheduler_rate_limit_waits_total"); err != nil {
		t.Error(err)
	}

	if n, sum, ok := histogramOf(t, reg, "mojodex_scheduler_api_call_duration_seconds",
		map[string]string{"service": "background", "method": "POST", "path": "/extract_todos"}); !ok || n != 3 || !near(sum, 0.010) {
		t.Errorf("api_call_duration_seconds{extract_todos}: count %d sum %v; want 3, 0.010", n, sum)
	}
	if n, sum, ok := histogramOf(t, reg, "mojodex_scheduler_api_call_duration_seconds",
		map[string]string{"service": "backend", "method": "POST", "path": "/check_expired_purchases"}); !ok || n != 2 || !near(sum, 0.150) {
		t.Errorf("api_call_duration_seconds{check_expired_purchases}: count %d sum %v; want 2, 0.150", n, sum)
	}
}

func TestLabelHelpers(t *testing.T) {
	for in, want := range map[int]string{0: "error", -1: "error", 200: "200", 429: "429", 504: "504", 42: "other", 1000: "other"} {
		if got := statusLabel(in); got != want {
			t.Errorf("statusLabel(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"post": "POST", "GET": "GET", "Put": "PUT", "": "OTHER", "BREW": "OTHER"} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[task.Service]string{task.ServiceBackend: "backend", task.ServiceBackground: "background", "": "other", "evil": "other"} {
		if got := serviceLabel(in); got != want {
			t.Errorf("serviceLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"status_503": "status_503", "conn_refused": "conn_refused", "": "other", "EOF": "other", strings.Repeat("a", 40): "other"} {
		if got := retryReasonLabel(in); got != want {
			t.Errorf("retryReasonLabel(%q) = %q, want %q", in, got, want)
		}
	}
	if got := outcomeLabel("weird"); got != "other" {
		t.Errorf("outcomeLabel(weird) = %q, want other", got)
	}
}

// The observers are called from many actor goroutines at once.
func TestObserversConcurrent(t *testing.T) {
	m, _ := newTestMetrics(t)
	tasks, api := m.Tasks(), m.API()
	req := apiclient.Request{Service: task.ServiceBackend, Method: "POST", Path: "/home_chat"}
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				tasks.Fired("a", time.Time{}, time.Millisecond)
				tasks.RunFinished(task.Run{Task: "a", Outcome: task.OutcomeOK, Duration: time.Millisecond})
				tasks.Skipped("a", time.Time{}, task.SkipOverlap)
				tasks.Missed("a", 1)
				api.CallDone(req, 200, nil, time.Millisecond)
				api.Retried(req, 1, "status_502")
				api.RateWaited(req, time.Millisecond)
			}
		})
	}
	wg.Wait()
	const total = workers * each
	checks := []struct {
		name string
		c    prometheus.Collector
	}{
		{"runs", m.runs.WithLabelValues("a", "ok")},
		{"skipped", m.skipped.WithLabelValues("a", string(task.SkipOverlap))},
		{"missed", m.missed.WithLabelValues("a")},
		{"api calls", m.apiCalls.WithLabelValues("backend", "POST", "/home_chat", "200")},
		{"retries", m.apiRetries.WithLabelValues("backend", "POST", "/home_chat", "status_502")},
		{"rate waits", m.rateWaitsNum},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != total {
			t.Errorf("%s = %v, want %d", c.name, got, total)
		}
	}
	if got := testutil.ToFloat64(m.rateWait); !near(got, total*0.001) {
		t.Errorf("rate wait seconds = %v, want %v", got, total*0.001)
	}
}
