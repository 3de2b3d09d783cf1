// Package storetest is the conformance suite of store.Store: every
// implementation (in memory, bbolt, a database) runs it to show it keeps
// the contract documented on store.Store and store.Batch.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
//	}
//
// The suite knows nothing of any implementation. A store whose state
// survives closing implements Reopener (usually through a small wrapper in
// its test), and the suite then also checks what survives a reopen.
package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// Factory returns a new, empty store for one test. It registers whatever
// cleanup the store needs (the suite closes some stores itself; Close must
// then be harmless to call again).
type Factory func(t *testing.T) store.Store

// Reopener is implemented by a store under test whose state survives
// closing: Reopen closes it and returns a new store over the same state.
type Reopener interface {
	Reopen(t *testing.T) store.Store
}

// Run runs the whole suite against the stores made by open, each subtest in
// parallel on a store of its own.
func Run(t *testing.T, open Factory) {
	runParallel(t, open, []subtest[Factory]{
		{"ClaimOncePerSlot", testClaimOncePerSlot},
		{"ClaimsInOneBatch", testClaimsInOneBatch},
		{"ClaimSurvivesReopen", testClaimSurvivesReopen},
		{"SlotsInProgress", testSlotsInProgress},
		{"CheckpointNeverResurrects", testCheckpointNeverResurrects},
		{"ClaimCheckpointRunInOneBatch", testClaimCheckpointRunInOneBatch},
		{"ManualRunKeepsSlotInProgress", testManualRun},
		{"RunFieldsRoundTrip", testRunFields},
		{"HistoryCappedAndOrdered", testHistory},
		{"AnchorExistingWins", testAnchors},
		{"Pauses", testPauses},
		{"Forget", testForget},
		{"TasksSorted", testTasksSorted},
		{"LoadMany", testLoadMany},
		{"TimesUTCAndExact", testTimes},
		{"ValidateErrors", testValidate},
		{"EmptyBatch", testEmptyBatch},
		{"Closed", testClosed},
		{"ConcurrentCommits", testConcurrent},
	})
}

// subtest is one test of a suite, run on the stores made by a factory F.
type subtest[F any] struct {
	name string
	fn   func(t *testing.T, open F)
}

// runParallel runs each of tests as a parallel subtest of t.
func runParallel[F any](t *testing.T, open F, tests []subtest[F]) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

// base is a slot with nanoseconds, in UTC.
var base = time.Date(2026, 3, 29, 1, 59, 59, 123456789, time.UTC)

// slot returns base plus i minutes.
func slot(i int) time.Time {
	return base.Add(time.Duration(i) * time.Minute)
}

// run returns a finished scheduled run of slot(i), with every field set.
func run(name string, i int) task.Run {
	return task.Run{
		Task: name, Slot: slot(i), Start: slot(i).Add(1500 * time.Microsecond),
		Lateness: 1500 * time.Microsecond, Duration: time.Duration(i+1) * time.Millisecond,
		Outcome: task.OutcomeOK, Pages: i % 7, Items: 50 * i, Status: 200,
	}
}

func commit(t *testing.T, s store.Store, b *store.Batch) {
	t.Helper()
	if err := s.Commit(b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// claim commits one claim and returns whether it was won.
func claim(t *testing.T, s store.Store, name string, at time.Time) bool {
	t.Helper()
	b := &store.Batch{Claims: []store.Claim{{Task: name, Slot: at}}}
	commit(t, s, b)
	return b.Claims[0].Won
}

func load(t *testing.T, s store.Store, name string) (store.TaskState, bool) {
	t.Helper()
	m, err := s.Load([]string{name})
	if err != nil {
		t.Fatalf("Load(%q): %v", name, err)
	}
	st, ok := m[name]
	return st, ok
}

func mustLoad(t *testing.T, s store.Store, name string) store.TaskState {
	t.Helper()
	st, ok := load(t, s, name)
	if !ok {
		t.Fatalf("Load(%q): task absent", name)
	}
	return st
}

func history(t *testing.T, s store.Store, name string, n int) []task.Run {
	t.Helper()
	runs, err := s.History(name, n)
	if err != nil {
		t.Fatalf("History(%q, %d): %v", name, n, err)
	}
	return runs
}

// sameTime checks that got is want, in UTC, without a monotonic reading.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if !got.IsZero() && got.Location() != time.UTC {
		t.Errorf("%s is in %s, want UTC", what, got.Location())
	}
	if got != got.Round(0) {
		t.Errorf("%s has a monotonic clock reading", what)
	}
}

