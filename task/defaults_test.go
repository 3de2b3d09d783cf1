package task

import (
	"bytes"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// wantDefaults is the default task set of contract.md, written out by hand
// (after Normalize): it is compared with what the embedded file yields.
func wantDefaults() []Spec {
	offset := func(sizeField string) *Paginate {
		return &Paginate{Mode: ModeOffset, Size: 50, SizeField: sizeField, OffsetField: "offset", Result: "user_ids", MaxPages: 100}
	}
	specs := []Spec{
		{
			Name:  "purchases-expiration-checker",
			Every: time.Hour,
			Request: &Request{
				Service: ServiceBackend, Method: "POST", Path: "/check_expired_purchases", Auth: true,
				Query: map[string]string{"n_purchases": "50"},
			},
			Paginate: &Paginate{Mode: ModeDrain, Size: 50, SizeField: "n_purchases", Result: "purchase_pks", MaxPages: 100},
		},
		{
			Name:  "extract-todos",
			Every: 10 * time.Minute,
			Request: &Request{
				Service: ServiceBackground, Method: "POST", Path: "/extract_todos", Auth: false,
				Result: "user_task_execution_pks",
			},
		},
		{
			Name:  "reschedule-todos",
			Every: time.Hour,
			Request: &Request{
				Service: ServiceBackground, Method: "POST", Path: "/reschedule_todo", Auth: false,
				Result: "todo_pks",
			},
		},
		{
			Name:      "send-todo-daily-emails",
			Every:     time.Hour,
			EnabledIf: GateEmail,
			Request: &Request{
				Service: ServiceBackground, Method: "POST", Path: "/events_generation", Auth: true,
				Body: map[string]any{"event_type": "todo_daily_emails"},
			},
			Paginate: offset("n_events"),
		},
		{
			Name:      "check-disengaged-free-trial-users",
			Every:     24 * time.Hour,
			EnabledIf: GateEmail,
			Request: &Request{
				Service: ServiceBackend, Method: "POST", Path: "/check_disengaged_free_trial_users", Auth: true,
			},
			Paginate: offset("n_disengaged_users"),
		},
		{
			Name:  "first-home-chat-of-week",
			Every: time.Hour,
			Request: &Request{
				// PUT, not the Python scheduler's POST (contract.md).
				Service: ServiceBackend, Method: "PUT", Path: "/home_chat", Auth: true,
			},
			Paginate: offset("n_users"),
		},
		{
			Name:  "relaunch-locked-steps",
			Every: 30 * time.Minute,
			Request: &Request{
				Service: ServiceBackend, Method: "POST", Path: "/relaunch_locked_workflow_step_executions", Auth: true,
				Result: "user_workflow_step_executions_pk",
			},
		},
	}
	for i := range specs {
		specs[i].Misfire, specs[i].Overlap = MisfireSkip, OverlapSkip
		if specs[i].Name == "check-disengaged-free-trial-users" {
			// The daily task catches up once on a missed day.
			specs[i].Misfire, specs[i].MisfireGrace = MisfireOnce, 24*time.Hour
		}
	}
	return specs
}

func TestDefaults(t *testing.T) {
	got, err := Defaults()
	if err != nil {
		t.Fatalf("Defaults: %v", err)
	}
	want := wantDefaults()
	if len(got) != len(want) {
		names := make([]string, len(got))
		for i, s := range got {
			names[i] = s.Name
		}
		t.Fatalf("Defaults: %d tasks %v, want %d", len(got), names, len(want))
	}
	for i, w := range want {
		t.Run(w.Name, func(t *testing.T) {
			g := got[i]
			if g.Name != w.Name {
				t.Fatalf("task #%d is %q, want %q", i+1, g.Name, w.Name)
			}
			if g.Every != w.Every || g.At != "" || g.Cron != "" || g.Timezone != "" || len(g.Weekdays) != 0 {
				t.Errorf("schedule: every=%v at=%q cron=%q tz=%q weekdays=%v, want every=%v only",
					g.Every, g.At, g.Cron, g.Timezone, g.Weekdays, w.Every)
			}
			if g.EnabledIf != w.EnabledIf {
				t.Errorf("enabled_if = %q, want %q", g.EnabledIf, w.EnabledIf)
			}
			if g.RunOnStart || g.Timeout != 0 || g.Job != nil {
				t.Errorf("run_on_start=%v timeout=%v job=%v, want zero values", g.RunOnStart, g.Timeout, g.Job != nil)
			}
			if !reflect.DeepEqual(g.Request, w.Request) {
				t.Errorf("request =\n  %+v\nwant\n  %+v", *g.Request, *w.Request)
			}
			if !reflect.DeepEqual(g.Paginate, w.Paginate) {
				t.Errorf("paginate = %+v, want %+v", g.Paginate, w.Paginate)
			}
			// Belt and braces: nothing else differs.
			if !reflect.DeepEqual(g, w) {
				t.Errorf("spec =\n  %+v\nwant\n  %+v", g, w)
			}
		})
	}
}

// The batch size sent in the query string must be the one sent in the body.
func TestDefaultsPurchasesQueryMatchesPageSize(t *testing.T) {
	specs, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Paginate == nil || s.Request.Query == nil {
			continue
		}
		q, ok := s.Request.Query[s.Paginate.SizeField]
		if !ok {
			continue
		}
		if q != strconv.Itoa(s.Paginate.Size) {
			t.Errorf("%s: query %s=%q but page size %d", s.Name, s.Paginate.SizeField, q, s.Paginate.Size)
		}
	}
}

func TestDefaultsSchedules(t *testing.T) {
	specs, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	anchor := time.Date(2026, 11, 25, 20, 30, 0, 0, time.UTC)
	for _, s := range specs {
		sc, err := s.Schedule(anchor)
		if err != nil {
			t.Errorf("%s: Schedule: %v", s.Name, err)
			continue
		}
		if got, want := sc.Next(anchor), anchor.Add(s.Every); !got.Equal(want) {
			t.Errorf("%s: Next(anchor) = %v, want %v", s.Name, got, want)
		}
	}
}

// Callers get their own copies: changing one result must not leak into the
// next call.
func TestDefaultsAreIndependentCopies(t *testing.T) {
	a, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	a[0].Request.Query["n_purchases"] = "1"
	a[0].Paginate.Size = 1
	a[3].Request.Body["event_type"] = "other"

	b, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b, wantDefaults()) {
		t.Errorf("Defaults changed after a caller modified an earlier result")
	}

	y := DefaultsYAML()
	if len(y) == 0 || !bytes.Contains(y, []byte("tasks:")) {
		t.Fatalf("DefaultsYAML = %q", y)
	}
	for i := range y {
		y[i] = 'x'
	}
	if _, err := Defaults(); err != nil {
		t.Errorf("Defaults after scribbling over DefaultsYAML(): %v", err)
	}
	if bytes.Contains(DefaultsYAML(), []byte("xxxx")) {
		t.Errorf("DefaultsYAML returns a shared buffer")
	}
}

// The embedded file parses through the public file API too.
func TestDefaultsYAMLParses(t *testing.T) {
	specs, err := Parse(bytes.NewReader(DefaultsYAML()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(specs, wantDefaults()) {
		t.Errorf("Parse(DefaultsYAML()) differs from the contract table")
	}
}
