package mojodexstub

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// listKind says how an endpoint pages through its backlog.
type listKind int

const (
	// kindDrain returns items and removes them from the backlog.
	kindDrain listKind = iota
	// kindOffset returns the page [offset, offset+size) of the backlog.
	kindOffset
	// kindFlat returns up to 50 items and consumes nothing.
	kindFlat
	// kindGate answers {"is_configured": bool}.
	kindGate
)

// route describes one endpoint of a service.
type route struct {
	method    string
	secret    bool
	kind      listKind
	listKey   string
	sizeField string // batch-size field: query parameter for drains, body field for offsets
	userIDs   bool   // items are "user_N" strings rather than integer pks
	eventType string // required value of the event_type body field, if any
	push      bool   // gate: push instead of email
}

var backendRoutes = map[string]route{
	pathExpiredPurchases: {method: http.MethodPost, secret: true, kind: kindDrain, listKey: "purchase_pks", sizeField: "n_purchases"},
	pathDisengagedUsers:  {method: http.MethodPost, secret: true, kind: kindOffset, listKey: "user_ids", sizeField: "n_disengaged_users", userIDs: true},
	pathHomeChat:         {method: http.MethodPut, secret: true, kind: kindOffset, listKey: "user_ids", sizeField: "n_users", userIDs: true},
	pathRelaunchLocked:   {method: http.MethodPost, secret: true, kind: kindFlat, listKey: "user_workflow_step_executions_pk"},
	pathEmailConfigured:  {method: http.MethodGet, secret: true, kind: kindGate},
	pathPushConfigured:   {method: http.MethodGet, secret: true, kind: kindGate, push: true},
}

var backgroundRoutes = map[string]route{
	pathExtractTodos:     {method: http.MethodPost, kind: kindFlat, listKey: "user_task_execution_pks"},
	pathRescheduleTodo:   {method: http.MethodPost, kind: kindFlat, listKey: "todo_pks"},
	pathEventsGeneration: {method: http.MethodPost, secret: true, kind: kindOffset, listKey: "user_ids", sizeField: "n_events", userIDs: true, eventType: "todo_daily_emails"},
}

// Backend returns the handler of the backend service's paths:
// POST /check_expired_purchases (drain, n_purchases in the query string),
// POST /check_disengaged_free_trial_users and PUT /home_chat (offset
// pages), POST /relaunch_locked_workflow_step_executions, and the gates
// GET /is_email_service_configured and GET /is_push_notif_service_configured.
// All of them require the secret. POST /home_chat answers 403 "user
// authentication required", as the real backend's per-user call does.
func (s *Stub) Backend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(serviceBackend, backendRoutes, w, r)
	})
}

// Background returns the handler of the background service's paths:
// POST /extract_todos and POST /reschedule_todo (no secret), and
// POST /events_generation (secret, event_type "todo_daily_emails", offset
// pages).
func (s *Stub) Background() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(serviceBackground, backgroundRoutes, w, r)
	})
}

// reply is what the contract logic decided to answer.
type reply struct {
	status  int
	payload any
	items   int
}

// errReply builds a {"error": msg} reply.
func errReply(status int, msg string) reply {
	return reply{status: status, payload: map[string]string{"error": msg}}
}

