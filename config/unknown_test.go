package config

import (
	"slices"
	"strings"
	"testing"
)

func TestUnknownVariables(t *testing.T) {
	tests := []struct {
		variable string
		want     string // the warning; "" for none
	}{
		{"MOJODEX_SCHEDULER_TASK", "MOJODEX_SCHEDULER_TASK is not a known setting (did you mean MOJODEX_SCHEDULER_TASKS?)"},
		{"MOJODEX_SCHEDULER_GATE_INTERVALL", "MOJODEX_SCHEDULER_GATE_INTERVALL is not a known setting (did you mean MOJODEX_SCHEDULER_GATE_INTERVAL?)"},
		{"MOJODEX_SCHEDULER_REQUEST_TIMOUT", "MOJODEX_SCHEDULER_REQUEST_TIMOUT is not a known setting (did you mean MOJODEX_SCHEDULER_REQUEST_TIMEOUT?)"},
		{"MOJODEX_SCHEDULER_MAX_INFLIGHT", "MOJODEX_SCHEDULER_MAX_INFLIGHT is not a known setting (did you mean MOJODEX_SCHEDULER_MAX_IN_FLIGHT?)"},
		{"MOJODEX_SCHEDULER_INSECURE", "MOJODEX_SCHEDULER_INSECURE is not a known setting (did you mean MOJODEX_SCHEDULER_INSECURE_REMOTE?)"},
		{"MOJODEX_SCHEDULER_SECRET_KEY", "MOJODEX_SCHEDULER_SECRET_KEY is not a known setting (did you mean MOJODEX_SCHEDULER_SECRET?)"},
		{"MOJODEX_SCHEDULER_UI_TOKENS", "MOJODEX_SCHEDULER_UI_TOKENS is not a known setting (did you mean MOJODEX_SCHEDULER_UI_TOKEN?)"},
		{"mojodex_scheduler_rate", "mojodex_scheduler_rate is not a known setting (did you mean MOJODEX_SCHEDULER_RATE?)"},
		{"MOJODEX_SCHEDULER_REQEST_TIMOUT", "MOJODEX_SCHEDULER_REQEST_TIMOUT is not a known setting (did you mean MOJODEX_SCHEDULER_REQUEST_TIMEOUT?)"},
		{"MOJODEX_SCHEDULER_RMOTE_MX_CONN", "MOJODEX_SCHEDULER_RMOTE_MX_CONN is not a known setting (did you mean MOJODEX_SCHEDULER_REMOTE_MAX_CONNS?)"},
		{"MOJODEX_SCHEDULER_XYZ", "MOJODEX_SCHEDULER_XYZ is not a known setting"},
		{"MOJODEX_SCHEDULER_FROBNICATE", "MOJODEX_SCHEDULER_FROBNICATE is not a known setting"},
		{"MOJODEX_SCHEDULER_", "MOJODEX_SCHEDULER_ is not a known setting"},
		// Near misses of the other names.
		{"MOJODEX_BACKEND_URL", "MOJODEX_BACKEND_URL is not a known setting (did you mean MOJODEX_BACKEND_URI?)"},
		{"BACKGROUND_BACKEND_URL", "BACKGROUND_BACKEND_URL is not a known setting (did you mean BACKGROUND_BACKEND_URI?)"},
		{"MOJODEX_SHEDULER_RATE", "MOJODEX_SHEDULER_RATE is not a known setting (did you mean MOJODEX_SCHEDULER_RATE?)"},
		// Other programs' variables, and Mojodex's own, are left alone.
		{"MOJODEX_BACKGROUND_URI", ""},
		{"MOJODEX_DB_PASSWORD", ""},
		{"LOG_LEVELS", ""},
		{"PATH", ""},
		{"HOSTNAME", ""},
		// Settings are not warned about.
		{"MOJODEX_SCHEDULER_TASKS", ""},
		{"MOJODEX_BACKEND_URI", ""},
		{"LOG_FORMAT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.variable, func(t *testing.T) {
			_, warnings, err := Load([]string{tt.variable + "=1h"})
			if err != nil && tt.want == "" && strings.HasPrefix(tt.variable, "MOJODEX_SCHEDULER_") {
				t.Fatalf("Load: %v", err)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, w.String())
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("warnings %q, want %q", got, want)
			}
		})
	}
}

// Warnings come with a bad configuration too, sorted by name, never with a
// value (which may be a secret), and for an empty variable as well.
func TestWarningsAlongsideErrors(t *testing.T) {
	_, warnings, err := Load([]string{
		"MOJODEX_SCHEDULER_TASK=/etc/tasks.yaml",
		"MOJODEX_SCHEDULER_SECRETS=hunter2-value",
		"MOJODEX_SCHEDULER_BURSTS=",
		"MOJODEX_SCHEDULER_BURST=0",
	})
	if err == nil || !strings.Contains(err.Error(), "MOJODEX_SCHEDULER_BURST: 0 is out of range") {
		t.Errorf("error %v", err)
	}
	want := []Warning{
		{Variable: "MOJODEX_SCHEDULER_BURSTS", Suggestion: "MOJODEX_SCHEDULER_BURST"},
		{Variable: "MOJODEX_SCHEDULER_SECRETS", Suggestion: "MOJODEX_SCHEDULER_SECRET"},
		{Variable: "MOJODEX_SCHEDULER_TASK", Suggestion: "MOJODEX_SCHEDULER_TASKS"},
	}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings %v, want %v", warnings, want)
	}
	for _, w := range warnings {
		if strings.Contains(w.String(), "hunter2") || strings.Contains(w.String(), "tasks.yaml") {
			t.Errorf("warning shows a value: %s", w)
		}
	}
}
