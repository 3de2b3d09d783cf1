package metrics

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterBuildInfo(reg, BuildInfo{Version: "v1.2.0", Commit: "0123abcd", GoVersion: "go1.26.8"}); err != nil {
		t.Fatalf("RegisterBuildInfo: %v", err)
	}
	want := `
# HELP mojodex_scheduler_build_info Always 1; the labels tell the scheduler's version, commit and Go version.
# TYPE mojodex_scheduler_build_info gauge
mojodex_scheduler_build_info{commit="0123abcd",go_version="go1.26.8",version="v1.2.0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mojodex_scheduler_build_info"); err != nil {
		t.Error(err)
	}
}

// Empty labels still give a complete series; the Go version defaults to the
// running toolchain.
func TestRegisterBuildInfoDefaults(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterBuildInfo(reg, BuildInfo{Version: " ", Commit: ""}); err != nil {
		t.Fatalf("RegisterBuildInfo: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v; want one series", mfs)
	}
	got := map[string]string{}
	for _, lp := range mfs[0].GetMetric()[0].GetLabel() {
		got[lp.GetName()] = lp.GetValue()
	}
	want := map[string]string{"version": "unknown", "commit": "unknown", "go_version": runtime.Version()}
	if !sameLabels(got, want) {
		t.Errorf("labels = %v; want %v", got, want)
	}
	if v := mfs[0].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("value = %v; want 1", v)
	}
}

func TestRegisterBuildInfoErrors(t *testing.T) {
	if err := RegisterBuildInfo(nil, BuildInfo{}); err == nil || !strings.Contains(err.Error(), "nil registerer") {
		t.Errorf("nil registerer: %v", err)
	}
	reg := prometheus.NewRegistry()
	if err := RegisterBuildInfo(reg, BuildInfo{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	err := RegisterBuildInfo(reg, BuildInfo{Version: "v1"})
	if err == nil || !strings.Contains(err.Error(), "build info") {
		t.Errorf("second registration: %v; want an error naming the build info", err)
	}
	if n, err := testutil.GatherAndCount(reg, "mojodex_scheduler_build_info"); err != nil || n != 1 {
		t.Errorf("%d series (%v) after a refused registration; want 1", n, err)
	}
}
