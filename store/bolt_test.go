package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mojodex/mojodex-scheduler/task"
)

// base is a slot with nanoseconds, in UTC.
var base = time.Date(2026, 3, 29, 1, 59, 59, 123456789, time.UTC)

// slot returns base plus i minutes.
func slot(i int) time.Time {
	return base.Add(time.Duration(i) * time.Minute)
}

// run returns a finished scheduled run of slot(i) of the task.
func run(name string, i int) task.Run {
	return task.Run{
		Task: name, Slot: slot(i), Start: slot(i).Add(time.Millisecond), Lateness: time.Millisecond,
		Duration: time.Duration(i+1) * time.Millisecond, Outcome: task.OutcomeOK, Pages: 1, Items: i, Status: 200,
	}
}

// check fails the test on error.
func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// openTestBolt opens a Bolt store in a fresh temporary directory (in a
// subdirectory, to exercise its creation), closed at the end of the test.
func openTestBolt(t testing.TB) *Bolt {
	t.Helper()
	return openTestBoltWith(t, defaultTuning)
}

func openTestBoltWith(t testing.TB, tune boltTuning) *Bolt {
	t.Helper()
	b, err := openBolt(filepath.Join(t.TempDir(), "state", "scheduler.db"), tune)
	check(t, err)
	t.Cleanup(func() { check(t, b.Close()) })
	return b
}

// mustCommit commits b to s and fails the test on error.
func mustCommit(t testing.TB, s Store, b *Batch) {
	t.Helper()
	check(t, s.Commit(b))
}

// claim commits one claim of slot at of the task through c (a Store or a
// Committer) and reports whether it was won.
func claim(t testing.TB, c interface{ Commit(*Batch) error }, name string, at time.Time) bool {
	t.Helper()
	b := &Batch{Claims: []Claim{{Task: name, Slot: at}}}
	check(t, c.Commit(b))
	return b.Claims[0].Won
}

// populate writes n tasks, each with a full run history, a claimed slot in
// progress with a checkpoint, an anchor, and every third one paused.
func populate(t testing.TB, s Store, n int) {
	t.Helper()
	b := &Batch{}
	for i := range n {
		name := fmt.Sprintf("task-%03d", i)
		b.Anchors = append(b.Anchors, Anchor{Task: name, Anchor: slot(0)})
		b.Claims = append(b.Claims, Claim{Task: name, Slot: slot(HistorySize + 1)})
		b.Checkpoints = append(b.Checkpoints, Checkpoint{Task: name, Slot: slot(HistorySize + 1), Progress: task.Progress{Pages: 2, Offset: 100}})
		for j := range HistorySize {
			b.Runs = append(b.Runs, run(name, j))
		}
		b.Pauses = append(b.Pauses, Pause{Task: name, Paused: i%3 == 0})
	}
	mustCommit(t, s, b)
}

// newStateFile creates a valid, closed state file with n populated tasks and
// returns its path.
func newStateFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scheduler.db")
	b, err := OpenBolt(path)
	check(t, err)
	populate(t, b, n)
	check(t, b.Close())
	return path
}

// rawUpdate changes a closed state file directly with bbolt.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	check(t, err)
	check(t, db.Update(fn))
	check(t, db.Close())
}

// rawView reads a closed state file directly with bbolt.
func rawView(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	check(t, err)
	check(t, db.View(fn))
	check(t, db.Close())
}

// wantOpenError opens path, expects an error wrapping target and naming the
// file, and checks that the file was not modified.
func wantOpenError(t *testing.T, path string, target error) error {
	t.Helper()
	before, readErr := os.ReadFile(path)
	b, err := OpenBolt(path)
	if err == nil {
		_ = b.Close()
		t.Fatalf("OpenBolt(%s) succeeded, want %v", path, target)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("OpenBolt error %q does not wrap %q", err, target)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("OpenBolt error %q does not name the file", err)
	}
	if readErr == nil {
		after, err := os.ReadFile(path)
		check(t, err)
		if !bytes.Equal(before, after) {
			t.Errorf("OpenBolt modified %s", path)
		}
	}
	return err
}

func TestBoltPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "state.db")
	b, err := OpenBolt(path)
	check(t, err)
	defer b.Close()
	if b.Path() != path {
		t.Errorf("Path() = %q, want %q", b.Path(), path)
	}
	if b.MigratedFrom() != 0 {
		t.Errorf("a new file reports a migration from version %d", b.MigratedFrom())
	}
	for p, want := range map[string]fs.FileMode{dir: 0o750, path: 0o600} {
		info, err := os.Stat(p)
		check(t, err)
		if got := info.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %o, want %o", p, got, want)
		}
	}
}

