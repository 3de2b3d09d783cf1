package store_test

import (
	"path/filepath"
	"testing"

	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return store.NewMemory() })
}

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openReopenable(t, filepath.Join(t.TempDir(), "state", "scheduler.db"))
	})
}

// reopenableBolt is a Bolt store that the conformance suite may close and
// reopen over the same file.
type reopenableBolt struct {
	*store.Bolt
}

func openReopenable(t *testing.T, path string) reopenableBolt {
	t.Helper()
	b, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return reopenableBolt{b}
}

// Reopen implements storetest.Reopener.
func (r reopenableBolt) Reopen(t *testing.T) store.Store {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Fatalf("close before reopening: %v", err)
	}
	return openReopenable(t, r.Path())
}
