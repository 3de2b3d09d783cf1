// Package apiclient performs the scheduler's HTTP calls to the Mojodex
// backend and background services.
//
// A Client performs single logical calls (with internal retries, a shared
// rate limiter and per-attempt timeouts). NewActor wraps a Client in a
// hollywood actor that task actors talk to with Call and Result messages;
// the actor never blocks its inbox on network I/O and bounds the number of
// calls in flight.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// MaxBody is the largest response body the client reads (1 MiB). A larger
// body makes the call fail without retry.
const MaxBody = 1 << 20

// DatetimeLayout is the format of the "datetime" field sent with every call:
// Python's naive isoformat with microseconds (no zone, local time).
const DatetimeLayout = "2006-01-02T15:04:05.000000"

// Defaults applied by NewClient to zero (or invalid) Config fields.
const (
	// DefaultRate is the default Config.Rate (calls per second).
	DefaultRate = 10.0
	// DefaultBurst is the default Config.Burst.
	DefaultBurst = 5
	// DefaultMaxInFlight is the default Config.MaxInFlight.
	DefaultMaxInFlight = 4
	// DefaultQueueSize is the default Config.QueueSize.
	DefaultQueueSize = 1000
	// DefaultTimeout is the default Config.Timeout (per attempt).
	DefaultTimeout = 30 * time.Second
	// DefaultMaxAttempts is the default Config.MaxAttempts.
	DefaultMaxAttempts = 3
	// DefaultBackoffBase is the default Config.BackoffBase.
	DefaultBackoffBase = 500 * time.Millisecond
	// DefaultBackoffMax is the default Config.BackoffMax.
	DefaultBackoffMax = 10 * time.Second
)

// Request is one logical call (retries are internal).
type Request struct {
	// Task is the name of the task making the call, used in logs.
	Task string
	// Service selects the base URL (task.ServiceBackend or task.ServiceBackground).
	Service task.Service
	// Method is the HTTP method (GET, POST, PUT ...); it is sent upper-case.
	Method string
	// Path is appended to the service's base URL, e.g. "/check_expired_purchases".
	Path string
	// Query is added to the URL query string.
	Query map[string]string
	// Body is sent as a JSON object. The client adds a "datetime" field to a
	// copy of it (the caller's map is never mutated); a nil Body for POST/PUT
	// still sends {"datetime": ...}. GET and HEAD requests carry no body: the
	// datetime goes into the query string instead.
	Body map[string]any
	// Auth sends Config.Secret verbatim as the Authorization header.
	Auth bool
	// Timeout bounds each attempt; 0 means Config.Timeout.
	Timeout time.Duration
	// IdempotencyKey, if set, is sent as the Idempotency-Key header on every
	// attempt.
	IdempotencyKey string
}

// Response is the outcome of a call that got an HTTP response.
type Response struct {
	// Status is the HTTP status of the last attempt (0 if it got no response).
	Status int
	// Body is the body of the last response (at most MaxBody bytes).
	Body []byte
	// Attempts is the number of HTTP attempts that were made.
	Attempts int
	// RateWait is the total time spent waiting for the rate limiter.
	RateWait time.Duration
	// Duration is the time from the start of the call (the first attempt,
	// including its rate-limiter wait) to the final answer.
	Duration time.Duration
}

// StatusError is returned (wrapped) when the final answer is not 2xx.
type StatusError struct {
	// Status is the HTTP status code.
	Status int
	// Body holds at most the first 200 bytes of the response body.
	Body string
	// Method and Path identify the call (Path as given in Request.Path,
	// without the base URL or query).
	Method, Path string
}

