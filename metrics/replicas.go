package metrics

import (
	"fmt"

	"github.com/mojodex/mojodex-scheduler/actors"
	"github.com/prometheus/client_golang/prometheus"
)

// replicaMetrics are the series of replicas sharing a store.
type replicaMetrics struct {
	claims    *prometheus.CounterVec
	leases    prometheus.Gauge
	takeovers prometheus.Counter
	fenced    *prometheus.CounterVec
	up        prometheus.Gauge
}

// Replicas registers the series of replicas sharing a state store and
// returns the observer feeding them (pass it to
// supervisor.WithReplicaObserver). Every label value is pre-created.
func (m *Metrics) Replicas() (actors.ReplicaObserver, error) {
	r := &replicaMetrics{
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "claims_total",
			Help:      "Claims of slots made by this replica, by result: won, claimed (by another replica), early (the store's clock is behind this replica's), stale (this replica runs an older task set), failed (the store could not be reached).",
		}, []string{"result"}),
		leases: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "leases_held",
			Help:      "Runs in progress this replica holds a lease on.",
		}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "takeovers_total",
			Help:      "Runs this replica took over from a replica whose lease lapsed.",
		}),
		fenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "fenced_writes_total",
			Help:      "Writes of this replica refused because another replica took the run over, by kind (" + valueList(actors.FencedWrites) + ").",
		}, []string{"kind"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "shared_store_up",
			Help:      "1 when this replica's last heartbeat reached the shared state store, 0 when it failed.",
		}),
	}
	for _, res := range claimResults {
		r.claims.WithLabelValues(res)
	}
	for _, k := range actors.FencedWrites {
		r.fenced.WithLabelValues(string(k))
	}
	for _, c := range []prometheus.Collector{r.claims, r.leases, r.takeovers, r.fenced, r.up} {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return r, nil
}

// claimResults are the result labels of claims_total, in the order of
// the arguments of actors.ReplicaObserver.Claims.
var claimResults = [...]string{"won", "claimed", "early", "stale", "failed"}

// Claims implements actors.ReplicaObserver.
func (r *replicaMetrics) Claims(won, claimed, early, stale, failed int) {
	for i, n := range [...]int{won, claimed, early, stale, failed} {
		if n > 0 {
			r.claims.WithLabelValues(claimResults[i]).Add(float64(n))
		}
	}
}

// LeasesHeld implements actors.ReplicaObserver.
func (r *replicaMetrics) LeasesHeld(n int) { r.leases.Set(float64(n)) }

// TakenOver implements actors.ReplicaObserver.
func (r *replicaMetrics) TakenOver(n int) { r.takeovers.Add(float64(n)) }

// Fenced implements actors.ReplicaObserver.
func (r *replicaMetrics) Fenced(kind actors.FencedWrite) {
	r.fenced.WithLabelValues(string(kind)).Inc()
}

// Heartbeat implements actors.ReplicaObserver.
func (r *replicaMetrics) Heartbeat(ok bool) {
	if ok {
		r.up.Set(1)
	} else {
		r.up.Set(0)
	}
}
