package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Layout of a Bolt state file (schema version 1):
//
//	meta/schema_version       "1" (decimal)
//	tasks/<task>/anchor       JSON string, RFC 3339 with nanoseconds, UTC
//	tasks/<task>/last_slot    JSON string, as anchor
//	tasks/<task>/paused       JSON boolean
//	tasks/<task>/runs         JSON array of runRecord, oldest first
//	tasks/<task>/checkpoint   JSON checkpointRecord
//
// tasks/<task> is a nested bucket; a missing key is the zero value. Values
// are JSON so that `bbolt get` shows them readably; the wire structs below
// decouple the file format from the package's Go types.

// schemaVersion is the version of the layout above that this code writes
// and understands.
const schemaVersion = 1

var (
	bucketMeta    = []byte("meta")
	bucketTasks   = []byte("tasks")
	keySchema     = []byte("schema_version")
	keyAnchor     = []byte("anchor")
	keyLastSlot   = []byte("last_slot")
	keyPaused     = []byte("paused")
	keyRuns       = []byte("runs")
	keyCheckpoint = []byte("checkpoint")
)

// runRecord is the stored form of a Run.
type runRecord struct {
	Slot       time.Time `json:"slot"`
	Start      time.Time `json:"start"`
	Manual     bool      `json:"manual,omitempty"`
	LatenessNS int64     `json:"lateness_ns"`
	DurationNS int64     `json:"duration_ns"`
	Outcome    string    `json:"outcome"`
	Pages      int       `json:"pages"`
	Items      int       `json:"items"`
	Status     int       `json:"status"`
	Err        string    `json:"err,omitempty"`
}

// checkpointRecord is the stored form of a Checkpoint.
type checkpointRecord struct {
	Slot   time.Time `json:"slot"`
	Mode   string    `json:"mode"`
	Pages  int       `json:"pages"`
	Offset int       `json:"offset"`
	Items  int       `json:"items"`
}

// toRecord converts a Run to its stored form.
func toRecord(r Run) runRecord {
	return runRecord{
		Slot: utc(r.Slot), Start: utc(r.Start), Manual: r.Manual,
		LatenessNS: int64(r.Lateness), DurationNS: int64(r.Duration),
		Outcome: r.Outcome, Pages: r.Pages, Items: r.Items, Status: r.Status, Err: r.Err,
	}
}

// fromRecord converts a stored run back to a Run.
func fromRecord(r runRecord) Run {
	return Run{
		Slot: utc(r.Slot), Start: utc(r.Start), Manual: r.Manual,
		Lateness: time.Duration(r.LatenessNS), Duration: time.Duration(r.DurationNS),
		Outcome: r.Outcome, Pages: r.Pages, Items: r.Items, Status: r.Status, Err: r.Err,
	}
}

// put stores v as JSON under key.
func put(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := b.Put(key, data); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// get decodes the JSON under key into v; it reports whether the key exists.
func get(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

// getTime returns the time under key (zero if missing), in UTC.
func getTime(b *bolt.Bucket, key []byte) (time.Time, error) {
	var t time.Time
	if _, err := get(b, key, &t); err != nil {
		return time.Time{}, err
	}
	return utc(t), nil
}

// getRuns returns the stored run history (nil if none).
func getRuns(b *bolt.Bucket) ([]runRecord, error) {
	var runs []runRecord
	if _, err := get(b, keyRuns, &runs); err != nil {
		return nil, err
	}
	return runs, nil
}

// getCheckpoint returns the stored checkpoint (nil if none).
func getCheckpoint(b *bolt.Bucket) (*checkpointRecord, error) {
	var cp checkpointRecord
	ok, err := get(b, keyCheckpoint, &cp)
	if err != nil || !ok {
		return nil, err
	}
	return &cp, nil
}

// decodeTask reads the whole state of a task bucket.
func decodeTask(b *bolt.Bucket) (TaskState, error) {
	var st TaskState
	var err error
	if st.Anchor, err = getTime(b, keyAnchor); err != nil {
		return TaskState{}, err
	}
	if st.LastSlot, err = getTime(b, keyLastSlot); err != nil {
		return TaskState{}, err
	}
	if _, err = get(b, keyPaused, &st.Paused); err != nil {
		return TaskState{}, err
	}
	runs, err := getRuns(b)
	if err != nil {
		return TaskState{}, err
	}
	if len(runs) > 0 {
		st.Runs = make([]Run, len(runs))
		for i, r := range runs {
			st.Runs[i] = fromRecord(r)
		}
	}
	cp, err := getCheckpoint(b)
	if err != nil {
		return TaskState{}, err
	}
	if cp != nil {
		st.Checkpoint = &Checkpoint{Slot: utc(cp.Slot), Mode: cp.Mode, Pages: cp.Pages, Offset: cp.Offset, Items: cp.Items}
	}
	return st, nil
}
