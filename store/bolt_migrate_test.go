package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mojodex/mojodex-scheduler/task"
)

// v1File is the content of a version 1 state file, written by the test
// from the documented version 1 layout (not with this package's code):
// task -> key -> raw JSON value.
type v1File map[string]map[string]string

// writeV1 creates a version 1 state file.
func writeV1(t *testing.T, content v1File) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := bolt.Open(path, 0o600, nil)
	check(t, err)
	check(t, db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		if err := meta.Put([]byte("schema_version"), []byte("1")); err != nil {
			return err
		}
		tasks, err := tx.CreateBucket([]byte("tasks"))
		if err != nil {
			return err
		}
		for name, keys := range content {
			tb, err := tasks.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for k, v := range keys {
				if err := tb.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	check(t, db.Close())
	return path
}

// jsonTime is a time as version 1 stored it.
func jsonTime(t time.Time) string {
	return `"` + t.Format(time.RFC3339Nano) + `"`
}

// v1Runs returns a version 1 run array of n runs of slots 0..n-1; the
// last one is manual and failed.
func v1Runs(n int) string {
	runs := make([]string, n)
	for i := range n {
		r := fmt.Sprintf(`{"slot":%s,"start":%s,"lateness_ns":1000000,"duration_ns":%d,"outcome":"ok","pages":1,"items":%d,"status":200}`,
			jsonTime(slot(i)), jsonTime(slot(i).Add(time.Millisecond)), (i+1)*int(time.Millisecond), i)
		if i == n-1 {
			r = fmt.Sprintf(`{"slot":%s,"start":%s,"manual":true,"lateness_ns":0,"duration_ns":5,"outcome":"failed","pages":2,"items":3,"status":500,"err":"HTTP 500"}`,
				jsonTime(slot(i)), jsonTime(slot(i)))
		}
		runs[i] = r
	}
	return "[" + strings.Join(runs, ",") + "]"
}

func TestBoltMigrateV1(t *testing.T) {
	t.Parallel()
	path := writeV1(t, v1File{
		"full": { // 20 runs, a checkpoint, everything set
			"anchor":     jsonTime(slot(-100)),
			"last_slot":  jsonTime(slot(21)),
			"paused":     "true",
			"runs":       v1Runs(20),
			"checkpoint": fmt.Sprintf(`{"slot":%s,"mode":"offset","pages":3,"offset":150,"items":140}`, jsonTime(slot(21))),
		},
		"plain": { // a claimed slot and one run, no checkpoint
			"last_slot": jsonTime(slot(5)),
			"paused":    "false",
			"runs":      v1Runs(1),
		},
		"empty": {}, // a bucket with nothing in it
	})
	b, err := OpenBolt(path)
	check(t, err)
	if b.MigratedFrom() != 1 {
		t.Errorf("MigratedFrom() = %d, want 1", b.MigratedFrom())
	}
	names, err := b.Tasks()
	check(t, err)
	if strings.Join(names, " ") != "empty full plain" {
		t.Errorf("Tasks() = %q", names)
	}
	states, err := b.Load(names)
	check(t, err)

	full := states["full"]
	if !full.Anchor.Equal(slot(-100)) || !full.LastSlot.Equal(slot(21)) || !full.Paused {
		t.Errorf("full: anchor %s, last slot %s, paused %t", full.Anchor, full.LastSlot, full.Paused)
	}
	if len(full.InProgress) != 1 || !full.InProgress[0].Slot.Equal(slot(21)) ||
		full.InProgress[0].Progress != (task.Progress{Pages: 3, Offset: 150, Items: 140}) {
		t.Errorf("full: in progress %+v, want slot 21 at 3 pages, offset 150, 140 items", full.InProgress)
	}
	runs, err := b.History("full", HistorySize)
	check(t, err)
	if len(runs) != 20 {
		t.Fatalf("full: %d runs, want 20", len(runs))
	}
	for i, r := range runs[:19] {
		want := task.Run{
			Task: "full", Slot: slot(i), Start: slot(i).Add(time.Millisecond), Lateness: time.Millisecond,
			Duration: time.Duration(i+1) * time.Millisecond, Outcome: task.OutcomeOK, Pages: 1, Items: i, Status: 200,
		}
		if !r.Slot.Equal(want.Slot) || !r.Start.Equal(want.Start) || r.Slot.Location() != time.UTC {
			t.Errorf("run %d: slot %s start %s", i, r.Slot, r.Start)
		}
		r.Slot, r.Start, want.Slot, want.Start = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if r != want {
			t.Errorf("run %d = %+v, want %+v", i, r, want)
		}
	}
	if last := full.Last; last == nil || !last.Manual || last.Outcome != task.OutcomeFailed || last.Err != "HTTP 500" || last.Status != 500 {
		t.Errorf("full: last run %+v, want the manual failed one", last)
	}

	plain := states["plain"]
	if !plain.LastSlot.Equal(slot(5)) || plain.Paused || !plain.Anchor.IsZero() || len(plain.InProgress) != 0 || plain.Last == nil {
		t.Errorf("plain: %+v", plain)
	}
	if e, ok := states["empty"]; !ok || !e.LastSlot.IsZero() || e.Last != nil {
		t.Errorf("empty: %+v, %t", e, ok)
	}

	// The claimed slots stay claimed; the next ones are free.
	batch := &Batch{Claims: []Claim{
		{Task: "full", Slot: slot(21)}, {Task: "plain", Slot: slot(5)},
		{Task: "full", Slot: slot(22)}, {Task: "plain", Slot: slot(6)},
	}}
	mustCommit(t, b, batch)
	for i, want := range []bool{false, false, true, true} {
		if batch.Claims[i].Won != want {
			t.Errorf("claim %d after migration: Won = %t, want %t", i, batch.Claims[i].Won, want)
		}
	}
	// The interrupted run of slot 21 ends when recorded.
	mustCommit(t, b, &Batch{Runs: []task.Run{run("full", 21)}})
	check(t, b.Close())

	rawView(t, path, func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get(keySchema)); v != "2" {
			t.Errorf("schema_version after migration = %q, want 2", v)
		}
		return nil
	})
	b, err = OpenBolt(path)
	check(t, err)
	defer b.Close()
	if b.MigratedFrom() != 0 {
		t.Errorf("second open: MigratedFrom() = %d, want 0", b.MigratedFrom())
	}
	states, err = b.Load([]string{"full"})
	check(t, err)
	if st := states["full"]; !st.LastSlot.Equal(slot(22)) || len(st.InProgress) != 1 || !st.InProgress[0].Slot.Equal(slot(22)) {
		t.Errorf("full after reopen: last slot %s, in progress %+v", st.LastSlot, st.InProgress)
	}
}

