package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
)

// Layout of a Bolt state file, schema version 2. Five top-level buckets,
// flat (no nested buckets), laid out so that one commit of many tasks'
// claims and runs rewrites few pages:
//
//	meta        schema_version      -> "2" (decimal text)
//	tasks       <task>              -> task record, 17 bytes
//	inprogress  <task> 00 <slot>    -> progress, 24 bytes
//	history     <task>              -> the <seq> of the task's runs, oldest first, 8 bytes each
//	runs        <seq>               -> run record, 62 bytes and more
//
// <slot> is a slot in Unix nanoseconds, 8 bytes big-endian, so the slots
// of a task in progress are contiguous and in order, found with one cursor
// seek to "<task> 00" (task names never hold a NUL byte: Batch.Validate
// refuses them). <seq> is the runs bucket's sequence number when the run
// was recorded, 8 bytes big-endian.
//
// Where the writes of one commit land: a claim rewrites its task's 17-byte
// record and adds a small in-progress key; a run appends one record at the
// end of the runs bucket (runs are keyed by when they were recorded, not by
// task, so the runs of one fire instant of many tasks fill a few adjacent
// pages instead of one page per two or three tasks), deletes the task's
// oldest run beyond HistorySize (recorded about HistorySize fires ago, so
// those are adjacent too), and rewrites the task's list of at most
// HistorySize sequence numbers. Version 1, by contrast, rewrote a JSON
// array of 20 runs, in a nested bucket of its own, on every run.
//
// Values are fixed-width big-endian fields at fixed offsets, so that a hex
// dump (`bbolt get --format hex`, `bbolt page`) reads directly against the
// tables below, with no field names repeated in every record; strings are
// a uvarint length then the bytes. Times are int64 Unix nanoseconds, 0 when
// unset; durations int64 nanoseconds.
//
// task record:
//
//	0   anchor      int64   anchor of a fixed-rate schedule
//	8   last slot   int64   last claimed slot
//	16  flags       byte    bit 0: paused
//
// progress (of the run of a claimed slot whose run is not recorded yet):
//
//	0   pages, 8 offset, 16 items   int64 each
//
// run record:
//
//	0   flags       byte    bit 0: manual, bit 1: resumed
//	1   slot, 9 start, 17 lateness, 25 duration     int64 each
//	33  pages, 41 items, 49 status                  int64 each
//	57  task, outcome, reason, err, replica         strings
//
// The task name is repeated in the run record so that a run read alone
// (while debugging, or by the consistency check on open) says whose it is.
// Outcome and skip reason are kept as their strings ("ok", "overlap", ...),
// not as codes, so the file does not depend on the order of task.Outcomes.
// Every value is decoded strictly (exact lengths, no unknown flag bits), and
// on open every history entry must point at runs of its own task and every
// run must be listed once: otherwise the file is corrupt.

// schemaVersion is the version of the layout above that this code writes;
// it reads versions 1 (migrated on open, see bolt_migrate.go) and 2.
const schemaVersion = 2

var (
	bucketMeta       = []byte("meta")
	bucketTasks      = []byte("tasks")
	bucketInProgress = []byte("inprogress")
	bucketHistory    = []byte("history")
	bucketRuns       = []byte("runs")
	keySchema        = []byte("schema_version")
)

// Sizes of the fixed-width values.
const (
	taskRecordSize = 17
	progressSize   = 24
	runFixedSize   = 57 // then the strings, at least one byte each
)

// Flag bits.
const (
	taskPaused  = 1 << 0
	runManual   = 1 << 0
	runResumed  = 1 << 1
	runAllFlags = runManual | runResumed
)

// taskRecord is the decoded value of tasks/<task>.
type taskRecord struct {
	anchor, last int64 // Unix nanoseconds; 0 when unset
	paused       bool
}

func (r taskRecord) encode() []byte {
	buf := make([]byte, taskRecordSize)
	binary.BigEndian.PutUint64(buf[0:], uint64(r.anchor))
	binary.BigEndian.PutUint64(buf[8:], uint64(r.last))
	if r.paused {
		buf[16] = taskPaused
	}
	return buf
}

func decodeTaskRecord(v []byte) (taskRecord, error) {
	if len(v) != taskRecordSize {
		return taskRecord{}, fmt.Errorf("task record of %d bytes, want %d", len(v), taskRecordSize)
	}
	if v[16]&^taskPaused != 0 {
		return taskRecord{}, fmt.Errorf("task record with unknown flags %#x", v[16])
	}
	return taskRecord{
		anchor: int64(binary.BigEndian.Uint64(v[0:])),
		last:   int64(binary.BigEndian.Uint64(v[8:])),
		paused: v[16]&taskPaused != 0,
	}, nil
}

func encodeProgress(p task.Progress) []byte {
	buf := make([]byte, progressSize)
	binary.BigEndian.PutUint64(buf[0:], uint64(p.Pages))
	binary.BigEndian.PutUint64(buf[8:], uint64(p.Offset))
	binary.BigEndian.PutUint64(buf[16:], uint64(p.Items))
	return buf
}

