package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

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
//	runs        <seq>               -> run record, 63 bytes or more
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

// lockTimeout is how long OpenBolt waits for the file lock held by another
// process before giving up with ErrInUse.
const lockTimeout = time.Second

// Bolt is a Store in one bbolt file (layout above). Commit
// applies a whole Batch in one bbolt transaction, fsynced before it returns:
// a crash leaves the state before the batch or after it, never part of it.
type Bolt struct {
	db       *bolt.DB
	path     string
	migrated int // schema version the file was migrated from on open; 0 if none

	closed atomic.Bool
	// writes counts committed write transactions (each costs two
	// fdatasyncs), for tests and benchmarks.
	writes atomic.Uint64

	mu sync.Mutex
	// broken is set when a commit failed after its meta page may have
	// reached the file: the in-memory free-page list no longer matches the
	// file, so later writes are refused until the file is reopened.
	broken error

	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*Bolt)(nil)

// boltTuning holds the bbolt options chosen for the state file, kept apart
// so that benchmarks can compare them (BenchmarkBoltOptions,
// BenchmarkOpenBolt).
type boltTuning struct {
	// noFreelistSync: commits do not write the free-page list. bbolt
	// rebuilds it on open by walking the file (as OpenBolt's verification
	// does anyway; opening a file of 10,000 tasks with full histories takes
	// about half a second either way) and after a failed commit. Measured:
	// a commit of one claim writes 7 pages instead of 8.
	noFreelistSync bool
	// freelist is the in-memory free-page list: the hashmap one allocates
	// in constant time where the array one scans and shifts a sorted
	// slice, which matters once a file is large and fragmented; at the
	// sizes measured the two do not differ beyond noise.
	freelist bolt.FreelistType
}

// defaultTuning is what OpenBolt uses.
var defaultTuning = boltTuning{noFreelistSync: true, freelist: bolt.FreelistMapType}

func (t boltTuning) options() *bolt.Options {
	return &bolt.Options{
		Timeout:        lockTimeout,
		NoFreelistSync: t.noFreelistSync,
		FreelistType:   t.freelist,
		// Never NoSync: a claim must be on disk before its slot fires.
	}
}

// OpenBolt opens or creates the state file at path (creating its directory
// with mode 0o750, the file with mode 0o600).
//
// An existing file is checked, read-only, before it is opened for writing:
// if it is corrupt, truncated, not a bbolt database or not a scheduler state
// file, the error wraps ErrCorrupt; if it was written with a newer schema,
// ErrNewerSchema. An existing empty file is corrupt too. In all these cases
// the file is not modified: nothing is ever reset silently. A file of
// schema version 1 is migrated to version 2 in one transaction (all of it
// or nothing). If another process holds the file, OpenBolt gives up after
// about a second with an error wrapping ErrInUse. Every error names the
// file.
func OpenBolt(path string) (*Bolt, error) {
	return openBolt(path, defaultTuning)
}

func openBolt(path string, tune boltTuning) (*Bolt, error) {
	if path == "" {
		return nil, errors.New("open state file: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create the directory of state file %s: %w", path, err)
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A new file: bbolt creates it.
	case err != nil:
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	case info.IsDir():
		return nil, fmt.Errorf("open state file %s: it is a directory", path)
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("open state file %s: not a regular file (%s)", path, info.Mode().Type())
	case info.Size() == 0:
		// Only a crash while bbolt created the file, or an accident, leaves
		// it empty; either way the state is gone, which must not go unnoticed.
		return nil, describe(path, corruptf("empty (0 bytes)"))
	default:
		if err := verify(path); err != nil {
			return nil, describe(path, err)
		}
	}
	b := &Bolt{path: path}
	db, err := openDB(path, tune.options(), func(db *bolt.DB) error {
		from, err := prepare(db)
		b.migrated = from
		return err
	})
	if err != nil {
		return nil, describe(path, err)
	}
	b.db = db
	return b, nil
}

// describe turns an error from opening path into the message OpenBolt reports.
func describe(path string, err error) error {
	switch {
	case errors.Is(err, ErrInUse):
		return fmt.Errorf("state file %s is %w", path, ErrInUse)
	case errors.Is(err, ErrCorrupt):
		return fmt.Errorf("state file %s is %w; it was left untouched (move it away to start afresh)", path, err)
	case errors.Is(err, ErrNewerSchema):
		return fmt.Errorf("state file %s: %w", path, err)
	default:
		return fmt.Errorf("open state file %s: %w", path, err)
	}
}

