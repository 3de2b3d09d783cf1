package metrics

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo holds the labels of mojodex_scheduler_build_info.
type BuildInfo struct {
	// Version is the scheduler's release or pseudo-version.
	Version string
	// Commit is the VCS revision the binary was built from.
	Commit string
	// GoVersion is the Go toolchain that built it; runtime.Version() when empty.
	GoVersion string
}

// RegisterBuildInfo registers mojodex_scheduler_build_info{version, commit,
// go_version}, a gauge that is always 1, on reg. An empty version or commit
// is exported as "unknown", so the series always has all three labels.
func RegisterBuildInfo(reg prometheus.Registerer, info BuildInfo) error {
	if reg == nil {
		return errors.New("metrics: build info: nil registerer")
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "build_info",
		Help:      "Always 1; the labels tell the scheduler's version, commit and Go version.",
		ConstLabels: prometheus.Labels{
			"version":    orUnknown(info.Version),
			"commit":     orUnknown(info.Commit),
			"go_version": orDefault(info.GoVersion, runtime.Version()),
		},
	})
	g.Set(1)
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("metrics: build info: %w", err)
	}
	return nil
}

func orUnknown(s string) string { return orDefault(s, "unknown") }

func orDefault(s, def string) string {
	if s = strings.TrimSpace(s); s != "" {
		return s
	}
	return def
}
