package store

import (
	"bufio"
	"bytes"
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
)

// populate writes n tasks with a full run history each, in one transaction.
func populate(t *testing.T, b *Bolt, n int) {
	t.Helper()
	err := b.db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			tb, err := taskBucket(tx, fmt.Sprintf("task-%03d", i), true)
			if err != nil {
				return err
			}
			runs := make([]runRecord, HistorySize)
			for j := range runs {
				runs[j] = toRecord(run(j))
			}
			if err := put(tb, keyRuns, runs); err != nil {
				return err
			}
			if err := put(tb, keyLastSlot, slot(i)); err != nil {
				return err
			}
		}
		return nil
	})
	check(t, err)
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
	for p, want := range map[string]fs.FileMode{dir: 0o750, path: 0o600} {
		info, err := os.Stat(p)
		check(t, err)
		if got := info.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %o, want %o", p, got, want)
		}
	}
}

func TestBoltSurvivesReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := OpenBolt(path)
	check(t, err)
	mustClaim(t, b, "a", slot(5))
	_, err = b.SetAnchor("a", slot(1))
	check(t, err)
	for i := range 3 {
		check(t, b.RecordRun("a", run(i)))
	}
	cp := Checkpoint{Slot: slot(6), Mode: "offset", Pages: 2, Offset: 50, Items: 50}
	check(t, b.SaveCheckpoint("a", cp))
	check(t, b.SetPaused("b", true))
	check(t, b.Close())

	b, err = OpenBolt(path)
	check(t, err)
	defer b.Close()
	st := mustLoad(t, b, "a")
	sameTime(t, "LastSlot", st.LastSlot, slot(5))
	sameTime(t, "Anchor", st.Anchor, slot(1))
	if len(st.Runs) != 3 {
		t.Fatalf("%d runs after reopen, want 3", len(st.Runs))
	}
	for i, r := range st.Runs {
		sameRun(t, fmt.Sprintf("Runs[%d]", i), r, run(i))
	}
	sameCheckpoint(t, st.Checkpoint, &cp)
	if !mustLoad(t, b, "b").Paused {
		t.Error("paused flag lost")
	}
	names, err := b.Tasks()
	check(t, err)
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("Tasks() = %q", names)
	}
	if mustClaim(t, b, "a", slot(5)) || mustClaim(t, b, "a", slot(4)) {
		t.Error("a reopened store granted a claimed slot")
	}
	if !mustClaim(t, b, "a", slot(6)) {
		t.Error("a reopened store refused a new slot")
	}
	got, err := b.SetAnchor("a", slot(9))
	check(t, err)
	sameTime(t, "anchor after reopen", got, slot(1))
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
	cases := map[string]func(tx *bolt.Tx) error{
		"foreign": func(tx *bolt.Tx) error {
			// Someone else's bbolt database.
			b, err := tx.CreateBucket([]byte("users"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("v"))
		},
		"bad-json": func(tx *bolt.Tx) error {
			tb, err := taskBucket(tx, "a", true)
			if err != nil {
				return err
			}
			return tb.Put(keyRuns, []byte(`[{"slot": 12}`))
		},
		"bad-version": func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchema, []byte("one"))
		},
		"no-tasks": func(tx *bolt.Tx) error {
			return tx.DeleteBucket(bucketTasks)
		},
	}
	for name, change := range cases {
		var path string
		if name == "foreign" {
			path = filepath.Join(t.TempDir(), "foreign.db")
		} else {
			path = newStateFile(t, 1)
		}
		rawUpdate(t, path, change)
		err := wantOpenError(t, path, ErrCorrupt)
		t.Logf("%s: %v", name, err)
	}
}

func TestBoltNewerSchema(t *testing.T) {
	t.Parallel()
	path := newStateFile(t, 1)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(schemaVersion+1)))
	})
	err := wantOpenError(t, path, ErrNewerSchema)
	t.Log(err)
}

func TestBoltInUse(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := OpenBolt(path)
	check(t, err)
	mustClaim(t, b, "a", slot(1))

	start := time.Now()
	err = wantOpenError(t, path, ErrInUse)
	if want := fmt.Sprintf("state file %s is in use by another process", path); err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("OpenBolt took %s to give up", d)
	}
	// The failed attempt did not disturb the open store.
	if mustClaim(t, b, "a", slot(1)) || !mustClaim(t, b, "a", slot(2)) {
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
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldStateFile$", "-test.count=1")
	// GORACE: a race-enabled child would otherwise sleep 1s before exiting.
	cmd.Env = append(os.Environ(), "STORE_TEST_HOLD="+path, "GORACE=atexit_sleep_ms=0")
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
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("OpenBolt took %s to give up", d)
	}
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

	_, err = OpenBolt("")
	if err == nil {
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
	if !mustClaim(t, b, "a", slot(1)) {
		t.Error("claim refused")
	}
}
