package statuspage_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/statuspage"
	"github.com/mojodex/mojodex-scheduler/task"
	"golang.org/x/net/html"
	"google.golang.org/protobuf/encoding/protojson"
)

// actionsTaken says whether anything was done to steady: a run beyond
// its schedule, or a pause.
func actionsTaken(f *fixture, scheduledRuns int64) bool {
	synctest.Wait()
	return f.runs["steady"].Load() != scheduledRuns || f.status("steady").State == task.StatePaused
}

// Without a token, no action is possible: the forms' routes, the API's
// and the login refuse, and nothing happens.
func TestActionsOffWithoutToken(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		before := f.runs["steady"].Load()
		b := f.browser()
		if r := b.get("/login"); r.Code != http.StatusNotFound {
			t.Errorf("GET /login: %d", r.Code)
		}
		if r := b.login(testToken); r.Code != http.StatusForbidden || len(b.cookies) != 0 {
			t.Errorf("POST /login: %d, cookies %v", r.Code, b.cookies)
		}
		for _, act := range []string{"trigger", "pause", "resume"} {
			if r := b.do(http.MethodPost, "/tasks/steady/"+act, url.Values{"csrf": {"x"}}, nil); r.Code != http.StatusForbidden ||
				!strings.Contains(r.Body, "MOJODEX_SCHEDULER_UI_TOKEN") {
				t.Errorf("form %s: %d", act, r.Code)
			}
			if r := f.do(http.MethodPost, "/api/v1/tasks/steady/"+act, nil, bearer(testToken)); r.Code != http.StatusForbidden {
				t.Errorf("API %s: %d", act, r.Code)
			}
		}
		if actionsTaken(f, before) {
			t.Errorf("an action was carried out")
		}
		page := parse(t, b.get("/tasks/steady").Body)
		if len(findAll(page, "form")) != 0 || !strings.Contains(text(page), "Read-only") {
			t.Errorf("the read-only task page offers forms, or does not say it is read-only")
		}
	})
}