// TestBoltLayout reads the file with bbolt alone and checks it against the
// layout documented in bolt_codec.go.
func TestBoltLayout(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := OpenBolt(path)
	check(t, err)
	manual := run("a", 3)
	manual.Manual, manual.Err, manual.Replica = true, "boom", "r1"
	mustCommit(t, b, &Batch{
		Anchors:     []Anchor{{Task: "a", Anchor: slot(0)}},
		Claims:      []Claim{{Task: "a", Slot: slot(1)}, {Task: "a", Slot: slot(2)}},
		Checkpoints: []Checkpoint{{Task: "a", Slot: slot(2), Progress: task.Progress{Pages: 3, Offset: 150, Items: 140}}},
		Runs:        []task.Run{run("a", 1), manual},
		Pauses:      []Pause{{Task: "a", Paused: true}},
	})
	check(t, b.Close())

	be := binary.BigEndian
	rawView(t, path, func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get(keySchema)); v != "2" {
			t.Errorf("schema_version = %q, want 2", v)
		}
		rec := tx.Bucket([]byte("tasks")).Get([]byte("a"))
		if len(rec) != 17 || int64(be.Uint64(rec[0:])) != slot(0).UnixNano() ||
			int64(be.Uint64(rec[8:])) != slot(2).UnixNano() || rec[16] != 1 {
			t.Errorf("task record = %x", rec)
		}
		var keys []string
		err := tx.Bucket([]byte("inprogress")).ForEach(func(k, v []byte) error {
			keys = append(keys, fmt.Sprintf("%x", k))
			if len(v) != 24 || be.Uint64(v[0:]) != 3 || be.Uint64(v[8:]) != 150 || be.Uint64(v[16:]) != 140 {
				t.Errorf("progress = %x", v)
			}
			return nil
		})
		check(t, err)
		want := fmt.Sprintf("%x", be.AppendUint64([]byte("a\x00"), uint64(slot(2).UnixNano())))
		if !slices.Equal(keys, []string{want}) {
			t.Errorf("inprogress keys = %q, want [%s]", keys, want)
		}
		hist := tx.Bucket([]byte("history")).Get([]byte("a"))
		if len(hist) != 16 {
			t.Fatalf("history of a = %x, want two sequence numbers", hist)
		}
		var runs [][]byte
		for i := range 2 {
			v := tx.Bucket([]byte("runs")).Get(hist[8*i : 8*i+8])
			if v == nil {
				t.Fatalf("run %x listed in the history is missing", hist[8*i:8*i+8])
			}
			runs = append(runs, v)
		}
		if n := tx.Bucket([]byte("runs")).Stats().KeyN; n != 2 {
			t.Errorf("%d runs stored, want 2", n)
		}
		v := runs[1]
		if v[0] != 1 || int64(be.Uint64(v[1:])) != slot(3).UnixNano() || int64(be.Uint64(v[9:])) != manual.Start.UnixNano() ||
			time.Duration(be.Uint64(v[17:])) != manual.Lateness || time.Duration(be.Uint64(v[25:])) != manual.Duration ||
			be.Uint64(v[33:]) != 1 || be.Uint64(v[41:]) != 3 || be.Uint64(v[49:]) != 200 {
			t.Errorf("run record %x", v)
		}
		if tail := string(v[57:]); tail != "\x01a\x02ok\x00\x04boom\x02r1" {
			t.Errorf("run record strings = %q", tail)
		}
		return nil
	})
}

// TestBoltOneTransactionPerCommit counts bbolt write transactions: one per
// Commit however many writes it holds, none for an empty or invalid batch.
func TestBoltOneTransactionPerCommit(t *testing.T) {
	t.Parallel()
	b := openTestBolt(t)
	before := b.writes.Load()
	populate(t, b, 500) // 500 tasks, 12,500 writes
	if got := b.writes.Load() - before; got != 1 {
		t.Errorf("a commit of 500 tasks took %d write transactions, want 1", got)
	}
	mustCommit(t, b, &Batch{})
	if err := b.Commit(&Batch{Claims: []Claim{{Task: "a"}}}); err == nil {
		t.Error("invalid batch committed")
	}
	if got := b.writes.Load() - before; got != 1 {
		t.Errorf("empty and invalid batches wrote: %d write transactions in all", got)
	}
	check(t, b.Forget("unknown"))
	if got := b.writes.Load() - before; got != 1 {
		t.Error("forgetting an unknown task wrote")
	}
}

