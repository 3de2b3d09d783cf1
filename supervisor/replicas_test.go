package supervisor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

// errCutOff is what a replica cut off from the shared store gets.
var errCutOff = errors.New("connection refused (cut off from the state store)")

// cutOff is one replica's way to the shared store, which a test can cut
// (a network partition): every call then fails.
type cutOff struct {
	*store.SharedMemory
	down atomic.Bool
}

var _ store.Shared = (*cutOff)(nil)

func (c *cutOff) err() error {
	if c.down.Load() {
		return errCutOff
	}
	return nil
}

func (c *cutOff) Commit(b *store.Batch) error {
	if err := c.err(); err != nil {
		return err
	}
	return c.SharedMemory.Commit(b)
}

func (c *cutOff) Load(names []string) (map[string]store.TaskState, error) {
	if err := c.err(); err != nil {
		return nil, err
	}
	return c.SharedMemory.Load(names)
}

func (c *cutOff) Renew(owner string, lease time.Duration, held []store.Held) ([]bool, error) {
	if err := c.err(); err != nil {
		return nil, err
	}
	return c.SharedMemory.Renew(owner, lease, held)
}

func (c *cutOff) TakeOver(owner string, lease time.Duration, tasks []string, limit int) ([]store.Held, error) {
	if err := c.err(); err != nil {
		return nil, err
	}
	return c.SharedMemory.TakeOver(owner, lease, tasks, limit)
}

func (c *cutOff) Heartbeat(r store.Replica) (time.Time, error) {
	if err := c.err(); err != nil {
		return time.Time{}, err
	}
	return c.SharedMemory.Heartbeat(r)
}

// replica is one scheduler process of a replica set, in its own engine.
type replica struct {
	name   string
	engine *actor.Engine
	srv    *supervisor.Server
	rec    *recorder
	store  *cutOff
}

// startReplica starts a replica on the shared store.
func startReplica(t *testing.T, name string, shared *store.SharedMemory, specs []task.Spec, content []byte, opts ...supervisor.Option) *replica {
	t.Helper()
	r := &replica{name: name, rec: &recorder{}, store: &cutOff{SharedMemory: shared}}
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		t.Fatal(err)
	}
	r.engine = engine
	opts = append([]supervisor.Option{supervisor.WithStore(r.store), supervisor.WithReplica(name),
		supervisor.WithObserver(r.rec), supervisor.WithTaskSet(content)}, opts...)
	r.srv, err = supervisor.NewServer(engine, specs, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// kill stops the replica as a crash would: nothing more is recorded by it,
// its runs in progress stay in progress with their lease.
func (r *replica) kill() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = r.srv.Shutdown(ctx)
}

func (r *replica) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, supervisor.ErrServerStopped) {
		t.Errorf("replica %s: %v", r.name, err)
	}
}

func (r *replica) request(t *testing.T, m any) any {
	t.Helper()
	v, err := r.engine.Request(r.srv.PID(), m, 10*time.Second).Result()
	if err != nil {
		t.Fatalf("replica %s: %T: %v", r.name, m, err)
	}
	return v
}

// firesBySlot counts the fires of task across replicas, by slot.
func firesBySlot(replicas []*replica, name string) map[time.Time][]string {
	out := map[time.Time][]string{}
	for _, r := range replicas {
		for _, f := range r.rec.firesOf(name) {
			out[f.slot] = append(out[f.slot], r.name)
		}
	}
	return out
}

// Every slot fires on exactly one replica, whichever wins its claim.
func TestReplicasFireEverySlotOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := store.NewSharedMemory()
		specs := []task.Spec{jobSpec("a", time.Minute, noop), jobSpec("b", 2*time.Minute, noop)}
		var set []*replica
		for _, name := range []string{"r1", "r2", "r3"} {
			set = append(set, startReplica(t, name, shared, specs, []byte("v1")))
		}
		time.Sleep(30*time.Minute + time.Second)
		synctest.Wait()
		for _, name := range []string{"a", "b"} {
			slots := firesBySlot(set, name)
			want := map[string]int{"a": 30, "b": 15}[name]
			if len(slots) != want {
				t.Errorf("task %s fired %d slots, want %d", name, len(slots), want)
			}
			for slot, on := range slots {
				if len(on) != 1 {
					t.Errorf("task %s slot %s fired on %v, want exactly one replica", name, slot, on)
				}
			}
		}
		for _, r := range set {
			r.stop(t)
		}
	})
}

