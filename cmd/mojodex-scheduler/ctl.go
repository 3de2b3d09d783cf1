package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/anthdm/hollywood/actor"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/endpoint"
	"github.com/mojodex/mojodex-scheduler/internal/safetext"
	"github.com/mojodex/mojodex-scheduler/statuspage"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// timeLayout is how ctl and validate print an instant: local time, to the
// second, with its zone.
const timeLayout = "2006-01-02 15:04:05 MST"

// Exit codes of ctl besides 0 (and kong's 2 for usage errors).
const (
	ctlExitRefused  = 1 // the scheduler answered with an error
	ctlExitNoAnswer = 3 // no answer: not reachable, not listening, or TLS refused
)

// ctlCmd talks to a running scheduler through its remote control endpoint.
// Its flags are shared by the subcommands, which kong hands this struct.
type ctlCmd struct {
	Addr    string        `help:"host:port of the scheduler's remote control endpoint." env:"MOJODEX_SCHEDULER_REMOTE_ADDR" default:"${default_remote_addr}" placeholder:"HOST:PORT"`
	Listen  string        `help:"host:port where ctl receives the reply, which the scheduler dials back (default: 127.0.0.1 and a free port when --addr is loopback, else this host's address on the route to --addr)." placeholder:"HOST:PORT"`
	TLSCert string        `name:"tls-cert" help:"PEM certificate for mutual TLS (with --tls-key and --tls-ca)." env:"MOJODEX_SCHEDULER_TLS_CERT" type:"path" placeholder:"FILE"`
	TLSKey  string        `name:"tls-key" help:"PEM private key of --tls-cert." env:"MOJODEX_SCHEDULER_TLS_KEY" type:"path" placeholder:"FILE"`
	TLSCA   string        `name:"tls-ca" help:"PEM CA bundle that the scheduler's certificate must chain to." env:"MOJODEX_SCHEDULER_TLS_CA" type:"path" placeholder:"FILE"`
	Timeout time.Duration `help:"How long to wait for the connection and the answer." default:"5s"`
	Output  string        `short:"o" help:"Output format: table or json." enum:"table,json" default:"table"`
	Verbose bool          `short:"v" help:"Show the remote endpoint's and hollywood's logs on stderr."`

	List     ctlListCmd     `cmd:"" help:"List every task: state, schedule, next fire and last run."`
	Show     ctlShowCmd     `cmd:"" help:"Show one task and its last runs."`
	Trigger  ctlTriggerCmd  `cmd:"" help:"Run a task now, outside its schedule (skipped while a run is in progress)."`
	Pause    ctlPauseCmd    `cmd:"" help:"Stop a task's timer until it is resumed (a trigger still runs it)."`
	Resume   ctlResumeCmd   `cmd:"" help:"Re-arm a paused task, or revive a task marked failed."`
	Reload   ctlReloadCmd   `cmd:"" help:"Make the scheduler read its task file again and apply it (an invalid file changes nothing)."`
	Replicas ctlReplicasCmd `cmd:"" help:"List the replicas sharing the scheduler's state store, with their last heartbeat."`
}

type ctlReplicasCmd struct{}

// Run lists the replicas.
func (*ctlReplicasCmd) Run(a *appEnv, c *ctlCmd) error {
	return c.call(a, &controlv1.ListReplicasRequest{}, &controlv1.ListReplicasResponse{}, func(w io.Writer, m proto.Message) {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTARTED\tLAST-SEEN\tTASK-SET")
		for _, r := range m.(*controlv1.ListReplicasResponse).GetReplicas() {
			fmt.Fprintf(tw, "%s\t%s\t%s\tv%d\n", safetext.Escape(r.GetName()), when(r.GetStarted()), when(r.GetSeen()), r.GetVersion())
		}
		tw.Flush()
	})
}

type ctlListCmd struct{}

type ctlShowCmd struct {
	Task string `arg:"" name:"TASK" help:"Task name."`
}

type ctlTriggerCmd struct {
	Task string `arg:"" name:"TASK" help:"Task name."`
}

type ctlPauseCmd struct {
	Task string `arg:"" name:"TASK" help:"Task name."`
}

type ctlResumeCmd struct {
	Task string `arg:"" name:"TASK" help:"Task name."`
}

type ctlReloadCmd struct{}

// Run lists the tasks.
func (*ctlListCmd) Run(a *appEnv, c *ctlCmd) error {
	return c.call(a, &controlv1.ListTasksRequest{}, &controlv1.ListTasksResponse{}, func(w io.Writer, m proto.Message) {
		printTaskTable(w, m.(*controlv1.ListTasksResponse).GetTasks())
	})
}

