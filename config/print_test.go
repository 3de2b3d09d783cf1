package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

const (
	testSecret     = "s3cret-Authorization-value"
	testToken      = "ui-token-0123456789"
	testDBPassword = "db-pa55word"
	testURIPass    = "uri-pa55word"
)

// printedForms is every way a Config may end up in a log or on a terminal.
func printedForms(t *testing.T, c Config) map[string]string {
	t.Helper()
	var zl bytes.Buffer
	zl1 := zerolog.New(&zl)
	zl1.Info().Object("config", c).Msg("configuration")
	var iface bytes.Buffer
	zl2 := zerolog.New(&iface)
	zl2.Info().Interface("config", c).Msg("configuration")
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	loc, err := c.StateLocation()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"zerolog Object":    zl.String(),
		"zerolog Interface": iface.String(),
		"json":              string(js),
		"Summary":           c.Summary(),
		"%v":                fmt.Sprintf("%v", c),
		"%+v":               fmt.Sprintf("%+v", c),
		"%#v":               fmt.Sprintf("%#v", c),
		"%s":                fmt.Sprintf("[%s]", c),
		"pointer %v":        fmt.Sprintf("%v", &c),
		"state %v":          fmt.Sprintf("%v", loc),
		"state %#v":         fmt.Sprintf("%#v", loc),
		"state %+v":         fmt.Sprintf("%+v", loc),
	}
}

// Neither the secret, nor the UI token, nor a password (of the DSN, in its
// user info or its query, or of a service URI) appears in any printed form.
func TestPrintedFormsHideSecrets(t *testing.T) {
	for _, state := range []string{
		"postgres://sched:" + testDBPassword + "@db:5432/mojodex?sslmode=require",
		"postgresql://sched@db/mojodex?password=" + testDBPassword + "&sslpassword=" + testDBPassword,
	} {
		env := []string{
			"MOJODEX_BACKEND_URI=http://user:" + testURIPass + "@mojodex_backend:5000",
			"BACKGROUND_BACKEND_URI=http://mojodex_background:5000",
			"MOJODEX_SCHEDULER_SECRET=" + testSecret,
			"MOJODEX_SCHEDULER_UI_TOKEN=" + testToken,
			"MOJODEX_SCHEDULER_UI_AUTH=all",
			"MOJODEX_SCHEDULER_STATE=" + state,
		}
		hidden := []string{testSecret, testToken, testDBPassword, testURIPass}
		// Every setting marked secret, including any added later, is set
		// (the first entry of a name counts, so the values above stay).
		secrets := 0
		for _, s := range settings {
			if s.secret {
				secrets++
				v := "hidden-value-of-" + s.name
				env = append(env, s.name+"="+v)
				if s.name != "MOJODEX_SCHEDULER_SECRET" && s.name != "MOJODEX_SCHEDULER_UI_TOKEN" {
					hidden = append(hidden, v)
				}
			}
		}
		if secrets < 2 {
			t.Fatalf("%d settings marked secret, want the secret and the UI token at least", secrets)
		}
		c, _, err := Load(env)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckURIs(true); err != nil {
			t.Fatal(err)
		}
		for form, out := range printedForms(t, c) {
			for _, secret := range hidden {
				if strings.Contains(out, secret) {
					t.Errorf("%s shows %q:\n%s", form, secret, out)
				}
			}
			if !strings.Contains(out, "db") {
				t.Errorf("%s does not show the state location:\n%s", form, out)
			}
		}
	}
}

// No error shows the secret, the token or a password either.
func TestErrorsHideSecrets(t *testing.T) {
	_, _, err := Load([]string{
		"MOJODEX_SCHEDULER_UI_TOKEN=short-" + "tok",
		"MOJODEX_SCHEDULER_STATE=postgres://u:" + testDBPassword + "@db:99999/x",
		"MOJODEX_SCHEDULER_SECRET=" + testSecret,
	})
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, s := range []string{"short-tok", testDBPassword, testSecret} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows %q: %v", s, err)
		}
	}
	for _, state := range []string{
		"mysql://u:" + testDBPassword + "@db/x",
		"postgres://u:" + testDBPassword + "@db/x%zz", // not a URL
		"postgres://u:" + testDBPassword + "@db/x?password=" + testDBPassword + "%",
	} {
		_, _, err := Load([]string{"MOJODEX_SCHEDULER_STATE=" + state})
		if err == nil || strings.Contains(err.Error(), testDBPassword) || !strings.HasPrefix(err.Error(), "MOJODEX_SCHEDULER_STATE: ") {
			t.Errorf("STATE=%s: error %v", state, err)
		}
	}
	for _, uri := range []string{
		"ftp://u:" + testURIPass + "@x",
		"http://u:" + testURIPass + "@x:0",
		"http://u:" + testURIPass + "@x/%zz",
		"http://u:" + testURIPass + "@x/#frag",
	} {
		err := Config{BackendURI: uri, BackgroundURI: "http://bg", Secret: testSecret}.CheckURIs(true)
		if err == nil || strings.Contains(err.Error(), testURIPass) {
			t.Errorf("URI %s: error %v", uri, err)
		}
	}
}

