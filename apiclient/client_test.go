package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mojodex/mojodex-scheduler/task"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

var datetimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)

const testSecret = "Sup3r-S3cret-Sch3duler-Value"

// seen is what a test server recorded about one request.
type seen struct {
	method, path string
	query        map[string][]string
	header       http.Header
	body         []byte
	at           time.Time
}

// recServer is a loopback server that records requests and answers the
// n-th one (0-based) with handle(n, w, r).
type recServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newRecServer(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) *recServer {
	t.Helper()
	s := &recServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, seen{
			method: r.Method, path: r.URL.Path, query: r.URL.Query(),
			header: r.Header.Clone(), body: body, at: time.Now(),
		})
		s.mu.Unlock()
		handle(n, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *recServer) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

func okJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

// loopClient returns a Client for the loopback server at base with fast
// backoff and no rate limit.
func loopClient(t *testing.T, base string, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BackendURL:    base,
		BackgroundURL: base,
		Secret:        testSecret,
		Rate:          -1,
		BackoffBase:   time.Millisecond,
		BackoffMax:    20 * time.Millisecond,
		Timeout:       5 * time.Second,
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

func TestRequestShapePOST(t *testing.T) {
	srv := newRecServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		okJSON(w, `{"purchase_pks":[1,2]}`)
	})
	c := loopClient(t, srv.URL+"/prefix/", nil)
	callerBody := map[string]any{"n_purchases": 50, "datetime": "caller-value"}
	resp, err := c.Do(context.Background(), Request{
		Task:           "PurchasesExpirationChecker",
		Service:        task.ServiceBackend,
		Method:         http.MethodPost,
		Path:           "/check_expired_purchases",
		Query:          map[string]string{"n_purchases": "50"},
		Body:           callerBody,
		Auth:           true,
		IdempotencyKey: "run-42",
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.Status != 200 || resp.Attempts != 1 || string(resp.Body) != `{"purchase_pks":[1,2]}` {
		t.Fatalf("unexpected response %+v (body %q)", resp, resp.Body)
	}
	if len(callerBody) != 2 || callerBody["datetime"] != "caller-value" {
		t.Fatalf("caller's body was mutated: %v", callerBody)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/prefix/check_expired_purchases" {
		t.Errorf("got %s %s", r.method, r.path)
	}
	if got := r.query["n_purchases"]; len(got) != 1 || got[0] != "50" {
		t.Errorf("query n_purchases = %v", got)
	}
	if _, ok := r.query["datetime"]; ok {
		t.Errorf("POST must not put datetime in the query: %v", r.query)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if a := r.header.Values("Authorization"); len(a) != 1 || a[0] != testSecret {
		t.Errorf("Authorization = %q, want the secret verbatim", a)
	}
	if k := r.header.Get("Idempotency-Key"); k != "run-42" {
		t.Errorf("Idempotency-Key = %q", k)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	if body["n_purchases"] != float64(50) {
		t.Errorf("n_purchases = %v", body["n_purchases"])
	}
	dt, _ := body["datetime"].(string)
	if !datetimeRE.MatchString(dt) {
		t.Errorf("datetime %q does not match %s", dt, datetimeRE)
	}
	if len(body) != 2 {
		t.Errorf("unexpected body keys: %v", body)
	}
}

func TestRequestShapeGETAndNoAuth(t *testing.T) {
	srv := newRecServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		okJSON(w, `{"is_configured":true}`)
	})
	fixed := time.Date(2026, 11, 25, 20, 30, 0, 123456789, time.Local)
	c := loopClient(t, srv.URL, func(cfg *Config) {
		cfg.BackgroundURL = srv.URL + "/bg"
		cfg.Now = func() time.Time { return fixed }
	})
	ctx := context.Background()

	// Gate probe: GET with the datetime in the query and no body.
	if _, err := c.Do(ctx, Request{Service: task.ServiceBackend, Method: "GET", Path: "/is_email_service_configured", Auth: true,
		Query: map[string]string{"datetime": "caller"}}); err != nil {
		t.Fatalf("GET: %v", err)
	}
	// No auth, nil body, background service.
	if _, err := c.Do(ctx, Request{Service: task.ServiceBackground, Method: "POST", Path: "extract_todos"}); err != nil {
		t.Fatalf("POST: %v", err)
	}
	// PUT with a query datetime supplied by the caller (overwritten).
	if _, err := c.Do(ctx, Request{Service: task.ServiceBackend, Method: "PUT", Path: "/home_chat", Auth: true,
		Body: map[string]any{"n_users": 50, "offset": 0}, Query: map[string]string{"datetime": "caller"}}); err != nil {
		t.Fatalf("PUT: %v", err)
	}

	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d requests", len(reqs))
	}
	g := reqs[0]
	if g.method != "GET" || g.path != "/is_email_service_configured" {
		t.Errorf("got %s %s", g.method, g.path)
	}
	if dt := g.query["datetime"]; len(dt) != 1 || dt[0] != "2026-11-25T20:30:00.123456" {
		t.Errorf("GET datetime query = %v", dt)
	}
	if len(g.body) != 0 || g.header.Get("Content-Type") != "" {
		t.Errorf("GET must have no body: %q, Content-Type %q", g.body, g.header.Get("Content-Type"))
	}
	if g.header.Get("Authorization") != testSecret {
		t.Errorf("GET Authorization = %q", g.header.Get("Authorization"))
	}

	p := reqs[1]
	if p.path != "/bg/extract_todos" {
		t.Errorf("background path = %q", p.path)
	}
	if _, ok := p.header["Authorization"]; ok {
		t.Errorf("Authorization sent without Auth")
	}
	if _, ok := p.header["Idempotency-Key"]; ok {
		t.Errorf("Idempotency-Key sent without a key")
	}
	if string(p.body) != `{"datetime":"2026-11-25T20:30:00.123456"}` {
		t.Errorf("nil body POST sent %q", p.body)
	}

	u := reqs[2]
	if u.method != "PUT" || u.path != "/home_chat" {
		t.Errorf("got %s %s", u.method, u.path)
	}
	if dt := u.query["datetime"]; len(dt) != 1 || dt[0] != "2026-11-25T20:30:00.123456" {
		t.Errorf("caller's query datetime not overwritten: %v", dt)
	}
	var body map[string]any
	if err := json.Unmarshal(u.body, &body); err != nil || body["datetime"] != "2026-11-25T20:30:00.123456" || body["n_users"] != float64(50) {
		t.Errorf("PUT body %q (%v)", u.body, err)
	}
}

