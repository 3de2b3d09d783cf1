package metrics

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health tracks readiness: Ready() is true once SetReady(name) was called for every name passed to NewHealth.
// It is safe for concurrent use.
type Health struct {
	mu         sync.Mutex
	components []string // in the order given to NewHealth, without duplicates
	ready      map[string]bool
}

// NewHealth returns a Health waiting for the given components. With no
// component it is ready at once.
func NewHealth(components ...string) *Health {
	h := &Health{ready: make(map[string]bool, len(components))}
	for _, c := range components {
		if _, dup := h.ready[c]; dup {
			continue
		}
		h.ready[c] = false
		h.components = append(h.components, c)
	}
	return h
}

// SetReady marks component as ready. A name that was not passed to
// NewHealth is ignored.
func (h *Health) SetReady(component string) { h.Set(component, true) }

// NotReady returns the components not ready yet, in the order given to
// NewHealth (nil when every one is ready).
func (h *Health) NotReady() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var missing []string
	for _, c := range h.components {
		if !h.ready[c] {
			missing = append(missing, c)
		}
	}
	return missing
}

// Ready reports whether every component is ready.
func (h *Health) Ready() bool { return len(h.NotReady()) == 0 }

// SetNotReady marks component as not ready (again).
func (h *Health) SetNotReady(component string) { h.Set(component, false) }

// Set marks component ready or not. A name that was not passed to
// NewHealth is ignored.
func (h *Health) Set(component string, ready bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, known := h.ready[component]; known {
		h.ready[component] = ready
	}
}

// WatchHealth exports mojodex_scheduler_ready: 1 when every component of h
// is ready (what /readyz answers), else 0.
func (m *Metrics) WatchHealth(h *Health) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "ready",
		Help:      "1 when the scheduler is ready (it can claim and fire: /readyz answers 200), else 0.",
	}, func() float64 {
		if h.Ready() {
			return 1
		}
		return 0
	})
	if err := m.reg.Register(g); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Handler serves /metrics (promhttp for g), /healthz (200 "ok" while the process serves) and /readyz (200 "ready" when every component is ready, else 503 listing the missing ones).
// Any other path is 404. A nil h is always ready.
func Handler(g prometheus.Gatherer, h *Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		var missing []string
		if h != nil {
			missing = h.NotReady()
		}
		if len(missing) > 0 {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+strings.Join(missing, ", ")+"\n")
			return
		}
		writeText(w, http.StatusOK, "ready\n")
	})
	return mux
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