// serve records the request, applies SetDown and injected faults, then
// the contract.
func (s *Stub) serve(service string, routes map[string]route, w http.ResponseWriter, r *http.Request) {
	raw, readErr := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	body, bodyErr := decodeObject(raw, readErr)
	call := &Call{
		Service:        service,
		Method:         r.Method,
		Path:           r.URL.Path,
		Query:          r.URL.Query(),
		Body:           body,
		Auth:           r.Header.Get("Authorization"),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		ContentType:    r.Header.Get("Content-Type"),
		At:             time.Now(),
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.inflight++
	down := s.down
	var fault *Fault
	if !down {
		if q := s.faults[call.Path]; len(q) > 0 {
			f := q[0]
			fault = &f
			if len(q) == 1 {
				delete(s.faults, call.Path)
			} else {
				s.faults[call.Path] = q[1:]
			}
		}
	}
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()

	ctx := r.Context()
	if down {
		hangup(w)
		return
	}
	if fault != nil {
		if !s.sleep(ctx, fault.Delay) {
			return
		}
		if fault.Hangup {
			hangup(w)
			return
		}
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		if fault.Location != "" {
			w.Header().Set("Location", fault.Location)
		}
		if fault.Status != 0 || fault.Body != "" {
			if !s.sleep(ctx, s.opts.Latency) {
				return
			}
			status := fault.Status
			if status == 0 {
				status = defaultFaultStatusCode
			} else if status < 100 || status > 999 {
				status = http.StatusInternalServerError // net/http refuses such codes
			}
			s.settle(call, status, 0)
			writeRaw(w, status, fault.Body)
			return
		}
	}
	if !s.sleep(ctx, s.opts.Latency) {
		return
	}
	rep := s.handle(service, routes, w, r, call, bodyErr)
	b, err := json.Marshal(rep.payload)
	if err != nil {
		rep = reply{status: http.StatusInternalServerError}
		b = []byte(`{"error":"stub could not encode reply"}`)
	}
	s.settle(call, rep.status, rep.items)
	writeJSON(w, rep.status, b)
}

// settle records the answer to call. It runs before the reply is written,
// so a client that got a reply always finds it in Calls.
func (s *Stub) settle(call *Call, status, items int) {
	s.mu.Lock()
	call.Status, call.Items = status, items
	s.mu.Unlock()
}

// handle applies the contract to one request and, when it is valid, serves
// it from the backlog. Checks run in this order: route, method, secret,
// content type, JSON body, datetime, endpoint parameters.
func (s *Stub) handle(service string, routes map[string]route, w http.ResponseWriter, r *http.Request, call *Call, bodyErr error) reply {
	rt, ok := routes[call.Path]
	if !ok {
		return errReply(http.StatusNotFound, "not found")
	}
	if service == serviceBackend && call.Path == pathHomeChat && r.Method == http.MethodPost {
		// The real backend serves a per-user call behind user auth on POST;
		// the scheduler's batch call is PUT.
		return errReply(http.StatusForbidden, "user authentication required")
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		return errReply(http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s, use %s", r.Method, call.Path, rt.method))
	}
	if rt.secret {
		if _, present := r.Header["Authorization"]; !present {
			return errReply(http.StatusForbidden, "missing Authorization header")
		}
		if s.opts.Secret == "" || subtle.ConstantTimeCompare([]byte(call.Auth), []byte(s.opts.Secret)) != 1 {
			return errReply(http.StatusForbidden, "invalid secret")
		}
	}
	if rt.method == http.MethodGet {
		if _, present := call.Query["datetime"]; !present {
			return errReply(http.StatusBadRequest, "missing datetime in query string")
		}
		if err := checkDatetime(call.Query.Get("datetime")); err != nil {
			return errReply(http.StatusBadRequest, err.Error()+" (a '+' in a query string must be escaped as %2B)")
		}
	} else {
		mt, _, err := mime.ParseMediaType(call.ContentType)
		if err != nil || mt != "application/json" {
			return errReply(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		}
		if bodyErr != nil {
			return errReply(http.StatusBadRequest, bodyErr.Error())
		}
		dt, present := call.Body["datetime"]
		if !present {
			return errReply(http.StatusBadRequest, "missing datetime in body")
		}
		str, isString := dt.(string)
		if !isString {
			return errReply(http.StatusBadRequest, "datetime must be a string")
		}
		if err := checkDatetime(str); err != nil {
			return errReply(http.StatusBadRequest, err.Error())
		}
	}
	if rt.eventType != "" {
		if et, _ := call.Body["event_type"].(string); et != rt.eventType {
			return errReply(http.StatusBadRequest, fmt.Sprintf("event_type must be %q", rt.eventType))
		}
	}

	switch rt.kind {
	case kindGate:
		s.mu.Lock()
		on := s.email
		if rt.push {
			on = s.push
		}
		s.mu.Unlock()
		return reply{status: http.StatusOK, payload: map[string]bool{"is_configured": on}}
	case kindFlat:
		s.mu.Lock()
		n := min(s.backlogLocked(call.Path).n, maxBatch)
		if s.alwaysFull[call.Path] {
			n = maxBatch
		}
		s.mu.Unlock()
		return listReply(rt, 1, n)
	case kindDrain:
		size, err := querySize(call.Query, rt.sizeField)
		if err != nil {
			return errReply(http.StatusBadRequest, err.Error())
		}
		s.mu.Lock()
		b := s.backlogLocked(call.Path)
		k := size
		if !s.alwaysFull[call.Path] {
			k = min(size, b.n)
			b.n -= k
		}
		first := b.consumed + 1
		b.consumed += k
		s.mu.Unlock()
		return listReply(rt, first, k)
	default: // kindOffset
		size, err := bodyInt(call.Body, rt.sizeField)
		if err == nil && size <= 0 {
			err = fmt.Errorf("%s must be a positive integer", rt.sizeField)
		}
		if err != nil {
			return errReply(http.StatusBadRequest, err.Error())
		}
		size = min(size, maxBatch)
		offset, err := bodyInt(call.Body, "offset")
		if err == nil && offset < 0 {
			err = errors.New("offset must not be negative")
		}
		if err != nil {
			return errReply(http.StatusBadRequest, err.Error())
		}
		s.mu.Lock()
		n := s.backlogLocked(call.Path).n
		full := s.alwaysFull[call.Path]
		s.mu.Unlock()
		k := size
		if !full {
			k = max(0, min(size, n-offset))
		}
		return listReply(rt, offset+1, k)
	}
}

// backlogLocked returns the backlog of path, creating an empty one. The
// caller holds s.mu.
func (s *Stub) backlogLocked(path string) *backlog {
	b := s.backlogs[path]
	if b == nil {
		b = &backlog{}
		s.backlogs[path] = b
	}
	return b
}

// listReply builds a successful reply holding the items first..first+n-1.
func listReply(rt route, first, n int) reply {
	list := make([]any, 0, n)
	for i := first; i < first+n; i++ {
		if rt.userIDs {
			list = append(list, "user_"+strconv.Itoa(i))
		} else {
			list = append(list, i)
		}
	}
	return reply{status: http.StatusOK, payload: map[string]any{rt.listKey: list}, items: n}
}

// querySize reads a positive integer batch size from the query string and
// clamps it to 50.
func querySize(q map[string][]string, name string) (int, error) {
	v, present := q[name]
	if !present || len(v) == 0 {
		return 0, fmt.Errorf("missing %s in query string", name)
	}
	n, err := strconv.Atoi(v[0])
	if err != nil {
		return 0, fmt.Errorf("%s in query string must be an integer", name)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%s must be a positive integer", name)
	}
	return min(n, maxBatch), nil
}

// bodyInt reads a required integral JSON number from body.
func bodyInt(body map[string]any, name string) (int, error) {
	v, present := body[name]
	if !present {
		return 0, fmt.Errorf("missing %s in body", name)
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1e12 {
		return 0, fmt.Errorf("%s must be an integer", name)
	}
	return int(f), nil
}

// datetimeLayouts are the accepted datetime forms: naive ISO 8601 as
// Python's isoformat writes it, and RFC 3339. Fractional seconds are
// optional in both (time.Parse accepts them after the seconds field).
var datetimeLayouts = []string{"2006-01-02T15:04:05", time.RFC3339}

// checkDatetime reports whether v is an accepted ISO 8601 datetime.
func checkDatetime(v string) error {
	for _, layout := range datetimeLayouts {
		if _, err := time.Parse(layout, v); err == nil {
			return nil
		}
	}
	return fmt.Errorf("datetime %q is not ISO 8601 (want e.g. 2006-01-02T15:04:05.000000 or RFC 3339)", v)
}

// decodeObject decodes raw as exactly one JSON object. It returns a nil
// map and an error for an empty, oversized or non-object body.
func decodeObject(raw []byte, readErr error) (map[string]any, error) {
	switch {
	case readErr != nil:
		return nil, errors.New("could not read body")
	case len(raw) > maxBodyBytes:
		return nil, errors.New("body too large")
	case len(bytes.TrimSpace(raw)) == 0:
		return nil, errors.New("missing JSON body")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("body is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("body is not a single JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("body must be a JSON object")
	}
	return obj, nil
}

// sleep waits d, returning false if ctx ends first (the client went away).
// Closing the stub cuts the wait short and returns true.
func (s *Stub) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.closing:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// hangup closes the connection without writing a response. Without a
// Hijacker (HTTP/2, httptest.ResponseRecorder) it aborts the handler with
// http.ErrAbortHandler, which net/http turns into a dropped connection or
// stream.
func hangup(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// writeJSON writes the encoded JSON reply b.
func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	flush(w)
}

// flush pushes the reply onto the connection before the handler returns,
// so that Close, which waits for handlers, never cuts a reply in half.
func flush(w http.ResponseWriter) {
	_ = http.NewResponseController(w).Flush()
}

// writeRaw writes an injected body verbatim ({"error":"injected"} when
// body is empty). Bodies that look like HTML are labelled text/html, all
// others application/json, as a misbehaving proxy or backend would.
func writeRaw(w http.ResponseWriter, status int, body string) {
	if body == "" {
		body = injectedErrorBody
	}
	ct := "application/json"
	if strings.HasPrefix(strings.TrimSpace(body), "<") {
		ct = "text/html; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
	flush(w)
}
