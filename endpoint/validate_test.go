package endpoint

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/anthdm/hollywood/actor"
	"github.com/anthdm/hollywood/remote"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"google.golang.org/protobuf/proto"
)

// badEnvelope is an envelope the endpoint must refuse, and a word its
// reason must contain.
type badEnvelope struct {
	name   string
	env    *remote.Envelope
	reason string
}

// badEnvelopes derives every refused case from a valid ListTasksRequest for
// the supervisor at addr.
func badEnvelopes(addr string) []badEnvelope {
	sender := actor.NewPID("127.0.0.1:1", "response/1")
	mut := func(f func(*remote.Envelope)) *remote.Envelope {
		env := validEnvelope(addr, sender)
		f(env)
		return env
	}
	target := func(id string) *remote.Envelope {
		return mut(func(e *remote.Envelope) { e.Targets[0].ID = id })
	}
	typeName := func(name string) *remote.Envelope {
		return mut(func(e *remote.Envelope) { e.TypeNames[0] = name })
	}
	senderPID := func(p *actor.PID) *remote.Envelope {
		return mut(func(e *remote.Envelope) { e.Senders[0] = p })
	}
	many := mut(func(e *remote.Envelope) {
		for range maxBatch {
			e.Messages = append(e.Messages, e.Messages[0])
		}
	})
	return []badEnvelope{
		{"type index out of range", mut(func(e *remote.Envelope) { e.Messages[0].TypeNameIndex = 1 }), "type name index 1"},
		{"type index negative", mut(func(e *remote.Envelope) { e.Messages[0].TypeNameIndex = -1 }), "type name index -1"},
		{"no type names", mut(func(e *remote.Envelope) { e.TypeNames = nil }), "type name index 0"},
		{"target index out of range", mut(func(e *remote.Envelope) { e.Messages[0].TargetIndex = 7 }), "target index 7"},
		{"target index negative", mut(func(e *remote.Envelope) { e.Messages[0].TargetIndex = -2147483648 }), "target index -2147483648"},
		{"no targets", mut(func(e *remote.Envelope) { e.Targets = nil }), "target index 0"},
		{"sender index out of range", mut(func(e *remote.Envelope) { e.Messages[0].SenderIndex = 1 }), "sender index 1"},
		{"sender index negative", mut(func(e *remote.Envelope) { e.Messages[0].SenderIndex = -1 }), "sender index -1"},
		{"sender index without senders", mut(func(e *remote.Envelope) { e.Senders = nil; e.Messages[0].SenderIndex = 3 }), "sender index 3"},
		{"unknown type", typeName("nope.Nope"), "not allowed"},
		{"unknown type in the allowed package", typeName(string(DefaultPackage) + ".Nope"), "not known"},
		{"hollywood's test message", typeName("remote.TestMessage"), "not allowed"},
		{"a PID as message", typeName("actor.PID"), "not allowed"},
		{"nested type", typeName(string(DefaultPackage) + ".Task.Nested"), "not allowed"},
		{"invalid type name", typeName("..\x00"), "not allowed"},
		{"target: event stream", target("eventstream"), "not allowed"},
		{"target: a stream writer", target("stream/127.0.0.1:4000"), "not allowed"},
		{"target: hollywood's router", target("router/1"), "not allowed"},
		{"target: a response", target("response/42"), "not allowed"},
		{"target: a child of the supervisor", target(supervisorID + "/api/client"), "not allowed"},
		{"target: empty ID", target(""), "ID of 0 bytes"},
		{"target: long ID", target(strings.Repeat("x", 300)), "ID of 300 bytes"},
		{"target: another address", mut(func(e *remote.Envelope) { e.Targets[0].Address = "127.0.0.1:1" }), "not this endpoint's"},
		{"target: nil", mut(func(e *remote.Envelope) { e.Targets[0] = nil }), "nil target"},
		{"sender: empty address", senderPID(actor.NewPID("", "response/1")), "address of 0 bytes"},
		{"sender: empty ID", senderPID(actor.NewPID("127.0.0.1:1", "")), "ID of 0 bytes"},
		{"sender: long address", senderPID(actor.NewPID(strings.Repeat("a", 300)+":1", "x")), "address of 302 bytes"},
		{"sender: not host:port", senderPID(actor.NewPID("localhost", "x")), "not host:port"},
		{"sender: port 0", senderPID(actor.NewPID("127.0.0.1:0", "x")), "bad port"},
		{"sender: no host", senderPID(actor.NewPID(":4000", "x")), "bad host"},
		{"sender: unspecified host", senderPID(actor.NewPID("0.0.0.0:4000", "x")), "unspecified"},
		{"sender: this endpoint", senderPID(actor.NewPID(addr, "eventstream")), "this endpoint's own"},
		{"sender: control characters", senderPID(actor.NewPID("127.0.0.1:1", "a\nb")), "control characters"},
		{"sender: nil", senderPID(nil), "nil sender"},
		{"garbage data", mut(func(e *remote.Envelope) { e.Messages[0].Data = []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f} }), "ListTasksRequest"},
		{"wrong wire type", mut(func(e *remote.Envelope) { e.Messages[0].Data = []byte{0x07} }), "ListTasksRequest"},
		{"nil message", mut(func(e *remote.Envelope) { e.Messages[0] = nil }), "nil message"},
		{"no messages", mut(func(e *remote.Envelope) { e.Messages = nil }), "without messages"},
		{"too many messages", many, "1025 messages"},
	}
}

