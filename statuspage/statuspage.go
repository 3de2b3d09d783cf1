// Package statuspage serves a scheduler's status page over HTTP: a tasks
// page (every task's schedule, state, next fire, last run and recent
// outcomes), a page per task (its spec, next fires, last runs and runs in
// progress), the same data as JSON, and, when a token is configured,
// buttons to trigger, pause and resume a task.
//
// Every answer comes from the supervisor actor, asked with engine.Request
// on each HTTP request; the page keeps no copy of any task's state. The
// JSON is the control plane's protobuf messages (control/v1) in protojson,
// the encoding `mojodex-scheduler ctl -o json` prints.
//
// The HTML is rendered by html/template (every value escaped) and served
// with a strict Content-Security-Policy; its CSS, script and icon are
// embedded, so the page works offline and loads nothing from elsewhere.
package statuspage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Auth modes (WithAuth).
const (
	// AuthActions needs the token for actions only; the pages and the JSON
	// are readable by whoever reaches the address (the default).
	AuthActions = "actions"
	// AuthAll needs the token for every page and every JSON route too
	// (the assets and the login form excepted).
	AuthAll = "all"
)

// Defaults of the options.
const (
	// DefaultAskTimeout bounds each question to the supervisor, and the
	// whole of the histories read for one tasks page.
	DefaultAskTimeout = 5 * time.Second
	// DefaultRefresh is how often an open page refreshes itself.
	DefaultRefresh = 5 * time.Second
)

// historyWorkers is how many GetTask requests the tasks pages have in
// flight at once, all pages together: well below the supervisor's limit
// of concurrent control requests (32), so that ctl and the other routes
// are still served while several browsers refresh.
const historyWorkers = 4

// Option configures New.
type Option func(*options) error

type options struct {
	log     zerolog.Logger
	token   string
	auth    string
	now     func() time.Time
	ask     time.Duration
	refresh time.Duration
}

// WithLogger sets the logger of the page's events: actions (with the task
// and the remote address) and refused logins. The token is never logged.
func WithLogger(l zerolog.Logger) Option {
	return func(o *options) error { o.log = l; return nil }
}

// WithToken turns the actions (trigger, pause, resume) on, behind token:
// a browser logs in with it (POST /login), an API client sends it as
// "Authorization: Bearer <token>". Empty: actions off (the default).
func WithToken(token string) Option {
	return func(o *options) error { o.token = token; return nil }
}

// WithAuth says what needs the token: AuthActions (the default) or AuthAll.
// AuthAll needs a token (WithToken).
func WithAuth(mode string) Option {
	return func(o *options) error {
		switch mode {
		case AuthActions, AuthAll:
			o.auth = mode
			return nil
		case "":
			o.auth = AuthActions
			return nil
		}
		return fmt.Errorf("statuspage: auth mode %q is not one of %s, %s", mode, AuthActions, AuthAll)
	}
}

// WithClock sets the clock that relative times ("in 4 min") and session
// expiry are computed from (tests); the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("statuspage: WithClock needs a function")
		}
		o.now = now
		return nil
	}
}

// WithAskTimeout bounds each question to the supervisor (default
// DefaultAskTimeout).
func WithAskTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("statuspage: ask timeout %s must be positive", d)
		}
		o.ask = d
		return nil
	}
}

// WithRefresh sets how often an open page refreshes itself (default
// DefaultRefresh); 0 turns the refresh off.
func WithRefresh(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || (d > 0 && d < 500*time.Millisecond) {
			return fmt.Errorf("statuspage: refresh %s must be 0 (off) or at least 500ms", d)
		}
		o.refresh = d
		return nil
	}
}

// server is the status page's handler.
type server struct {
	engine *actor.Engine
	pid    *actor.PID
	opts   options
	auth   *authenticator
	tmpl   *templates
	mux    *http.ServeMux
	// history bounds the GetTask requests of the tasks pages in flight.
	history chan struct{}
}

// New returns the status page's handler, asking the supervisor at pid in
// engine for every answer. It serves:
//
//	GET  /                                  the tasks page
//	GET  /tasks/{name}                      a task's page
//	GET  /api/v1/tasks                      protojson of control/v1 ListTasksResponse
//	GET  /api/v1/tasks/{name}               protojson of control/v1 GetTaskResponse
//	POST /tasks/{name}/trigger|pause|resume a form's action (session cookie and CSRF token)
//	POST /api/v1/tasks/{name}/trigger|pause|resume  the same, with a bearer token, as protojson
//	GET, POST /login; POST /logout          the session of a browser
//	GET  /assets/...                        the embedded CSS, script and icon
//
// Mount it at "/" of a mux that serves /metrics, /healthz and /readyz
// beside it: the pages link to those three.
func New(engine *actor.Engine, pid *actor.PID, opts ...Option) (http.Handler, error) {
	if engine == nil {
		return nil, errors.New("statuspage: New needs an engine")
	}
	if pid == nil {
		return nil, errors.New("statuspage: New needs the supervisor's PID")
	}
	o := options{log: zerolog.Nop(), auth: AuthActions, now: time.Now, ask: DefaultAskTimeout, refresh: DefaultRefresh}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.auth == AuthAll && o.token == "" {
		return nil, errors.New("statuspage: auth mode all needs a token (every page would be locked)")
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s := &server{
		engine:  engine,
		pid:     pid,
		opts:    o,
		auth:    newAuthenticator(o.token, o.now, rate.NewLimiter(rate.Every(time.Second), 10)),
		tmpl:    tmpl,
		history: make(chan struct{}, historyWorkers),
	}
	s.routes()
	return s, nil
}

func (s *server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.read(s.tasksPage))
	mux.HandleFunc("GET /tasks/{name}", s.read(s.taskPage))
	mux.HandleFunc("POST /tasks/{name}/{action}", s.formAction)
	mux.HandleFunc("GET /api/v1/tasks", s.readAPI(listReply, s.apiList))
	mux.HandleFunc("GET /api/v1/tasks/{name}", s.readAPI(getReply, s.apiGet))
	mux.HandleFunc("POST /api/v1/tasks/{name}/{action}", s.apiAction)
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /assets/{file}", s.tmpl.serveAsset)
	mux.HandleFunc("/", s.notFound)
	s.mux = mux
}