// Error implements error.
func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("%s %s: unexpected status %d", e.Method, e.Path, e.Status)
	}
	return fmt.Sprintf("%s %s: unexpected status %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// Observer receives call events for metrics. Its methods are called
// synchronously from the calling goroutine and must be fast.
type Observer interface {
	// CallDone is called once per attempt; status is 0 when the attempt got
	// no HTTP response.
	CallDone(req Request, status int, err error, d time.Duration)
	// Retried is called when attempt (1-based, the attempt that just failed)
	// will be retried; reason is a short, low-cardinality label such as
	// "status_503" or "conn_refused".
	Retried(req Request, attempt int, reason string)
	// RateWaited is called when an attempt had to wait d for the rate limiter.
	RateWaited(req Request, d time.Duration)
}

// Config configures a Client. Zero values get defaults (documented on each
// field).
type Config struct {
	// BackendURL and BackgroundURL are the base URIs of the services, e.g.
	// "http://mojodex_backend:5000". They may contain a path prefix. Both
	// must be absolute http or https URLs with a host.
	BackendURL, BackgroundURL string
	// Secret is sent verbatim as the Authorization header of calls with
	// Request.Auth. It is never logged and never put in error strings.
	Secret string
	// Rate is the number of calls (attempts) per second across all tasks;
	// default 10; negative means unlimited.
	Rate float64
	// Burst is the rate limiter's burst; default 5.
	Burst int
	// MaxInFlight is the number of calls the actor runs at once to each
	// service (the backend and the background service each have this
	// budget, so one hung service never starves the other); default 4.
	MaxInFlight int
	// QueueSize bounds the runs of each service waiting in the actor for a
	// slot or a token; a run beyond it is skipped at once; default 1000.
	QueueSize int
	// Timeout bounds each attempt; default 30s.
	Timeout time.Duration
	// MaxAttempts is the number of attempts per call; default 3 (1 = no retry).
	MaxAttempts int
	// BackoffBase is the first retry's backoff cap; it doubles per attempt and
	// the actual wait is drawn uniformly from [0, cap] (full jitter);
	// default 500ms.
	BackoffBase time.Duration
	// BackoffMax caps the backoff; default 10s. It also caps a Retry-After
	// wait: a larger Retry-After ends the call with the 429/503 error.
	BackoffMax time.Duration
	// HTTPClient performs the requests; default: a client with sane
	// transport limits (per-attempt timeouts come from contexts).
	HTTPClient *http.Client
	// Now is the clock for the datetime field; default time.Now.
	Now func() time.Time
	// Logger receives the client's logs; default zerolog.Nop().
	Logger zerolog.Logger
	// Observer receives call events (nil means none).
	Observer Observer
}

// String describes the configuration with the secret redacted, so that a
// Config printed with %v or %+v never leaks it.
func (c Config) String() string {
	secret := ""
	if c.Secret != "" {
		secret = redacted
	}
	return fmt.Sprintf("{BackendURL:%s BackgroundURL:%s Secret:%s Rate:%g Burst:%d MaxInFlight:%d QueueSize:%d Timeout:%s MaxAttempts:%d BackoffBase:%s BackoffMax:%s}",
		c.BackendURL, c.BackgroundURL, secret, c.Rate, c.Burst, c.MaxInFlight, c.QueueSize, c.Timeout, c.MaxAttempts, c.BackoffBase, c.BackoffMax)
}

// GoString is like String, for %#v.
func (c Config) GoString() string { return "apiclient.Config" + c.String() }

// Client performs calls to the Mojodex services. It is safe for concurrent
// use; its rate limiter is shared by all calls.
type Client struct {
	cfg        Config
	backend    *url.URL
	background *url.URL
	limiter    *rate.Limiter
	log        zerolog.Logger
	// jitter returns a duration drawn from [0, ceiling]; tests replace it.
	jitter func(ceiling time.Duration) time.Duration
	// secrets are the forms of the secret that redact removes.
	secrets []string
}

// NewClient validates cfg, applies defaults and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	backend, err := parseBaseURL("BackendURL", cfg.BackendURL)
	if err != nil {
		return nil, err
	}
	background, err := parseBaseURL("BackgroundURL", cfg.BackgroundURL)
	if err != nil {
		return nil, err
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultHTTPClient()
	} else {
		hc := *cfg.HTTPClient // the caller's client is left as it is
		cfg.HTTPClient = &hc
	}
	// The scheduler calls fixed routes of its own services: a redirect is
	// an answer (a failed call naming where it pointed), never followed, so
	// the secret never travels to another host or port and a POST never
	// turns into a GET.
	cfg.HTTPClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if reflect.ValueOf(cfg.Logger).IsZero() {
		cfg.Logger = zerolog.Nop()
	}
	limit := rate.Limit(cfg.Rate)
	if cfg.Rate < 0 {
		limit = rate.Inf
	}
	return &Client{
		cfg:        cfg,
		backend:    backend,
		background: background,
		limiter:    rate.NewLimiter(limit, cfg.Burst),
		log:        cfg.Logger.With().Str("component", "apiclient").Logger(),
		jitter:     fullJitter,
		secrets:    secretForms(cfg.Secret),
	}, nil
}

