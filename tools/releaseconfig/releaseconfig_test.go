// Package releaseconfig checks .goreleaser.yaml without building goreleaser:
// the configuration is read by goreleaser's own loader (pkg/config, strict:
// an unknown or misplaced key fails, as in `goreleaser check`), deprecated
// keys are refused, and what the project expects of its releases is
// asserted (targets, static build flags, the .deb's unit and settings file,
// that every file referred to exists).
package releaseconfig

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/goreleaser/goreleaser/v2/pkg/config"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

func load(t *testing.T) config.Project {
	t.Helper()
	p, err := config.Load(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if p.Version != 2 {
		t.Fatalf(".goreleaser.yaml: version %d; goreleaser v2 reads version: 2", p.Version)
	}
	return p
}

// The strict loader refuses a key goreleaser does not know, so the check
// below cannot pass on a typo.
func TestLoaderIsStrict(t *testing.T) {
	_, err := config.LoadReader(strings.NewReader("version: 2\nbuilds:\n  - id: x\n    goarches: [amd64]\n"))
	if err == nil || !strings.Contains(err.Error(), "goarches") {
		t.Fatalf("unknown key accepted: %v", err)
	}
}

// deprecated lists the non-zero fields of v whose jsonschema tag marks them
// deprecated, by their YAML path.
func deprecated(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return deprecated(v.Elem(), path)
	case reflect.Slice, reflect.Array:
		var out []string
		for i := range v.Len() {
			out = append(out, deprecated(v.Index(i), path+"["+strconv.Itoa(i)+"]")...)
		}
		return out
	case reflect.Map:
		var out []string
		for _, k := range v.MapKeys() {
			out = append(out, deprecated(v.MapIndex(k), path+"."+k.String())...)
		}
		return out
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			p := path
			if name != "" {
				p += "." + name
			}
			if strings.Contains(f.Tag.Get("jsonschema"), "deprecated=true") && !v.Field(i).IsZero() {
				out = append(out, p)
				continue
			}
			out = append(out, deprecated(v.Field(i), p)...)
		}
		return out
	}
	return nil
}

func TestNoDeprecatedKeys(t *testing.T) {
	if d := deprecated(reflect.ValueOf(load(t)), ""); len(d) > 0 {
		t.Errorf(".goreleaser.yaml uses deprecated keys: %s", strings.Join(d, ", "))
	}
	// The walk finds one when there is one.
	var p config.Project
	p.NFPMs = []config.NFPM{{Builds: []string{"x"}}}
	if d := deprecated(reflect.ValueOf(p), ""); !slices.Equal(d, []string{".nfpms[0].builds"}) {
		t.Errorf("deprecated(nfpms[0].builds set) = %v", d)
	}
}

func TestBuild(t *testing.T) {
	p := load(t)
	if len(p.Builds) != 1 {
		t.Fatalf("%d builds; want 1", len(p.Builds))
	}
	b := p.Builds[0]
	if b.Main != "./cmd/mojodex-scheduler" || b.Binary != "mojodex-scheduler" {
		t.Errorf("builds main %q binary %q", b.Main, b.Binary)
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("builds env %v: the binaries must be static (CGO_ENABLED=0)", b.Env)
	}
	if !slices.Contains([]string(b.Flags), "-trimpath") {
		t.Errorf("builds flags %v lack -trimpath", b.Flags)
	}
	if got := sorted(b.Goos); !slices.Equal(got, []string{"darwin", "linux"}) {
		t.Errorf("goos %v; want darwin and linux", got)
	}
	if got := sorted(b.Goarch); !slices.Equal(got, []string{"amd64", "arm64"}) {
		t.Errorf("goarch %v; want amd64 and arm64", got)
	}
}

