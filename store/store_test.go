package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// impl is a Store constructor of the conformance suite.
type impl struct {
	name string
	open func(t *testing.T) Store
}

// impls are the stores the conformance suite runs against.
var impls = []impl{
	{"memory", func(*testing.T) Store { return NewMemory() }},
	{"bolt", func(t *testing.T) Store { return openTestBolt(t, false) }},
	{"bolt-batch", func(t *testing.T) Store { return openTestBolt(t, true) }},
}

// openTestBolt opens a Bolt store in a fresh temporary directory (in a
// subdirectory, to exercise its creation), closed at the end of the test.
func openTestBolt(t testing.TB, batch bool) *Bolt {
	t.Helper()
	b, err := OpenBolt(filepath.Join(t.TempDir(), "state", "scheduler.db"))
	if err != nil {
		t.Fatal(err)
	}
	if batch {
		b.batch = true
		b.db.MaxBatchDelay = time.Millisecond // keep the suite fast
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// base is a slot with nanoseconds, in UTC.
var base = time.Date(2026, 3, 29, 1, 59, 59, 123456789, time.UTC)

// slot returns base plus i minutes.
func slot(i int) time.Time {
	return base.Add(time.Duration(i) * time.Minute)
}

// mustClaim claims and fails the test on error.
func mustClaim(t *testing.T, s Store, task string, at time.Time) bool {
	t.Helper()
	ok, err := s.Claim(task, at)
	if err != nil {
		t.Fatalf("Claim(%q, %s): %v", task, at, err)
	}
	return ok
}

// mustLoad loads and fails the test on error.
func mustLoad(t *testing.T, s Store, task string) TaskState {
	t.Helper()
	st, err := s.Load(task)
	if err != nil {
		t.Fatalf("Load(%q): %v", task, err)
	}
	return st
}

// check fails the test on error.
func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sameTime reports whether got is the instant want, in UTC and without a
// monotonic clock reading.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if got != got.Round(0) {
		t.Errorf("%s = %v carries a monotonic clock reading", what, got)
	}
	if !got.IsZero() && got.Location() != time.UTC {
		t.Errorf("%s is in %s, want UTC", what, got.Location())
	}
}

// sameRun compares two runs, times with Equal.
func sameRun(t *testing.T, what string, got, want Run) {
	t.Helper()
	sameTime(t, what+".Slot", got.Slot, want.Slot)
	sameTime(t, what+".Start", got.Start, want.Start)
	got.Slot, got.Start, want.Slot, want.Start = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

// run returns a distinct finished run for slot i.
func run(i int) Run {
	return Run{
		Slot: slot(i), Start: slot(i).Add(1500 * time.Microsecond), Manual: i%3 == 0,
		Lateness: 1500 * time.Microsecond, Duration: time.Duration(i)*time.Second + 7,
		Outcome: "ok", Pages: i, Items: 10 * i, Status: 200, Err: fmt.Sprintf("e%d", i),
	}
}

func TestConformance(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) { c.fn(t, im.open(t)) })
			}
		})
	}
}

