package statuspage

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
)

// This file turns the supervisor's answers (task.Status) into what the
// templates show. Nothing here is kept between requests.

// StripLength is how many recent outcomes the tasks page shows per task
// (the supervisor keeps that many runs).
const StripLength = 20

// when is an instant as the pages show it: a <time> element whose text the
// browser rewrites in its own zone.
type when struct {
	// ISO is the machine value (RFC 3339, UTC); empty for the zero time.
	ISO string
	// UTC is the value shown on hover, and as the text without script.
	UTC string
	// Rel says it relative to the page's time ("in 4 min").
	Rel string
}

func newWhen(t, now time.Time) when {
	if t.IsZero() {
		return when{}
	}
	u := t.UTC()
	return when{
		ISO: u.Format(time.RFC3339Nano),
		UTC: u.Format("2006-01-02 15:04:05 UTC"),
		Rel: RelativeWords(t, now),
	}
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
	Slot    when
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
	// Title sums the run up in one line, for the outcome strip's hover.
	Title string
}

func newRunView(r task.Run, now time.Time) runView {
	v := runView{
		Outcome:  string(r.Outcome),
		Slot:     newWhen(r.Slot, now),
		Start:    newWhen(r.Start, now),
		Duration: DurationWords(r.Duration),
		Pages:    r.Pages,
		Items:    r.Items,
		Err:      r.Err,
		Replica:  r.Replica,
	}
	if r.Status != 0 {
		v.Status = strconv.Itoa(r.Status)
	}
	if !r.Manual && !r.Resumed {
		v.Lateness = DurationWords(r.Lateness)
	}
	if r.Manual {
		v.Tags = append(v.Tags, "manual")
	}
	if r.Resumed {
		v.Tags = append(v.Tags, "resumed")
	}
	if r.Outcome == task.OutcomeSkipped && r.Err == "" && r.Reason != "" {
		v.Err = r.Reason.Describe("")
	}
	at := r.Start
	if at.IsZero() {
		at = r.Slot
	}
	var b strings.Builder
	b.WriteString(string(r.Outcome))
	if !at.IsZero() {
		b.WriteString(" · ")
		b.WriteString(at.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if r.Outcome != task.OutcomeSkipped {
		fmt.Fprintf(&b, " · %s · %s · %s", v.Duration, plural(r.Pages, "page", "pages"), plural(r.Items, "item", "items"))
	}
	if v.Err != "" {
		b.WriteString(" · ")
		b.WriteString(truncate(v.Err, 160))
	}
	v.Title = b.String()
	return v
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

// cell is one square of the outcome strip; an empty Outcome is a run that
// has not happened yet (the strip is filled from the right).
type cell struct {
	Outcome string
	Title   string
}

// taskRow is one line of the tasks page.
type taskRow struct {
	Name     string
	URL      string
	Schedule string
	// ScheduleRaw is the supervisor's own description (hover).
	ScheduleRaw string
	Gate        string
	State       stateView
	Next        when
	Last        *runView
	// Strip holds StripLength cells, oldest first, when the history was
	// read; HistoryErr says why it was not.
	Strip      []cell
	HistoryErr string
	// Fails counts the failed runs in the strip.
	Fails int
}

func taskURL(name string) string { return "/tasks/" + url.PathEscape(name) }

func newTaskRow(st task.Status, history []task.Run, historyErr error, now time.Time) taskRow {
	row := taskRow{
		Name:        st.Name,
		URL:         taskURL(st.Name),
		Schedule:    ScheduleWords(st.Schedule),
		ScheduleRaw: st.Schedule,
		Gate:        string(st.Gate),
		State:       newStateView(st),
		Next:        newWhen(st.Next, now),
	}
	if st.Last != nil {
		lv := newRunView(*st.Last, now)
		row.Last = &lv
	}
	if historyErr != nil {
		row.HistoryErr = historyErr.Error()
		return row
	}
	row.Strip = make([]cell, StripLength)
	if len(history) > StripLength {
		history = history[len(history)-StripLength:]
	}
	pad := StripLength - len(history)
	for i, r := range history {
		rv := newRunView(r, now)
		row.Strip[pad+i] = cell{Outcome: rv.Outcome, Title: rv.Title}
		if r.Outcome == task.OutcomeFailed {
			row.Fails++
		}
	}
	return row
}

// summary counts the tasks by what an operator looks for first.
type summary struct {
	Tasks, Running, Paused, Failed, Gated, Restarting int
}

func newSummary(list []task.Status) summary {
	s := summary{Tasks: len(list)}
	for _, st := range list {
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
	d := taskDetail{Row: newTaskRow(st, st.History, nil, now)}
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
		rv := runningView{
			Slot: newWhen(r.Slot, now), Start: newWhen(r.Start, now), Deadline: newWhen(r.Deadline, now),
			Progress: progressWords(r.Progress),
		}
		if r.Manual {
			rv.Tags = append(rv.Tags, "manual")
		}
		if r.Resumed {
			rv.Tags = append(rv.Tags, "resumed")
		}
		d.Running = append(d.Running, rv)
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
		add(&g, "auth", yesNo(r.Auth)+" (the secret is sent as Authorization)", false)
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
