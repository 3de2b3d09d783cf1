package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// net/http retries a failed accept every second at most; the log gets one
// warning per 10 s of it, with the count of the lines suppressed, and
// another kind of error is written at once.
func TestHTTPErrorLogIsRateLimited(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	w := newHTTPLogWriter(zerolog.New(&out), func() time.Time { return now })
	for range 60 { // a minute of accept errors, one a second
		if _, err := w.Write([]byte("http: Accept error: accept tcp 127.0.0.1:9464: accept4: too many open files; retrying in 1s\n")); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	_, _ = w.Write([]byte("http: TLS handshake error from 127.0.0.1:5555: EOF\n"))

	var accepts, suppressed, other int
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if ev["level"] != "warn" || ev["component"] != "http" {
			t.Errorf("line %v: want a warning of component http", ev)
		}
		switch msg := ev["message"].(string); {
		case strings.HasPrefix(msg, "http: Accept error:"):
			accepts++
			suppressed += int(ev["suppressed"].(float64))
		case strings.HasPrefix(msg, "http: TLS handshake error"):
			other++
		default:
			t.Errorf("unexpected line %q", msg)
		}
	}
	if accepts != 6 || suppressed != 45 || other != 1 {
		t.Errorf("%d accept lines (%d suppressed), %d other; want 6 lines for 60 errors (45 suppressed by the time of the last line), 1 other:\n%s",
			accepts, suppressed, other, out.String())
	}
}

// The logger that run gives net/http writes through the limit.
func TestHTTPErrorLogUsesTheLimit(t *testing.T) {
	var out bytes.Buffer
	l := httpErrorLog(zerolog.New(&out))
	l.Print("http: Accept error: accept tcp: too many open files; retrying in 5ms")
	l.Print("http: Accept error: accept tcp: too many open files; retrying in 10ms")
	if n := strings.Count(out.String(), "\n"); n != 1 || !strings.Contains(out.String(), `"component":"http"`) {
		t.Errorf("%d lines for two accept errors, want 1:\n%s", n, out.String())
	}
}

func TestHTTPErrorKind(t *testing.T) {
	for line, want := range map[string]string{
		"http: Accept error: accept tcp: too many open files; retrying in 5ms": "Accept error:",
		"http: TLS handshake error from 127.0.0.1:1234: EOF":                   "TLS handshake",
		"http: panic serving 127.0.0.1:1: boom":                                "panic serving",
		"http:":                                                                "http:",
		"":                                                                     "",
	} {
		if got := httpErrorKind(line); got != want {
			t.Errorf("httpErrorKind(%q) = %q, want %q", line, got, want)
		}
	}
}
