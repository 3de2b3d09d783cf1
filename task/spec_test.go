package task

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone tests must not depend on the host's zoneinfo
)

func TestSpecSchedule(t *testing.T) {
	anchor := time.Date(2026, 1, 7, 12, 7, 0, 0, time.UTC) // a Wednesday
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		spec     Spec
		from     time.Time
		next     time.Time
		describe []string // substrings of String()
	}{
		{
			name:     "every, first slot one period after the anchor",
			spec:     Spec{Every: 10 * time.Minute},
			from:     anchor,
			next:     anchor.Add(10 * time.Minute),
			describe: []string{"every", "10m"},
		},
		{
			name: "every, later slots stay on the anchor's grid",
			spec: Spec{Every: 10 * time.Minute},
			from: anchor.Add(25 * time.Minute),
			next: anchor.Add(30 * time.Minute),
		},
		{
			name:     "at, later the same day, UTC by default",
			spec:     Spec{At: "18:30"},
			from:     anchor,
			next:     time.Date(2026, 1, 7, 18, 30, 0, 0, time.UTC),
			describe: []string{"daily", "18:30:00", "UTC"},
		},
		{
			name:     "at, already past today: tomorrow",
			spec:     Spec{At: "09:00:15"},
			from:     anchor,
			next:     time.Date(2026, 1, 8, 9, 0, 15, 0, time.UTC),
			describe: []string{"daily", "09:00:15"},
		},
		{
			name:     "at in a time zone",
			spec:     Spec{At: "09:30", Timezone: "Europe/Paris"},
			from:     anchor,
			next:     time.Date(2026, 1, 8, 8, 30, 0, 0, time.UTC), // CET is UTC+1
			describe: []string{"09:30:00", "Europe/Paris"},
		},
		{
			name:     "at with weekdays",
			spec:     Spec{At: "08:00", Weekdays: []time.Weekday{time.Monday, time.Friday}},
			from:     anchor,
			next:     time.Date(2026, 1, 9, 8, 0, 0, 0, time.UTC), // Friday
			describe: []string{"weekly", "Monday", "Friday", "08:00:00"},
		},
		{
			name:     "cron, UTC by default",
			spec:     Spec{Cron: "*/15 * * * *"},
			from:     anchor,
			next:     time.Date(2026, 1, 7, 12, 15, 0, 0, time.UTC),
			describe: []string{"cron", "*/15 * * * *", "UTC"},
		},
		{
			name:     "cron in a time zone",
			spec:     Spec{Cron: "0 9 * * *", Timezone: "America/New_York"},
			from:     anchor,
			next:     time.Date(2026, 1, 7, 9, 0, 0, 0, ny),
			describe: []string{"cron", "0 9 * * *", "America/New_York"},
		},
		{
			name: "cron with seconds",
			spec: Spec{Cron: "30 * * * * *"},
			from: anchor,
			next: anchor.Add(30 * time.Second),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = "t"
			sc, err := tt.spec.Schedule(anchor)
			if err != nil {
				t.Fatalf("Schedule: %v", err)
			}
			if got := sc.Next(tt.from); !got.Equal(tt.next) {
				t.Errorf("Next(%v) = %v, want %v", tt.from, got, tt.next)
			}
			desc := sc.String()
			for _, w := range tt.describe {
				if !strings.Contains(desc, w) {
					t.Errorf("String() = %q, does not contain %q", desc, w)
				}
			}
		})
	}
}

func TestSpecScheduleErrors(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		field string
	}{
		{"nothing", Spec{}, "every|at|cron"},
		{"every and at", Spec{Every: time.Hour, At: "10:00"}, "every|at|cron"},
		{"negative every", Spec{Every: -time.Hour}, "every"},
		{"bad at", Spec{At: "10h"}, "at"},
		{"bad cron", Spec{Cron: "nope"}, "cron"},
		{"bad zone", Spec{Cron: "0 * * * *", Timezone: "Nowhere/Land"}, "timezone"},
		{"zone with every", Spec{Every: time.Hour, Timezone: "UTC"}, "timezone"},
		{"weekdays with every", Spec{Every: time.Hour, Weekdays: []time.Weekday{time.Monday}}, "weekdays"},
		{"weekday out of range", Spec{At: "10:00", Weekdays: []time.Weekday{7}}, "weekdays"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = "t"
			sc, err := tt.spec.Schedule(time.Now())
			if err == nil {
				t.Fatalf("Schedule succeeded: %v", sc)
			}
			if !hasFieldError(err, "t", tt.field) {
				t.Errorf("error %v is not a FieldError for field %s", err, tt.field)
			}
		})
	}
}