// TestBoltHistoryPrunedOnDisk checks that old runs are deleted, not hidden.
func TestBoltHistoryPrunedOnDisk(t *testing.T) {
	t.Parallel()
	b := openTestBolt(t)
	for i := range HistorySize + 10 {
		mustCommit(t, b, &Batch{Runs: []task.Run{run("a", i), run("b", i)}})
	}
	mustCommit(t, b, &Batch{Runs: []task.Run{run("a", 100), run("a", 101), run("a", 102)}})
	check(t, b.db.View(func(tx *bolt.Tx) error {
		count := map[string]int{}
		err := tx.Bucket(bucketRuns).ForEach(func(_, v []byte) error {
			r, err := decodeRun(v)
			count[r.Task]++
			return err
		})
		if count["a"] != HistorySize || count["b"] != HistorySize || len(count) != 2 {
			t.Errorf("runs on disk: %v, want %d each of a and b", count, HistorySize)
		}
		return err
	}))
	runs, err := b.History("a", HistorySize)
	check(t, err)
	if len(runs) != HistorySize || !runs[HistorySize-1].Slot.Equal(slot(102)) || !runs[0].Slot.Equal(slot(HistorySize+10-17)) {
		t.Errorf("history: %d runs, first %s, last %s", len(runs), runs[0].Slot, runs[len(runs)-1].Slot)
	}
}

func TestBoltGarbage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := make([]byte, 64<<10)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	for name, data := range map[string][]byte{
		"text":  []byte("this is not a database\n"),
		"zeros": make([]byte, 32<<10),
		"noise": big,
		"empty": nil,
	} {
		path := filepath.Join(dir, name+".db")
		check(t, os.WriteFile(path, data, 0o600))
		err := wantOpenError(t, path, ErrCorrupt)
		t.Logf("%s: %v", name, err)
	}
}

func TestBoltTruncated(t *testing.T) {
	t.Parallel()
	path := newStateFile(t, 40)
	valid, err := os.ReadFile(path)
	check(t, err)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	check(t, err)
	pageSize := db.Info().PageSize
	var hwm int
	check(t, db.View(func(tx *bolt.Tx) error { hwm = int(tx.Size()); return nil }))
	check(t, db.Close())
	if hwm < 8*pageSize {
		t.Fatalf("test database too small: %d bytes", hwm)
	}
	sizes := []int{100, pageSize, pageSize + 1000, 2 * pageSize, 3 * pageSize, hwm / 2, hwm - pageSize, hwm - 1}
	for _, n := range sizes {
		p := filepath.Join(t.TempDir(), "truncated-"+strconv.Itoa(n)+".db")
		check(t, os.WriteFile(p, valid[:n], 0o600))
		err := wantOpenError(t, p, ErrCorrupt)
		t.Logf("%d of %d bytes: %v", n, len(valid), err)
	}
}

func TestBoltDamaged(t *testing.T) {
	t.Parallel()
	path := newStateFile(t, 40)
	valid, err := os.ReadFile(path)
	check(t, err)
	const pageSize = 4096
	cases := map[string]func(data []byte){
		// Every page but the two meta pages overwritten.
		"pages": func(data []byte) {
			for i := 2 * pageSize; i < len(data); i++ {
				data[i] = 0xA5
			}
		},
		// Both meta pages broken (a flipped byte in the root page id: bad
		// checksums).
		"meta": func(data []byte) {
			const at = 16 + 16 // page header, then magic, version, page size, flags
			data[at], data[pageSize+at] = ^data[at], ^data[pageSize+at]
		},
	}
	for name, damage := range cases {
		data := slices.Clone(valid)
		damage(data)
		p := filepath.Join(t.TempDir(), name+".db")
		check(t, os.WriteFile(p, data, 0o600))
		err := wantOpenError(t, p, ErrCorrupt)
		t.Logf("%s: %v", name, err)
	}
}

