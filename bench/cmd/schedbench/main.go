// Command schedbench benchmarks the Mojodex scheduler against
// robfig/cron/v3 and go-co-op/gocron/v2.
//
// One invocation runs one scenario with one scheduler in this process, so
// that the process's CPU time and peak RSS are that scheduler's own, and
// prints its figures (and a machine-readable result line):
//
//	schedbench -scenario 1 -scheduler ours [-short]
//
// With -all it is the driver: it runs every scenario with every scheduler,
// one process at a time (re-executing itself), prints one line per run, a
// table with the ratios of our figures to the peers', and draws the
// lateness plot:
//
//	schedbench -all [-short] [-out DIR] [-plot FILE.png] [-profile DIR]
//
// -replot DIR -plot FILE.png redraws the plot and reprints the tables from
// an earlier driver run's results.
//
// A fire scenario with -store postgres -replicas N runs ours as N replica
// processes sharing one throwaway local PostgreSQL server (see
// replicas.go).
//
// Scenarios: 1 = 10,000 tasks every 1 s for 20 s; 2 = 100,000 tasks every
// 10 s for 40 s; 3 = 1,000,000 tasks every 60 s for 150 s (full mode only);
// 4 = idle (the seven default tasks, nothing due) CPU per minute; 5 = the
// API client's call rate against a loopback server (variants unlimited,
// unlimited-stub, rate-100, rate-1000). -short shrinks every scenario so
// that the whole driver run takes about a minute (CI catches breakage; its
// figures are not judged).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/mojodex/mojodex-scheduler/bench/harness"
)

func main() {
	var (
		all        = flag.Bool("all", false, "driver: run every scenario and scheduler, each in its own process")
		scenario   = flag.Int("scenario", 0, "scenario to run in this process: 1-5")
		scheduler  = flag.String("scheduler", "ours", "ours | robfig | gocron | none (scenario 4 only)")
		variant    = flag.String("variant", "unlimited", "scenario 5: unlimited | unlimited-stub | rate-100 | rate-1000")
		storeKind  = flag.String("store", "memory", "scenarios 1-3, ours: the state store, memory | bolt (a file in a temporary directory) | postgres (-replicas processes sharing a throwaway local PostgreSQL)")
		replicas   = flag.Int("replicas", 3, "with -store postgres: how many replica processes")
		role       = flag.String("role", "", "internal: replica (a replica process started by the coordinator of -store postgres)")
		replica    = flag.String("replica", "", "internal: the replica's name")
		dsn        = flag.String("dsn", "", "internal: the replica's PostgreSQL URL")
		t0         = flag.Int64("t0", 0, "internal: the replicas' anchor, Unix nanoseconds")
		seenOut    = flag.String("seen", "", "internal: where a replica writes the slots it fired")
		short      = flag.Bool("short", false, "short mode (CI): smaller and shorter runs")
		n          = flag.Int("n", 0, "override the number of tasks")
		period     = flag.Duration("period", 0, "override the period")
		duration   = flag.Duration("duration", 0, "override the duration (scenarios 1-3: the window; 4: the idle window; 5: each measurement)")
		margin     = flag.Duration("margin", 0, "override the setup margin before the anchor (scenarios 1-3)")
		histOut    = flag.String("hist", "", "write the lateness histogram (JSON) to this file")
		cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the measured window to this file")
		memProfile = flag.String("memprofile", "", "write a heap profile (taken at the end of the window) to this file")
		outDir     = flag.String("out", "", "driver: directory for results.json, results.md and histograms (default: a temporary directory)")
		plotOut    = flag.String("plot", "", "driver: write the lateness plot (PNG) here")
		profileDir = flag.String("profile", "", "driver: write CPU and heap profiles of every run into this directory")
		only       = flag.String("only", "", "driver: comma-separated scenarios to run (e.g. 1,2)")
		strict     = flag.Bool("strict", true, "driver: exit 1 when one of our fire runs missed or doubled a due fire")
		replot     = flag.String("replot", "", "redraw -plot (and reprint the tables) from the results of an earlier -all run in this directory")
	)
	flag.Parse()
	if *replot != "" {
		os.Exit(redraw(*replot, *plotOut))
	}
	if *all {
		os.Exit(drive(driverConfig{
			short: *short, outDir: *outDir, plot: *plotOut, profileDir: *profileDir,
			only: *only, strict: *strict,
		}))
	}
	p := profiles{cpu: *cpuProfile, mem: *memProfile}
	var res harness.Result
	switch *scenario {
	case 1, 2, 3:
		cfg, err := fireScenario(*scenario, *short)
		if err != nil {
			fail(err)
		}
		if *n > 0 {
			cfg.n = *n
		}
		if *period > 0 {
			cfg.period = *period
		}
		if *duration > 0 {
			cfg.duration = *duration
		}
		if *margin > 0 {
			cfg.margin = *margin
		}
		cfg.scheduler, cfg.profiles, cfg.store = *scheduler, p, *storeKind
		switch {
		case cfg.store == "postgres" && *role == "replica":
			cfg.replica = replicaArgs{name: *replica, dsn: *dsn, t0: time.Unix(0, *t0), seen: *seenOut}
			res = runReplica(cfg)
		case cfg.store == "postgres":
			cfg.histOut = *histOut
			res = runReplicated(cfg, *replicas)
		default:
			res = runFire(cfg)
		}
		if *histOut != "" && res.Error == "" && (*role == "replica" || cfg.store != "postgres") {
			if err := writeJSON(*histOut, res.Hist); err != nil {
				fail(err)
			}
		}
	case 4:
		w, warm := time.Minute, 2*time.Second
		if *short {
			w, warm = 3*time.Second, time.Second
		}
		if *duration > 0 {
			w = *duration
		}
		res = runIdle(*scheduler, w, warm, p)
	case 5:
		d := 10 * time.Second
		if *short {
			d = 2 * time.Second
		}
		if *duration > 0 {
			d = *duration
		}
		res = runAPI(*variant, d, p)
	default:
		fail(fmt.Errorf("-scenario must be 1-5 (or use -all)"))
	}
	res.Short = *short
	res.CPUTotal = harness.Self().CPU
	res.PeakRSS = harness.Self().MaxRSS
	fmt.Println(line(res))
	b, err := json.Marshal(res)
	if err != nil {
		fail(err)
	}
	fmt.Printf("%s%s\n", harness.ResultPrefix, b)
	if res.Error != "" {
		os.Exit(1)
	}
}

// profiles names the profile files of a run ("" for none).
type profiles struct{ cpu, mem string }

// startCPU starts the CPU profile; the returned function stops it.
func (p profiles) startCPU() func() {
	if p.cpu == "" {
		return func() {}
	}
	f, err := os.Create(p.cpu)
	if err != nil {
		fail(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fail(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// writeHeap writes the heap profile (after a GC, so it shows live memory).
func (p profiles) writeHeap() {
	if p.mem == "" {
		return
	}
	f, err := os.Create(p.mem)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fail(err)
	}
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "schedbench:", err)
	os.Exit(2)
}
