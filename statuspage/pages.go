package statuspage

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mojodex/mojodex-scheduler/task"
)

// This file serves the HTML pages, the login and the forms' actions.

// pageData is what the layout shows around a page's content.
type pageData struct {
	Title string
	// Section marks the page in the navigation and the body's class.
	Section string
	Auth    authView
	// RefreshMS is how often the page refreshes itself (0: never).
	RefreshMS int64
	// Rendered is when the page was rendered.
	Rendered when
	Flash    *flash
	Content  any
}

// authView is what the page shows of the session.
type authView struct {
	// Actions is true when a token is configured.
	Actions bool
	// LoggedIn is true with a valid session cookie; CSRF is then its
	// forms' token.
	LoggedIn bool
	CSRF     string
	// Next is the page to come back to after logging in.
	Next string
}

// flash is a one-line notice above a page's content.
type flash struct {
	// Kind is ok, warn or error (also the CSS class).
	Kind, Text string
}

func (s *server) authView(r *http.Request) authView {
	av := authView{Actions: s.auth.enabled(), Next: localPath(r.URL.RequestURI())}
	if sess, ok := s.auth.session(r); ok {
		av.LoggedIn, av.CSRF = true, sess.csrf
	}
	return av
}

// page renders a page in the layout.
func (s *server) page(w http.ResponseWriter, status int, name string, d pageData) {
	d.Section = name
	if d.Rendered.ISO == "" {
		d.Rendered = newWhen(s.opts.now(), s.opts.now())
	}
	if err := s.tmpl.render(w, status, name, d); err != nil {
		s.opts.log.Error().Err(err).Msg("status page")
	}
}

// messageContent is the content of a page that only says something.
type messageContent struct {
	Heading, Text string
	// Links are offered to go on from there.
	Links []link
}

type link struct{ Href, Text string }

// message renders a page that says what happened (an error, a refusal).
func (s *server) message(w http.ResponseWriter, av authView, status int, heading, text string, links ...link) {
	if len(links) == 0 {
		links = []link{{"/", "All tasks"}}
	}
	s.page(w, status, "message", pageData{
		Title: heading, Auth: av,
		Content: messageContent{Heading: heading, Text: text, Links: links},
	})
}

// read guards a page: under AuthAll it needs a session or a bearer token,
// and a browser without either is sent to the login form.
func (s *server) read(h func(http.ResponseWriter, *http.Request, authView)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		av := s.authView(r)
		if s.opts.auth == AuthAll && !av.LoggedIn {
			present, res := s.auth.bearer(r)
			switch {
			case !present:
				http.Redirect(w, r, "/login?next="+url.QueryEscape(av.Next), http.StatusSeeOther)
				return
			case res == tokenThrottled:
				w.Header().Set("Retry-After", "1")
				s.message(w, av, http.StatusTooManyRequests, "Too many wrong tokens", "Wait a few seconds and try again.")
				return
			case res != tokenRight:
				s.refused(r, "wrong bearer token")
				s.message(w, av, http.StatusForbidden, "Wrong token", "The bearer token is not the one this scheduler was given.")
				return
			}
		}
		h(w, r, av)
	}
}

// refused logs a refused request (never the token it carried).
func (s *server) refused(r *http.Request, why string) {
	s.opts.log.Warn().Str("remote", r.RemoteAddr).Str("method", r.Method).Str("path", r.URL.Path).
		Str("reason", why).Msg("status page: request refused")
}

// tasksContent is the tasks page's content.
type tasksContent struct {
	// Rows is the table's rows, rendered by renderRows.
	Rows    template.HTML
	Summary summary
}

func (s *server) refreshMS() int64 { return s.opts.refresh.Milliseconds() }

