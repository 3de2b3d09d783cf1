package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/testnet"
)

// smallDisk mounts a tmpfs of size bytes and returns its directory. It
// needs root; without it the test is skipped, except under CI=true, where
// a skip would hide the proof, so it fails.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	need := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format+" (CI=true: this test must run)", args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		need("mounting a small tmpfs to fill needs root")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		need("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes to a new file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return path
		}
	}
}

// Fault: the disk holding the state file fills up while tasks fire every
// second, then space is freed. Asserted: /readyz turns 503 naming the
// store and mojodex_scheduler_ready turns 0 while claims fail, the log
// says claims fail; both recover once space is freed, and the tasks fire
// again.
func TestReadinessFollowsAFullDisk(t *testing.T) {
	t.Parallel()
	disk := smallDisk(t, 1<<20)
	stub := startStub(t)
	var entries []string
	for i := range 20 {
		entries = append(entries, taskYAML(fmt.Sprintf("todos-%02d", i), extractTodos, "every: 1s"))
	}
	tasks := taskFile(t, entries...)
	addr := testnet.FreeAddr(t)
	start := time.Now()
	p := startRun(t, stub, tasks, "MOJODEX_SCHEDULER_STATE="+filepath.Join(disk, "state.db"), "MOJODEX_SCHEDULER_HTTP_ADDR="+addr,
		"MOJODEX_SCHEDULER_RATE=1000", "MOJODEX_SCHEDULER_BURST=100", "MOJODEX_SCHEDULER_MAX_IN_FLIGHT=32")
	get := func(path string) (int, string) { return httpGet("http://" + addr + path) }
	// gauge is the value of mojodex_scheduler_ready, -1 when /metrics lacks it.
	gauge := func() float64 {
		_, body := get("/metrics")
		if v, ok := metricValue(body, "mojodex_scheduler_ready"); ok {
			return v
		}
		return -1
	}
	waitFor(t, "readiness", func() bool { code, _ := get("/readyz"); return code == 200 })
	waitFor(t, "a first call", func() bool { return len(stub.CallsTo("/extract_todos")) >= 20 })
	t.Logf("first calls after %v", time.Since(start).Round(time.Millisecond))

	filler := fill(t, disk)
	filled := time.Now()
	var body string
	waitFor(t, "/readyz 503", func() bool {
		var code int
		code, body = get("/readyz")
		return code == 503
	})
	t.Logf("/readyz 503 %v after the disk filled: %q", time.Since(filled).Round(time.Millisecond), strings.TrimSpace(body))
	if !strings.Contains(body, "store") {
		t.Errorf("/readyz does not name the store: %q", body)
	}
	waitFor(t, "mojodex_scheduler_ready 0", func() bool { return gauge() == 0 })
	if !strings.Contains(p.logs.String(), "no space left on device") {
		t.Errorf("the log does not say the disk is full:\n%s", p.logs.String())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	waitFor(t, "/readyz 200 again", func() bool { code, _ := get("/readyz"); return code == 200 })
	t.Logf("/readyz 200 %v after space was freed", time.Since(freed).Round(time.Millisecond))
	waitFor(t, "mojodex_scheduler_ready 1", func() bool { return gauge() == 1 })
	calls := len(stub.CallsTo("/extract_todos"))
	waitFor(t, "the tasks to fire again", func() bool { return len(stub.CallsTo("/extract_todos")) >= calls+20 })
	t.Logf("fired again %v after space was freed", time.Since(freed).Round(time.Millisecond))
	term := time.Now()
	p.stopWith(t, syscall.SIGTERM)
	t.Logf("exited %v after SIGTERM", time.Since(term).Round(time.Millisecond))
}