// The form actions need a session, the session's CSRF token and a
// same-origin request; with all three they happen.
func TestFormActions(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		before := f.runs["steady"].Load()
		trigger := "/tasks/steady/trigger"

		anon := f.browser()
		if r := anon.get("/tasks/steady"); len(findAll(parse(t, r.Body), "form")) != 0 {
			t.Errorf("a logged-out browser is offered action forms")
		}
		if r := anon.do(http.MethodPost, trigger, url.Values{}, nil); r.Code != http.StatusForbidden || !strings.Contains(r.Body, "Log in") {
			t.Errorf("no session: %d", r.Code)
		}

		wrong := f.browser()
		r := wrong.login("not-the-token-at-all")
		if r.Code != http.StatusForbidden || len(wrong.cookies) != 0 || !strings.Contains(r.Body, "not the token") {
			t.Errorf("wrong token at login: %d, cookies %v", r.Code, wrong.cookies)
		}

		b := f.browser()
		r = b.login(testToken)
		if r.Code != http.StatusSeeOther || r.Header.Get("Location") != "/tasks/steady" {
			t.Fatalf("login: %d %q", r.Code, r.Header.Get("Location"))
		}
		c := b.cookies["mojodex_scheduler_session"]
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" || strings.Contains(c.Value, testToken) {
			t.Fatalf("session cookie %+v", c)
		}
		csrf := b.csrf("/tasks/steady")

		if r := b.do(http.MethodPost, trigger, url.Values{}, nil); r.Code != http.StatusForbidden {
			t.Errorf("no CSRF token: %d", r.Code)
		}
		if r := b.do(http.MethodPost, trigger, url.Values{"csrf": {csrf + "x"}}, nil); r.Code != http.StatusForbidden {
			t.Errorf("wrong CSRF token: %d", r.Code)
		}
		other := f.browser()
		other.login(testToken)
		if r := other.do(http.MethodPost, trigger, url.Values{"csrf": {csrf}}, nil); r.Code != http.StatusForbidden {
			t.Errorf("another session's CSRF token: %d", r.Code)
		}
		crossSite := func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }
		if r := b.do(http.MethodPost, trigger, url.Values{"csrf": {csrf}}, crossSite); r.Code != http.StatusForbidden {
			t.Errorf("cross-site request: %d", r.Code)
		}
		otherOrigin := func(r *http.Request) {
			r.Header.Del("Sec-Fetch-Site")
			r.Header.Set("Origin", "http://evil.example")
		}
		if r := b.do(http.MethodPost, trigger, url.Values{"csrf": {csrf}}, otherOrigin); r.Code != http.StatusForbidden {
			t.Errorf("request from another origin: %d", r.Code)
		}
		if r := b.do(http.MethodPost, "/tasks/steady/delete", url.Values{"csrf": {csrf}}, nil); r.Code != http.StatusNotFound {
			t.Errorf("unknown action: %d", r.Code)
		}
		if actionsTaken(f, before) {
			t.Fatalf("a refused request did something")
		}

		// Trigger: a manual run appears.
		r = b.do(http.MethodPost, trigger, url.Values{"csrf": {csrf}}, nil)
		if r.Code != http.StatusSeeOther || r.Header.Get("Location") != "/tasks/steady?done=started" {
			t.Fatalf("trigger: %d %q", r.Code, r.Header.Get("Location"))
		}
		synctest.Wait()
		if n := f.runs["steady"].Load(); n != before+1 {
			t.Errorf("%d runs after the trigger, want %d", n, before+1)
		}
		page := parse(t, b.get("/tasks/steady?done=started").Body)
		runs := findAll(findByID(t, page, "runs"), "tr")
		if len(runs) < 2 || !strings.Contains(text(runs[1]), "manual") || !strings.Contains(text(page), "Run started") {
			t.Errorf("the manual run is not shown first: %q", text(findByID(t, page, "runs")))
		}

		// Pause, then resume.
		r = b.do(http.MethodPost, "/tasks/steady/pause", url.Values{"csrf": {csrf}}, nil)
		if r.Code != http.StatusSeeOther || f.status("steady").State != task.StatePaused {
			t.Fatalf("pause: %d, state %s", r.Code, f.status("steady").State)
		}
		st := row(t, parse(t, b.get("/").Body), "steady")
		if !hasClass(st, "paused") || !strings.Contains(text(st), "paused") {
			t.Errorf("paused row %q", text(st))
		}
		if forms := findAll(parse(t, b.get("/tasks/steady").Body), "form"); !hasAction(forms, "/tasks/steady/resume") || hasAction(forms, "/tasks/steady/pause") {
			t.Errorf("a paused task should offer resume, not pause")
		}
		r = b.do(http.MethodPost, "/tasks/steady/resume", url.Values{"csrf": {csrf}}, nil)
		if r.Code != http.StatusSeeOther || f.status("steady").State != task.StateScheduled {
			t.Errorf("resume: %d, state %s", r.Code, f.status("steady").State)
		}

		// Triggering a failed task is refused with 409.
		if r := b.do(http.MethodPost, "/tasks/crashy/trigger", url.Values{"csrf": {csrf}}, nil); r.Code != http.StatusConflict {
			t.Errorf("trigger of a failed task: %d", r.Code)
		}
		if r := b.do(http.MethodPost, "/tasks/nope/trigger", url.Values{"csrf": {csrf}}, nil); r.Code != http.StatusNotFound {
			t.Errorf("trigger of an unknown task: %d", r.Code)
		}

		// Logging out ends the session.
		if r := b.do(http.MethodPost, "/logout", url.Values{"csrf": {csrf}}, nil); r.Code != http.StatusSeeOther || len(b.cookies) != 0 {
			t.Errorf("logout: %d, cookies %v", r.Code, b.cookies)
		}

		// Each action is logged with the task and the remote address; the
		// token never is.
		logs := f.logs.String()
		for _, want := range []string{`"task":"steady","action":"trigger","remote":"192.0.2.1:1234","via":"form","started":true`,
			`"task":"steady","action":"pause"`, `"task":"steady","action":"resume"`, `"reason":"missing or wrong CSRF token"`, `"reason":"wrong token"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %s", want)
			}
		}
		if strings.Contains(logs, testToken) || strings.Contains(logs, csrf) {
			t.Errorf("the token or a CSRF token was logged")
		}
	}, statuspage.WithToken(testToken))
}

func hasAction(forms []*html.Node, action string) bool {
	for _, f := range forms {
		if attr(f, "action") == action {
			return true
		}
	}
	return false
}

// The API's actions need the bearer token and answer with the control
// plane's messages.
func TestAPIActions(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		before := f.runs["steady"].Load()
		trigger := "/api/v1/tasks/steady/trigger"
		r := f.do(http.MethodPost, trigger, nil, nil)
		if r.Code != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("no token: %d %q", r.Code, r.Header.Get("WWW-Authenticate"))
		}
		var refused controlv1.TriggerTaskResponse
		if err := protojson.Unmarshal([]byte(r.Body), &refused); err != nil || refused.GetError().GetMessage() == "" {
			t.Errorf("a refusal is not a TriggerTaskResponse with its error: %v %s", err, r.Body)
		}
		if r := f.do(http.MethodPost, trigger, nil, bearer("wrong-token-0123456789")); r.Code != http.StatusForbidden {
			t.Errorf("wrong token: %d", r.Code)
		}
		// A session cookie is not enough for the API's actions.
		b := f.browser()
		b.login(testToken)
		if r := b.do(http.MethodPost, trigger, nil, nil); r.Code != http.StatusUnauthorized {
			t.Errorf("a session without bearer token: %d", r.Code)
		}
		if r := f.do(http.MethodGet, trigger, nil, bearer(testToken)); r.Code == http.StatusOK {
			t.Errorf("GET of an action was served")
		}
		if actionsTaken(f, before) {
			t.Fatalf("a refused request did something")
		}

		r = f.do(http.MethodPost, trigger, nil, bearer(testToken))
		var tr controlv1.TriggerTaskResponse
		if err := protojson.Unmarshal([]byte(r.Body), &tr); r.Code != http.StatusOK || err != nil || !tr.GetStarted() || tr.GetError() != nil {
			t.Fatalf("trigger: %d %v %s", r.Code, err, r.Body)
		}
		synctest.Wait()
		if n := f.runs["steady"].Load(); n != before+1 {
			t.Errorf("%d runs, want %d", n, before+1)
		}

		r = f.do(http.MethodPost, "/api/v1/tasks/steady/pause", nil, bearer(testToken))
		var pr controlv1.TaskControlResponse
		if err := protojson.Unmarshal([]byte(r.Body), &pr); r.Code != http.StatusOK || err != nil || pr.GetTask().GetState() != "paused" {
			t.Fatalf("pause: %d %v %s", r.Code, err, r.Body)
		}
		if f.status("steady").State != task.StatePaused {
			t.Errorf("steady is not paused")
		}
		r = f.do(http.MethodPost, "/api/v1/tasks/steady/resume", nil, bearer(testToken))
		if err := protojson.Unmarshal([]byte(r.Body), &pr); r.Code != http.StatusOK || err != nil || pr.GetTask().GetState() != "scheduled" {
			t.Errorf("resume: %d %v %s", r.Code, err, r.Body)
		}

		r = f.do(http.MethodPost, "/api/v1/tasks/crashy/trigger", nil, bearer(testToken))
		if err := protojson.Unmarshal([]byte(r.Body), &tr); r.Code != http.StatusConflict || err != nil || tr.GetError().GetCode() != controlv1.Code_FAILED_PRECONDITION {
			t.Errorf("trigger of a failed task: %d %s", r.Code, r.Body)
		}
		r = f.do(http.MethodPost, "/api/v1/tasks/nope/pause", nil, bearer(testToken))
		if err := protojson.Unmarshal([]byte(r.Body), &pr); r.Code != http.StatusNotFound || err != nil || pr.GetError().GetCode() != controlv1.Code_UNKNOWN_TASK {
			t.Errorf("pause of an unknown task: %d %s", r.Code, r.Body)
		}
		if r := f.do(http.MethodPost, "/api/v1/tasks/steady/explode", nil, bearer(testToken)); r.Code != http.StatusNotFound {
			t.Errorf("unknown action: %d", r.Code)
		}
		if !strings.Contains(f.logs.String(), `"task":"steady","action":"trigger","remote":"192.0.2.1:1234","via":"api"`) {
			t.Errorf("the API's trigger is not logged")
		}
		if strings.Contains(f.logs.String(), testToken) {
			t.Errorf("the token was logged")
		}
	}, statuspage.WithToken(testToken))
}

// Wrong tokens are throttled: past a burst, even the right token waits.
func TestWrongTokensAreThrottled(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		for range 10 {
			if r := f.do(http.MethodPost, "/api/v1/tasks/steady/pause", nil, bearer("guess-0123456789abcdef")); r.Code != http.StatusForbidden {
				t.Fatalf("guess: %d", r.Code)
			}
		}
		if r := f.do(http.MethodPost, "/api/v1/tasks/steady/pause", nil, bearer("guess-0123456789abcdef")); r.Code != http.StatusTooManyRequests {
			t.Errorf("11th guess: %d", r.Code)
		}
		if r := f.browser().login(testToken); r.Code != http.StatusTooManyRequests {
			t.Errorf("login while throttled: %d", r.Code)
		}
		time.Sleep(2 * time.Second)
		if r := f.browser().login(testToken); r.Code != http.StatusSeeOther {
			t.Errorf("login after a pause: %d", r.Code)
		}
	}, statuspage.WithToken(testToken))
}

// Sessions end after 12 hours; a cookie that was not signed with the
// token's key is no session.
func TestSessionExpiry(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	run(t, func(t *testing.T, f *fixture) {
		b := f.browser()
		b.login(testToken)
		csrf := b.csrf("/tasks/steady")
		offset.Store(int64(12*time.Hour - time.Second))
		if r := b.do(http.MethodPost, "/tasks/steady/pause", url.Values{"csrf": {csrf}}, nil); r.Code != http.StatusSeeOther {
			t.Errorf("before expiry: %d", r.Code)
		}
		offset.Store(int64(12*time.Hour + time.Second))
		if r := b.do(http.MethodPost, "/tasks/steady/resume", url.Values{"csrf": {csrf}}, nil); r.Code != http.StatusForbidden {
			t.Errorf("after expiry: %d", r.Code)
		}
		offset.Store(0)
		forged := f.browser()
		c := *b.cookies["mojodex_scheduler_session"]
		c.Value = strings.Replace(c.Value, ".", ".A", 1)
		forged.cookies[c.Name] = &c
		if r := forged.do(http.MethodPost, "/tasks/steady/resume", url.Values{"csrf": {csrf}}, nil); r.Code != http.StatusForbidden {
			t.Errorf("forged cookie: %d", r.Code)
		}
	}, statuspage.WithToken(testToken), statuspage.WithClock(clock))
}

// Over TLS the session cookie is Secure.
func TestSecureCookieOverTLS(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		r := f.do(http.MethodPost, "https://example.com/login", url.Values{"token": {testToken}}, nil)
		cs := r.resp.Cookies()
		if r.Code != http.StatusSeeOther || len(cs) != 1 || !cs[0].Secure {
			t.Errorf("login over TLS: %d, cookies %+v", r.Code, cs)
		}
	}, statuspage.WithToken(testToken))
}

// With auth "all", every page and JSON route needs the token (a session or
// a bearer token); the login form and the assets do not.
func TestAuthAll(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		for _, target := range []string{"/", "/tasks/steady"} {
			r := f.get(target)
			if r.Code != http.StatusSeeOther || r.Header.Get("Location") != "/login?next="+url.QueryEscape(target) {
				t.Errorf("GET %s without a session: %d %q", target, r.Code, r.Header.Get("Location"))
			}
			if strings.Contains(r.Body, "steady") && target == "/" {
				t.Errorf("GET %s leaks the task list", target)
			}
		}
		for _, target := range []string{"/api/v1/tasks", "/api/v1/tasks/steady"} {
			if r := f.get(target); r.Code != http.StatusUnauthorized || strings.Contains(r.Body, `"steady"`) {
				t.Errorf("GET %s without a token: %d", target, r.Code)
			}
			if r := f.do(http.MethodGet, target, nil, bearer("wrong-token-0123456789")); r.Code != http.StatusForbidden {
				t.Errorf("GET %s with a wrong token: %d", target, r.Code)
			}
			if r := f.do(http.MethodGet, target, nil, bearer(testToken)); r.Code != http.StatusOK {
				t.Errorf("GET %s with the token: %d", target, r.Code)
			}
		}
		if r := f.do(http.MethodGet, "/", nil, bearer("wrong-token-0123456789")); r.Code != http.StatusForbidden {
			t.Errorf("page with a wrong bearer token: %d", r.Code)
		}
		if r := f.do(http.MethodGet, "/", nil, bearer(testToken)); r.Code != http.StatusOK {
			t.Errorf("page with the bearer token: %d", r.Code)
		}
		for _, target := range []string{"/login", "/assets/style.css", "/assets/app.js"} {
			if r := f.get(target); r.Code != http.StatusOK {
				t.Errorf("GET %s: %d", target, r.Code)
			}
		}
		b := f.browser()
		b.login(testToken)
		for _, target := range []string{"/", "/tasks/steady", "/api/v1/tasks", "/api/v1/tasks/steady"} {
			if r := b.get(target); r.Code != http.StatusOK {
				t.Errorf("GET %s with a session: %d", target, r.Code)
			}
		}
	}, statuspage.WithToken(testToken), statuspage.WithAuth(statuspage.AuthAll))
}

// With auth "actions" (the default), reading needs no token.
func TestReadOnlyPagesNeedNoToken(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		for _, target := range []string{"/", "/tasks/steady", "/api/v1/tasks", "/api/v1/tasks/steady"} {
			if r := f.get(target); r.Code != http.StatusOK {
				t.Errorf("GET %s: %d", target, r.Code)
			}
		}
		doc := parse(t, f.get("/tasks/steady").Body)
		if len(findAll(doc, "form")) != 0 || !strings.Contains(text(doc), "Log in to run, pause or resume") {
			t.Errorf("a logged-out visitor should be offered to log in, and no forms")
		}
	}, statuspage.WithToken(testToken))
}
