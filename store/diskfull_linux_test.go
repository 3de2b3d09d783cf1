//go:build linux

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mojodex/mojodex-scheduler/task"
)

// TestCommitterDiskFull fills the file system under a Bolt store (a small
// tmpfs, so it needs root; it runs in CI, where CI=true): commits fail,
// Committer.Err says so (readiness turns false), reads still work, and once
// space is freed the next commit succeeds, Err is nil again, and the file
// reopens intact.
func TestCommitterDiskFull(t *testing.T) {
	if os.Getenv("CI") != "true" || os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs: runs as root with CI=true")
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	check(t, os.Mkdir(mnt, 0o700))
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	path := filepath.Join(mnt, "state.db")
	b, err := OpenBolt(path)
	check(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = b.Close()
		}
	})
	c := NewCommitter(b)
	defer c.Close()
	check(t, c.Commit(&Batch{Claims: []Claim{{Task: "a", Slot: slot(1)}}}))

	// Fill the file system.
	filler, err := os.Create(filepath.Join(mnt, "filler"))
	check(t, err)
	chunk := make([]byte, 4096)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	check(t, filler.Close())

	// A commit that needs new pages: 300 tasks' claims and runs.
	big := func() *Batch {
		batch := &Batch{Claims: []Claim{{Task: "a", Slot: slot(2)}}}
		for i := range 300 {
			name := fmt.Sprintf("task-%03d", i)
			batch.Claims = append(batch.Claims, Claim{Task: name, Slot: slot(1)})
			batch.Runs = append(batch.Runs, task.Run{Task: name, Slot: slot(0), Start: slot(0), Outcome: task.OutcomeOK, Err: string(chunk[:200])})
		}
		return batch
	}
	batch := big()
	err = c.Commit(batch)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit on a full disk: %v, want ENOSPC", err)
	}
	t.Logf("full disk: %v", err)
	if !errors.Is(c.Err(), syscall.ENOSPC) {
		t.Errorf("Err on a full disk = %v, want ENOSPC", c.Err())
	}
	if batch.Claims[0].Won {
		t.Error("a claim of the failed commit was reported won")
	}
	if b.brokenErr() != nil {
		t.Errorf("a failed write of data pages made the store refuse writes: %v", b.brokenErr())
	}
	states, err := b.Load([]string{"a", "task-000"})
	check(t, err)
	if _, ok := states["task-000"]; ok || !states["a"].LastSlot.Equal(slot(1)) {
		t.Errorf("state after the failed commit: %+v", states)
	}

	// Space again: the next commit succeeds and readiness recovers.
	check(t, os.Remove(filepath.Join(mnt, "filler")))
	batch = big()
	check(t, c.Commit(batch))
	if c.Err() != nil {
		t.Errorf("Err after a successful commit = %v, want nil", c.Err())
	}
	if !batch.Claims[0].Won {
		t.Error("claim refused after the disk was freed")
	}
	c.Close()
	check(t, b.Close())
	closed = true
	b, err = OpenBolt(path) // verified from scratch
	check(t, err)
	defer b.Close()
	names, err := b.Tasks()
	check(t, err)
	if len(names) != 301 {
		t.Errorf("%d tasks after reopening, want 301", len(names))
	}
}