// ServeHTTP sets the security headers of every response, then routes.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	// Pages and JSON are never stored; the assets override this.
	h.Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows nothing but the page's own script, style,
// icon and fetches, and no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// ask sends one question to the supervisor and waits for the answer.
func (s *server) ask(ctx context.Context, msg any, timeout time.Duration) (any, error) {
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if err := ctx.Err(); err != nil || timeout <= 0 {
		return nil, &supervisor.Error{Code: supervisor.CodeUnavailable, Message: "the request ended before the scheduler answered"}
	}
	v, err := s.engine.Request(s.pid, msg, timeout).Result()
	if err != nil {
		return nil, &supervisor.Error{Code: supervisor.CodeUnavailable,
			Message: fmt.Sprintf("the scheduler did not answer within %s", timeout.Round(time.Millisecond))}
	}
	return v, nil
}

// unexpected is the error of a reply of the wrong type (a bug).
func unexpected(v any) error {
	return &supervisor.Error{Code: supervisor.CodeInternal, Message: fmt.Sprintf("unexpected reply %T from the scheduler", v)}
}

// list asks for every task's status.
func (s *server) list(ctx context.Context) ([]task.Status, error) {
	v, err := s.ask(ctx, supervisor.ListTasks{}, s.opts.ask)
	if err != nil {
		return nil, err
	}
	l, ok := v.(supervisor.TaskList)
	if !ok {
		return nil, unexpected(v)
	}
	return l.Tasks, l.Err
}

// get asks for one task's status with its history, spec and next fires.
// The status is returned with the error when the supervisor sent both.
func (s *server) get(ctx context.Context, name string, timeout time.Duration) (task.Status, error) {
	v, err := s.ask(ctx, supervisor.GetTask{Name: name}, timeout)
	if err != nil {
		return task.Status{}, err
	}
	r, ok := v.(supervisor.TaskReply)
	if !ok {
		return task.Status{}, unexpected(v)
	}
	return r.Task, r.Err
}

// histories reads the run history of every task for the outcome strips:
// one GetTask per task, at most historyWorkers in flight across all
// requests, all within one ask timeout. A task whose history was not read
// gets an error instead (its row says "history unavailable").
func (s *server) histories(ctx context.Context, list []task.Status) ([][]task.Run, []error) {
	runs := make([][]task.Run, len(list))
	errs := make([]error, len(list))
	ctx, cancel := context.WithTimeout(ctx, s.opts.ask)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(historyWorkers, len(list)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(list) {
					return
				}
				select {
				case s.history <- struct{}{}:
				case <-ctx.Done():
					errs[i] = errors.New("history not read in time")
					continue
				}
				st, err := s.get(ctx, list[i].Name, s.opts.ask)
				<-s.history
				if err != nil && supervisor.CodeOf(err) == supervisor.CodeUnavailable && ctx.Err() != nil {
					err = errors.New("history not read in time")
				}
				runs[i], errs[i] = st.History, err
			}
		})
	}
	wg.Wait()
	return runs, errs
}

// httpStatus maps an error of the supervisor to an HTTP status.
func httpStatus(err error) int {
	switch supervisor.CodeOf(err) {
	case 0:
		return http.StatusOK
	case supervisor.CodeUnknownTask:
		return http.StatusNotFound
	case supervisor.CodeInvalidArgument:
		return http.StatusBadRequest
	case supervisor.CodeFailedPrecondition:
		return http.StatusConflict
	case supervisor.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// action is an operator's action on a task.
type action string

const (
	actTrigger action = "trigger"
	actPause   action = "pause"
	actResume  action = "resume"
)

func parseAction(s string) (action, bool) {
	switch a := action(s); a {
	case actTrigger, actPause, actResume:
		return a, true
	}
	return "", false
}

// actionResult is what an action did.
type actionResult struct {
	trigger supervisor.TriggerReply
	task    supervisor.TaskReply
	err     error
}

// do carries an action out through the supervisor and logs it.
func (s *server) do(ctx context.Context, r *http.Request, a action, name, via string) actionResult {
	var res actionResult
	var msg any
	switch a {
	case actTrigger:
		msg = supervisor.TriggerTask{Name: name}
	case actPause:
		msg = supervisor.PauseTask{Name: name}
	case actResume:
		msg = supervisor.ResumeTask{Name: name}
	}
	v, err := s.ask(ctx, msg, s.opts.ask)
	switch rep := v.(type) {
	case nil:
		res.err = err
	case supervisor.TriggerReply:
		res.trigger, res.err = rep, rep.Err
	case supervisor.TaskReply:
		res.task, res.err = rep, rep.Err
	default:
		res.err = unexpected(v)
	}
	ev := s.opts.log.Info()
	if res.err != nil {
		ev = s.opts.log.Warn().Str("error", res.err.Error())
	}
	ev = ev.Str("task", name).Str("action", string(a)).Str("remote", r.RemoteAddr).Str("via", via)
	if a == actTrigger && res.err == nil {
		ev = ev.Bool("started", res.trigger.Started)
		if !res.trigger.Started {
			ev = ev.Str("reason", string(res.trigger.Reason))
		}
	}
	ev.Msg("status page: action")
	return res
}
