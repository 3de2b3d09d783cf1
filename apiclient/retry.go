package apiclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// unwrapURLError drops net/http's *url.Error layer: it repeats the full URL
// (query included), while our own wrapping already names service, method
// and path.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// classifyTransportError classifies an error from http.Client.Do (the
// attempt got no HTTP response). parent is the caller's context, attempt the
// per-attempt context.
func classifyTransportError(parent, attempt context.Context, err error, timeout time.Duration) (retry bool, reason string, out error) {
	err = unwrapURLError(err)
	if parent.Err() != nil {
		// The caller gave up: never retry.
		if !errors.Is(err, parent.Err()) {
			err = fmt.Errorf("%w (%w)", parent.Err(), err)
		}
		return false, "canceled", err
	}
	if errors.Is(attempt.Err(), context.DeadlineExceeded) {
		// The service may have processed the request: do not retry.
		if !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
		return false, "timeout", fmt.Errorf("attempt timed out after %s: %w", timeout, err)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return true, "conn_refused", err
	case errors.Is(err, syscall.ECONNRESET):
		return true, "conn_reset", err
	case errors.Is(err, syscall.EPIPE):
		return true, "broken_pipe", err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true, "eof", err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true, "dial", err
	}
	return false, "transport", err
}

// parseRetryAfter parses a Retry-After header value: delta-seconds or an
// HTTP-date (relative to now). ok is false when the header is absent or
// malformed.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return time.Duration(math.MaxInt64), true
			}
			return 0, false
		}
		const maxSeconds = uint64((1<<63 - 1) / int64(time.Second))
		if n > maxSeconds {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}

// backoff returns the wait before the retry that follows failed attempt
// number attempt (1-based): full jitter over min(BackoffMax, BackoffBase*2^(attempt-1)).
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.cfg.BackoffBase
	for i := 1; i < attempt && ceiling < c.cfg.BackoffMax; i++ {
		if ceiling > c.cfg.BackoffMax/2 {
			ceiling = c.cfg.BackoffMax
			break
		}
		ceiling *= 2
	}
	if ceiling > c.cfg.BackoffMax {
		ceiling = c.cfg.BackoffMax
	}
	d := c.jitter(ceiling)
	if d < 0 {
		d = 0
	}
	if d > ceiling {
		d = ceiling
	}
	return d
}

// fullJitter draws a duration uniformly from [0, ceiling].
func fullJitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	if ceiling == math.MaxInt64 {
		return time.Duration(rand.Int64N(int64(ceiling)))
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}
