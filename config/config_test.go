package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// environ turns a map into os.Environ's form, in name order.
func environ(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func load(env map[string]string) (Config, error) {
	c, _, err := Load(environ(env))
	return c, err
}

// defaults is the configuration of an empty environment.
var defaults = Config{
	LogLevel:        "info",
	LogFormat:       "auto",
	Rate:            10,
	Burst:           5,
	MaxInFlight:     4,
	QueueSize:       1000,
	RequestTimeout:  30 * time.Second,
	MaxAttempts:     3,
	ShutdownTimeout: 30 * time.Second,
	GateInterval:    10 * time.Minute,
	State:           "data/mojodex-scheduler.db",
	PGSchema:        "mojodex_scheduler",
	Lease:           15 * time.Second,
	LeaseRenew:      5 * time.Second,
	ReaperInterval:  5 * time.Second,
	HTTPAddr:        "127.0.0.1:9464",
	RemoteAddr:      "127.0.0.1:4000",
	RemoteMaxConns:  64,
	UIAuth:          "actions",
}

func TestLoadDefaults(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c != defaults {
		t.Errorf("Load() =\n%s\nwant\n%s", c.GoString(), defaults.GoString())
	}
	if lvl, err := c.Level(); err != nil || lvl != zerolog.InfoLevel {
		t.Errorf("Level() = %v, %v; want info", lvl, err)
	}
}

func TestLoadValues(t *testing.T) {
	c, err := load(map[string]string{
		"MOJODEX_BACKEND_URI":                "http://mojodex_backend:5000",
		"BACKGROUND_BACKEND_URI":             "http://mojodex_background:5000",
		"MOJODEX_SCHEDULER_SECRET":           "scheduler_secret",
		"LOG_LEVEL":                          "INFO",
		"LOG_FORMAT":                         "json",
		"MOJODEX_SCHEDULER_TASKS":            "/etc/tasks.yaml",
		"MOJODEX_SCHEDULER_RATE":             "2.5",
		"MOJODEX_SCHEDULER_BURST":            "1",
		"MOJODEX_SCHEDULER_MAX_IN_FLIGHT":    "16",
		"MOJODEX_SCHEDULER_QUEUE_SIZE":       "50",
		"MOJODEX_SCHEDULER_REQUEST_TIMEOUT":  "1m30s",
		"MOJODEX_SCHEDULER_MAX_ATTEMPTS":     "1",
		"MOJODEX_SCHEDULER_SHUTDOWN_TIMEOUT": "5s",
		"MOJODEX_SCHEDULER_GATE_INTERVAL":    "1h",
		"MOJODEX_SCHEDULER_STATE":            "postgres://sched@db:5432/mojodex",
		"MOJODEX_SCHEDULER_PG_SCHEMA":        "sched_2",
		"MOJODEX_SCHEDULER_REPLICA":          "node-1.eu_west",
		"MOJODEX_SCHEDULER_LEASE":            "1m",
		"MOJODEX_SCHEDULER_LEASE_RENEW":      "30s",
		"MOJODEX_SCHEDULER_REAPER_INTERVAL":  "10s",
		"MOJODEX_SCHEDULER_HTTP_ADDR":        ":9000",
		"MOJODEX_SCHEDULER_REMOTE_ADDR":      "OFF",
		"MOJODEX_SCHEDULER_REMOTE_MAX_CONNS": "8",
		"MOJODEX_SCHEDULER_TLS_CERT":         "/tls/cert.pem",
		"MOJODEX_SCHEDULER_TLS_KEY":          "/tls/key.pem",
		"MOJODEX_SCHEDULER_TLS_CA":           "/tls/ca.pem",
		"MOJODEX_SCHEDULER_INSECURE_REMOTE":  "TRUE",
		"MOJODEX_SCHEDULER_UI_TOKEN":         "0123456789abcdef",
		"MOJODEX_SCHEDULER_UI_AUTH":          "All",
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		BackendURI:      "http://mojodex_backend:5000",
		BackgroundURI:   "http://mojodex_background:5000",
		Secret:          "scheduler_secret",
		LogLevel:        "info",
		LogFormat:       "json",
		Tasks:           "/etc/tasks.yaml",
		Rate:            2.5,
		Burst:           1,
		MaxInFlight:     16,
		QueueSize:       50,
		RequestTimeout:  90 * time.Second,
		MaxAttempts:     1,
		ShutdownTimeout: 5 * time.Second,
		GateInterval:    time.Hour,
		State:           "postgres://sched@db:5432/mojodex",
		PGSchema:        "sched_2",
		Replica:         "node-1.eu_west",
		Lease:           time.Minute,
		LeaseRenew:      30 * time.Second,
		ReaperInterval:  10 * time.Second,
		HTTPAddr:        ":9000",
		RemoteAddr:      "off",
		RemoteMaxConns:  8,
		TLSCert:         "/tls/cert.pem",
		TLSKey:          "/tls/key.pem",
		TLSCA:           "/tls/ca.pem",
		InsecureRemote:  true,
		UIToken:         "0123456789abcdef",
		UIAuth:          "all",
	}
	for _, d := range fieldDiff(c, want) {
		t.Error(d)
	}
}

// fieldDiff lists the fields where got and want differ (String and
// GoString hide the fields, on purpose).
func fieldDiff(got, want Config) []string {
	var out []string
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("%s = %#v, want %#v", g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface()))
		}
	}
	return out
}

