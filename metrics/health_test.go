package metrics

import (
	"github.com/mojodex/mojodex-scheduler/task"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/apiclient"
)

func get(t *testing.T, h http.Handler, path string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestHealth(t *testing.T) {
	h := NewHealth("supervisor", "api", "supervisor")
	if h.Ready() {
		t.Error("ready before any SetReady")
	}
	if got := h.NotReady(); !slices.Equal(got, []string{"supervisor", "api"}) {
		t.Errorf("NotReady = %q, want [supervisor api]", got)
	}
	h.SetReady("api")
	h.SetReady("unknown") // ignored
	if got := h.NotReady(); !slices.Equal(got, []string{"supervisor"}) {
		t.Errorf("NotReady = %q, want [supervisor]", got)
	}
	h.SetReady("supervisor")
	if !h.Ready() || h.NotReady() != nil {
		t.Errorf("not ready after every SetReady: %q", h.NotReady())
	}
	if !NewHealth().Ready() {
		t.Error("NewHealth() with no component is not ready")
	}
}

func TestHealthConcurrent(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	h := NewHealth(names...)
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { h.SetReady(n) })
		wg.Go(func() { _ = h.NotReady() })
	}
	wg.Wait()
	if !h.Ready() {
		t.Errorf("not ready: %q", h.NotReady())
	}
}

func TestHandler(t *testing.T) {
	m, reg := newTestMetrics(t)
	health := NewHealth("supervisor", "api")
	srv := Handler(reg, health)

	code, body, hdr := get(t, srv, "/healthz")
	if code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/healthz Content-Type = %q", ct)
	}

	code, body, _ = get(t, srv, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "supervisor") || !strings.Contains(body, "api") {
		t.Errorf("/readyz = %d %q, want 503 listing supervisor and api", code, body)
	}
	health.SetReady("supervisor")
	code, body, _ = get(t, srv, "/readyz")
	if code != http.StatusServiceUnavailable || strings.Contains(body, "supervisor") || !strings.Contains(body, "api") {
		t.Errorf("/readyz = %d %q, want 503 listing only api", code, body)
	}
	health.SetReady("api")
	code, body, _ = get(t, srv, "/readyz")
	if code != http.StatusOK || strings.TrimSpace(body) != "ready" {
		t.Errorf("/readyz = %d %q, want 200 ready", code, body)
	}

	m.Tasks().RunFinished(task.Run{Task: "extract-todos", Outcome: task.OutcomeOK, Duration: 2 * time.Second})
	m.Tasks().RunFinished(task.Run{Task: "extract-todos", Outcome: task.OutcomeOK, Duration: time.Second})
	m.Tasks().Fired("extract-todos", time.Time{}, 4*time.Millisecond)
	m.API().CallDone(apiclient.Request{Service: task.ServiceBackground, Method: "POST", Path: "/extract_todos"}, 0, io.EOF, time.Millisecond)
	code, body, hdr = get(t, srv, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type = %q", ct)
	}
	for _, line := range []string{
		`mojodex_scheduler_runs_total{outcome="ok",task="extract-todos"} 2`,
		`mojodex_scheduler_run_duration_seconds_sum{task="extract-todos"} 3`,
		`mojodex_scheduler_run_duration_seconds_count{task="extract-todos"} 2`,
		`mojodex_scheduler_run_duration_seconds_bucket{task="extract-todos",le="1"} 1`,
		`mojodex_scheduler_fire_lateness_seconds_bucket{task="extract-todos",le="0.002"} 0`,
		`mojodex_scheduler_fire_lateness_seconds_bucket{task="extract-todos",le="0.005"} 1`,
		`mojodex_scheduler_api_calls_total{method="POST",path="/extract_todos",service="background",status="error"} 1`,
		`mojodex_scheduler_rate_limit_wait_seconds_total 0`,
		`# TYPE go_goroutines gauge`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	for _, path := range []string{"/", "/metrics/extra", "/health", "/readyz/x"} {
		if code, _, _ := get(t, srv, path); code != http.StatusNotFound {
			t.Errorf("%s = %d, want 404", path, code)
		}
	}
}

// Over a real loopback connection, and with no Health at all.
func TestHandlerServer(t *testing.T) {
	_, reg := newTestMetrics(t)
	ts := httptest.NewServer(Handler(reg, nil))
	defer ts.Close()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/nope": 404} {
		resp, err := ts.Client().Get(ts.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}