// sameRun checks that got is want with its times in UTC.
func sameRun(t *testing.T, what string, got, want task.Run) {
	t.Helper()
	sameTime(t, what+".Slot", got.Slot, want.Slot)
	sameTime(t, what+".Start", got.Start, want.Start)
	got.Slot, got.Start, want.Slot, want.Start = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

// inProgress returns the slots in progress of st.
func inProgress(st store.TaskState) []time.Time {
	var out []time.Time
	for _, p := range st.InProgress {
		out = append(out, p.Slot)
	}
	return out
}

func sameSlots(t *testing.T, what string, got, want []time.Time) {
	t.Helper()
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("%s = %s, want %s", what, fmtTimes(got), fmtTimes(want))
	}
}

func fmtTimes(ts []time.Time) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.Format("15:04:05.000000000")
	}
	return "[" + strings.Join(s, " ") + "]"
}

func testClaimOncePerSlot(t *testing.T, open Factory) {
	s := open(t)
	if !claim(t, s, "a", slot(5)) {
		t.Fatal("first claim of a slot refused")
	}
	if claim(t, s, "a", slot(5)) {
		t.Error("a slot was claimed twice")
	}
	if claim(t, s, "a", slot(4)) {
		t.Error("a slot before the last claimed one was claimed")
	}
	if !claim(t, s, "b", slot(5)) {
		t.Error("the same slot of another task was refused")
	}
	if !claim(t, s, "a", slot(6)) {
		t.Error("the next slot was refused")
	}
	// The same instant in another location is the same slot.
	if claim(t, s, "a", slot(6).In(time.FixedZone("UTC+3", 3*3600))) {
		t.Error("a claimed slot was claimed again in another time zone")
	}
	// One nanosecond later is another slot.
	if !claim(t, s, "a", slot(6).Add(time.Nanosecond)) {
		t.Error("a slot one nanosecond after the last was refused")
	}
	st := mustLoad(t, s, "a")
	sameTime(t, "LastSlot", st.LastSlot, slot(6).Add(time.Nanosecond))
	sameSlots(t, "InProgress", inProgress(st), []time.Time{slot(5), slot(6), slot(6).Add(time.Nanosecond)})
	for _, p := range st.InProgress {
		if p.Progress != (task.Progress{}) {
			t.Errorf("slot %s claimed with progress %+v, want zero", p.Slot, p.Progress)
		}
	}
}

func testClaimsInOneBatch(t *testing.T, open Factory) {
	s := open(t)
	claim(t, s, "c", slot(10))
	b := &store.Batch{Claims: []store.Claim{
		{Task: "a", Slot: slot(2)},
		{Task: "a", Slot: slot(1)}, // before a claim earlier in the batch
		{Task: "a", Slot: slot(2)}, // the same slot again
		{Task: "b", Slot: slot(1)},
		{Task: "a", Slot: slot(3)},
		{Task: "c", Slot: slot(9)}, // before the stored last slot
		{Task: "c", Slot: slot(11)},
	}}
	commit(t, s, b)
	want := []bool{true, false, false, true, true, false, true}
	for i, c := range b.Claims {
		if c.Won != want[i] {
			t.Errorf("claim %d (%s slot %s): Won = %t, want %t", i, c.Task, c.Slot.Format(time.TimeOnly), c.Won, want[i])
		}
	}
	st := mustLoad(t, s, "a")
	sameTime(t, "LastSlot of a", st.LastSlot, slot(3))
	sameSlots(t, "InProgress of a", inProgress(st), []time.Time{slot(2), slot(3)})
	sameSlots(t, "InProgress of c", inProgress(mustLoad(t, s, "c")), []time.Time{slot(10), slot(11)})
}

