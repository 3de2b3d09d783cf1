package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mojodex/mojodex-scheduler/bench/harness"
)

// driverConfig configures the driver (-all).
type driverConfig struct {
	short      bool
	outDir     string
	plot       string
	profileDir string
	only       string
	strict     bool
}

// runSpec is one benchmark process.
type runSpec struct {
	scenario  int
	scheduler string
	variant   string
	store     string // ours in a fire scenario: memory or bolt
}

// specOf is the run that gave r.
func specOf(r harness.Result) runSpec {
	return runSpec{scenario: r.Scenario, scheduler: r.Scheduler, variant: r.Variant, store: r.Store}
}

// otherStore reports whether the run is ours on a store other than memory.
func (r runSpec) otherStore() bool { return r.store != "" && r.store != "memory" }

func (r runSpec) key() string {
	k := fmt.Sprintf("s%d-%s", r.scenario, r.scheduler)
	if r.otherStore() {
		k += "-" + r.store
	}
	if r.variant != "" {
		k += "-" + r.variant
	}
	return k
}

// name names the scheduler as the tables and the plot show it: with its
// store unless that is the memory store ("ours/bolt").
func (r runSpec) name() string {
	if r.otherStore() {
		return r.scheduler + "/" + r.store
	}
	return r.scheduler
}

// plan lists the runs, in order: every scenario with every scheduler.
func plan(short bool, only string) []runSpec {
	var runs []runSpec
	for _, s := range []int{1, 2} {
		runs = append(runs, runSpec{scenario: s, scheduler: "ours", store: "memory"}, runSpec{scenario: s, scheduler: "ours", store: "bolt"})
		for _, sch := range []string{"robfig", "gocron"} {
			runs = append(runs, runSpec{scenario: s, scheduler: sch})
		}
	}
	if !short {
		// Three replicas sharing one local PostgreSQL (needs its server
		// binaries: see internal/pgtest).
		runs = append(runs, runSpec{scenario: 1, scheduler: "ours", store: "postgres"})
		runs = append(runs, runSpec{scenario: 3, scheduler: "ours"})
	}
	for _, sch := range []string{"ours", "robfig", "gocron", "none"} {
		runs = append(runs, runSpec{scenario: 4, scheduler: sch})
	}
	for _, v := range []string{"unlimited", "unlimited-stub", "rate-100", "rate-1000"} {
		runs = append(runs, runSpec{scenario: 5, scheduler: "ours", variant: v})
	}
	if only == "" {
		return runs
	}
	want := map[int]bool{}
	for _, f := range strings.Split(only, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			want[n] = true
		}
	}
	return slices.DeleteFunc(runs, func(r runSpec) bool { return !want[r.scenario] })
}

// drive runs the plan, one process at a time, and reports. It returns the
// exit code.
func drive(cfg driverConfig) int {
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	if cfg.outDir == "" {
		if cfg.outDir, err = os.MkdirTemp("", "schedbench-"); err != nil {
			fail(err)
		}
	}
	for _, d := range []string{cfg.outDir, cfg.profileDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				fail(err)
			}
		}
	}
	mode := "full"
	if cfg.short {
		mode = "short"
	}
	began := time.Now()
	fmt.Printf("schedbench: %s mode, results in %s\n", mode, cfg.outDir)
	var results []harness.Result
	hists := map[string]string{}
	for _, r := range plan(cfg.short, cfg.only) {
		args := []string{"-scenario", strconv.Itoa(r.scenario), "-scheduler", r.scheduler}
		if r.store != "" {
			args = append(args, "-store", r.store)
		}
		if r.variant != "" {
			args = append(args, "-variant", r.variant)
		}
		if cfg.short {
			args = append(args, "-short")
		}
		if r.scenario <= 3 {
			h := filepath.Join(cfg.outDir, "hist-"+r.key()+".json")
			args = append(args, "-hist", h)
			hists[r.key()] = h
		}
		if cfg.profileDir != "" {
			args = append(args,
				"-cpuprofile", filepath.Join(cfg.profileDir, r.key()+".cpu.pprof"),
				"-memprofile", filepath.Join(cfg.profileDir, r.key()+".heap.pprof"))
		}
		res := runChild(self, args, r)
		fmt.Println(line(res))
		for _, n := range res.Notes {
			fmt.Printf("    note: %s\n", n)
		}
		if res.Error != "" {
			fmt.Printf("    error: %s\n", res.Error)
		}
		results = append(results, res)
	}
	elapsed := time.Since(began)
	md := report(results, cfg.short, elapsed)
	fmt.Println()
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(cfg.outDir, "results.md"), []byte(md), 0o644); err != nil {
		fail(err)
	}
	if err := writeJSON(filepath.Join(cfg.outDir, "results.json"), results); err != nil {
		fail(err)
	}
	if cfg.plot != "" {
		if err := plotLateness(cfg.plot, results, hists); err != nil {
			fmt.Fprintln(os.Stderr, "schedbench: plot:", err)
			return 1
		}
		fmt.Printf("lateness plot: %s\n", cfg.plot)
	}
	fmt.Printf("schedbench: %d runs in %s\n", len(results), elapsed.Round(time.Second))
	code := 0
	for _, r := range results {
		if r.Error != "" {
			fmt.Printf("FAIL %s: %s\n", specOf(r).key(), r.Error)
			code = 1
		}
		// On replicas, a slot fired twice fails the run; slots not
		// delivered (the shared store could not keep up) are reported in
		// the targets table.
		if cfg.strict && r.Scheduler == "ours" && r.Fires != nil && (r.Fires.Doubled > 0 || (r.Store != "postgres" && r.Fires.Delivered != r.Fires.Expected)) {
			fmt.Printf("FAIL %s: delivered %d of %d due fires, %d doubled\n",
				specOf(r).key(), r.Fires.Delivered, r.Fires.Expected, r.Fires.Doubled)
			code = 1
		}
	}
	return code
}

