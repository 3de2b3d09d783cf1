// Command mojodex-scheduler runs Mojodex's scheduled jobs against its
// backend and background services.
//
//	mojodex-scheduler run [--tasks FILE] [--demo]
//	mojodex-scheduler once [--tasks FILE] [TASK...]
//	mojodex-scheduler validate [--tasks FILE]
//	mojodex-scheduler health [--addr HOST:PORT] [--timeout 2s]
//	mojodex-scheduler version
//
// Settings come from the environment (see README.md).
package main

import (
	_ "time/tzdata" // IANA zones even where the host has none (slim containers)

	"context"
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
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
	"github.com/sethvargo/go-envconfig"
)

// cli is the command line.
type cli struct {
	Run      runCmd      `cmd:"" help:"Serve until SIGINT or SIGTERM, firing every task on its schedule."`
	Once     onceCmd     `cmd:"" help:"Run the named tasks (default: every enabled one) once each, to the end of their pagination."`
	Validate validateCmd `cmd:"" help:"Check the configuration and print each task with its next three fire times."`
	Ctl      ctlCmd      `cmd:"" help:"Control a running scheduler through its remote endpoint: list, show, trigger, pause, resume, reload."`
	Health   healthCmd   `cmd:"" help:"Probe a running scheduler's /readyz: exit 0 when ready, 1 otherwise (a container health check)."`

	VersionCmd versionCmd  `cmd:"" name:"version" help:"Print the version, commit, commit date and Go version."`
	Version    versionFlag `help:"Print the version and exit."`
}

// taskFlag is shared by the commands that load tasks.
type taskFlag struct {
	Tasks string `help:"Task file replacing the embedded Mojodex defaults." env:"MOJODEX_SCHEDULER_TASKS" type:"path" placeholder:"FILE"`
}

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs the command and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("mojodex-scheduler"),
		kong.Description("The proactive heart of Mojodex: fires the backend's scheduled jobs on time."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitError{code}) }),
		kong.UsageOnError(),
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
		env := &appEnv{stdout: stdout, stderr: stderr, lookup: envconfig.OsLookuper()}
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
	lookup         envconfig.Lookuper
}

// load reads the environment and the task set.
func (a *appEnv) load(tasksPath string) (config.Config, []task.Spec, error) {
	cfg, err := config.Load(context.Background(), a.lookup)
	if err != nil {
		return config.Config{}, nil, err
	}
	if tasksPath == "" {
		tasksPath = cfg.Tasks
	}
	specs, err := loadTasks(tasksPath)
	if err != nil {
		return config.Config{}, nil, err
	}
	return cfg, specs, nil
}

// loadTasks reads the task file at path, or the embedded defaults when path
// is empty.
func loadTasks(path string) ([]task.Spec, error) {
	if path == "" {
		return task.Defaults()
	}
	return task.LoadFile(path)
}

// logger builds the process logger from LOG_LEVEL and LOG_FORMAT and routes
// hollywood's log/slog output into it.
func (a *appEnv) logger(cfg config.Config) zerolog.Logger {
	level, _ := cfg.Level() // checked by config.Load
	var w io.Writer = a.stderr
	format := strings.ToLower(cfg.LogFormat)
	if format == "auto" {
		format = "json"
		if f, ok := a.stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: a.stderr, TimeFormat: "15:04:05.000"}
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	l := zerolog.New(w).Level(level).With().Timestamp().Logger()
	slog.SetDefault(slog.New(zerolog.NewSlogHandler(l.With().Str("component", "hollywood").Logger())))
	return l
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
