package main

import (
	"log"
	"strings"

	"github.com/rs/zerolog"
)

// httpErrorLog returns the logger of net/http's own errors (a failed
// accept, a broken connection): warnings with component "http", rather than
// lines on log/slog's default logger, which the binary routes to hollywood's
// component at info level.
func httpErrorLog(l zerolog.Logger) *log.Logger {
	return log.New(httpLogWriter{l.With().Str("component", "http").Logger()}, "", 0)
}

type httpLogWriter struct{ l zerolog.Logger }

// Write implements io.Writer: one warning per line net/http writes.
func (w httpLogWriter) Write(p []byte) (int, error) {
	w.l.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
