package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/task"
)

// SharedFactory returns a new, empty shared store for one test, and
// registers whatever cleanup it needs.
type SharedFactory func(t *testing.T) store.Shared

// RunShared runs the suite of the semantics that replicas sharing a store
// rely on (store.Shared): owners, epochs and leases of claimed runs, early
// and stale refusals, fencing after a take-over, renewals, take-overs by
// concurrent replicas, task set versions, change notifications and
// heartbeats. Each subtest runs in parallel on a store of its own.
//
// The store's clock must be within a few seconds of the test's (the same
// machine): early refusals are checked with due times an hour ahead.
// Leases are made to lapse by claiming with a lease of a microsecond and
// waiting (bounded) until the store's clock, read through Heartbeat, has
// passed them.
func RunShared(t *testing.T, open SharedFactory) {
	runParallel(t, open, []subtest[SharedFactory]{
		{"ClaimOwnerEpochLease", testClaimOwner},
		{"ClaimsOfSeveralOwnersInOneBatch", testClaimOwnersInOneBatch},
		{"EarlyByTheStoreClock", testEarly},
		{"StaleVersion", testStale},
		{"BatchNow", testBatchNow},
		{"FencingAfterTakeOver", testFencing},
		{"Renew", testRenew},
		{"TakeOverOnlyLapsed", testTakeOverLapsed},
		{"TakeOverConcurrent", testTakeOverConcurrent},
		{"PublishTaskSet", testPublish},
		{"Changes", testChanges},
		{"HeartbeatReplicas", testHeartbeat},
	})
}

// lapse is a lease that lapses at once (a microsecond, the finest a
// database keeps).
const lapse = time.Microsecond

// owned claims slot i of name for owner with lease and returns the batch.
func owned(t *testing.T, s store.Shared, name string, i int, owner string, lease time.Duration) *store.Batch {
	t.Helper()
	b := &store.Batch{Claims: []store.Claim{{Task: name, Slot: slot(i), Owner: owner, Lease: lease}}}
	commit(t, s, b)
	if !b.Claims[0].Won {
		t.Fatalf("claim of %s slot %d by %s refused: %s", name, i, owner, b.Claims[0].Refused)
	}
	return b
}

// clock returns the store's clock (through a heartbeat of a replica of
// its own).
func clock(t *testing.T, s store.Shared) time.Time {
	t.Helper()
	now, err := s.Heartbeat(store.Replica{Name: "suite-clock"})
	if err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	return now
}

// waitLapsed waits until the store's clock is past until (bounded).
func waitLapsed(t *testing.T, s store.Shared, until time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !clock(t, s).After(until) {
		if time.Now().After(deadline) {
			t.Fatalf("the store's clock did not pass %s within 10 s", until.Format(time.RFC3339Nano))
		}
		time.Sleep(time.Millisecond)
	}
}

// onlyInProgress returns the single run in progress of name.
func onlyInProgress(t *testing.T, s store.Shared, name string) store.InProgress {
	t.Helper()
	st := mustLoad(t, s, name)
	if len(st.InProgress) != 1 {
		t.Fatalf("%s: %d runs in progress, want 1: %+v", name, len(st.InProgress), st.InProgress)
	}
	return st.InProgress[0]
}

func testClaimOwner(t *testing.T, open SharedFactory) {
	s := open(t)
	const lease = 90 * time.Second
	b := owned(t, s, "a", 1, "r1", lease)
	if b.Now.IsZero() {
		t.Fatal("Batch.Now not set by a shared store")
	}
	ip := onlyInProgress(t, s, "a")
	if ip.Owner != "r1" || ip.Epoch != 1 {
		t.Errorf("in progress: owner %q epoch %d, want r1 at epoch 1", ip.Owner, ip.Epoch)
	}
	sameTime(t, "LeaseUntil", ip.LeaseUntil, b.Now.Add(lease))
	// A claim without a lease has none, and is never taken over.
	owned(t, s, "b", 1, "r1", 0)
	ip = onlyInProgress(t, s, "b")
	if !ip.LeaseUntil.IsZero() || ip.Epoch != 1 || ip.Owner != "r1" {
		t.Errorf("claim without a lease: %+v, want owner r1, epoch 1, no lease", ip)
	}
	held, err := s.TakeOver("r2", lease, []string{"b"}, 10)
	if err != nil || len(held) != 0 {
		t.Errorf("TakeOver of a run without a lease = %+v, %v; want none", held, err)
	}
	// A claim without an owner is held by nobody, at epoch 1.
	commit(t, s, &store.Batch{Claims: []store.Claim{{Task: "c", Slot: slot(1)}}})
	if ip := onlyInProgress(t, s, "c"); ip.Owner != "" || ip.Epoch != 1 || !ip.LeaseUntil.IsZero() {
		t.Errorf("claim without an owner: %+v", ip)
	}
}