// A variable set to the empty string (as `VAR=` in a .env file does) takes
// its default, like an unset one.
func TestLoadEmptyMeansDefault(t *testing.T) {
	env := map[string]string{}
	for _, s := range settings {
		env[s.name] = ""
		if s.trims() {
			env[s.name] = "  " // spaces only, where spaces are trimmed
		}
	}
	if len(env) != 29 {
		t.Fatalf("%d settings, want 29", len(env))
	}
	got, err := load(env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("empty variables: %+v\nunset variables: %+v", got, want)
	}
}

func TestLogLevel(t *testing.T) {
	tests := []struct {
		value string
		want  zerolog.Level
	}{
		{"DEBUG", zerolog.DebugLevel},
		{"debug", zerolog.DebugLevel},
		{"Info", zerolog.InfoLevel},
		{"INFO", zerolog.InfoLevel},
		{"WARNING", zerolog.WarnLevel},
		{"warning", zerolog.WarnLevel},
		{"warn", zerolog.WarnLevel},
		{"WARN", zerolog.WarnLevel},
		{"error", zerolog.ErrorLevel},
		{"ERROR", zerolog.ErrorLevel},
		{" Debug ", zerolog.DebugLevel},
		{"CRITICAL", zerolog.ErrorLevel}, // Python's highest level, logged as error
		{"critical", zerolog.ErrorLevel},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := load(map[string]string{"LOG_LEVEL": tt.value})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got, err := c.Level()
			if err != nil || got != tt.want {
				t.Errorf("Level() = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestLogFormat(t *testing.T) {
	for _, v := range []string{"json", "console", "auto", "JSON", "Console"} {
		c, err := load(map[string]string{"LOG_FORMAT": v})
		if err != nil {
			t.Errorf("LOG_FORMAT=%s: %v", v, err)
			continue
		}
		if c.LogFormat != strings.ToLower(v) {
			t.Errorf("LOG_FORMAT=%s: LogFormat = %q, want %q", v, c.LogFormat, strings.ToLower(v))
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"bad log level", map[string]string{"LOG_LEVEL": "verbose"}, []string{"LOG_LEVEL", "verbose"}},
		{"bad log format", map[string]string{"LOG_FORMAT": "xml"}, []string{"LOG_FORMAT", "xml"}},
		{"rate 0", map[string]string{"MOJODEX_SCHEDULER_RATE": "0"}, []string{"MOJODEX_SCHEDULER_RATE", "0"}},
		{"rate not a number", map[string]string{"MOJODEX_SCHEDULER_RATE": "fast"}, []string{"MOJODEX_SCHEDULER_RATE", "fast"}},
		{"rate NaN", map[string]string{"MOJODEX_SCHEDULER_RATE": "NaN"}, []string{"MOJODEX_SCHEDULER_RATE"}},
		{"burst 0", map[string]string{"MOJODEX_SCHEDULER_BURST": "0"}, []string{"MOJODEX_SCHEDULER_BURST", "0"}},
		{"burst negative", map[string]string{"MOJODEX_SCHEDULER_BURST": "-2"}, []string{"MOJODEX_SCHEDULER_BURST", "-2"}},
		{"burst not a number", map[string]string{"MOJODEX_SCHEDULER_BURST": "many"}, []string{"MOJODEX_SCHEDULER_BURST", "many"}},
		{"in-flight 0", map[string]string{"MOJODEX_SCHEDULER_MAX_IN_FLIGHT": "0"}, []string{"MOJODEX_SCHEDULER_MAX_IN_FLIGHT"}},
		{"attempts 0", map[string]string{"MOJODEX_SCHEDULER_MAX_ATTEMPTS": "0"}, []string{"MOJODEX_SCHEDULER_MAX_ATTEMPTS"}},
		{"attempts fractional", map[string]string{"MOJODEX_SCHEDULER_MAX_ATTEMPTS": "2.5"}, []string{"MOJODEX_SCHEDULER_MAX_ATTEMPTS", "2.5"}},
		{"timeout without unit", map[string]string{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT": "30"}, []string{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT", `"30"`}},
		{"timeout not a duration", map[string]string{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT": "soon"}, []string{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT", "soon"}},
		{"timeout 0", map[string]string{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT": "0s"}, []string{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT", "0s is out of range"}},
		{"shutdown negative", map[string]string{"MOJODEX_SCHEDULER_SHUTDOWN_TIMEOUT": "-1s"}, []string{"MOJODEX_SCHEDULER_SHUTDOWN_TIMEOUT", "-1s is out of range"}},
		{"gate interval bad", map[string]string{"MOJODEX_SCHEDULER_GATE_INTERVAL": "10 minutes"}, []string{"MOJODEX_SCHEDULER_GATE_INTERVAL", "10 minutes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(tt.env)
			if err == nil {
				t.Fatalf("Load succeeded: %#v", c)
			}
			if c != (Config{}) {
				t.Errorf("Load returned a config with its error: %#v", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q: %v", w, err)
				}
			}
			// A value that cannot be parsed is not also reported as out of range.
			if n := strings.Count(err.Error(), tt.want[0]); n != 1 {
				t.Errorf("%s reported %d times: %v", tt.want[0], n, err)
			}
		})
	}
}

func TestLoadRateNegativeMeansUnlimited(t *testing.T) {
	c, err := load(map[string]string{"MOJODEX_SCHEDULER_RATE": "-1"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Rate != -1 {
		t.Errorf("Rate = %v, want -1", c.Rate)
	}
}

func TestLoadReportsAllErrors(t *testing.T) {
	_, err := load(map[string]string{
		"LOG_LEVEL":                         "loud",
		"LOG_FORMAT":                        "xml",
		"MOJODEX_SCHEDULER_RATE":            "0",
		"MOJODEX_SCHEDULER_BURST":           "x",
		"MOJODEX_SCHEDULER_REQUEST_TIMEOUT": "30",
		"MOJODEX_SCHEDULER_MAX_ATTEMPTS":    "0",
		"MOJODEX_SCHEDULER_GATE_INTERVAL":   "-1m",
	})
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, name := range []string{
		"LOG_LEVEL", "LOG_FORMAT", "MOJODEX_SCHEDULER_RATE", "MOJODEX_SCHEDULER_BURST",
		"MOJODEX_SCHEDULER_REQUEST_TIMEOUT", "MOJODEX_SCHEDULER_MAX_ATTEMPTS", "MOJODEX_SCHEDULER_GATE_INTERVAL",
	} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 7 {
		t.Errorf("%d errors, want 7:\n%v", n, err)
	}
}

func TestCheckURIs(t *testing.T) {
	const good = "http://mojodex_backend:5000"
	tests := []struct {
		name                string
		backend, background string
		secret              string
		needSecret          bool
		want                []string // substrings of the error; nil: valid
		notWant             []string
	}{
		{name: "Mojodex .env values", backend: good, background: "http://mojodex_background:5000"},
		{name: "https", backend: "https://api.example.com", background: "https://bg.example.com"},
		{name: "ports and path prefixes", backend: "http://10.0.0.1:8080/mojodex/api", background: "https://bg.example.com:8443/prefix/"},
		{name: "upper-case scheme", backend: "HTTP://backend:5000", background: good},
		{name: "IPv6 host", backend: "http://[::1]:5000", background: good},
		{name: "secret given", backend: good, background: good, secret: "s", needSecret: true},
		{name: "secret not needed", backend: good, background: good},

		{name: "both missing", want: []string{"MOJODEX_BACKEND_URI", "BACKGROUND_BACKEND_URI"}},
		{name: "backend missing", background: good, want: []string{"MOJODEX_BACKEND_URI"}, notWant: []string{"BACKGROUND_BACKEND_URI"}},
		{name: "background missing", backend: good, want: []string{"BACKGROUND_BACKEND_URI"}, notWant: []string{"MOJODEX_BACKEND_URI"}},
		{name: "not a url", backend: "not a url", background: good, want: []string{"MOJODEX_BACKEND_URI", "not a url"}},
		{name: "ftp", backend: good, background: "ftp://x", want: []string{"BACKGROUND_BACKEND_URI", "ftp://x"}},
		{name: "no scheme, underscore host", backend: "mojodex_backend:5000", background: good, want: []string{"MOJODEX_BACKEND_URI", "mojodex_backend:5000"}},
		{name: "no scheme, plain host", backend: "localhost:5000", background: good, want: []string{"MOJODEX_BACKEND_URI", "localhost:5000"}},
		{name: "no scheme, no port", backend: "mojodex_backend", background: good, want: []string{"MOJODEX_BACKEND_URI"}},
		{name: "scheme only", backend: "http://", background: good, want: []string{"MOJODEX_BACKEND_URI"}},
		{name: "port without host", backend: "http://:5000", background: good, want: []string{"MOJODEX_BACKEND_URI"}},
		{name: "fragment", backend: "http://backend:5000/#x", background: good, want: []string{"MOJODEX_BACKEND_URI"}},
		{name: "highest port", backend: "http://backend:65535", background: "https://bg:1/"},
		{name: "port 0", backend: "http://backend:0", background: good, want: []string{`MOJODEX_BACKEND_URI: "http://backend:0": port 0 is out of range (1 to 65535)`}},
		{name: "port 99999", backend: good, background: "http://bg:99999/x", want: []string{`BACKGROUND_BACKEND_URI: "http://bg:99999/x": port 99999 is out of range (1 to 65535)`}},
		{name: "port 65536", backend: "https://backend:65536", background: good, want: []string{"MOJODEX_BACKEND_URI", "port 65536 is out of range"}},
		{name: "port not a number", backend: "http://backend:50a0", background: good, want: []string{"MOJODEX_BACKEND_URI", "invalid port"}},
		{name: "background example", backend: good, want: []string{"BACKGROUND_BACKEND_URI: is required (e.g. http://mojodex_background:5000)"}},
		{name: "backend example", background: good, want: []string{"MOJODEX_BACKEND_URI: is required (e.g. http://mojodex_backend:5000)"}},
		{
			name: "password in a bad URI is not shown", backend: "ftp://user:pa55word@backend", background: "http://u:pa55word@bg:70000",
			want: []string{"ftp://user:xxxxx@backend", "http://u:xxxxx@bg:70000"}, notWant: []string{"pa55word"},
		},
		{name: "secret required", backend: good, background: good, needSecret: true, want: []string{"MOJODEX_SCHEDULER_SECRET"}},
		{
			name: "all problems together", backend: "ftp://x", background: "nope", needSecret: true,
			want: []string{"MOJODEX_BACKEND_URI", "BACKGROUND_BACKEND_URI", "MOJODEX_SCHEDULER_SECRET"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{BackendURI: tt.backend, BackgroundURI: tt.background, Secret: tt.secret}
			err := c.CheckURIs(tt.needSecret)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckURIs: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckURIs succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q: %v", w, err)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error contains %q: %v", w, err)
				}
			}
		})
	}
}

// The secret never appears in an error.
func TestCheckURIsDoesNotLeakSecret(t *testing.T) {
	c := Config{BackendURI: "ftp://x", Secret: "hunter2-secret"}
	err := c.CheckURIs(true)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("CheckURIs = %v", err)
	}
}

// Level maps every accepted LOG_LEVEL word, and refuses others (a Config
// made by hand) with the message Load gives.
func TestLevelCoversTheAcceptedWords(t *testing.T) {
	for _, w := range settingByName["LOG_LEVEL"].enum {
		if _, err := (Config{LogLevel: w}).Level(); err != nil {
			t.Errorf("Level(%q): %v", w, err)
		}
	}
	_, err := Config{LogLevel: "loud"}.Level()
	want := `LOG_LEVEL: "loud" is not one of debug, info, warning, warn, error, critical`
	if err == nil || err.Error() != want {
		t.Errorf("Level(loud) = %v, want %q", err, want)
	}
}

// Lookup reads one variable as Load does; Default is its env tag's default,
// the value Load gives an unset variable.
func TestLookupAndDefault(t *testing.T) {
	environ := []string{"MOJODEX_SCHEDULER_HTTP_ADDR=", "MOJODEX_SCHEDULER_HTTP_ADDR=0.0.0.0:1", "LOG_LEVEL=debug", "LOG_LEVEL=error"}
	if v, ok := Lookup(environ, "MOJODEX_SCHEDULER_HTTP_ADDR"); ok {
		t.Errorf("an empty first entry: %q, set", v)
	}
	if v, ok := Lookup(environ, "LOG_LEVEL"); !ok || v != "debug" {
		t.Errorf("LOG_LEVEL: %q, %v; want the first entry", v, ok)
	}
	if v, ok := Lookup(environ, "PATH"); ok {
		t.Errorf("PATH: %q, set", v)
	}
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"MOJODEX_SCHEDULER_HTTP_ADDR":   c.HTTPAddr,
		"MOJODEX_SCHEDULER_REMOTE_ADDR": c.RemoteAddr,
		"LOG_FORMAT":                    c.LogFormat,
		"MOJODEX_SCHEDULER_SECRET":      "",
		"PATH":                          "",
	} {
		if got := Default(name); got != want {
			t.Errorf("Default(%s) = %q, want %q", name, got, want)
		}
	}
}