// A replica whose clock runs ahead of the store's has its claims refused
// as early; each is tried again when the store's clock reaches the slot,
// so every slot still fires exactly once, none is missed, and none fires
// before the store's clock says it is due.
func TestClockAheadOfStoreClaimsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := store.NewSharedMemory()
		const behind = 400 * time.Millisecond
		shared.SetClockBehind(behind)
		r := startReplica(t, "r1", shared, []task.Spec{jobSpec("a", 10*time.Second, noop)}, []byte("v1"))
		time.Sleep(2*time.Minute + time.Second)
		synctest.Wait()
		fires := r.rec.firesOf("a")
		if len(fires) != 12 {
			t.Errorf("fired %d slots, want 12", len(fires))
		}
		seen := map[time.Time]bool{}
		for _, f := range fires {
			if seen[f.slot] {
				t.Errorf("slot %s fired twice", f.slot)
			}
			seen[f.slot] = true
			if early := f.slot.Add(behind - store.EarlyTolerance); f.at.Before(early) {
				t.Errorf("slot %s fired at %s, before the store's clock reached it (%s)", f.slot, f.at, early)
			}
		}
		r.rec.mu.Lock()
		missed := r.rec.missed
		r.rec.mu.Unlock()
		if missed != 0 {
			t.Errorf("%d slots missed, want none", missed)
		}
		r.stop(t)
	})
}

// A replica that dies during a run: once its lease lapses, another replica
// takes the run over (epoch 2), resumes it and records it; the dead
// replica records nothing.
func TestReplicaDiesAndItsRunIsTakenOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := store.NewSharedMemory()
		hang := make(chan struct{})
		defer close(hang)
		var ran sync.Map // replica -> runs
		job := func(name string) task.JobFunc {
			return func(ctx context.Context) (int, error) {
				n, _ := ran.LoadOrStore(name, new(atomic.Int32))
				if n.(*atomic.Int32).Add(1) == 1 && name == "r1" {
					select { // r1's first run hangs until r1 dies
					case <-hang:
					case <-ctx.Done():
						return 0, ctx.Err()
					}
				}
				return 7, nil
			}
		}
		spec := func(name string) []task.Spec {
			s := jobSpec("daily", 24*time.Hour, job(name))
			s.RunOnStart = true
			return []task.Spec{s}
		}
		r1 := startReplica(t, "r1", shared, spec("r1"), []byte("v1"))
		synctest.Wait() // r1 fires at start and its run hangs
		r2 := startReplica(t, "r2", shared, spec("r2"), []byte("v1"))
		defer r2.stop(t)
		if fires := r1.rec.firesOf("daily"); len(fires) != 1 {
			t.Fatalf("r1 fired %d times, want its start fire", len(fires))
		}
		slot := r1.rec.firesOf("daily")[0].slot
		died := time.Now()
		r1.kill()
		time.Sleep(time.Minute)
		synctest.Wait()
		if recs := r1.rec.recordsOf("daily"); len(recs) != 0 {
			t.Errorf("the dead replica recorded %+v", recs)
		}
		recs := r2.rec.recordsOf("daily")
		var taken *task.Run
		for i := range recs {
			if recs[i].Slot.Equal(slot) {
				taken = &recs[i]
			}
		}
		if taken == nil || taken.Outcome != task.OutcomeOK || taken.Epoch != 2 || taken.Replica != "r2" || !taken.Resumed || taken.Items != 7 {
			t.Fatalf("r2's records %+v: want the slot %s taken over at epoch 2 and ok", recs, slot)
		}
		// Taken over once the lease (15s) lapsed, within a reaper pass (5s + jitter).
		if at := taken.Start.Sub(died); at < 15*time.Second || at > 22*time.Second {
			t.Errorf("taken over %s after the death, want after the 15s lease and within a reaper pass", at)
		}
		history, _ := shared.History("daily", 20)
		n := 0
		for _, h := range history {
			if h.Slot.Equal(slot) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the slot is recorded %d times in the shared history, want once: %+v", n, history)
		}
	})
}

