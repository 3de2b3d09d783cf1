package endpoint

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/anthdm/hollywood/remote"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/internal/remotetest"
	"github.com/mojodex/mojodex-scheduler/internal/syncbuf"
	"github.com/mojodex/mojodex-scheduler/internal/testpki"
	"github.com/rs/zerolog"
)

// logBuffer collects log lines, safe for concurrent writes.
type logBuffer struct{ syncbuf.Buffer }

// lines returns the JSON log lines whose "event" is kind ("" for all).
func (b *logBuffer) lines(kind string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			continue
		}
		if kind == "" || m["event"] == kind {
			out = append(out, m)
		}
	}
	return out
}

// total adds up the "count" of the lines of kind.
func (b *logBuffer) total(kind string) int {
	n := 0
	for _, l := range b.lines(kind) {
		if c, ok := l["count"].(float64); ok {
			n += int(c)
		}
	}
	return n
}

// node is an engine with an endpoint.
type node struct {
	ep     *Endpoint
	engine *actor.Engine
	logs   *logBuffer
}

// newNode starts an engine on a loopback endpoint with a free port.
func newNode(t *testing.T, opts ...Option) *node {
	t.Helper()
	logs := &logBuffer{}
	l := zerolog.New(logs).Level(zerolog.DebugLevel)
	ep, err := Listen("127.0.0.1:0", append([]Option{WithLogger(l)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := actor.NewEngine(actor.NewEngineConfig().WithRemote(ep))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{ep: ep, engine: e, logs: logs}
	t.Cleanup(func() { stopWithin(t, ep, 5*time.Second) })
	return n
}

// stopWithin stops ep and fails the test if its goroutines outlive d.
func stopWithin(t *testing.T, ep *Endpoint, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		ep.Stop().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("endpoint %s: goroutines still running %s after Stop", ep.Address(), d)
	}
}

// supervisorID is where the test's control-plane actor listens.
const supervisorID = DefaultTarget

// spawnAnswerer spawns, at the supervisor's ID, an actor that answers
// ListTasksRequest with one task named "probe" and GetTaskRequest with the
// task asked for.
func spawnAnswerer(e *actor.Engine) *actor.PID {
	kind, id, _ := strings.Cut(supervisorID, "/")
	return e.SpawnFunc(func(c *actor.Context) {
		switch m := c.Message().(type) {
		case *controlv1.ListTasksRequest:
			c.Respond(&controlv1.ListTasksResponse{Tasks: []*controlv1.Task{{Name: "probe", State: "scheduled"}}})
		case *controlv1.GetTaskRequest:
			c.Respond(&controlv1.GetTaskResponse{Task: &controlv1.Task{Name: m.GetName()}})
		}
	}, kind, actor.WithID(id))
}

// clientNode is a node that accepts replies (hollywood's Response IDs).
func clientNode(t *testing.T, opts ...Option) *node {
	t.Helper()
	return newNode(t, append([]Option{WithTargets(IDPrefixes("response/"))}, opts...)...)
}

// listTasks asks the supervisor at addr for its tasks and returns how long
// the answer took.
func listTasks(t *testing.T, client *actor.Engine, addr string, timeout time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	v, err := client.Request(actor.NewPID(addr, supervisorID), &controlv1.ListTasksRequest{}, timeout).Result()
	took := time.Since(start)
	if err != nil {
		return took, err
	}
	r, ok := v.(*controlv1.ListTasksResponse)
	if !ok || len(r.GetTasks()) != 1 || r.GetTasks()[0].GetName() != "probe" {
		return took, errors.New("unexpected reply")
	}
	return took, nil
}

// validEnvelope is a ListTasksRequest for the supervisor at addr, with
// sender when it is not nil.
func validEnvelope(addr string, sender *actor.PID) *remote.Envelope {
	return remotetest.ListTasks(addr, supervisorID, sender)
}

// waitUntil polls cond every few milliseconds until it holds or d passes.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// mutualTLS returns two configurations for mutual TLS signed by one CA,
// each certificate valid for 127.0.0.1 with both usages, and a third signed
// by another CA.
func mutualTLS(t *testing.T) (server, client, rogue *tls.Config) {
	t.Helper()
	ca, rogueCA := testpki.New(t, "test CA"), testpki.New(t, "test CA")
	pool := ca.Pool()
	cfg := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			RootCAs:      pool,
		}
	}
	return cfg(ca.Issue(t, "server")), cfg(ca.Issue(t, "client")), cfg(rogueCA.Issue(t, "rogue"))
}
