package config

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The ranges of the specification, written out here independently of the
// struct tags: both edges are accepted, the values just past them are
// refused with the variable, the value and the range.
func TestRangeEdges(t *testing.T) {
	tests := []struct {
		name         string
		lo, hi       string // just inside
		below, above string // just outside
		rangeText    string
	}{
		{"MOJODEX_SCHEDULER_RATE", "0.01", "10000", "0.009999999999999998", "10000.000000000002", "0.01 to 10000, or negative for no limit"},
		{"MOJODEX_SCHEDULER_BURST", "1", "1000", "0", "1001", "1 to 1000"},
		{"MOJODEX_SCHEDULER_MAX_IN_FLIGHT", "1", "256", "0", "257", "1 to 256"},
		{"MOJODEX_SCHEDULER_QUEUE_SIZE", "1", "100000", "0", "100001", "1 to 100000"},
		{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT", "1ms", "1h", "999.999µs", "1h0m0.000000001s", "1ms to 1h"},
		{"MOJODEX_SCHEDULER_MAX_ATTEMPTS", "1", "10", "0", "11", "1 to 10"},
		{"MOJODEX_SCHEDULER_SHUTDOWN_TIMEOUT", "1ms", "1h", "999999ns", "3600000001us", "1ms to 1h"},
		{"MOJODEX_SCHEDULER_GATE_INTERVAL", "1s", "24h", "999ms", "24h0m0.001s", "1s to 24h"},
		{"MOJODEX_SCHEDULER_LEASE", "3s", "10m", "2.999999999s", "10m0.000000001s", "3s to 10m"},
		{"MOJODEX_SCHEDULER_LEASE_RENEW", "1s", "5m", "999ms", "5m1ns", "1s to 5m"},
		{"MOJODEX_SCHEDULER_REAPER_INTERVAL", "1s", "10m", "0.999s", "601s", "1s to 10m"},
		{"MOJODEX_SCHEDULER_REMOTE_MAX_CONNS", "1", "4096", "0", "4097", "1 to 4096"},
	}
	// The lease renewal may be at most half the lease: give the other one of
	// the pair a value that lets each one's own range be what is tested.
	others := map[string]map[string]string{
		"MOJODEX_SCHEDULER_LEASE":       {"MOJODEX_SCHEDULER_LEASE_RENEW": "1s"},
		"MOJODEX_SCHEDULER_LEASE_RENEW": {"MOJODEX_SCHEDULER_LEASE": "10m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := settingByName[tt.name]
			if !ok {
				t.Fatalf("%s is not a setting", tt.name)
			}
			if got := s.rangeText(); got != tt.rangeText {
				t.Errorf("range %q, want %q", got, tt.rangeText)
			}
			env := func(v string) map[string]string {
				m := map[string]string{tt.name: v}
				for k, ov := range others[tt.name] {
					m[k] = ov
				}
				return m
			}
			for _, v := range []string{tt.lo, tt.hi, " " + tt.lo + " "} {
				if _, err := load(env(v)); err != nil {
					t.Errorf("%s=%q refused: %v", tt.name, v, err)
				}
			}
			for _, v := range []string{tt.below, tt.above} {
				_, err := load(env(v))
				want := tt.name + ": " + v + " is out of range (" + tt.rangeText + ")"
				if err == nil || err.Error() != want {
					t.Errorf("%s=%s: error %v, want %q", tt.name, v, err, want)
				}
			}
			for _, v := range []string{"many", "1e", "0x10", "1_000", "ten seconds"} {
				_, err := load(env(v))
				if err == nil || !strings.HasPrefix(err.Error(), tt.name+": ") || !strings.Contains(err.Error(), strconv.Quote(v)+" is not a") {
					t.Errorf("%s=%q: error %v, want a parse error quoting the value", tt.name, v, err)
				}
			}
		})
	}
	// Every ranged setting is in the table above.
	n := 0
	for _, s := range settings {
		if s.hasRange {
			n++
		}
	}
	if n != len(tests) {
		t.Errorf("%d settings have a range, the table has %d", n, len(tests))
	}
}

