package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/mojodex/mojodex-scheduler/config"
)

// httpAddrVar names the setting of the /metrics, /healthz and /readyz
// listener (config.Config.HTTPAddr).
const httpAddrVar = "MOJODEX_SCHEDULER_HTTP_ADDR"

// healthCmd is `mojodex-scheduler health`: a probe of a running scheduler's
// /readyz for container health checks, so that an image needs no curl.
type healthCmd struct {
	Addr    string        `help:"host:port of the scheduler's health listener (default: MOJODEX_SCHEDULER_HTTP_ADDR, else ${default_http_addr}). An unspecified host (0.0.0.0, [::] or none) is probed on loopback." placeholder:"HOST:PORT"`
	Timeout time.Duration `help:"How long to wait for the answer." default:"2s"`
}

// Run probes http://ADDR/readyz. It prints one line and returns nil when the
// answer is 200; otherwise it prints one line on stderr saying why and exits
// 1, whatever the reason (container engines reserve other codes).
func (h *healthCmd) Run(a *appEnv) error {
	target, err := h.readyzURL(a.environ)
	if err == nil {
		err = probe(target, h.Timeout)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "not ready: %v\n", err)
		return exitError{1}
	}
	fmt.Fprintf(a.stdout, "ready: %s\n", target)
	return nil
}

// readyzURL returns the URL to probe, from --addr or the environment
// (os.Environ's form). Only the listener's setting is read: a probe does
// not fail on the others.
func (h *healthCmd) readyzURL(environ []string) (string, error) {
	if h.Timeout <= 0 {
		return "", fmt.Errorf("--timeout %s must be positive", h.Timeout)
	}
	addr, from := strings.TrimSpace(h.Addr), "--addr"
	if addr == "" {
		addr, from = config.Default(httpAddrVar), "the default address"
		if v, ok := config.Lookup(environ, httpAddrVar); ok && strings.TrimSpace(v) != "" {
			addr, from = strings.TrimSpace(v), httpAddrVar
		}
	}
	if strings.EqualFold(addr, "off") {
		return "", fmt.Errorf("%s is off: the scheduler serves no /readyz to probe", from)
	}
	host, err := probeHost(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", from, addr, err)
	}
	return (&url.URL{Scheme: "http", Host: host, Path: "/readyz"}).String(), nil
}

// probeHost turns a listen address into the address to dial: a listener on
// every interface (no host, 0.0.0.0 or [::]) is reached on loopback.
func probeHost(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port == "" {
		return "", errors.New("missing port")
	}
	if host == "" {
		host = "127.0.0.1"
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}

// probe GETs target and returns nil when it answers 200 within timeout.
// Redirects are not followed and proxies are not used.
func probe(target string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", target, err)
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("GET %s: no answer within %s", target, timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("GET %s: %s", target, resp.Status)
		if line := firstLine(body); line != "" {
			msg += ": " + line
		}
		return errors.New(msg)
	}
	return nil
}

// firstLine returns the first line of b, without control characters and at
// most 200 bytes long, so that a failure stays one line.
func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, string(b))
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "")
	}
	return s
}
