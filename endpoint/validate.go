package endpoint

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/anthdm/hollywood/actor"
	"github.com/anthdm/hollywood/remote"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Bounds of an inbound envelope.
const (
	// maxBatch is the most messages one envelope may carry (hollywood's
	// stream writer sends at most 1024).
	maxBatch = 1024
	// maxPIDField bounds a PID's address and ID.
	maxPIDField = 256
)

// inbound is one validated message, ready for delivery.
type inbound struct {
	target  *actor.PID
	sender  *actor.PID // nil when the envelope names no sender
	payload proto.Message
}

// violation is why an envelope was refused.
type violation struct{ reason string }

func (v *violation) Error() string { return v.reason }

func violated(format string, args ...any) error {
	return &violation{reason: fmt.Sprintf(format, args...)}
}

// check validates every message of env before any is delivered: indexes in
// range, an allowed type that unmarshals, a target on this endpoint with an
// allowed ID, a sane sender. local is the connection's local address (a
// target naming it is this endpoint). It never panics; the first problem
// refuses the whole envelope.
func (e *Endpoint) check(env *remote.Envelope, local net.Addr) (msgs []inbound, err error) {
	defer func() {
		if v := recover(); v != nil {
			msgs, err = nil, violated("envelope could not be decoded: %v", v)
		}
	}()
	if env == nil || len(env.Messages) == 0 {
		return nil, violated("envelope without messages")
	}
	if len(env.Messages) > maxBatch {
		return nil, violated("envelope with %d messages (at most %d)", len(env.Messages), maxBatch)
	}
	msgs = make([]inbound, 0, len(env.Messages))
	for i, m := range env.Messages {
		in, err := e.checkMessage(env, m, local)
		if err != nil {
			return nil, violated("message %d: %v", i, err)
		}
		msgs = append(msgs, in)
	}
	return msgs, nil
}

func (e *Endpoint) checkMessage(env *remote.Envelope, m *remote.Message, local net.Addr) (inbound, error) {
	if m == nil {
		return inbound{}, violated("nil message")
	}
	ti, gi, si := m.TypeNameIndex, m.TargetIndex, m.SenderIndex
	if ti < 0 || int(ti) >= len(env.TypeNames) {
		return inbound{}, violated("type name index %d out of range [0, %d)", ti, len(env.TypeNames))
	}
	if gi < 0 || int(gi) >= len(env.Targets) {
		return inbound{}, violated("target index %d out of range [0, %d)", gi, len(env.Targets))
	}
	if si < 0 || (len(env.Senders) > 0 && int(si) >= len(env.Senders)) || (len(env.Senders) == 0 && si != 0) {
		return inbound{}, violated("sender index %d out of range [0, %d)", si, len(env.Senders))
	}

	name := protoreflect.FullName(env.TypeNames[ti])
	if !name.IsValid() || !e.s.allowType(name) {
		return inbound{}, violated("type %q is not allowed", clip(string(name)))
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		return inbound{}, violated("type %q is not known to this program", clip(string(name)))
	}

	target := env.Targets[gi]
	if target == nil {
		return inbound{}, violated("nil target")
	}
	if !e.ours(target.Address, local) {
		return inbound{}, violated("target address %q is not this endpoint's (%s)", clip(target.Address), e.addr)
	}
	if err := checkID(target.ID); err != nil {
		return inbound{}, violated("target: %v", err)
	}
	if internalID(target.ID) || !e.s.allowTarget(target.ID) {
		return inbound{}, violated("target %q is not allowed", clip(target.ID))
	}

	var sender *actor.PID
	if len(env.Senders) > 0 {
		s := env.Senders[si]
		if s == nil {
			return inbound{}, violated("nil sender")
		}
		if err := e.checkSender(s); err != nil {
			return inbound{}, violated("sender: %v", err)
		}
		sender = actor.NewPID(s.Address, s.ID)
	}

	payload := mt.New().Interface()
	if err := protoUnmarshal(m.Data, payload); err != nil {
		return inbound{}, violated("%s: %v", name, err)
	}
	return inbound{target: actor.NewPID(e.addr, target.ID), sender: sender, payload: payload}, nil
}

// checkSender accepts a PID that a reply can be dialled back to: a
// host:port with a host and a port number, not this endpoint's own address
// (a reply to it would be delivered to a local actor), and an ID.
func (e *Endpoint) checkSender(p *actor.PID) error {
	if err := checkID(p.ID); err != nil {
		return err
	}
	a := p.Address
	if a == "" || len(a) > maxPIDField {
		return fmt.Errorf("address of %d bytes (1 to %d)", len(a), maxPIDField)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("address %q is not host:port", clip(a))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("address %q: bad port", clip(a))
	}
	if host == "" || !printable(host) {
		return fmt.Errorf("address %q: bad host", clip(a))
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("address %q: unspecified host", clip(a))
	}
	if a == e.addr {
		return fmt.Errorf("address %q is this endpoint's own", clip(a))
	}
	return nil
}

// ours reports whether addr names this endpoint: its address, an alias, or
// the connection's local IP (or localhost, on loopback) with its port.
func (e *Endpoint) ours(addr string, local net.Addr) bool {
	if addr == e.addr {
		return true
	}
	for _, a := range e.s.aliases {
		if addr == a {
			return true
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != e.port {
		return false
	}
	tcp, ok := local.(*net.TCPAddr)
	if !ok {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.Equal(tcp.IP)
	}
	return strings.EqualFold(host, "localhost") && tcp.IP.IsLoopback()
}

// checkID accepts a non-empty, bounded, printable actor ID.
func checkID(id string) error {
	if id == "" || len(id) > maxPIDField {
		return fmt.Errorf("ID of %d bytes (1 to %d)", len(id), maxPIDField)
	}
	if !printable(id) {
		return fmt.Errorf("ID %q has control characters", clip(id))
	}
	return nil
}

// internalID reports hollywood's own processes, which a remote message must
// never reach whatever the target filter allows: the event stream, stream
// writers and routers (a stream writer's Send casts every message to its
// own type and panics otherwise).
func internalID(id string) bool {
	for _, p := range []string{"eventstream", "stream/", "router/"} {
		if id == strings.TrimSuffix(p, "/") || strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// clip shortens what a peer sent before it goes into a log line.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// protoUnmarshal decodes b into m; a failure of the decoder is an error.
func protoUnmarshal(b []byte, m proto.Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("decoder failed: %v", v)
		}
	}()
	return proto.Unmarshal(b, m)
}