// Config returns the effective configuration after defaults. It includes
// the Secret: callers must not log it.
func (c *Client) Config() Config { return c.cfg }

func parseBaseURL(field, raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("apiclient: config %s is empty", field)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("apiclient: config %s is not a valid URL: %w", field, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("apiclient: config %s must be an absolute http or https URL (got scheme %q)", field, u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("apiclient: config %s has no host", field)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("apiclient: config %s must not contain a fragment", field)
	}
	return u, nil
}

func defaultHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           32,
		MaxIdleConnsPerHost:    8,
		MaxConnsPerHost:        32,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{Transport: tr}
}

// Do performs the call: it waits for the rate limiter before each attempt,
// builds the URL and body, retries transient failures and returns the
// Response. err is nil only for a 2xx answer; a non-2xx final answer gives a
// wrapped *StatusError together with the Response. Do is for single calls
// (the gate probes, embedding programs); task runs go through the
// API-client actor (NewActor), which drives their pages with the same
// attempts, retry policy and rate limiter.
func (c *Client) Do(ctx context.Context, req Request) (Response, error) {
	start := time.Now()
	var resp Response
	wrap := func(attempt int, err error) error { return c.attemptError(req, attempt, err) }
	finish := func() { resp.Duration = time.Since(start) }
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = c.cfg.Timeout
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		waited, err := c.waitRate(ctx)
		resp.RateWait += waited
		if waited > 0 && c.cfg.Observer != nil {
			c.cfg.Observer.RateWaited(req, waited)
		}
		if err != nil {
			finish()
			return resp, wrap(attempt, joinLast("waiting for rate limiter", err, lastErr))
		}
		out := c.try(ctx, req, timeout)
		if out.sent {
			resp.Attempts = attempt
		}
		resp.Status = out.status
		resp.Body = out.body
		if out.err == nil {
			finish()
			return resp, nil
		}
		lastErr = out.err
		wait, retry := c.retryWait(req, out, attempt)
		if !retry {
			finish()
			return resp, wrap(attempt, out.err)
		}
		c.noteRetry(req, out, attempt, wait)
		if err := sleepCtx(ctx, wait); err != nil {
			finish()
			return resp, wrap(attempt, joinLast("waiting to retry", err, lastErr))
		}
	}
}

// attemptError is err of req's attempt number attempt, naming the call.
func (c *Client) attemptError(req Request, attempt int, err error) error {
	return fmt.Errorf("%s %s %s: attempt %d/%d: %w", req.Service, req.Method, req.Path, attempt, c.cfg.MaxAttempts, err)
}

// try performs one attempt of req: it builds the HTTP request (with its own
// timeout), performs it, reports it to the observer and classifies the
// outcome. It does not wait for the rate limiter.
func (c *Client) try(ctx context.Context, req Request, timeout time.Duration) attemptResult {
	base, err := c.baseURL(req)
	if err != nil {
		return attemptResult{err: err, retryAfter: -1}
	}
	httpReq, cancel, err := c.build(ctx, base, req, timeout)
	if err != nil {
		return attemptResult{err: fmt.Errorf("build request: %w", err), retryAfter: -1}
	}
	out := c.attempt(ctx, httpReq, req.Path, timeout)
	out.sent = true
	cancel()
	if c.cfg.Observer != nil {
		c.cfg.Observer.CallDone(req, out.status, out.err, out.d)
	}
	ev := c.log.Debug()
	if out.err != nil {
		ev = ev.Str("error", c.redact(out.err.Error()))
	}
	ev.Str("task", req.Task).Str("service", string(req.Service)).Str("method", req.Method).Str("path", req.Path).
		Int("status", out.status).Float64("duration_s", out.d.Seconds()).Msg("HTTP attempt")
	return out
}