func testClaimOwnersInOneBatch(t *testing.T, open SharedFactory) {
	s := open(t)
	b := &store.Batch{Claims: []store.Claim{
		{Task: "a", Slot: slot(1), Owner: "r1", Lease: time.Minute},
		{Task: "a", Slot: slot(1), Owner: "r2", Lease: time.Minute},
		{Task: "a", Slot: slot(2), Owner: "r2", Lease: time.Minute},
	}}
	commit(t, s, b)
	for i, want := range []bool{true, false, true} {
		if c := b.Claims[i]; c.Won != want {
			t.Errorf("claim %d by %s: Won %t, want %t", i, c.Owner, c.Won, want)
		}
	}
	if r := b.Claims[1].Refused; r != store.RefusedClaimed {
		t.Errorf("second claim of slot 1: Refused %q, want %q", r, store.RefusedClaimed)
	}
	st := mustLoad(t, s, "a")
	if len(st.InProgress) != 2 || st.InProgress[0].Owner != "r1" || st.InProgress[1].Owner != "r2" {
		t.Errorf("in progress = %+v, want slot 1 held by r1 and slot 2 by r2", st.InProgress)
	}
}

func testEarly(t *testing.T, open SharedFactory) {
	s := open(t)
	ahead := time.Now().Add(time.Hour)
	b := &store.Batch{Claims: []store.Claim{
		{Task: "a", Slot: slot(1), Due: ahead, Owner: "r1"}, // the slot is past, its due time is not
		{Task: "b", Slot: ahead, Owner: "r1"},               // no due time: the slot's
		{Task: "c", Slot: slot(1), Due: time.Now().Add(-time.Second), Owner: "r1"},
		{Task: "c", Slot: slot(2), Due: ahead, Owner: "r1"},
		{Task: "c", Slot: slot(3), Owner: "r1"}, // after a refused claim of the batch
	}}
	commit(t, s, b)
	want := []store.Refusal{store.RefusedEarly, store.RefusedEarly, "", store.RefusedEarly, ""}
	for i, c := range b.Claims {
		if c.Won != (want[i] == "") || c.Refused != want[i] {
			t.Errorf("claim %d (%s): Won %t Refused %q, want refusal %q", i, c.Task, c.Won, c.Refused, want[i])
		}
	}
	if !b.Now.Before(ahead) {
		t.Errorf("Batch.Now = %s, an hour ahead of this clock", b.Now)
	}
	for _, name := range []string{"a", "b"} {
		if st, _ := load(t, s, name); !st.LastSlot.IsZero() || len(st.InProgress) != 0 {
			t.Errorf("%s: an early claim moved the last slot or started a run: %+v", name, st)
		}
	}
	st := mustLoad(t, s, "c")
	sameTime(t, "LastSlot of c", st.LastSlot, slot(3))
	sameSlots(t, "InProgress of c", inProgress(st), []time.Time{slot(1), slot(3)})
	// The early slot can be claimed once due.
	b = &store.Batch{Claims: []store.Claim{{Task: "a", Slot: slot(1), Due: time.Now().Add(-time.Millisecond)}}}
	commit(t, s, b)
	if !b.Claims[0].Won {
		t.Errorf("a due claim refused: %s", b.Claims[0].Refused)
	}
}