func TestLocation(t *testing.T) {
	loc, err := (&Spec{}).Location()
	if err != nil || loc.String() != "UTC" {
		t.Errorf("default Location = %v, %v; want UTC", loc, err)
	}
	loc, err = (&Spec{Timezone: "Asia/Tokyo"}).Location()
	if err != nil || loc.String() != "Asia/Tokyo" {
		t.Errorf("Location = %v, %v; want Asia/Tokyo", loc, err)
	}
	if _, err := (&Spec{Timezone: "Mars/Olympus"}).Location(); err == nil || !strings.Contains(err.Error(), "Mars/Olympus") {
		t.Errorf("Location(Mars/Olympus) error = %v", err)
	}
}

func TestGateProbePath(t *testing.T) {
	for g, want := range map[Gate]string{
		GateNone:  "",
		GateEmail: "/is_email_service_configured",
		GatePush:  "/is_push_notif_service_configured",
		"sms":     "",
	} {
		if got := g.ProbePath(); got != want {
			t.Errorf("Gate(%q).ProbePath() = %q, want %q", g, got, want)
		}
	}
}

func TestFieldError(t *testing.T) {
	inner := context.DeadlineExceeded
	err := &FieldError{Task: "t", Field: "paginate.size", Err: inner}
	if got, want := err.Error(), `task "t": field paginate.size: `+inner.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if err.Unwrap() != inner {
		t.Errorf("Unwrap() = %v", err.Unwrap())
	}
}

func job(context.Context) (int, error) { return 0, nil }

