package config_test

import (
	"testing"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/config"
	"github.com/mojodex/mojodex-scheduler/endpoint"
	"github.com/mojodex/mojodex-scheduler/supervisor"
)

// A setting's default is the default of the package it configures, so
// that the binary and a program embedding the package behave alike. The
// struct tags cannot name the packages' constants; this test ties them.
func TestDefaultsAreThePackagesDefaults(t *testing.T) {
	c, _, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		setting   string
		got, want any
	}{
		{"MOJODEX_SCHEDULER_RATE", c.Rate, apiclient.DefaultRate},
		{"MOJODEX_SCHEDULER_BURST", c.Burst, apiclient.DefaultBurst},
		{"MOJODEX_SCHEDULER_MAX_IN_FLIGHT", c.MaxInFlight, apiclient.DefaultMaxInFlight},
		{"MOJODEX_SCHEDULER_QUEUE_SIZE", c.QueueSize, apiclient.DefaultQueueSize},
		{"MOJODEX_SCHEDULER_REQUEST_TIMEOUT", c.RequestTimeout, apiclient.DefaultTimeout},
		{"MOJODEX_SCHEDULER_MAX_ATTEMPTS", c.MaxAttempts, apiclient.DefaultMaxAttempts},
		{"MOJODEX_SCHEDULER_GATE_INTERVAL", c.GateInterval, supervisor.DefaultGateInterval},
		{"MOJODEX_SCHEDULER_LEASE", c.Lease, supervisor.DefaultLease},
		{"MOJODEX_SCHEDULER_LEASE_RENEW", c.LeaseRenew, supervisor.DefaultLeaseRenew},
		{"MOJODEX_SCHEDULER_REAPER_INTERVAL", c.ReaperInterval, supervisor.DefaultReaperInterval},
		{"MOJODEX_SCHEDULER_REMOTE_MAX_CONNS", c.RemoteMaxConns, endpoint.DefaultMaxConns},
	} {
		if d.got != d.want {
			t.Errorf("%s defaults to %v; the package's default is %v", d.setting, d.got, d.want)
		}
	}
}