// A replica cut off from the store during a paginated run stops sending
// pages once its lease may have lapsed; another replica takes the run
// over and finishes it from its checkpoint; when the first one comes back,
// its writes are refused (fenced) and it drops the run without recording
// it. Every page is requested by the run's holder only, and the resumed
// page carries the same Idempotency-Key.
func TestPartitionedOwnerIsFenced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := store.NewSharedMemory()
		// Every page takes 4s: the run outlives a lease.
		stub := mojodexstub.New(mojodexstub.Options{Secret: testSecret, Backlog: mojodexstub.DefaultBacklog(), Latency: 4 * time.Second})
		spec := defaultSpec(t, "first-home-chat-of-week") // offset pages of 50
		spec.RunOnStart = true
		var sent pageLog
		var set []*replica
		start := func(name string) *replica {
			r := &replica{name: name, rec: &recorder{}, store: &cutOff{SharedMemory: shared}}
			engine, _ := actor.NewEngine(actor.NewEngineConfig())
			r.engine = engine
			client := stubClient(t, stub, func(c *apiclient.Config) {
				c.HTTPClient = &http.Client{Transport: sent.by(name, c.HTTPClient.Transport)}
			})
			srv, err := supervisor.NewServer(engine, []task.Spec{spec}, client, supervisor.WithStore(r.store),
				supervisor.WithReplica(name), supervisor.WithObserver(r.rec), supervisor.WithTaskSet([]byte("v1")))
			if err != nil {
				t.Fatal(err)
			}
			r.srv = srv
			if err := srv.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			set = append(set, r)
			return r
		}
		r1 := start("r1")
		time.Sleep(5 * time.Second) // page 1 answered and checkpointed, page 2 in flight
		synctest.Wait()
		r2 := start("r2")
		r1.store.down.Store(true) // partition: r1 can no longer renew its lease
		cut := time.Now()
		time.Sleep(90 * time.Second)
		synctest.Wait()
		r1.store.down.Store(false) // r1 comes back
		time.Sleep(30 * time.Second)
		synctest.Wait()

		recs := r2.rec.recordsOf(spec.Name)
		var done *task.Run
		for i := range recs {
			if recs[i].Resumed {
				done = &recs[i]
			}
		}
		if done == nil || done.Outcome != task.OutcomeOK || done.Epoch != 2 || done.Pages != 3 || done.Items != 110 {
			t.Fatalf("r2's records %+v: want the run taken over at epoch 2, ok with 3 pages and 110 items", recs)
		}
		if recs := r1.rec.recordsOf(spec.Name); len(recs) != 0 {
			t.Errorf("the partitioned replica recorded %+v", recs)
		}
		byKey := map[string][]float64{}
		var late []string
		for _, p := range sent.pages() {
			byKey[p.key] = append(byKey[p.key], p.offset)
			if p.replica == "r1" && p.at.After(cut.Add(15*time.Second)) {
				late = append(late, fmt.Sprint(p.offset))
			}
		}
		for key, offsets := range byKey {
			if len(slices.Compact(slices.Clone(offsets))) != 1 {
				t.Errorf("key %s was sent with different offsets %v", key, offsets)
			}
		}
		if len(late) != 0 {
			t.Errorf("r1 sent pages at offsets %v after its lease may have lapsed", late)
		}
		for _, r := range set {
			r.stop(t)
		}
	})
}

// pageLog records the pages each replica sends.
type pageLog struct {
	mu   sync.Mutex
	list []sentPage
}

type sentPage struct {
	replica, key string
	offset       float64
	at           time.Time
}

// by returns a transport that records the pages replica sends through next.
func (l *pageLog) by(replica string, next http.RoundTripper) pageRecorder {
	return pageRecorder{log: l, replica: replica, next: next}
}

func (l *pageLog) pages() []sentPage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list)
}

