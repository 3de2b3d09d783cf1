// Command mojodex-scheduler runs Mojodex's scheduled jobs against its
// backend and background services.
//
//	mojodex-scheduler run [--tasks FILE] [--demo]
//	mojodex-scheduler once [--tasks FILE] [TASK...]
//	mojodex-scheduler validate [--tasks FILE]
//	mojodex-scheduler ctl list|show|trigger|pause|resume|reload|replicas
//	mojodex-scheduler health [--addr HOST:PORT] [--timeout 2s]
//	mojodex-scheduler version
//
// Settings come from the environment (see docs/configuration.md).
package main

import (
	_ "time/tzdata" // IANA zones even where the host has none (slim containers)

	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/mattn/go-isatty"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/config"
	"github.com/mojodex/mojodex-scheduler/internal/safetext"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

// cli is the command line.
type cli struct {
	Run      runCmd      `cmd:"" help:"Serve until SIGINT or SIGTERM, firing every task on its schedule."`
	Once     onceCmd     `cmd:"" help:"Run the named tasks (default: every enabled one) once each, to the end of their pagination."`
	Validate validateCmd `cmd:"" help:"Check the configuration and print each task with its next three fire times."`
	Ctl      ctlCmd      `cmd:"" help:"Control a running scheduler through its remote endpoint: list, show, trigger, pause, resume, reload."`
	Migrate  migrateCmd  `cmd:"" help:"Create or migrate the PostgreSQL state store's schema (MOJODEX_SCHEDULER_STATE, MOJODEX_SCHEDULER_PG_SCHEMA) and print its version before and after."`
	Health   healthCmd   `cmd:"" help:"Probe a running scheduler's /readyz: exit 0 when ready, 1 otherwise (a container health check)."`

	VersionCmd versionCmd  `cmd:"" name:"version" help:"Print the version, commit, commit date and Go version."`
	Version    versionFlag `help:"Print the version and exit."`
}

// taskFlag is shared by the commands that load tasks. The flag wins over
// MOJODEX_SCHEDULER_TASKS, which the config package reads (so that an error
// names the setting it came from).
type taskFlag struct {
	Tasks string `help:"Task file replacing the embedded Mojodex defaults (default: MOJODEX_SCHEDULER_TASKS, else the embedded defaults)." type:"path" placeholder:"FILE"`
}

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// execute parses args, runs the command and returns the exit code.
func execute(args []string, stdout, stderr io.Writer) int {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("mojodex-scheduler"),
		kong.Description("The proactive heart of Mojodex: fires the backend's scheduled jobs on time."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitError{code}) }),
		kong.UsageOnError(),
		kong.Vars{ // the settings' defaults, as config gives them, for the flags' defaults and help
			"default_remote_addr": config.Default(envRemoteAddr),
			"default_http_addr":   config.Default(httpAddrVar),
		},
	)
	if err != nil {
		fmt.Fprintf(stderr, "mojodex-scheduler: %v\n", err)
		return 2
	}
	code := 0
	func() {
		defer func() {
			if v := recover(); v != nil {
				if e, ok := v.(exitError); ok {
					code = e.code
					return
				}
				panic(v)
			}
		}()
		kctx, err := parser.Parse(args)
		if err != nil {
			fmt.Fprintf(stderr, "mojodex-scheduler: %v\n", err)
			code = 2
			return
		}
		env := &appEnv{stdout: stdout, stderr: stderr, environ: os.Environ()}
		if err := kctx.Run(env); err != nil {
			var e exitError
			if errors.As(err, &e) { // kong joins Run's error with its hooks'
				code = e.code
				return
			}
			fmt.Fprintf(stderr, "mojodex-scheduler: %v\n", err)
			code = 1
		}
	}()
	return code
}

// appEnv is what every command gets: where to print and where settings come from.
type appEnv struct {
	stdout, stderr io.Writer
	environ        []string // os.Environ() form
	warnings       []config.Warning
	taskSet        []byte // the text of the task set loaded
}

// load reads the environment and the task set. The task file is the flag's
// path, else MOJODEX_SCHEDULER_TASKS, else the embedded defaults.
func (a *appEnv) load(tasksFlag string) (config.Config, []task.Spec, error) {
	cfg, warnings, err := config.Load(a.environ)
	a.warnings = warnings
	if err != nil {
		return config.Config{}, nil, err
	}
	src := taskSource(tasksFlag, cfg)
	specs, content, err := loadTasks(src)
	if err != nil {
		return config.Config{}, nil, err
	}
	cfg.Tasks = src.path // the configuration in effect names the file in use, the flag's included
	a.taskSet = content
	return cfg, specs, nil
}