// conformance is the suite every Store passes.
var conformance = []struct {
	name string
	fn   func(t *testing.T, s Store)
}{
	{"ClaimOnce", func(t *testing.T, s Store) {
		if !mustClaim(t, s, "a", slot(10)) {
			t.Fatal("first claim refused")
		}
		if mustClaim(t, s, "a", slot(10)) {
			t.Error("second claim of the same slot granted")
		}
		paris, err := time.LoadLocation("Europe/Paris")
		check(t, err)
		if mustClaim(t, s, "a", slot(10).In(paris)) {
			t.Error("claim of the same instant in another location granted")
		}
		if mustClaim(t, s, "a", slot(9)) || mustClaim(t, s, "a", slot(10).Add(-time.Nanosecond)) {
			t.Error("claim of an earlier slot granted")
		}
		if !mustClaim(t, s, "a", slot(10).Add(time.Nanosecond)) {
			t.Error("claim of a slot 1ns later refused")
		}
		if mustClaim(t, s, "a", slot(10)) {
			t.Error("claim of an earlier slot granted")
		}
		sameTime(t, "LastSlot", mustLoad(t, s, "a").LastSlot, slot(10).Add(time.Nanosecond))
	}},
	{"ClaimPerTask", func(t *testing.T, s Store) {
		if !mustClaim(t, s, "a", slot(5)) || !mustClaim(t, s, "b", slot(1)) || !mustClaim(t, s, "c", slot(5)) {
			t.Fatal("claims of different tasks interfere")
		}
		if mustClaim(t, s, "b", slot(1)) || !mustClaim(t, s, "b", slot(2)) {
			t.Error("task b")
		}
		sameTime(t, "a.LastSlot", mustLoad(t, s, "a").LastSlot, slot(5))
	}},
	{"ClaimConcurrent", func(t *testing.T, s Store) {
		const n = 32
		var granted atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				ok, err := s.Claim("a", slot(1))
				if err != nil {
					t.Error(err)
				}
				if ok {
					granted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if g := granted.Load(); g != 1 {
			t.Errorf("%d of %d concurrent claims of one slot granted, want 1", g, n)
		}
	}},
	{"ClaimConcurrentTasks", func(t *testing.T, s Store) {
		const n = 16
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				task := fmt.Sprintf("t%02d", i)
				for j := range 3 {
					ok, err := s.Claim(task, slot(j))
					if err != nil || !ok {
						t.Errorf("Claim(%s, %d) = %v, %v", task, j, ok, err)
					}
				}
			})
		}
		wg.Wait()
		names, err := s.Tasks()
		check(t, err)
		if len(names) != n {
			t.Errorf("Tasks() = %v, want %d tasks", names, n)
		}
	}},
	{"BadInput", func(t *testing.T, s Store) {
		if _, err := s.Claim("a", time.Time{}); err == nil {
			t.Error("Claim of a zero slot succeeded")
		}
		if _, err := s.Claim("", slot(1)); err == nil {
			t.Error("Claim with an empty task name succeeded")
		}
		if _, err := s.SetAnchor("a", time.Time{}); err == nil {
			t.Error("SetAnchor of a zero anchor succeeded")
		}
		if err := s.SaveCheckpoint("a", Checkpoint{Mode: "offset"}); err == nil {
			t.Error("SaveCheckpoint with a zero slot succeeded")
		}
		if _, err := s.Load(""); err == nil {
			t.Error("Load with an empty task name succeeded")
		}
		if names, err := s.Tasks(); err != nil || len(names) != 0 {
			t.Errorf("Tasks() = %v, %v after bad input, want none", names, err)
		}
	}},
	{"SetAnchor", func(t *testing.T, s Store) {
		got, err := s.SetAnchor("a", slot(3))
		check(t, err)
		sameTime(t, "first SetAnchor", got, slot(3))
		got, err = s.SetAnchor("a", slot(7))
		check(t, err)
		sameTime(t, "second SetAnchor", got, slot(3))
		sameTime(t, "Anchor", mustLoad(t, s, "a").Anchor, slot(3))
		got, err = s.SetAnchor("b", slot(7))
		check(t, err)
		sameTime(t, "SetAnchor of b", got, slot(7))
	}},
	{"RecordRunHistory", func(t *testing.T, s Store) {
		for i := 1; i <= HistorySize+5; i++ {
			check(t, s.RecordRun("a", run(i)))
			if i == 3 {
				st := mustLoad(t, s, "a")
				if len(st.Runs) != 3 {
					t.Fatalf("%d runs after 3, want 3", len(st.Runs))
				}
			}
		}
		st := mustLoad(t, s, "a")
		if len(st.Runs) != HistorySize {
			t.Fatalf("%d runs kept, want %d", len(st.Runs), HistorySize)
		}
		for i, r := range st.Runs {
			sameRun(t, fmt.Sprintf("Runs[%d]", i), r, run(i+6))
		}
		if !st.LastSlot.IsZero() || st.Checkpoint != nil || st.Paused || !st.Anchor.IsZero() {
			t.Errorf("RecordRun touched other fields: %+v", st)
		}
	}},
	{"Checkpoint", func(t *testing.T, s Store) {
		check(t, s.SaveCheckpoint("a", Checkpoint{Slot: slot(1), Mode: "offset", Pages: 1, Offset: 100, Items: 100}))
		want := Checkpoint{Slot: slot(1), Mode: "offset", Pages: 2, Offset: 200, Items: 150}
		check(t, s.SaveCheckpoint("a", want))
		sameCheckpoint(t, mustLoad(t, s, "a").Checkpoint, &want)

		// A run of another slot (a manual run, say) leaves it alone.
		check(t, s.RecordRun("a", Run{Start: slot(1), Manual: true, Outcome: "ok"}))
		check(t, s.RecordRun("a", run(0)))
		sameCheckpoint(t, mustLoad(t, s, "a").Checkpoint, &want)
		// So does the run of the slot on another task.
		check(t, s.RecordRun("b", run(1)))
		sameCheckpoint(t, mustLoad(t, s, "a").Checkpoint, &want)

		// The run of its slot clears it.
		check(t, s.RecordRun("a", run(1)))
		if cp := mustLoad(t, s, "a").Checkpoint; cp != nil {
			t.Errorf("checkpoint %+v survived the run of its slot", cp)
		}

		// A checkpoint of a later slot survives the run of an earlier one.
		later := Checkpoint{Slot: slot(2), Mode: "drain", Pages: 4, Items: 40}
		check(t, s.SaveCheckpoint("a", later))
		check(t, s.RecordRun("a", run(1)))
		sameCheckpoint(t, mustLoad(t, s, "a").Checkpoint, &later)
		check(t, s.RecordRun("a", run(2)))
		if cp := mustLoad(t, s, "a").Checkpoint; cp != nil {
			t.Errorf("checkpoint %+v survived the run of its slot", cp)
		}
		if n := len(mustLoad(t, s, "a").Runs); n != 5 {
			t.Errorf("%d runs, want 5", n)
		}
	}},
	{"SetPaused", func(t *testing.T, s Store) {
		check(t, s.SetPaused("a", true))
		if !mustLoad(t, s, "a").Paused {
			t.Error("not paused")
		}
		if mustLoad(t, s, "b").Paused {
			t.Error("another task paused")
		}
		check(t, s.SetPaused("a", false))
		if mustLoad(t, s, "a").Paused {
			t.Error("still paused")
		}
	}},
	{"Forget", func(t *testing.T, s Store) {
		mustClaim(t, s, "a", slot(5))
		_, err := s.SetAnchor("a", slot(1))
		check(t, err)
		check(t, s.RecordRun("a", run(5)))
		check(t, s.SaveCheckpoint("a", Checkpoint{Slot: slot(6), Mode: "offset"}))
		check(t, s.SetPaused("a", true))
		mustClaim(t, s, "b", slot(5))

		check(t, s.Forget("a"))
		st := mustLoad(t, s, "a")
		if !st.Anchor.IsZero() || !st.LastSlot.IsZero() || st.Paused || st.Runs != nil || st.Checkpoint != nil {
			t.Errorf("state after Forget = %+v, want zero", st)
		}
		names, err := s.Tasks()
		check(t, err)
		if !slices.Equal(names, []string{"b"}) {
			t.Errorf("Tasks() = %q, want [b]", names)
		}
		check(t, s.Forget("a"))
		check(t, s.Forget("unknown"))
		if !mustClaim(t, s, "a", slot(5)) {
			t.Error("a forgotten task's slot refused")
		}
		if mustClaim(t, s, "b", slot(5)) {
			t.Error("Forget touched another task")
		}
	}},
	{"Tasks", func(t *testing.T, s Store) {
		names, err := s.Tasks()
		check(t, err)
		if names == nil || len(names) != 0 {
			t.Errorf("Tasks() of an empty store = %#v, want empty", names)
		}
		mustLoad(t, s, "loaded-only") // Load creates nothing
		mustClaim(t, s, "b", slot(1))
		check(t, s.SetPaused("a-1", true))
		check(t, s.RecordRun("c", run(1)))
		_, err = s.SetAnchor("B", slot(1))
		check(t, err)
		check(t, s.SaveCheckpoint("a", Checkpoint{Slot: slot(1)}))
		check(t, s.SetPaused("é", false))
		names, err = s.Tasks()
		check(t, err)
		want := []string{"B", "a", "a-1", "b", "c", "é"}
		if !slices.Equal(names, want) {
			t.Errorf("Tasks() = %q, want %q", names, want)
		}
	}},
	{"UnknownTask", func(t *testing.T, s Store) {
		st := mustLoad(t, s, "nope")
		if !st.Anchor.IsZero() || !st.LastSlot.IsZero() || st.Paused || st.Runs != nil || st.Checkpoint != nil {
			t.Errorf("Load of an unknown task = %+v, want zero", st)
		}
	}},
	{"TimesRoundTrip", func(t *testing.T, s Store) {
		zone := time.FixedZone("UTC+05:30", 5*3600+1800)
		now := time.Now()
		now = now.Add(time.Nanosecond * time.Duration(1-now.Nanosecond()%2)) // odd nanoseconds
		if now == now.Round(0) {
			t.Fatal("time.Now has no monotonic reading")
		}
		mustClaim(t, s, "a", now)
		_, err := s.SetAnchor("a", now.Add(-time.Hour).In(zone))
		check(t, err)
		r := Run{Slot: now.In(zone), Start: now.Add(time.Nanosecond), Lateness: time.Nanosecond, Duration: -time.Nanosecond, Outcome: "failed", Status: 503, Err: "boom \"quoted\" \n line"}
		check(t, s.RecordRun("a", r))
		far := time.Date(2999, 12, 31, 23, 59, 59, 999999999, zone)
		check(t, s.SaveCheckpoint("a", Checkpoint{Slot: far, Mode: "offset", Pages: 1}))
		check(t, s.RecordRun("a", Run{Outcome: "skipped"})) // zero times

		st := mustLoad(t, s, "a")
		sameTime(t, "LastSlot", st.LastSlot, now)
		sameTime(t, "Anchor", st.Anchor, now.Add(-time.Hour))
		sameRun(t, "Runs[0]", st.Runs[0], r)
		sameRun(t, "Runs[1]", st.Runs[1], Run{Outcome: "skipped"})
		if !st.Runs[1].Slot.IsZero() || !st.Runs[1].Start.IsZero() {
			t.Errorf("zero times came back as %v, %v", st.Runs[1].Slot, st.Runs[1].Start)
		}
		if st.Checkpoint == nil {
			t.Fatal("no checkpoint")
		}
		sameTime(t, "Checkpoint.Slot", st.Checkpoint.Slot, far)
	}},
	{"LoadReturnsACopy", func(t *testing.T, s Store) {
		check(t, s.RecordRun("a", run(1)))
		check(t, s.SaveCheckpoint("a", Checkpoint{Slot: slot(2), Pages: 3}))
		st := mustLoad(t, s, "a")
		st.Runs[0].Outcome = "mutated"
		st.Checkpoint.Pages = 99
		st = mustLoad(t, s, "a")
		if st.Runs[0].Outcome != "ok" || st.Checkpoint.Pages != 3 {
			t.Errorf("mutating a loaded state changed the store: %+v, %+v", st.Runs[0], st.Checkpoint)
		}
	}},
	{"Closed", func(t *testing.T, s Store) {
		mustClaim(t, s, "a", slot(1))
		check(t, s.Close())
		check(t, s.Close())
		_, err := s.Claim("a", slot(2))
		wantClosed(t, "Claim", err)
		_, err = s.Load("a")
		wantClosed(t, "Load", err)
		_, err = s.SetAnchor("a", slot(1))
		wantClosed(t, "SetAnchor", err)
		wantClosed(t, "RecordRun", s.RecordRun("a", run(1)))
		wantClosed(t, "SaveCheckpoint", s.SaveCheckpoint("a", Checkpoint{Slot: slot(1)}))
		wantClosed(t, "SetPaused", s.SetPaused("a", true))
		wantClosed(t, "Forget", s.Forget("a"))
		_, err = s.Tasks()
		wantClosed(t, "Tasks", err)
	}},
}