// TestBoltMigrateV1CheckpointAfterLastSlot keeps a checkpointed slot
// claimed even if the last slot was behind it.
func TestBoltMigrateV1CheckpointAfterLastSlot(t *testing.T) {
	t.Parallel()
	path := writeV1(t, v1File{"a": {
		"last_slot":  jsonTime(slot(1)),
		"checkpoint": fmt.Sprintf(`{"slot":%s,"mode":"drain","pages":1,"offset":0,"items":50}`, jsonTime(slot(2))),
	}})
	b, err := OpenBolt(path)
	check(t, err)
	defer b.Close()
	if claim(t, b, "a", slot(2)) {
		t.Error("the slot of the checkpoint was claimed again")
	}
}

func TestBoltMigrateV1Corrupt(t *testing.T) {
	t.Parallel()
	cases := map[string]v1File{
		"bad runs JSON":        {"a": {"runs": `[{"slot": 12}`}},
		"bad anchor":           {"a": {"anchor": `"yesterday"`}},
		"bad paused":           {"a": {"paused": `"yes"`}},
		"bad checkpoint":       {"a": {"checkpoint": `{"slot":"2026-03-29T01:59:59Z","pages":"many"}`}},
		"checkpoint w/o slot":  {"a": {"checkpoint": `{"mode":"offset","pages":1}`}},
		"slot before 1970":     {"a": {"last_slot": `"1960-01-01T00:00:00Z"`}},
		"one bad task of many": {"a": {"runs": v1Runs(3)}, "b": {"runs": v1Runs(3)}, "c": {"last_slot": `12`}},
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := wantOpenError(t, writeV1(t, content), ErrCorrupt)
			t.Log(err)
		})
	}
	t.Run("key in tasks", func(t *testing.T) {
		t.Parallel()
		path := writeV1(t, v1File{"a": {"runs": v1Runs(1)}})
		rawUpdate(t, path, func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("tasks")).Put([]byte("stray"), []byte("1"))
		})
		t.Log(wantOpenError(t, path, ErrCorrupt))
	})
	t.Run("no tasks bucket", func(t *testing.T) {
		t.Parallel()
		path := writeV1(t, v1File{})
		rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("tasks")) })
		t.Log(wantOpenError(t, path, ErrCorrupt))
	})
}

// TestBoltMigrateV1Atomic checks that the migration is one transaction:
// rolled back after it ran (as a crash before its commit would), it leaves
// the version 1 file as it was, which then migrates normally.
func TestBoltMigrateV1Atomic(t *testing.T) {
	t.Parallel()
	path := writeV1(t, v1File{"a": {"runs": v1Runs(2), "last_slot": jsonTime(slot(1))}, "b": {"paused": "true"}})
	db, err := bolt.Open(path, 0o600, nil)
	check(t, err)
	errStop := errors.New("stop before commit")
	err = db.Update(func(tx *bolt.Tx) error {
		check(t, migrateV1(tx))
		if v := string(tx.Bucket(bucketMeta).Get(keySchema)); v != "2" {
			t.Errorf("schema_version inside the migration = %q", v)
		}
		if err := inspectV2(tx); err != nil {
			t.Errorf("the migrated content does not pass the version 2 checks: %v", err)
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	check(t, db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get(keySchema)); v != "1" {
			t.Errorf("schema_version after the rollback = %q, want 1", v)
		}
		if tx.Bucket([]byte("tasks")).Bucket([]byte("a")) == nil || tx.Bucket(bucketRuns) != nil {
			t.Error("a rolled back migration changed the file")
		}
		return nil
	}))
	check(t, db.Close())
	b, err := OpenBolt(path)
	check(t, err)
	defer b.Close()
	runs, err := b.History("a", HistorySize)
	check(t, err)
	if b.MigratedFrom() != 1 || len(runs) != 2 {
		t.Errorf("migrated from %d with %d runs, want 1 and 2", b.MigratedFrom(), len(runs))
	}
}

// TestBoltMigrateV1BadName refuses a task name version 2 cannot key.
func TestBoltMigrateV1BadName(t *testing.T) {
	t.Parallel()
	path := writeV1(t, v1File{"a": {"runs": v1Runs(2)}, "b\x00c": {"paused": "true"}})
	err := wantOpenError(t, path, ErrCorrupt)
	if !strings.Contains(err.Error(), "malformed task name") {
		t.Errorf("error %q does not say why", err)
	}
}

// TestBoltMigrateV1Newer refuses a file of a newer schema, untouched.
func TestBoltMigrateV1Newer(t *testing.T) {
	t.Parallel()
	path := writeV1(t, v1File{"a": {"runs": v1Runs(1)}})
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("7"))
	})
	t.Log(wantOpenError(t, path, ErrNewerSchema))
}