// One message style: "NAME: value is out of range (range)" for a value that
// parses, "NAME: "value" is not ..." for one that does not.
func TestMessages(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"MOJODEX_SCHEDULER_GATE_INTERVAL": "10ms"}, "MOJODEX_SCHEDULER_GATE_INTERVAL: 10ms is out of range (1s to 24h)"},
		{map[string]string{"MOJODEX_SCHEDULER_GATE_INTERVAL": "1ns"}, "MOJODEX_SCHEDULER_GATE_INTERVAL: 1ns is out of range (1s to 24h)"},
		{map[string]string{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT": "1ns"}, "MOJODEX_SCHEDULER_REQUEST_TIMEOUT: 1ns is out of range (1ms to 1h)"},
		{map[string]string{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT": "30"}, `MOJODEX_SCHEDULER_REQUEST_TIMEOUT: "30" is not a duration (use Go syntax such as 30s, 10m, 1h)`},
		{map[string]string{"MOJODEX_SCHEDULER_MAX_ATTEMPTS": "1000000"}, "MOJODEX_SCHEDULER_MAX_ATTEMPTS: 1000000 is out of range (1 to 10)"},
		{map[string]string{"MOJODEX_SCHEDULER_MAX_IN_FLIGHT": "1000000000"}, "MOJODEX_SCHEDULER_MAX_IN_FLIGHT: 1000000000 is out of range (1 to 256)"},
		{map[string]string{"MOJODEX_SCHEDULER_MAX_IN_FLIGHT": "99999999999999999999"}, "MOJODEX_SCHEDULER_MAX_IN_FLIGHT: 99999999999999999999 is out of range (1 to 256)"},
		{map[string]string{"MOJODEX_SCHEDULER_BURST": "2.5"}, `MOJODEX_SCHEDULER_BURST: "2.5" is not a whole number`},
		{map[string]string{"MOJODEX_SCHEDULER_RATE": "Inf"}, `MOJODEX_SCHEDULER_RATE: "Inf" is not a finite number`},
		{map[string]string{"MOJODEX_SCHEDULER_RATE": "-Inf"}, `MOJODEX_SCHEDULER_RATE: "-Inf" is not a finite number`},
		{map[string]string{"MOJODEX_SCHEDULER_RATE": "NaN"}, `MOJODEX_SCHEDULER_RATE: "NaN" is not a finite number`},
		{map[string]string{"MOJODEX_SCHEDULER_RATE": "1e400"}, "MOJODEX_SCHEDULER_RATE: 1e400 is out of range (0.01 to 10000, or negative for no limit)"},
		{map[string]string{"MOJODEX_SCHEDULER_RATE": "0"}, "MOJODEX_SCHEDULER_RATE: 0 is out of range (0.01 to 10000, or negative for no limit)"},
		{map[string]string{"MOJODEX_SCHEDULER_RATE": "-0"}, "MOJODEX_SCHEDULER_RATE: -0 is out of range (0.01 to 10000, or negative for no limit)"},
		{map[string]string{"MOJODEX_SCHEDULER_RATE": "0x10"}, `MOJODEX_SCHEDULER_RATE: "0x10" is not a number`},
		{map[string]string{"MOJODEX_SCHEDULER_INSECURE_REMOTE": "yes"}, `MOJODEX_SCHEDULER_INSECURE_REMOTE: "yes" is not true or false`},
		{map[string]string{"MOJODEX_SCHEDULER_INSECURE_REMOTE": "t"}, `MOJODEX_SCHEDULER_INSECURE_REMOTE: "t" is not true or false`},
		{map[string]string{"LOG_LEVEL": "verbose"}, `LOG_LEVEL: "verbose" is not one of debug, info, warning, warn, error, critical`},
		{map[string]string{"LOG_LEVEL": "fatal"}, `LOG_LEVEL: "fatal" is not one of debug, info, warning, warn, error, critical`},
		{map[string]string{"LOG_FORMAT": "xml"}, `LOG_FORMAT: "xml" is not one of json, console, auto`},
		{map[string]string{"MOJODEX_SCHEDULER_UI_AUTH": "none"}, `MOJODEX_SCHEDULER_UI_AUTH: "none" is not one of actions, all`},
		{map[string]string{"MOJODEX_SCHEDULER_PG_SCHEMA": "Sched"}, `MOJODEX_SCHEDULER_PG_SCHEMA: "Sched" does not match ^[a-z_][a-z0-9_]{0,62}$ (lower-case letters, digits and _, not starting with a digit, at most 63 characters)`},
		{map[string]string{"MOJODEX_SCHEDULER_REPLICA": "-a"}, `MOJODEX_SCHEDULER_REPLICA: "-a" does not match ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ (letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters)`},
		{map[string]string{"MOJODEX_SCHEDULER_HTTP_ADDR": "localhost"}, `MOJODEX_SCHEDULER_HTTP_ADDR: "localhost" is not host:port (e.g. 127.0.0.1:9464), nor off: missing port in address`},
		{map[string]string{"MOJODEX_SCHEDULER_REMOTE_ADDR": "127.0.0.1:99999"}, `MOJODEX_SCHEDULER_REMOTE_ADDR: "127.0.0.1:99999": port 99999 is out of range (0 to 65535)`},
		{map[string]string{"MOJODEX_SCHEDULER_REMOTE_ADDR": "127.0.0.1:http"}, `MOJODEX_SCHEDULER_REMOTE_ADDR: "127.0.0.1:http": port "http" is not a number`},
		{map[string]string{"MOJODEX_SCHEDULER_UI_TOKEN": "short"}, "MOJODEX_SCHEDULER_UI_TOKEN: is 5 characters long: set at least 16, or leave it empty to turn status-page actions off"},
		{map[string]string{"MOJODEX_SCHEDULER_STATE": "mysql://root:hunter2@db/x"}, "MOJODEX_SCHEDULER_STATE: mysql://root:xxxxx@db/x is not a file path, off, or a postgres:// or postgresql:// URL"},
		{map[string]string{"MOJODEX_SCHEDULER_STATE": "postgres//u:hunter2@db/x"}, `MOJODEX_SCHEDULER_STATE: xxxxx@db/x looks like a PostgreSQL URL without its "://": write postgres://user:password@host/db`},
		{map[string]string{"MOJODEX_SCHEDULER_STATE": "host=db dbname=x user=u password=hunter2"}, "MOJODEX_SCHEDULER_STATE: looks like a key=value connection string (host=… dbname=…): write it as a URL, postgres://user:password@host/db"},
		{map[string]string{"MOJODEX_SCHEDULER_STATE": "postgresql:/u:hunter2@db/x"}, `MOJODEX_SCHEDULER_STATE: xxxxx@db/x looks like a PostgreSQL URL without its "://": write postgres://user:password@host/db`},
		{map[string]string{"MOJODEX_SCHEDULER_STATE": "postgres://u:hunter2@db:70000/x"}, "MOJODEX_SCHEDULER_STATE: postgres://u:xxxxx@db:70000/x: port 70000 is out of range (1 to 65535)"},
		{map[string]string{"MOJODEX_SCHEDULER_LEASE_RENEW": "10s"}, "MOJODEX_SCHEDULER_LEASE_RENEW: 10s is more than half of MOJODEX_SCHEDULER_LEASE (15s)"},
		{map[string]string{"MOJODEX_SCHEDULER_LEASE": "1m", "MOJODEX_SCHEDULER_LEASE_RENEW": "30.001s"}, "MOJODEX_SCHEDULER_LEASE_RENEW: 30.001s is more than half of MOJODEX_SCHEDULER_LEASE (1m)"},
		{map[string]string{"MOJODEX_SCHEDULER_UI_AUTH": "all"}, "MOJODEX_SCHEDULER_UI_AUTH: all needs MOJODEX_SCHEDULER_UI_TOKEN (every page would be locked)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := load(tt.env)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Load(%v) error\n  %v\nwant\n  %s", tt.env, err, tt.want)
			}
		})
	}
}

