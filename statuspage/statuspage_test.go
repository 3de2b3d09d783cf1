package statuspage_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anthdm/hollywood/actor"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/statuspage"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"golang.org/x/net/html"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// run starts the standard scheduler and page inside a bubble, lets three
// minutes of virtual time pass (steady and broken run three times, crashy
// ends failed, the email gate is known closed), then calls test.
func run(t *testing.T, test func(t *testing.T, f *fixture), opts ...statuspage.Option) {
	synctest.Test(t, func(t *testing.T) {
		runs := map[string]*atomic.Int64{}
		f := newFixture(t, standardTasks(t, runs), runs, opts...)
		defer f.stop()
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		test(t, f)
	})
}

// Every page and JSON route answers with its status and content type; the
// JSON decodes into the control plane's messages and says what the
// supervisor says.
func TestRoutes(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		for _, c := range []struct {
			target string
			code   int
			ctype  string
		}{
			{"/", 200, "text/html; charset=utf-8"},
			{"/tasks/steady", 200, "text/html; charset=utf-8"},
			{"/tasks/send-todo-daily-emails", 200, "text/html; charset=utf-8"},
			{"/tasks/crashy", 200, "text/html; charset=utf-8"},
			{"/tasks/no-such-task", 404, "text/html; charset=utf-8"},
			{"/api/v1/tasks", 200, "application/json"},
			{"/api/v1/tasks/steady", 200, "application/json"},
			{"/api/v1/tasks/no-such-task", 404, "application/json"},
			{"/login", 404, "text/html; charset=utf-8"}, // no token: no login
			{"/nothing/here", 404, "text/html; charset=utf-8"},
			{"/assets/style.css", 200, "text/css; charset=utf-8"},
			{"/assets/app.js", 200, "text/javascript; charset=utf-8"},
			{"/assets/favicon.svg", 200, "image/svg+xml"},
			{"/assets/nothing.css", 404, "text/plain; charset=utf-8"},
		} {
			r := f.get(c.target)
			if r.Code != c.code || r.Header.Get("Content-Type") != c.ctype {
				t.Errorf("GET %s: %d %q, want %d %q", c.target, r.Code, r.Header.Get("Content-Type"), c.code, c.ctype)
			}
		}

		// The list: every task, in the task set's order, equal to what the
		// supervisor answers ctl (the protobuf request of control/v1).
		var list controlv1.ListTasksResponse
		if err := protojson.Unmarshal([]byte(f.get("/api/v1/tasks").Body), &list); err != nil {
			t.Fatalf("/api/v1/tasks is not a ListTasksResponse: %v", err)
		}
		v, err := f.engine.Request(f.srv.PID(), &controlv1.ListTasksRequest{}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&list, v.(proto.Message)) {
			t.Errorf("/api/v1/tasks differs from the control plane's answer:\n%v\n%v", &list, v)
		}
		var names []string
		for _, tk := range list.GetTasks() {
			names = append(names, tk.GetName())
		}
		if want := []string{"steady", "broken", "crashy", "send-todo-daily-emails", "first-home-chat-of-week"}; !slices.Equal(names, want) {
			t.Errorf("tasks %v, want %v", names, want)
		}

		// One task: its runs, spec and next five fires.
		var one controlv1.GetTaskResponse
		if err := protojson.Unmarshal([]byte(f.get("/api/v1/tasks/steady").Body), &one); err != nil {
			t.Fatalf("/api/v1/tasks/steady is not a GetTaskResponse: %v", err)
		}
		v, err = f.engine.Request(f.srv.PID(), &controlv1.GetTaskRequest{Name: "steady"}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&one, v.(proto.Message)) {
			t.Errorf("/api/v1/tasks/steady differs from the control plane's answer")
		}
		tk := one.GetTask()
		if len(tk.GetRuns()) != 3 || len(tk.GetUpcoming()) != 5 || tk.GetSpec().GetEvery().AsDuration() != time.Minute {
			t.Errorf("steady: %d runs, %d upcoming, every %v; want 3, 5, 1m", len(tk.GetRuns()), len(tk.GetUpcoming()), tk.GetSpec().GetEvery())
		}
		for _, r := range tk.GetRuns() {
			if r.GetOutcome() != "ok" || r.GetItems() != 7 {
				t.Errorf("steady run: %v", r)
			}
		}

		// An unknown task: the error's code, in the same message type.
		var unknown controlv1.GetTaskResponse
		if err := protojson.Unmarshal([]byte(f.get("/api/v1/tasks/no-such-task").Body), &unknown); err != nil {
			t.Fatal(err)
		}
		if unknown.GetError().GetCode() != controlv1.Code_UNKNOWN_TASK || unknown.GetTask() != nil {
			t.Errorf("unknown task: %v", &unknown)
		}

		// The JSON is encoded as ctl -o json encodes it.
		b, err := statuspage.JSONOptions.Marshal(&list)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.get("/api/v1/tasks").Body; got != string(b)+"\n" {
			t.Errorf("the JSON is not in ctl's encoding")
		}
		if !strings.Contains(f.get("/api/v1/tasks").Body, `"next_fire"`) {
			t.Errorf("the JSON does not use the .proto's field names")
		}
	})
}