type pageRecorder struct {
	log     *pageLog
	replica string
	next    http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (p pageRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body struct {
		Offset float64 `json:"offset"`
	}
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			_ = json.NewDecoder(rc).Decode(&body)
			rc.Close()
		}
	}
	p.log.mu.Lock()
	p.log.list = append(p.log.list, sentPage{replica: p.replica, key: req.Header.Get("Idempotency-Key"), offset: body.Offset, at: time.Now()})
	p.log.mu.Unlock()
	return p.next.RoundTrip(req)
}

// A pause made on one replica reaches the others; so does a resume.
func TestPauseReachesEveryReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := store.NewSharedMemory()
		specs := []task.Spec{jobSpec("a", time.Minute, noop)}
		var set []*replica
		for _, name := range []string{"r1", "r2", "r3"} {
			set = append(set, startReplica(t, name, shared, specs, []byte("v1")))
		}
		time.Sleep(90 * time.Second)
		if r := set[0].request(t, supervisor.PauseTask{Name: "a"}).(supervisor.TaskReply); r.Err != nil {
			t.Fatal(r.Err)
		}
		synctest.Wait()
		for _, r := range set {
			st := r.request(t, supervisor.GetTask{Name: "a"}).(supervisor.TaskReply).Task
			if st.State != task.StatePaused {
				t.Errorf("replica %s: task a is %s after a pause on r1", r.name, st.State)
			}
		}
		before := len(firesBySlot(set, "a"))
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if after := len(firesBySlot(set, "a")); after != before {
			t.Errorf("%d fires while paused", after-before)
		}
		if r := set[2].request(t, supervisor.ResumeTask{Name: "a"}).(supervisor.TaskReply); r.Err != nil {
			t.Fatal(r.Err)
		}
		time.Sleep(3*time.Minute + time.Second)
		synctest.Wait()
		if after := len(firesBySlot(set, "a")); after != before+3 {
			t.Errorf("%d fires in the 3 minutes after a resume on r3, want 3", after-before)
		}
		for _, r := range set {
			r.stop(t)
		}
	})
}

// A reload on one replica publishes the task set: the others follow within
// a change notification; a replica started later with the older file runs
// the current set instead; every replica answers the same.
func TestReloadReachesEveryReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := store.NewSharedMemory()
		v1 := []byte(`tasks: [{name: a, every: 1m, request: {service: background, path: /extract_todos}}]`)
		v2 := []byte(`tasks: [{name: a, every: 1m, request: {service: background, path: /extract_todos}}, {name: b, every: 2m, request: {service: background, path: /extract_todos}}]`)
		parse := func(b []byte) []task.Spec {
			specs, err := task.Parse(strings.NewReader(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return specs
		}
		client := stubClient(t, newStub(true), nil)
		start := func(name string, content []byte) *replica {
			r := &replica{name: name, rec: &recorder{}, store: &cutOff{SharedMemory: shared}}
			r.engine, _ = actor.NewEngine(actor.NewEngineConfig())
			var err error
			r.srv, err = supervisor.NewServer(r.engine, parse(content), client, supervisor.WithStore(r.store),
				supervisor.WithReplica(name), supervisor.WithObserver(r.rec), supervisor.WithTaskSet(content))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.srv.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			return r
		}
		r1, r2 := start("r1", v1), start("r2", v1)
		if _, err := r1.srv.Reload(context.Background(), parse(v2), v2); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		r3 := start("r3", v1) // an older file: runs the current set
		set := []*replica{r1, r2, r3}
		for _, r := range set {
			l := r.request(t, supervisor.ListTasks{}).(supervisor.TaskList)
			var names []string
			for _, st := range l.Tasks {
				names = append(names, st.Name)
			}
			if !slices.Equal(names, []string{"a", "b"}) {
				t.Errorf("replica %s runs %v after the reload on r1, want [a b]", r.name, names)
			}
		}
		time.Sleep(10*time.Minute + time.Second)
		synctest.Wait()
		if slots := firesBySlot(set, "b"); len(slots) != 5 {
			t.Errorf("task b fired %d slots in 10 minutes, want 5", len(slots))
		}
		lists := make([]string, len(set))
		for i, r := range set {
			l := r.request(t, supervisor.ListTasks{}).(supervisor.TaskList)
			for _, st := range l.Tasks {
				lists[i] += fmt.Sprintf("%s %s %v %v|", st.Name, st.State, st.Next, st.Last.Slot)
			}
		}
		if lists[0] != lists[1] || lists[1] != lists[2] {
			t.Errorf("replicas answer differently:\n%s\n%s\n%s", lists[0], lists[1], lists[2])
		}
		replicas := r2.request(t, supervisor.ListReplicas{}).(supervisor.ReplicaList)
		if len(replicas.Replicas) != 3 || replicas.Replicas[0].Version != 2 {
			t.Errorf("replicas %+v: want three on version 2", replicas)
		}
		for _, r := range set {
			r.stop(t)
		}
	})
}

