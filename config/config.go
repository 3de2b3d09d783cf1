// Package config reads the scheduler's settings from the environment, with
// the variable names Mojodex deployments already use.
package config

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/sethvargo/go-envconfig"
)

// Config is the process configuration. Field tags name the environment
// variables; README.md lists them with their defaults.
type Config struct {
	// BackendURI is the base URI of the Mojodex backend service.
	BackendURI string `env:"MOJODEX_BACKEND_URI"`
	// BackgroundURI is the base URI of the Mojodex background service.
	BackgroundURI string `env:"BACKGROUND_BACKEND_URI"`
	// Secret is sent verbatim as the Authorization header. Never logged.
	Secret string `env:"MOJODEX_SCHEDULER_SECRET"`
	// LogLevel is debug, info, warning (or warn) or error, in any case.
	LogLevel string `env:"LOG_LEVEL, default=info"`
	// LogFormat is json, console, or auto (console on a terminal, else json).
	LogFormat string `env:"LOG_FORMAT, default=auto"`

	// Tasks is the path of a task file replacing the embedded defaults.
	Tasks string `env:"MOJODEX_SCHEDULER_TASKS"`
	// Rate is the API calls per second across all tasks (negative: unlimited).
	Rate float64 `env:"MOJODEX_SCHEDULER_RATE, default=10"`
	// Burst is the token-bucket burst of the rate limit.
	Burst int `env:"MOJODEX_SCHEDULER_BURST, default=5"`
	// MaxInFlight caps the API calls in flight at once.
	MaxInFlight int `env:"MOJODEX_SCHEDULER_MAX_IN_FLIGHT, default=4"`
	// RequestTimeout bounds each HTTP attempt.
	RequestTimeout time.Duration `env:"MOJODEX_SCHEDULER_REQUEST_TIMEOUT, default=30s"`
	// MaxAttempts bounds the attempts of one call (retries of transient failures).
	MaxAttempts int `env:"MOJODEX_SCHEDULER_MAX_ATTEMPTS, default=3"`
	// ShutdownTimeout is how long runs in flight may take to finish on SIGTERM.
	ShutdownTimeout time.Duration `env:"MOJODEX_SCHEDULER_SHUTDOWN_TIMEOUT, default=30s"`
	// State is the state file (claimed slots, run history, paused flags,
	// checkpoints); "off" keeps state in memory only.
	State string `env:"MOJODEX_SCHEDULER_STATE, default=data/mojodex-scheduler.db"`
	// HTTPAddr is where /metrics, /healthz and /readyz are served; "off"
	// disables the listener.
	HTTPAddr string `env:"MOJODEX_SCHEDULER_HTTP_ADDR, default=127.0.0.1:9464"`
	// GateInterval is how often the email and push probes are repeated.
	GateInterval time.Duration `env:"MOJODEX_SCHEDULER_GATE_INTERVAL, default=10m"`

	// RemoteAddr is the host:port of the remote control endpoint (hollywood's
	// remote), or "off" to serve none. Loopback by default: nothing
	// authenticates a sender without mutual TLS.
	RemoteAddr string `env:"MOJODEX_SCHEDULER_REMOTE_ADDR, default=127.0.0.1:4000"`
	// TLSCert is the PEM certificate of the remote endpoint (with TLSKey and
	// TLSCA it enables mutual TLS).
	TLSCert string `env:"MOJODEX_SCHEDULER_TLS_CERT"`
	// TLSKey is the PEM private key of TLSCert.
	TLSKey string `env:"MOJODEX_SCHEDULER_TLS_KEY"`
	// TLSCA is the PEM CA bundle that peers' certificates must chain to.
	TLSCA string `env:"MOJODEX_SCHEDULER_TLS_CA"`
	// InsecureRemote allows a non-loopback RemoteAddr without mutual TLS.
	InsecureRemote bool `env:"MOJODEX_SCHEDULER_INSECURE_REMOTE, default=false"`
	// RemoteMaxConns caps the connections the remote endpoint holds at once
	// (lowered if need be to keep descriptors for the rest of the process).
	RemoteMaxConns int `env:"MOJODEX_SCHEDULER_REMOTE_MAX_CONNS, default=64"`
}

