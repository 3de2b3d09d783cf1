package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/config"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/endpoint"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:4000":   true,
		"127.1.2.3:4000":   true,
		"localhost:4000":   true,
		"[::1]:4000":       true,
		"0.0.0.0:4000":     false,
		":4000":            false,
		"[::]:4000":        false,
		"10.0.0.5:4000":    false,
		"scheduler:4000":   false,
		"127.0.0.1.x:4000": false,
	} {
		got, err := isLoopback(addr)
		if err != nil || got != want {
			t.Errorf("isLoopback(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
	if _, err := isLoopback("127.0.0.1"); err == nil {
		t.Error("isLoopback accepted an address without a port")
	}
}

// Partial TLS settings name what is set and what is missing, in the words
// of the caller (variables for run, flags for ctl).
func TestMutualTLSPartial(t *testing.T) {
	names := tlsFiles{certName: "--tls-cert", keyName: "--tls-key", caName: "--tls-ca"}
	if cfg, err := mutualTLS(names); cfg != nil || err != nil {
		t.Errorf("no files: %v, %v; want no TLS", cfg, err)
	}
	f := names
	f.cert, f.ca = "c.pem", "ca.pem"
	_, err := mutualTLS(f)
	if err == nil || !strings.Contains(err.Error(), "--tls-cert and --tls-ca set but --tls-key missing") {
		t.Errorf("cert and CA without key: %v", err)
	}
}

// newEngine refuses a non-loopback address without mutual TLS, and the
// "off" engine has no remote.
func TestNewEngineSettings(t *testing.T) {
	e, ep, err := newEngine(config.Config{RemoteAddr: "OFF"}, zerolog.Nop())
	if err != nil || e.Address() != "local" || ep != nil {
		t.Fatalf("off: %v, %v, %v", e, ep, err)
	}
	_, _, err = newEngine(config.Config{RemoteAddr: "[::]:0"}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "MOJODEX_SCHEDULER_REMOTE_ADDR=[::]:0 is not a loopback address") ||
		!strings.Contains(err.Error(), "MOJODEX_SCHEDULER_INSECURE_REMOTE=true") {
		t.Errorf("non-loopback without TLS: %v", err)
	}
	_, _, err = newEngine(config.Config{RemoteAddr: "127.0.0.1:0", TLSKey: "k.pem"}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "MOJODEX_SCHEDULER_TLS_KEY set but MOJODEX_SCHEDULER_TLS_CERT and MOJODEX_SCHEDULER_TLS_CA missing") {
		t.Errorf("key only: %v", err)
	}
}

// fakeScheduler starts an engine on a loopback endpoint, configured as
// `run` configures its own, with an actor at the supervisor's ID that
// answers each request with answer's replies (none: no answer). It keeps
// ctl's tests independent of the real supervisor.
func fakeScheduler(t *testing.T, answer func(proto.Message) []proto.Message) string {
	t.Helper()
	ep, err := endpoint.Listen("127.0.0.1:0", endpoint.WithTypes(controlTypes),
		endpoint.WithTargets(endpoint.IDs(supervisor.Kind+"/"+supervisor.ID)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Stop().Wait() })
	e, err := actor.NewEngine(actor.NewEngineConfig().WithRemote(ep))
	if err != nil {
		t.Fatal(err)
	}
	e.SpawnFunc(func(c *actor.Context) {
		if m, ok := c.Message().(proto.Message); ok {
			for _, r := range answer(m) {
				c.Respond(r)
			}
		}
	}, supervisor.Kind, actor.WithID(supervisor.ID))
	return ep.Address()
}

// runCtl runs `ctl args...` in this process.
func runCtl(args ...string) (stdout, stderr string, code int, took time.Duration) {
	var out, errOut bytes.Buffer
	start := time.Now()
	code = execute(append([]string{"ctl"}, args...), &out, &errOut)
	return out.String(), errOut.String(), code, time.Since(start)
}

// ctl's answers and failures against a fake scheduler: the reply it waits
// for, a reply of another type, an error, no reply, a second reply.
func TestCtlReplies(t *testing.T) {
	probe := &controlv1.ListTasksResponse{Tasks: []*controlv1.Task{{Name: "probe", State: "scheduled", Schedule: "every 1s"}}}
	for _, tc := range []struct {
		name    string
		answer  []proto.Message
		code    int
		stdout  string
		stderr  string
		timeout string
	}{
		{"answer", []proto.Message{probe}, 0, "probe", "", "5s"},
		{"two answers: the first counts", []proto.Message{probe, &controlv1.ListTasksResponse{}}, 0, "probe", "", "5s"},
		{"another type", []proto.Message{&controlv1.GetTaskResponse{}}, ctlExitRefused, "",
			"unexpected reply mojodex.scheduler.control.v1.GetTaskResponse", "5s"},
		{"refused", []proto.Message{&controlv1.ListTasksResponse{Error: &controlv1.Error{Code: controlv1.Code_FAILED_PRECONDITION}}},
			ctlExitRefused, "", "failed precondition", "5s"},
		{"no answer", nil, ctlExitNoAnswer, "", "no answer from ", "300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeScheduler(t, func(m proto.Message) []proto.Message {
				if _, ok := m.(*controlv1.ListTasksRequest); !ok {
					t.Errorf("request %T", m)
				}
				return tc.answer
			})
			stdout, stderr, code, took := runCtl("list", "--addr", addr, "--timeout", tc.timeout)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if tc.code == ctlExitNoAnswer && (took < 300*time.Millisecond || took > 2*time.Second) {
				t.Errorf("gave up after %v, want about --timeout 300ms", took)
			}
		})
	}
}

// --listen must name an address the scheduler can dial back.
func TestCtlReplyAddr(t *testing.T) {
	for listen, want := range map[string]string{
		"":               "127.0.0.1:0",
		"127.0.0.1:5000": "127.0.0.1:5000",
		"0.0.0.0:5000":   "error",
		"[::]:5000":      "error",
		":5000":          "error",
		"nope":           "error",
	} {
		got, err := (&ctlCmd{Listen: listen}).replyAddr("127.0.0.1:4000")
		if want == "error" && err == nil || want != "error" && (err != nil || got != want) {
			t.Errorf("--listen %q: %q, %v; want %s", listen, got, err, want)
		}
	}
	if got, err := (&ctlCmd{}).replyAddr("[::1]:4000"); err != nil || got != "[::1]:0" {
		t.Errorf("IPv6 loopback: %q, %v", got, err)
	}
	_, stderr, code, _ := runCtl("list", "--addr", "127.0.0.1:1", "--listen", "0.0.0.0:0")
	if code != 2 || !strings.Contains(stderr, "--listen") {
		t.Errorf("--listen 0.0.0.0:0: exit %d: %s", code, stderr)
	}
}