// While no replica can reach the store, nothing fires (no fire without its
// claim), the missed slots are counted, and firing resumes by itself when
// the store is back.
func TestStoreOutageNoFireWithoutClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := store.NewSharedMemory()
		specs := []task.Spec{jobSpec("a", time.Minute, noop)}
		var set []*replica
		for _, name := range []string{"r1", "r2"} {
			set = append(set, startReplica(t, name, shared, specs, []byte("v1")))
		}
		time.Sleep(2*time.Minute + time.Second) // slots 1m, 2m fire
		for _, r := range set {
			r.store.down.Store(true)
		}
		time.Sleep(3 * time.Minute) // slots 3m, 4m, 5m: no claim possible
		synctest.Wait()
		if n := len(firesBySlot(set, "a")); n != 2 {
			t.Errorf("%d fires, want only the 2 before the outage", n)
		}
		missed := 0
		for _, r := range set {
			missed += r.rec.missed
			if !slices.ContainsFunc(r.rec.skipsSnapshot(), func(s string) bool { return strings.Contains(s, task.SkipStore.Describe("")) }) {
				t.Errorf("replica %s counted no fire skipped for the store", r.name)
			}
		}
		if missed != 6 { // 3 slots on each replica
			t.Errorf("%d missed slots counted, want 6", missed)
		}
		for _, r := range set {
			r.store.down.Store(false)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if n := len(firesBySlot(set, "a")); n != 4 {
			t.Errorf("%d fires, want firing to resume after the outage (6m and 7m)", n)
		}
		for _, r := range set {
			r.stop(t)
		}
	})
}

// A run that ends while its replica cannot reach the shared store, and
// whose lease lapses meanwhile, is recorded by that replica once the store
// answers again: its job runs once and the slot is recorded once, at epoch
// 1, instead of being taken over (by the replica's own reaper) and run a
// second time.
func TestRunEndedDuringOutageIsRecordedNotRunAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := store.NewSharedMemory()
		var runs atomic.Int32
		var cut atomic.Pointer[cutOff]
		ready := make(chan struct{})
		s := jobSpec("daily", 24*time.Hour, func(ctx context.Context) (int, error) {
			<-ready
			if runs.Add(1) == 1 {
				cut.Load().down.Store(true) // the store becomes unreachable while the first run runs
			}
			time.Sleep(time.Second)
			return 3, nil
		})
		s.RunOnStart = true
		r1 := startReplica(t, "r1", shared, []task.Spec{s}, []byte("v1"))
		cut.Store(r1.store)
		close(ready)
		time.Sleep(time.Minute) // four leases: the reaper's passes fail meanwhile
		synctest.Wait()
		r1.store.down.Store(false)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := runs.Load(); n != 1 {
			t.Errorf("the job ran %d times, want once", n)
		}
		history, err := shared.History("daily", 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(history) != 1 || history[0].Replica != "r1" || history[0].Outcome != task.OutcomeOK || history[0].Items != 3 {
			t.Errorf("history %+v, want one ok run of r1", history)
		}
		if st, err := shared.Load([]string{"daily"}); err != nil || len(st["daily"].InProgress) != 0 {
			t.Errorf("still in progress: %+v %v", st["daily"].InProgress, err)
		}
		if recs := r1.rec.recordsOf("daily"); len(recs) != 1 || recs[0].Epoch != 1 || recs[0].Resumed {
			t.Errorf("r1 reported the runs %+v, want one at epoch 1, not resumed", recs)
		}
		r1.stop(t)
	})
}
