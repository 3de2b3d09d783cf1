package endpoint

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// The kinds of rate-limited events; each kind has its own interval.
const (
	kindRefused    = "conn_refused"    // the connection cap was reached with no idle connection to drop
	kindEvicted    = "conn_evicted"    // a connection that had sent nothing was dropped for a new one
	kindSilent     = "conn_silent"     // a connection sent no valid envelope in time
	kindHandshake  = "tls_handshake"   // an inbound TLS handshake failed
	kindViolation  = "protocol"        // an envelope was malformed or not allowed
	kindAccept     = "accept"          // accepting failed (out of descriptors...)
	kindDelivery   = "delivery"        // delivering to a local actor failed
	kindUnreach    = "dest_unreach"    // a destination could not be reached; its messages were dropped
	kindQueueFull  = "dest_queue_full" // a destination's queue was full; the message was dropped
	kindEvictDest  = "dest_evicted"    // a destination's writer was closed to make room
	kindUnsendable = "send"            // a message could not be sent (not protobuf, no address)
)

// rateLog writes at most one line per kind per interval. The events of a
// kind between two lines are counted, and the next line (or flush) reports
// the count, so a flood of bad frames costs a few lines, not one per frame.
type rateLog struct {
	log   zerolog.Logger
	every time.Duration

	mu    sync.Mutex
	kinds map[string]*rateKind
}

type rateKind struct {
	last       time.Time // when the last line was written
	suppressed int       // events since that line
	level      zerolog.Level
	msg        string
}

func newRateLog(l zerolog.Logger, every time.Duration) *rateLog {
	return &rateLog{log: l, every: every, kinds: make(map[string]*rateKind)}
}

// event records one event of kind. It writes a line with msg, the fields
// added by fields (may be nil) and count (the events since the previous
// line of the kind, this one included) unless a line of the kind was
// written less than the interval ago.
func (r *rateLog) event(level zerolog.Level, kind, msg string, fields func(*zerolog.Event)) {
	now := time.Now()
	r.mu.Lock()
	k := r.kinds[kind]
	if k == nil {
		k = &rateKind{}
		r.kinds[kind] = k
	}
	k.level, k.msg = level, msg
	if !k.last.IsZero() && now.Sub(k.last) < r.every {
		k.suppressed++
		r.mu.Unlock()
		return
	}
	count := k.suppressed + 1
	k.suppressed, k.last = 0, now
	r.mu.Unlock()

	ev := r.log.WithLevel(level)
	if ev == nil {
		return
	}
	ev = ev.Str("event", kind).Int("count", count)
	if fields != nil {
		fields(ev)
	}
	ev.Msg(msg)
}

// flush writes the count of the events suppressed since the last line of
// each kind.
func (r *rateLog) flush() {
	r.mu.Lock()
	type pending struct {
		kind string
		k    rateKind
	}
	var out []pending
	for kind, k := range r.kinds {
		if k.suppressed > 0 {
			out = append(out, pending{kind, *k})
			k.suppressed = 0
		}
	}
	r.mu.Unlock()
	for _, p := range out {
		if ev := r.log.WithLevel(p.k.level); ev != nil {
			ev.Str("event", p.kind).Int("count", p.k.suppressed).Msg(p.k.msg + " (count since the last line)")
		}
	}
}
