package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/config"
	"github.com/mojodex/mojodex-scheduler/metrics"
)

// runHealth runs `mojodex-scheduler health args...` in process and returns
// its exit code, stdout and stderr.
func runHealth(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := execute(append([]string{"health"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// readyServer serves the scheduler's real health handler on loopback,
// ready or not.
func readyServer(t *testing.T, network, addr string, ready bool) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	h := metrics.NewHealth("supervisor")
	if ready {
		h.SetReady("supervisor")
	}
	srv := httptest.NewUnstartedServer(metrics.Handler(nil, h))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return ln.Addr().String()
}

// oneLine fails the test unless s is exactly one line containing every want.
func oneLine(t *testing.T, what, s string, want ...string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s: %q is not one line", what, s)
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s: %q does not contain %q", what, s, w)
		}
	}
}

func TestHealthReady(t *testing.T) {
	addr := readyServer(t, "tcp4", "127.0.0.1:0", true)
	code, out, errs := runHealth(t, "--addr", addr)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errs)
	}
	oneLine(t, "stdout", out, "ready: http://"+addr+"/readyz")
}

func TestHealthNotReady(t *testing.T) {
	addr := readyServer(t, "tcp4", "127.0.0.1:0", false)
	code, out, errs := runHealth(t, "--addr", addr)
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	oneLine(t, "stderr", errs, "not ready: GET http://"+addr+"/readyz: 503 Service Unavailable: not ready: supervisor")
}

// A listener on every interface is probed on loopback.
func TestHealthUnspecifiedHostProbesLoopback(t *testing.T) {
	addr4 := readyServer(t, "tcp4", "127.0.0.1:0", true)
	_, port4, _ := net.SplitHostPort(addr4)
	for _, a := range []string{"0.0.0.0:" + port4, ":" + port4} {
		if code, out, errs := runHealth(t, "--addr", a); code != 0 {
			t.Errorf("--addr %s: exit %d, stderr %q", a, code, errs)
		} else {
			oneLine(t, "--addr "+a, out, "http://127.0.0.1:"+port4+"/readyz")
		}
	}
	addr6 := readyServer(t, "tcp6", "[::1]:0", true) // skips without IPv6 loopback
	_, port6, _ := net.SplitHostPort(addr6)
	if code, out, errs := runHealth(t, "--addr", "[::]:"+port6); code != 0 {
		t.Errorf("--addr [::]:%s: exit %d, stderr %q", port6, code, errs)
	} else {
		oneLine(t, "--addr [::]", out, "http://[::1]:"+port6+"/readyz")
	}
}

// Without --addr the probe follows MOJODEX_SCHEDULER_HTTP_ADDR, as the
// scheduler does.
func TestHealthAddrFromEnvironment(t *testing.T) {
	addr := readyServer(t, "tcp4", "127.0.0.1:0", true)
	_, port, _ := net.SplitHostPort(addr)
	t.Setenv(httpAddrVar, "0.0.0.0:"+port)
	if code, out, errs := runHealth(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	} else {
		oneLine(t, "stdout", out, "http://127.0.0.1:"+port+"/readyz")
	}

	t.Setenv(httpAddrVar, "off")
	code, _, errs := runHealth(t)
	if code != 1 {
		t.Errorf("off: exit %d; want 1", code)
	}
	oneLine(t, "off", errs, "MOJODEX_SCHEDULER_HTTP_ADDR is off")

	// --addr wins over the environment.
	if code, _, errs := runHealth(t, "--addr", addr); code != 0 {
		t.Errorf("--addr with the variable off: exit %d, stderr %q", code, errs)
	}
}

// The default address is the scheduler's own default.
func TestHealthDefaultAddrIsTheSchedulers(t *testing.T) {
	cfg, _, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if def := config.Default(httpAddrVar); cfg.HTTPAddr != def {
		t.Fatalf("config default %q, health default %q", cfg.HTTPAddr, def)
	}
	h := healthCmd{Timeout: time.Second}
	got, err := h.readyzURL([]string{httpAddrVar + "="})
	if err != nil || got != "http://127.0.0.1:9464/readyz" {
		t.Errorf("empty variable: %q, %v", got, err)
	}
}

func TestHealthFailures(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	redirect := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
	t.Cleanup(redirect.Close)

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"refused", []string{"--addr", closed}, []string{"GET http://" + closed + "/readyz", "connection refused"}},
		{"redirect not followed", []string{"--addr", redirect.Listener.Addr().String()}, []string{"302 Found"}},
		{"no port", []string{"--addr", "127.0.0.1"}, []string{`--addr "127.0.0.1"`, "missing port"}},
		{"empty port", []string{"--addr", "127.0.0.1:"}, []string{`--addr "127.0.0.1:"`, "missing port"}},
		{"zero timeout", []string{"--addr", closed, "--timeout", "0s"}, []string{"--timeout 0s must be positive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runHealth(t, tc.args...)
			if code != 1 || out != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
			}
			oneLine(t, "stderr", errs, append([]string{"not ready: "}, tc.want...)...)
		})
	}
}

// A listener that accepts but never answers fails after --timeout.
func TestHealthTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	code, _, errs := runHealth(t, "--addr", srv.Listener.Addr().String(), "--timeout", "100ms")
	if code != 1 {
		t.Errorf("exit %d; want 1", code)
	}
	oneLine(t, "stderr", errs, "no answer within 100ms")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s; the timeout is 100ms", d)
	}
}

func TestFirstLine(t *testing.T) {
	for in, want := range map[string]string{
		"not ready: supervisor\nmore\n": "not ready: supervisor",
		"  a\tb\x1b[31m  ":              "ab[31m",
		strings.Repeat("é", 300):        strings.Repeat("é", 100),
		"":                              "",
	} {
		if got := firstLine([]byte(in)); got != want {
			t.Errorf("firstLine(%q) = %q; want %q", in, got, want)
		}
	}
}