func TestCheckRefusesBadEnvelopes(t *testing.T) {
	ep, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Stop()
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mustPort(t, ep.Address())}
	for _, tc := range badEnvelopes(ep.Address()) {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := ep.check(tc.env, local)
			var v *violation
			if !errors.As(err, &v) || msgs != nil {
				t.Fatalf("check = %v, %v; want a violation", msgs, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("reason %q lacks %q", err, tc.reason)
			}
		})
	}
	if _, err := ep.check(nil, local); err == nil {
		t.Error("nil envelope accepted")
	}
}

// The bad message refuses the whole envelope: the good one before it is not
// delivered either.
func TestCheckAllOrNothing(t *testing.T) {
	ep, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Stop()
	env := validEnvelope(ep.Address(), nil)
	env.Messages = append(env.Messages, &remote.Message{TypeNameIndex: 0, TargetIndex: 5})
	msgs, err := ep.check(env, nil)
	if err == nil || msgs != nil || !strings.Contains(err.Error(), "message 1: target index 5") {
		t.Errorf("check = %v, %v", msgs, err)
	}
}

func TestCheckAcceptsValidEnvelopes(t *testing.T) {
	ep, err := Listen("127.0.0.1:0", WithAliases("scheduler.internal:4000"))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Stop()
	port := mustPort(t, ep.Address())
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	sender := actor.NewPID("127.0.0.1:5555", "response/7")
	for _, addr := range []string{ep.Address(), "localhost:" + strconv.Itoa(port), "scheduler.internal:4000"} {
		env := validEnvelope(addr, sender)
		data, _ := proto.Marshal(&controlv1.GetTaskRequest{Name: "extract-todos"})
		env.TypeNames = append(env.TypeNames, "mojodex.scheduler.control.v1.GetTaskRequest")
		env.Messages = append(env.Messages, &remote.Message{Data: data, TypeNameIndex: 1})
		msgs, err := ep.check(env, local)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("target address %s: %v, %v", addr, msgs, err)
		}
		if _, ok := msgs[0].payload.(*controlv1.ListTasksRequest); !ok {
			t.Errorf("payload 0: %T", msgs[0].payload)
		}
		if g, ok := msgs[1].payload.(*controlv1.GetTaskRequest); !ok || g.GetName() != "extract-todos" {
			t.Errorf("payload 1: %v", msgs[1].payload)
		}
		for _, m := range msgs {
			if m.target.Address != ep.Address() || m.target.ID != supervisorID || !m.sender.Equals(sender) {
				t.Errorf("target %v sender %v", m.target, m.sender)
			}
		}
	}
	// Without senders: no sender, and the reply has nowhere to go.
	msgs, err := ep.check(validEnvelope(ep.Address(), nil), local)
	if err != nil || len(msgs) != 1 || msgs[0].sender != nil {
		t.Errorf("no sender: %v, %v", msgs, err)
	}
	// Another port on the same IP is not this endpoint.
	if _, err := ep.check(validEnvelope("127.0.0.1:"+strconv.Itoa(port+1), nil), local); err == nil {
		t.Error("a target on another port was accepted")
	}
}

// Configured filters replace the defaults, but never open hollywood's
// internals.
func TestCheckFilters(t *testing.T) {
	ep, err := Listen("127.0.0.1:0",
		WithTypes(TypeNames("mojodex.scheduler.control.v1.GetTaskRequest")),
		WithTargets(func(string) bool { return true }))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Stop()
	if _, err := ep.check(validEnvelope(ep.Address(), nil), nil); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("ListTasksRequest outside the type list: %v", err)
	}
	for _, id := range []string{"eventstream", "stream/x", "router/1"} {
		env := validEnvelope(ep.Address(), nil)
		env.TypeNames[0] = "mojodex.scheduler.control.v1.GetTaskRequest"
		env.Targets[0].ID = id
		if _, err := ep.check(env, nil); err == nil {
			t.Errorf("target %s accepted by an allow-all filter", id)
		}
	}
	for _, o := range []Option{WithMaxConns(0), WithQueueSize(-1), WithDialTimeout(0), WithTargets(nil), WithTypes(nil)} {
		if _, err := Listen("127.0.0.1:0", o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("bad option: %v", err)
		}
	}
}

func mustPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