// The tasks page shows each task's schedule in words, state, next fire,
// last run and outcome strip; failed and gate-closed tasks stand out.
func TestTasksPage(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		doc := parse(t, f.get("/").Body)
		steady := row(t, doc, "steady")
		got := text(steady)
		for _, want := range []string{"every minute", "scheduled", "in 1 min", "ok", "just now", "7 items"} {
			if !strings.Contains(got, want) {
				t.Errorf("steady row %q lacks %q", got, want)
			}
		}
		if hasClass(steady, "alert") {
			t.Errorf("steady is marked as an alert")
		}
		cells := findAll(steady, "i")
		var outcomes []string
		for _, c := range cells {
			outcomes = append(outcomes, attr(c, "class"))
		}
		want := append(slices.Repeat([]string{"none"}, 17), "ok", "ok", "ok")
		if !slices.Equal(outcomes, want) {
			t.Errorf("steady's strip %v, want %v", outcomes, want)
		}

		crashy := row(t, doc, "crashy")
		if !hasClass(crashy, "failed") || !hasClass(crashy, "alert") || !strings.Contains(text(crashy), "failed") {
			t.Errorf("crashy row: class %q, text %q", attr(crashy, "class"), text(crashy))
		}
		gated := row(t, doc, "send-todo-daily-emails")
		if !hasClass(gated, "gated") || !hasClass(gated, "alert") || !strings.Contains(text(gated), "gate closed") ||
			!strings.Contains(text(gated), "email service is not configured") {
			t.Errorf("gated row: class %q, text %q", attr(gated, "class"), text(gated))
		}
		broken := row(t, doc, "broken")
		if !hasClass(broken, "last-failed") || hasClass(steady, "last-failed") {
			t.Errorf("a last run that failed does not mark its row (broken %q, steady %q)", attr(broken, "class"), attr(steady, "class"))
		}
		if !strings.Contains(text(broken), "failed") || len(findAll(broken, "i")) != statuspage.StripLength {
			t.Errorf("broken row: %q", text(broken))
		}
		var fails int
		for _, c := range findAll(broken, "i") {
			if attr(c, "class") == "failed" {
				fails++
			}
		}
		if fails != 3 {
			t.Errorf("broken's strip has %d failed runs, want 3", fails)
		}

		counts := text(findByID(t, doc, "counts"))
		for _, want := range []string{"5 tasks", "1 gate closed", "1 failed", "last run failed"} {
			if !strings.Contains(counts, want) {
				t.Errorf("counts %q lack %q", counts, want)
			}
		}
		// The operator finds the other endpoints from the page.
		var hrefs []string
		for _, a := range findAll(doc, "a") {
			hrefs = append(hrefs, attr(a, "href"))
		}
		for _, want := range []string{"/metrics", "/healthz", "/readyz", "/api/v1/tasks", "/tasks/steady"} {
			if !slices.Contains(hrefs, want) {
				t.Errorf("no link to %s", want)
			}
		}
		// Times are <time> elements with the UTC value on hover.
		for _, tm := range findAll(steady, "time") {
			at, err := time.Parse(time.RFC3339Nano, attr(tm, "datetime"))
			if err != nil || !strings.HasSuffix(attr(tm, "title"), " UTC") || attr(tm, "title") != at.UTC().Format("2006-01-02 15:04:05 UTC") {
				t.Errorf("time element: datetime %q, title %q", attr(tm, "datetime"), attr(tm, "title"))
			}
		}
	})
}

