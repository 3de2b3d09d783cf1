package statuspage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

// This file turns the supervisor's answers (task.Status) into what the
// templates show. Nothing here is kept between requests.

// StripLength is how many recent outcomes the tasks page shows per task:
// as many runs as the supervisor keeps.
const StripLength = supervisor.HistorySize

// when is an instant as the pages show it: a <time> element whose text the
// browser rewrites in its own zone.
type when struct {
	// ISO is the machine value (RFC 3339, UTC); empty for the zero time.
	ISO string
	// UTC is the value shown on hover, and as the text without script.
	UTC string
	// Relative says it relative to the page's time ("in 4 min").
	Relative string
}

func newWhen(t, now time.Time) when {
	if t.IsZero() {
		return when{}
	}
	u := t.UTC()
	return when{
		ISO:      u.Format(time.RFC3339Nano),
		UTC:      u.Format("2006-01-02 15:04:05 UTC"),
		Relative: relativeWords(t, now),
	}
}

// The methods below render the instant as a <time> element whose text the
// page's script rewrites in the browser's zone (kind says how: rel, abs,
// short, run, both), the UTC value as its title and as the text a browser
// without script shows. They are built here, not by a template, because a
// tasks page of 1,000 tasks has thousands of them and each would cost a
// dozen template actions; every value is machine-made (formatted times,
// the page's own words) and is escaped all the same.

// Rel shows the instant relative to now ("in 4 min").
func (w when) Rel() template.HTML { return w.element("rel", w.Relative) }

// Abs shows the instant in full.
func (w when) Abs() template.HTML { return w.element("abs", w.UTC) }

// Both shows it relative to now, with the local time below.
func (w when) Both() template.HTML { return w.element("both", w.Relative) }

// Run shows a run's start to the second, with the day unless today.
func (w when) Run() template.HTML { return w.element("run", w.UTC) }

func (w when) element(kind, text string) template.HTML {
	if w.ISO == "" {
		return `<span class="muted">—</span>`
	}
	var b strings.Builder
	b.Grow(80 + len(w.ISO) + len(w.UTC) + len(text))
	b.WriteString(`<time datetime="`)
	b.WriteString(template.HTMLEscapeString(w.ISO))
	b.WriteString(`" title="`)
	b.WriteString(template.HTMLEscapeString(w.UTC))
	b.WriteString(`" data-fmt="`)
	b.WriteString(kind)
	b.WriteString(`">`)
	b.WriteString(template.HTMLEscapeString(text))
	b.WriteString(`</time>`)
	return template.HTML(b.String())
}

// stateView is a task's state in words, with the class that colours it.
type stateView struct {
	// Class is the state's CSS class (one of task.States, as a word).
	Class string
	// Label is the state in words ("gate closed").
	Label string
	// Detail says more: a run's progress, the gate, the restarts.
	Detail string
	// Alert marks states an operator must look at (failed, gate closed,
	// restarting).
	Alert bool
}

func newStateView(st task.Status) stateView {
	v := stateView{Class: string(st.State), Label: string(st.State)}
	switch st.State {
	case task.StateRunning:
		if len(st.Running) > 0 {
			v.Detail = progressWords(st.Running[0].Progress)
			if n := len(st.Running); n > 1 {
				v.Detail = fmt.Sprintf("%d runs; %s", n, v.Detail)
			}
		}
	case task.StateGated:
		v.Label, v.Alert = "gate closed", true
		v.Detail = fmt.Sprintf("the %s service is not configured", st.Gate)
	case task.StateFailed:
		v.Alert = true
		v.Detail = fmt.Sprintf("crashed too often (%d restarts); resume revives it", st.Restarts)
	case task.StateRestarting:
		v.Alert = true
		v.Detail = fmt.Sprintf("crashed; restart %d pending", st.Restarts+1)
	case task.StatePaused:
		v.Detail = "no scheduled fire until resumed"
	case task.StateScheduled:
		if st.Gate != task.GateNone && !st.GateKnown {
			v.Detail = fmt.Sprintf("waiting for the %s probe", st.Gate)
		}
	}
	return v
}

