// Package mojodexstub is an in-process HTTP stub of the two Mojodex services
// the scheduler talks to: the backend and the background service.
//
// The stub enforces the backend contract strictly (routes, methods, the
// shared secret, JSON bodies with a datetime field, batch sizes clamped to
// 50) so that a scheduler that passes against it speaks the contract. It
// keeps a small synthetic backlog per endpoint so the paginated tasks do a
// few pages, records every request it receives, and offers fault injection
// (error statuses, raw bodies, delays, hang-ups, a whole service down) for
// tests.
//
// A Stub is safe for concurrent use. Use Start to serve both services on
// loopback ports, or mount Backend and Background on servers of your own
// (for example httptest.NewServer).
package mojodexstub

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Paths served by the two services.
const (
	pathExpiredPurchases   = "/check_expired_purchases"
	pathDisengagedUsers    = "/check_disengaged_free_trial_users"
	pathHomeChat           = "/home_chat"
	pathRelaunchLocked     = "/relaunch_locked_workflow_step_executions"
	pathEmailConfigured    = "/is_email_service_configured"
	pathPushConfigured     = "/is_push_notif_service_configured"
	pathExtractTodos       = "/extract_todos"
	pathRescheduleTodo     = "/reschedule_todo"
	pathEventsGeneration   = "/events_generation"
	serviceBackend         = "backend"
	serviceBackground      = "background"
	maxBatch               = 50
	maxBodyBytes           = 1 << 20
	shutdownGrace          = 2 * time.Second
	closePoll              = 2 * time.Millisecond
	readHeaderTimeout      = 5 * time.Second
	injectedErrorBody      = `{"error":"injected"}`
	defaultFaultStatusCode = http.StatusOK
)

// Options configure a Stub.
type Options struct {
	// Secret is the shared scheduler secret; the Authorization header of
	// every secret-protected call must equal it verbatim (no "Bearer").
	// With an empty Secret every secret-protected call is refused (403).
	Secret string
	// EmailConfigured is the answer of GET /is_email_service_configured.
	EmailConfigured bool
	// PushConfigured is the answer of GET /is_push_notif_service_configured.
	PushConfigured bool
	// Backlog gives, per path, how many items the list endpoints hold.
	// Paths missing from the map use the value of DefaultBacklog.
	Backlog map[string]int
	// Latency is added before every reply (0 by default). It is slept
	// before the request is processed, so a client that gives up during it
	// consumes nothing; it stops early when the client goes away.
	Latency time.Duration
}

// DefaultBacklog returns the demo backlog: enough items per paginated
// endpoint for two or three pages of 50, and a handful for the others.
// The keys are request paths; the caller owns the returned map.
func DefaultBacklog() map[string]int {
	return map[string]int{
		pathExpiredPurchases: 60,
		pathEventsGeneration: 120,
		pathDisengagedUsers:  75,
		pathHomeChat:         110,
		pathRelaunchLocked:   2,
		pathExtractTodos:     3,
		pathRescheduleTodo:   4,
	}
}

// Fault is one injected infrastructure failure, consumed by one request.
// Delay applies first; then Hangup wins; otherwise a non-zero Status or a
// non-empty Body replaces the normal reply. A fault with only Delay,
// RetryAfter and/or Location set delays and/or decorates the normal reply.
type Fault struct {
	// Status is the HTTP status to reply with (with Body, or
	// {"error":"injected"} when Body is empty). A code outside 100–999,
	// which net/http cannot send, is sent as 500.
	Status int
	// Body is a raw body sent instead of the normal reply (for example
	// "<html>", truncated JSON or a field of the wrong type). With Status 0
	// it is sent with status 200.
	Body string
	// RetryAfter, when not empty, is sent as the Retry-After header.
	RetryAfter string
	// Location, when not empty, is sent as the Location header: with a 3xx
	// Status, a redirect.
	Location string
	// Delay is slept before replying (and before the request is
	// processed); the sleep stops as soon as the client goes away (the
	// request context is cancelled), and then no reply is written and
	// nothing is consumed.
	Delay time.Duration
	// Hangup hijacks the connection and closes it without any response.
	Hangup bool
}

// Call is one request received by the stub.
type Call struct {
	// Service is "backend" or "background".
	Service string
	// Method is the HTTP method of the request.
	Method string
	// Path is the URL path of the request.
	Path string
	// Query is the parsed query string.
	Query url.Values
	// Body is the decoded JSON object body (nil if absent or invalid).
	// Numbers decode as float64.
	Body map[string]any
	// Auth is the Authorization header as received. Tests may assert it;
	// it must never be logged.
	Auth string
	// IdempotencyKey is the Idempotency-Key header.
	IdempotencyKey string
	// ContentType is the Content-Type header.
	ContentType string
	// Status is the status the stub answered (0 when it hung up, or when
	// the client went away before the reply).
	Status int
	// Items is the length of the list the stub returned (0 for errors).
	Items int
	// At is when the request was received.
	At time.Time
}

// Stub is an HTTP stub of the Mojodex backend and background services.
// Create it with New or Start. All methods are safe for concurrent use.
type Stub struct {
	opts    Options
	closing chan struct{}

	mu         sync.Mutex
	email      bool
	push       bool
	down       bool
	backlogs   map[string]*backlog
	alwaysFull map[string]bool
	faults     map[string][]Fault
	calls      []*Call

	inflight int // requests being handled, guarded by mu

	closeOnce  sync.Once
	closeErr   error
	servers    []*http.Server
	backendURL string
	bgURL      string
}