func testClaimSurvivesReopen(t *testing.T, open Factory) {
	s := open(t)
	if _, ok := s.(Reopener); !ok {
		t.Skip("the store does not survive closing")
	}
	commit(t, s, &store.Batch{
		Anchors:     []store.Anchor{{Task: "a", Anchor: slot(0)}},
		Claims:      []store.Claim{{Task: "a", Slot: slot(1)}, {Task: "a", Slot: slot(2)}, {Task: "b", Slot: slot(7)}},
		Checkpoints: []store.Checkpoint{{Task: "a", Slot: slot(2), Progress: task.Progress{Pages: 2, Offset: 100, Items: 100}}},
		Runs:        []task.Run{run("a", 1)},
		Pauses:      []store.Pause{{Task: "c", Paused: true}},
	})
	s = s.(Reopener).Reopen(t)
	st := mustLoad(t, s, "a")
	sameTime(t, "Anchor", st.Anchor, slot(0))
	sameTime(t, "LastSlot", st.LastSlot, slot(2))
	sameSlots(t, "InProgress", inProgress(st), []time.Time{slot(2)})
	if len(st.InProgress) == 1 && st.InProgress[0].Progress != (task.Progress{Pages: 2, Offset: 100, Items: 100}) {
		t.Errorf("progress after reopen = %+v", st.InProgress[0].Progress)
	}
	if st.Last == nil {
		t.Fatal("last run lost")
	}
	sameRun(t, "Last", *st.Last, run("a", 1))
	if !mustLoad(t, s, "c").Paused {
		t.Error("paused flag lost")
	}
	for _, at := range []time.Time{slot(1), slot(2)} {
		if claim(t, s, "a", at) {
			t.Errorf("slot %s claimed again after reopen", at.Format(time.TimeOnly))
		}
	}
	if claim(t, s, "b", slot(7)) {
		t.Error("slot of b claimed again after reopen")
	}
	if !claim(t, s, "a", slot(3)) {
		t.Error("a new slot was refused after reopen")
	}
	// A second reopen keeps what the first reopened store wrote.
	s = s.(Reopener).Reopen(t)
	sameTime(t, "LastSlot after the second reopen", mustLoad(t, s, "a").LastSlot, slot(3))
}

func testSlotsInProgress(t *testing.T, open Factory) {
	s := open(t)
	// overlap: allow has several runs of one task in progress at once.
	commit(t, s, &store.Batch{Claims: []store.Claim{{Task: "a", Slot: slot(1)}, {Task: "a", Slot: slot(2)}}})
	claim(t, s, "a", slot(3))
	p2 := task.Progress{Pages: 3, Offset: 150, Items: 140}
	commit(t, s, &store.Batch{Checkpoints: []store.Checkpoint{{Task: "a", Slot: slot(2), Progress: p2}}})
	st := mustLoad(t, s, "a")
	sameSlots(t, "InProgress", inProgress(st), []time.Time{slot(1), slot(2), slot(3)})
	wantProgress := []task.Progress{{}, p2, {}}
	for i, p := range st.InProgress {
		if i < len(wantProgress) && p.Progress != wantProgress[i] {
			t.Errorf("progress of slot %d = %+v, want %+v", i+1, p.Progress, wantProgress[i])
		}
	}
	// A later checkpoint replaces the earlier one.
	p2b := task.Progress{Pages: 4, Offset: 200, Items: 190}
	commit(t, s, &store.Batch{Checkpoints: []store.Checkpoint{{Task: "a", Slot: slot(2), Progress: p2b}}})
	// Recording the run of slot 1 ends it alone.
	commit(t, s, &store.Batch{Runs: []task.Run{run("a", 1)}})
	st = mustLoad(t, s, "a")
	sameSlots(t, "InProgress after run 1", inProgress(st), []time.Time{slot(2), slot(3)})
	if len(st.InProgress) == 2 && st.InProgress[0].Progress != p2b {
		t.Errorf("progress of slot 2 = %+v, want %+v", st.InProgress[0].Progress, p2b)
	}
	commit(t, s, &store.Batch{Runs: []task.Run{run("a", 3), run("a", 2)}})
	st = mustLoad(t, s, "a")
	if len(st.InProgress) != 0 {
		t.Errorf("InProgress after every run = %s, want none", fmtTimes(inProgress(st)))
	}
	sameTime(t, "LastSlot", st.LastSlot, slot(3))
	// A run of a slot that was never claimed is recorded, and ends nothing.
	claim(t, s, "b", slot(1))
	commit(t, s, &store.Batch{Runs: []task.Run{run("b", 9)}})
	sameSlots(t, "InProgress of b", inProgress(mustLoad(t, s, "b")), []time.Time{slot(1)})
}

func testCheckpointNeverResurrects(t *testing.T, open Factory) {
	s := open(t)
	claim(t, s, "a", slot(1))
	commit(t, s, &store.Batch{Runs: []task.Run{run("a", 1)}})
	// A late checkpoint of the recorded run, of a slot never claimed, of a
	// task never stored.
	commit(t, s, &store.Batch{Checkpoints: []store.Checkpoint{
		{Task: "a", Slot: slot(1), Progress: task.Progress{Pages: 9}},
		{Task: "a", Slot: slot(0), Progress: task.Progress{Pages: 9}},
		{Task: "ghost", Slot: slot(1), Progress: task.Progress{Pages: 9}},
	}})
	if st := mustLoad(t, s, "a"); len(st.InProgress) != 0 {
		t.Errorf("checkpoint resurrected slots %s", fmtTimes(inProgress(st)))
	}
	if _, ok := load(t, s, "ghost"); ok {
		t.Error("a checkpoint of an unknown task stored the task")
	}
	// The checkpoint comes after the run in the same batch: still ignored.
	claim(t, s, "a", slot(2))
	commit(t, s, &store.Batch{
		Checkpoints: []store.Checkpoint{{Task: "a", Slot: slot(2), Progress: task.Progress{Pages: 1}}},
		Runs:        []task.Run{run("a", 2)},
	})
	if st := mustLoad(t, s, "a"); len(st.InProgress) != 0 {
		t.Errorf("slots in progress after the run: %s", fmtTimes(inProgress(st)))
	}
}

