package statuspage_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/internal/stubclient"
	"github.com/mojodex/mojodex-scheduler/internal/syncbuf"
	"github.com/mojodex/mojodex-scheduler/internal/tasktest"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/statuspage"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
	"golang.org/x/net/html"
)

// The tests run a real supervisor in a hollywood engine inside a synctest
// bubble (virtual time), with in-process jobs and HTTP tasks served in
// memory by the stub of the Mojodex services, and call the status page's
// handler directly.

const (
	testToken  = "page-token-0123456789abcdef"
	stubSecret = "stub-secret-for-tests"
	// hostile is an error text a backend could send: it must show as text.
	hostile = `upstream said <script>alert(1)</script> then "><img src=x onerror=alert(2)>`
)

// fixture is a running scheduler and its status page.
type fixture struct {
	t      *testing.T
	engine *actor.Engine
	srv    *supervisor.Server
	stub   *mojodexstub.Stub
	h      http.Handler
	logs   *syncbuf.Buffer
	// runs counts the runs of each job task.
	runs map[string]*atomic.Int64
}

// standardTasks is the task set of most tests:
//   - steady: a job every minute that reports 7 items;
//   - broken: a job every minute that fails with a hostile error text;
//   - crashy: a job that panics on every run, so it ends failed;
//   - send-todo-daily-emails: the default HTTP task behind the email gate,
//     which the stub reports closed;
//   - first-home-chat-of-week: the default offset-paginated HTTP task.
func standardTasks(t *testing.T, runs map[string]*atomic.Int64) []task.Spec {
	count := func(name string) *atomic.Int64 {
		runs[name] = new(atomic.Int64)
		return runs[name]
	}
	steady, broken, crashy := count("steady"), count("broken"), count("crashy")
	return []task.Spec{
		{Name: "steady", Every: time.Minute, Job: func(context.Context) (int, error) {
			steady.Add(1)
			return 7, nil
		}},
		{Name: "broken", Every: time.Minute, Job: func(context.Context) (int, error) {
			broken.Add(1)
			return 0, errors.New(hostile)
		}},
		{Name: "crashy", Every: time.Second, Job: func(context.Context) (int, error) {
			crashy.Add(1)
			panic("crashy always crashes")
		}},
		tasktest.DefaultSpec(t, "send-todo-daily-emails"),
		tasktest.DefaultSpec(t, "first-home-chat-of-week"),
	}
}

// newFixture starts a scheduler with specs and a status page with opts.
// It must be called inside the synctest bubble; stop it before the bubble
// ends.
func newFixture(t *testing.T, specs []task.Spec, runs map[string]*atomic.Int64, opts ...statuspage.Option) *fixture {
	t.Helper()
	stub := mojodexstub.New(mojodexstub.Options{Secret: stubSecret, EmailConfigured: false, Backlog: mojodexstub.DefaultBacklog()})
	client := stubclient.New(t, stub, stubSecret, nil)
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := supervisor.NewServer(engine, specs, client)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	opts = append([]statuspage.Option{statuspage.WithLogger(zerolog.New(logs))}, opts...)
	h, err := statuspage.New(engine, srv.PID(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, engine: engine, srv: srv, stub: stub, h: h, logs: logs, runs: runs}
}

// stop shuts the scheduler down, so that no timer outlives the bubble.
func (f *fixture) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		f.t.Errorf("shutdown: %v", err)
	}
}

// status asks the supervisor directly (not through the page).
func (f *fixture) status(name string) task.Status {
	f.t.Helper()
	v, err := f.engine.Request(f.srv.PID(), supervisor.GetTask{Name: name}, 5*time.Second).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	r := v.(supervisor.TaskReply)
	if r.Err != nil {
		f.t.Fatal(r.Err)
	}
	return r.Task
}

// reply is a response of the handler.
type reply struct {
	Code   int
	Header http.Header
	Body   string
	resp   *http.Response
}

// do sends one request to the handler; mod may change it first.
func (f *fixture) do(method, target string, form url.Values, mod func(*http.Request)) reply {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if mod != nil {
		mod(r)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return reply{Code: resp.StatusCode, Header: resp.Header, Body: string(b), resp: resp}
}

func (f *fixture) get(target string) reply { return f.do(http.MethodGet, target, nil, nil) }

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// browser is a same-origin browser with a cookie jar of its own.
type browser struct {
	f       *fixture
	cookies map[string]*http.Cookie
}

func (f *fixture) browser() *browser { return &browser{f: f, cookies: map[string]*http.Cookie{}} }

func (b *browser) do(method, target string, form url.Values, mod func(*http.Request)) reply {
	b.f.t.Helper()
	r := b.f.do(method, target, form, func(r *http.Request) {
		for _, c := range b.cookies {
			r.AddCookie(c)
		}
		if method == http.MethodPost {
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			r.Header.Set("Origin", "http://example.com")
		}
		if mod != nil {
			mod(r)
		}
	})
	for _, c := range r.resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return r
}

func (b *browser) get(target string) reply { return b.do(http.MethodGet, target, nil, nil) }

// login logs the browser in with token and returns the login's reply.
func (b *browser) login(token string) reply {
	b.f.t.Helper()
	return b.do(http.MethodPost, "/login", url.Values{"token": {token}, "next": {"/tasks/steady"}}, nil)
}

// csrf reads the CSRF token of the forms of a page, as a browser submits it.
func (b *browser) csrf(page string) string {
	b.f.t.Helper()
	doc := parse(b.f.t, b.get(page).Body)
	for _, in := range findAll(doc, "input") {
		if attr(in, "name") == "csrf" {
			return attr(in, "value")
		}
	}
	b.f.t.Fatalf("no csrf field on %s", page)
	return ""
}

// parse parses an HTML page.
func parse(t *testing.T, body string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// findAll returns every element named tag under n, in document order.
func findAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.Data == tag {
			out = append(out, d)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

// text is the text content of n.
func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// row returns the tasks page's row of a task.
func row(t *testing.T, doc *html.Node, name string) *html.Node {
	t.Helper()
	for _, tr := range findAll(doc, "tr") {
		if hasClass(tr, "task") {
			for _, a := range findAll(tr, "a") {
				if text(a) == name {
					return tr
				}
			}
		}
	}
	t.Fatalf("no row for %s", name)
	return nil
}
