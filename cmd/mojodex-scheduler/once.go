package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/internal/safetext"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

type onceCmd struct {
	taskFlag
	Demo    bool          `help:"Run against a built-in stub of the Mojodex services on loopback."`
	Timeout time.Duration `help:"Give up on runs still in progress after this long." default:"10m"`
	Task    []string      `arg:"" optional:"" name:"TASK" help:"Tasks to run (default: all)."`
}

// collector gathers the manual runs for the once command.
type collector struct{ done chan task.Run }

func (c collector) Fired(string, time.Time, time.Duration)     {}
func (c collector) Skipped(string, time.Time, task.SkipReason) {}
func (c collector) Missed(string, int)                         {}
func (c collector) RunFinished(rec task.Run) {
	if rec.Manual {
		c.done <- rec
	}
}

// Run triggers each selected task once, waits for the runs, and prints a
// table of their results (after the logs, on standard output).
func (o *onceCmd) Run(a *appEnv) error {
	cfg, specs, err := a.load(o.Tasks)
	if err != nil {
		return err
	}
	selected, err := selectTasks(specs, o.Task)
	if err != nil {
		return err
	}
	if o.Demo {
		stub, err := startDemo(&cfg, 0)
		if err != nil {
			return err
		}
		defer stub.Close()
	}
	if err := cfg.CheckURIs(needsSecret(selected)); err != nil {
		return err
	}
	log := a.logger(cfg)
	client, err := newClient(cfg, log, nil)
	if err != nil {
		return err
	}
	col := collector{done: make(chan task.Run, len(selected))}
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		return fmt.Errorf("actor engine: %w", err)
	}
	srv, err := supervisor.NewServer(engine, selected, client, supervisor.WithLogger(log), supervisor.WithManual(), supervisor.WithObserver(col))
	if err != nil {
		return err
	}
	if err := srv.Start(context.Background()); err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	for _, s := range selected {
		v, err := engine.Request(srv.PID(), supervisor.TriggerTask{Name: s.Name}, 10*time.Second).Result()
		if err != nil {
			return fmt.Errorf("trigger %s: %w", s.Name, err)
		}
		if r, _ := v.(supervisor.TriggerReply); r.Err != nil {
			return fmt.Errorf("trigger %s: %w", s.Name, r.Err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	results := make(map[string]task.Run, len(selected))
	for len(results) < len(selected) {
		select {
		case rec := <-col.done:
			results[rec.Task] = rec
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tasks still running: %w", len(selected)-len(results), len(selected), ctx.Err())
		}
	}
	failed := 0
	runs := make([]task.Run, 0, len(selected))
	for _, s := range selected {
		rec := results[s.Name]
		runs = append(runs, rec)
		if rec.Outcome == task.OutcomeFailed {
			failed++
		}
	}
	if err := printRunTable(a.stdout, runs); err != nil {
		return err
	}
	if failed > 0 {
		fmt.Fprintf(a.stderr, "mojodex-scheduler: %d of %d tasks failed\n", failed, len(selected))
		return exitError{1}
	}
	return nil
}

// selectTasks returns the named specs (all when names is empty), or an
// error naming an unknown task and the known ones.
func selectTasks(specs []task.Spec, names []string) ([]task.Spec, error) {
	if len(names) == 0 {
		return specs, nil
	}
	var selected []task.Spec
	for _, n := range names {
		i := slices.IndexFunc(specs, func(s task.Spec) bool { return s.Name == n })
		if i < 0 {
			known := make([]string, len(specs))
			for j, s := range specs {
				known[j] = s.Name
			}
			return nil, fmt.Errorf("unknown task %q (the tasks are: %s)", n, strings.Join(known, ", "))
		}
		selected = append(selected, specs[i])
	}
	return selected, nil
}

// printRunTable prints one line per run: task, outcome, pages, items, HTTP
// status ("-" without a response), duration and error, control characters
// escaped.
func printRunTable(w io.Writer, runs []task.Run) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tOUTCOME\tPAGES\tITEMS\tSTATUS\tDURATION\tERROR")
	for _, r := range runs {
		status := "-"
		if r.Status != 0 {
			status = strconv.Itoa(r.Status)
		}
		errText := "-"
		if r.Err != "" {
			errText = safetext.Escape(r.Err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Task, r.Outcome, r.Pages, r.Items, status, roundDuration(r.Duration), errText)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print: %w", err)
	}
	return nil
}
