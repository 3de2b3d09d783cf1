package main

import (
	"net"
	"strings"
)

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