func TestBoltForeignOrBadContent(t *testing.T) {
	t.Parallel()
	key := func(name string, n int) []byte { return subKey(name, uint64(slot(n).UnixNano())) }
	cases := map[string]func(tx *bolt.Tx) error{
		"foreign": func(tx *bolt.Tx) error {
			// Someone else's bbolt database.
			b, err := tx.CreateBucket([]byte("users"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("v"))
		},
		"short task record": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketTasks).Put([]byte("task-000"), []byte{1, 2, 3})
		},
		"unknown task flags": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketTasks).Put([]byte("task-000"), append(make([]byte, 16), 0x80))
		},
		"nested bucket in tasks": func(tx *bolt.Tx) error {
			_, err := tx.Bucket(bucketTasks).CreateBucket([]byte("x"))
			return err
		},
		"bad progress": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketInProgress).Put(key("task-000", 1), []byte("{}"))
		},
		"in progress of no task": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketInProgress).Put(key("ghost", 1), make([]byte, progressSize))
		},
		"malformed key": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketInProgress).Put([]byte("task-000"), make([]byte, progressSize))
		},
		"truncated run": func(tx *bolt.Tx) error {
			k, v := tx.Bucket(bucketRuns).Cursor().First()
			return tx.Bucket(bucketRuns).Put(slices.Clone(k), slices.Clone(v[:len(v)-1]))
		},
		"run with trailing bytes": func(tx *bolt.Tx) error {
			k, v := tx.Bucket(bucketRuns).Cursor().First()
			return tx.Bucket(bucketRuns).Put(slices.Clone(k), append(slices.Clone(v), 0))
		},
		"run of another task": func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bucketRuns).Cursor().First()
			return tx.Bucket(bucketRuns).Put(slices.Clone(k), encodeRun(run("task-999", 1)))
		},
		"run in no history": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRuns).Put(seqKey(1<<40), encodeRun(run("task-000", 1)))
		},
		"malformed run key": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRuns).Put([]byte("run"), encodeRun(run("task-000", 1)))
		},
		"history of no task": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketHistory).Put([]byte("ghost"), encodeHistory([]uint64{1 << 40}))
		},
		"history listing a missing run": func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bucketRuns).Cursor().First()
			return tx.Bucket(bucketRuns).Delete(slices.Clone(k))
		},
		"history too long": func(tx *bolt.Tx) error {
			h := tx.Bucket(bucketHistory).Get([]byte("task-000"))
			return tx.Bucket(bucketHistory).Put([]byte("task-000"), append(slices.Clone(h), seqKey(1<<40)...))
		},
		"history out of order": func(tx *bolt.Tx) error {
			h := slices.Clone(tx.Bucket(bucketHistory).Get([]byte("task-000")))
			copy(h[0:8], h[8:16])
			return tx.Bucket(bucketHistory).Put([]byte("task-000"), h)
		},
		"run listed twice": func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketTasks).Put([]byte("task-001"), make([]byte, taskRecordSize)); err != nil {
				return err
			}
			h := tx.Bucket(bucketHistory).Get([]byte("task-000"))
			return tx.Bucket(bucketHistory).Put([]byte("task-001"), slices.Clone(h[:8]))
		},
		"runs sequence behind": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRuns).SetSequence(3)
		},
		"no history bucket": func(tx *bolt.Tx) error {
			return tx.DeleteBucket(bucketHistory)
		},
		"bad version": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchema, []byte("two"))
		},
		"no version": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Delete(keySchema)
		},
		"no runs bucket": func(tx *bolt.Tx) error {
			return tx.DeleteBucket(bucketRuns)
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var path string
			if name == "foreign" {
				path = filepath.Join(t.TempDir(), "foreign.db")
			} else {
				path = newStateFile(t, 1)
			}
			rawUpdate(t, path, change)
			err := wantOpenError(t, path, ErrCorrupt)
			t.Log(err)
		})
	}
}

func TestBoltNewerSchema(t *testing.T) {
	t.Parallel()
	path := newStateFile(t, 1)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(schemaVersion+1)))
	})
	err := wantOpenError(t, path, ErrNewerSchema)
	if want := "the file has version 3, this program understands up to 2"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestBoltInUse(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := OpenBolt(path)
	check(t, err)
	claim(t, b, "a", slot(1))

	start := time.Now()
	err = wantOpenError(t, path, ErrInUse)
	if want := fmt.Sprintf("state file %s is in use by another process", path); err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("OpenBolt took %s to give up", d)
	}
	// The failed attempt did not disturb the open store.
	if claim(t, b, "a", slot(1)) || !claim(t, b, "a", slot(2)) {
		t.Error("store disturbed")
	}
	check(t, b.Close())
	b, err = OpenBolt(path)
	check(t, err)
	check(t, b.Close())
}

// TestBoltInUseByAnotherProcess holds the file in a child process (this test
// binary, running TestHelperHoldStateFile).
func TestBoltInUseByAnotherProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	cmd := helperCommand(t, "TestHelperHoldStateFile", "STORE_TEST_HOLD="+path)
	stdin, err := cmd.StdinPipe()
	check(t, err)
	stdout, err := cmd.StdoutPipe()
	check(t, err)
	check(t, cmd.Start())
	defer func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper process said %q, %v", line, err)
	}
	start := time.Now()
	err = wantOpenError(t, path, ErrInUse)
	if !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("error = %q", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("OpenBolt took %s to give up", d)
	}
}