// corruptf returns an error wrapping ErrCorrupt with a detail; %w in format
// wraps a cause as well.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrCorrupt, fmt.Errorf(format, args...))
}

// classify maps an error of bolt.Open to ErrInUse, ErrCorrupt, or leaves it
// (an I/O or permission error).
func classify(err error) error {
	var errno syscall.Errno
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return ErrInUse
	case errors.As(err, &pathErr), errors.As(err, &errno):
		return err
	default:
		// ErrInvalid, ErrChecksum, ErrVersionMismatch, "file size too small", ...
		return corruptf("%w", err)
	}
}

// guard runs fn, turning a panic into an error. Memory faults are turned into
// panics too (debug.SetPanicOnFault): bbolt maps the file into memory, and a
// truncated or damaged file makes it read past the end of the file, which
// would otherwise kill the process with SIGBUS. Used while opening, where
// bbolt also panics on pages it cannot make sense of.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corruptf("reading it failed: %v", r)
		}
	}()
	return fn()
}

// guardFault runs fn, turning a memory fault (the file was truncated under
// the running process) into an error. Other panics are not recovered: once
// a file has been verified, they are bugs.
func guardFault(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if re, ok := r.(runtime.Error); ok {
				if _, fault := re.(interface{ Addr() uintptr }); fault {
					err = corruptf("reading it failed: %v", r)
					return
				}
			}
			panic(r)
		}
	}()
	return fn()
}

// openDB opens path with bbolt and runs check on it, all under guard. On any
// failure nothing stays open (not even after a panic inside bolt.Open) and the
// error is classified.
func openDB(path string, opts *bolt.Options, check func(*bolt.DB) error) (*bolt.DB, error) {
	var file *os.File
	o := *opts
	o.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	var db *bolt.DB
	err := guard(func() error {
		var err error
		if db, err = bolt.Open(path, 0o600, &o); err != nil {
			db = nil
			return classify(err)
		}
		return check(db)
	})
	if err != nil {
		if db != nil {
			_ = db.Close()
		} else if file != nil {
			// bolt.Open panicked with the file open (and locked), or closed it
			// already (then this is a no-op).
			_ = file.Close()
		}
		return nil, err
	}
	return db, nil
}

// verify checks an existing, non-empty state file without writing to it:
// it is opened read-only, its size is checked against bbolt's high-water
// mark, every stored value is decoded and bbolt's consistency check is run.
func verify(path string) error {
	opts := &bolt.Options{ReadOnly: true, Timeout: lockTimeout}
	db, err := openDB(path, opts, func(db *bolt.DB) error {
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		return db.View(func(tx *bolt.Tx) error { return inspect(tx, info.Size()) })
	})
	if err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close after checking: %w", err)
	}
	return nil
}

// inspect checks a whole state file in a read-only transaction.
func inspect(tx *bolt.Tx, fileSize int64) error {
	if need := tx.Size(); need > fileSize {
		return corruptf("truncated: %d bytes, the database needs %d", fileSize, need)
	}
	version, err := readSchema(tx)
	if err != nil {
		return err
	}
	switch version {
	case 0:
		// A file bbolt initialized but the scheduler did not (a crash between
		// the two): OpenBolt initializes it.
	case 1:
		err = inspectV1(tx)
	default:
		err = inspectV2(tx)
	}
	if err != nil {
		return err
	}
	var first error
	for err := range tx.Check() { // drain: the check runs in a goroutine
		if first == nil {
			first = corruptf("consistency check: %w", err)
		}
	}
	return first
}

// readSchema returns the schema version of the file: 0 for a file without
// any bucket, which bbolt created but the scheduler did not initialize.
func readSchema(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		if k, _ := tx.Cursor().First(); k != nil {
			return 0, corruptf("not a scheduler state file: bucket %q but no %q bucket", k, bucketMeta)
		}
		return 0, nil
	}
	raw := meta.Get(keySchema)
	if raw == nil {
		return 0, corruptf("no schema version")
	}
	v, err := strconv.ParseUint(string(raw), 10, 32)
	if err != nil || v == 0 {
		return 0, corruptf("bad schema version %q", raw)
	}
	if v > schemaVersion {
		return 0, fmt.Errorf("%w: the file has version %d, this program understands up to %d", ErrNewerSchema, v, schemaVersion)
	}
	return int(v), nil
}