func testClaimCheckpointRunInOneBatch(t *testing.T, open Factory) {
	s := open(t)
	b := &store.Batch{
		Claims:      []store.Claim{{Task: "a", Slot: slot(1)}, {Task: "b", Slot: slot(1)}},
		Checkpoints: []store.Checkpoint{{Task: "a", Slot: slot(1), Progress: task.Progress{Pages: 1, Items: 5}}, {Task: "b", Slot: slot(1), Progress: task.Progress{Pages: 2}}},
		Runs:        []task.Run{run("a", 1)},
	}
	commit(t, s, b)
	if !b.Claims[0].Won || !b.Claims[1].Won {
		t.Fatalf("claims = %+v, want both won", b.Claims)
	}
	if st := mustLoad(t, s, "a"); len(st.InProgress) != 0 || st.Last == nil {
		t.Errorf("a: in progress %s, last %v; want none in progress and the run recorded", fmtTimes(inProgress(st)), st.Last)
	}
	st := mustLoad(t, s, "b")
	if len(st.InProgress) != 1 || st.InProgress[0].Progress != (task.Progress{Pages: 2}) {
		t.Errorf("b: in progress %+v, want slot 1 with 2 pages", st.InProgress)
	}
}

func testManualRun(t *testing.T, open Factory) {
	s := open(t)
	claim(t, s, "a", slot(1))
	manual := run("a", 1) // a trigger at the very instant of the slot
	manual.Manual, manual.Lateness = true, 0
	commit(t, s, &store.Batch{Runs: []task.Run{manual}})
	st := mustLoad(t, s, "a")
	sameSlots(t, "InProgress", inProgress(st), []time.Time{slot(1)})
	if st.Last == nil || !st.Last.Manual {
		t.Fatalf("Last = %+v, want the manual run", st.Last)
	}
	sameRun(t, "Last", *st.Last, manual)
	// A manual run of a task with no state stores it, claiming nothing.
	commit(t, s, &store.Batch{Runs: []task.Run{{Task: "m", Slot: slot(3), Start: slot(3), Manual: true, Outcome: task.OutcomeOK}}})
	st = mustLoad(t, s, "m")
	if !st.LastSlot.IsZero() || len(st.InProgress) != 0 || st.Last == nil {
		t.Errorf("after a manual run: %+v", st)
	}
	if !claim(t, s, "m", slot(1)) {
		t.Error("a manual run claimed a slot")
	}
}

func testRunFields(t *testing.T, open Factory) {
	s := open(t)
	runs := []task.Run{
		{
			Task: "a", Slot: slot(1), Start: slot(1).Add(time.Second), Lateness: time.Second, Duration: 90 * time.Minute,
			Outcome: task.OutcomeFailed, Pages: 100, Items: 1 << 30, Status: 503,
			Err: "page 3: 503 Service Unavailable: «upstream» \x01 down", Replica: "replica-2", Resumed: true,
		},
		{
			Task: "a", Slot: slot(2), Start: slot(2), Manual: true, Outcome: task.OutcomeSkipped,
			Reason: task.SkipOverlap, Err: task.SkipOverlap.Describe(""),
		},
		{Task: "a", Slot: slot(3), Outcome: task.OutcomeOK, Lateness: -time.Millisecond}, // Start unset, negative lateness
	}
	commit(t, s, &store.Batch{Runs: runs})
	got := history(t, s, "a", store.HistorySize)
	if len(got) != len(runs) {
		t.Fatalf("History has %d runs, want %d", len(got), len(runs))
	}
	for i := range runs {
		sameRun(t, fmt.Sprintf("History[%d]", i), got[i], runs[i])
	}
}