// source is where a task set comes from: a file named by the flag or the
// environment, or the embedded defaults.
type source struct {
	path    string
	setting string // "--tasks" or "MOJODEX_SCHEDULER_TASKS"; empty for the defaults
}

func taskSource(flag string, cfg config.Config) source {
	switch {
	case flag != "":
		return source{path: flag, setting: "--tasks"}
	case cfg.Tasks != "":
		return source{path: cfg.Tasks, setting: "MOJODEX_SCHEDULER_TASKS"}
	}
	return source{}
}

// loadTasks reads the task set of src, and its text; an error names where
// it came from.
func loadTasks(src source) ([]task.Spec, []byte, error) {
	if src.path == "" {
		specs, err := task.Defaults()
		return specs, task.DefaultsYAML(), err
	}
	specs, content, err := task.ReadFile(src.path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", src.setting, err) // the error names the file
	}
	return specs, content, nil
}

// logger builds the process logger from LOG_LEVEL and LOG_FORMAT and routes
// hollywood's log/slog output into it. JSON logs carry durations as
// seconds in fields named *_s and times in RFC 3339 with nanoseconds; a
// console shows Go durations (31ms), short local times and escaped control
// characters.
func (a *appEnv) logger(cfg config.Config) zerolog.Logger {
	level, _ := cfg.Level() // checked by config.Load
	var w io.Writer = a.stderr
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := a.stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: a.stderr, TimeFormat: "15:04:05.000", FormatPrepare: consoleFields}
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	l := zerolog.New(w).Level(level).With().Timestamp().Logger()
	routeHollywood(l)
	return l
}

// routeHollywood sends hollywood's log/slog output to l, under component
// hollywood.
func routeHollywood(l zerolog.Logger) {
	slog.SetDefault(slog.New(zerolog.NewSlogHandler(l.With().Str("component", "hollywood").Logger())))
}

// consoleFields adapts an event for a person: *_s seconds become Go
// durations under the name without the unit, instants short local times
// (the date only when it is not today), text escaped; in nested objects
// too (the configuration in effect).
func consoleFields(ev map[string]any) error {
	consoleValues(ev, time.Now().Format(time.DateOnly), true)
	return nil
}

// consoleValues is consoleFields on one object; top tells the event's own
// fields (time, message, level: left to the console writer) from those of
// a nested object.
func consoleValues(ev map[string]any, today string, top bool) {
	for k, v := range ev {
		switch v := v.(type) {
		case map[string]any:
			consoleValues(v, today, false)
		case json.Number:
			if name, ok := strings.CutSuffix(k, "_s"); ok {
				if f, err := v.Float64(); err == nil {
					delete(ev, k)
					ev[name] = roundDuration(time.Duration(f * float64(time.Second))).String()
				}
			}
		case string:
			if top && (k == zerolog.TimestampFieldName || k == zerolog.MessageFieldName || k == zerolog.LevelFieldName) {
				if k == zerolog.MessageFieldName {
					ev[k] = safetext.Escape(v)
				}
				continue
			}
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil && len(v) >= len("2006-01-02T15:04:05Z") {
				t = t.Local()
				if t.Format(time.DateOnly) == today {
					ev[k] = t.Format("15:04:05")
				} else {
					ev[k] = t.Format("2006-01-02 15:04:05")
				}
				continue
			}
			ev[k] = safetext.Escape(v)
		}
	}
}

// roundDuration keeps three significant figures or so: 31ms, 1.25s, 2m0s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Microsecond:
		return d
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(10 * time.Microsecond)
	case d < time.Minute:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// needsSecret reports whether any task sends the secret.
func needsSecret(specs []task.Spec) bool {
	for _, s := range specs {
		if s.Request != nil && (s.Request.Auth || s.EnabledIf != task.GateNone) {
			return true
		}
	}
	return false
}

// newClient builds the API client from the configuration.
func newClient(cfg config.Config, log zerolog.Logger, obs apiclient.Observer) (*apiclient.Client, error) {
	c, err := apiclient.NewClient(apiclient.Config{
		BackendURL:    cfg.BackendURI,
		BackgroundURL: cfg.BackgroundURI,
		Secret:        cfg.Secret,
		Rate:          cfg.Rate,
		Burst:         cfg.Burst,
		MaxInFlight:   cfg.MaxInFlight,
		QueueSize:     cfg.QueueSize,
		Timeout:       cfg.RequestTimeout,
		MaxAttempts:   cfg.MaxAttempts,
		Logger:        log,
		Observer:      obs,
	})
	if err != nil {
		return nil, fmt.Errorf("API client: %w", err)
	}
	return c, nil
}
