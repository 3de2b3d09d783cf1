package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
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
		UnixNanos(r.Slot), UnixNanos(r.Start), int64(r.Lateness), int64(r.Duration),
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
		Slot: FromUnixNanos(num(0)), Start: FromUnixNanos(num(1)),
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

// keyable reports whether name can key a task in a state file: it is not
// empty and holds no NUL byte, which ends the task name in the keys of the
// inprogress bucket. Batch.Validate refuses other names, so they are never
// stored.
func keyable(name string) bool {
	return name != "" && strings.IndexByte(name, 0) < 0
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
