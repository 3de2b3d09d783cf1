// Package config reads the scheduler's settings from the environment, with
// the variable names Mojodex deployments already use.
//
// Every setting is declared once, as a Config field with struct tags: its
// variable and default (`env`), and what it accepts (`range`, `enum`,
// `pattern`, `check`). Load validates with those tags, and the test of
// docs/configuration.md compares that document's table with them, so the
// code and the documentation cannot drift apart.
//
// The package never logs: Load returns its warnings, and Config can be
// logged by the caller (it implements zerolog.LogObjectMarshaler) without
// the secret, the UI token or a database password.
package config

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/sethvargo/go-envconfig"
)

// Config is the process configuration. The tags are read by this package:
//
//   - env: the variable, and its default ("NAME, default=VALUE");
//   - unset: what an unset variable without a default means (documentation);
//   - range: "LOW..HIGH", inclusive, for numbers and durations;
//   - negative: a negative number is also accepted, and means this;
//   - atmost: "OTHER_VARIABLE/N": at most the other setting divided by N;
//   - enum: the accepted words, in any case;
//   - pattern, hint: a regular expression the value must match, and what it
//     means in words;
//   - check: uri, addr, state, path, token (see accepted in settings.go);
//   - example: the example given in error messages;
//   - secret: the value is never printed, in errors or elsewhere (the tests
//     check every printed form of every such setting).
//
// docs/configuration.md documents every variable.
type Config struct {
	// BackendURI is the base URI of the Mojodex backend service.
	BackendURI string `env:"MOJODEX_BACKEND_URI" unset:"required" check:"uri" example:"http://mojodex_backend:5000"`
	// BackgroundURI is the base URI of the Mojodex background service.
	BackgroundURI string `env:"BACKGROUND_BACKEND_URI" unset:"required" check:"uri" example:"http://mojodex_background:5000"`
	// Secret is sent verbatim as the Authorization header. Never printed.
	Secret string `env:"MOJODEX_SCHEDULER_SECRET" unset:"required when a task sends it" secret:"true"`
	// LogLevel is the log level as given; Level parses it.
	LogLevel string `env:"LOG_LEVEL, default=info" enum:"debug,info,warning,warn,error,critical"`
	// LogFormat is json, console, or auto (console on a terminal, else
	// json), in lower case.
	LogFormat string `env:"LOG_FORMAT, default=auto" enum:"json,console,auto"`

	// Tasks is the path of a task file replacing the embedded defaults.
	Tasks string `env:"MOJODEX_SCHEDULER_TASKS" unset:"embedded defaults" check:"path"`
	// Rate is the API calls per second across all tasks (negative: unlimited).
	Rate float64 `env:"MOJODEX_SCHEDULER_RATE, default=10" range:"0.01..10000" negative:"no limit"`
	// Burst is the token-bucket burst of the rate limit.
	Burst int `env:"MOJODEX_SCHEDULER_BURST, default=5" range:"1..1000"`
	// MaxInFlight caps the API calls in flight at once, per service: the
	// backend and the background service each get this budget.
	MaxInFlight int `env:"MOJODEX_SCHEDULER_MAX_IN_FLIGHT, default=4" range:"1..256"`
	// QueueSize bounds the runs of each service waiting in the API client; a
	// fire that finds its service's queue full is skipped.
	QueueSize int `env:"MOJODEX_SCHEDULER_QUEUE_SIZE, default=1000" range:"1..100000"`
	// RequestTimeout bounds each HTTP attempt.
	RequestTimeout time.Duration `env:"MOJODEX_SCHEDULER_REQUEST_TIMEOUT, default=30s" range:"1ms..1h"`
	// MaxAttempts bounds the attempts of one call (retries of transient failures).
	MaxAttempts int `env:"MOJODEX_SCHEDULER_MAX_ATTEMPTS, default=3" range:"1..10"`
	// ShutdownTimeout is how long runs in flight may take to finish on SIGTERM.
	ShutdownTimeout time.Duration `env:"MOJODEX_SCHEDULER_SHUTDOWN_TIMEOUT, default=30s" range:"1ms..1h"`
	// GateInterval is how often the email and push probes are repeated.
	GateInterval time.Duration `env:"MOJODEX_SCHEDULER_GATE_INTERVAL, default=10m" range:"1s..24h"`

	// State is where state is kept (claimed slots, run history, paused
	// flags, checkpoints): a file path, "off" (memory only), or a
	// postgres:// URL. StateLocation parses it; it may hold a password, so
	// print StateLocation().Redacted(), never this field.
	State string `env:"MOJODEX_SCHEDULER_STATE, default=data/mojodex-scheduler.db" check:"state"`
	// PGSchema is the schema of the PostgreSQL store.
	PGSchema string `env:"MOJODEX_SCHEDULER_PG_SCHEMA, default=mojodex_scheduler" pattern:"^[a-z_][a-z0-9_]{0,62}$" hint:"lower-case letters, digits and _, not starting with a digit, at most 63 characters"`
	// Replica names this process among the replicas sharing a store; empty
	// means the caller derives one (hostname-pid).
	Replica string `env:"MOJODEX_SCHEDULER_REPLICA" unset:"hostname-pid" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$" hint:"letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters"`
	// Lease is how long a replica holds a run in progress without renewing it.
	Lease time.Duration `env:"MOJODEX_SCHEDULER_LEASE, default=15s" range:"3s..10m"`
	// LeaseRenew is how often a replica renews the lease of its runs.
	LeaseRenew time.Duration `env:"MOJODEX_SCHEDULER_LEASE_RENEW, default=5s" range:"1s..5m" atmost:"MOJODEX_SCHEDULER_LEASE/2"`
	// ReaperInterval is how often expired leases are looked for.
	ReaperInterval time.Duration `env:"MOJODEX_SCHEDULER_REAPER_INTERVAL, default=5s" range:"1s..10m"`

	// HTTPAddr is where /metrics, /healthz and /readyz are served; "off"
	// disables the listener.
	HTTPAddr string `env:"MOJODEX_SCHEDULER_HTTP_ADDR, default=127.0.0.1:9464" check:"addr"`
	// RemoteAddr is the host:port of the remote control endpoint (hollywood's
	// remote), or "off" to serve none. Loopback by default: nothing
	// authenticates a sender without mutual TLS.
	RemoteAddr string `env:"MOJODEX_SCHEDULER_REMOTE_ADDR, default=127.0.0.1:4000" check:"addr"`
	// RemoteMaxConns caps the concurrent connections to the remote endpoint.
	RemoteMaxConns int `env:"MOJODEX_SCHEDULER_REMOTE_MAX_CONNS, default=64" range:"1..4096"`
	// TLSCert is the PEM certificate of the remote endpoint (with TLSKey and
	// TLSCA it enables mutual TLS).
	TLSCert string `env:"MOJODEX_SCHEDULER_TLS_CERT" unset:"none" check:"path"`
	// TLSKey is the PEM private key of TLSCert.
	TLSKey string `env:"MOJODEX_SCHEDULER_TLS_KEY" unset:"none" check:"path"`
	// TLSCA is the PEM CA bundle that peers' certificates must chain to.
	TLSCA string `env:"MOJODEX_SCHEDULER_TLS_CA" unset:"none" check:"path"`
	// InsecureRemote allows a non-loopback RemoteAddr without mutual TLS.
	InsecureRemote bool `env:"MOJODEX_SCHEDULER_INSECURE_REMOTE, default=false"`

	// UIToken enables the status page's actions (and, with UIAuth "all",
	// guards every page). Empty: actions off. Never printed.
	UIToken string `env:"MOJODEX_SCHEDULER_UI_TOKEN" unset:"status-page actions off" check:"token" secret:"true"`
	// UIAuth is "actions" (only actions need UIToken) or "all" (read-only
	// pages need it too), in lower case.
	UIAuth string `env:"MOJODEX_SCHEDULER_UI_AUTH, default=actions" enum:"actions,all"`
}

