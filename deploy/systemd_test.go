package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/config"
)

const unitFile = "deploy/systemd/mojodex-scheduler.service"

// unitSettings returns the settings of a unit file by key, in order.
func unitSettings(t *testing.T, raw []byte) map[string][]string {
	t.Helper()
	settings := map[string][]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("unit line %q is not KEY=VALUE", line)
			continue
		}
		settings[k] = append(settings[k], v)
	}
	return settings
}

// The unit is sandboxed, keeps its state in its state directory, reloads
// with SIGHUP and gives runs in progress time to finish on stop.
func TestSystemdUnitSettings(t *testing.T) {
	s := unitSettings(t, readFile(t, unitFile))
	one := func(key string) string {
		if len(s[key]) != 1 {
			t.Errorf("%s is set %d times; want once", key, len(s[key]))
			return ""
		}
		return s[key][0]
	}
	for key, want := range map[string]string{
		"ExecStart":               "/usr/bin/mojodex-scheduler run",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"EnvironmentFile":         "-/etc/mojodex-scheduler/env",
		"StateDirectory":          "mojodex-scheduler",
		"DynamicUser":             "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6",
		"Restart":                 "on-failure",
	} {
		if got := one(key); got != want {
			t.Errorf("%s=%s; want %s", key, got, want)
		}
	}
	if f := s["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("SystemCallFilter %v; want @system-service first", f)
	}
	if !slices.Contains(s["Environment"], "MOJODEX_SCHEDULER_STATE=%S/mojodex-scheduler/mojodex-scheduler.db") {
		t.Errorf("Environment %v: the state file must be in the state directory", s["Environment"])
	}

	// TimeoutStopSec is above the scheduler's default shutdown timeout, so
	// that systemd does not kill runs that are finishing.
	cfg, _, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := time.ParseDuration(one("TimeoutStopSec"))
	if err != nil || stop <= cfg.ShutdownTimeout {
		t.Errorf("TimeoutStopSec=%s (%v); want more than MOJODEX_SCHEDULER_SHUTDOWN_TIMEOUT's default %s", s["TimeoutStopSec"], err, cfg.ShutdownTimeout)
	}
}

// The sample settings file names every required variable and sets none
// (the service must not start on placeholder values).
func TestSystemdSampleEnv(t *testing.T) {
	raw := string(readFile(t, "deploy/systemd/mojodex-scheduler.env"))
	for _, v := range []string{"MOJODEX_BACKEND_URI", "BACKGROUND_BACKEND_URI", "MOJODEX_SCHEDULER_SECRET"} {
		if !strings.Contains(raw, "#"+v+"=") {
			t.Errorf("the sample does not show %s", v)
		}
	}
	if m := regexp.MustCompile(`(?m)^[A-Z_]+=`).FindAllString(raw, -1); len(m) > 0 {
		t.Errorf("the sample sets %v; every line must be commented out", m)
	}
}

// systemdRoot lays out a file system root for systemd-analyze: the host's
// unit directory, the unit under test, and stand-ins for the programs the
// unit runs (verify checks they exist; it never runs them).
func systemdRoot(t *testing.T, unit []byte) string {
	t.Helper()
	root := t.TempDir()
	units := "/usr/lib/systemd/system"
	if _, err := os.Stat(units); err != nil {
		t.Skipf("no %s to verify against: %v", units, err)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", units, filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", units, err, out)
	}
	for _, dir := range []string{"etc/systemd/system", "usr/bin", "bin"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, prog := range []string{"usr/bin/mojodex-scheduler", "bin/kill", "usr/bin/true"} {
		if err := os.WriteFile(filepath.Join(root, prog), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/mojodex-scheduler.service"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// analyze runs systemd-analyze on the unit installed in root and returns
// its output; verify reports problems as output with exit status 0.
func analyze(t *testing.T, tool, root string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := append([]string{}, args...)
	a = append(a, "--root="+root, "/etc/systemd/system/mojodex-scheduler.service")
	out, err := exec.CommandContext(ctx, tool, a...).CombinedOutput()
	return string(out), err
}

// systemd-analyze verify finds nothing to say about the unit, and its
// offline security review rates its exposure at most 1.5 (of 10).
//
// It skips, under CI too, where systemd-analyze is not installed or cannot
// verify even a minimal unit in this container.
func TestSystemdAnalyze(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd)")
	}
	canary := []byte("[Unit]\nDescription=canary\n[Service]\nExecStart=/usr/bin/true\n[Install]\nWantedBy=multi-user.target\n")
	if out, err := analyze(t, tool, systemdRoot(t, canary), "verify"); err != nil || strings.TrimSpace(out) != "" {
		t.Skipf("systemd-analyze cannot verify a minimal unit here: %v\n%s", err, out)
	}

	// The canary shows that verify reports a bad setting.
	broken := []byte(strings.Replace(string(readFile(t, unitFile)), "ProtectSystem=strict", "ProtectSytem=strict", 1))
	if out, _ := analyze(t, tool, systemdRoot(t, broken), "verify"); !strings.Contains(out, "ProtectSytem") {
		t.Errorf("verify did not report a misspelt key:\n%s", out)
	}

	root := systemdRoot(t, readFile(t, unitFile))
	if out, err := analyze(t, tool, root, "verify"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := analyze(t, tool, root, "security", "--offline=true", "--threshold=15")
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 1.5, or it failed: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for mojodex-scheduler.service: ([0-9.]+)`).FindStringSubmatch(out); m != nil {
		t.Logf("exposure %s", m[1])
	} else {
		t.Errorf("no exposure level in:\n%s", out)
	}
}