// Load reads the configuration through l (envconfig.OsLookuper() in the
// binary, a map in tests) and checks value ranges. A variable set to the
// empty string counts as unset and takes its default. Every bad value is
// reported, joined, each naming its variable. URIs are checked by
// CheckURIs, since commands that make no call do not need them.
func Load(ctx context.Context, l envconfig.Lookuper) (Config, error) {
	l = emptyIsUnset{l}
	var c Config
	v := reflect.ValueOf(&c).Elem()
	var errs []error
	bad := make(map[string]bool) // variables whose value could not be parsed
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name := variable(f)
		// One field at a time, with the field's own tag (name, default),
		// so that one bad value does not hide the others.
		one := reflect.New(reflect.StructOf([]reflect.StructField{{Name: f.Name, Type: f.Type, Tag: f.Tag}}))
		if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: one.Interface(), Lookuper: l}); err != nil {
			val, _ := l.Lookup(name)
			errs = append(errs, fmt.Errorf("%s: %w", name, parseError(f.Type, val, err)))
			bad[name] = true
			continue
		}
		v.Field(i).Set(one.Elem().Field(0))
	}
	if _, err := c.Level(); err != nil {
		errs = append(errs, err)
	}
	c.LogFormat = strings.ToLower(c.LogFormat)
	switch c.LogFormat {
	case "json", "console", "auto":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT: %q is not one of json, console, auto", c.LogFormat))
	}
	check := func(name string, ok bool, format string, args ...any) {
		if !ok && !bad[name] {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
		}
	}
	check("MOJODEX_SCHEDULER_RATE", c.Rate != 0, "must not be 0 (use a negative value for no limit)")
	check("MOJODEX_SCHEDULER_RATE", !math.IsNaN(c.Rate), "must be a number")
	check("MOJODEX_SCHEDULER_BURST", c.Burst >= 1, "%d must be at least 1", c.Burst)
	check("MOJODEX_SCHEDULER_MAX_IN_FLIGHT", c.MaxInFlight >= 1, "%d must be at least 1", c.MaxInFlight)
	check("MOJODEX_SCHEDULER_MAX_ATTEMPTS", c.MaxAttempts >= 1, "%d must be at least 1", c.MaxAttempts)
	check("MOJODEX_SCHEDULER_REQUEST_TIMEOUT", c.RequestTimeout > 0, "%s must be positive", c.RequestTimeout)
	check("MOJODEX_SCHEDULER_SHUTDOWN_TIMEOUT", c.ShutdownTimeout > 0, "%s must be positive", c.ShutdownTimeout)
	check("MOJODEX_SCHEDULER_GATE_INTERVAL", c.GateInterval > 0, "%s must be positive", c.GateInterval)
	check("MOJODEX_SCHEDULER_REMOTE_MAX_CONNS", c.RemoteMaxConns >= 1, "%d must be at least 1", c.RemoteMaxConns)
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// emptyIsUnset reports variables set to "" as unset, so that they take
// their defaults (a .env file often holds "NAME=").
type emptyIsUnset struct{ l envconfig.Lookuper }

func (e emptyIsUnset) Lookup(key string) (string, bool) {
	v, ok := e.l.Lookup(key)
	if v == "" {
		return "", false
	}
	return v, ok
}

// variable returns the environment variable named by a Config field's tag.
func variable(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return strings.TrimSpace(name)
}

// parseError explains why val does not fit a field of type t.
func parseError(t reflect.Type, val string, err error) error {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return fmt.Errorf("%q is not a duration (use Go syntax such as 30s, 10m, 1h)", val)
	case t.Kind() == reflect.Float64:
		return fmt.Errorf("%q is not a number", val)
	case t.Kind() == reflect.Int:
		return fmt.Errorf("%q is not a whole number", val)
	}
	return err
}

// CheckURIs checks that both service URIs are set and are absolute http(s)
// URLs, and that the secret is set when needSecret is true.
func (c Config) CheckURIs(needSecret bool) error {
	var errs []error
	for _, v := range []struct{ name, val string }{
		{"MOJODEX_BACKEND_URI", c.BackendURI},
		{"BACKGROUND_BACKEND_URI", c.BackgroundURI},
	} {
		if err := checkURI(v.val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.name, err))
		}
	}
	if needSecret && c.Secret == "" {
		errs = append(errs, errors.New("MOJODEX_SCHEDULER_SECRET: is required by at least one task (auth: true)"))
	}
	return errors.Join(errs...)
}

func checkURI(s string) error {
	if s == "" {
		return errors.New("is required (e.g. http://mojodex_backend:5000)")
	}
	if !strings.Contains(s, "://") {
		return fmt.Errorf("%q must be an absolute http:// or https:// URL (e.g. http://mojodex_backend:5000)", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q must be an absolute http:// or https:// URL with a host", s)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q must not contain a fragment (#)", s)
	}
	return nil
}

// Level parses LOG_LEVEL: debug, info, warning or warn, error, in any case.
func (c Config) Level() (zerolog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(c.LogLevel)) {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info", "":
		return zerolog.InfoLevel, nil
	case "warning", "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	case "critical", "fatal":
		return zerolog.FatalLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("LOG_LEVEL: %q is not one of debug, info, warning, error", c.LogLevel)
}