// sameCheckpoint compares two checkpoints, the slot with Equal.
func sameCheckpoint(t *testing.T, got, want *Checkpoint) {
	t.Helper()
	if got == nil || want == nil {
		if got != want {
			t.Errorf("checkpoint = %+v, want %+v", got, want)
		}
		return
	}
	sameTime(t, "Checkpoint.Slot", got.Slot, want.Slot)
	g, w := *got, *want
	g.Slot, w.Slot = time.Time{}, time.Time{}
	if g != w {
		t.Errorf("checkpoint = %+v, want %+v", g, w)
	}
}

// wantClosed checks that err wraps ErrClosed.
func wantClosed(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, ErrClosed) {
		t.Errorf("%s after Close: %v, want ErrClosed", op, err)
	}
}

func TestAppendRun(t *testing.T) {
	var runs []Run
	for i := range 3 * HistorySize {
		prev, snapshot := runs, slices.Clone(runs)
		runs = appendRun(runs, run(i))
		if !slices.Equal(prev, snapshot) {
			t.Fatal("appendRun modified its input")
		}
		if want := min(i+1, HistorySize); len(runs) != want {
			t.Fatalf("len = %d, want %d", len(runs), want)
		}
		if runs[len(runs)-1].Pages != i || runs[0].Pages != max(0, i+1-HistorySize) {
			t.Fatalf("after %d: first %d, last %d", i, runs[0].Pages, runs[len(runs)-1].Pages)
		}
	}
}
