package main

import (
	"strings"
	"testing"

	"github.com/mojodex/mojodex-scheduler/config"
	"github.com/rs/zerolog"
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
	e, err := newEngine(config.Config{RemoteAddr: "OFF"}, zerolog.Nop())
	if err != nil || e.Address() != "local" {
		t.Fatalf("off: %v, %v", e, err)
	}
	_, err = newEngine(config.Config{RemoteAddr: "[::]:0"}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "MOJODEX_SCHEDULER_REMOTE_ADDR=[::]:0 is not a loopback address") ||
		!strings.Contains(err.Error(), "MOJODEX_SCHEDULER_INSECURE_REMOTE=true") {
		t.Errorf("non-loopback without TLS: %v", err)
	}
	_, err = newEngine(config.Config{RemoteAddr: "127.0.0.1:0", TLSKey: "k.pem"}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "MOJODEX_SCHEDULER_TLS_KEY set but MOJODEX_SCHEDULER_TLS_CERT and MOJODEX_SCHEDULER_TLS_CA missing") {
		t.Errorf("key only: %v", err)
	}
}