func testHistory(t *testing.T, open Factory) {
	s := open(t)
	if runs := history(t, s, "a", store.HistorySize); len(runs) != 0 {
		t.Errorf("History of an unknown task = %d runs", len(runs))
	}
	const total = store.HistorySize + 7
	// Some runs one batch each, the rest in one batch with another task's.
	for i := range 5 {
		commit(t, s, &store.Batch{Runs: []task.Run{run("a", i)}})
	}
	b := &store.Batch{}
	for i := 5; i < total; i++ {
		b.Runs = append(b.Runs, run("a", i), run("b", i))
	}
	commit(t, s, b)
	for _, n := range []int{store.HistorySize, 100} {
		got := history(t, s, "a", n)
		if len(got) != store.HistorySize {
			t.Fatalf("History(a, %d) has %d runs, want %d", n, len(got), store.HistorySize)
		}
		for i, r := range got {
			sameRun(t, fmt.Sprintf("History(a, %d)[%d]", n, i), r, run("a", total-store.HistorySize+i))
		}
	}
	got := history(t, s, "a", 3)
	if len(got) != 3 || !got[0].Slot.Equal(slot(total-3)) || !got[2].Slot.Equal(slot(total-1)) {
		t.Errorf("History(a, 3) = %v, want the last 3 runs, oldest first", got)
	}
	if got := history(t, s, "a", 0); len(got) != 0 {
		t.Errorf("History(a, 0) = %d runs", len(got))
	}
	if got := history(t, s, "a", -1); len(got) != 0 {
		t.Errorf("History(a, -1) = %d runs", len(got))
	}
	st := mustLoad(t, s, "a")
	if st.Last == nil {
		t.Fatal("no last run")
	}
	sameRun(t, "Last", *st.Last, run("a", total-1))
	// Runs are kept in the order they were recorded, not by slot.
	commit(t, s, &store.Batch{Runs: []task.Run{run("c", 5), run("c", 2)}})
	got = history(t, s, "c", store.HistorySize)
	if len(got) != 2 || !got[0].Slot.Equal(slot(5)) || !got[1].Slot.Equal(slot(2)) {
		t.Errorf("History(c) = %v, want the runs in the order recorded", got)
	}
	if last := mustLoad(t, s, "c").Last; last == nil || !last.Slot.Equal(slot(2)) {
		t.Errorf("Last of c = %v, want the run recorded last", last)
	}
}

func testAnchors(t *testing.T, open Factory) {
	s := open(t)
	b := &store.Batch{Anchors: []store.Anchor{
		{Task: "a", Anchor: slot(1)},
		{Task: "a", Anchor: slot(2)}, // later in the same batch: the first wins
		{Task: "b", Anchor: slot(3).In(time.FixedZone("X", -5*3600))},
	}}
	commit(t, s, b)
	for i, want := range []time.Time{slot(1), slot(1), slot(3)} {
		sameTime(t, fmt.Sprintf("Stored[%d]", i), b.Anchors[i].Stored, want)
	}
	b = &store.Batch{Anchors: []store.Anchor{{Task: "a", Anchor: slot(9)}}}
	commit(t, s, b)
	sameTime(t, "Stored after a second batch", b.Anchors[0].Stored, slot(1))
	sameTime(t, "Anchor", mustLoad(t, s, "a").Anchor, slot(1))
	sameTime(t, "Anchor of b", mustLoad(t, s, "b").Anchor, slot(3))
	// An anchor leaves the other fields alone, and they leave it alone.
	claim(t, s, "a", slot(4))
	st := mustLoad(t, s, "a")
	sameTime(t, "Anchor after a claim", st.Anchor, slot(1))
	sameTime(t, "LastSlot", st.LastSlot, slot(4))
}

func testPauses(t *testing.T, open Factory) {
	s := open(t)
	claim(t, s, "a", slot(1))
	commit(t, s, &store.Batch{Pauses: []store.Pause{{Task: "a", Paused: true}, {Task: "b", Paused: true}}})
	if !mustLoad(t, s, "a").Paused || !mustLoad(t, s, "b").Paused {
		t.Error("pause not stored")
	}
	sameTime(t, "LastSlot of a paused task", mustLoad(t, s, "a").LastSlot, slot(1))
	// The last pause of a task in a batch wins.
	commit(t, s, &store.Batch{Pauses: []store.Pause{{Task: "a", Paused: false}, {Task: "b", Paused: false}, {Task: "b", Paused: true}}})
	if mustLoad(t, s, "a").Paused {
		t.Error("resume not stored")
	}
	if !mustLoad(t, s, "b").Paused {
		t.Error("the last pause of a batch did not win")
	}
	// Storing "not paused" for a new task stores the task.
	commit(t, s, &store.Batch{Pauses: []store.Pause{{Task: "c", Paused: false}}})
	if st, ok := load(t, s, "c"); !ok || st.Paused {
		t.Errorf("Load(c) = %+v, %t", st, ok)
	}
}

