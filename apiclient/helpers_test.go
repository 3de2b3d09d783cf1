package apiclient

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rtFunc is an in-memory http.RoundTripper.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		// A RoundTripper must close the request body.
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return f(r)
}

// fakeResponse builds a response with the given status, body and header
// pairs ("Retry-After", "2", ...).
func fakeResponse(r *http.Request, status int, body string, header ...string) *http.Response {
	h := make(http.Header)
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{
		StatusCode:    status,
		Status:        http.StatusText(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// script is a fake transport that answers attempt i with statuses[i]
// (the last entry repeats) and records when each attempt arrived.
type script struct {
	mu       sync.Mutex
	statuses []int
	headers  [][]string
	times    []time.Time
}

func (s *script) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := len(s.times)
	s.times = append(s.times, time.Now())
	if i >= len(s.statuses) {
		i = len(s.statuses) - 1
	}
	var h []string
	if i < len(s.headers) {
		h = s.headers[i]
	}
	return fakeResponse(r, s.statuses[i], `{"ok":true}`, h...), nil
}

func (s *script) attemptTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times...)
}

// recObserver records Observer events.
type recObserver struct {
	mu        sync.Mutex
	done      []int // status per attempt
	retried   []string
	rateWaits []time.Duration
}

func (o *recObserver) CallDone(_ Request, status int, _ error, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = append(o.done, status)
}

func (o *recObserver) Retried(_ Request, _ int, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retried = append(o.retried, reason)
}

func (o *recObserver) RateWaited(_ Request, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rateWaits = append(o.rateWaits, d)
}

func (o *recObserver) snapshot() (done []int, retried []string, waits []time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.done...), append([]string(nil), o.retried...), append([]time.Duration(nil), o.rateWaits...)
}

// fakeClient returns a Client using rt, unlimited rate and fast backoff
// unless mod says otherwise.
func fakeClient(t *testing.T, rt http.RoundTripper, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BackendURL:    "http://mojodex_backend:5000",
		BackgroundURL: "http://mojodex_background:5000",
		Secret:        "fake-secret",
		Rate:          -1,
		HTTPClient:    &http.Client{Transport: rt},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}
