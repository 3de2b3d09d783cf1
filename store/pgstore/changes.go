package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reconnection backoff of a Changes listener: doubled from the first to
// the last (or the poll interval, when shorter) after each failure.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// Changes implements store.Shared. Each call listens on a connection of
// its own (outside the pool) to the schema's channel, which commits of
// pauses and new task sets notify. The returned channel, of capacity one
// (values coalesce while nobody reads), receives a value after every
// notification, every time the listener (re)connects (notifications sent
// while it was not listening are lost), and at least every poll interval
// otherwise, connected or not. At every poll the connection is checked
// with a ping bounded by the operation timeout; a failed one, or any
// error, makes the listener reconnect, with a backoff from 100 ms to 5 s.
// The channel is closed when ctx ends or the store is closed.
func (s *Store) Changes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	s.lmu.Lock()
	if s.closed.Load() {
		s.lmu.Unlock()
		close(out)
		return out
	}
	s.listeners.Add(1)
	s.lmu.Unlock()
	go func() {
		defer s.listeners.Done()
		defer close(out)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(s.ctx, cancel)()
		l := &listener{s: s, out: out, next: time.Now().Add(s.poll)}
		l.run(ctx)
	}()
	return out
}

// listener is one Changes call's loop.
type listener struct {
	s    *Store
	out  chan struct{}
	next time.Time // when the next poll value is due
}

// signal sends a value unless one is pending already.
func (l *listener) signal() {
	select {
	case l.out <- struct{}{}:
	default:
	}
}

// polled sends the poll value if it is due, and schedules the next one.
func (l *listener) polled() {
	if now := time.Now(); !now.Before(l.next) {
		l.signal()
		l.next = now.Add(l.s.poll)
	}
}

func (l *listener) run(ctx context.Context) {
	s := l.s
	backoff, maxBackoff := listenBackoffMin, min(listenBackoffMax, max(s.poll, listenBackoffMin))
	failures := 0
	for ctx.Err() == nil {
		conn, err := l.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if failures&(failures-1) == 0 { // 1, 2, 4, 8...: loud, not flooding
				s.log.Warn().Err(err).Int("attempts", failures).Dur("retry_in", backoff).
					Msg("cannot listen for pause and task set changes; polling meanwhile")
			}
			l.sleep(ctx, backoff)
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		if failures > 0 {
			s.log.Info().Int("attempts", failures).Msg("listening for pause and task set changes again")
		}
		failures, backoff = 0, listenBackoffMin
		// Whatever was notified while nobody listened is lost: the caller
		// re-reads.
		l.signal()
		l.next = time.Now().Add(s.poll)
		err = l.wait(ctx, conn)
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(closeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.log.Warn().Err(&opError{op: "listen", err: err, secrets: s.secrets}).
			Msg("lost the connection listening for pause and task set changes; reconnecting")
	}
}

// connect opens the listening connection.
func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	s := l.s
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return nil, &opError{op: "listen: connect", err: err, secrets: s.secrets}
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return nil, &opError{op: "listen", err: err, secrets: s.secrets}
	}
	return conn, nil
}

// wait relays the notifications of conn until an error, sending the poll
// values and checking the connection at each.
func (l *listener) wait(ctx context.Context, conn *pgx.Conn) error {
	s := l.s
	for {
		wctx, cancel := context.WithDeadline(ctx, l.next)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			l.signal()
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			l.polled()
			// A stalled server or a silently dropped network gives no
			// error while waiting: ask.
			pctx, cancel := context.WithTimeout(ctx, s.opTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return err
		}
	}
}

// sleep waits d (or until ctx ends), sending the poll values due meanwhile.
func (l *listener) sleep(ctx context.Context, d time.Duration) {
	end := time.Now().Add(d)
	for {
		l.polled()
		now := time.Now()
		if !now.Before(end) {
			return
		}
		wake := end
		if l.next.Before(wake) {
			wake = l.next
		}
		t := time.NewTimer(wake.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