func testForget(t *testing.T, open Factory) {
	s := open(t)
	for _, name := range []string{"a", "a-b", "ab"} {
		commit(t, s, &store.Batch{
			Anchors: []store.Anchor{{Task: name, Anchor: slot(0)}},
			Claims:  []store.Claim{{Task: name, Slot: slot(1)}, {Task: name, Slot: slot(2)}},
			Runs:    []task.Run{run(name, 1)},
			Pauses:  []store.Pause{{Task: name, Paused: true}},
		})
	}
	if err := s.Forget("a"); err != nil {
		t.Fatal(err)
	}
	if st, ok := load(t, s, "a"); ok {
		t.Errorf("Load after Forget = %+v", st)
	}
	if runs := history(t, s, "a", store.HistorySize); len(runs) != 0 {
		t.Errorf("History after Forget has %d runs", len(runs))
	}
	names, err := s.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"a-b", "ab"}) {
		t.Errorf("Tasks after Forget = %q", names)
	}
	// Tasks whose names start alike are untouched.
	for _, name := range []string{"a-b", "ab"} {
		st := mustLoad(t, s, name)
		if !st.Paused || len(st.InProgress) != 1 || st.Last == nil || len(history(t, s, name, store.HistorySize)) != 1 {
			t.Errorf("task %s changed by Forget(a): %+v", name, st)
		}
	}
	// The forgotten task starts afresh: its slots may be claimed again.
	if !claim(t, s, "a", slot(1)) {
		t.Error("a slot of a forgotten task was refused")
	}
	st := mustLoad(t, s, "a")
	if !st.Anchor.IsZero() || st.Paused || st.Last != nil {
		t.Errorf("forgotten task kept state: %+v", st)
	}
	for _, name := range []string{"a", "never-stored"} {
		if err := s.Forget(name); err != nil {
			t.Errorf("Forget(%q): %v", name, err)
		}
	}
	if err := s.Forget(""); err == nil {
		t.Error("Forget of an empty name succeeded")
	}
}

// testTasksSorted wants the order of Go's string comparison (bytewise),
// whatever the collation of the store.
func testTasksSorted(t *testing.T, open Factory) {
	s := open(t)
	names, err := s.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("Tasks of an empty store = %q", names)
	}
	want := []string{"A", "a", "a-b", "a0", "ab", "b", "z9", "é"}
	shuffled := slices.Clone(want)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	b := &store.Batch{}
	for i, name := range shuffled {
		switch i % 3 { // any write stores a task
		case 0:
			b.Claims = append(b.Claims, store.Claim{Task: name, Slot: slot(i)})
		case 1:
			b.Runs = append(b.Runs, run(name, i))
		default:
			b.Anchors = append(b.Anchors, store.Anchor{Task: name, Anchor: slot(i)})
		}
	}
	commit(t, s, b)
	names, err = s.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, want) {
		t.Errorf("Tasks = %q, want %q", names, want)
	}
}