// Values that are accepted, with what they become.
func TestAccepted(t *testing.T) {
	tests := []struct {
		env   map[string]string
		check func(Config) bool
	}{
		{map[string]string{"MOJODEX_SCHEDULER_RATE": "-1"}, func(c Config) bool { return c.Rate == -1 }},
		{map[string]string{"MOJODEX_SCHEDULER_RATE": "-0.5"}, func(c Config) bool { return c.Rate == -0.5 }},
		{map[string]string{"MOJODEX_SCHEDULER_RATE": "1e3"}, func(c Config) bool { return c.Rate == 1000 }},
		{map[string]string{"MOJODEX_SCHEDULER_RATE": ".5"}, func(c Config) bool { return c.Rate == 0.5 }},
		{map[string]string{"MOJODEX_SCHEDULER_BURST": "010"}, func(c Config) bool { return c.Burst == 10 }}, // decimal, not octal
		{map[string]string{"MOJODEX_SCHEDULER_BURST": "+7"}, func(c Config) bool { return c.Burst == 7 }},
		{map[string]string{"MOJODEX_SCHEDULER_INSECURE_REMOTE": "1"}, func(c Config) bool { return c.InsecureRemote }},
		{map[string]string{"MOJODEX_SCHEDULER_INSECURE_REMOTE": "True"}, func(c Config) bool { return c.InsecureRemote }},
		{map[string]string{"MOJODEX_SCHEDULER_INSECURE_REMOTE": "tRuE"}, func(c Config) bool { return c.InsecureRemote }},
		{map[string]string{"MOJODEX_SCHEDULER_INSECURE_REMOTE": "FALSE"}, func(c Config) bool { return !c.InsecureRemote }},
		{map[string]string{"MOJODEX_SCHEDULER_INSECURE_REMOTE": "0"}, func(c Config) bool { return !c.InsecureRemote }},
		{map[string]string{"MOJODEX_SCHEDULER_HTTP_ADDR": "off"}, func(c Config) bool { return c.HTTPAddr == "off" }},
		{map[string]string{"MOJODEX_SCHEDULER_HTTP_ADDR": " Off "}, func(c Config) bool { return c.HTTPAddr == "off" }},
		{map[string]string{"MOJODEX_SCHEDULER_HTTP_ADDR": "0.0.0.0:0"}, func(c Config) bool { return c.HTTPAddr == "0.0.0.0:0" }},
		{map[string]string{"MOJODEX_SCHEDULER_HTTP_ADDR": "[::1]:65535"}, func(c Config) bool { return c.HTTPAddr == "[::1]:65535" }},
		{map[string]string{"MOJODEX_SCHEDULER_REMOTE_ADDR": "scheduler.internal:4000"}, func(c Config) bool { return c.RemoteAddr == "scheduler.internal:4000" }},
		{map[string]string{"MOJODEX_SCHEDULER_STATE": "OFF"}, func(c Config) bool { return c.State == "off" }},
		{map[string]string{"MOJODEX_SCHEDULER_STATE": "postgres/state.db"}, func(c Config) bool { return c.State == "postgres/state.db" }}, // a directory named postgres
		{map[string]string{"MOJODEX_SCHEDULER_STATE": "/var/lib/s.db"}, func(c Config) bool { return c.State == "/var/lib/s.db" }},
		{map[string]string{"MOJODEX_SCHEDULER_PG_SCHEMA": "_" + strings.Repeat("a", 62)}, func(c Config) bool { return len(c.PGSchema) == 63 }},
		{map[string]string{"MOJODEX_SCHEDULER_REPLICA": "A" + strings.Repeat("-", 62)}, func(c Config) bool { return len(c.Replica) == 63 }},
		{map[string]string{"MOJODEX_SCHEDULER_UI_TOKEN": strings.Repeat("é", 16)}, func(c Config) bool { return c.UIToken == strings.Repeat("é", 16) }},
		{map[string]string{"MOJODEX_SCHEDULER_UI_TOKEN": strings.Repeat("x", 16), "MOJODEX_SCHEDULER_UI_AUTH": "ALL"}, func(c Config) bool { return c.UIAuth == "all" }},
		{map[string]string{"MOJODEX_SCHEDULER_LEASE": "10s", "MOJODEX_SCHEDULER_LEASE_RENEW": "5s"}, func(c Config) bool { return c.LeaseRenew*2 == c.Lease }},
		{map[string]string{"LOG_FORMAT": " JSON "}, func(c Config) bool { return c.LogFormat == "json" }},
		{map[string]string{"MOJODEX_SCHEDULER_SECRET": " s p "}, func(c Config) bool { return c.Secret == " s p " }}, // verbatim
	}
	for _, tt := range tests {
		c, err := load(tt.env)
		if err != nil {
			t.Errorf("Load(%v): %v", tt.env, err)
			continue
		}
		if !tt.check(c) {
			t.Errorf("Load(%v) = %#v", tt.env, c)
		}
	}
}

