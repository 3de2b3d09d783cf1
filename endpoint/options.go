package endpoint

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Defaults of the options.
const (
	// DefaultMaxConns caps the inbound connections held at once.
	DefaultMaxConns = 64
	// DefaultMaxDestinations caps the addresses with an outbound writer.
	DefaultMaxDestinations = 64
	// DefaultQueueSize is the number of messages queued per destination.
	DefaultQueueSize = 64
	// DefaultHandshakeTimeout bounds an inbound TLS handshake.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultFirstFrameTimeout bounds the time from accepting a connection
	// (or from its TLS handshake) to its first valid envelope.
	DefaultFirstFrameTimeout = 5 * time.Second
	// DefaultIdleTimeout closes an inbound connection that sends nothing
	// for this long after its first envelope.
	DefaultIdleTimeout = time.Minute
	// DefaultDialTimeout bounds an outbound dial, TLS handshake included.
	DefaultDialTimeout = 2 * time.Second
	// DefaultWriteTimeout bounds every write on a connection.
	DefaultWriteTimeout = 2 * time.Second
	// DefaultWriterIdle closes an outbound writer unused for this long.
	DefaultWriterIdle = time.Minute
	// DefaultMaxMessageSize is the largest DRPC message read (hollywood's
	// and drpc's default).
	DefaultMaxMessageSize = 4 << 20
	// DefaultLogInterval is the shortest interval between two warnings of
	// the same kind; the events in between are counted.
	DefaultLogInterval = 10 * time.Second
	// DefaultTarget is the only actor ID that inbound messages may name
	// unless WithTargets says otherwise: the scheduler's supervisor.
	DefaultTarget = "mojodex-scheduler/supervisor"
	// DefaultPackage is the protobuf package whose messages are accepted
	// unless WithTypes says otherwise: the control plane.
	DefaultPackage protoreflect.FullName = "mojodex.scheduler.control.v1"
)

// ErrInvalidOption is wrapped by the error of Listen when an option's value
// is out of range.
var ErrInvalidOption = errors.New("invalid endpoint option")

// Option configures an Endpoint; Listen fails with ErrInvalidOption when an
// option's value is out of range.
type Option func(*settings) error

// settings are the options after defaults.
type settings struct {
	log            zerolog.Logger
	tls            *tls.Config
	maxConns       int
	maxDests       int
	queueSize      int
	handshake      time.Duration
	firstFrame     time.Duration
	idle           time.Duration
	dialTimeout    time.Duration
	writeTimeout   time.Duration
	writerIdle     time.Duration
	maxMessageSize int
	logInterval    time.Duration
	allowType      func(protoreflect.FullName) bool
	allowTarget    func(id string) bool
	aliases        []string
	// openFileLimit reads RLIMIT_NOFILE; replaced in tests.
	openFileLimit func() (uint64, error)
}

func defaults() settings {
	return settings{
		log:            zerolog.Nop(),
		maxConns:       DefaultMaxConns,
		maxDests:       DefaultMaxDestinations,
		queueSize:      DefaultQueueSize,
		handshake:      DefaultHandshakeTimeout,
		firstFrame:     DefaultFirstFrameTimeout,
		idle:           DefaultIdleTimeout,
		dialTimeout:    DefaultDialTimeout,
		writeTimeout:   DefaultWriteTimeout,
		writerIdle:     DefaultWriterIdle,
		maxMessageSize: DefaultMaxMessageSize,
		logInterval:    DefaultLogInterval,
		allowType:      InPackages(DefaultPackage),
		allowTarget:    IDs(DefaultTarget),
		openFileLimit:  openFileLimit,
	}
}

// WithLogger sets the logger; its events carry component=remote. The
// default logs nothing.
func WithLogger(l zerolog.Logger) Option {
	return func(s *settings) error {
		s.log = l
		return nil
	}
}

// WithTLS makes the endpoint listen with TLS and dial with the same
// configuration, as hollywood's remote does: for mutual TLS, cfg requires
// and verifies client certificates and its own certificate has both the
// server and the client extended key usages. nil means plain TCP.
func WithTLS(cfg *tls.Config) Option {
	return func(s *settings) error {
		s.tls = cfg
		return nil
	}
}

// WithMaxConns caps the inbound connections held at once (n >= 1). It may
// be lowered further by the process's descriptor limit.
func WithMaxConns(n int) Option {
	return positive("max conns", n, func(s *settings) { s.maxConns = n })
}

// WithMaxDestinations caps the addresses with an outbound writer (n >= 1);
// when a new address needs one, the least recently used is closed.
func WithMaxDestinations(n int) Option {
	return positive("max destinations", n, func(s *settings) { s.maxDests = n })
}