func testLoadMany(t *testing.T, open Factory) {
	s := open(t)
	const n = 2000
	names := make([]string, n)
	b := &store.Batch{}
	for i := range names {
		names[i] = fmt.Sprintf("task-%04d", i)
		b.Claims = append(b.Claims, store.Claim{Task: names[i], Slot: slot(i + 1)})
		if i%2 == 0 {
			b.Runs = append(b.Runs, run(names[i], i+1))
		}
		if i%5 == 0 {
			b.Pauses = append(b.Pauses, store.Pause{Task: names[i], Paused: true})
		}
	}
	commit(t, s, b)
	for _, c := range b.Claims {
		if !c.Won {
			t.Fatalf("claim of %s refused", c.Task)
		}
	}
	m, err := s.Load(append(slices.Clone(names), "unknown", ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != n {
		t.Fatalf("Load returned %d tasks, want %d", len(m), n)
	}
	for i, name := range names {
		st, ok := m[name]
		if !ok {
			t.Fatalf("task %s missing", name)
		}
		sameTime(t, name+" LastSlot", st.LastSlot, slot(i+1))
		if st.Paused != (i%5 == 0) {
			t.Errorf("%s: Paused = %t", name, st.Paused)
		}
		if recorded := i%2 == 0; recorded {
			if st.Last == nil || len(st.InProgress) != 0 {
				t.Errorf("%s: Last %v, in progress %s; want its run, none in progress", name, st.Last, fmtTimes(inProgress(st)))
			} else {
				sameRun(t, name+" Last", *st.Last, run(name, i+1))
			}
		} else if st.Last != nil || len(st.InProgress) != 1 {
			t.Errorf("%s: Last %v, in progress %s; want no run, its slot in progress", name, st.Last, fmtTimes(inProgress(st)))
		}
	}
	if m, err := s.Load(nil); err != nil || len(m) != 0 {
		t.Errorf("Load(nil) = %v, %v", m, err)
	}
}

func testTimes(t *testing.T, open Factory) {
	s := open(t)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CEST", 2*3600)
	}
	// A time with a monotonic reading, nanoseconds and a location.
	now := time.Now().In(paris)
	at := now.Add(-time.Hour)
	start := now.Add(-time.Hour + 3*time.Nanosecond)
	b := &store.Batch{
		Anchors: []store.Anchor{{Task: "a", Anchor: now.Add(-48 * time.Hour)}},
		Claims:  []store.Claim{{Task: "a", Slot: at}, {Task: "a", Slot: at.Add(time.Nanosecond)}},
		Runs:    []task.Run{{Task: "a", Slot: at, Start: start, Lateness: 3, Outcome: task.OutcomeOK}},
	}
	commit(t, s, b)
	sameTime(t, "Stored", b.Anchors[0].Stored, now.Add(-48*time.Hour))
	st := mustLoad(t, s, "a")
	sameTime(t, "Anchor", st.Anchor, now.Add(-48*time.Hour))
	sameTime(t, "LastSlot", st.LastSlot, at.Add(time.Nanosecond))
	if len(st.InProgress) != 1 {
		t.Fatalf("InProgress = %s, want the second slot (the run ended the first)", fmtTimes(inProgress(st)))
	}
	sameTime(t, "InProgress[0].Slot", st.InProgress[0].Slot, at.Add(time.Nanosecond))
	if st.Last == nil {
		t.Fatal("run lost")
	}
	sameTime(t, "Last.Slot", st.Last.Slot, at)
	sameTime(t, "Last.Start", st.Last.Start, start)
	runs := history(t, s, "a", 1)
	if len(runs) == 1 {
		sameTime(t, "History[0].Start", runs[0].Start, start)
	}
}

func testValidate(t *testing.T, open Factory) {
	s := open(t)
	claim(t, s, "a", slot(1))
	bad := []struct {
		name string
		b    store.Batch
		want []string // in the error
	}{
		{"empty names", store.Batch{
			Anchors: []store.Anchor{{Anchor: slot(1)}}, Claims: []store.Claim{{Slot: slot(2)}},
			Checkpoints: []store.Checkpoint{{Slot: slot(2)}}, Runs: []task.Run{{Slot: slot(2)}}, Pauses: []store.Pause{{}},
		}, []string{"anchor: empty task name", "claim: empty task name", "checkpoint: empty task name", "run: empty task name", "pause: empty task name"}},
		{"zero times", store.Batch{
			Anchors: []store.Anchor{{Task: "z"}}, Claims: []store.Claim{{Task: "z"}},
			Checkpoints: []store.Checkpoint{{Task: "z"}}, Runs: []task.Run{{Task: "z"}},
		}, []string{`anchor of task "z": zero time`, `claim of task "z": zero time`, `checkpoint of task "z": zero time`, `run of task "z": zero time`}},
		{"NUL in a name", store.Batch{Claims: []store.Claim{{Task: "a\x00b", Slot: slot(2)}}}, []string{"NUL"}},
		{"out of range", store.Batch{
			Claims: []store.Claim{{Task: "z", Slot: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}},
			Runs:   []task.Run{{Task: "z", Slot: slot(1), Start: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}},
		}, []string{`claim of task "z": time 1960`, `run start of task "z": time 2300`}},
	}
	for _, tc := range bad {
		// Valid writes in the same batch: none of them may be applied.
		b := tc.b
		b.Claims = append(b.Claims, store.Claim{Task: "a", Slot: slot(5)})
		b.Pauses = append(b.Pauses, store.Pause{Task: "v", Paused: true})
		verr := b.Validate()
		err := s.Commit(&b)
		if err == nil || verr == nil {
			t.Errorf("%s: Commit error %v, Validate error %v; want both", tc.name, err, verr)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: Commit error %q does not say %q", tc.name, err, want)
			}
		}
		if b.Claims[len(b.Claims)-1].Won {
			t.Errorf("%s: a claim of a refused batch was reported won", tc.name)
		}
	}
	sameTime(t, "LastSlot after refused batches", mustLoad(t, s, "a").LastSlot, slot(1))
	if _, ok := load(t, s, "v"); ok {
		t.Error("a refused batch stored a pause")
	}
	names, err := s.Tasks()
	if err != nil || !slices.Equal(names, []string{"a"}) {
		t.Errorf("Tasks after refused batches = %q, %v", names, err)
	}
}