// Strings the patterns and checks refuse, one past each limit.
func TestRefusedStrings(t *testing.T) {
	for _, tt := range []struct{ name, value string }{
		{"MOJODEX_SCHEDULER_PG_SCHEMA", "_" + strings.Repeat("a", 63)},
		{"MOJODEX_SCHEDULER_PG_SCHEMA", "1abc"},
		{"MOJODEX_SCHEDULER_PG_SCHEMA", "a-b"},
		{"MOJODEX_SCHEDULER_PG_SCHEMA", "a;drop"},
		{"MOJODEX_SCHEDULER_REPLICA", "A" + strings.Repeat("b", 63)},
		{"MOJODEX_SCHEDULER_REPLICA", ".a"},
		{"MOJODEX_SCHEDULER_REPLICA", "a b"},
		{"MOJODEX_SCHEDULER_UI_TOKEN", strings.Repeat("x", 15)},
		{"MOJODEX_SCHEDULER_HTTP_ADDR", "127.0.0.1:"},
		{"MOJODEX_SCHEDULER_HTTP_ADDR", "127.0.0.1:-1"},
		{"MOJODEX_SCHEDULER_HTTP_ADDR", "127.0.0.1:65536"},
		{"MOJODEX_SCHEDULER_HTTP_ADDR", "::1:80"},
		{"MOJODEX_SCHEDULER_REMOTE_ADDR", "localhost"},
		{"MOJODEX_SCHEDULER_REMOTE_ADDR", "disabled"},
		{"MOJODEX_SCHEDULER_STATE", "sqlite://x.db"},
		{"MOJODEX_SCHEDULER_STATE", "postgres://db:0/x"},
		{"MOJODEX_SCHEDULER_STATE", "postgres://db:abc/x"},
	} {
		_, err := load(map[string]string{tt.name: tt.value})
		if err == nil || !strings.HasPrefix(err.Error(), tt.name+": ") {
			t.Errorf("%s=%q: error %v, want one naming the variable", tt.name, tt.value, err)
		}
	}
}