// Run shows one task.
func (s *ctlShowCmd) Run(a *appEnv, c *ctlCmd) error {
	return c.call(a, &controlv1.GetTaskRequest{Name: s.Task}, &controlv1.GetTaskResponse{}, func(w io.Writer, m proto.Message) {
		printTask(w, m.(*controlv1.GetTaskResponse).GetTask())
	})
}

// Run triggers a task.
func (t *ctlTriggerCmd) Run(a *appEnv, c *ctlCmd) error {
	return c.call(a, &controlv1.TriggerTaskRequest{Name: t.Task}, &controlv1.TriggerTaskResponse{}, func(w io.Writer, m proto.Message) {
		r := m.(*controlv1.TriggerTaskResponse)
		if r.GetStarted() {
			fmt.Fprintf(w, "started %s\n", safetext.Escape(t.Task))
			return
		}
		fmt.Fprintf(w, "skipped %s: %s\n", safetext.Escape(t.Task), safetext.Escape(r.GetReason()))
	})
}

// Run pauses a task.
func (p *ctlPauseCmd) Run(a *appEnv, c *ctlCmd) error {
	return c.call(a, &controlv1.PauseTaskRequest{Name: p.Task}, &controlv1.TaskControlResponse{}, func(w io.Writer, m proto.Message) {
		printControl(w, "paused", m.(*controlv1.TaskControlResponse).GetTask())
	})
}

// Run resumes a task.
func (r *ctlResumeCmd) Run(a *appEnv, c *ctlCmd) error {
	return c.call(a, &controlv1.ResumeTaskRequest{Name: r.Task}, &controlv1.TaskControlResponse{}, func(w io.Writer, m proto.Message) {
		printControl(w, "resumed", m.(*controlv1.TaskControlResponse).GetTask())
	})
}

// Run reloads the task set.
func (*ctlReloadCmd) Run(a *appEnv, c *ctlCmd) error {
	return c.call(a, &controlv1.ReloadRequest{}, &controlv1.ReloadResponse{}, func(w io.Writer, m proto.Message) {
		r := m.(*controlv1.ReloadResponse)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, g := range []struct {
			label string
			names []string
		}{{"added", r.GetAdded()}, {"removed", r.GetRemoved()}, {"changed", r.GetChanged()}, {"unchanged", r.GetUnchanged()}} {
			fmt.Fprintf(tw, "%s:\t%s\n", g.label, orDash(safetext.Escape(strings.Join(g.names, ", "))))
		}
		tw.Flush()
	})
}

// replyError is implemented by every response of the control plane.
type replyError interface {
	proto.Message
	GetError() *controlv1.Error
}

// The actor of ctl's own engine that receives the reply: the only target
// ctl's endpoint accepts.
const (
	ctlReplyKind = "mojodex-scheduler-ctl"
	ctlReplyID   = "reply"
)

// call sends req to the scheduler's supervisor, waits for a reply of the
// type of want and prints it with table (or as JSON). Failures print one
// line on stderr and give a non-zero exit code.
func (c *ctlCmd) call(a *appEnv, req, want proto.Message, table func(io.Writer, proto.Message)) error {
	fail := func(code int, format string, args ...any) error {
		fmt.Fprintf(a.stderr, "mojodex-scheduler ctl: "+format+"\n", args...)
		return exitError{code}
	}
	log := c.logger(a)
	addr := strings.TrimSpace(c.Addr)
	if strings.EqualFold(addr, remoteOff) {
		return fail(2, "the remote control endpoint is %s (%s=%s): pass --addr HOST:PORT", remoteOff, envRemoteAddr, addr)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fail(2, "--addr %q is not host:port: %v", addr, err)
	}
	if c.Timeout <= 0 {
		return fail(2, "--timeout %s must be positive", c.Timeout)
	}
	tlsCfg, err := mutualTLS(tlsFiles{cert: c.TLSCert, key: c.TLSKey, ca: c.TLSCA,
		certName: "--tls-cert (" + envTLSCert + ")", keyName: "--tls-key (" + envTLSKey + ")", caName: "--tls-ca (" + envTLSCA + ")"})
	if err != nil {
		return fail(2, "%v", err)
	}
	listen, err := c.replyAddr(addr)
	if err != nil {
		return fail(2, "%v", err)
	}
	// One deadline for the whole call. A refused connection is known at
	// once; a host that drops the connection attempt fails at the deadline.
	deadline := time.Now().Add(c.Timeout)
	conn, err := net.DialTimeout("tcp", addr, c.Timeout)
	if err != nil {
		return fail(ctlExitNoAnswer, "cannot connect to %s: %v (is the scheduler running with its remote endpoint there?)", addr, dialCause(err))
	}
	conn.Close()
	ep, engine, err := c.replyEngine(listen, tlsCfg, log)
	if err != nil {
		return fail(ctlExitNoAnswer, "%v", err)
	}
	defer stopEndpoint(ep)
	replies := make(chan proto.Message, 1)
	self := engine.SpawnFunc(func(ctx *actor.Context) {
		if m, ok := ctx.Message().(proto.Message); ok {
			select {
			case replies <- m: // the first reply; any other is dropped
			default:
			}
		}
	}, ctlReplyKind, actor.WithID(ctlReplyID))
	engine.SendWithSender(actor.NewPID(addr, supervisor.Kind+"/"+supervisor.ID), req, self)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var v proto.Message
	select {
	case v = <-replies:
	case <-timer.C:
		return fail(ctlExitNoAnswer, "no answer from %s within %s (%s)", addr, c.Timeout, c.diagnose(addr, tlsCfg))
	}
	resp, ok := v.(replyError)
	if !ok || proto.MessageName(v) != proto.MessageName(want) {
		return fail(ctlExitRefused, "unexpected reply %s from %s (want %s)", proto.MessageName(v), addr, proto.MessageName(want))
	}
	if c.Output == "json" {
		b, err := statuspage.JSONOptions.Marshal(resp)
		if err != nil {
			return fail(ctlExitRefused, "encoding the reply as JSON: %v", err)
		}
		fmt.Fprintf(a.stdout, "%s\n", safetext.EscapeJSON(b))
	}
	if e := resp.GetError(); e != nil {
		msg := e.GetMessage()
		if msg == "" {
			msg = codeName(e.GetCode())
		}
		return fail(ctlExitRefused, "%s", safetext.Escape(msg))
	}
	if c.Output != "json" {
		table(a.stdout, resp)
	}
	return nil
}

