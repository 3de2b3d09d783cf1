package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/actors"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
)

type onceCmd struct {
	taskFlag
	Timeout time.Duration `help:"Give up on runs still in progress after this long." default:"10m"`
	Task    []string      `arg:"" optional:"" name:"TASK" help:"Tasks to run (default: all)."`
}

// collector gathers run records for the once command.
type collector struct{ done chan actors.RunRecord }

func (c collector) Fired(string, time.Time, time.Duration) {}
func (c collector) Skipped(string, time.Time, string)      {}
func (c collector) Missed(string, int)                     {}
func (c collector) RunFinished(rec actors.RunRecord) {
	if rec.Manual {
		c.done <- rec
	}
}

// Run triggers each selected task once and prints one line per task.
func (o *onceCmd) Run(a *appEnv) error {
	cfg, specs, err := a.load(o.Tasks)
	if err != nil {
		return err
	}
	names := o.Task
	if len(names) == 0 {
		for _, s := range specs {
			names = append(names, s.Name)
		}
	}
	var selected []task.Spec
	for _, n := range names {
		i := slices.IndexFunc(specs, func(s task.Spec) bool { return s.Name == n })
		if i < 0 {
			return fmt.Errorf("unknown task %q", n)
		}
		selected = append(selected, specs[i])
	}
	if err := cfg.CheckURIs(needsSecret(selected)); err != nil {
		return err
	}
	log := a.logger(cfg)
	client, err := newClient(cfg, log, nil)
	if err != nil {
		return err
	}
	col := collector{done: make(chan actors.RunRecord, len(selected))}
	producer, err := supervisor.New(selected, client, supervisor.WithLogger(log), supervisor.WithManual(), supervisor.WithObserver(col))
	if err != nil {
		return err
	}
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		return fmt.Errorf("actor engine: %w", err)
	}
	pid := supervisor.Spawn(engine, producer)
	defer func() { <-engine.Poison(pid).Done() }()

	for _, s := range selected {
		reply, err := engine.Request(pid, supervisor.TriggerTask{Name: s.Name}, 10*time.Second).Result()
		if err != nil {
			return fmt.Errorf("trigger %s: %w", s.Name, err)
		}
		if te, ok := reply.(supervisor.TriggerError); ok {
			return fmt.Errorf("trigger %s: %w", s.Name, te.Err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	results := make(map[string]actors.RunRecord, len(selected))
	for len(results) < len(selected) {
		select {
		case rec := <-col.done:
			results[rec.Task] = rec
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tasks still running: %w", len(selected)-len(results), len(selected), ctx.Err())
		}
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	failed := 0
	for _, s := range selected {
		rec := results[s.Name]
		line := fmt.Sprintf("%s\t%s\tpages=%d\titems=%d\tstatus=%d\t%s", rec.Task, rec.Outcome, rec.Pages, rec.Items, rec.Status, rec.Duration.Round(time.Millisecond))
		if rec.Err != "" {
			line += "\t" + rec.Err
		}
		fmt.Fprintln(tw, line)
		if rec.Outcome == actors.OutcomeFailed {
			failed++
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print: %w", err)
	}
	if failed > 0 {
		fmt.Fprintf(a.stderr, "mojodex-scheduler: %d of %d tasks failed\n", failed, len(selected))
		return exitError{1}
	}
	return nil
}
