package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// lockTimeout is how long OpenBolt waits for the file lock held by another
// process before giving up with ErrInUse.
const lockTimeout = time.Second

// Bolt is a Store in one bbolt file. Every operation is one bbolt
// transaction, committed with fsync before it returns: a crash leaves either
// the old or the new state, never half of an operation.
type Bolt struct {
	db   *bolt.DB
	path string
	// batch makes Claim and RecordRun go through bbolt's Batch (coalescing
	// concurrent writers into one commit) instead of Update. Off: a Claim
	// costs one fsync (~0.25ms) with Update, but waits for the batch delay
	// (10ms by default) with Batch, which only wins with many concurrent
	// writers (BenchmarkBoltClaim), far more than a scheduler's tasks firing
	// at the same instant.
	batch bool

	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens or creates the state file at path (creating its directory
// with mode 0o750, the file with mode 0o600).
//
// An existing file is checked before it is opened for writing: if it is
// corrupt, truncated, not a bbolt database or not a scheduler state file, the
// error wraps ErrCorrupt; if it was written with a newer schema, ErrNewerSchema.
// An existing empty file is corrupt too. In all these cases the file is not
// modified: nothing is ever reset silently. If another process holds the
// file, OpenBolt gives up after about a second with an error wrapping
// ErrInUse. Every error names the file.
func OpenBolt(path string) (*Bolt, error) {
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
	db, err := openDB(path, &bolt.Options{Timeout: lockTimeout}, initSchema)
	if err != nil {
		return nil, describe(path, err)
	}
	return &Bolt{db: db, path: path}, nil
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
// would otherwise kill the process with SIGBUS.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corruptf("reading it failed: %v", r)
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
	db, err := openDB(path, &bolt.Options{ReadOnly: true, Timeout: lockTimeout}, func(db *bolt.DB) error {
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
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		// A file bbolt initialized but the scheduler did not (a crash between
		// the two) has no bucket at all; anything else is someone else's.
		if k, _ := tx.Cursor().First(); k != nil {
			return corruptf("not a scheduler state file: bucket %q but no %q bucket", k, bucketMeta)
		}
		return nil
	}
	if err := checkSchema(tx); err != nil {
		return err
	}
	tasks := tx.Bucket(bucketTasks)
	err := tasks.ForEach(func(k, v []byte) error {
		if v != nil {
			return corruptf("unexpected key %q in bucket %q", k, bucketTasks)
		}
		if _, err := decodeTask(tasks.Bucket(k)); err != nil {
			return corruptf("task %q: %w", k, err)
		}
		return nil
	})
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

// checkSchema checks the schema version and the tasks bucket of an
// initialized state file.
func checkSchema(tx *bolt.Tx) error {
	raw := tx.Bucket(bucketMeta).Get(keySchema)
	if raw == nil {
		return corruptf("no schema version")
	}
	v, err := strconv.ParseUint(string(raw), 10, 32)
	if err != nil || v == 0 {
		return corruptf("bad schema version %q", raw)
	}
	if v > schemaVersion {
		return fmt.Errorf("%w: the file has version %d, this program understands up to %d", ErrNewerSchema, v, schemaVersion)
	}
	if tx.Bucket(bucketTasks) == nil {
		return corruptf("no %q bucket", bucketTasks)
	}
	return nil
}

// initSchema checks the schema of a state file opened for writing, and
// writes it into a new one.
func initSchema(db *bolt.DB) error {
	fresh := false
	err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			fresh = true
			return nil
		}
		return checkSchema(tx)
	})
	if err != nil || !fresh {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) != nil {
			return checkSchema(tx) // initialized meanwhile
		}
		if k, _ := tx.Cursor().First(); k != nil {
			return corruptf("not a scheduler state file: bucket %q but no %q bucket", k, bucketMeta)
		}
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return fmt.Errorf("create bucket %q: %w", bucketMeta, err)
		}
		if err := meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
		if _, err := tx.CreateBucket(bucketTasks); err != nil {
			return fmt.Errorf("create bucket %q: %w", bucketTasks, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	return nil
}

// Path returns the path of the state file, as given to OpenBolt.
func (b *Bolt) Path() string {
	return b.path
}

// errRefused rolls back the transaction of a refused claim (nothing to
// commit, no fsync).
var errRefused = errors.New("slot already claimed")

// update runs fn in a read-write transaction (batched when b.batch and
// batchable), mapping a closed database to ErrClosed.
func (b *Bolt) update(batchable bool, fn func(*bolt.Tx) error) error {
	var err error
	if batchable && b.batch {
		err = b.db.Batch(fn)
	} else {
		err = b.db.Update(fn)
	}
	return closed(err)
}

// view runs fn in a read-only transaction, mapping a closed database to
// ErrClosed.
func (b *Bolt) view(fn func(*bolt.Tx) error) error {
	return closed(b.db.View(fn))
}

// closed maps bbolt's "database not open" to ErrClosed.
func closed(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// taskBucket returns the bucket of task, creating it if create is true (nil
// otherwise when it does not exist).
func taskBucket(tx *bolt.Tx, task string, create bool) (*bolt.Bucket, error) {
	tasks := tx.Bucket(bucketTasks)
	if tasks == nil {
		return nil, corruptf("no %q bucket", bucketTasks)
	}
	if !create {
		return tasks.Bucket([]byte(task)), nil
	}
	b, err := tasks.CreateBucketIfNotExists([]byte(task))
	if err != nil {
		return nil, fmt.Errorf("create the bucket of the task: %w", err)
	}
	return b, nil
}

// Claim implements Store. The claim is on disk (fsynced) before it returns
// true.
func (b *Bolt) Claim(task string, slot time.Time) (bool, error) {
	if err := checkTask(task); err != nil {
		return false, fmt.Errorf("claim slot %s: %w", slot, err)
	}
	if err := checkTime("slot", slot); err != nil {
		return false, fmt.Errorf("claim slot of task %q: %w", task, err)
	}
	slot = utc(slot)
	// The last slot only ever moves forward: a refusal seen in a read-only
	// transaction stays true, and costs no commit.
	refused := false
	err := b.view(func(tx *bolt.Tx) error {
		tb, err := taskBucket(tx, task, false)
		if err != nil || tb == nil {
			return err
		}
		last, err := getTime(tb, keyLastSlot)
		refused = err == nil && !last.IsZero() && !slot.After(last)
		return err
	})
	if err == nil && !refused {
		err = b.update(true, func(tx *bolt.Tx) error {
			tb, err := taskBucket(tx, task, true)
			if err != nil {
				return err
			}
			last, err := getTime(tb, keyLastSlot)
			if err != nil {
				return err
			}
			if !last.IsZero() && !slot.After(last) {
				return errRefused
			}
			return put(tb, keyLastSlot, slot)
		})
		refused = errors.Is(err, errRefused)
	}
	switch {
	case refused:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("claim slot %s of task %q: %w", slot.Format(time.RFC3339Nano), task, err)
	}
	return true, nil
}

// Load implements Store.
func (b *Bolt) Load(task string) (TaskState, error) {
	if err := checkTask(task); err != nil {
		return TaskState{}, fmt.Errorf("load task: %w", err)
	}
	var st TaskState
	err := b.view(func(tx *bolt.Tx) error {
		tb, err := taskBucket(tx, task, false)
		if err != nil || tb == nil {
			return err
		}
		st, err = decodeTask(tb)
		return err
	})
	if err != nil {
		return TaskState{}, fmt.Errorf("load task %q: %w", task, err)
	}
	return st, nil
}

// SetAnchor implements Store.
func (b *Bolt) SetAnchor(task string, anchor time.Time) (time.Time, error) {
	if err := checkTask(task); err != nil {
		return time.Time{}, fmt.Errorf("set anchor: %w", err)
	}
	if err := checkTime("anchor", anchor); err != nil {
		return time.Time{}, fmt.Errorf("set anchor of task %q: %w", task, err)
	}
	stored := utc(anchor)
	err := b.update(false, func(tx *bolt.Tx) error {
		tb, err := taskBucket(tx, task, true)
		if err != nil {
			return err
		}
		old, err := getTime(tb, keyAnchor)
		if err != nil {
			return err
		}
		if !old.IsZero() {
			stored = old
			return nil
		}
		stored = utc(anchor)
		return put(tb, keyAnchor, stored)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("set anchor of task %q: %w", task, err)
	}
	return stored, nil
}

// RecordRun implements Store.
func (b *Bolt) RecordRun(task string, r Run) error {
	if err := checkTask(task); err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	rec := toRecord(r)
	err := b.update(true, func(tx *bolt.Tx) error {
		tb, err := taskBucket(tx, task, true)
		if err != nil {
			return err
		}
		runs, err := getRuns(tb)
		if err != nil {
			return err
		}
		if drop := len(runs) + 1 - HistorySize; drop > 0 {
			runs = runs[drop:]
		}
		if err := put(tb, keyRuns, append(slices.Clip(runs), rec)); err != nil {
			return err
		}
		cp, err := getCheckpoint(tb)
		if err != nil {
			return err
		}
		if cp != nil && cp.Slot.Equal(rec.Slot) {
			if err := tb.Delete(keyCheckpoint); err != nil {
				return fmt.Errorf("delete %s: %w", keyCheckpoint, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record run of task %q: %w", task, err)
	}
	return nil
}

// SaveCheckpoint implements Store.
func (b *Bolt) SaveCheckpoint(task string, c Checkpoint) error {
	if err := checkTask(task); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if err := checkTime("checkpoint slot", c.Slot); err != nil {
		return fmt.Errorf("save checkpoint of task %q: %w", task, err)
	}
	rec := checkpointRecord{Slot: utc(c.Slot), Mode: c.Mode, Pages: c.Pages, Offset: c.Offset, Items: c.Items}
	err := b.update(false, func(tx *bolt.Tx) error {
		tb, err := taskBucket(tx, task, true)
		if err != nil {
			return err
		}
		return put(tb, keyCheckpoint, rec)
	})
	if err != nil {
		return fmt.Errorf("save checkpoint of task %q: %w", task, err)
	}
	return nil
}

// SetPaused implements Store.
func (b *Bolt) SetPaused(task string, paused bool) error {
	if err := checkTask(task); err != nil {
		return fmt.Errorf("set paused flag: %w", err)
	}
	err := b.update(false, func(tx *bolt.Tx) error {
		tb, err := taskBucket(tx, task, true)
		if err != nil {
			return err
		}
		return put(tb, keyPaused, paused)
	})
	if err != nil {
		return fmt.Errorf("set paused flag of task %q: %w", task, err)
	}
	return nil
}

// Forget implements Store.
func (b *Bolt) Forget(task string) error {
	if err := checkTask(task); err != nil {
		return fmt.Errorf("forget task: %w", err)
	}
	err := b.update(false, func(tx *bolt.Tx) error {
		tasks := tx.Bucket(bucketTasks)
		if tasks == nil {
			return corruptf("no %q bucket", bucketTasks)
		}
		err := tasks.DeleteBucket([]byte(task))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("forget task %q: %w", task, err)
	}
	return nil
}

// Tasks implements Store.
func (b *Bolt) Tasks() ([]string, error) {
	names := []string{}
	err := b.view(func(tx *bolt.Tx) error {
		tasks := tx.Bucket(bucketTasks)
		if tasks == nil {
			return corruptf("no %q bucket", bucketTasks)
		}
		return tasks.ForEach(func(k, v []byte) error {
			if v == nil { // a nested bucket: a task
				names = append(names, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	slices.Sort(names) // bbolt orders keys bytewise already, as strings compare
	return names, nil
}

// Close implements Store: it closes the file and releases its lock. Closing
// twice is not an error.
func (b *Bolt) Close() error {
	b.closeOnce.Do(func() {
		if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("close state file %s: %w", b.path, err)
		}
	})
	return b.closeErr
}
