package mojodexstub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

const (
	secret = "s3cret"
	now    = "2026-11-25T20:30:00.123456"
)

// env is a started stub plus a client with its own connection pool.
type env struct {
	s  *mojodexstub.Stub
	tr *http.Transport
	c  *http.Client
}

func start(t *testing.T, opts mojodexstub.Options) *env {
	t.Helper()
	if opts.Secret == "" {
		opts.Secret = secret
	}
	s, err := mojodexstub.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	tr := &http.Transport{}
	e := &env{s: s, tr: tr, c: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		tr.CloseIdleConnections()
	})
	return e
}

func (e *env) base(service string) string {
	if service == "background" {
		return e.s.BackgroundURL()
	}
	return e.s.BackendURL()
}

// req describes one request to the stub.
type req struct {
	service string
	method  string
	path    string
	query   url.Values
	body    any // map (encoded as JSON) or string (sent raw); nil for none
	auth    *string
	ctype   *string
	idem    string
}

// resp is a decoded reply.
type resp struct {
	status int
	header http.Header
	raw    string
	obj    map[string]any
}

func ptr(s string) *string { return &s }

func (e *env) send(ctx context.Context, r req) (resp, error) {
	u := e.base(r.service) + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return resp{}, err
		}
		body = strings.NewReader(string(raw))
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return resp{}, err
	}
	if r.auth != nil {
		hr.Header.Set("Authorization", *r.auth)
	}
	if r.ctype != nil {
		if *r.ctype != "" {
			hr.Header.Set("Content-Type", *r.ctype)
		}
	} else if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.idem != "" {
		hr.Header.Set("Idempotency-Key", r.idem)
	}
	res, err := e.c.Do(hr)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, err
	}
	out := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.obj)
	return out, nil
}