func TestRetry503Then200(t *testing.T) {
	srv := newRecServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		okJSON(w, `{}`)
	})
	obs := &recObserver{}
	c := loopClient(t, srv.URL, func(cfg *Config) { cfg.Observer = obs })
	resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x", IdempotencyKey: "k"})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.Attempts != 2 || resp.Status != 200 {
		t.Fatalf("resp = %+v", resp)
	}
	reqs := srv.requests()
	if len(reqs) != 2 || reqs[1].header.Get("Idempotency-Key") != "k" {
		t.Fatalf("requests: %d, key on retry %q", len(reqs), reqs[len(reqs)-1].header.Get("Idempotency-Key"))
	}
	done, retried, _ := obs.snapshot()
	if fmt.Sprint(done) != "[503 200]" || fmt.Sprint(retried) != "[status_503]" {
		t.Fatalf("observer: done %v retried %v", done, retried)
	}
}

func TestRetryAfter429Loopback(t *testing.T) {
	srv := newRecServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		okJSON(w, `{}`)
	})
	c := loopClient(t, srv.URL, func(cfg *Config) { cfg.BackoffMax = 5 * time.Second })
	resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	reqs := srv.requests()
	if resp.Attempts != 2 || len(reqs) != 2 {
		t.Fatalf("attempts %d, requests %d", resp.Attempts, len(reqs))
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < time.Second {
		t.Fatalf("second attempt after %v, want >= 1s (Retry-After)", gap)
	}
}

func TestNotRetried(t *testing.T) {
	for _, status := range []int{400, 403, 404, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newRecServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(status)
				_, _ = io.WriteString(w, `{"error":"nope"}`)
			})
			c := loopClient(t, srv.URL, nil)
			resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
			var se *StatusError
			if !errors.As(err, &se) || se.Status != status || se.Body != `{"error":"nope"}` || se.Method != "POST" || se.Path != "/x" {
				t.Fatalf("err = %v (%#v)", err, se)
			}
			if n := len(srv.requests()); n != 1 || resp.Attempts != 1 || resp.Status != status {
				t.Fatalf("requests %d, resp %+v", n, resp)
			}
			if !strings.Contains(err.Error(), "backend POST /x: attempt 1/3: ") {
				t.Fatalf("error lacks context: %v", err)
			}
		})
	}
}