// The ldflags template gives the version, commit and date to the binary,
// and leaves commit and date out when goreleaser has no git details.
func TestLdflags(t *testing.T) {
	p := load(t)
	flags := strings.Join(p.Builds[0].Ldflags, " ")
	tpl, err := template.New("ldflags").Parse(flags)
	if err != nil {
		t.Fatalf("ldflags %q: %v", flags, err)
	}
	render := func(full, date string) string {
		var buf bytes.Buffer
		data := map[string]string{"Version": "1.2.3", "FullCommit": full, "CommitDate": date}
		if err := tpl.Execute(&buf, data); err != nil {
			t.Fatalf("ldflags: %v", err)
		}
		return strings.Join(strings.Fields(buf.String()), " ")
	}
	if got, want := render("0123abcd", "2026-11-28T10:00:00Z"),
		"-s -w -X main.version=v1.2.3 -X main.commit=0123abcd -X main.date=2026-11-28T10:00:00Z"; got != want {
		t.Errorf("ldflags\n got %s\nwant %s", got, want)
	}
	if got, want := render("none", "0001-01-01T00:00:00Z"),
		"-s -w -X main.version=v1.2.3 -X main.commit= -X main.date="; got != want {
		t.Errorf("ldflags without git details\n got %s\nwant %s", got, want)
	}
}

func TestArchives(t *testing.T) {
	p := load(t)
	if len(p.Archives) != 1 {
		t.Fatalf("%d archives; want 1", len(p.Archives))
	}
	a := p.Archives[0]
	if !slices.Equal([]string(a.Formats), []string{"tar.gz"}) {
		t.Errorf("archive formats %v; want tar.gz", a.Formats)
	}
	var srcs []string
	for _, f := range a.Files {
		srcs = append(srcs, f.Source)
	}
	for _, want := range []string{"LICENSE", "README.md", "CHANGELOG.md",
		"deploy/systemd/mojodex-scheduler.service", "deploy/systemd/mojodex-scheduler.env"} {
		if !slices.Contains(srcs, want) {
			t.Errorf("archives lack %s (have %v)", want, srcs)
		}
	}
	for _, s := range srcs {
		mustExist(t, "archives.files", s)
	}
}

func TestDeb(t *testing.T) {
	p := load(t)
	if len(p.NFPMs) != 1 {
		t.Fatalf("%d nfpms; want 1", len(p.NFPMs))
	}
	n := p.NFPMs[0]
	if !slices.Equal(n.Formats, []string{"deb"}) || n.PackageName != "mojodex-scheduler" || n.License != "MIT" {
		t.Errorf("nfpms: formats %v, package %q, license %q", n.Formats, n.PackageName, n.License)
	}
	contents := map[string]config.NFPMContent{}
	for _, c := range n.Contents {
		contents[c.Destination] = c
		if c.Source != "" {
			mustExist(t, "nfpms.contents", c.Source)
		}
	}
	unit, ok := contents["/usr/lib/systemd/system/mojodex-scheduler.service"]
	if !ok || unit.Source != "deploy/systemd/mojodex-scheduler.service" {
		t.Errorf("the .deb lacks the systemd unit: %+v", unit)
	}
	env, ok := contents["/etc/mojodex-scheduler/env"]
	if !ok || env.Source != "deploy/systemd/mojodex-scheduler.env" || env.Type != "config|noreplace" || env.FileInfo.Mode != 0o600 {
		t.Errorf("the .deb's settings file must be the sample, config|noreplace, mode 0600 (it holds the secret): %+v", env)
	}
	for what, s := range map[string]string{"postinstall": n.Scripts.PostInstall, "preremove": n.Scripts.PreRemove, "postremove": n.Scripts.PostRemove} {
		if s == "" {
			t.Errorf("nfpms.scripts.%s is not set", what)
			continue
		}
		if st := mustExist(t, "nfpms.scripts."+what, s); st != nil && st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", s)
		}
	}

	// The unit runs the binary where the package installs it, and reads
	// the settings file the package installs.
	raw, err := os.ReadFile(filepath.Join(root, unit.Source))
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(n.Bindir, p.Builds[0].Binary)
	if m := regexp.MustCompile(`(?m)^ExecStart=(\S+)`).FindSubmatch(raw); m == nil || string(m[1]) != installed {
		t.Errorf("the unit's ExecStart runs %q; the package installs %s", m, installed)
	}
	if !bytes.Contains(raw, []byte("\nEnvironmentFile=-/etc/mojodex-scheduler/env\n")) {
		t.Errorf("the unit does not read /etc/mojodex-scheduler/env")
	}
}

func mustExist(t *testing.T, key, rel string) os.FileInfo {
	t.Helper()
	st, err := os.Stat(filepath.Join(root, rel))
	if err != nil {
		t.Errorf("%s refers to %s: %v", key, rel, err)
		return nil
	}
	return st
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