// Every bad variable is reported, one line each, whatever its kind.
func TestEveryBadVariableReported(t *testing.T) {
	env := map[string]string{
		"MOJODEX_SCHEDULER_GATE_INTERVAL":    "10ms",
		"MOJODEX_SCHEDULER_INSECURE_REMOTE":  "yes",
		"MOJODEX_SCHEDULER_HTTP_ADDR":        "nowhere",
		"MOJODEX_SCHEDULER_PG_SCHEMA":        "X",
		"MOJODEX_SCHEDULER_UI_TOKEN":         "short",
		"MOJODEX_SCHEDULER_QUEUE_SIZE":       "0",
		"MOJODEX_SCHEDULER_LEASE":            "1s",  // out of range: the renewal is not compared with it
		"MOJODEX_SCHEDULER_LEASE_RENEW":      "10s", // in range on its own
		"MOJODEX_SCHEDULER_UI_AUTH":          "all", // the token is bad: reported once, for the token
		"MOJODEX_SCHEDULER_STATE":            "redis://x",
		"MOJODEX_SCHEDULER_REMOTE_MAX_CONNS": "lots",
	}
	_, err := load(env)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		"MOJODEX_SCHEDULER_QUEUE_SIZE:", "MOJODEX_SCHEDULER_GATE_INTERVAL:", "MOJODEX_SCHEDULER_STATE:",
		"MOJODEX_SCHEDULER_PG_SCHEMA:", "MOJODEX_SCHEDULER_LEASE:", "MOJODEX_SCHEDULER_HTTP_ADDR:",
		"MOJODEX_SCHEDULER_REMOTE_MAX_CONNS:", "MOJODEX_SCHEDULER_INSECURE_REMOTE:", "MOJODEX_SCHEDULER_UI_TOKEN:",
	}
	if len(lines) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], w)
		}
	}
}