// Load reads the configuration from environ, a list of "NAME=value" entries
// as os.Environ returns. A variable set to the empty string (or, but for
// free text, to spaces only) counts as unset and takes its default; when a
// name appears twice, the first entry counts (as with os.Getenv). Every bad
// value is reported, joined, one line each naming its variable; then the
// returned Config is the zero value.
//
// The warnings name MOJODEX_SCHEDULER_* variables (and near misses of the
// other names) that are not settings, with the closest setting; they are
// returned whether or not err is nil.
//
// The service URIs and the secret are checked by CheckURIs, since commands
// that make no call do not need them.
func Load(environ []string) (Config, []Warning, error) {
	set, names := parseEnviron(environ)
	warnings := unknownVariables(names)
	env, err := readRaw(context.Background(), set)
	if err != nil {
		return Config{}, warnings, err
	}
	var c Config
	v := reflect.ValueOf(&c).Elem()
	var errs []error
	bad := make(map[string]bool) // variables already reported
	for _, s := range settings {
		raw := env[s.name]
		if s.trims() {
			raw = strings.TrimSpace(raw)
		}
		if raw == "" {
			raw = s.def
		}
		if err := s.load(v.Field(s.field), raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			bad[s.name] = true
		}
	}
	for _, x := range crossChecks {
		if bad[x.name] || bad[x.other] {
			continue // each part already reported on its own
		}
		if err := x.check(c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", x.name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, warnings, err
	}
	return c, warnings, nil
}

// readRaw reads the text of every setting through go-envconfig, which owns
// the variable names and the defaults (the `env:"NAME, default=…"` tags);
// set holds the variables set to a non-empty value (parseEnviron), so that
// one set to the empty string counts as unset. Turning the text into
// typed, range-checked values is this package's (settings.go), since every
// message quotes the raw value and the parsing is stricter than
// go-envconfig's (decimal whole numbers only, finite numbers,
// true/false/1/0 booleans).
func readRaw(ctx context.Context, set map[string]string) (map[string]string, error) {
	t := reflect.TypeFor[Config]()
	fields := make([]reflect.StructField, t.NumField())
	for i := range fields {
		f := t.Field(i)
		fields[i] = reflect.StructField{Name: f.Name, Type: reflect.TypeFor[string](), Tag: reflect.StructTag(`env:"` + f.Tag.Get("env") + `"`)}
	}
	raw := reflect.New(reflect.StructOf(fields))
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: raw.Interface(), Lookuper: envconfig.MapLookuper(set)}); err != nil {
		return nil, fmt.Errorf("read the environment: %w", err)
	}
	out := make(map[string]string, len(settings))
	for _, s := range settings {
		out[s.name] = raw.Elem().Field(s.field).String()
	}
	return out, nil
}