// progressWords says how far a run in progress has got.
func progressWords(p task.Progress) string {
	parts := []string{plural(p.Pages, "page", "pages")}
	if p.Offset > 0 {
		parts = append(parts, "offset "+strconv.Itoa(p.Offset))
	}
	parts = append(parts, plural(p.Items, "item", "items"))
	return strings.Join(parts, " · ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// runView is a finished run (or a recorded skip).
type runView struct {
	// Outcome is ok, failed or skipped (also the CSS class).
	Outcome string
	Start   when
	// Duration and Lateness in words; Lateness is empty for manual and
	// resumed runs.
	Duration, Lateness string
	Pages, Items       int
	// Status is the last HTTP status ("" when none).
	Status string
	// Err is why it failed or was skipped (untrusted text: a reply's body).
	Err string
	// Tags mark manual and resumed runs.
	Tags []string
	// Replica names the replica that finished it.
	Replica string
	// Summary says why a recorded skip was skipped, else it gives the
	// run's numbers ("420 ms · 3 pages · 120 items · HTTP 200").
	Summary string
	// Failure is why a run that was not skipped failed ("" otherwise).
	Failure string
}

func newRunView(r task.Run, now time.Time) runView {
	v := runView{
		Outcome:  string(r.Outcome),
		Start:    newWhen(r.Start, now),
		Duration: durationWords(r.Duration),
		Pages:    r.Pages,
		Items:    r.Items,
		Err:      r.Err,
		Replica:  r.Replica,
	}
	if r.Status != 0 {
		v.Status = strconv.Itoa(r.Status)
	}
	if !r.Manual && !r.Resumed {
		v.Lateness = durationWords(r.Lateness)
	}
	v.Tags = runTags(r.Manual, r.Resumed)
	if r.Outcome == task.OutcomeSkipped && r.Err == "" && r.Reason != "" {
		v.Err = r.Reason.Describe("")
	}
	if r.Outcome == task.OutcomeSkipped {
		v.Summary = v.Err
	} else {
		v.Failure = v.Err
		parts := []string{v.Duration}
		if r.Status != 0 {
			parts = append(parts, plural(r.Pages, "page", "pages"))
		}
		parts = append(parts, plural(r.Items, "item", "items"))
		if r.Status != 0 && r.Status != 200 {
			parts = append(parts, "HTTP "+v.Status)
		}
		v.Summary = strings.Join(parts, " · ")
	}
	return v
}

// runTags marks manual and resumed runs.
func runTags(manual, resumed bool) []string {
	var tags []string
	if manual {
		tags = append(tags, "manual")
	}
	if resumed {
		tags = append(tags, "resumed")
	}
	return tags
}

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// strip renders the squares of a task's last outcomes, oldest first,
// padded on the left to StripLength with empty squares; with titles, each
// square sums its run up on hover (the task page). It also counts the runs
// by outcome.
//
// It is built here rather than by a template range because a tasks page
// of 1,000 tasks has 20,000 squares, and html/template's per-action cost
// (reflection and contextual escaping) made that page take about 200 ms
// to render. Its safety does not rest on the template: the class of each
// square comes from a fixed vocabulary (never from the run), and the only
// other value, the title, is escaped for a double-quoted attribute by
// template.HTMLEscape. The tests feed a hostile error text through it.
func strip(history []task.Run, titles bool) (template.HTML, stripCounts) {
	if len(history) > StripLength {
		history = history[len(history)-StripLength:]
	}
	var b bytes.Buffer
	if titles {
		b.Grow(StripLength*24 + len(history)*112)
	} else {
		b.Grow(StripLength * 24)
	}
	for range StripLength - len(history) {
		b.WriteString(`<i class="none"></i>`)
	}
	var n stripCounts
	var title []byte
	for _, r := range history {
		switch r.Outcome {
		case task.OutcomeOK:
			n.OK++
		case task.OutcomeFailed:
			n.Failed++
		case task.OutcomeSkipped:
			n.Skipped++
		}
		b.WriteString(`<i class="`)
		b.WriteString(outcomeClass(r.Outcome))
		if titles {
			b.WriteString(`" title="`)
			title = appendRunTitle(title[:0], r)
			template.HTMLEscape(&b, title)
		}
		b.WriteString(`"></i>`)
	}
	n.Runs = len(history)
	return template.HTML(b.String()), n
}

// stripCounts counts the runs of a strip by outcome.
type stripCounts struct{ Runs, OK, Failed, Skipped int }

// String sums the strip up: "last 20 runs: 17 ok, 3 failed".
func (c stripCounts) String() string {
	if c.Runs == 0 {
		return "no run yet"
	}
	parts := make([]string, 0, 3)
	for _, p := range []struct {
		n    int
		word string
	}{{c.OK, "ok"}, {c.Failed, "failed"}, {c.Skipped, "skipped"}} {
		if p.n > 0 {
			parts = append(parts, strconv.Itoa(p.n)+" "+p.word)
		}
	}
	return "last " + plural(c.Runs, "run", "runs") + ", oldest first: " + strings.Join(parts, ", ")
}

// outcomeClass is the CSS class of an outcome, from a fixed vocabulary.
func outcomeClass(o task.Outcome) string {
	switch o {
	case task.OutcomeOK:
		return "ok"
	case task.OutcomeFailed:
		return "failed"
	case task.OutcomeSkipped:
		return "skipped"
	}
	return "other"
}

// appendRunTitle sums a run up in one line: outcome, start, duration,
// items, and the beginning of its error or skip reason.
func appendRunTitle(b []byte, r task.Run) []byte {
	b = append(b, r.Outcome...)
	at := r.Start
	if at.IsZero() {
		at = r.Slot
	}
	if !at.IsZero() {
		b = append(b, " · "...)
		b = at.UTC().AppendFormat(b, "2006-01-02 15:04:05 UTC")
	}
	if r.Manual {
		b = append(b, " · manual"...)
	}
	if r.Outcome != task.OutcomeSkipped {
		b = append(b, " · "...)
		b = append(b, durationWords(r.Duration)...)
		b = append(b, " · "...)
		b = strconv.AppendInt(b, int64(r.Items), 10)
		b = append(b, " items"...)
	}
	msg := r.Err
	if msg == "" && r.Outcome == task.OutcomeSkipped {
		msg = r.Reason.Describe("")
	}
	if msg != "" {
		b = append(b, " · "...)
		b = append(b, truncate(msg, 120)...)
	}
	return b
}

// taskRow is one line of the tasks page.
type taskRow struct {
	// Class is the row's CSS classes: "task", the state, "alert" for a
	// state to look at, "last-failed" when the last run failed.
	Class string
	Name  string
	URL   string
	// Schedule is the schedule in words, with the gate the task needs.
	Schedule string
	// ScheduleRaw is the supervisor's own description.
	ScheduleRaw string
	State       stateView
	Next        when
	Last        *runView
	// Strip is the squares of the last outcomes (see strip), when the
	// history was read; HistoryErr says why it was not.
	Strip      template.HTML
	HistoryErr string
	// CountsText counts the strip's runs by outcome, in words.
	CountsText string
}

func taskURL(name string) string { return "/tasks/" + url.PathEscape(name) }

func newTaskRow(st task.Status, history []task.Run, historyErr error, now time.Time, titles bool) taskRow {
	row := taskRow{
		Name:        st.Name,
		URL:         taskURL(st.Name),
		Schedule:    scheduleWords(st.Schedule),
		ScheduleRaw: st.Schedule,
		State:       newStateView(st),
		Next:        newWhen(st.Next, now),
	}
	if st.Gate != task.GateNone {
		row.Schedule += " · needs " + string(st.Gate)
	}
	row.Class = "task " + row.State.Class
	if row.State.Alert {
		row.Class += " alert"
	}
	if st.Last != nil && st.Last.Outcome == task.OutcomeFailed {
		row.Class += " last-failed"
	}
	if st.Last != nil {
		lv := newRunView(*st.Last, now)
		row.Last = &lv
	}
	if historyErr != nil {
		row.HistoryErr = historyErr.Error()
		return row
	}
	var counts stripCounts
	row.Strip, counts = strip(history, titles)
	row.CountsText = counts.String()
	return row
}

// summary counts the tasks by what an operator looks for first.
type summary struct {
	Tasks, Running, Paused, Failed, Gated, Restarting int
	// LastFailed counts the tasks whose last run failed.
	LastFailed int
}

func newSummary(list []task.Status) summary {
	s := summary{Tasks: len(list)}
	for _, st := range list {
		if st.Last != nil && st.Last.Outcome == task.OutcomeFailed {
			s.LastFailed++
		}
		switch st.State {
		case task.StateRunning:
			s.Running++
		case task.StatePaused:
			s.Paused++
		case task.StateFailed:
			s.Failed++
		case task.StateGated:
			s.Gated++
		case task.StateRestarting:
			s.Restarting++
		}
	}
	return s
}

// runningView is a run in progress.
type runningView struct {
	Slot, Start, Deadline when
	Progress              string
	Tags                  []string
}

// specItem is one line of the task page's spec table.
type specItem struct {
	Key, Value string
	// Code shows the value in a fixed-width font.
	Code bool
}

// specGroup is a titled part of the spec.
type specGroup struct {
	Title string
	Items []specItem
}

// taskDetail is the task page's content.
type taskDetail struct {
	Row      taskRow
	Spec     []specGroup
	Upcoming []when
	Runs     []runView // newest first
	Running  []runningView
	// Replicas is true when a run names its replica (a column then shows it).
	Replicas bool
	// CanPause and CanResume say which of the two actions applies.
	CanPause, CanResume, CanTrigger bool
}

func newTaskDetail(st task.Status, now time.Time) taskDetail {
	d := taskDetail{Row: newTaskRow(st, st.History, nil, now, true)}
	for _, at := range st.Upcoming {
		d.Upcoming = append(d.Upcoming, newWhen(at, now))
	}
	for _, r := range slices.Backward(st.History) {
		rv := newRunView(r, now)
		if rv.Replica != "" {
			d.Replicas = true
		}
		d.Runs = append(d.Runs, rv)
	}
	for _, r := range st.Running {
		d.Running = append(d.Running, runningView{
			Slot: newWhen(r.Slot, now), Start: newWhen(r.Start, now), Deadline: newWhen(r.Deadline, now),
			Progress: progressWords(r.Progress), Tags: runTags(r.Manual, r.Resumed),
		})
	}
	if st.Spec != nil {
		d.Spec = specGroups(st.Spec)
	}
	d.CanPause = st.State != task.StatePaused && st.State != task.StateFailed
	d.CanResume = st.State == task.StatePaused || st.State == task.StateFailed
	d.CanTrigger = st.State != task.StateFailed && st.State != task.StateRestarting
	return d
}

// specGroups lays a spec out as the task file would say it.
func specGroups(s *task.Spec) []specGroup {
	var groups []specGroup
	when := specGroup{Title: "Schedule"}
	add := func(g *specGroup, key, value string, code bool) {
		if value != "" {
			g.Items = append(g.Items, specItem{key, value, code})
		}
	}
	if s.Every != 0 {
		add(&when, "every", s.Every.String(), true)
	}
	add(&when, "at", s.At, true)
	if len(s.Weekdays) > 0 {
		names := make([]string, len(s.Weekdays))
		for i, w := range s.Weekdays {
			names[i] = strings.ToLower(w.String())
		}
		add(&when, "weekdays", strings.Join(names, ", "), true)
	}
	add(&when, "cron", s.Cron, true)
	if s.At != "" || s.Cron != "" {
		tz := s.Timezone
		if tz == "" {
			tz = task.DefaultTimezone
		}
		add(&when, "timezone", tz, true)
	}
	add(&when, "run_on_start", yesNo(s.RunOnStart), false)
	if s.Jitter > 0 {
		add(&when, "jitter", fmt.Sprintf("%s (this task's delay: %s)", s.Jitter, s.JitterDelay()), false)
	}
	groups = append(groups, when)

	if r := s.Request; r != nil {
		g := specGroup{Title: "Request"}
		add(&g, "service", string(r.Service), false)
		add(&g, "call", r.Method+" "+r.Path, true)
		auth := "no"
		if r.Auth {
			auth = "yes: the secret is sent as Authorization"
		}
		add(&g, "auth", auth, false)
		if len(r.Query) > 0 {
			keys := make([]string, 0, len(r.Query))
			for k := range r.Query {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			q := url.Values{}
			for _, k := range keys {
				q.Set(k, r.Query[k])
			}
			add(&g, "query", q.Encode(), true)
		}
		if body := bodyWords(r.Body); body != "" {
			add(&g, "body", body, true)
		}
		add(&g, "result", r.Result, true)
		groups = append(groups, g)
	} else if s.Job != nil {
		groups = append(groups, specGroup{Title: "Job", Items: []specItem{{"job", "an in-process Go function of the embedding program", false}}})
	}
	if p := s.Paginate; p != nil {
		g := specGroup{Title: "Pagination"}
		add(&g, "mode", string(p.Mode), true)
		add(&g, "size", strconv.Itoa(p.Size), true)
		add(&g, "size_field", p.SizeField, true)
		add(&g, "offset_field", p.OffsetField, true)
		add(&g, "result", p.Result, true)
		add(&g, "max_pages", strconv.Itoa(p.MaxPages), true)
		groups = append(groups, g)
	}
	pol := specGroup{Title: "Policies"}
	if s.EnabledIf != task.GateNone {
		add(&pol, "enabled_if", string(s.EnabledIf), true)
	}
	misfire := string(s.Misfire)
	if s.Misfire == task.MisfireOnce && s.MisfireGrace > 0 {
		misfire += " (grace " + s.MisfireGrace.String() + ")"
	}
	add(&pol, "misfire", misfire, true)
	add(&pol, "overlap", string(s.Overlap), true)
	if s.Timeout > 0 {
		add(&pol, "timeout", s.Timeout.String(), true)
	}
	if s.RunTimeout > 0 {
		add(&pol, "run_timeout", s.RunTimeout.String(), true)
	}
	groups = append(groups, pol)
	return groups
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// bodyWords shows a request body's fields as the JSON object sent
// (besides datetime and the pagination fields), keys sorted.
func bodyWords(body map[string]any) string {
	if len(body) == 0 {
		return ""
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Sprintf("%v", body)
	}
	return string(b)
}