// boltBuckets are the data buckets of a version 2 file.
type boltBuckets struct {
	tasks, inProgress, history, runs *bolt.Bucket
}

// dataBuckets returns the data buckets of a version 2 file.
func dataBuckets(tx *bolt.Tx) (boltBuckets, error) {
	bk := boltBuckets{
		tasks: tx.Bucket(bucketTasks), inProgress: tx.Bucket(bucketInProgress),
		history: tx.Bucket(bucketHistory), runs: tx.Bucket(bucketRuns),
	}
	for i, b := range []*bolt.Bucket{bk.tasks, bk.inProgress, bk.history, bk.runs} {
		if b == nil {
			return boltBuckets{}, corruptf("no %q bucket", dataBucketNames[i])
		}
	}
	return bk, nil
}

// dataBucketNames are the names of the data buckets, in boltBuckets order.
var dataBucketNames = [][]byte{bucketTasks, bucketInProgress, bucketHistory, bucketRuns}

// inspectV2 decodes every value of a version 2 file and checks that they
// agree: every slot in progress and every history belongs to a stored task,
// every history lists runs of its own task, and every run is listed once.
func inspectV2(tx *bolt.Tx) error {
	bk, err := dataBuckets(tx)
	if err != nil {
		return err
	}
	// flat checks that a bucket holds no nested bucket.
	flat := func(name []byte, k, v []byte) error {
		if v == nil {
			return corruptf("unexpected nested bucket %q in bucket %q", k, name)
		}
		return nil
	}
	// known checks that a task has a record.
	known := func(where []byte, name string) error {
		if bk.tasks.Get([]byte(name)) == nil {
			return corruptf("bucket %q: task %q has no record in bucket %q", where, name, bucketTasks)
		}
		return nil
	}
	err = bk.tasks.ForEach(func(k, v []byte) error {
		if err := flat(bucketTasks, k, v); err != nil {
			return err
		}
		if !keyable(string(k)) {
			return corruptf("malformed task name %q in bucket %q", k, bucketTasks)
		}
		if _, err := decodeTaskRecord(v); err != nil {
			return corruptf("task %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	last := ""
	err = bk.inProgress.ForEach(func(k, v []byte) error {
		if err := flat(bucketInProgress, k, v); err != nil {
			return err
		}
		name, _, err := splitKey(k)
		if err != nil {
			return corruptf("bucket %q: %w", bucketInProgress, err)
		}
		if name != last {
			if err := known(bucketInProgress, name); err != nil {
				return err
			}
			last = name
		}
		if _, err := decodeProgress(v); err != nil {
			return corruptf("bucket %q, task %q: %w", bucketInProgress, name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	owner := make(map[uint64]string) // run sequence number -> task listing it
	err = bk.history.ForEach(func(k, v []byte) error {
		if err := flat(bucketHistory, k, v); err != nil {
			return err
		}
		if err := known(bucketHistory, string(k)); err != nil {
			return err
		}
		seqs, err := decodeHistory(v)
		if err != nil {
			return corruptf("bucket %q, task %q: %w", bucketHistory, k, err)
		}
		for _, seq := range seqs {
			if other, dup := owner[seq]; dup {
				return corruptf("bucket %q: run %d listed by tasks %q and %q", bucketHistory, seq, other, k)
			}
			owner[seq] = string(k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = bk.runs.ForEach(func(k, v []byte) error {
		if err := flat(bucketRuns, k, v); err != nil {
			return err
		}
		if len(k) != 8 {
			return corruptf("bucket %q: malformed key %q", bucketRuns, k)
		}
		seq := binary.BigEndian.Uint64(k)
		if seq > bk.runs.Sequence() {
			// The next run would be written over this one.
			return corruptf("bucket %q: run %d is after the bucket's sequence %d", bucketRuns, seq, bk.runs.Sequence())
		}
		r, err := decodeRun(v)
		if err != nil {
			return corruptf("bucket %q, run %d: %w", bucketRuns, seq, err)
		}
		name, listed := owner[seq]
		switch {
		case !listed:
			return corruptf("bucket %q: run %d of task %q is in no history", bucketRuns, seq, r.Task)
		case name != r.Task:
			return corruptf("bucket %q: run %d of task %q is listed by task %q", bucketRuns, seq, r.Task, name)
		}
		delete(owner, seq)
		return nil
	})
	if err != nil {
		return err
	}
	if len(owner) > 0 {
		seq := slices.Min(slices.Collect(maps.Keys(owner)))
		return corruptf("bucket %q: task %q lists run %d, which is missing", bucketHistory, owner[seq], seq)
	}
	return nil
}

// prepare brings a state file opened for writing to schema version 2:
// it initializes a new file, migrates a version 1 file, or checks a version
// 2 one. It returns the version the file was migrated from (0 if none).
func prepare(db *bolt.DB) (int, error) {
	var version int
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		if version, err = readSchema(tx); err != nil || version != schemaVersion {
			return err
		}
		_, err = dataBuckets(tx)
		return err
	})
	if err != nil || version == schemaVersion {
		return 0, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		// Read again: the file is locked now, but was not during View.
		version, err := readSchema(tx)
		switch {
		case err != nil:
			return err
		case version == 0:
			return initSchema(tx)
		case version == 1:
			return migrateV1(tx)
		}
		_, err = dataBuckets(tx)
		return err
	})
	if err != nil {
		if version == 0 {
			return 0, fmt.Errorf("initialize: %w", err)
		}
		return 0, fmt.Errorf("migrate from schema version %d to %d: %w", version, schemaVersion, err)
	}
	return version, nil
}

// initSchema writes the buckets and schema version into a file without any.
func initSchema(tx *bolt.Tx) error {
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return fmt.Errorf("create bucket %q: %w", bucketMeta, err)
	}
	if err := meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	return createDataBuckets(tx)
}

// createDataBuckets creates the data buckets of version 2.
func createDataBuckets(tx *bolt.Tx) error {
	for _, name := range dataBucketNames {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %q: %w", name, err)
		}
	}
	return nil
}

// Path returns the path of the state file, as given to OpenBolt.
func (b *Bolt) Path() string {
	return b.path
}

// MigratedFrom returns the schema version the file was migrated from when
// it was opened (1), or 0 when it needed no migration.
func (b *Bolt) MigratedFrom() int {
	return b.migrated
}

// view runs fn in a read-only transaction, mapping a closed database to
// ErrClosed.
func (b *Bolt) view(fn func(*bolt.Tx) error) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return closedErr(guardFault(func() error { return b.db.View(fn) }))
}

// closedErr maps bbolt's "database not open" to ErrClosed.
func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Load implements Store.
func (b *Bolt) Load(names []string) (map[string]TaskState, error) {
	out := make(map[string]TaskState, len(names))
	err := b.view(func(tx *bolt.Tx) error {
		bk, err := dataBuckets(tx)
		if err != nil {
			return err
		}
		for _, name := range names {
			if !keyable(name) {
				continue // never stored
			}
			st, ok, err := bk.load(name)
			if err != nil {
				return err
			}
			if ok {
				out[name] = st
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %d tasks from state file %s: %w", len(names), b.path, err)
	}
	return out, nil
}

// load reads the state of one task; ok is false when nothing is stored.
func (bk boltBuckets) load(name string) (st TaskState, ok bool, err error) {
	v := bk.tasks.Get([]byte(name))
	if v == nil {
		return TaskState{}, false, nil
	}
	rec, err := decodeTaskRecord(v)
	if err != nil {
		return TaskState{}, false, corruptf("task %q: %w", name, err)
	}
	st = TaskState{Anchor: FromUnixNanos(rec.anchor), LastSlot: FromUnixNanos(rec.last), Paused: rec.paused}
	p := prefix(name)
	c := bk.inProgress.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		_, slot, err := splitKey(k)
		if err != nil {
			return TaskState{}, false, corruptf("task %q: %w", name, err)
		}
		progress, err := decodeProgress(v)
		if err != nil {
			return TaskState{}, false, corruptf("task %q, slot in progress: %w", name, err)
		}
		st.InProgress = append(st.InProgress, InProgress{Slot: FromUnixNanos(int64(slot)), Progress: progress})
	}
	runs, err := bk.runsOf(name, 1)
	if err != nil {
		return TaskState{}, false, err
	}
	if len(runs) > 0 {
		st.Last = &runs[0]
	}
	return st, true, nil
}

// runsOf returns the task's last n runs, oldest first.
func (bk boltBuckets) runsOf(name string, n int) ([]task.Run, error) {
	seqs, err := bk.historyOf(name)
	if err != nil || len(seqs) == 0 {
		return nil, err
	}
	seqs = seqs[max(0, len(seqs)-n):]
	out := make([]task.Run, len(seqs))
	for i, seq := range seqs {
		v := bk.runs.Get(seqKey(seq))
		if v == nil {
			return nil, corruptf("task %q: run %d is missing", name, seq)
		}
		r, err := decodeRun(v)
		if err != nil {
			return nil, corruptf("task %q, run %d: %w", name, seq, err)
		}
		if r.Task != name {
			return nil, corruptf("task %q lists run %d of task %q", name, seq, r.Task)
		}
		out[i] = r
	}
	return out, nil
}

// historyOf returns the sequence numbers of the task's runs, oldest first.
func (bk boltBuckets) historyOf(name string) ([]uint64, error) {
	v := bk.history.Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	seqs, err := decodeHistory(v)
	if err != nil {
		return nil, corruptf("task %q: %w", name, err)
	}
	return seqs, nil
}

// History implements Store.
func (b *Bolt) History(name string, n int) ([]task.Run, error) {
	if n <= 0 || !keyable(name) {
		return nil, nil
	}
	var out []task.Run
	err := b.view(func(tx *bolt.Tx) error {
		bk, err := dataBuckets(tx)
		if err != nil {
			return err
		}
		out, err = bk.runsOf(name, min(n, HistorySize))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("history of task %q from state file %s: %w", name, b.path, err)
	}
	return out, nil
}

// Commit implements Store: the whole batch is one bbolt transaction (one
// db.Update, two fdatasyncs). An empty batch writes nothing.
func (b *Bolt) Commit(batch *Batch) error {
	if err := batch.Validate(); err != nil {
		return fmt.Errorf("commit to state file %s: %w", b.path, err)
	}
	return b.commitValidated(batch)
}

// commitValidated is Commit for a batch already validated (by Commit, or by
// the Committer that merged it).
func (b *Bolt) commitValidated(batch *Batch) error {
	if b.closed.Load() {
		return fmt.Errorf("commit to state file %s: %w", b.path, ErrClosed)
	}
	if err := b.brokenErr(); err != nil {
		return fmt.Errorf("commit to state file %s: %w", b.path, err)
	}
	if batch.Len() == 0 {
		return nil
	}
	var txid int
	applied := false
	err := guardFault(func() error {
		return b.db.Update(func(tx *bolt.Tx) error {
			txid = tx.ID()
			if err := apply(tx, batch); err != nil {
				return err
			}
			applied = true
			return nil
		})
	})
	if err != nil {
		clearResults(batch)
		if applied {
			b.checkAfterFailure(txid, err)
		}
		return fmt.Errorf("commit %d writes to state file %s: %w", batch.Len(), b.path, closedErr(err))
	}
	b.writes.Add(1)
	return nil
}

// brokenErr returns the error that makes the store refuse writes, if any.
func (b *Bolt) brokenErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.broken
}

// checkAfterFailure runs after the commit of write transaction txid failed
// while bbolt wrote it (a full disk, an I/O error). Most such failures
// happen before the meta page is written (writing the data pages into a
// full file system fails), and the file and bbolt's memory are as before:
// later commits may succeed. If instead the meta page of the failed
// transaction is visible (its fdatasync failed after the write), bbolt's
// in-memory free-page list has been rolled back under a file that moved
// on, and writing more could reuse live pages: the store refuses writes
// from then on, and reopening the file (restarting) recovers it.
func (b *Bolt) checkAfterFailure(txid int, cause error) {
	visible := 0
	if err := b.db.View(func(tx *bolt.Tx) error { visible = tx.ID(); return nil }); err != nil {
		return // closed meanwhile
	}
	if visible < txid {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.broken == nil {
		b.broken = fmt.Errorf("a failed write (%v) may have reached the file: writes are refused until it is reopened", cause)
	}
}

// clearResults resets the result fields of a batch that was not applied.
func clearResults(batch *Batch) {
	for i := range batch.Anchors {
		batch.Anchors[i].Stored = time.Time{}
	}
	for i := range batch.Claims {
		batch.Claims[i].Won, batch.Claims[i].Refused = false, ""
	}
	batch.RunsFenced = nil
}

// zeroProgress is the value of a slot just claimed. Never modified.
var zeroProgress = make([]byte, progressSize)

// applier applies one Batch inside a write transaction. Task records and
// histories are read once, changed in memory and written back once, at
// the end.
type applier struct {
	boltBuckets
	recs map[string]*pendingRecord
	// histories are the sequence numbers of the runs of the tasks that
	// recorded runs in this batch (so all are written back).
	histories map[string][]uint64
}

type pendingRecord struct {
	rec           taskRecord
	exists, dirty bool
}

// apply applies batch in tx, in the order documented on Batch, and fills in
// its results.
func apply(tx *bolt.Tx, batch *Batch) error {
	bk, err := dataBuckets(tx)
	if err != nil {
		return err
	}
	// Runs are appended at the end of their bucket: fill its pages rather
	// than leave them half empty (bbolt's default for random inserts).
	bk.runs.FillPercent = 0.9
	a := &applier{boltBuckets: bk, recs: make(map[string]*pendingRecord), histories: make(map[string][]uint64)}
	for i := range batch.Anchors {
		an := &batch.Anchors[i]
		p, err := a.record(an.Task)
		if err != nil {
			return err
		}
		if p.rec.anchor == 0 {
			p.rec.anchor, p.dirty = UnixNanos(an.Anchor), true
		}
		an.Stored = FromUnixNanos(p.rec.anchor)
	}
	for i := range batch.Claims {
		c := &batch.Claims[i]
		p, err := a.record(c.Task)
		if err != nil {
			return err
		}
		slot := UnixNanos(c.Slot)
		c.Won, c.Refused = p.rec.last == 0 || slot > p.rec.last, ""
		if !c.Won {
			c.Refused = RefusedClaimed
			continue
		}
		p.rec.last, p.dirty = slot, true
		if err := a.inProgress.Put(subKey(c.Task, uint64(slot)), zeroProgress); err != nil {
			return fmt.Errorf("claim slot %s of task %q: %w", c.Slot.UTC().Format(time.RFC3339Nano), c.Task, err)
		}
	}
	for _, c := range batch.Checkpoints {
		k := subKey(c.Task, uint64(UnixNanos(c.Slot)))
		if a.inProgress.Get(k) == nil {
			continue // recorded already: never resurrected
		}
		if err := a.inProgress.Put(k, encodeProgress(c.Progress)); err != nil {
			return fmt.Errorf("checkpoint slot %s of task %q: %w", c.Slot.UTC().Format(time.RFC3339Nano), c.Task, err)
		}
	}
	for _, r := range batch.Runs {
		if err := a.recordRun(r); err != nil {
			return fmt.Errorf("record run of slot %s of task %q: %w", r.Slot.UTC().Format(time.RFC3339Nano), r.Task, err)
		}
	}
	for _, pa := range batch.Pauses {
		p, err := a.record(pa.Task)
		if err != nil {
			return err
		}
		if p.rec.paused != pa.Paused || !p.exists {
			p.rec.paused, p.dirty = pa.Paused, true
		}
	}
	return a.flush()
}

// record returns the task's record, read from the tasks bucket on first use
// (a zero record, to be created, for a new task).
func (a *applier) record(name string) (*pendingRecord, error) {
	if p, ok := a.recs[name]; ok {
		return p, nil
	}
	p := &pendingRecord{}
	if v := a.tasks.Get([]byte(name)); v != nil {
		rec, err := decodeTaskRecord(v)
		if err != nil {
			return nil, corruptf("task %q: %w", name, err)
		}
		p.rec, p.exists = rec, true
	} else {
		p.dirty = true // a new task: its record is created
	}
	a.recs[name] = p
	return p, nil
}

// recordRun appends r to the runs, deletes its task's oldest beyond
// HistorySize, and ends its slot's time in progress unless it is manual.
func (a *applier) recordRun(r task.Run) error {
	if _, err := a.record(r.Task); err != nil {
		return err
	}
	seqs, ok := a.histories[r.Task]
	if !ok {
		var err error
		if seqs, err = a.historyOf(r.Task); err != nil {
			return err
		}
	}
	seq, err := a.runs.NextSequence()
	if err != nil {
		return err
	}
	if err := a.runs.Put(seqKey(seq), encodeRun(r)); err != nil {
		return err
	}
	seqs = append(seqs, seq)
	if drop := len(seqs) - HistorySize; drop > 0 {
		for _, old := range seqs[:drop] {
			if err := a.runs.Delete(seqKey(old)); err != nil {
				return err
			}
		}
		seqs = append(seqs[:0], seqs[drop:]...)
	}
	a.histories[r.Task] = seqs
	if r.Manual {
		return nil
	}
	return a.inProgress.Delete(subKey(r.Task, uint64(UnixNanos(r.Slot))))
}

// flush writes the changed task records and histories, in key order.
func (a *applier) flush() error {
	for _, name := range slices.Sorted(maps.Keys(a.recs)) {
		if p := a.recs[name]; p.dirty {
			if err := a.tasks.Put([]byte(name), p.rec.encode()); err != nil {
				return fmt.Errorf("write the record of task %q: %w", name, err)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.histories)) {
		if err := a.history.Put([]byte(name), encodeHistory(a.histories[name])); err != nil {
			return fmt.Errorf("write the history of task %q: %w", name, err)
		}
	}
	return nil
}

// Forget implements Store.
func (b *Bolt) Forget(name string) error {
	if name == "" {
		return fmt.Errorf("forget task in state file %s: empty task name", b.path)
	}
	if b.closed.Load() {
		return fmt.Errorf("forget task %q in state file %s: %w", name, b.path, ErrClosed)
	}
	if !keyable(name) {
		return nil // never stored
	}
	if err := b.brokenErr(); err != nil {
		return fmt.Errorf("forget task %q in state file %s: %w", name, b.path, err)
	}
	err := guardFault(func() error {
		return b.db.Update(func(tx *bolt.Tx) error {
			bk, err := dataBuckets(tx)
			if err != nil {
				return err
			}
			if bk.tasks.Get([]byte(name)) == nil {
				return errNothingToForget // roll back: no commit, no fsync
			}
			seqs, err := bk.historyOf(name)
			if err != nil {
				return err
			}
			for _, seq := range seqs {
				if err := bk.runs.Delete(seqKey(seq)); err != nil {
					return err
				}
			}
			var keys [][]byte
			p := prefix(name)
			c := bk.inProgress.Cursor()
			for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
				keys = append(keys, slices.Clone(k))
			}
			for _, k := range keys {
				if err := bk.inProgress.Delete(k); err != nil {
					return err
				}
			}
			if err := bk.history.Delete([]byte(name)); err != nil {
				return err
			}
			return bk.tasks.Delete([]byte(name))
		})
	})
	switch {
	case errors.Is(err, errNothingToForget):
		return nil
	case err != nil:
		return fmt.Errorf("forget task %q in state file %s: %w", name, b.path, closedErr(err))
	}
	b.writes.Add(1)
	return nil
}

// errNothingToForget rolls back the transaction of Forget of an unknown task.
var errNothingToForget = errors.New("nothing stored")

// Tasks implements Store.
func (b *Bolt) Tasks() ([]string, error) {
	names := []string{}
	err := b.view(func(tx *bolt.Tx) error {
		tasks := tx.Bucket(bucketTasks)
		if tasks == nil {
			return corruptf("no %q bucket", bucketTasks)
		}
		return tasks.ForEach(func(k, _ []byte) error {
			names = append(names, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tasks in state file %s: %w", b.path, err)
	}
	return names, nil // bbolt orders keys bytewise, as Go orders strings
}

// Close implements Store: it waits for the transactions in progress, closes
// the file and releases its lock. Closing twice is not an error.
func (b *Bolt) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("close state file %s: %w", b.path, err)
		}
	})
	return b.closeErr
}