func testStale(t *testing.T, open SharedFactory) {
	s := open(t)
	// Before any task set is published, every version is current.
	b := &store.Batch{Claims: []store.Claim{{Task: "a", Slot: slot(1), Version: 7}}}
	commit(t, s, b)
	if !b.Claims[0].Won {
		t.Errorf("claim before any publication refused: %s", b.Claims[0].Refused)
	}
	v1 := publish(t, s, "one")
	v2 := publish(t, s, "two")
	b = &store.Batch{Claims: []store.Claim{
		{Task: "a", Slot: slot(2), Version: v1},
		{Task: "a", Slot: slot(3), Version: v2},
		{Task: "a", Slot: slot(4)},                                                     // unversioned
		{Task: "a", Slot: slot(5), Version: v1, Due: time.Now().Add(time.Hour)},        // stale before early
		{Task: "b", Slot: slot(1), Version: v2 + 1, Due: time.Now().Add(-time.Second)}, // a version not yet published
	}}
	commit(t, s, b)
	want := []store.Refusal{store.RefusedStale, "", "", store.RefusedStale, store.RefusedStale}
	for i, c := range b.Claims {
		if c.Won != (want[i] == "") || c.Refused != want[i] {
			t.Errorf("claim %d (version %d): Won %t Refused %q, want refusal %q", i, c.Version, c.Won, c.Refused, want[i])
		}
	}
	sameSlots(t, "InProgress of a", inProgress(mustLoad(t, s, "a")), []time.Time{slot(1), slot(3), slot(4)})
}

func publish(t *testing.T, s store.Shared, content string) int64 {
	t.Helper()
	v, _, err := s.PublishTaskSet([]byte(content), "hash-"+content, false)
	if err != nil {
		t.Fatalf("PublishTaskSet(%s): %v", content, err)
	}
	return v
}

func testBatchNow(t *testing.T, open SharedFactory) {
	s := open(t)
	for _, b := range []*store.Batch{
		{Claims: []store.Claim{{Task: "a", Slot: slot(1)}}},
		{Pauses: []store.Pause{{Task: "a", Paused: true}}},
		{Runs: []task.Run{run("a", 1)}},
	} {
		before := time.Now()
		commit(t, s, b)
		after := time.Now()
		if b.Now.IsZero() || b.Now.Before(before.Add(-5*time.Second)) || b.Now.After(after.Add(5*time.Second)) {
			t.Errorf("Batch.Now = %s, not the store's clock (this one read %s .. %s)", b.Now, before, after)
		}
		sameTime(t, "Batch.Now", b.Now, b.Now)
	}
}

