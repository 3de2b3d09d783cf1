package store_test

import (
	"testing"

	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/store/storetest"
)

// SharedMemory keeps the contract of every store, and the shared one.
func TestSharedMemoryConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return store.NewSharedMemory() })
}

func TestSharedMemorySharedConformance(t *testing.T) {
	storetest.RunShared(t, func(*testing.T) store.Shared { return store.NewSharedMemory() })
}
