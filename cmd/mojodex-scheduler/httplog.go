package main

import (
	"log"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// httpLogInterval is the shortest time between two lines of one kind of
// net/http error.
const httpLogInterval = 10 * time.Second

// httpErrorLog returns the logger of net/http's own errors (a failed
// accept, a broken connection): warnings with component "http", rather than
// lines on log/slog's default logger, which the binary routes to hollywood's
// component at info level. A kind of error (its first two words: "Accept
// error:", "TLS handshake") is written at most once per 10 s, with the
// number of lines suppressed since the last one, so that a process out of
// descriptors, which net/http retries every second, does not flood the log.
func httpErrorLog(l zerolog.Logger) *log.Logger {
	return log.New(newHTTPLogWriter(l, time.Now), "", 0)
}

// httpLogWriter turns net/http's lines into rate-limited warnings.
type httpLogWriter struct {
	l   zerolog.Logger
	now func() time.Time

	mu    sync.Mutex
	kinds map[string]*httpKind
}

type httpKind struct {
	last       time.Time
	suppressed int
}

func newHTTPLogWriter(l zerolog.Logger, now func() time.Time) *httpLogWriter {
	return &httpLogWriter{l: l.With().Str("component", "http").Logger(), now: now, kinds: map[string]*httpKind{}}
}

// Write implements io.Writer: net/http writes one line per call.
func (w *httpLogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	kind := httpErrorKind(line)
	now := w.now()
	w.mu.Lock()
	k := w.kinds[kind]
	if k == nil {
		if len(w.kinds) >= maxHTTPKinds {
			clear(w.kinds) // a bound, should the kinds ever be many
		}
		k = &httpKind{}
		w.kinds[kind] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < httpLogInterval {
		k.suppressed++
		w.mu.Unlock()
		return len(p), nil
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	w.mu.Unlock()
	w.l.Warn().Int("suppressed", suppressed).Msg(line)
	return len(p), nil
}

// maxHTTPKinds bounds the kinds an httpLogWriter remembers.
const maxHTTPKinds = 64

// httpErrorKind is the kind of a net/http error line: its first two words
// after "http: " ("Accept error:", "TLS handshake", "panic serving").
func httpErrorKind(line string) string {
	f := strings.Fields(strings.TrimPrefix(line, "http: "))
	return strings.Join(f[:min(2, len(f))], " ")
}