// retryWait decides whether the failed attempt number attempt (1-based)
// is retried, and after how long: transient failures are, up to
// MaxAttempts, after a full-jitter backoff or the answer's Retry-After if
// longer; a Retry-After beyond BackoffMax ends the call.
func (c *Client) retryWait(req Request, out attemptResult, attempt int) (time.Duration, bool) {
	if !out.retry || attempt >= c.cfg.MaxAttempts {
		return 0, false
	}
	wait := c.backoff(attempt)
	if out.retryAfter >= 0 {
		if out.retryAfter > c.cfg.BackoffMax {
			c.log.Warn().Str("task", req.Task).Str("service", string(req.Service)).
				Str("method", req.Method).Str("path", req.Path).
				Int("attempt", attempt).Int("status", out.status).
				Float64("retry_after_s", out.retryAfter.Seconds()).Float64("backoff_max_s", c.cfg.BackoffMax.Seconds()).
				Msg("Retry-After exceeds the longest backoff; giving up")
			return 0, false
		}
		wait = max(wait, out.retryAfter)
	}
	return wait, true
}

// noteRetry logs and counts a retry decided by retryWait.
func (c *Client) noteRetry(req Request, out attemptResult, attempt int, wait time.Duration) {
	if c.cfg.Observer != nil {
		c.cfg.Observer.Retried(req, attempt, out.reason)
	}
	ev := c.log.Warn().Str("task", req.Task).Str("service", string(req.Service)).
		Str("method", req.Method).Str("path", req.Path).
		Int("attempt", attempt).Int("max_attempts", c.cfg.MaxAttempts)
	if out.status != 0 {
		ev = ev.Int("status", out.status)
	} else {
		ev = ev.Str("error", c.redact(out.err.Error()))
	}
	ev.Str("reason", out.reason).Float64("wait_s", wait.Seconds()).Msg("retrying call")
}