func TestValidateSet(t *testing.T) {
	req := func() *Request { return &Request{Service: ServiceBackend, Path: "/x"} }
	tests := []struct {
		name   string
		specs  []Spec
		errors []struct{ task, field string } // nil: valid
	}{
		{
			name:  "in-process job",
			specs: []Spec{{Name: "cleanup", Every: time.Minute, Job: job}},
		},
		{
			name:  "in-process job on a daily schedule with a timeout",
			specs: []Spec{{Name: "cleanup", At: "03:00", Timezone: "Europe/Paris", Timeout: time.Minute, RunOnStart: true, Job: job}},
		},
		{
			name:  "job and HTTP tasks together",
			specs: []Spec{{Name: "cleanup", Every: time.Minute, Job: job}, {Name: "call", Cron: "0 * * * *", Request: req()}},
		},
		{
			name:   "job and request",
			specs:  []Spec{{Name: "both", Every: time.Minute, Job: job, Request: req()}},
			errors: []struct{ task, field string }{{"both", "request"}},
		},
		{
			name:   "job with a gate",
			specs:  []Spec{{Name: "gated", Every: time.Minute, Job: job, EnabledIf: GateEmail}},
			errors: []struct{ task, field string }{{"gated", "enabled_if"}},
		},
		{
			name:   "job with pagination",
			specs:  []Spec{{Name: "paged", Every: time.Minute, Job: job, Paginate: &Paginate{Mode: ModeDrain, SizeField: "n", Result: "r"}}},
			errors: []struct{ task, field string }{{"paged", "paginate"}},
		},
		{
			name:   "job with a gate and pagination: both reported",
			specs:  []Spec{{Name: "j", Every: time.Minute, Job: job, EnabledIf: GatePush, Paginate: &Paginate{Mode: ModeDrain, SizeField: "n", Result: "r"}}},
			errors: []struct{ task, field string }{{"j", "enabled_if"}, {"j", "paginate"}},
		},
		{
			name:   "neither job nor request",
			specs:  []Spec{{Name: "idle", Every: time.Minute}},
			errors: []struct{ task, field string }{{"idle", "request"}},
		},
		{
			name:   "negative timeout",
			specs:  []Spec{{Name: "j", Every: time.Minute, Job: job, Timeout: -time.Second}},
			errors: []struct{ task, field string }{{"j", "timeout"}},
		},
		{
			name:   "negative every is reported once",
			specs:  []Spec{{Name: "j", Every: -time.Minute, Job: job}},
			errors: []struct{ task, field string }{{"j", "every"}},
		},
		{
			name: "HTTP task problems",
			specs: []Spec{{Name: "h", Every: time.Minute, Request: &Request{Service: "mars", Method: "FETCH", Path: "x", Body: map[string]any{"datetime": 1}},
				Paginate: &Paginate{Mode: "cursor", Size: 51}}},
			errors: []struct{ task, field string }{{"h", "request.service"}, {"h", "request.method"}, {"h", "request.path"},
				{"h", "request.body.datetime"}, {"h", "paginate.mode"}, {"h", "paginate.size"}, {"h", "paginate.size_field"}, {"h", "paginate.result"}},
		},
		{
			name:   "duplicate names",
			specs:  []Spec{{Name: "j", Every: time.Minute, Job: job}, {Name: "j", Every: time.Hour, Job: job}},
			errors: []struct{ task, field string }{{"j", "name"}},
		},
		{
			name:   "unnamed specs are labelled by position",
			specs:  []Spec{{Name: "j", Every: time.Minute, Job: job}, {Every: time.Minute, Job: job}},
			errors: []struct{ task, field string }{{"#2", "name"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSet(tt.specs)
			if tt.errors == nil {
				if err != nil {
					t.Fatalf("ValidateSet: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("ValidateSet succeeded")
			}
			for _, w := range tt.errors {
				if !hasFieldError(err, w.task, w.field) {
					t.Errorf("no error for task %q field %s in:\n%v", w.task, w.field, err)
				}
			}
			if got := len(fieldErrors(err)); got != len(tt.errors) {
				t.Errorf("%d errors, want %d:\n%v", got, len(tt.errors), err)
			}
		})
	}
}

// ValidateSet normalizes the specs in place.
func TestValidateSetNormalizes(t *testing.T) {
	specs := []Spec{{
		Name:     "n",
		Every:    time.Minute,
		Request:  &Request{Service: ServiceBackground, Method: "patch", Path: "/n", Result: "ids"},
		Paginate: &Paginate{Mode: ModeOffset, SizeField: "n"},
	}}
	if err := ValidateSet(specs); err != nil {
		t.Fatal(err)
	}
	r, p := specs[0].Request, specs[0].Paginate
	if r.Method != "PATCH" || p.Size != 50 || p.MaxPages != 100 || p.OffsetField != "offset" || p.Result != "ids" {
		t.Errorf("after ValidateSet: request %+v, paginate %+v", *r, *p)
	}
	// Auth is a plain bool in code: its zero value means no secret.
	if r.Auth {
		t.Errorf("Auth turned on by ValidateSet")
	}
}

// The jitter delay is stable per name, below the bound, and differs between names.
func TestJitterDelay(t *testing.T) {
	a := Spec{Name: "extract-todos", Jitter: time.Minute}
	b := Spec{Name: "reschedule-todos", Jitter: time.Minute}
	if d := a.JitterDelay(); d != a.JitterDelay() || d < 0 || d >= time.Minute {
		t.Errorf("JitterDelay = %v", d)
	}
	if a.JitterDelay() == b.JitterDelay() {
		t.Errorf("two names got the same delay %v", a.JitterDelay())
	}
	if d := (&Spec{Name: "x"}).JitterDelay(); d != 0 {
		t.Errorf("no jitter: delay %v", d)
	}
}

// A spec built in code gets every schedule problem reported, each as a
// *FieldError naming its field.
func TestSpecScheduleReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name   string
		spec   Spec
		fields []string
	}{
		{"bad at, weekdays and zone", Spec{At: "25:00", Weekdays: []time.Weekday{time.Monday, 9, -1}, Timezone: "Europe/Pari"},
			[]string{"at", "weekdays", "weekdays", "timezone"}},
		{"bad cron and zone", Spec{Cron: "61 * * * *", Timezone: "Mars/Olympus"}, []string{"cron", "timezone"}},
		{"two schedules, both bad", Spec{At: "9:3", Cron: "nope"}, []string{"every|at|cron", "at", "cron"}},
		{"negative every with weekdays and a zone", Spec{Every: -time.Minute, Weekdays: []time.Weekday{time.Monday}, Timezone: "UTC"},
			[]string{"every", "weekdays", "timezone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = "t"
			_, err := tt.spec.Schedule(time.Now())
			fes := fieldErrors(err)
			var got []string
			for _, fe := range fes {
				if fe.Task != "t" {
					t.Errorf("error on task %q: %v", fe.Task, fe)
				}
				got = append(got, fe.Field)
				checkOperatorMessage(t, fe.Error())
			}
			slices.Sort(got)
			slices.Sort(tt.fields)
			if !slices.Equal(got, tt.fields) {
				t.Errorf("fields %q, want %q:\n%v", got, tt.fields, err)
			}

			// Validate reports the same, once each.
			tt.spec.Request = &Request{Service: ServiceBackend, Path: "/x"}
			tt.spec.Normalize()
			if n := len(fieldErrors(tt.spec.Validate())); n != len(tt.fields) {
				t.Errorf("Validate: %d errors, want %d: %v", n, len(tt.fields), tt.spec.Validate())
			}
		})
	}
}

func TestLocationErrorNamesTheZoneOnce(t *testing.T) {
	_, err := (&Spec{Timezone: "Europe/Pari"}).Location()
	if err == nil || err.Error() != `unknown time zone "Europe/Pari" (want an IANA name such as Europe/Paris)` {
		t.Errorf("Location error = %v", err)
	}
	if errors.Unwrap(err) == nil {
		t.Errorf("the cause from time.LoadLocation is not kept")
	}
}