// backlog is the synthetic list held by one endpoint.
type backlog struct {
	// n is how many items the endpoint currently holds.
	n int
	// consumed counts the items drained so far; drained item ids continue
	// after it so that every page of a drain carries fresh ids.
	consumed int
}

// New returns a Stub configured by opts. It does not listen; mount
// Backend and Background on servers, or use Start instead.
func New(opts Options) *Stub {
	s := &Stub{opts: opts, closing: make(chan struct{})}
	if opts.Backlog != nil {
		s.opts.Backlog = make(map[string]int, len(opts.Backlog))
		for k, v := range opts.Backlog {
			s.opts.Backlog[k] = v
		}
	}
	s.resetLocked()
	return s
}

// resetLocked restores the state New establishes. The caller holds s.mu
// (or owns s exclusively).
func (s *Stub) resetLocked() {
	s.email = s.opts.EmailConfigured
	s.push = s.opts.PushConfigured
	s.down = false
	s.backlogs = make(map[string]*backlog)
	for path, n := range DefaultBacklog() {
		s.backlogs[path] = &backlog{n: max(n, 0)}
	}
	for path, n := range s.opts.Backlog {
		s.backlogs[path] = &backlog{n: max(n, 0)}
	}
	s.alwaysFull = make(map[string]bool)
	s.faults = make(map[string][]Fault)
	s.calls = nil
}

// Start creates a Stub and serves the backend and the background service
// on two loopback ports (127.0.0.1:0). Close stops both.
func Start(opts Options) (*Stub, error) {
	s := New(opts)
	quiet := log.New(io.Discard, "", 0)
	handlers := []http.Handler{s.Backend(), s.Background()}
	urls := make([]string, 0, len(handlers))
	for _, h := range handlers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ErrorLog:          quiet,
		}
		s.servers = append(s.servers, srv)
		urls = append(urls, "http://"+ln.Addr().String())
		go func() { _ = srv.Serve(ln) }()
	}
	s.mu.Lock()
	s.backendURL, s.bgURL = urls[0], urls[1]
	s.mu.Unlock()
	return s, nil
}

// BackendURL returns the base URL of the backend service, for example
// "http://127.0.0.1:41234", or "" if the stub was not started.
func (s *Stub) BackendURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backendURL
}

// BackgroundURL returns the base URL of the background service, or "" if
// the stub was not started.
func (s *Stub) BackgroundURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bgURL
}

// Close stops the servers started by Start. Pending delays and latency are
// cut short, in-flight requests get their reply (waiting at most two
// seconds), then every listener and connection is closed. Close is
// idempotent; on a Stub made by New it only cuts pending delays short and
// waits for in-flight requests.
func (s *Stub) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		for _, srv := range s.servers {
			srv.SetKeepAlivesEnabled(false)
		}
		deadline := time.Now().Add(shutdownGrace)
		for {
			s.mu.Lock()
			n := s.inflight
			s.mu.Unlock()
			if n == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(closePoll)
		}
		var errs []error
		for _, srv := range s.servers {
			if err := srv.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// SetEmailConfigured sets the answer of /is_email_service_configured.
func (s *Stub) SetEmailConfigured(on bool) {
	s.mu.Lock()
	s.email = on
	s.mu.Unlock()
}

// SetPushConfigured sets the answer of /is_push_notif_service_configured.
func (s *Stub) SetPushConfigured(on bool) {
	s.mu.Lock()
	s.push = on
	s.mu.Unlock()
}

// SetBacklog sets how many items the endpoint at path holds from now on
// (a negative n counts as 0). Drained item ids restart at 1.
func (s *Stub) SetBacklog(path string, n int) {
	s.mu.Lock()
	s.backlogs[path] = &backlog{n: max(n, 0)}
	s.mu.Unlock()
}

// SetAlwaysFull makes the list endpoint at path return a full page forever
// while on: a drain that never shrinks, an offset without end, and 50
// items from the non-paginated endpoints.
func (s *Stub) SetAlwaysFull(path string, on bool) {
	s.mu.Lock()
	if on {
		s.alwaysFull[path] = true
	} else {
		delete(s.alwaysFull, path)
	}
	s.mu.Unlock()
}

// Inject queues one-shot faults for path. The next requests to that path
// (any method, either service) consume them in order, one per request,
// before any validation.
func (s *Stub) Inject(path string, faults ...Fault) {
	s.mu.Lock()
	s.faults[path] = append(s.faults[path], faults...)
	s.mu.Unlock()
}

// SetDown makes both services hang up on every request while down is true:
// the connection is hijacked and closed without a response.
func (s *Stub) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Calls returns every request received so far, in order of arrival,
// including rejected ones.
func (s *Stub) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = copyCall(*c)
	}
	return out
}

// CallsTo returns the requests received at path (on either service), in
// order of arrival.
func (s *Stub) CallsTo(path string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Path == path {
			out = append(out, copyCall(*c))
		}
	}
	return out
}

// Reset forgets the recorded calls and queued faults and restores the
// state New established: backlogs, gates, always-full flags and SetDown.
func (s *Stub) Reset() {
	s.mu.Lock()
	s.resetLocked()
	s.mu.Unlock()
}

// copyCall returns c with its query values and top-level body copied so
// callers cannot alter the record.
func copyCall(c Call) Call {
	if c.Body != nil {
		b := make(map[string]any, len(c.Body))
		for k, v := range c.Body {
			b[k] = v
		}
		c.Body = b
	}
	if c.Query != nil {
		q := make(url.Values, len(c.Query))
		for k, v := range c.Query {
			q[k] = append([]string(nil), v...)
		}
		c.Query = q
	}
	return c
}