func testFencing(t *testing.T, open SharedFactory) {
	s := open(t)
	owned(t, s, "a", 1, "r1", lapse)
	p1 := task.Progress{Pages: 2, Offset: 100, Items: 90}
	cp := &store.Batch{Checkpoints: []store.Checkpoint{{Task: "a", Slot: slot(1), Progress: p1, Owner: "r1", Epoch: 1}}}
	commit(t, s, cp)
	if cp.Checkpoints[0].Fenced {
		t.Fatal("the owner's checkpoint was fenced")
	}
	waitLapsed(t, s, onlyInProgress(t, s, "a").LeaseUntil)
	held, err := s.TakeOver("r2", time.Minute, []string{"a"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[0].Task != "a" || !held[0].Slot.Equal(slot(1)) || held[0].Epoch != 2 || held[0].Progress != p1 {
		t.Fatalf("TakeOver = %+v, want a slot 1 at epoch 2 with progress %+v", held, p1)
	}
	sameTime(t, "Held.Slot", held[0].Slot, slot(1))
	if ip := onlyInProgress(t, s, "a"); ip.Owner != "r2" || ip.Epoch != 2 {
		t.Errorf("after the take-over: owner %q epoch %d, want r2 at 2", ip.Owner, ip.Epoch)
	}

	// The former owner's writes are fenced; the new owner's are applied.
	stale := run("a", 1)
	stale.Replica, stale.Epoch = "r1", 1
	wrongEpoch := run("a", 1)
	wrongEpoch.Replica, wrongEpoch.Epoch = "r2", 1
	b := &store.Batch{
		Checkpoints: []store.Checkpoint{
			{Task: "a", Slot: slot(1), Progress: task.Progress{Pages: 9}, Owner: "r1", Epoch: 1},
			{Task: "a", Slot: slot(1), Progress: task.Progress{Pages: 9}, Owner: "r2", Epoch: 1},
			{Task: "a", Slot: slot(1), Progress: task.Progress{Pages: 3, Offset: 150, Items: 140}, Owner: "r2", Epoch: 2},
		},
		Runs: []task.Run{stale, wrongEpoch},
	}
	commit(t, s, b)
	for i, want := range []bool{true, true, false} {
		if b.Checkpoints[i].Fenced != want {
			t.Errorf("checkpoint %d (%s at %d): Fenced %t, want %t", i, b.Checkpoints[i].Owner, b.Checkpoints[i].Epoch, b.Checkpoints[i].Fenced, want)
		}
	}
	if !slices.Equal(b.RunsFenced, []bool{true, true}) {
		t.Errorf("RunsFenced = %v, want both fenced", b.RunsFenced)
	}
	ip := onlyInProgress(t, s, "a")
	if ip.Progress != (task.Progress{Pages: 3, Offset: 150, Items: 140}) {
		t.Errorf("progress = %+v, want the new owner's checkpoint", ip.Progress)
	}
	if runs := history(t, s, "a", store.HistorySize); len(runs) != 0 {
		t.Errorf("fenced runs recorded: %+v", runs)
	}

	// A manual run is recorded whoever sends it, and ends nothing.
	manual := run("a", 1)
	manual.Manual, manual.Replica, manual.Epoch = true, "r1", 1
	b = &store.Batch{Runs: []task.Run{manual}}
	commit(t, s, b)
	if b.RunsFenced != nil {
		t.Errorf("RunsFenced = %v for a manual run, want nil", b.RunsFenced)
	}
	onlyInProgress(t, s, "a")

	// The new owner records the run (twice in one batch: the second finds
	// the slot ended, and is fenced), then its late checkpoint is ignored.
	done := run("a", 1)
	done.Replica, done.Epoch, done.Resumed = "r2", 2, true
	b = &store.Batch{Runs: []task.Run{done, done}}
	commit(t, s, b)
	if !slices.Equal(b.RunsFenced, []bool{false, true}) {
		t.Errorf("RunsFenced = %v, want [false true]", b.RunsFenced)
	}
	st := mustLoad(t, s, "a")
	if len(st.InProgress) != 0 || st.Last == nil {
		t.Fatalf("after the owner's run: %+v", st)
	}
	// Run.Epoch is not required to be kept in the history (Memory drops it).
	last, want := *st.Last, done
	last.Epoch, want.Epoch = 0, 0
	sameRun(t, "Last", last, want)
	b = &store.Batch{Checkpoints: []store.Checkpoint{{Task: "a", Slot: slot(1), Progress: task.Progress{Pages: 4}, Owner: "r2", Epoch: 2}}}
	commit(t, s, b)
	if b.Checkpoints[0].Fenced || len(mustLoad(t, s, "a").InProgress) != 0 {
		t.Error("a checkpoint of a recorded run was fenced or resurrected it")
	}
	if runs := history(t, s, "a", store.HistorySize); len(runs) != 2 || !runs[0].Manual || runs[1].Replica != "r2" {
		t.Errorf("history = %+v, want the manual run then the new owner's", runs)
	}
}

func testRenew(t *testing.T, open SharedFactory) {
	s := open(t)
	b := owned(t, s, "a", 1, "r1", time.Minute)
	owned(t, s, "a", 2, "r1", lapse)
	owned(t, s, "b", 1, "r2", time.Minute)
	before := mustLoad(t, s, "a").InProgress
	held := []store.Held{
		{Task: "a", Slot: slot(1), Epoch: 1},
		{Task: "a", Slot: slot(2), Epoch: 1}, // lapsed, not taken over: still held
		{Task: "a", Slot: slot(1), Epoch: 2}, // another epoch
		{Task: "b", Slot: slot(1), Epoch: 1}, // another owner's
		{Task: "a", Slot: slot(3), Epoch: 1}, // never claimed
		{Task: "ghost", Slot: slot(1), Epoch: 1},
	}
	waitLapsed(t, s, before[1].LeaseUntil)
	got, err := s.Renew("r1", 2*time.Minute, held)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false, false, false, false}; !slices.Equal(got, want) {
		t.Errorf("Renew = %v, want %v", got, want)
	}
	after := mustLoad(t, s, "a").InProgress
	if len(after) != 2 || !after[0].LeaseUntil.After(b.Now.Add(time.Minute)) || !after[1].LeaseUntil.After(before[1].LeaseUntil) {
		t.Errorf("leases after Renew = %+v, want both extended by 2 min", after)
	}
	if ip := onlyInProgress(t, s, "b"); ip.LeaseUntil.After(b.Now.Add(time.Minute + 10*time.Second)) {
		t.Errorf("another owner's lease was extended: %+v", ip)
	}
	// Once recorded, or taken over, a run is no longer held.
	r := run("a", 1)
	r.Replica, r.Epoch = "r1", 1
	commit(t, s, &store.Batch{Runs: []task.Run{r}})
	owned(t, s, "c", 1, "r1", lapse)
	waitLapsed(t, s, onlyInProgress(t, s, "c").LeaseUntil)
	if h, err := s.TakeOver("r3", time.Minute, []string{"c"}, 1); err != nil || len(h) != 1 {
		t.Fatalf("TakeOver = %+v, %v", h, err)
	}
	got, err = s.Renew("r1", time.Minute, []store.Held{{Task: "a", Slot: slot(1), Epoch: 1}, {Task: "c", Slot: slot(1), Epoch: 1}})
	if err != nil || !slices.Equal(got, []bool{false, false}) {
		t.Errorf("Renew of a recorded and a taken-over run = %v, %v; want [false false]", got, err)
	}
	if got, err := s.Renew("r1", time.Minute, nil); err != nil || len(got) != 0 {
		t.Errorf("Renew of nothing = %v, %v", got, err)
	}
}

func testTakeOverLapsed(t *testing.T, open SharedFactory) {
	s := open(t)
	owned(t, s, "a", 1, "r1", lapse)
	owned(t, s, "a", 2, "r1", time.Hour)
	owned(t, s, "a", 3, "r1", lapse)
	owned(t, s, "b", 1, "r1", lapse)
	owned(t, s, "c", 1, "r1", lapse)
	waitLapsed(t, s, mustLoad(t, s, "c").InProgress[0].LeaseUntil)
	if h, err := s.TakeOver("r2", time.Minute, []string{"a", "b"}, 0); err != nil || len(h) != 0 {
		t.Errorf("TakeOver with limit 0 = %+v, %v", h, err)
	}
	got, err := s.TakeOver("r2", time.Minute, []string{"a", "b", "ghost"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	rest, err := s.TakeOver("r3", time.Minute, []string{"a", "b"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(rest) != 1 {
		t.Fatalf("TakeOver with limit 2 = %+v, then %+v; want 2 then the third lapsed run", got, rest)
	}
	taken := map[string]string{}
	for _, h := range append(slices.Clone(got), rest...) {
		key := fmt.Sprintf("%s %s", h.Task, h.Slot.Format(time.TimeOnly))
		if _, dup := taken[key]; dup || h.Epoch != 2 {
			t.Errorf("run %s taken twice or at epoch %d", key, h.Epoch)
		}
		taken[key] = key
	}
	for _, key := range []string{
		"a " + slot(1).Format(time.TimeOnly), "a " + slot(3).Format(time.TimeOnly), "b " + slot(1).Format(time.TimeOnly),
	} {
		if _, ok := taken[key]; !ok {
			t.Errorf("lapsed run %s not taken over", key)
		}
	}
	// The run with a live lease and the unnamed task's run stay with r1.
	st := mustLoad(t, s, "a")
	if ip := st.InProgress[1]; ip.Owner != "r1" || ip.Epoch != 1 {
		t.Errorf("a run with a live lease was taken over: %+v", ip)
	}
	if ip := onlyInProgress(t, s, "c"); ip.Owner != "r1" {
		t.Errorf("a run of a task not named was taken over: %+v", ip)
	}
	// Taken-over runs have a fresh lease: not taken again.
	if h, err := s.TakeOver("r4", time.Minute, []string{"a", "b"}, 10); err != nil || len(h) != 0 {
		t.Errorf("second TakeOver = %+v, %v; want none", h, err)
	}
}

// testTakeOverConcurrent has two replicas take over the same lapsed runs at
// once: each run goes to exactly one of them.
func testTakeOverConcurrent(t *testing.T, open SharedFactory) {
	s := open(t)
	const runs = 40
	names := make([]string, 8)
	for i := range names {
		names[i] = fmt.Sprintf("t%d", i)
	}
	for round := range 3 {
		b := &store.Batch{}
		for i := range runs {
			b.Claims = append(b.Claims, store.Claim{Task: names[i%len(names)], Slot: slot(round*runs + i), Owner: "dead", Lease: lapse})
		}
		commit(t, s, b)
		var until time.Time
		for _, c := range b.Claims {
			if !c.Won {
				t.Fatalf("claim refused: %+v", c)
			}
			until = b.Now.Add(lapse)
		}
		waitLapsed(t, s, until)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			got   [2][]store.Held
			errs  [2]error
		)
		for r := range 2 {
			wg.Go(func() {
				<-start
				got[r], errs[r] = s.TakeOver(fmt.Sprintf("r%d", r), time.Minute, names, runs)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]int{}
		for r := range got {
			for _, h := range got[r] {
				seen[fmt.Sprintf("%s %d", h.Task, h.Slot.UnixNano())]++
			}
		}
		if len(seen) != runs || len(got[0])+len(got[1]) != runs {
			t.Errorf("round %d: %d and %d runs taken, %d distinct; want %d in all, each once", round, len(got[0]), len(got[1]), len(seen), runs)
		}
		// Every run is now held by the replica that got it.
		st, err := s.Load(names)
		if err != nil {
			t.Fatal(err)
		}
		for r := range got {
			for _, h := range got[r] {
				i := slices.IndexFunc(st[h.Task].InProgress, func(p store.InProgress) bool { return p.Slot.Equal(h.Slot) })
				if i < 0 || st[h.Task].InProgress[i].Owner != fmt.Sprintf("r%d", r) || st[h.Task].InProgress[i].Epoch != 2 {
					t.Errorf("run %s %s is not held by r%d at epoch 2", h.Task, h.Slot, r)
				}
			}
		}
	}
}

func testPublish(t *testing.T, open SharedFactory) {
	s := open(t)
	if v, content, err := s.TaskSet(); err != nil || v != 0 || content != nil {
		t.Errorf("TaskSet of a new store = %d, %q, %v; want 0, nil", v, content, err)
	}
	steps := []struct {
		content       string
		force         bool
		want, current int64
	}{
		{"one", false, 1, 1},
		{"one", false, 1, 1}, // same hash: no new version
		{"two", false, 2, 2}, // a new content becomes current
		{"one", false, 1, 2}, // a replica started with the older file: its version, not made current
		{"one", true, 1, 1},  // an explicit reload of the older file: current again
		{"two", true, 2, 2},
		{"two", true, 2, 2}, // already current: nothing changes
	}
	for _, st := range steps {
		v, cur, err := s.PublishTaskSet([]byte(st.content), "hash-"+st.content, st.force)
		if err != nil || v != st.want || cur != st.current {
			t.Errorf("PublishTaskSet(%s, force %t) = %d, %d, %v; want %d, %d", st.content, st.force, v, cur, err, st.want, st.current)
		}
	}
	v, content, err := s.TaskSet()
	if err != nil || v != 2 || string(content) != "two" {
		t.Errorf("TaskSet = %d, %q, %v; want 2, two", v, content, err)
	}
	// Binary content round-trips.
	bin := []byte{0, 1, 2, 0xff, '\n'}
	if v, cur, err := s.PublishTaskSet(bin, "bin", false); err != nil || v != 3 || cur != 3 {
		t.Fatalf("PublishTaskSet(binary) = %d, %d, %v; want 3, 3", v, cur, err)
	}
	if _, content, _ := s.TaskSet(); !slices.Equal(content, bin) {
		t.Errorf("content = %v, want %v", content, bin)
	}
	// Concurrent publications of one content make one version.
	var wg sync.WaitGroup
	versions := make([]int64, 6)
	for i := range versions {
		wg.Go(func() {
			v, _, err := s.PublishTaskSet([]byte("three"), "hash-three", false)
			if err != nil {
				t.Error(err)
			}
			versions[i] = v
		})
	}
	wg.Wait()
	for _, v := range versions {
		if v != 4 {
			t.Errorf("concurrent publications of one content = %v, want all 4", versions)
			break
		}
	}
}

// testChanges checks that a pause commit and a publication each wake the
// watchers. A store may also send a value when it starts listening, after
// a reconnection or on its poll interval, so each check is done in rounds:
// once the channel has delivered a first value, every one of three rounds
// of "change, then a value within 10 s" must succeed; a store that sent
// nothing on changes would run out of stray values by the third.
func testChanges(t *testing.T, open SharedFactory) {
	s := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Changes(ctx)
	other := s.Changes(ctx) // a second watcher is woken too
	wait := func(c <-chan struct{}, what string, d time.Duration) bool {
		t.Helper()
		select {
		case _, ok := <-c:
			if !ok {
				t.Fatalf("%s: Changes closed early", what)
			}
			return true
		case <-time.After(d):
			return false
		}
	}
	changes := []struct {
		name string
		do   func(i int)
	}{
		{"pause", func(i int) {
			commit(t, s, &store.Batch{Pauses: []store.Pause{{Task: "a", Paused: i%2 == 0}}})
		}},
		{"publication", func(i int) { publish(t, s, fmt.Sprintf("set-%d", i)) }},
	}
	i := 0
	// First value: the store is listening (at most 20 changes, 1 s apart).
	for ; !wait(ch, "first", time.Second); i++ {
		if i == 20 {
			t.Fatal("no value on Changes after 20 pause commits")
		}
		changes[0].do(i)
	}
	for _, c := range changes {
		for round := range 3 {
			i++
			c.do(i)
			if !wait(ch, c.name, 10*time.Second) {
				t.Fatalf("no value on Changes within 10 s of a %s (round %d)", c.name, round)
			}
		}
	}
	if !wait(other, "second watcher", 10*time.Second) {
		t.Error("the second watcher got nothing")
	}
	cancel()
	deadline := time.After(10 * time.Second)
	for _, c := range []<-chan struct{}{ch, other} {
		for open := true; open; {
			select {
			case _, open = <-c:
			case <-deadline:
				t.Fatal("Changes not closed within 10 s of the end of its context")
			}
		}
	}
}

func testHeartbeat(t *testing.T, open SharedFactory) {
	s := open(t)
	started := time.Now().Add(-time.Minute).In(time.FixedZone("X", 3600))
	seen1, err := s.Heartbeat(store.Replica{Name: "r2", Started: started, Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(store.Replica{Name: "r1", Started: started.Add(time.Second), Version: 3}); err != nil {
		t.Fatal(err)
	}
	// A heartbeat without a start time keeps the stored one.
	seen2, err := s.Heartbeat(store.Replica{Name: "r2", Version: 4})
	if err != nil {
		t.Fatal(err)
	}
	if seen2.Before(seen1) {
		t.Errorf("the store's clock went back: %s then %s", seen1, seen2)
	}
	got, err := s.Replicas(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "r1" || got[1].Name != "r2" {
		t.Fatalf("Replicas = %+v, want r1 and r2, by name", got)
	}
	r2 := got[1]
	sameTime(t, "Started", r2.Started, started)
	sameTime(t, "Seen", r2.Seen, seen2)
	if r2.Version != 4 {
		t.Errorf("Version = %d, want 4", r2.Version)
	}
	// Replicas not seen within maxAge are left out.
	waitLapsed(t, s, seen2.Add(time.Millisecond))
	if _, err := s.Heartbeat(store.Replica{Name: "r1"}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Replicas(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.Name == "r2" {
			t.Errorf("Replicas(1ms) holds r2, last seen at %s", r.Seen)
		}
	}
}
