package metrics

import (
	"strings"
	"testing"

	"github.com/mojodex/mojodex-scheduler/actors"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReplicaSeries(t *testing.T) {
	m, reg := newTestMetrics(t)
	obs, err := m.Replicas()
	if err != nil {
		t.Fatal(err)
	}
	obs.Claims(3, 5, 1, 0, 0)
	obs.Claims(0, 0, 0, 2, 4)
	obs.LeasesHeld(7)
	obs.LeasesHeld(2)
	obs.TakenOver(3)
	obs.Fenced(actors.FencedCheckpoint)
	obs.Fenced(actors.FencedRun)
	obs.Fenced(actors.FencedRun)
	obs.Heartbeat(true)
	obs.Heartbeat(false)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP mojodex_scheduler_claims_total Claims of slots made by this replica, by result: won, claimed (by another replica), early (the store's clock is behind this replica's), stale (this replica runs an older task set), failed (the store could not be reached).
# TYPE mojodex_scheduler_claims_total counter
mojodex_scheduler_claims_total{result="claimed"} 5
mojodex_scheduler_claims_total{result="early"} 1
mojodex_scheduler_claims_total{result="failed"} 4
mojodex_scheduler_claims_total{result="stale"} 2
mojodex_scheduler_claims_total{result="won"} 3
# HELP mojodex_scheduler_fenced_writes_total Writes of this replica refused because another replica took the run over, by kind (checkpoint, run, renew).
# TYPE mojodex_scheduler_fenced_writes_total counter
mojodex_scheduler_fenced_writes_total{kind="checkpoint"} 1
mojodex_scheduler_fenced_writes_total{kind="renew"} 0
mojodex_scheduler_fenced_writes_total{kind="run"} 2
# HELP mojodex_scheduler_leases_held Runs in progress this replica holds a lease on.
# TYPE mojodex_scheduler_leases_held gauge
mojodex_scheduler_leases_held 2
# HELP mojodex_scheduler_shared_store_up 1 when this replica's last heartbeat reached the shared state store, 0 when it failed.
# TYPE mojodex_scheduler_shared_store_up gauge
mojodex_scheduler_shared_store_up 0
# HELP mojodex_scheduler_takeovers_total Runs this replica took over from a replica whose lease lapsed.
# TYPE mojodex_scheduler_takeovers_total counter
mojodex_scheduler_takeovers_total 3
`), "mojodex_scheduler_claims_total", "mojodex_scheduler_fenced_writes_total", "mojodex_scheduler_leases_held", "mojodex_scheduler_shared_store_up", "mojodex_scheduler_takeovers_total"); err != nil {
		t.Error(err)
	}
}
