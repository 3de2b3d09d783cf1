package main

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mojodex/mojodex-scheduler/config"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// startDemo starts the stub of both Mojodex services that --demo runs
// against (replies after latency) and points cfg at it.
func startDemo(cfg *config.Config, latency time.Duration) (*mojodexstub.Stub, error) {
	stub, err := mojodexstub.Start(mojodexstub.Options{
		Secret:          demoSecret,
		EmailConfigured: true,
		Backlog:         mojodexstub.DefaultBacklog(),
		Latency:         latency,
	})
	if err != nil {
		return nil, fmt.Errorf("demo stub: %w", err)
	}
	cfg.BackendURI, cfg.BackgroundURI, cfg.Secret = stub.BackendURL(), stub.BackgroundURL(), demoSecret
	return stub, nil
}

// demoReady is the message `run --demo` logs once it serves: what it runs
// against, and what to try next. httpAddr is the address the status page
// listens on ("" when off), remoteOn whether the control endpoint serves,
// and bin the binary as it was invoked (bin/mojodex-scheduler under make
// run), so that the command shown can be pasted as it is.
func demoReady(httpAddr string, remoteOn bool, bin string) string {
	var next []string
	if httpAddr != "" {
		if host, err := probeHost(httpAddr); err == nil {
			next = append(next, "open http://"+host+"/ for the status page")
		}
	}
	if remoteOn {
		if bin == "" || strings.ContainsAny(bin, " \t'\"") {
			bin = "mojodex-scheduler"
		}
		next = append(next, "run `"+bin+" ctl list` in another terminal")
	}
	msg := "mojodex-scheduler running against the demo stub"
	if len(next) > 0 {
		msg += ": " + strings.Join(next, ", or ")
	}
	return msg + "; Ctrl-C stops it"
}

// listenAddr is the address ln listens on, or "" for none.
func listenAddr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}
