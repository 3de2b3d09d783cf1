package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mojodex/mojodex-scheduler/task"
)

// Layout of a state file of schema version 1, read to migrate it to
// version 2:
//
//	meta/schema_version       "1" (decimal)
//	tasks/<task>/anchor       JSON string, RFC 3339 with nanoseconds, UTC
//	tasks/<task>/last_slot    JSON string, as anchor
//	tasks/<task>/paused       JSON boolean
//	tasks/<task>/runs         JSON array of v1Run, oldest first
//	tasks/<task>/checkpoint   JSON v1Checkpoint
//
// tasks/<task> is a nested bucket; a missing key is the zero value.
//
// The migration keeps the anchor, the last claimed slot, the paused flag
// and the last HistorySize runs of every task, and turns the checkpoint (a
// run that was in progress) into the progress of its slot in progress. It
// runs in the transaction that bumps the schema version: a crash leaves the
// version 1 file as it was.

var (
	v1KeyAnchor     = []byte("anchor")
	v1KeyLastSlot   = []byte("last_slot")
	v1KeyPaused     = []byte("paused")
	v1KeyRuns       = []byte("runs")
	v1KeyCheckpoint = []byte("checkpoint")
)

// v1Run is a run as version 1 stored it.
type v1Run struct {
	Slot       time.Time `json:"slot"`
	Start      time.Time `json:"start"`
	Manual     bool      `json:"manual"`
	LatenessNS int64     `json:"lateness_ns"`
	DurationNS int64     `json:"duration_ns"`
	Outcome    string    `json:"outcome"`
	Pages      int       `json:"pages"`
	Items      int       `json:"items"`
	Status     int       `json:"status"`
	Err        string    `json:"err"`
}

// v1Checkpoint is the progress of a run in progress as version 1 stored it
// (its pagination mode is not kept: version 2 takes it from the task).
type v1Checkpoint struct {
	Slot   time.Time `json:"slot"`
	Mode   string    `json:"mode"`
	Pages  int       `json:"pages"`
	Offset int       `json:"offset"`
	Items  int       `json:"items"`
}

// v1Task is everything version 1 stored about a task, in version 2 terms.
type v1Task struct {
	name       string
	rec        taskRecord
	runs       []task.Run
	checkpoint *InProgress
}

