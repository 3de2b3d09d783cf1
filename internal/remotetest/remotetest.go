// Package remotetest holds a raw client of hollywood's remote service for
// tests that attack a control endpoint: built from hollywood's generated
// DRPC client, its frames are well-formed DRPC whatever envelope (or
// bytes) they carry, so that what the endpoint sees is exactly what the
// test sent.
package remotetest

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/anthdm/hollywood/remote"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"google.golang.org/protobuf/proto"
	"storj.io/drpc"
	"storj.io/drpc/drpcconn"
)

// Client is one connection to a remote endpoint with its Receive stream
// open.
type Client struct {
	dc     *drpcconn.Conn
	stream remote.DRPCRemote_ReceiveClient
}

// Dial connects to the endpoint at addr (over TLS with cfg when cfg is not
// nil, within 2 s) and opens the stream; the connection is closed when the
// test ends.
func Dial(t testing.TB, addr string, cfg *tls.Config) *Client {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	var conn net.Conn
	var err error
	if cfg != nil {
		conn, err = tls.DialWithDialer(d, "tcp", addr, cfg)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	dc := drpcconn.New(conn)
	t.Cleanup(func() { _ = dc.Close() })
	stream, err := remote.NewDRPCRemoteClient(dc).Receive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &Client{dc: dc, stream: stream}
}

// Send sends env as one message of the stream.
func (c *Client) Send(env *remote.Envelope) error { return c.stream.Send(env) }

// SendBytes sends b as one message of the stream, in place of an encoded
// envelope.
func (c *Client) SendBytes(b []byte) error { return c.stream.MsgSend(rawBytes(b), rawEncoding{}) }

// ClosedWithin reports whether the endpoint closed the connection within
// d; either way the client's side is closed when it returns.
func (c *Client) ClosedWithin(d time.Duration) bool {
	defer c.Close()
	select {
	case <-c.dc.Closed():
		return true
	case <-time.After(d):
		return false
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.dc.Close() }

// rawBytes is a DRPC message that is its own encoding.
type rawBytes []byte

// rawEncoding sends rawBytes as they are.
type rawEncoding struct{}

func (rawEncoding) Marshal(m drpc.Message) ([]byte, error) { return m.(rawBytes), nil }
func (rawEncoding) Unmarshal([]byte, drpc.Message) error {
	return errors.New("remotetest: the raw encoding only sends")
}

// ListTasks returns a well-formed envelope of one ListTasksRequest for the
// actor target ("kind/id") of the engine at addr, from sender when sender
// is not nil.
func ListTasks(addr, target string, sender *actor.PID) *remote.Envelope {
	req := &controlv1.ListTasksRequest{}
	data, _ := proto.Marshal(req) // an empty message always encodes
	env := &remote.Envelope{
		TypeNames: []string{string(req.ProtoReflect().Descriptor().FullName())},
		Targets:   []*actor.PID{actor.NewPID(addr, target)},
		Messages:  []*remote.Message{{Data: data}},
	}
	if sender != nil {
		env.Senders = []*actor.PID{sender}
	}
	return env
}