// The environment in os.Environ form: the first entry of a name counts, as
// with os.Getenv; entries without "=" and empty names are ignored; a value
// may contain "=".
func TestEnviron(t *testing.T) {
	c, warnings, err := Load([]string{
		"MOJODEX_SCHEDULER_BURST=7",
		"MOJODEX_SCHEDULER_BURST=8",
		"garbage",
		"=C:=C:\\",
		"MOJODEX_SCHEDULER_SECRET=a=b",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Burst != 7 || c.Secret != "a=b" || len(warnings) != 0 {
		t.Errorf("Burst %d, Secret %q, warnings %v", c.Burst, c.Secret, warnings)
	}
	c, _, err = Load(nil)
	if err != nil || c != defaults {
		t.Errorf("Load(nil) = %#v, %v", c, err)
	}
}

// Every default lies in its own range and passes its own checks.
func TestDefaultsValid(t *testing.T) {
	for _, s := range settings {
		if s.def == "" {
			continue
		}
		var c Config
		if err := s.load(reflect.ValueOf(&c).Elem().Field(s.field), s.def); err != nil {
			t.Errorf("%s: default %q: %v", s.name, s.def, err)
		}
	}
}

// Malformed tags are refused when the table is read.
func TestReadSettingsRefusesBadTags(t *testing.T) {
	type noEnv struct {
		A string `unset:"x"`
	}
	type badRange struct {
		A int `env:"A, default=1" range:"1-2"`
	}
	type badBound struct {
		A int `env:"A, default=1" range:"1..x"`
	}
	type rangeOnString struct {
		A string `env:"A, default=a" range:"1..2"`
	}
	type badPattern struct {
		A string `env:"A, default=a" pattern:"("`
	}
	type badCheck struct {
		A string `env:"A, default=a" check:"magic"`
	}
	type badAtMost struct {
		A int `env:"A, default=1" atmost:"B/2"`
	}
	type badOption struct {
		A string `env:"A, required"`
	}
	type noDefault struct {
		A string `env:"A"`
	}
	type badType struct {
		A []string `env:"A, default=a"`
	}
	type badInt64 struct {
		A int64 `env:"A, default=1"`
	}
	for _, typ := range []any{noEnv{}, badRange{}, badBound{}, rangeOnString{}, badPattern{}, badCheck{}, badAtMost{}, badOption{}, noDefault{}, badType{}, badInt64{}} {
		if _, err := readSettings(reflect.TypeOf(typ)); err == nil {
			t.Errorf("%T: no error", typ)
		}
	}
}

// The tolerance of the rate's float edges is one ULP: check the table's
// values really are the neighbours of the bounds.
func TestRateEdgeValues(t *testing.T) {
	if v, _ := strconv.ParseFloat("0.009999999999999998", 64); v != math.Nextafter(0.01, 0) {
		t.Errorf("below = %v, want %v", v, math.Nextafter(0.01, 0))
	}
	if v, _ := strconv.ParseFloat("10000.000000000002", 64); v != math.Nextafter(10000, math.Inf(1)) {
		t.Errorf("above = %v, want %v", v, math.Nextafter(10000, math.Inf(1)))
	}
}

func TestStateLocationOfHandMadeConfig(t *testing.T) {
	_, err := Config{State: "mysql://u:hunter2@x"}.StateLocation()
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.HasPrefix(err.Error(), "MOJODEX_SCHEDULER_STATE: ") {
		t.Errorf("StateLocation: %v", err)
	}
	loc, err := Config{State: " Off "}.StateLocation()
	if err != nil || loc.Kind != StateMemory {
		t.Errorf("StateLocation = %v, %v", loc, err)
	}
	if _, err := (Config{}).StateLocation(); err == nil {
		t.Error("StateLocation of an empty State: no error")
	}
}