// helperCommand returns a command running one test function of this test
// binary in a child process, with extra environment variables.
func helperCommand(t *testing.T, test string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	// GORACE: a race-enabled child would otherwise sleep 1s before exiting.
	cmd.Env = append(append(os.Environ(), "GORACE=atexit_sleep_ms=0"), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestHelperHoldStateFile is not a test: TestBoltInUseByAnotherProcess runs
// it in a child process to hold a state file open until stdin closes.
func TestHelperHoldStateFile(t *testing.T) {
	path := os.Getenv("STORE_TEST_HOLD")
	if path == "" {
		t.Skip("helper process only")
	}
	b, err := OpenBolt(path)
	check(t, err)
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	check(t, b.Close())
}

func TestBoltUnwritable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The directory cannot be created: a parent is a regular file.
	file := filepath.Join(dir, "file")
	check(t, os.WriteFile(file, nil, 0o600))
	path := filepath.Join(file, "sub", "state.db")
	_, err := OpenBolt(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenBolt under a file: %v", err)
	}
	t.Log(err)

	// The path is a directory.
	_, err = OpenBolt(dir)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("OpenBolt of a directory: %v", err)
	}
	t.Log(err)

	if _, err = OpenBolt(""); err == nil {
		t.Error("OpenBolt of an empty path succeeded")
	}

	if os.Geteuid() == 0 {
		t.Log("running as root: skipping the read-only directory case")
		return
	}
	ro := filepath.Join(dir, "ro")
	check(t, os.Mkdir(ro, 0o500))
	t.Cleanup(func() { _ = os.Chmod(ro, 0o700) })
	for _, p := range []string{filepath.Join(ro, "state.db"), filepath.Join(ro, "sub", "state.db")} {
		_, err = OpenBolt(p)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("OpenBolt in a read-only directory: %v", err)
		}
		t.Log(err)
	}
}

// TestBoltUninitialized opens a file that bbolt created but the store never
// initialized (a crash in between): it is initialized, not refused.
func TestBoltUninitialized(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	check(t, err)
	check(t, db.Close())
	b, err := OpenBolt(path)
	check(t, err)
	defer b.Close()
	if !claim(t, b, "a", slot(1)) {
		t.Error("claim refused")
	}
}

// TestBoltTruncatedWhileOpen cuts the file under a running store: reading
// it faults, and the fault is an error wrapping ErrCorrupt, not a crash.
func TestBoltTruncatedWhileOpen(t *testing.T) {
	t.Parallel()
	b := openTestBolt(t)
	populate(t, b, 300)
	check(t, os.Truncate(b.Path(), 8192))
	names := make([]string, 300)
	for i := range names {
		names[i] = fmt.Sprintf("task-%03d", i)
	}
	_, err := b.Load(names)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), b.Path()) {
		t.Errorf("Load of a truncated file: %v, want ErrCorrupt naming the file", err)
	}
	t.Log(err)
}

// TestBoltRefusesWritesAfterUnsureFailure checks the decision taken after a
// failed commit: a failure before the meta page (the common case on a full
// disk) leaves the store writable; one whose meta page is visible (a failed
// fdatasync after it was written) makes it refuse writes, not reads.
func TestBoltRefusesWritesAfterUnsureFailure(t *testing.T) {
	t.Parallel()
	b := openTestBolt(t)
	mustCommit(t, b, &Batch{Claims: []Claim{{Task: "a", Slot: slot(1)}}})
	var current int
	check(t, b.db.View(func(tx *bolt.Tx) error { current = tx.ID(); return nil }))

	b.checkAfterFailure(current+1, errors.New("no space left on device"))
	mustCommit(t, b, &Batch{Claims: []Claim{{Task: "a", Slot: slot(2)}}})

	check(t, b.db.View(func(tx *bolt.Tx) error { current = tx.ID(); return nil }))
	b.checkAfterFailure(current, errors.New("input/output error"))
	err := b.Commit(&Batch{Claims: []Claim{{Task: "a", Slot: slot(3)}}})
	if err == nil || !strings.Contains(err.Error(), "reopened") || !strings.Contains(err.Error(), b.Path()) {
		t.Errorf("commit after an unsure failure: %v", err)
	}
	if err := b.Forget("a"); err == nil {
		t.Error("Forget after an unsure failure succeeded")
	}
	st, err := b.Load([]string{"a"})
	check(t, err)
	if !st["a"].LastSlot.Equal(slot(2)) {
		t.Errorf("LastSlot = %s, want slot 2", st["a"].LastSlot)
	}
}