func testEmptyBatch(t *testing.T, open Factory) {
	s := open(t)
	b := &store.Batch{}
	if b.Len() != 0 || b.Validate() != nil {
		t.Errorf("empty batch: Len %d, Validate %v", b.Len(), b.Validate())
	}
	commit(t, s, b)
	if names, err := s.Tasks(); err != nil || len(names) != 0 {
		t.Errorf("Tasks after an empty batch = %q, %v", names, err)
	}
}

func testClosed(t *testing.T, open Factory) {
	s := open(t)
	claim(t, s, "a", slot(1))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	checks := map[string]error{
		"Commit":       s.Commit(&store.Batch{Claims: []store.Claim{{Task: "a", Slot: slot(2)}}}),
		"Commit empty": s.Commit(&store.Batch{}),
		"Forget":       s.Forget("a"),
	}
	_, checks["Load"] = s.Load([]string{"a"})
	_, checks["History"] = s.History("a", 5)
	_, checks["Tasks"] = s.Tasks()
	for op, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", op, err)
		}
	}
}

// testConcurrent commits from many goroutines at once, racing for the same
// slots, while others read: every slot is won once, every won run is
// recorded, and the race detector watches.
func testConcurrent(t *testing.T, open Factory) {
	s := open(t)
	const (
		workers = 16
		tasks   = 4
		slots   = 20
	)
	var (
		mu  sync.Mutex
		won = map[string]int{} // "task slot" -> wins
	)
	var wg sync.WaitGroup
	errs := make(chan error, workers+2)
	for w := range workers {
		wg.Go(func() {
			for i := 1; i <= slots; i++ {
				b := &store.Batch{}
				for k := range tasks {
					b.Claims = append(b.Claims, store.Claim{Task: fmt.Sprintf("t%d", k), Slot: slot(i)})
				}
				if w%4 == 0 {
					b.Pauses = []store.Pause{{Task: fmt.Sprintf("p%d", w), Paused: i%2 == 0}}
				}
				if err := s.Commit(b); err != nil {
					errs <- err
					return
				}
				done := &store.Batch{}
				for _, c := range b.Claims {
					if !c.Won {
						continue
					}
					mu.Lock()
					won[fmt.Sprintf("%s %d", c.Task, i)]++
					mu.Unlock()
					r := run(c.Task, i)
					r.Replica = fmt.Sprintf("w%d", w)
					done.Checkpoints = append(done.Checkpoints, store.Checkpoint{Task: c.Task, Slot: c.Slot, Progress: task.Progress{Pages: 1}})
					done.Runs = append(done.Runs, r)
				}
				if err := s.Commit(done); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			names := []string{"t0", "t1", "t2", "t3"}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Load(names); err != nil {
					errs <- err
					return
				}
				if _, err := s.History("t0", store.HistorySize); err != nil {
					errs <- err
					return
				}
				if _, err := s.Tasks(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for key, n := range won {
		if n != 1 {
			t.Errorf("slot %s won %d times", key, n)
		}
	}
	for k := range tasks {
		name := fmt.Sprintf("t%d", k)
		if won[fmt.Sprintf("%s %d", name, slots)] != 1 {
			t.Errorf("%s: the last slot was not won exactly once", name)
		}
		st := mustLoad(t, s, name)
		sameTime(t, name+" LastSlot", st.LastSlot, slot(slots))
		if len(st.InProgress) != 0 {
			t.Errorf("%s: slots still in progress after every run was recorded: %s", name, fmtTimes(inProgress(st)))
		}
		runs := history(t, s, name, store.HistorySize)
		n := 0
		for key := range won {
			if strings.HasPrefix(key, name+" ") {
				n++
			}
		}
		if want := min(n, store.HistorySize); len(runs) != want {
			t.Errorf("%s: %d runs in history, want %d", name, len(runs), want)
		}
		seen := map[time.Time]bool{}
		for _, r := range runs {
			i := int(r.Slot.Sub(base) / time.Minute)
			if seen[r.Slot] || won[fmt.Sprintf("%s %d", name, i)] != 1 {
				t.Errorf("%s: history holds slot %d twice, or a slot that was not won", name, i)
			}
			seen[r.Slot] = true
		}
	}
}
