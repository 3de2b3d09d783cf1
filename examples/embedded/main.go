// Command embedded is a host program that runs the Mojodex scheduler inside
// its own hollywood engine, next to an actor of its own.
//
// It builds the task set in code (two HTTP tasks and one in-process Go job),
// starts the scheduler in its engine with the same lifecycle as the binary
// (supervisor.Server: Start, then Shutdown), talks to it with the Go
// control messages and with the protobuf ones of control/v1, and after -for
// shuts it down and prints how many runs each task made.
//
//	go run ./examples/embedded               # against a stub of Mojodex on loopback
//	go run ./examples/embedded -for 10s -v   # longer, with the scheduler's logs on stderr
//	go run ./examples/embedded -backend http://mojodex_backend:5000 \
//	    -background http://mojodex_background:5000 -secret scheduler_secret
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/apiclient"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/mojodex/mojodex-scheduler/task"
	"github.com/rs/zerolog"
)

func main() {
	// This program is the host, so it, not the library, handles signals.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && err != flag.ErrHelp {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

// run is the whole program: it prints what it learns to stdout and the
// scheduler's logs to stderr, and returns after -for or when ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("embedded", flag.ContinueOnError)
	flags.SetOutput(stderr)
	backend := flags.String("backend", "", "base URL of the Mojodex backend (default: a stub on loopback)")
	background := flags.String("background", "", "base URL of the Mojodex background service (default: the stub)")
	secret := flags.String("secret", "", "the scheduler secret sent to the backend (default with the stub: its secret)")
	runFor := flags.Duration("for", 3*time.Second, "how long to run before stopping by itself")
	verbose := flags.Bool("v", false, "log every run on stderr (default: warnings and errors only)")
	if err := flags.Parse(args); err != nil {
		return err
	}

	// The host's own logger, handed to the library as an option: no global
	// logger (zerolog's or log/slog's) is set or needed. hollywood's own
	// messages go to log/slog's default logger, left as the host has it.
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: time.TimeOnly}).
		Level(zerolog.WarnLevel).With().Timestamp().Logger()
	if *verbose {
		log = log.Level(zerolog.InfoLevel)
	}

	if *backend == "" && *background == "" { // no backend given: serve a stub of both services
		if *secret == "" {
			*secret = "example-secret"
		}
		stub, err := mojodexstub.Start(mojodexstub.Options{Secret: *secret})
		if err != nil {
			return err
		}
		defer stub.Close()
		*backend, *background = stub.BackendURL(), stub.BackgroundURL()
		fmt.Fprintf(stdout, "stub: backend %s, background %s\n", *backend, *background)
	}

	// 1. The host's engine and its own actor (here: a tally of the runs).
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		return err
	}
	host := engine.Spawn(func() actor.Receiver { return tally{} }, "host", actor.WithID("tally"))
	defer engine.Poison(host)

	// 2. The scheduler, configured in code: tasks are values.
	client, err := apiclient.NewClient(apiclient.Config{
		BackendURL: *backend, BackgroundURL: *background, Secret: *secret, Logger: log,
	})
	if err != nil {
		return err
	}
	specs := []task.Spec{{
		Name: "extract-todos", Every: time.Second,
		Request: &task.Request{Service: task.ServiceBackground, Path: "/extract_todos", Result: "user_task_execution_pks"},
	}, {
		Name: "purchases-expiration-checker", Every: time.Second, RunOnStart: true,
		Request: &task.Request{Service: task.ServiceBackend, Path: "/check_expired_purchases", Auth: true,
			Query: map[string]string{"n_purchases": "50"}},
		Paginate: &task.Paginate{Mode: task.ModeDrain, Size: 50, SizeField: "n_purchases", Result: "purchase_pks"},
	}, {
		// An in-process job, on the same schedules and supervision. Periods
		// under a second need AllowSubsecond (a guard against typos in files).
		Name: "refresh-cache", Every: 500 * time.Millisecond, AllowSubsecond: true, Timeout: time.Second,
		Job: func(ctx context.Context) (int, error) {
			select {
			case <-time.After(10 * time.Millisecond): // stands for the host's real work
				return 1, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		},
	}}
	st := store.NewMemory() // the host owns the store: it closes it after Shutdown
	defer st.Close()
	srv, err := supervisor.NewServer(engine, specs, client,
		supervisor.WithStore(st),
		supervisor.WithLogger(log),
		supervisor.WithObserver(toHost{engine, host}))
	if err != nil {
		return err
	}

	// 3. Start spawns the supervisor into the host's engine at its stable ID
	// (with hollywood's restart budget lifted: when an actor exhausts it,
	// hollywood crashes the whole process, the host's too) and returns once
	// the tasks are armed.
	if err := srv.Start(ctx); err != nil {
		return err
	}
	sup := srv.PID()
	fmt.Fprintln(stdout, "supervisor:", sup)

	// 4. Local control with engine.Request: the Go messages ...
	list, err := ask[supervisor.TaskList](engine, sup, supervisor.ListTasks{})
	if err != nil {
		return err
	}
	for _, t := range list.Tasks {
		fmt.Fprintf(stdout, "ListTasks: %s (%s) %s\n", t.Name, t.Schedule, t.State)
	}
	trig, err := ask[supervisor.TriggerReply](engine, sup, supervisor.TriggerTask{Name: "refresh-cache"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "TriggerTask refresh-cache: started=%t reason=%q\n", trig.Started, trig.Reason)
	// ... and the protobuf ones of control/v1, which also come over a remote.
	ptrig, err := ask[*controlv1.TriggerTaskResponse](engine, sup, &controlv1.TriggerTaskRequest{Name: "extract-todos"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "TriggerTaskRequest extract-todos: started=%t reason=%q error=%q\n",
		ptrig.GetStarted(), ptrig.GetReason(), ptrig.GetError().GetMessage())

	select { // let the schedules run
	case <-time.After(*runFor):
	case <-ctx.Done():
	}
	plist, err := ask[*controlv1.ListTasksResponse](engine, sup, &controlv1.ListTasksRequest{})
	if err != nil {
		return err
	}
	for _, t := range plist.GetTasks() {
		fmt.Fprintf(stdout, "ListTasksRequest: %s %s, last run %s\n", t.GetName(), t.GetState(), t.GetLastRun().GetOutcome())
	}

	// 5. Shut down: stop the timers, let the runs in progress finish (up to
	// the context's deadline; runs still going are resumed at the next
	// start), stop the actors.
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(stopCtx); err != nil {
		return err
	}
	summary, err := ask[[]string](engine, host, runsQuery{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "runs in %s (task outcome: count):\n", *runFor)
	for _, line := range summary {
		fmt.Fprintln(stdout, " ", line)
	}
	fmt.Fprintln(stdout, "stopped cleanly")
	return nil
}

// ask sends msg to pid with engine.Request and waits for a reply of type R.
func ask[R any](engine *actor.Engine, pid *actor.PID, msg any) (R, error) {
	v, err := engine.Request(pid, msg, 10*time.Second).Result()
	r, ok := v.(R)
	if err == nil && !ok {
		err = fmt.Errorf("%T: unexpected reply %+v", msg, v)
	}
	return r, err
}

// tally is the host's own actor: it counts finished runs by task and outcome.
type tally map[string]int

// runsQuery asks a tally for its counts, one "task outcome: count" line each.
type runsQuery struct{}

// Receive implements actor.Receiver.
func (t tally) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case task.Run:
		t[m.Task+" "+string(m.Outcome)]++
	case runsQuery:
		var lines []string
		for _, k := range slices.Sorted(maps.Keys(t)) {
			lines = append(lines, fmt.Sprintf("%s: %d", k, t[k]))
		}
		c.Respond(lines)
	}
}

// toHost is the scheduler's observer (supervisor.WithObserver): it forwards
// each finished run to the host's actor. Observers are called from the task
// actors, so they must be fast and never block; engine.Send does not.
type toHost struct {
	engine *actor.Engine
	pid    *actor.PID
}

// Fired, Skipped and Missed are not needed here.
func (o toHost) Fired(string, time.Time, time.Duration)     {}
func (o toHost) Skipped(string, time.Time, task.SkipReason) {}
func (o toHost) Missed(string, int)                         {}

// RunFinished sends the run's record to the host's actor.
func (o toHost) RunFinished(r task.Run) { o.engine.Send(o.pid, r) }