// runChild runs one benchmark process and returns its result, with the
// process's CPU time and peak RSS as the kernel accounted them.
func runChild(self string, args []string, r runSpec) harness.Result {
	cmd := exec.Command(self, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	runErr := cmd.Run()
	var res harness.Result
	found := false
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), harness.ResultPrefix); ok {
			if err := json.Unmarshal([]byte(rest), &res); err == nil {
				found = true
			}
		}
	}
	if !found {
		res = harness.Result{Scenario: r.scenario, Scheduler: r.scheduler, Variant: r.variant}
		msg := "no result from the benchmark process"
		if runErr != nil {
			msg += ": " + runErr.Error()
		}
		tail := out.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		res.Error = strings.TrimSpace(msg + "\n" + tail)
		_, _ = io.WriteString(os.Stderr, tail)
	}
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			u := harness.FromRusage(ru, time.Now())
			res.CPUTotal, res.PeakRSS = u.CPU, u.MaxRSS
		}
	}
	return res
}

// Formatting helpers.

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func dur(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
	return d.String()
}

// line is the one-line summary of a run.
func line(r harness.Result) string {
	name := r.Scheduler
	if r.Store != "" {
		name += "/" + r.Store
	}
	head := fmt.Sprintf("scenario %d  %-12s", r.Scenario, name)
	switch {
	case r.Error != "" && r.Fires == nil && r.Calls == 0 && r.Window == 0:
		return head + "  ERROR"
	case r.Scenario <= 3 && r.Replicas > 1:
		f := r.Fires
		fires := float64(max(f.Delivered, 1))
		return fmt.Sprintf("%s  replicas=%d  N=%d  period=%s  duration=%s  fires %d/%d (%d doubled)  lateness p50=%s p99=%s max=%s  CPU per replica=%v (window)  PostgreSQL CPU=%s (window)  statements/fire=%.4f (claim path %.4f)  transactions/fire=%.4f  take-overs=%d fenced=%d claims failed=%d",
			head, r.Replicas, r.N, dur(r.Period), dur(r.Duration), f.Delivered, f.Expected, f.Doubled,
			ms(r.P50), ms(r.P99), ms(r.Max), r.ReplicaCPU, secs(r.DBCPU),
			float64(r.Statements)/fires, float64(r.ClaimStatements)/fires, float64(r.Transactions)/fires,
			r.Takeovers, r.Fenced, r.ClaimsFailed)
	case r.Scenario <= 3:
		f := r.Fires
		return fmt.Sprintf("%s  N=%d  period=%s  duration=%s  fires %d/%d  lateness p50=%s p99=%s max=%s  CPU=%s (window) %s (process)  peak RSS=%s  setup=%s",
			head, r.N, dur(r.Period), dur(r.Duration), f.Delivered, f.Expected,
			ms(r.P50), ms(r.P99), ms(r.Max), secs(r.CPUWindow), secs(r.CPUTotal), mib(r.PeakRSS), secs(r.Setup))
	case r.Scenario == 4:
		return fmt.Sprintf("%s  idle tasks=%d  window=%s  CPU=%s  = %s per idle minute  wake-ups=%d/min  stub calls in window=%d  peak RSS=%s",
			head, r.N, r.Window.Round(time.Millisecond), ms(r.CPUWindow), ms(r.CPUPerIdleM),
			int64(float64(r.WakeWindow)*float64(time.Minute)/float64(max(r.Window, 1))), r.StubCalls, mib(r.PeakRSS))
	default:
		s := fmt.Sprintf("%s  %-14s  ", head, r.Variant)
		if r.RateCheck != nil {
			s += fmt.Sprintf("limit %.0f/s burst %d: achieved %.2f/s (%+.2f%%), max calls in a window - rate*len = %.2f (burst %d), %d calls",
				r.Rate, r.Burst, r.RateCheck.Achieved, 100*(r.RateCheck.Achieved/r.Rate-1), r.RateCheck.MaxWindow, r.Burst, r.Calls)
		} else {
			s += fmt.Sprintf("no limit, %d in flight: %.0f calls/s (%d in %s)", r.MaxInFlight, r.CallsPerSec, r.Calls, dur(r.Duration))
		}
		return s + fmt.Sprintf("  call p50=%s p99=%s  CPU=%s (window)  peak RSS=%s", ms(r.CallP50), ms(r.CallP99), secs(r.CPUWindow), mib(r.PeakRSS))
	}
}

// redraw reprints the tables of an earlier driver run from dir and, when
// plot is set, draws its lateness plot again.
func redraw(dir, plot string) int {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		fail(err)
	}
	var results []harness.Result
	if err := json.Unmarshal(b, &results); err != nil {
		fail(err)
	}
	hists := map[string]string{}
	short := false
	for _, r := range results {
		short = short || r.Short
		key := specOf(r).key()
		hists[key] = filepath.Join(dir, "hist-"+key+".json")
	}
	fmt.Print(report(results, short, 0))
	if plot != "" {
		if err := plotLateness(plot, results, hists); err != nil {
			fmt.Fprintln(os.Stderr, "schedbench: plot:", err)
			return 1
		}
		fmt.Printf("lateness plot: %s\n", plot)
	}
	return 0
}
