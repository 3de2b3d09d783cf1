package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/mojodex/mojodex-scheduler/metrics"
	"github.com/rs/zerolog"
)

// Set by the linker in release builds, each overriding what the Go
// toolchain stamped into the binary:
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.commit=$(git rev-parse HEAD) -X main.date=2026-11-28T21:17:00Z"
var (
	version string
	commit  string
	date    string
)

// unknown stands for a build fact that neither the toolchain nor the linker
// recorded.
const unknown = "unknown"

// buildDetails describes this binary: what `version` prints, what the
// start-up log carries (EmbedObject) and what mojodex_scheduler_build_info
// is labelled with (metricsInfo).
type buildDetails struct {
	// Version is the release version (v1.2.0), a Go pseudo-version stamped
	// from the VCS, or "(devel)".
	Version string
	// Commit is the full VCS revision, or "unknown".
	Commit string
	// Date is the commit time (RFC 3339), or "unknown".
	Date string
	// Modified is true when the binary was built from a working tree with
	// uncommitted changes to that commit.
	Modified bool
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
	// Platform is GOOS/GOARCH.
	Platform string
}

// currentBuild returns the details of the running binary.
func currentBuild() buildDetails {
	bi, _ := debug.ReadBuildInfo()
	return resolveBuild(bi, version, commit, date)
}

// resolveBuild combines the toolchain's stamps (bi, nil when the binary has
// none) with the linker's overrides. vcs.modified is reported only when it
// describes the commit reported.
func resolveBuild(bi *debug.BuildInfo, ldVersion, ldCommit, ldDate string) buildDetails {
	b := buildDetails{
		Version:   "(devel)",
		Commit:    unknown,
		Date:      unknown,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	var revision string
	var modified bool
	if bi != nil {
		if v := bi.Main.Version; v != "" {
			b.Version = v
		}
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
		var goos, goarch string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				b.Date = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			case "GOOS":
				goos = s.Value
			case "GOARCH":
				goarch = s.Value
			}
		}
		if goos != "" && goarch != "" {
			b.Platform = goos + "/" + goarch
		}
	}
	if revision != "" {
		b.Commit = revision
	}
	ldVersion, ldCommit, ldDate = strings.TrimSpace(ldVersion), strings.TrimSpace(ldCommit), strings.TrimSpace(ldDate)
	b.Modified = modified && (ldCommit == "" || ldCommit == revision)
	if ldVersion != "" {
		b.Version = ldVersion
	}
	if ldCommit != "" {
		b.Commit = ldCommit
	}
	if ldDate != "" {
		b.Date = ldDate
	}
	return b
}

// String is what `version` and `--version` print.
func (b buildDetails) String() string {
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("mojodex-scheduler %s\n  commit  %s\n  date    %s\n  go      %s %s",
		b.Version, commit, b.Date, b.GoVersion, b.Platform)
}

// MarshalZerologObject adds the build details to a log event, for the
// start-up line: log.Info().EmbedObject(currentBuild()).Msg(...).
func (b buildDetails) MarshalZerologObject(e *zerolog.Event) {
	e.Str("version", b.Version).
		Str("commit", b.Commit).
		Str("date", b.Date).
		Bool("modified", b.Modified).
		Str("go_version", b.GoVersion).
		Str("platform", b.Platform)
}

// metricsInfo returns the labels of mojodex_scheduler_build_info, for
// metrics.RegisterBuildInfo.
func (b buildDetails) metricsInfo() metrics.BuildInfo {
	return metrics.BuildInfo{Version: b.Version, Commit: b.Commit, GoVersion: b.GoVersion}
}

// versionCmd is `mojodex-scheduler version`.
type versionCmd struct{}

// Run prints the build details.
func (versionCmd) Run(a *appEnv) error {
	_, err := fmt.Fprintln(a.stdout, currentBuild())
	if err != nil {
		return fmt.Errorf("print version: %w", err)
	}
	return nil
}

// versionFlag is `mojodex-scheduler --version`: it prints what `version`
// prints and exits 0 before any command is required.
type versionFlag bool

// BeforeReset is kong's hook, run as soon as the flag is seen.
func (versionFlag) BeforeReset(app *kong.Kong) error {
	if _, err := fmt.Fprintln(app.Stdout, currentBuild()); err != nil {
		return fmt.Errorf("print version: %w", err)
	}
	app.Exit(0)
	return nil
}