// v1Get decodes the JSON under key into v, leaving v alone when the key is
// missing.
func v1Get(b *bolt.Bucket, key []byte, v any) error {
	data := b.Get(key)
	if data == nil {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// v1Time checks that a stored time can be kept by version 2 (which keeps
// times as Unix nanoseconds, 0 for unset) and returns it in nanoseconds.
func v1Time(what string, t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if err := checkInstant(t); err != nil {
		return 0, fmt.Errorf("%s %w", what, err)
	}
	return t.UnixNano(), nil
}

// decodeV1Task reads the bucket of a version 1 task.
func decodeV1Task(name string, b *bolt.Bucket) (v1Task, error) {
	if !keyable(name) {
		return v1Task{}, fmt.Errorf("malformed task name %q", name)
	}
	var (
		anchor, last time.Time
		paused       bool
		runs         []v1Run
		cp           *v1Checkpoint
	)
	for _, get := range []struct {
		key []byte
		v   any
	}{{v1KeyAnchor, &anchor}, {v1KeyLastSlot, &last}, {v1KeyPaused, &paused}, {v1KeyRuns, &runs}, {v1KeyCheckpoint, &cp}} {
		if err := v1Get(b, get.key, get.v); err != nil {
			return v1Task{}, err
		}
	}
	t := v1Task{name: name}
	t.rec.paused = paused
	var err error
	if t.rec.anchor, err = v1Time("anchor", anchor); err != nil {
		return v1Task{}, err
	}
	if t.rec.last, err = v1Time("last_slot", last); err != nil {
		return v1Task{}, err
	}
	if len(runs) > HistorySize {
		runs = runs[len(runs)-HistorySize:]
	}
	for i, r := range runs {
		if _, err := v1Time(fmt.Sprintf("slot of run %d", i+1), r.Slot); err != nil {
			return v1Task{}, err
		}
		if _, err := v1Time(fmt.Sprintf("start of run %d", i+1), r.Start); err != nil {
			return v1Task{}, err
		}
		t.runs = append(t.runs, task.Run{
			Task: name, Slot: r.Slot, Start: r.Start, Manual: r.Manual,
			Lateness: time.Duration(r.LatenessNS), Duration: time.Duration(r.DurationNS),
			Outcome: task.Outcome(r.Outcome), Pages: r.Pages, Items: r.Items, Status: r.Status, Err: r.Err,
		})
	}
	if cp != nil {
		slot, err := v1Time("checkpoint slot", cp.Slot)
		if err != nil {
			return v1Task{}, err
		}
		if slot == 0 {
			return v1Task{}, fmt.Errorf("checkpoint without a slot")
		}
		t.checkpoint = &InProgress{
			Slot:     FromUnixNanos(slot),
			Progress: task.Progress{Pages: cp.Pages, Offset: cp.Offset, Items: cp.Items},
		}
		// A slot in progress was claimed: keep the last claimed slot at or
		// after it, or the slot could be claimed again.
		t.rec.last = max(t.rec.last, slot)
	}
	return t, nil
}

// readV1 decodes every task of a version 1 file.
func readV1(tx *bolt.Tx) ([]v1Task, error) {
	tasks := tx.Bucket(bucketTasks)
	if tasks == nil {
		return nil, corruptf("no %q bucket", bucketTasks)
	}
	var out []v1Task
	err := tasks.ForEach(func(k, v []byte) error {
		if v != nil {
			return corruptf("unexpected key %q in bucket %q", k, bucketTasks)
		}
		t, err := decodeV1Task(string(k), tasks.Bucket(k))
		if err != nil {
			return corruptf("task %q: %w", k, err)
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

// inspectV1 decodes every value of a version 1 file.
func inspectV1(tx *bolt.Tx) error {
	_, err := readV1(tx)
	return err
}

// migrateV1 rewrites a version 1 file as version 2, in tx.
func migrateV1(tx *bolt.Tx) error {
	old, err := readV1(tx)
	if err != nil {
		return err
	}
	// Version 2 reuses the name of the tasks bucket, with flat records.
	if err := tx.DeleteBucket(bucketTasks); err != nil {
		return fmt.Errorf("delete the version 1 bucket %q: %w", bucketTasks, err)
	}
	if err := createDataBuckets(tx); err != nil {
		return err
	}
	bk, err := dataBuckets(tx)
	if err != nil {
		return err
	}
	bk.runs.FillPercent = 0.9 // appended in order
	for _, t := range old {
		if err := bk.tasks.Put([]byte(t.name), t.rec.encode()); err != nil {
			return fmt.Errorf("task %q: %w", t.name, err)
		}
		var seqs []uint64
		for _, r := range t.runs {
			seq, err := bk.runs.NextSequence()
			if err != nil {
				return err
			}
			if err := bk.runs.Put(seqKey(seq), encodeRun(r)); err != nil {
				return fmt.Errorf("task %q: %w", t.name, err)
			}
			seqs = append(seqs, seq)
		}
		if len(seqs) > 0 {
			if err := bk.history.Put([]byte(t.name), encodeHistory(seqs)); err != nil {
				return fmt.Errorf("task %q: %w", t.name, err)
			}
		}
		if cp := t.checkpoint; cp != nil {
			k := subKey(t.name, uint64(UnixNanos(cp.Slot)))
			if err := bk.inProgress.Put(k, encodeProgress(cp.Progress)); err != nil {
				return fmt.Errorf("task %q: %w", t.name, err)
			}
		}
	}
	if err := tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	return nil
}