// WithQueueSize sets the messages queued per destination (n >= 1); a
// message sent while the queue is full is dropped.
func WithQueueSize(n int) Option {
	return positive("queue size", n, func(s *settings) { s.queueSize = n })
}

// WithMaxMessageSize sets the largest DRPC message read, in bytes (n >= 1).
func WithMaxMessageSize(n int) Option {
	return positive("max message size", n, func(s *settings) { s.maxMessageSize = n })
}

// WithHandshakeTimeout bounds an inbound TLS handshake.
func WithHandshakeTimeout(d time.Duration) Option {
	return duration("handshake timeout", d, func(s *settings) { s.handshake = d })
}

// WithFirstFrameTimeout bounds the time from accepting a connection (after
// its TLS handshake, if any) to its first valid envelope.
func WithFirstFrameTimeout(d time.Duration) Option {
	return duration("first frame timeout", d, func(s *settings) { s.firstFrame = d })
}

// WithIdleTimeout closes an inbound connection that sends nothing for d
// after its first valid envelope.
func WithIdleTimeout(d time.Duration) Option {
	return duration("idle timeout", d, func(s *settings) { s.idle = d })
}

// WithDialTimeout bounds an outbound dial, TLS handshake included.
func WithDialTimeout(d time.Duration) Option {
	return duration("dial timeout", d, func(s *settings) { s.dialTimeout = d })
}

// WithWriteTimeout bounds every write on a connection.
func WithWriteTimeout(d time.Duration) Option {
	return duration("write timeout", d, func(s *settings) { s.writeTimeout = d })
}

// WithWriterIdle closes an outbound writer (and its connection) that has
// had nothing to send for d.
func WithWriterIdle(d time.Duration) Option {
	return duration("writer idle", d, func(s *settings) { s.writerIdle = d })
}

// WithLogInterval sets the shortest interval between two warnings of the
// same kind (a refused connection, a protocol violation, an unreachable
// destination...); the events in between are counted in the next line.
func WithLogInterval(d time.Duration) Option {
	return duration("log interval", d, func(s *settings) { s.logInterval = d })
}

// WithTypes sets which protobuf message types inbound messages may carry
// (default: InPackages(DefaultPackage)). A type must also be linked into
// the program (registered in protoregistry.GlobalTypes).
func WithTypes(allow func(protoreflect.FullName) bool) Option {
	return checked(allow != nil, "nil type filter", func(s *settings) { s.allowType = allow })
}

// WithTargets sets which actor IDs inbound messages may be addressed to
// (default: IDs(DefaultTarget)). hollywood's own processes (its event
// stream, stream writers and routers) are refused whatever allow says.
// Allow only actors with an inbox: hollywood's Response (IDs
// "response/...") takes exactly one message, and a second one would block
// the connection's reader.
func WithTargets(allow func(id string) bool) Option {
	return checked(allow != nil, "nil target filter", func(s *settings) { s.allowTarget = allow })
}

// WithAliases adds host:port addresses that name this endpoint besides its
// own address, such as a DNS name peers dial it by. A target whose address
// is the connection's local IP and the endpoint's port is always accepted.
func WithAliases(addrs ...string) Option {
	return func(s *settings) error {
		s.aliases = append(s.aliases, addrs...)
		return nil
	}
}

// InPackages allows the messages declared at the top level of the given
// protobuf packages.
func InPackages(pkgs ...protoreflect.FullName) func(protoreflect.FullName) bool {
	return func(name protoreflect.FullName) bool { return slices.Contains(pkgs, name.Parent()) }
}

// TypeNames allows exactly the given protobuf message full names.
func TypeNames(names ...protoreflect.FullName) func(protoreflect.FullName) bool {
	return func(name protoreflect.FullName) bool { return slices.Contains(names, name) }
}

// IDs allows exactly the given actor IDs (kind/id, as in a PID).
func IDs(ids ...string) func(string) bool {
	return func(id string) bool { return slices.Contains(ids, id) }
}

// IDPrefixes allows the actor IDs that begin with one of the prefixes.
func IDPrefixes(prefixes ...string) func(string) bool {
	return func(id string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(id, p) })
	}
}

// positive is an option that sets n, which must be at least 1.
func positive(name string, n int, set func(*settings)) Option {
	return checked(n >= 1, fmt.Sprintf("%s %d must be at least 1", name, n), set)
}

// duration is an option that sets d, which must be positive.
func duration(name string, d time.Duration, set func(*settings)) Option {
	return checked(d > 0, fmt.Sprintf("%s %s must be positive", name, d), set)
}

// checked is an option that applies set when ok, and otherwise fails with
// ErrInvalidOption and problem.
func checked(ok bool, problem string, set func(*settings)) Option {
	return func(s *settings) error {
		if !ok {
			return fmt.Errorf("%w: %s", ErrInvalidOption, problem)
		}
		set(s)
		return nil
	}
}