// reserveToken takes a rate-limiter token if one is available at now and
// returns 0; otherwise it takes nothing and returns how long until one is.
func (c *Client) reserveToken(now time.Time) time.Duration {
	r := c.limiter.ReserveN(now, 1)
	if !r.OK() {
		return time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// joinLast wraps err (a context error) with what was being done and, when
// there is one, the last attempt's error, so that both stay matchable with
// errors.Is / errors.As.
func joinLast(doing string, err, last error) error {
	if last == nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	return fmt.Errorf("%s: %w (last error: %w)", doing, err, last)
}

func (c *Client) baseURL(req Request) (*url.URL, error) {
	switch req.Service {
	case task.ServiceBackend:
		return c.backend, nil
	case task.ServiceBackground:
		return c.background, nil
	default:
		return nil, fmt.Errorf("unknown service %q", string(req.Service))
	}
}

// hasBody reports whether requests with this method carry the JSON body;
// the others get the datetime in the query string.
func hasBody(method string) bool {
	switch strings.ToUpper(method) {
	case http.MethodGet, http.MethodHead:
		return false
	}
	return true
}

// build creates the HTTP request of one attempt, with its own timeout
// context; the returned cancel func must be called after the attempt.
func (c *Client) build(ctx context.Context, base *url.URL, req Request, timeout time.Duration) (*http.Request, context.CancelFunc, error) {
	if req.Method == "" {
		return nil, nil, errors.New("empty method")
	}
	if strings.ContainsAny(req.Path, "?#") {
		return nil, nil, errors.New("path must not contain '?' or '#' (use Query)")
	}
	if req.Auth && c.cfg.Secret == "" {
		return nil, nil, errors.New("request needs auth but Config.Secret is empty")
	}
	now := c.cfg.Now().Format(DatetimeLayout)

	u := *base
	u.Path = strings.TrimRight(base.Path, "/") + "/" + strings.TrimLeft(req.Path, "/")
	u.RawPath = ""
	q := base.Query()
	for k, v := range req.Query {
		q.Set(k, v)
	}
	withBody := hasBody(req.Method)
	if _, ok := req.Query["datetime"]; ok || !withBody {
		q.Set("datetime", now)
	}
	u.RawQuery = q.Encode()

	var body io.Reader
	if withBody {
		m := make(map[string]any, len(req.Body)+1)
		for k, v := range req.Body {
			m[k] = v
		}
		m["datetime"] = now
		b, err := json.Marshal(m)
		if err != nil {
			return nil, nil, fmt.Errorf("encode body: %w", err)
		}
		body = bytes.NewReader(b)
	}

	actx, cancel := context.WithTimeout(ctx, timeout)
	httpReq, err := http.NewRequestWithContext(actx, strings.ToUpper(req.Method), u.String(), body)
	if err != nil {
		cancel()
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, err
	}
	httpReq.Header.Set("Accept", "application/json")
	httpReq.Header.Set("User-Agent", "mojodex-scheduler")
	if withBody {
		httpReq.Header.Set("Content-Type", "application/json")
	}
	if req.Auth {
		httpReq.Header.Set("Authorization", c.cfg.Secret)
	}
	if req.IdempotencyKey != "" {
		httpReq.Header.Set("Idempotency-Key", req.IdempotencyKey)
	}
	return httpReq, cancel, nil
}

// attemptResult is the outcome of one HTTP attempt.
type attemptResult struct {
	status     int
	body       []byte
	err        error
	retry      bool
	reason     string
	retryAfter time.Duration // -1 when absent
	d          time.Duration
	sent       bool // the request was built and handed to the transport
}

// attempt performs one HTTP round trip and classifies its outcome.
func (c *Client) attempt(ctx context.Context, httpReq *http.Request, path string, timeout time.Duration) attemptResult {
	start := time.Now()
	out := attemptResult{retryAfter: -1}
	defer func() { out.d = time.Since(start) }()

	hresp, err := c.cfg.HTTPClient.Do(httpReq)
	if err != nil {
		if hresp != nil && hresp.Body != nil {
			_ = hresp.Body.Close()
		}
		out.retry, out.reason, out.err = classifyTransportError(ctx, httpReq.Context(), err, timeout)
		out.d = time.Since(start)
		return out
	}
	defer hresp.Body.Close()
	out.status = hresp.StatusCode

	body, err := io.ReadAll(io.LimitReader(hresp.Body, MaxBody+1))
	if len(body) > MaxBody {
		out.body = body[:MaxBody]
		out.err = fmt.Errorf("status %d: response body exceeds %d bytes", hresp.StatusCode, MaxBody)
		out.d = time.Since(start)
		return out
	}
	out.body = body
	if err != nil {
		// A response was received; the service may have acted on the
		// request, so a broken body is not retried.
		err = unwrapURLError(err)
		if ctx.Err() == nil && errors.Is(httpReq.Context().Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("attempt timed out after %s reading the body: %w", timeout, err)
		}
		out.err = fmt.Errorf("status %d: reading body: %w", hresp.StatusCode, err)
		out.d = time.Since(start)
		return out
	}
	if hresp.StatusCode >= 200 && hresp.StatusCode < 300 {
		out.d = time.Since(start)
		return out
	}
	if hresp.StatusCode >= 300 && hresp.StatusCode < 400 {
		where := hresp.Header.Get("Location")
		if where == "" {
			where = "(no Location header)"
		}
		out.err = c.statusError(hresp.StatusCode, httpReq.Method, path, "redirect to "+where+" refused: the scheduler never follows redirects")
		out.d = time.Since(start)
		return out
	}
	out.err = c.statusError(hresp.StatusCode, httpReq.Method, path, string(body))
	switch hresp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		out.retry = true
		out.reason = fmt.Sprintf("status_%d", hresp.StatusCode)
		if d, ok := parseRetryAfter(hresp.Header.Get("Retry-After"), time.Now()); ok {
			out.retryAfter = d
		}
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		out.retry = true
		out.reason = fmt.Sprintf("status_%d", hresp.StatusCode)
	}
	out.d = time.Since(start)
	return out
}

// waitRate waits for the rate limiter; it returns the time waited.
func (c *Client) waitRate(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r := c.limiter.Reserve()
	if !r.OK() {
		return 0, errors.New("rate limiter cannot grant a call")
	}
	d := r.Delay()
	if d <= 0 {
		return 0, nil
	}
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return time.Since(start), nil
	case <-ctx.Done():
		r.Cancel()
		return time.Since(start), ctx.Err()
	}
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
