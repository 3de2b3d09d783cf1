package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/mojodex/mojodex-scheduler/metrics"
	"github.com/rs/zerolog"
)

func stamped(version string, settings map[string]string) *debug.BuildInfo {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/mojodex/mojodex-scheduler", Version: version}}
	for k, v := range settings {
		bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
	}
	return bi
}

func TestResolveBuild(t *testing.T) {
	vcs := map[string]string{
		"vcs.revision": "1c6d3c25346314c39235c7e026f53e1495a7c7cb",
		"vcs.time":     "2026-11-25T22:12:12Z",
		"vcs.modified": "true",
		"GOOS":         "linux",
		"GOARCH":       "arm64",
	}
	for _, tc := range []struct {
		name                        string
		bi                          *debug.BuildInfo
		ldVersion, ldCommit, ldDate string
		want                        buildDetails
	}{
		{
			name: "no build info",
			want: buildDetails{Version: "(devel)", Commit: "unknown", Date: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH},
		},
		{
			name: "toolchain stamps",
			bi:   stamped("v0.0.0-20261125221212-1c6d3c253463+dirty", vcs),
			want: buildDetails{Version: "v0.0.0-20261125221212-1c6d3c253463+dirty", Commit: "1c6d3c25346314c39235c7e026f53e1495a7c7cb",
				Date: "2026-11-25T22:12:12Z", Modified: true, GoVersion: "go1.26.8", Platform: "linux/arm64"},
		},
		{
			name: "no VCS: a devel build",
			bi:   stamped("(devel)", nil),
			want: buildDetails{Version: "(devel)", Commit: "unknown", Date: "unknown", GoVersion: "go1.26.8", Platform: runtime.GOOS + "/" + runtime.GOARCH},
		},
		{
			name:      "the linker overrides every stamp; modified still describes the same commit",
			bi:        stamped("v0.0.0-20261125221212-1c6d3c253463+dirty", vcs),
			ldVersion: "v1.2.0", ldCommit: " 1c6d3c25346314c39235c7e026f53e1495a7c7cb ", ldDate: "2026-11-28T10:00:00Z",
			want: buildDetails{Version: "v1.2.0", Commit: "1c6d3c25346314c39235c7e026f53e1495a7c7cb",
				Date: "2026-11-28T10:00:00Z", Modified: true, GoVersion: "go1.26.8", Platform: "linux/arm64"},
		},
		{
			name:     "another commit from the linker: the tree's modified flag does not apply",
			bi:       stamped("(devel)", vcs),
			ldCommit: "abcdef",
			want: buildDetails{Version: "(devel)", Commit: "abcdef", Date: "2026-11-25T22:12:12Z",
				GoVersion: "go1.26.8", Platform: "linux/arm64"},
		},
		{
			name:      "linker values without build info",
			ldVersion: "v1.2.0", ldCommit: "abcdef", ldDate: "2026-11-28T10:00:00Z",
			want: buildDetails{Version: "v1.2.0", Commit: "abcdef", Date: "2026-11-28T10:00:00Z",
				GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolveBuild(tc.bi, tc.ldVersion, tc.ldCommit, tc.ldDate); got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// setLinkerVars sets the -X variables for one test.
func setLinkerVars(t *testing.T, v, c, d string) {
	t.Helper()
	old := [3]string{version, commit, date}
	version, commit, date = v, c, d
	t.Cleanup(func() { version, commit, date = old[0], old[1], old[2] })
}

// `version` and `--version` print the same thing, on stdout, and exit 0,
// even after a command name.
func TestVersionCommandAndFlag(t *testing.T) {
	setLinkerVars(t, "v1.2.0", "0123456789abcdef", "2026-11-28T10:00:00Z")
	var outs []string
	for _, args := range [][]string{{"version"}, {"--version"}, {"run", "--version"}} {
		var stdout, stderr bytes.Buffer
		if code := execute(args, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
		outs = append(outs, stdout.String())
	}
	want := "mojodex-scheduler v1.2.0\n  commit  0123456789abcdef\n  date    2026-11-28T10:00:00Z\n  go      "
	for i, out := range outs {
		if !strings.HasPrefix(out, want) || !strings.HasSuffix(out, runtime.GOOS+"/"+runtime.GOARCH+"\n") {
			t.Errorf("output %d = %q; want it to start with %q", i, out, want)
		}
		if out != outs[0] {
			t.Errorf("output %d differs from `version`: %q vs %q", i, out, outs[0])
		}
	}
}

func TestBuildDetailsString(t *testing.T) {
	b := buildDetails{Version: "v1.2.0", Commit: "abc", Date: "d", Modified: true, GoVersion: "go1.26.8", Platform: "linux/amd64"}
	want := "mojodex-scheduler v1.2.0\n  commit  abc (modified)\n  date    d\n  go      go1.26.8 linux/amd64"
	if got := b.String(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// The start-up log line and the metric carry the same facts.
func TestBuildDetailsLogAndMetric(t *testing.T) {
	b := buildDetails{Version: "v1.2.0", Commit: "abc", Date: "2026-11-28T10:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().EmbedObject(b).Msg("starting")
	want := `{"level":"info","version":"v1.2.0","commit":"abc","date":"2026-11-28T10:00:00Z","modified":false,"go_version":"go1.26.8","platform":"linux/amd64","message":"starting"}` + "\n"
	if buf.String() != want {
		t.Errorf("log line\n got %s\nwant %s", buf.String(), want)
	}
	if got, want := b.metricsInfo(), (metrics.BuildInfo{Version: "v1.2.0", Commit: "abc", GoVersion: "go1.26.8"}); got != want {
		t.Errorf("metricsInfo = %+v; want %+v", got, want)
	}
}