func findByID(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && attr(n, "id") == id {
			return n
		}
	}
	t.Fatalf("no element #%s", id)
	return nil
}

// The task page shows the spec, the next five fires and the last runs
// with their numbers.
func TestTaskPage(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		st := f.status("first-home-chat-of-week")
		doc := parse(t, f.get("/tasks/first-home-chat-of-week").Body)
		page := text(doc)
		for _, want := range []string{"PUT /home_chat", "offset", "n_users", "user_ids", "max_pages", "misfire", "overlap", "1h0m0s"} {
			if !strings.Contains(page, want) {
				t.Errorf("task page lacks %q", want)
			}
		}
		fires := findAll(findByID(t, doc, "upcoming"), "li")
		if len(fires) != 5 {
			t.Fatalf("%d next fires, want 5", len(fires))
		}
		for i, li := range fires {
			tm := findAll(li, "time")[0]
			if want := st.Upcoming[i].UTC().Format(time.RFC3339Nano); attr(tm, "datetime") != want {
				t.Errorf("fire %d: %s, want %s", i, attr(tm, "datetime"), want)
			}
		}

		doc = parse(t, f.get("/tasks/broken").Body)
		runs := findAll(findByID(t, doc, "runs"), "tr")[1:] // the header row first
		if len(runs) != 3 {
			t.Fatalf("%d runs listed, want 3", len(runs))
		}
		for _, tr := range runs {
			if !hasClass(tr, "failed") || !strings.Contains(text(tr), "failed") {
				t.Errorf("run row %q", text(tr))
			}
		}
	})
}

// A run in progress shows its page, offset and items on both pages; when
// it ends, its numbers are in the last run.
func TestRunInProgress(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		// The first page is answered at once, the second after 20 s.
		f.stub.Inject("/home_chat", mojodexstub.Fault{}, mojodexstub.Fault{Delay: 20 * time.Second})
		b := f.browser()
		b.login(testToken)
		r := b.do(http.MethodPost, "/tasks/first-home-chat-of-week/trigger", url.Values{"csrf": {b.csrf("/tasks/first-home-chat-of-week")}}, nil)
		if r.Code != http.StatusSeeOther {
			t.Fatalf("trigger: %d %s", r.Code, r.Body)
		}
		synctest.Wait()
		tr := row(t, parse(t, f.get("/").Body), "first-home-chat-of-week")
		if !hasClass(tr, "running") || !strings.Contains(text(tr), "1 page · offset 50 · 50 items") {
			t.Errorf("row while running: class %q, text %q", attr(tr, "class"), text(tr))
		}
		progress := text(findByID(t, parse(t, f.get("/tasks/first-home-chat-of-week").Body), "in-progress"))
		if !strings.Contains(progress, "1 page · offset 50 · 50 items") || !strings.Contains(progress, "manual") {
			t.Errorf("in progress: %q", progress)
		}
		time.Sleep(21 * time.Second)
		synctest.Wait()
		tr = row(t, parse(t, f.get("/").Body), "first-home-chat-of-week")
		if hasClass(tr, "running") || !strings.Contains(text(tr), "3 pages · 110 items") {
			t.Errorf("row after the run: class %q, text %q", attr(tr, "class"), text(tr))
		}
		if progress := text(findByID(t, parse(t, f.get("/tasks/first-home-chat-of-week").Body), "in-progress")); progress != "" {
			t.Errorf("still in progress: %q", progress)
		}
	}, statuspage.WithToken(testToken))
}

