package remotetest

import (
	"net"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/internal/testnet"
	"google.golang.org/protobuf/proto"
)

func TestListTasksEnvelope(t *testing.T) {
	sender := actor.NewPID("127.0.0.1:2", "response/1")
	env := ListTasks("127.0.0.1:1", "kind/id", sender)
	if len(env.TypeNames) != 1 || env.TypeNames[0] != "mojodex.scheduler.control.v1.ListTasksRequest" {
		t.Errorf("type names %v", env.TypeNames)
	}
	if len(env.Targets) != 1 || env.Targets[0].Address != "127.0.0.1:1" || env.Targets[0].ID != "kind/id" {
		t.Errorf("targets %v", env.Targets)
	}
	if len(env.Senders) != 1 || !env.Senders[0].Equals(sender) {
		t.Errorf("senders %v", env.Senders)
	}
	if len(env.Messages) != 1 {
		t.Fatalf("%d messages, want 1", len(env.Messages))
	}
	m := env.Messages[0]
	if m.TypeNameIndex != 0 || m.TargetIndex != 0 || m.SenderIndex != 0 || proto.Unmarshal(m.Data, &controlv1.ListTasksRequest{}) != nil {
		t.Errorf("message %+v is not a ListTasksRequest for the first target from the first sender", m)
	}
	if env := ListTasks("127.0.0.1:1", "kind/id", nil); len(env.Senders) != 0 {
		t.Errorf("senders %v, want none", env.Senders)
	}
}

// ClosedWithin tells a peer that hangs up from one that keeps the
// connection open.
func TestClosedWithin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sent := make(chan struct{})
	go func() { // hangs up once the first bytes arrive and the envelope is sent
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = c.Read(make([]byte, 1))
				<-sent
				c.Close()
			}()
		}
	}()
	c := Dial(t, ln.Addr().String(), nil)
	err = c.Send(ListTasks("127.0.0.1:1", "kind/id", nil))
	close(sent)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ClosedWithin(2 * time.Second) {
		t.Error("a peer that hangs up: still open 2s later")
	}
	c = Dial(t, testnet.MuteListener(t), nil)
	if err := c.SendBytes([]byte{0xff}); err != nil {
		t.Fatal(err)
	}
	if c.ClosedWithin(200 * time.Millisecond) {
		t.Error("a peer that keeps the connection: seen closed")
	}
}