func (e *env) do(t *testing.T, r req) resp {
	t.Helper()
	out, err := e.send(context.Background(), r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return out
}

// body returns a JSON body with a datetime and the given extra fields.
func body(kv ...any) map[string]any {
	m := map[string]any{"datetime": now}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func list(t *testing.T, r resp, key string) []any {
	t.Helper()
	v, ok := r.obj[key]
	if !ok {
		t.Fatalf("reply %s has no %q", r.raw, key)
	}
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("reply %s: %q is not a list", r.raw, key)
	}
	return l
}

// route is one endpoint of the contract with a valid request for it.
type route struct {
	name    string
	service string
	method  string
	path    string
	secret  bool
	query   url.Values
	body    map[string]any // nil for GET
	listKey string         // "" for gates
	want    int            // items with the default backlog
}

func routes() []route {
	dt := url.Values{"datetime": {now}}
	return []route{
		{"purchases", "backend", "POST", "/check_expired_purchases", true, url.Values{"n_purchases": {"50"}}, body("n_purchases", 50), "purchase_pks", 50},
		{"disengaged", "backend", "POST", "/check_disengaged_free_trial_users", true, nil, body("n_disengaged_users", 50, "offset", 0), "user_ids", 50},
		{"home_chat", "backend", "PUT", "/home_chat", true, nil, body("n_users", 50, "offset", 0), "user_ids", 50},
		{"relaunch", "backend", "POST", "/relaunch_locked_workflow_step_executions", true, nil, body(), "user_workflow_step_executions_pk", 2},
		{"email_gate", "backend", "GET", "/is_email_service_configured", true, dt, nil, "", 0},
		{"push_gate", "backend", "GET", "/is_push_notif_service_configured", true, dt, nil, "", 0},
		{"extract_todos", "background", "POST", "/extract_todos", false, nil, body(), "user_task_execution_pks", 3},
		{"reschedule_todo", "background", "POST", "/reschedule_todo", false, nil, body(), "todo_pks", 4},
		{"events", "background", "POST", "/events_generation", true, nil, body("event_type", "todo_daily_emails", "n_events", 50, "offset", 0), "user_ids", 50},
	}
}

func (rt route) req() req {
	r := req{service: rt.service, method: rt.method, path: rt.path, query: rt.query, auth: ptr(secret)}
	if rt.body != nil {
		r.body = rt.body
	}
	return r
}

func TestRoutesHappyPath(t *testing.T) {
	for _, rt := range routes() {
		t.Run(rt.name, func(t *testing.T) {
			e := start(t, mojodexstub.Options{EmailConfigured: true})
			r := rt.req()
			if !rt.secret {
				r.auth = nil
			}
			got := e.do(t, r)
			if got.status != http.StatusOK {
				t.Fatalf("status %d, body %s", got.status, got.raw)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if rt.listKey == "" {
				want := rt.path == "/is_email_service_configured"
				if got.obj["is_configured"] != want {
					t.Errorf("is_configured = %v, want %v (%s)", got.obj["is_configured"], want, got.raw)
				}
			} else if n := len(list(t, got, rt.listKey)); n != rt.want {
				t.Errorf("%d items, want %d", n, rt.want)
			}
			calls := e.s.CallsTo(rt.path)
			if len(calls) != 1 || calls[0].Status != http.StatusOK || calls[0].Items != rt.want || calls[0].Service != rt.service {
				t.Errorf("calls = %+v", calls)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	type tc struct {
		name   string
		mutate func(*req)
		want   int
	}
	for _, rt := range routes() {
		cases := []tc{{"wrong method", func(r *req) {
			if r.method == "GET" {
				r.method = "POST"
				r.body = body()
			} else {
				r.method = "GET"
				r.body = nil
			}
		}, 405}}
		if rt.method == "POST" {
			cases = append(cases, tc{"PUT", func(r *req) { r.method = "PUT" }, 405})
		}
		if rt.secret {
			cases = append(cases,
				tc{"missing secret", func(r *req) { r.auth = nil }, 403},
				tc{"wrong secret", func(r *req) { r.auth = ptr("nope") }, 403},
				tc{"bearer secret", func(r *req) { r.auth = ptr("Bearer " + secret) }, 403},
				tc{"empty secret", func(r *req) { r.auth = ptr("") }, 403},
			)
		}
		if rt.method == "GET" {
			cases = append(cases,
				tc{"missing datetime", func(r *req) { r.query = nil }, 400},
				tc{"bad datetime", func(r *req) { r.query = url.Values{"datetime": {"tomorrow"}} }, 400},
			)
		} else {
			cases = append(cases,
				tc{"missing datetime", func(r *req) { delete(r.body.(map[string]any), "datetime") }, 400},
				tc{"bad datetime", func(r *req) { r.body.(map[string]any)["datetime"] = "2026-11-25" }, 400},
				tc{"numeric datetime", func(r *req) { r.body.(map[string]any)["datetime"] = 1764102600 }, 400},
				tc{"bad JSON", func(r *req) { r.body = `{"datetime": "` + now + `",` }, 400},
				tc{"array body", func(r *req) { r.body = `["datetime"]` }, 400},
				tc{"two values", func(r *req) { r.body = `{"datetime":"` + now + `"} {}` }, 400},
				tc{"empty body", func(r *req) { r.body = "" }, 400},
				tc{"no content type", func(r *req) { r.ctype = ptr("") }, 415},
				tc{"text content type", func(r *req) { r.ctype = ptr("text/plain") }, 415},
				tc{"form content type", func(r *req) { r.ctype = ptr("application/x-www-form-urlencoded") }, 415},
			)
		}
		for _, c := range cases {
			t.Run(rt.name+"/"+c.name, func(t *testing.T) {
				r := rt.req()
				if rt.body != nil {
					r.body = body()
					for k, v := range rt.body {
						r.body.(map[string]any)[k] = v
					}
				}
				c.mutate(&r)
				got := e.do(t, r)
				if got.status != c.want {
					t.Fatalf("status %d, want %d (%s)", got.status, c.want, got.raw)
				}
				if msg, _ := got.obj["error"].(string); msg == "" {
					t.Errorf("reply %q has no error message", got.raw)
				}
				if c.want == 405 && got.header.Get("Allow") != rt.method {
					t.Errorf("Allow %q, want %q", got.header.Get("Allow"), rt.method)
				}
			})
		}
	}
	// Rejected calls are recorded with their status.
	for _, c := range e.s.Calls() {
		if c.Status < 400 || c.Items != 0 {
			t.Errorf("rejected call recorded as %+v", c)
		}
	}
	// Nothing was consumed by rejected calls.
	got := e.do(t, routes()[0].req())
	if n := len(list(t, got, "purchase_pks")); n != 50 {
		t.Errorf("after rejections the drain returns %d items, want 50", n)
	}
}

func TestNotFound(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	for _, r := range []req{
		{service: "backend", method: "POST", path: "/nope", body: body()},
		{service: "backend", method: "GET", path: "/"},
		{service: "backend", method: "POST", path: "/extract_todos", body: body()},
		{service: "backend", method: "POST", path: "/events_generation", body: body()},
		{service: "background", method: "POST", path: "/check_expired_purchases", body: body()},
		{service: "background", method: "PUT", path: "/home_chat", body: body()},
		{service: "background", method: "GET", path: "/is_email_service_configured"},
		{service: "backend", method: "POST", path: "/check_expired_purchases/", body: body()},
	} {
		got := e.do(t, r)
		if got.status != 404 || got.obj["error"] != "not found" {
			t.Errorf("%s %s %s: %d %s", r.service, r.method, r.path, got.status, got.raw)
		}
	}
}

func TestHomeChatPostTrap(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	r := req{service: "backend", method: "POST", path: "/home_chat", auth: ptr(secret), body: body("n_users", 50, "offset", 0)}
	got := e.do(t, r)
	if got.status != 403 || got.obj["error"] != "user authentication required" {
		t.Fatalf("POST /home_chat: %d %s", got.status, got.raw)
	}
	r.method = "PUT"
	if got := e.do(t, r); got.status != 200 {
		t.Fatalf("PUT /home_chat: %d %s", got.status, got.raw)
	}
}

func TestBatchParameters(t *testing.T) {
	e := start(t, mojodexstub.Options{Backlog: map[string]int{
		"/check_expired_purchases":           10_000,
		"/check_disengaged_free_trial_users": 10_000,
		"/home_chat":                         10_000,
		"/events_generation":                 10_000,
	}})
	purchases := func(n string) req {
		q := url.Values{}
		if n != "-" {
			q.Set("n_purchases", n)
		}
		return req{service: "backend", method: "POST", path: "/check_expired_purchases", query: q, auth: ptr(secret), body: body("n_purchases", 50)}
	}
	disengaged := func(kv ...any) req {
		return req{service: "backend", method: "POST", path: "/check_disengaged_free_trial_users", auth: ptr(secret), body: body(kv...)}
	}
	home := func(kv ...any) req {
		return req{service: "backend", method: "PUT", path: "/home_chat", auth: ptr(secret), body: body(kv...)}
	}
	events := func(kv ...any) req {
		return req{service: "background", method: "POST", path: "/events_generation", auth: ptr(secret), body: body(kv...)}
	}
	cases := []struct {
		name  string
		r     req
		want  int // status
		items int
	}{
		{"purchases clamp", purchases("60"), 200, 50},
		{"purchases small", purchases("7"), 200, 7},
		{"purchases missing query", purchases("-"), 400, 0},
		{"purchases zero", purchases("0"), 400, 0},
		{"purchases negative", purchases("-3"), 400, 0},
		{"purchases not int", purchases("ten"), 400, 0},
		{"purchases float", purchases("5.5"), 400, 0},
		{"disengaged clamp", disengaged("n_disengaged_users", 60, "offset", 0), 200, 50},
		{"disengaged integral float", disengaged("n_disengaged_users", 20.0, "offset", 40.0), 200, 20},
		{"disengaged missing size", disengaged("offset", 0), 400, 0},
		{"disengaged missing offset", disengaged("n_disengaged_users", 50), 400, 0},
		{"disengaged zero", disengaged("n_disengaged_users", 0, "offset", 0), 400, 0},
		{"disengaged fractional", disengaged("n_disengaged_users", 2.5, "offset", 0), 400, 0},
		{"disengaged string", disengaged("n_disengaged_users", "50", "offset", 0), 400, 0},
		{"disengaged negative offset", disengaged("n_disengaged_users", 50, "offset", -50), 400, 0},
		{"disengaged string offset", disengaged("n_disengaged_users", 50, "offset", "0"), 400, 0},
		{"home clamp", home("n_users", 60, "offset", 0), 200, 50},
		{"home null size", home("n_users", nil, "offset", 0), 400, 0},
		{"home bool offset", home("n_users", 50, "offset", true), 400, 0},
		{"events clamp", events("event_type", "todo_daily_emails", "n_events", 60, "offset", 0), 200, 50},
		{"events wrong type", events("event_type", "daily_notifications", "n_events", 50, "offset", 0), 400, 0},
		{"events missing type", events("n_events", 50, "offset", 0), 400, 0},
		{"events missing size", events("event_type", "todo_daily_emails", "offset", 0), 400, 0},
		{"events negative size", events("event_type", "todo_daily_emails", "n_events", -1, "offset", 0), 400, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := e.do(t, c.r)
			if got.status != c.want {
				t.Fatalf("status %d, want %d (%s)", got.status, c.want, got.raw)
			}
			if c.want != 200 {
				if msg, _ := got.obj["error"].(string); msg == "" {
					t.Errorf("no error message in %s", got.raw)
				}
				return
			}
			for k, v := range got.obj {
				if n := len(v.([]any)); n != c.items {
					t.Errorf("%s has %d items, want %d", k, n, c.items)
				}
			}
		})
	}
}

func TestDrainConsumesBacklog(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	r := routes()[0].req()
	var all []int
	var sizes []int
	for range 5 {
		got := e.do(t, r)
		l := list(t, got, "purchase_pks")
		sizes = append(sizes, len(l))
		for _, v := range l {
			all = append(all, int(v.(float64)))
		}
		if len(l) < 50 {
			break
		}
	}
	if !slices.Equal(sizes, []int{50, 10}) {
		t.Errorf("page sizes %v, want [50 10]", sizes)
	}
	want := make([]int, 60)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(all, want) {
		t.Errorf("pks %v", all)
	}
	got := e.do(t, r)
	if l := list(t, got, "purchase_pks"); len(l) != 0 || !strings.Contains(got.raw, "[]") {
		t.Errorf("exhausted drain replied %s", got.raw)
	}
	// A new backlog drains fresh.
	e.s.SetBacklog("/check_expired_purchases", 3)
	if l := list(t, e.do(t, r), "purchase_pks"); len(l) != 3 {
		t.Errorf("after SetBacklog 3: %d items", len(l))
	}
}

func TestOffsetPages(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	cases := []struct {
		rt    route
		total int
	}{
		{routes()[1], 75},
		{routes()[2], 110},
		{routes()[8], 120},
	}
	for _, c := range cases {
		t.Run(c.rt.name, func(t *testing.T) {
			var ids []string
			var sizes []int
			for offset := 0; offset <= c.total+50; offset += 50 {
				r := c.rt.req()
				b := body()
				for k, v := range c.rt.body {
					b[k] = v
				}
				b["offset"] = offset
				r.body = b
				l := list(t, e.do(t, r), "user_ids")
				sizes = append(sizes, len(l))
				for _, v := range l {
					ids = append(ids, v.(string))
				}
			}
			if len(ids) != c.total {
				t.Fatalf("%d ids over pages %v, want %d", len(ids), sizes, c.total)
			}
			for i, id := range ids {
				if id != fmt.Sprintf("user_%d", i+1) {
					t.Fatalf("id %d is %q", i, id)
				}
			}
			if sizes[len(sizes)-1] != 0 || sizes[0] != 50 {
				t.Errorf("page sizes %v", sizes)
			}
			// Offset pages do not consume: the first page is still there.
			r := c.rt.req()
			if l := list(t, e.do(t, r), "user_ids"); len(l) != 50 {
				t.Errorf("first page again: %d items", len(l))
			}
		})
	}
}

func TestFlatEndpointsDoNotConsume(t *testing.T) {
	e := start(t, mojodexstub.Options{Backlog: map[string]int{"/extract_todos": 0, "/relaunch_locked_workflow_step_executions": 70}})
	rs := routes()
	for range 2 {
		got := e.do(t, req{service: "background", method: "POST", path: "/extract_todos", body: body()})
		if l := list(t, got, "user_task_execution_pks"); len(l) != 0 || !strings.Contains(got.raw, "[]") {
			t.Errorf("empty backlog replied %s", got.raw)
		}
		if l := list(t, e.do(t, rs[3].req()), "user_workflow_step_executions_pk"); len(l) != 50 {
			t.Errorf("relaunch: %d items, want 50", len(l))
		}
		if l := list(t, e.do(t, rs[7].req()), "todo_pks"); len(l) != 4 {
			t.Errorf("reschedule: %d items, want 4 (default)", len(l))
		}
	}
}

func TestAlwaysFull(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	rs := routes()
	for _, p := range []string{"/check_expired_purchases", "/home_chat", "/extract_todos"} {
		e.s.SetAlwaysFull(p, true)
	}
	seen := map[float64]bool{}
	for range 4 {
		l := list(t, e.do(t, rs[0].req()), "purchase_pks")
		if len(l) != 50 {
			t.Fatalf("always-full drain returned %d", len(l))
		}
		for _, v := range l {
			if seen[v.(float64)] {
				t.Fatalf("pk %v repeated", v)
			}
			seen[v.(float64)] = true
		}
	}
	r := rs[2].req()
	r.body = body("n_users", 60, "offset", 100_000)
	if l := list(t, e.do(t, r), "user_ids"); len(l) != 50 || l[0] != "user_100001" {
		t.Errorf("always-full offset page: %d items starting %v", len(l), l[0])
	}
	r.body = body("n_users", 10, "offset", 100_000)
	if l := list(t, e.do(t, r), "user_ids"); len(l) != 10 {
		t.Errorf("always-full page of 10: %d items", len(l))
	}
	if l := list(t, e.do(t, rs[6].req()), "user_task_execution_pks"); len(l) != 50 {
		t.Errorf("always-full flat: %d items", len(l))
	}
	for _, p := range []string{"/check_expired_purchases", "/home_chat", "/extract_todos"} {
		e.s.SetAlwaysFull(p, false)
	}
	// The drain never shrank the backlog: 60 items are still there.
	if l := list(t, e.do(t, rs[0].req()), "purchase_pks"); len(l) != 50 {
		t.Errorf("after always-full off: %d", len(l))
	}
	if l := list(t, e.do(t, r), "user_ids"); len(l) != 0 {
		t.Errorf("offset past the end after always-full off: %d", len(l))
	}
	if l := list(t, e.do(t, rs[6].req()), "user_task_execution_pks"); len(l) != 3 {
		t.Errorf("flat after always-full off: %d", len(l))
	}
}

func TestGates(t *testing.T) {
	e := start(t, mojodexstub.Options{EmailConfigured: false, PushConfigured: true})
	email, push := routes()[4].req(), routes()[5].req()
	check := func(wantEmail, wantPush bool) {
		t.Helper()
		if got := e.do(t, email); got.obj["is_configured"] != wantEmail {
			t.Errorf("email gate %s, want %v", got.raw, wantEmail)
		}
		if got := e.do(t, push); got.obj["is_configured"] != wantPush {
			t.Errorf("push gate %s, want %v", got.raw, wantPush)
		}
	}
	check(false, true)
	e.s.SetEmailConfigured(true)
	e.s.SetPushConfigured(false)
	check(true, false)
	e.s.Reset()
	check(false, true)
}

func TestDatetimeFormats(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	for _, c := range []struct {
		v  string
		ok bool
	}{
		{"2026-11-25T20:30:00.123456", true},
		{"2026-11-25T20:30:00", true},
		{"2026-11-25T20:30:00Z", true},
		{"2026-11-25T20:30:00.5+01:00", true},
		{"2026-11-25T20:30:00.123456789-05:00", true},
		{"", false},
		{"2026-11-25", false},
		{"2026-11-25 20:30:00", false},
		{"25/11/2026 20:30", false},
		{"2026-13-25T20:30:00", false},
	} {
		got := e.do(t, req{service: "background", method: "POST", path: "/extract_todos", body: map[string]any{"datetime": c.v}})
		if (got.status == 200) != c.ok {
			t.Errorf("body datetime %q: status %d", c.v, got.status)
		}
		r := routes()[4].req()
		r.query = url.Values{"datetime": {c.v}}
		if got := e.do(t, r); (got.status == 200) != c.ok {
			t.Errorf("query datetime %q: status %d", c.v, got.status)
		}
	}
	// An unescaped '+' in a query string decodes as a space: rejected.
	hr, _ := http.NewRequest("GET", e.s.BackendURL()+"/is_email_service_configured?datetime=2026-11-25T20:30:00+01:00", nil)
	hr.Header.Set("Authorization", secret)
	res, err := e.c.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("unescaped '+': status %d", res.StatusCode)
	}
}

func TestContentTypeWithCharset(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	got := e.do(t, req{service: "background", method: "POST", path: "/reschedule_todo", body: body(), ctype: ptr("application/json; charset=utf-8")})
	if got.status != 200 {
		t.Fatalf("status %d %s", got.status, got.raw)
	}
}

func TestEmptySecretRefusesAll(t *testing.T) {
	s := mojodexstub.New(mojodexstub.Options{})
	srv := httptest.NewServer(s.Backend())
	defer srv.Close()
	hr, _ := http.NewRequest("GET", srv.URL+"/is_email_service_configured?datetime="+now, nil)
	hr.Header.Set("Authorization", "")
	res, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("status %d, want 403", res.StatusCode)
	}
	if s.BackendURL() != "" || s.BackgroundURL() != "" {
		t.Errorf("URLs of an unstarted stub: %q %q", s.BackendURL(), s.BackgroundURL())
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close of an unstarted stub: %v", err)
	}
}

// A Location fault with a 3xx status is a redirect, which the stub
// answers and never follows itself; the next call gets the normal reply.
func TestFaultLocation(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	e.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := routes()[0].req()
	e.s.Inject("/check_expired_purchases", mojodexstub.Fault{Status: 302, Location: "http://127.0.0.1:1/elsewhere", Body: "{}"})
	got := e.do(t, r)
	if got.status != 302 || got.header.Get("Location") != "http://127.0.0.1:1/elsewhere" {
		t.Errorf("redirect fault: %d, Location %q", got.status, got.header.Get("Location"))
	}
	got = e.do(t, r)
	if got.status != 200 || got.header.Get("Location") != "" {
		t.Errorf("after the fault: %d, Location %q", got.status, got.header.Get("Location"))
	}
}

func TestFaultStatusAndRetryAfter(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	r := routes()[0].req()
	e.s.Inject("/check_expired_purchases",
		mojodexstub.Fault{Status: 503, RetryAfter: "7"},
		mojodexstub.Fault{Status: 500, Body: `{"error":"boom"}`},
		mojodexstub.Fault{RetryAfter: "3"},
	)
	got := e.do(t, r)
	if got.status != 503 || got.header.Get("Retry-After") != "7" || got.raw != `{"error":"injected"}` {
		t.Errorf("first fault: %d %q %s", got.status, got.header.Get("Retry-After"), got.raw)
	}
	got = e.do(t, r)
	if got.status != 500 || got.raw != `{"error":"boom"}` || got.header.Get("Retry-After") != "" {
		t.Errorf("second fault: %d %s", got.status, got.raw)
	}
	got = e.do(t, r) // Retry-After only: decorates the normal reply
	if got.status != 200 || got.header.Get("Retry-After") != "3" || len(list(t, got, "purchase_pks")) != 50 {
		t.Errorf("third fault: %d %q %s", got.status, got.header.Get("Retry-After"), got.raw)
	}
	got = e.do(t, r)
	if got.status != 200 || got.header.Get("Retry-After") != "" || len(list(t, got, "purchase_pks")) != 10 {
		t.Errorf("after faults: %d %s", got.status, got.raw)
	}
	// Faults apply before validation: even a request without the secret,
	// with any method, consumes one.
	e.s.Inject("/home_chat", mojodexstub.Fault{Status: 502})
	if got := e.do(t, req{service: "backend", method: "GET", path: "/home_chat"}); got.status != 502 {
		t.Errorf("fault on an invalid request: %d", got.status)
	}
	if got := e.do(t, req{service: "backend", method: "GET", path: "/home_chat"}); got.status != 405 {
		t.Errorf("after the fault: %d", got.status)
	}
	statuses := []int{}
	for _, c := range e.s.CallsTo("/check_expired_purchases") {
		statuses = append(statuses, c.Status)
	}
	if !slices.Equal(statuses, []int{503, 500, 200, 200}) {
		t.Errorf("recorded statuses %v", statuses)
	}
}

func TestFaultRawBodies(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	for _, c := range []struct {
		body  string
		ctype string
	}{
		{"<html><body>502 Bad Gateway</body></html>", "text/html; charset=utf-8"},
		{`{"purchase_pks": [1, 2,`, "application/json"},
		{`{"purchase_pks": "x"}`, "application/json"},
		{`{}`, "application/json"},
	} {
		e.s.Inject("/check_expired_purchases", mojodexstub.Fault{Body: c.body})
		got := e.do(t, routes()[0].req())
		if got.status != 200 || got.raw != c.body || got.header.Get("Content-Type") != c.ctype {
			t.Errorf("raw body %q: %d %q %q", c.body, got.status, got.raw, got.header.Get("Content-Type"))
		}
	}
	// Nothing was consumed.
	if l := list(t, e.do(t, routes()[0].req()), "purchase_pks"); len(l) != 50 {
		t.Errorf("drain after raw faults: %d", len(l))
	}
}

func TestFaultDelay(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	e.s.Inject("/extract_todos", mojodexstub.Fault{Delay: 80 * time.Millisecond})
	r := routes()[6].req()
	t0 := time.Now()
	got := e.do(t, r)
	if d := time.Since(t0); d < 80*time.Millisecond || got.status != 200 {
		t.Errorf("delayed reply after %v: %d", d, got.status)
	}
}

func TestFaultDelayClientCancel(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	e.s.Inject("/check_expired_purchases", mojodexstub.Fault{Delay: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if _, err := e.send(ctx, routes()[0].req()); err == nil {
		t.Fatal("request succeeded despite cancellation")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	// The next request is served normally and the backlog is intact.
	if l := list(t, e.do(t, routes()[0].req()), "purchase_pks"); len(l) != 50 {
		t.Errorf("after a cancelled delay: %d items", len(l))
	}
	if calls := e.s.CallsTo("/check_expired_purchases"); len(calls) != 2 || calls[0].Status != 0 {
		t.Errorf("calls %+v", calls)
	}
}

// The handler itself stops sleeping when the request context ends.
func TestFaultDelayHandlerReturnsOnCancel(t *testing.T) {
	s := mojodexstub.New(mojodexstub.Options{Secret: secret})
	s.Inject("/extract_todos", mojodexstub.Fault{Delay: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, "POST", "/extract_todos", strings.NewReader(`{"datetime":"`+now+`"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		s.Background().ServeHTTP(w, r)
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("handler kept sleeping after cancellation")
	}
	if c := s.Calls(); len(c) != 1 || c[0].Status != 0 {
		t.Errorf("calls %+v", c)
	}
}

func TestFaultHangup(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	e.s.Inject("/reschedule_todo", mojodexstub.Fault{Hangup: true}, mojodexstub.Fault{Delay: 20 * time.Millisecond, Hangup: true})
	r := routes()[7].req()
	for i := range 2 {
		if got, err := e.send(context.Background(), r); err == nil {
			t.Fatalf("hangup %d: got a reply %d %s", i, got.status, got.raw)
		}
	}
	if got := e.do(t, r); got.status != 200 {
		t.Fatalf("after hangups: %d", got.status)
	}
	calls := e.s.CallsTo("/reschedule_todo")
	if len(calls) != 3 || calls[0].Status != 0 || calls[1].Status != 0 || calls[2].Status != 200 {
		t.Errorf("calls %+v", calls)
	}
}

func TestSetDown(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	e.s.Inject("/extract_todos", mojodexstub.Fault{Status: 500})
	e.s.SetDown(true)
	for _, rt := range []route{routes()[0], routes()[6]} {
		if _, err := e.send(context.Background(), rt.req()); err == nil {
			t.Errorf("%s answered while down", rt.path)
		}
	}
	e.s.SetDown(false)
	// SetDown does not consume faults: the queued one is still there.
	if got := e.do(t, routes()[6].req()); got.status != 500 {
		t.Errorf("queued fault after down: %d", got.status)
	}
	if got := e.do(t, routes()[0].req()); got.status != 200 || len(list(t, got, "purchase_pks")) != 50 {
		t.Errorf("back up: %d %s", got.status, got.raw)
	}
	calls := e.s.Calls()
	if len(calls) < 4 || calls[0].Status != 0 || calls[1].Status != 0 {
		t.Errorf("calls while down %+v", calls)
	}
}

func TestCallsRecording(t *testing.T) {
	e := start(t, mojodexstub.Options{})
	r := routes()[8].req()
	r.idem = "run-42-page-0"
	e.do(t, r)
	e.do(t, req{service: "background", method: "POST", path: "/events_generation", auth: ptr("wrong"), body: body("event_type", "todo_daily_emails", "n_events", 50, "offset", 0)})
	e.do(t, routes()[4].req())
	e.do(t, req{service: "backend", method: "DELETE", path: "/unknown"})

	calls := e.s.Calls()
	if len(calls) != 4 {
		t.Fatalf("%d calls", len(calls))
	}
	c := calls[0]
	if c.Service != "background" || c.Method != "POST" || c.Path != "/events_generation" ||
		c.Auth != secret || c.IdempotencyKey != "run-42-page-0" || c.ContentType != "application/json" ||
		c.Status != 200 || c.Items != 50 || c.At.IsZero() {
		t.Errorf("first call %+v", c)
	}
	if c.Body["event_type"] != "todo_daily_emails" || c.Body["n_events"] != float64(50) || c.Body["offset"] != float64(0) || c.Body["datetime"] != now {
		t.Errorf("first call body %v", c.Body)
	}
	if calls[1].Auth != "wrong" || calls[1].Status != 403 || calls[1].Items != 0 || calls[1].IdempotencyKey != "" {
		t.Errorf("rejected call %+v", calls[1])
	}
	if calls[2].Service != "backend" || calls[2].Query.Get("datetime") != now || calls[2].Body != nil || calls[2].Method != "GET" {
		t.Errorf("gate call %+v", calls[2])
	}
	if calls[3].Status != 404 || calls[3].Method != "DELETE" {
		t.Errorf("unknown call %+v", calls[3])
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].At.Before(calls[i-1].At) {
			t.Errorf("calls out of order")
		}
	}
	if got := e.s.CallsTo("/events_generation"); len(got) != 2 {
		t.Errorf("CallsTo: %d", len(got))
	}
	if got := e.s.CallsTo("/nothing"); len(got) != 0 {
		t.Errorf("CallsTo unknown: %d", len(got))
	}
	// The returned records are copies.
	calls[0].Body["offset"] = 999.0
	calls[2].Query.Set("datetime", "x")
	again := e.s.Calls()
	if again[0].Body["offset"] != float64(0) || again[2].Query.Get("datetime") != now {
		t.Errorf("records were altered through a returned copy")
	}
	// A bad JSON body is recorded as nil.
	e.do(t, req{service: "background", method: "POST", path: "/extract_todos", body: "{"})
	if last := e.s.CallsTo("/extract_todos"); len(last) != 1 || last[0].Body != nil || last[0].Status != 400 {
		t.Errorf("bad body call %+v", last)
	}
}

func TestReset(t *testing.T) {
	e := start(t, mojodexstub.Options{EmailConfigured: true, Backlog: map[string]int{"/check_expired_purchases": 5}})
	r := routes()[0].req()
	if l := list(t, e.do(t, r), "purchase_pks"); len(l) != 5 {
		t.Fatalf("custom backlog: %d", len(l))
	}
	e.s.Inject("/check_expired_purchases", mojodexstub.Fault{Status: 500})
	e.s.SetEmailConfigured(false)
	e.s.SetAlwaysFull("/home_chat", true)
	e.s.SetBacklog("/extract_todos", 0)
	e.s.SetDown(true)
	e.s.Reset()
	if n := len(e.s.Calls()); n != 0 {
		t.Errorf("%d calls after Reset", n)
	}
	got := e.do(t, r)
	if got.status != 200 || len(list(t, got, "purchase_pks")) != 5 {
		t.Errorf("after Reset: %d %s", got.status, got.raw)
	}
	if got := e.do(t, routes()[4].req()); got.obj["is_configured"] != true {
		t.Errorf("gate after Reset: %s", got.raw)
	}
	hc := routes()[2].req()
	hc.body = body("n_users", 50, "offset", 500)
	if l := list(t, e.do(t, hc), "user_ids"); len(l) != 0 {
		t.Errorf("always-full survived Reset")
	}
	if l := list(t, e.do(t, routes()[6].req()), "user_task_execution_pks"); len(l) != 3 {
		t.Errorf("flat backlog after Reset: %d", len(l))
	}
}

func TestLatency(t *testing.T) {
	e := start(t, mojodexstub.Options{Latency: 60 * time.Millisecond})
	t0 := time.Now()
	got := e.do(t, req{service: "background", method: "POST", path: "/nope"})
	if d := time.Since(t0); d < 60*time.Millisecond || got.status != 404 {
		t.Errorf("reply after %v: %d", d, got.status)
	}
}

func TestStartAndClose(t *testing.T) {
	s, err := mojodexstub.Start(mojodexstub.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	b, g := s.BackendURL(), s.BackgroundURL()
	if !strings.HasPrefix(b, "http://127.0.0.1:") || !strings.HasPrefix(g, "http://127.0.0.1:") || b == g {
		t.Fatalf("URLs %q %q", b, g)
	}
	// Close cuts a pending delay short.
	s.Inject("/extract_todos", mojodexstub.Fault{Delay: 10 * time.Second})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	done := make(chan int, 1)
	go func() {
		res, err := c.Post(g+"/extract_todos", "application/json", strings.NewReader(`{"datetime":"`+now+`"}`))
		if err != nil {
			done <- -1
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	for deadline := time.Now().Add(2 * time.Second); len(s.Calls()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the stub")
		}
	}
	t0 := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case st := <-done:
		if st != 200 {
			t.Errorf("in-flight request ended with %d", st)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("in-flight request still pending after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Post(b+"/extract_todos", "application/json", strings.NewReader("{}")); err == nil {
		t.Error("backend still serving after Close")
	}
}

func TestHTTPTestServerMount(t *testing.T) {
	s := mojodexstub.New(mojodexstub.Options{Secret: secret})
	srv := httptest.NewServer(s.Background())
	defer srv.Close()
	res, err := srv.Client().Post(srv.URL+"/extract_todos", "application/json", strings.NewReader(`{"datetime":"`+now+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("status %d", res.StatusCode)
	}
	s.SetDown(true)
	if res, err := srv.Client().Post(srv.URL+"/extract_todos", "application/json", strings.NewReader(`{"datetime":"`+now+`"}`)); err == nil {
		res.Body.Close()
		t.Error("answered while down")
	}
}

func TestDefaultBacklog(t *testing.T) {
	d := mojodexstub.DefaultBacklog()
	want := map[string]int{
		"/check_expired_purchases":                  60,
		"/events_generation":                        120,
		"/check_disengaged_free_trial_users":        75,
		"/home_chat":                                110,
		"/relaunch_locked_workflow_step_executions": 2,
		"/extract_todos":                            3,
		"/reschedule_todo":                          4,
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s: %d, want %d", k, d[k], v)
		}
	}
	d["/home_chat"] = 1
	if mojodexstub.DefaultBacklog()["/home_chat"] != 110 {
		t.Error("DefaultBacklog shares its map")
	}
}

func TestConcurrentUse(t *testing.T) {
	const total = 400
	e := start(t, mojodexstub.Options{Backlog: map[string]int{"/check_expired_purchases": total}})
	e.tr.MaxIdleConnsPerHost = 16
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := routes()[0].req()
			r.query = url.Values{"n_purchases": {"7"}}
			for {
				got, err := e.send(context.Background(), r)
				if err != nil {
					t.Error(err)
					return
				}
				l := got.obj["purchase_pks"].([]any)
				mu.Lock()
				for _, v := range l {
					seen[int(v.(float64))]++
				}
				mu.Unlock()
				if len(l) < 7 {
					return
				}
			}
		}()
	}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				e.s.SetEmailConfigured(j%2 == 0)
				e.s.SetAlwaysFull("/home_chat", j%2 == 1)
				e.s.SetBacklog("/extract_todos", j)
				e.s.Inject("/reschedule_todo", mojodexstub.Fault{Status: 500 + i})
				_ = e.s.Calls()
				_ = e.s.CallsTo("/home_chat")
				rt := routes()[2+j%7]
				if _, err := e.send(context.Background(), rt.req()); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != total {
		t.Errorf("drained %d distinct pks, want %d", len(seen), total)
	}
	for pk, n := range seen {
		if n != 1 || pk < 1 || pk > total {
			t.Errorf("pk %d seen %d times", pk, n)
		}
	}
}
