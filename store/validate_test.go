package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/store"
)

// A task name that is not UTF-8 is refused by Validate, so that a Committer
// refuses that batch alone instead of a shared store failing the commit of
// every batch merged with it.
func TestValidateRefusesNamesThatAreNotUTF8(t *testing.T) {
	b := &store.Batch{Claims: []store.Claim{{Task: "bad\xff", Slot: time.Date(2026, 3, 29, 2, 0, 0, 0, time.UTC)}}, Pauses: []store.Pause{{Task: "ok"}}}
	err := b.Validate()
	if err == nil || !strings.Contains(err.Error(), `claim of task "bad\xff": the task name is not valid UTF-8`) {
		t.Errorf("Validate = %v", err)
	}
	c := store.NewCommitter(store.NewSharedMemory())
	defer c.Close()
	if err := c.Commit(b); err == nil {
		t.Error("the Committer accepted the batch")
	}
}