func TestSummary(t *testing.T) {
	c, _, err := Load([]string{
		"MOJODEX_BACKEND_URI=http://mojodex_backend:5000",
		"MOJODEX_SCHEDULER_RATE=-1",
		"MOJODEX_SCHEDULER_TLS_CERT=/c.pem",
		"MOJODEX_SCHEDULER_UI_TOKEN=0123456789abcdef",
		"LOG_LEVEL=CRITICAL",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Summary()
	for _, line := range []string{
		"backend_uri       http://mojodex_backend:5000\n",
		"background_uri    unset\n",
		"secret_set        false\n",
		"log_level         critical (logged as error)\n",
		"tasks             embedded defaults\n",
		"state_kind        file\n",
		"state             data/mojodex-scheduler.db\n",
		"rate              unlimited\n",
		"burst             5\n",
		"max_in_flight     4 per service\n",
		"queue_size        1000\n",
		"request_timeout   30s\n",
		"max_attempts      3\n",
		"shutdown_timeout  30s\n",
		"gate_interval     10m\n",
		"http_addr         127.0.0.1:9464\n",
		"remote_addr       127.0.0.1:4000\n",
		"remote_max_conns  64\n",
		"mutual_tls        incomplete\n",
		"insecure_remote   false\n",
		"ui_actions        on\n",
		"ui_auth           actions\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("Summary lacks %q:\n%s", line, got)
		}
	}
	if strings.Contains(got, "lease") || strings.Contains(got, "pg_schema") {
		t.Errorf("Summary shows replica settings without a PostgreSQL store:\n%s", got)
	}

	c, _, err = Load([]string{"MOJODEX_SCHEDULER_STATE=postgres://db/x", "MOJODEX_SCHEDULER_LEASE=1m"})
	if err != nil {
		t.Fatal(err)
	}
	got = c.Summary()
	for _, line := range []string{"state_kind        postgres\n", "state             postgres://db/x\n", "pg_schema         mojodex_scheduler\n",
		"replica           hostname-pid\n", "lease             1m\n", "lease_renew       5s\n", "reaper_interval   5s\n", "rate              10 calls/s\n",
		"mutual_tls        off\n", "ui_actions        off\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("Summary lacks %q:\n%s", line, got)
		}
	}
}

// The zerolog form: typed fields, durations in seconds under a name ending in _s.
func TestMarshalZerologObject(t *testing.T) {
	c, _, err := Load([]string{"MOJODEX_SCHEDULER_SECRET=x", "MOJODEX_SCHEDULER_TLS_CERT=a", "MOJODEX_SCHEDULER_TLS_KEY=b", "MOJODEX_SCHEDULER_TLS_CA=c"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().Object("config", c).Msg("")
	var line struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	want := map[string]any{
		"rate": 10.0, "burst": 5.0, "request_timeout_s": 30.0, "gate_interval_s": 600.0, "secret_set": true,
		"mutual_tls": "on", "state": "data/mojodex-scheduler.db", "backend_uri": "unset", "max_in_flight": 4.0,
	}
	for k, v := range want {
		if line.Config[k] != v {
			t.Errorf("%s = %#v, want %#v", k, line.Config[k], v)
		}
	}
	for _, k := range []string{"request_timeout", "shutdown_timeout", "gate_interval"} {
		if v, ok := line.Config[k]; ok {
			t.Errorf("%s = %#v: a duration without its unit in the name", k, v)
		}
	}
	var js map[string]any
	b, err := json.Marshal(c)
	if err != nil || json.Unmarshal(b, &js) != nil {
		t.Fatalf("json: %v %s", err, b)
	}
	if js["request_timeout"] != "30s" || js["rate"] != 10.0 {
		t.Errorf("json = %s", b)
	}
}

func TestStateLocation(t *testing.T) {
	tests := []struct {
		value    string
		kind     StateKind
		path     string
		dsn      string
		redacted string
	}{
		{"data/mojodex-scheduler.db", StateFile, "data/mojodex-scheduler.db", "", "data/mojodex-scheduler.db"},
		{"/var/lib/x.db", StateFile, "/var/lib/x.db", "", "/var/lib/x.db"},
		{"off", StateMemory, "", "", "off"},
		{"OFF", StateMemory, "", "", "off"},
		{"postgres://sched:pw@db:5432/mojodex?sslmode=disable", StatePostgres, "", "postgres://sched:pw@db:5432/mojodex?sslmode=disable", "postgres://sched:xxxxx@db:5432/mojodex?sslmode=disable"},
		{"postgresql://db/mojodex?password=pw&user=s", StatePostgres, "", "postgresql://db/mojodex?password=pw&user=s", "postgresql://db/mojodex?password=xxxxx&user=s"},
		{"POSTGRES://db/x", StatePostgres, "", "POSTGRES://db/x", "postgres://db/x"},
		{"postgres:///mojodex?host=/run/postgresql", StatePostgres, "", "postgres:///mojodex?host=/run/postgresql", "postgres:///mojodex?host=/run/postgresql"},
	}
	for _, tt := range tests {
		c, _, err := Load([]string{"MOJODEX_SCHEDULER_STATE=" + tt.value})
		if err != nil {
			t.Errorf("%s: %v", tt.value, err)
			continue
		}
		loc, err := c.StateLocation()
		if err != nil {
			t.Errorf("%s: %v", tt.value, err)
			continue
		}
		if loc.Kind != tt.kind || loc.Path != tt.path || loc.DSN != tt.dsn {
			t.Errorf("%s: %+v", tt.value, StateLocation{Kind: loc.Kind, Path: loc.Path, DSN: "(" + loc.DSN + ")"})
		}
		if got := loc.Redacted(); got != tt.redacted {
			t.Errorf("%s: Redacted() = %q, want %q", tt.value, got, tt.redacted)
		}
		if got := loc.String(); got != tt.redacted {
			t.Errorf("%s: String() = %q, want %q", tt.value, got, tt.redacted)
		}
	}
}