func TestGatewayErrorsRetriedUpToMaxAttempts(t *testing.T) {
	for _, status := range []int{502, 503, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newRecServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(status)
			})
			c := loopClient(t, srv.URL, func(cfg *Config) { cfg.MaxAttempts = 4 })
			resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackground, Method: "POST", Path: "/y"})
			var se *StatusError
			if !errors.As(err, &se) || se.Status != status {
				t.Fatalf("err = %v", err)
			}
			if n := len(srv.requests()); n != 4 || resp.Attempts != 4 {
				t.Fatalf("requests %d, attempts %d", n, resp.Attempts)
			}
			if !strings.Contains(err.Error(), "background POST /y: attempt 4/4: ") {
				t.Fatalf("error lacks context: %v", err)
			}
		})
	}
}

func TestMaxAttemptsOneMeansNoRetry(t *testing.T) {
	srv := newRecServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	c := loopClient(t, srv.URL, func(cfg *Config) { cfg.MaxAttempts = 1 })
	if _, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"}); err == nil {
		t.Fatal("want an error")
	}
	if n := len(srv.requests()); n != 1 {
		t.Fatalf("requests %d", n)
	}
}

func TestConnectionRefusedRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	obs := &recObserver{}
	c := loopClient(t, "http://"+addr, func(cfg *Config) { cfg.Observer = obs })
	resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x", Auth: true})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want connection refused", err)
	}
	if resp.Attempts != 3 || resp.Status != 0 {
		t.Fatalf("resp = %+v", resp)
	}
	_, retried, _ := obs.snapshot()
	if fmt.Sprint(retried) != "[conn_refused conn_refused]" {
		t.Fatalf("retried = %v", retried)
	}
	if !strings.HasPrefix(err.Error(), "backend POST /x: attempt 3/3: ") {
		t.Fatalf("error lacks context: %v", err)
	}
}

func TestHijackedAndClosedRetried(t *testing.T) {
	srv := newRecServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			_ = conn.Close()
			return
		}
		okJSON(w, `{}`)
	})
	obs := &recObserver{}
	c := loopClient(t, srv.URL, func(cfg *Config) { cfg.Observer = obs })
	resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.Attempts != 2 || len(srv.requests()) != 2 {
		t.Fatalf("attempts %d, requests %d", resp.Attempts, len(srv.requests()))
	}
	if _, retried, _ := obs.snapshot(); len(retried) != 1 || (retried[0] != "eof" && retried[0] != "conn_reset") {
		t.Fatalf("retried = %v", retried)
	}
}

func TestBodyLimit(t *testing.T) {
	size := MaxBody
	srv := newRecServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			_, _ = w.Write(bytes.Repeat([]byte("a"), size))
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte("a"), size+1))
	})
	c := loopClient(t, srv.URL, nil)
	resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
	if err != nil || len(resp.Body) != MaxBody {
		t.Fatalf("exactly MaxBody: err %v, len %d", err, len(resp.Body))
	}
	resp, err = c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("err = %v, want body too large", err)
	}
	if resp.Attempts != 1 || len(srv.requests()) != 2 {
		t.Fatalf("body too large must not be retried: attempts %d, requests %d", resp.Attempts, len(srv.requests()))
	}
}

func TestStatusErrorBodyTruncated(t *testing.T) {
	long := strings.Repeat("x", 150) + strings.Repeat("é", 100) // 350 bytes, multi-byte at the cut
	srv := newRecServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, long)
	})
	c := loopClient(t, srv.URL, nil)
	resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	if len(se.Body) > 200 || len(se.Body) < 199 || !strings.HasPrefix(long, se.Body) {
		t.Fatalf("StatusError.Body has %d bytes: %q", len(se.Body), se.Body)
	}
	if string(resp.Body) != long {
		t.Fatalf("Response.Body should hold the whole body")
	}
}

func TestBuildErrorsNotRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := loopClient(t, srv.URL, nil)
	noSecret := loopClient(t, srv.URL, func(cfg *Config) { cfg.Secret = "" })
	cases := []struct {
		name string
		c    *Client
		req  Request
		want string
	}{
		{"unknown service", c, Request{Service: "other", Method: "POST", Path: "/x"}, "unknown service"},
		{"empty method", c, Request{Service: task.ServiceBackend, Path: "/x"}, "empty method"},
		{"query in path", c, Request{Service: task.ServiceBackend, Method: "POST", Path: "/x?a=b"}, "path"},
		{"bad method", c, Request{Service: task.ServiceBackend, Method: "PO ST", Path: "/x"}, "method"},
		{"unencodable body", c, Request{Service: task.ServiceBackend, Method: "POST", Path: "/x", Body: map[string]any{"f": func() {}}}, "encode body"},
		{"auth without secret", noSecret, Request{Service: task.ServiceBackend, Method: "POST", Path: "/x", Auth: true}, "Secret is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.c.Do(context.Background(), tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if resp.Attempts != 0 {
				t.Fatalf("attempts = %d", resp.Attempts)
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server", hits.Load())
	}
}