// tasksPage serves GET /: every task, with the strip of its last outcomes.
func (s *server) tasksPage(w http.ResponseWriter, r *http.Request, av authView) {
	list, err := s.list(r.Context())
	if err != nil {
		s.message(w, av, httpStatus(err), "The scheduler did not answer", err.Error())
		return
	}
	runs, errs := s.histories(r.Context(), list)
	now := s.opts.now()
	rows := make([]taskRow, len(list))
	for i, st := range list {
		rows[i] = newTaskRow(st, runs[i], errs[i], now, false)
	}
	html, err := s.tmpl.renderRows(rows)
	if err != nil {
		s.opts.log.Error().Err(err).Msg("status page")
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	s.page(w, http.StatusOK, "tasks", pageData{
		Title: "Tasks", Auth: av, RefreshMS: s.refreshMS(), Rendered: newWhen(now, now),
		Content: tasksContent{Rows: html, Summary: newSummary(list)},
	})
}

// taskPage serves GET /tasks/{name}.
func (s *server) taskPage(w http.ResponseWriter, r *http.Request, av authView) {
	name := r.PathValue("name")
	st, err := s.get(r.Context(), name, s.opts.ask)
	if err != nil {
		s.message(w, av, httpStatus(err), "Task "+name, err.Error())
		return
	}
	now := s.opts.now()
	s.page(w, http.StatusOK, "task", pageData{
		Title: st.Name, Auth: av, RefreshMS: s.refreshMS(), Rendered: newWhen(now, now),
		Flash:   doneFlash(r.URL.Query().Get("done"), st.Gate),
		Content: newTaskDetail(st, now),
	})
}

// doneFlash says what an action did, from the code its redirect carries.
// Only known codes are shown: the text is never taken from the URL.
func doneFlash(code string, gate task.Gate) *flash {
	switch code {
	case "":
		return nil
	case "started":
		return &flash{"ok", "Run started. It is listed under “In progress” while it runs, then under “Last runs”."}
	case "paused":
		return &flash{"ok", "Paused: no scheduled fire until the task is resumed (a trigger still runs it)."}
	case "resumed":
		return &flash{"ok", "Resumed: the task fires on its schedule again."}
	}
	if reason, ok := strings.CutPrefix(code, "skipped-"); ok && slices.Contains(task.SkipReasons, task.SkipReason(reason)) {
		return &flash{"warn", "Not started: " + task.SkipReason(reason).Describe(gate) + "."}
	}
	return nil
}

// formAction serves POST /tasks/{name}/{action} from the task page's
// buttons: it needs a session and the session's CSRF token, and a
// same-origin request.
func (s *server) formAction(w http.ResponseWriter, r *http.Request) {
	av := s.authView(r)
	name := r.PathValue("name")
	act, ok := parseAction(r.PathValue("action"))
	if !ok {
		s.notFound(w, r)
		return
	}
	back := link{taskURL(name), "Back to " + name}
	if !s.auth.enabled() {
		s.refused(r, "actions are off")
		s.message(w, av, http.StatusForbidden, "Actions are off",
			"This scheduler's status page is read-only: its actions are turned on by setting MOJODEX_SCHEDULER_UI_TOKEN.", back)
		return
	}
	if err := s.auth.origin.Check(r); err != nil {
		s.refused(r, "cross-origin request")
		s.message(w, av, http.StatusForbidden, "Refused", "The request came from another site.", back)
		return
	}
	sess, ok := s.auth.session(r)
	if !ok {
		s.refused(r, "no session")
		s.message(w, av, http.StatusForbidden, "Log in first",
			"Triggering, pausing and resuming tasks needs the status page's token.",
			link{"/login?next=" + url.QueryEscape(taskURL(name)), "Log in"}, back)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.message(w, av, http.StatusBadRequest, "Bad form", "The form could not be read.", back)
		return
	}
	if !sess.checkCSRF(r.PostForm.Get(csrfField)) {
		s.refused(r, "missing or wrong CSRF token")
		s.message(w, av, http.StatusForbidden, "The form has expired",
			"Reload the page and try again.", back)
		return
	}
	res := s.do(r.Context(), r, act, name, "form")
	if res.err != nil {
		s.message(w, av, httpStatus(res.err), "Could not "+string(act)+" "+name, res.err.Error(), back)
		return
	}
	done := map[action]string{actPause: "paused", actResume: "resumed"}[act]
	if act == actTrigger {
		done = "started"
		if !res.trigger.Started {
			done = "skipped-" + string(res.trigger.Reason)
		}
	}
	http.Redirect(w, r, taskURL(name)+"?done="+url.QueryEscape(done), http.StatusSeeOther)
}

// maxFormBytes bounds a form's body.
const maxFormBytes = 16 << 10

// loginContent is the login page's content.
type loginContent struct {
	Next  string
	Error string
}

// loginForm serves GET /login.
func (s *server) loginForm(w http.ResponseWriter, r *http.Request) {
	av := s.authView(r)
	if !s.auth.enabled() {
		s.message(w, av, http.StatusNotFound, "No login here",
			"This scheduler's status page is read-only: its actions are turned on by setting MOJODEX_SCHEDULER_UI_TOKEN.")
		return
	}
	s.page(w, http.StatusOK, "login", pageData{Title: "Log in", Auth: av,
		Content: loginContent{Next: localPath(r.URL.Query().Get("next"))}})
}

// login serves POST /login: the right token sets the session cookie.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	av := s.authView(r)
	if !s.auth.enabled() {
		s.refused(r, "actions are off")
		s.message(w, av, http.StatusForbidden, "No login here",
			"This scheduler's status page is read-only: its actions are turned on by setting MOJODEX_SCHEDULER_UI_TOKEN.")
		return
	}
	if err := s.auth.origin.Check(r); err != nil {
		s.refused(r, "cross-origin request")
		s.message(w, av, http.StatusForbidden, "Refused", "The request came from another site.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.message(w, av, http.StatusBadRequest, "Bad form", "The form could not be read.")
		return
	}
	next := localPath(r.PostForm.Get("next"))
	again := func(status int, text string) {
		s.page(w, status, "login", pageData{Title: "Log in", Auth: av, Content: loginContent{Next: next, Error: text}})
	}
	switch s.auth.checkToken(r.PostForm.Get("token")) {
	case tokenRight:
	case tokenThrottled:
		s.refused(r, "too many wrong tokens")
		w.Header().Set("Retry-After", "1")
		again(http.StatusTooManyRequests, "Too many wrong tokens lately: wait a few seconds and try again.")
		return
	default:
		s.refused(r, "wrong token")
		again(http.StatusForbidden, "That is not the token this scheduler was given.")
		return
	}
	value, err := s.auth.newSession()
	if err != nil {
		s.opts.log.Error().Err(err).Msg("status page: a session could not be created")
		again(http.StatusInternalServerError, "The session could not be created.")
		return
	}
	setSessionCookie(w, r, value)
	s.opts.log.Info().Str("remote", r.RemoteAddr).Msg("status page: logged in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout serves POST /logout.
func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	av := s.authView(r)
	if err := s.auth.origin.Check(r); err != nil {
		s.refused(r, "cross-origin request")
		s.message(w, av, http.StatusForbidden, "Refused", "The request came from another site.")
		return
	}
	if sess, ok := s.auth.session(r); ok {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil || !sess.checkCSRF(r.PostForm.Get(csrfField)) {
			s.refused(r, "missing or wrong CSRF token")
			s.message(w, av, http.StatusForbidden, "The form has expired", "Reload the page and try again.")
			return
		}
		s.opts.log.Info().Str("remote", r.RemoteAddr).Msg("status page: logged out")
	}
	clearSessionCookie(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// notFound serves every other path.
func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.message(w, s.authView(r), http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".",
		link{"/", "All tasks"}, link{"/metrics", "/metrics"}, link{"/healthz", "/healthz"}, link{"/readyz", "/readyz"})
}