// logger returns the logger of ctl's remote endpoint and routes hollywood's
// log/slog output: both on stderr with --verbose, discarded otherwise.
func (c *ctlCmd) logger(a *appEnv) zerolog.Logger {
	if !c.Verbose {
		slog.SetDefault(slog.New(slog.DiscardHandler))
		return zerolog.Nop()
	}
	l := zerolog.New(zerolog.ConsoleWriter{Out: a.stderr, TimeFormat: "15:04:05.000"}).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	routeHollywood(l)
	return l
}

// replyAddr is where ctl receives the reply: --listen, or a free port on
// the local address the scheduler at addr can reach. The scheduler dials
// it, so it must name a host.
func (c *ctlCmd) replyAddr(addr string) (string, error) {
	if c.Listen == "" {
		host, err := replyHost(addr)
		if err != nil {
			return "", err
		}
		return net.JoinHostPort(host, "0"), nil
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q is not host:port: %w", c.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return "", fmt.Errorf("--listen %q: the scheduler dials this address back with the reply, so it must name this host's address, not every interface", c.Listen)
	}
	return c.Listen, nil
}

// replyEngine starts an engine whose remote endpoint listens on listen,
// where the scheduler dials back with the reply. The endpoint accepts only
// control-plane replies for ctl's reply actor, and its dial back-and-forth
// is bounded by --timeout.
func (c *ctlCmd) replyEngine(listen string, tlsCfg *tls.Config, log zerolog.Logger) (*endpoint.Endpoint, *actor.Engine, error) {
	ep, err := endpoint.Listen(listen,
		endpoint.WithLogger(log),
		endpoint.WithTLS(tlsCfg),
		endpoint.WithTypes(controlTypes),
		endpoint.WithTargets(endpoint.IDs(ctlReplyKind+"/"+ctlReplyID)),
		endpoint.WithMaxConns(4),
		endpoint.WithMaxDestinations(1),
		endpoint.WithDialTimeout(c.Timeout))
	if err != nil {
		return nil, nil, fmt.Errorf("listening for the reply on %s: %w", listen, err)
	}
	engine, err := actor.NewEngine(actor.NewEngineConfig().WithRemote(ep))
	if err != nil {
		stopEndpoint(ep)
		return nil, nil, fmt.Errorf("listening for the reply on %s: %w", listen, err)
	}
	return ep, engine, nil
}