// A backend's error text is shown as text, in elements and in attributes:
// no markup of it reaches the page.
func TestHostileTextIsEscaped(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		for _, target := range []string{"/", "/tasks/broken"} {
			body := f.get(target).Body
			if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
				t.Errorf("%s: the error's markup is in the page", target)
			}
			doc := parse(t, body)
			scripts := findAll(doc, "script")
			if len(scripts) != 1 || !strings.HasPrefix(attr(scripts[0], "src"), "/assets/app.js?v=") || text(scripts[0]) != "" {
				t.Errorf("%s: scripts other than the page's own", target)
			}
			for _, img := range findAll(doc, "img") {
				if !strings.HasPrefix(attr(img, "src"), "/assets/favicon.svg") {
					t.Errorf("%s: an image from the error text: %q", target, attr(img, "src"))
				}
			}
			var asText, asTitle bool
			for n := range doc.Descendants() {
				if n.Type != html.ElementNode {
					continue
				}
				for _, a := range n.Attr {
					if strings.HasPrefix(a.Key, "on") {
						t.Errorf("%s: event handler attribute %s=%q", target, a.Key, a.Val)
					}
				}
				if strings.Contains(attr(n, "title"), hostile) {
					asTitle = true
				}
				if n.FirstChild != nil && n.FirstChild.Type == html.TextNode && strings.Contains(n.FirstChild.Data, hostile) {
					asText = true
				}
			}
			if !asText || !asTitle {
				t.Errorf("%s: the error text is not shown as text (%v) and in a title (%v)", target, asText, asTitle)
			}
		}
		// The JSON carries the text as a JSON string.
		var one controlv1.GetTaskResponse
		if err := protojson.Unmarshal([]byte(f.get("/api/v1/tasks/broken").Body), &one); err != nil {
			t.Fatal(err)
		}
		if one.GetTask().GetLastRun().GetError() != hostile {
			t.Errorf("JSON error text %q", one.GetTask().GetLastRun().GetError())
		}
	})
}

// Every response carries the security headers; pages and JSON are never
// stored, a versioned asset is cached for good.
func TestSecurityHeaders(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		assetURL := func(name string) string {
			for _, n := range append(findAll(parse(t, f.get("/").Body), "link"), findAll(parse(t, f.get("/").Body), "script")...) {
				for _, key := range []string{"href", "src"} {
					if v := attr(n, key); strings.HasPrefix(v, "/assets/"+name+"?v=") {
						return v
					}
				}
			}
			t.Fatalf("no link to %s", name)
			return ""
		}
		for _, c := range []struct {
			method, target string
			cache          string
		}{
			{"GET", "/", "no-store"},
			{"GET", "/tasks/steady", "no-store"},
			{"GET", "/tasks/nope", "no-store"},
			{"GET", "/api/v1/tasks", "no-store"},
			{"GET", "/api/v1/tasks/nope", "no-store"},
			{"GET", "/login", "no-store"},
			{"POST", "/login", "no-store"},
			{"POST", "/tasks/steady/trigger", "no-store"},
			{"POST", "/api/v1/tasks/steady/trigger", "no-store"},
			{"GET", "/nothing", "no-store"},
			{"GET", assetURL("style.css"), "public, max-age=31536000, immutable"},
			{"GET", assetURL("app.js"), "public, max-age=31536000, immutable"},
			{"GET", "/assets/app.js?v=old", "no-cache"},
		} {
			r := f.do(c.method, c.target, url.Values{}, nil)
			h := r.Header
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("%s %s: CSP %q lacks %q", c.method, c.target, csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "*") {
				t.Errorf("%s %s: CSP %q is not strict", c.method, c.target, csp)
			}
			for key, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "no-referrer",
				"Cache-Control":          c.cache,
			} {
				if got := h.Get(key); got != want {
					t.Errorf("%s %s: %s %q, want %q", c.method, c.target, key, got, want)
				}
			}
		}
		// An asset answers a revalidation without its body.
		etag := f.get(assetURL("style.css")).Header.Get("ETag")
		if r := f.do("GET", "/assets/style.css", nil, func(r *http.Request) { r.Header.Set("If-None-Match", etag) }); r.Code != http.StatusNotModified || r.Body != "" {
			t.Errorf("revalidation: %d", r.Code)
		}
	}, statuspage.WithToken(testToken))
}

