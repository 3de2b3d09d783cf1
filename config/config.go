// Package config reads the scheduler's settings from the environment, with
// the variable names Mojodex deployments already use.
package config

import (
	"context"
	"errors"
	"fmt"
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
	// GateInterval is how often the email and push probes are repeated.
	GateInterval time.Duration `env:"MOJODEX_SCHEDULER_GATE_INTERVAL, default=10m"`
}

// Load reads the configuration through l (envconfig.OsLookuper() in the
// binary, a map in tests) and checks value ranges. URIs are checked by
// CheckURIs, since commands that make no call do not need them.
func Load(ctx context.Context, l envconfig.Lookuper) (Config, error) {
	var c Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: l}); err != nil {
		if name := variableOf(err); name != "" {
			return Config{}, fmt.Errorf("%s: %w", name, err)
		}
		return Config{}, fmt.Errorf("environment: %w", err)
	}
	var errs []error
	if _, err := c.Level(); err != nil {
		errs = append(errs, err)
	}
	switch strings.ToLower(c.LogFormat) {
	case "json", "console", "auto":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT: %q is not one of json, console, auto", c.LogFormat))
	}
	if c.Rate == 0 {
		errs = append(errs, errors.New("MOJODEX_SCHEDULER_RATE: must not be 0 (use a negative value for no limit)"))
	}
	if c.Burst < 1 {
		errs = append(errs, fmt.Errorf("MOJODEX_SCHEDULER_BURST: %d must be at least 1", c.Burst))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("MOJODEX_SCHEDULER_MAX_IN_FLIGHT: %d must be at least 1", c.MaxInFlight))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("MOJODEX_SCHEDULER_MAX_ATTEMPTS: %d must be at least 1", c.MaxAttempts))
	}
	for name, d := range map[string]time.Duration{
		"MOJODEX_SCHEDULER_REQUEST_TIMEOUT":  c.RequestTimeout,
		"MOJODEX_SCHEDULER_SHUTDOWN_TIMEOUT": c.ShutdownTimeout,
		"MOJODEX_SCHEDULER_GATE_INTERVAL":    c.GateInterval,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %s must be positive", name, d))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
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

// variableOf names the environment variable of the Config field that an
// envconfig error starts with ("RequestTimeout: time: invalid duration").
func variableOf(err error) string {
	field, _, ok := strings.Cut(err.Error(), ":")
	if !ok {
		return ""
	}
	f, ok := reflect.TypeFor[Config]().FieldByName(field)
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return name
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
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q must be an absolute http:// or https:// URL with a host", s)
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
