package pgstore_test

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mojodex/mojodex-scheduler/store/pgstore"
)

// wire counts, on the connections of a store's pool, what the client sends
// the server, by reading the frontend messages of the protocol: a round
// trip is a Sync (the end of an extended-protocol pipeline, after which
// the client waits for ReadyForQuery) or a simple Query; a statement is
// an Execute or a simple Query. Parsing the bytes makes the count
// independent of how the driver batches its writes.
type wire struct {
	roundTrips, statements, bytes atomic.Int64
}

// option wraps the store's dialer with the counter.
func (w *wire) option() pgstore.Option {
	return pgstore.WithPoolConfig(func(c *pgxpool.Config) {
		dial := c.ConnConfig.DialFunc
		c.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: conn, w: w}, nil
		}
	})
}

func (w *wire) reset() {
	w.roundTrips.Store(0)
	w.statements.Store(0)
	w.bytes.Store(0)
}

// countingConn parses what is written to it. The first message (startup)
// has no type byte; every later one is a type byte and a length that
// counts itself.
type countingConn struct {
	net.Conn
	w *wire

	mu      sync.Mutex
	started bool   // past the startup message
	head    []byte // the header read so far (up to 5 bytes)
	skip    int    // bytes of the current message body left to skip
	typ     byte   // current message's type
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.parse(p)
	c.mu.Unlock()
	c.w.bytes.Add(int64(len(p)))
	return c.Conn.Write(p)
}

func (c *countingConn) parse(p []byte) {
	for len(p) > 0 {
		if c.skip > 0 {
			n := min(c.skip, len(p))
			c.skip -= n
			p = p[n:]
			continue
		}
		headLen := 5
		if !c.started {
			headLen = 4
		}
		n := min(headLen-len(c.head), len(p))
		c.head = append(c.head, p[:n]...)
		p = p[n:]
		if len(c.head) < headLen {
			return
		}
		if !c.started {
			c.started = true
			c.skip = int(binary.BigEndian.Uint32(c.head)) - 4
		} else {
			c.typ = c.head[0]
			c.skip = int(binary.BigEndian.Uint32(c.head[1:])) - 4
			switch c.typ {
			case 'S':
				c.w.roundTrips.Add(1)
			case 'Q':
				c.w.roundTrips.Add(1)
				c.w.statements.Add(1)
			case 'E':
				c.w.statements.Add(1)
			}
		}
		c.head = c.head[:0]
	}
}