// New refuses what cannot work.
func TestNewRefusesBadOptions(t *testing.T) {
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		t.Fatal(err)
	}
	pid := actor.NewPID(engine.Address(), "mojodex-scheduler/supervisor")
	for name, c := range map[string]struct {
		engine *actor.Engine
		pid    *actor.PID
		opts   []statuspage.Option
		want   string
	}{
		"no engine":       {nil, pid, nil, "needs an engine"},
		"no pid":          {engine, nil, nil, "needs the supervisor's PID"},
		"all, no token":   {engine, pid, []statuspage.Option{statuspage.WithAuth(statuspage.AuthAll)}, "needs a token"},
		"bad auth mode":   {engine, pid, []statuspage.Option{statuspage.WithAuth("some")}, `"some" is not one of actions, all`},
		"bad ask timeout": {engine, pid, []statuspage.Option{statuspage.WithAskTimeout(0)}, "must be positive"},
		"bad refresh":     {engine, pid, []statuspage.Option{statuspage.WithRefresh(time.Millisecond)}, "at least 500ms"},
		"nil clock":       {engine, pid, []statuspage.Option{statuspage.WithClock(nil)}, "needs a function"},
	} {
		if _, err := statuspage.New(c.engine, c.pid, c.opts...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}

// A supervisor that does not answer gives a 503 within the ask timeout,
// not a hung page.
func TestSupervisorNotAnswering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		engine, err := actor.NewEngine(actor.NewEngineConfig())
		if err != nil {
			t.Fatal(err)
		}
		h, err := statuspage.New(engine, actor.NewPID(engine.Address(), "nobody/here"), statuspage.WithAskTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		f := &fixture{t: t, h: h}
		start := time.Now()
		for _, target := range []string{"/", "/tasks/steady", "/api/v1/tasks", "/api/v1/tasks/steady"} {
			r := f.get(target)
			if r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body, "did not answer within 2s") {
				t.Errorf("%s: %d %s", target, r.Code, r.Body)
			}
		}
		if took := time.Since(start); took != 8*time.Second {
			t.Errorf("took %s, want 4 × 2s", took)
		}
	})
}

// slowHistory is a store whose run histories take a minute to read.
type slowHistory struct{ store.Store }

func (s slowHistory) History(name string, n int) ([]task.Run, error) {
	if n > 1 {
		time.Sleep(time.Minute)
	}
	return s.Store.History(name, n)
}

// When the histories cannot be read in time, the tasks page still comes
// within the ask timeout, each strip saying its history is unavailable.
func TestSlowHistories(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		engine, err := actor.NewEngine(actor.NewEngineConfig())
		if err != nil {
			t.Fatal(err)
		}
		specs := []task.Spec{
			{Name: "one", Every: time.Minute, Job: func(context.Context) (int, error) { return 1, nil }},
			{Name: "two", Every: time.Minute, Job: func(context.Context) (int, error) { return 2, nil }},
		}
		srv, err := supervisor.NewServer(engine, specs, nil, supervisor.WithStore(slowHistory{store.NewMemory()}))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
		h, err := statuspage.New(engine, srv.PID(), statuspage.WithAskTimeout(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		f := &fixture{t: t, h: h}
		start := time.Now()
		r := f.get("/")
		if took := time.Since(start); r.Code != http.StatusOK || took > 3*time.Second {
			t.Fatalf("GET /: %d after %s", r.Code, took)
		}
		doc := parse(t, r.Body)
		for _, name := range []string{"one", "two"} {
			if got := text(row(t, doc, name)); !strings.Contains(got, "history unavailable") || !strings.Contains(got, "scheduled") {
				t.Errorf("%s: %q", name, got)
			}
		}
		time.Sleep(2 * time.Minute) // the slow reads end before the bubble does
	})
}