func decodeProgress(v []byte) (task.Progress, error) {
	if len(v) != progressSize {
		return task.Progress{}, fmt.Errorf("progress of %d bytes, want %d", len(v), progressSize)
	}
	return task.Progress{
		Pages:  int(int64(binary.BigEndian.Uint64(v[0:]))),
		Offset: int(int64(binary.BigEndian.Uint64(v[8:]))),
		Items:  int(int64(binary.BigEndian.Uint64(v[16:]))),
	}, nil
}

// encodeRun encodes r.
func encodeRun(r task.Run) []byte {
	strs := [...]string{r.Task, string(r.Outcome), string(r.Reason), r.Err, r.Replica}
	size := runFixedSize
	for _, s := range strs {
		size += binary.MaxVarintLen64 + len(s)
	}
	buf := make([]byte, runFixedSize, size)
	if r.Manual {
		buf[0] |= runManual
	}
	if r.Resumed {
		buf[0] |= runResumed
	}
	for i, n := range [...]int64{
		nanos(r.Slot), nanos(r.Start), int64(r.Lateness), int64(r.Duration),
		int64(r.Pages), int64(r.Items), int64(r.Status),
	} {
		binary.BigEndian.PutUint64(buf[1+8*i:], uint64(n))
	}
	for _, s := range strs {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

// decodeRun decodes a run record.
func decodeRun(v []byte) (task.Run, error) {
	if len(v) < runFixedSize {
		return task.Run{}, fmt.Errorf("run record of %d bytes, want at least %d", len(v), runFixedSize)
	}
	if v[0]&^runAllFlags != 0 {
		return task.Run{}, fmt.Errorf("run record with unknown flags %#x", v[0])
	}
	num := func(i int) int64 { return int64(binary.BigEndian.Uint64(v[1+8*i:])) }
	r := task.Run{
		Manual: v[0]&runManual != 0, Resumed: v[0]&runResumed != 0,
		Slot: fromNanos(num(0)), Start: fromNanos(num(1)),
		Lateness: time.Duration(num(2)), Duration: time.Duration(num(3)),
		Pages: int(num(4)), Items: int(num(5)), Status: int(num(6)),
	}
	rest := v[runFixedSize:]
	var strs [5]string
	for i := range strs {
		n, size := binary.Uvarint(rest)
		if size <= 0 || n > uint64(len(rest)-size) {
			return task.Run{}, fmt.Errorf("run record: string %d of its tail is truncated", i+1)
		}
		strs[i] = string(rest[size : size+int(n)])
		rest = rest[size+int(n):]
	}
	if len(rest) > 0 {
		return task.Run{}, fmt.Errorf("run record: %d unexpected bytes at its end", len(rest))
	}
	if strs[0] == "" {
		return task.Run{}, fmt.Errorf("run record without a task name")
	}
	r.Task, r.Outcome, r.Reason, r.Err, r.Replica = strs[0], task.Outcome(strs[1]), task.SkipReason(strs[2]), strs[3], strs[4]
	return r, nil
}

// seqKey returns the key of a run in the runs bucket.
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

// decodeHistory decodes a history entry: the sequence numbers of a task's
// runs, oldest first.
func decodeHistory(v []byte) ([]uint64, error) {
	if len(v) == 0 || len(v)%8 != 0 || len(v)/8 > HistorySize {
		return nil, fmt.Errorf("history entry of %d bytes, want 8 per run and at most %d runs", len(v), HistorySize)
	}
	seqs := make([]uint64, len(v)/8)
	for i := range seqs {
		seqs[i] = binary.BigEndian.Uint64(v[8*i:])
		if i > 0 && seqs[i] <= seqs[i-1] {
			return nil, fmt.Errorf("history entry out of order at run %d", i+1)
		}
	}
	return seqs, nil
}

func encodeHistory(seqs []uint64) []byte {
	buf := make([]byte, 0, 8*len(seqs))
	for _, s := range seqs {
		buf = binary.BigEndian.AppendUint64(buf, s)
	}
	return buf
}

// prefix returns "<task> 00", the start of the task's keys in the
// inprogress bucket.
func prefix(name string) []byte {
	p := make([]byte, 0, len(name)+9)
	p = append(p, name...)
	return append(p, 0)
}

// subKey returns "<task> 00 <n as 8 bytes big-endian>".
func subKey(name string, n uint64) []byte {
	return binary.BigEndian.AppendUint64(prefix(name), n)
}

// splitKey splits a key of the inprogress bucket into the task name and
// the slot.
func splitKey(k []byte) (string, uint64, error) {
	if len(k) < 10 || k[len(k)-9] != 0 {
		return "", 0, fmt.Errorf("malformed key %q", k)
	}
	name := k[:len(k)-9]
	if bytes.IndexByte(name, 0) >= 0 {
		return "", 0, fmt.Errorf("malformed key %q", k)
	}
	return string(name), binary.BigEndian.Uint64(k[len(k)-8:]), nil
}