// Lookup returns the value of the variable name in environ as Load reads
// it: the first entry of the name counts, and one set to the empty string
// is unset. The value is not checked: for a command that needs one
// setting and must not fail on the others.
func Lookup(environ []string, name string) (string, bool) {
	set, _ := parseEnviron(environ)
	v, ok := set[name]
	return v, ok
}

// Default returns the default value of the setting read from the variable
// name, as its env tag gives it; "" when it has none or is not a setting.
func Default(name string) string {
	if s, ok := settingByName[name]; ok {
		return s.def
	}
	return ""
}

// parseEnviron turns "NAME=value" entries into a map of the variables set to
// a non-empty value (the first entry of a name counts), and the list of every
// name seen, empty or not.
func parseEnviron(environ []string) (map[string]string, []string) {
	env := make(map[string]string, len(environ))
	seen := make(map[string]bool, len(environ))
	var names []string
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
		if val != "" {
			env[name] = val
		}
	}
	return env, names
}

// crossCheck is a rule between two settings, checked once both are valid on
// their own. doc is appended to the accepted values of name in the
// documentation.
type crossCheck struct {
	name, other string
	doc         string
	check       func(Config) error
}

// crossChecks are built from the atmost tags, plus the rules that tags do
// not express.
var crossChecks = append(atMostChecks(), crossCheck{
	name:  "MOJODEX_SCHEDULER_UI_AUTH",
	other: "MOJODEX_SCHEDULER_UI_TOKEN",
	doc:   "all needs MOJODEX_SCHEDULER_UI_TOKEN",
	check: func(c Config) error {
		if c.UIAuth == "all" && c.UIToken == "" {
			return errors.New("all needs MOJODEX_SCHEDULER_UI_TOKEN (every page would be locked)")
		}
		return nil
	},
})

// Level parses LOG_LEVEL: debug, info, warning or warn, error, or critical,
// in any case and without surrounding spaces. critical logs at error: the
// scheduler's logger has no level above error that does not exit.
func (c Config) Level() (zerolog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(c.LogLevel)) {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info", "":
		return zerolog.InfoLevel, nil
	case "warning", "warn":
		return zerolog.WarnLevel, nil
	case "error", "critical":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("LOG_LEVEL: %w", notOneOf(c.LogLevel, settingByName["LOG_LEVEL"].enum))
}

// CheckURIs checks that both service URIs are set and are absolute http(s)
// URLs with a host, a port from 1 to 65535 if any, and no fragment, and
// that the secret is set when needSecret is true. Every problem is
// reported, joined.
func (c Config) CheckURIs(needSecret bool) error {
	var errs []error
	for _, v := range []struct{ name, val string }{
		{"MOJODEX_BACKEND_URI", c.BackendURI},
		{"BACKGROUND_BACKEND_URI", c.BackgroundURI},
	} {
		if err := checkURI(v.val, settingByName[v.name].example); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.name, err))
		}
	}
	if needSecret && c.Secret == "" {
		errs = append(errs, errors.New("MOJODEX_SCHEDULER_SECRET: is required by at least one task (auth: true)"))
	}
	return errors.Join(errs...)
}