// stopEndpoint stops ep, waiting a moment for its connections to close.
func stopEndpoint(ep *endpoint.Endpoint) {
	done := make(chan struct{})
	go func() {
		ep.Stop().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
}

// replyHost picks the local address the scheduler at addr can reach: the
// loopback address of the same family for a loopback addr, else the local
// address of the route to it (a UDP "connection" sends no packet).
func replyHost(addr string) (string, error) {
	host, _, _ := net.SplitHostPort(addr)
	if loop, _ := isLoopback(addr); loop {
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			return "::1", nil
		}
		return "127.0.0.1", nil
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return "", fmt.Errorf("finding the local address on the route to %s (pass --listen): %w", addr, err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// diagnose explains a request that got no answer.
func (c *ctlCmd) diagnose(addr string, tlsCfg *tls.Config) string {
	hint := "is the scheduler running with its remote endpoint there?"
	if tlsCfg == nil {
		return hint + " If it requires mutual TLS, pass --tls-cert, --tls-key and --tls-ca"
	}
	// With TLS 1.3 a rejected client certificate shows only on the first read.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, tlsCfg)
	if err == nil {
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err = conn.Read(make([]byte, 1)); isTimeout(err) {
			err = nil
		}
	}
	if err != nil {
		return "TLS with it failed: " + err.Error()
	}
	return hint + " Its certificate is accepted; the scheduler must also be able to dial back to " +
		"this process and accept its certificate (a SAN for this host's address)"
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dialCause strips the "dial tcp ADDR:" prefix that the message repeats.
func dialCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// codeName names an error code for people: "unknown task", "invalid argument".
func codeName(c controlv1.Code) string {
	return strings.ReplaceAll(strings.ToLower(c.String()), "_", " ")
}

// printTaskTable prints one line per task.
func printTaskTable(w io.Writer, tasks []*controlv1.Task) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tSCHEDULE\tNEXT\tLAST-RUN\tOUTCOME\tPAGES\tITEMS\tSTATUS")
	for _, t := range tasks {
		last := t.GetLastRun()
		lastStart, outcome, pages, items, status := "-", "-", "-", "-", "-"
		if last != nil {
			lastStart, outcome = when(last.GetStart()), last.GetOutcome()
			pages, items = strconv.Itoa(int(last.GetPages())), strconv.Itoa(int(last.GetItems()))
			if last.GetHttpStatus() != 0 {
				status = strconv.Itoa(int(last.GetHttpStatus()))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safetext.Escape(t.GetName()), safetext.Escape(t.GetState()),
			orDash(safetext.Escape(t.GetSchedule())), when(t.GetNextFire()), lastStart, safetext.Escape(outcome), pages, items, status)
	}
	tw.Flush()
}

// printTask prints a task's fields, then its runs, oldest first.
func printTask(w io.Writer, t *controlv1.Task) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", safetext.Escape(t.GetName()))
	fmt.Fprintf(tw, "state:\t%s\n", safetext.Escape(t.GetState()))
	fmt.Fprintf(tw, "schedule:\t%s\n", orDash(safetext.Escape(t.GetSchedule())))
	fmt.Fprintf(tw, "next:\t%s\n", when(t.GetNextFire()))
	fmt.Fprintf(tw, "gate:\t%s\n", orDash(safetext.Escape(t.GetGate())))
	fmt.Fprintf(tw, "restarts:\t%d\n", t.GetRestarts())
	for _, r := range t.GetRunning() {
		where := ""
		if r.GetReplica() != "" {
			where = fmt.Sprintf(" on replica %s (epoch %d, lease until %s)", safetext.Escape(r.GetReplica()), r.GetEpoch(), when(r.GetLeaseUntil()))
		}
		fmt.Fprintf(tw, "running:\tslot %s, %d pages, %d items, next offset %d%s\n", when(r.GetSlot()), r.GetPages(), r.GetItems(), r.GetOffset(), where)
	}
	fmt.Fprintf(tw, "runs:\t%d\n", len(t.GetRuns()))
	tw.Flush()
	if len(t.GetRuns()) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tSLOT\tTRIGGER\tDURATION\tOUTCOME\tPAGES\tITEMS\tSTATUS\tREPLICA\tERROR")
	for _, r := range t.GetRuns() {
		trigger := "schedule"
		switch {
		case r.GetManual():
			trigger = "manual"
		case r.GetEpoch() > 1:
			trigger = fmt.Sprintf("taken over (epoch %d)", r.GetEpoch())
		case r.GetResumed():
			trigger = "resumed"
		}
		status := "-"
		if r.GetHttpStatus() != 0 {
			status = strconv.Itoa(int(r.GetHttpStatus()))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", when(r.GetStart()), when(r.GetSlot()), trigger,
			roundDuration(r.GetDuration().AsDuration()), safetext.Escape(r.GetOutcome()), r.GetPages(), r.GetItems(), status,
			orDash(safetext.Escape(r.GetReplica())), orDash(safetext.Escape(r.GetError())))
	}
	tw.Flush()
}

// printControl prints the outcome of pause or resume.
func printControl(w io.Writer, verb string, t *controlv1.Task) {
	if verb == "paused" && len(t.GetRunning()) > 0 {
		fmt.Fprintf(w, "paused %s: no fire until it is resumed; the run in progress will finish\n", safetext.Escape(t.GetName()))
		return
	}
	fmt.Fprintf(w, "%s %s: state %s, next %s\n", verb, safetext.Escape(t.GetName()), safetext.Escape(t.GetState()), when(t.GetNextFire()))
}

// when formats an instant in local time with its zone, or "-" when unset.
func when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(timeLayout)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