func TestBadConfigURLs(t *testing.T) {
	good := "http://mojodex_backend:5000"
	bad := []string{"", "   ", "mojodex_backend:5000", "ftp://host/x", "http://", "/relative/path", "http://[::1", "http://host/#frag", "//host:5000"}
	for _, field := range []string{"BackendURL", "BackgroundURL"} {
		for _, v := range bad {
			cfg := Config{BackendURL: good, BackgroundURL: good, Secret: testSecret}
			if field == "BackendURL" {
				cfg.BackendURL = v
			} else {
				cfg.BackgroundURL = v
			}
			c, err := NewClient(cfg)
			if err == nil || c != nil {
				t.Errorf("%s=%q: want an error", field, v)
				continue
			}
			if !strings.Contains(err.Error(), field) {
				t.Errorf("%s=%q: error %q does not name the field", field, v, err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks the secret: %v", err)
			}
		}
	}
	for _, v := range []string{"http://mojodex_backend:5000", "https://example.com/api/", "http://127.0.0.1:8080/p?x=1"} {
		if _, err := NewClient(Config{BackendURL: v, BackgroundURL: v}); err != nil {
			t.Errorf("%q rejected: %v", v, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := NewClient(Config{BackendURL: "http://b:5000", BackgroundURL: "http://g:5000"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.Config()
	if cfg.Rate != 10 || cfg.Burst != 5 || cfg.MaxInFlight != 4 || cfg.Timeout != 30*time.Second ||
		cfg.MaxAttempts != 3 || cfg.BackoffBase != 500*time.Millisecond || cfg.BackoffMax != 10*time.Second ||
		cfg.HTTPClient == nil || cfg.Now == nil || cfg.Observer != nil {
		t.Fatalf("defaults not applied: %v", cfg)
	}
	if c.limiter.Limit() != 10 || c.limiter.Burst() != 5 {
		t.Fatalf("limiter %v/%d", c.limiter.Limit(), c.limiter.Burst())
	}
	u, err := NewClient(Config{BackendURL: "http://b:5000", BackgroundURL: "http://g:5000", Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if u.limiter.Limit() != rate.Inf {
		t.Fatalf("negative rate should be unlimited: %v", u.limiter.Limit())
	}
}

func TestSecretNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	logger := zerolog.New(&logs).Level(zerolog.TraceLevel)
	srv := newRecServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0: // transient failure -> retry warning
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "echo "+r.Header.Get("Authorization"))
		case 1: // a service that echoes the header back in its error
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":"bad secret `+r.Header.Get("Authorization")+`"}`)
		default:
			okJSON(w, `{}`)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	_ = ln.Close()

	c := loopClient(t, srv.URL, func(cfg *Config) { cfg.Logger = logger; cfg.BackgroundURL = refused })
	var errs []string
	ctx := context.Background()
	_, err = c.Do(ctx, Request{Task: "t", Service: task.ServiceBackend, Method: "POST", Path: "/x", Auth: true})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 403 {
		t.Fatalf("want 403, got %v", err)
	}
	errs = append(errs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", se))
	if _, err := c.Do(ctx, Request{Task: "t", Service: task.ServiceBackend, Method: "GET", Path: "/ok", Auth: true}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Do(ctx, Request{Task: "t", Service: task.ServiceBackground, Method: "POST", Path: "/x", Auth: true})
	if err == nil {
		t.Fatal("want connection refused")
	}
	errs = append(errs, err.Error())
	cfg := c.Config()
	errs = append(errs, fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg))
	if cfg.Secret != testSecret {
		t.Fatalf("Config() must keep the secret")
	}
	for _, s := range errs {
		if strings.Contains(s, testSecret) {
			t.Errorf("secret leaked in %q", s)
		}
	}
	if strings.Contains(logs.String(), testSecret) {
		t.Errorf("secret leaked in logs:\n%s", logs.String())
	}

	// The logs are structured: a retry warning carries the fields.
	var sawWarn, sawDebug bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		switch {
		case m["level"] == "warn" && m["status"] == float64(503):
			sawWarn = m["task"] == "t" && m["service"] == "backend" && m["method"] == "POST" &&
				m["path"] == "/x" && m["attempt"] == float64(1) && m["wait_s"] != nil
		case m["level"] == "warn" && m["error"] != nil:
			if m["attempt"] == nil || m["wait_s"] == nil || m["path"] != "/x" {
				t.Errorf("transport retry warning lacks fields: %v", m)
			}
		case m["level"] == "debug" && m["status"] == float64(200):
			sawDebug = m["duration_s"] != nil && m["path"] == "/ok"
		}
	}
	if !sawWarn || !sawDebug {
		t.Errorf("missing structured log lines (warn %v, debug %v):\n%s", sawWarn, sawDebug, logs.String())
	}
}

func TestStatusErrorMessage(t *testing.T) {
	e := &StatusError{Status: 404, Body: `{"error":"x"}`, Method: "PUT", Path: "/home_chat"}
	if got := e.Error(); got != `PUT /home_chat: unexpected status 404: {"error":"x"}` {
		t.Fatalf("Error() = %q", got)
	}
	e.Body = ""
	if got := e.Error(); got != "PUT /home_chat: unexpected status 404" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"2", 2 * time.Second, true},
		{" 120 ", 120 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999999", time.Duration(1<<63 - 1), true},
	}
	for _, tc := range cases {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffFullJitterBounds(t *testing.T) {
	c := fakeClient(t, rtFunc(nil), func(cfg *Config) {
		cfg.BackoffBase = 100 * time.Millisecond
		cfg.BackoffMax = time.Second
	})
	ceilings := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i, ceiling := range ceilings {
		var lo, hi time.Duration = ceiling, 0
		for range 2000 {
			d := c.backoff(i + 1)
			if d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v outside [0, %v]", i+1, d, ceiling)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > ceiling/10 || hi < ceiling*9/10 {
			t.Errorf("backoff(%d) not spread over [0, %v]: [%v, %v]", i+1, ceiling, lo, hi)
		}
	}
	c.cfg.BackoffMax = time.Duration(1<<63 - 1)
	if d := c.backoff(200); d < 0 {
		t.Fatalf("overflow: %v", d)
	}
}

// A reply may echo the secret escaped: by a JSON encoder (Go's, Python's
// ensure_ascii, PHP's "\/"), or URL-escaped in a redirect's location. Every
// such form is redacted from error bodies and snippets.
func TestEscapedSecretRedacted(t *testing.T) {
	const secret = `s3cr<e>t/"é&ü😀`
	var goHTML, goPlain bytes.Buffer
	_ = json.NewEncoder(&goHTML).Encode(map[string]string{"error": secret})
	enc := json.NewEncoder(&goPlain)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"error": secret})
	python := `{"error": "s3cr<e>t/\"\u00e9&\u00fc\ud83d\ude00"}`
	php := `{"error":"s3cr<e>t\/\"\u00e9&\u00fc\ud83d\ude00"}`
	replies := map[string]string{
		"raw":            "echo " + secret,
		"Go JSON":        goHTML.String(),
		"Go JSON, plain": goPlain.String(),
		"Python JSON":    python,
		"PHP JSON":       php,
		"query":          "http://x/?token=" + url.QueryEscape(secret),
		"path":           "http://x/" + url.PathEscape(secret),
	}
	c, err := NewClient(Config{BackendURL: "http://b", BackgroundURL: "http://g", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	for name, reply := range replies {
		for _, got := range []string{c.redact(reply), c.Snippet([]byte(reply))} {
			if !strings.Contains(got, "[REDACTED]") || strings.Contains(got, "s3cr") {
				t.Errorf("%s: %q redacted as %q", name, reply, got)
			}
		}
	}
	if got := c.redact("nothing secret here"); got != "nothing secret here" {
		t.Errorf("redact changed a text without the secret: %q", got)
	}
	if forms := secretForms(""); forms != nil {
		t.Errorf("forms of an empty secret: %q", forms)
	}
}

// Config.String lists every setting of plain value (the hooks, logger and
// HTTP client aside), so that a field added later is not left out of it.
func TestConfigStringListsEverySetting(t *testing.T) {
	s := Config{Secret: "x"}.String()
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch f.Type.Kind() {
		case reflect.Func, reflect.Interface, reflect.Pointer, reflect.Struct:
			continue // Now, Observer, HTTPClient, Logger
		}
		if !strings.Contains(s, f.Name+":") {
			t.Errorf("Config.String() = %s: no %s", s, f.Name)
		}
	}
}
