package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/mojodex/mojodex-scheduler/bench/harness"
)

// Targets (2-core machine). Lateness targets of the memory store in
// scenarios 1 and 2 are ratios: no higher than robfig/cron's p99 in the
// same run.
const (
	targetS1CPUPerFire = 3 * time.Microsecond
	targetS1BoltP99    = 50 * time.Millisecond
	targetS2RSS        = 300 << 20 // 300 MiB
	targetS2BoltP99    = 500 * time.Millisecond
	targetS3P99        = time.Second
	targetS3RSS        = 2 << 30 // 2 GiB
	targetIdlePerM     = 20 * time.Millisecond
	// Replicas on PostgreSQL (scenario 1 with -store postgres -replicas 3).
	targetReplicasP99       = 100 * time.Millisecond
	targetClaimStmtsPerFire = 0.1
	targetUnlimited         = 10_000.0
	targetRateError         = 0.01
	// rateJitter is the measurement allowance of the window check: the
	// instants are taken when an admitted call's goroutine starts its HTTP
	// round trip, which can lag the limiter's admission by scheduling
	// jitter (a timer or goroutine wake-up late by up to a couple of
	// milliseconds on two busy cores), so a late call followed by punctual
	// ones looks bunched. The check allows max(1, rate × rateJitter) calls.
	rateJitter = 2 * time.Millisecond
)

// rateSlack is the window check's allowance, in calls, at rate per second.
func rateSlack(rate float64) float64 { return max(1, rate*rateJitter.Seconds()) }

func ratio(ours, peer float64) string {
	if peer == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", ours/peer)
}

// find returns the result of scheduler in scenario with variant; ours' fire
// scenarios on the memory store (see findStore for the others).
func find(rs []harness.Result, scenario int, scheduler, variant string) *harness.Result {
	return findStore(rs, scenario, scheduler, variant, "memory")
}

// findStore is find for ours on a given store ("memory" also matches a
// result that names none).
func findStore(rs []harness.Result, scenario int, scheduler, variant, store string) *harness.Result {
	for i := range rs {
		r := &rs[i]
		st := r.Store
		if st == "" {
			st = "memory"
		}
		if r.Scenario == scenario && r.Scheduler == scheduler && r.Variant == variant && r.Error == "" &&
			(scheduler != "ours" || st == store) && r.Replicas <= 1 {
			return r
		}
	}
	return nil
}

func yes(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// report renders the results as Markdown tables.
func report(rs []harness.Result, short bool, elapsed time.Duration) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	mode := "full"
	if short {
		mode = "short (CI: catches breakage; figures not judged)"
	}
	p("## Results, %s mode (%s)\n\n", mode, elapsed.Round(time.Second))

	p("### Fire scenarios (in-process no-op jobs)\n\n")
	p("| scenario | scheduler | N | period | duration | delivered / expected | doubled | p50 | p99 | p99.9 | max | CPU (window) | CPU (process) | peak RSS | set-up |\n")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rs {
		if r.Scenario > 3 {
			continue
		}
		if r.Fires == nil {
			p("| %d | %s | error: %s |\n", r.Scenario, r.Scheduler, oneLine(r.Error))
			continue
		}
		f := r.Fires
		p("| %d | %s | %d | %s | %s | %d / %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Scenario, specOf(r).name(), r.N, dur(r.Period), dur(r.Duration), f.Delivered, f.Expected, f.Doubled,
			ms(r.P50), ms(r.P99), ms(r.P999), ms(r.Max), secs(r.CPUWindow), secs(r.CPUTotal), mib(r.PeakRSS), secs(r.Setup))
	}
	p("\nOur figures as ratios to the peers' (below 1 means ours is lower):\n\n")
	p("| scenario | ours / | p50 | p99 | max | CPU (window) | CPU (process) | peak RSS |\n")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range []int{1, 2} {
		o := find(rs, s, "ours", "")
		if o == nil || o.Fires == nil {
			continue
		}
		for _, peer := range []string{"robfig", "gocron"} {
			q := find(rs, s, peer, "")
			if q == nil || q.Fires == nil {
				continue
			}
			p("| %d | %s | %s | %s | %s | %s | %s | %s |\n", s, peer,
				ratio(float64(o.P50), float64(q.P50)), ratio(float64(o.P99), float64(q.P99)),
				ratio(float64(o.Max), float64(q.Max)), ratio(o.CPUWindow.Seconds(), q.CPUWindow.Seconds()),
				ratio(o.CPUTotal.Seconds(), q.CPUTotal.Seconds()), ratio(float64(o.PeakRSS), float64(q.PeakRSS)))
		}
	}

	if rep := replicated(rs); len(rep) > 0 {
		p("\n### Replicas sharing one PostgreSQL (-store postgres)\n\n")
		p("| scenario | replicas | N | delivered / expected | doubled | p50 | p99 | max | CPU per replica (window) | PostgreSQL CPU (window) | statements / fire | claim-path statements / fire | transactions / fire |\n")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n")
		for _, r := range rep {
			f := r.Fires
			var cpus []string
			for _, c := range r.ReplicaCPU {
				cpus = append(cpus, secs(c))
			}
			fires := float64(max(f.Delivered, 1))
			p("| %d | %d | %d | %d / %d | %d | %s | %s | %s | %s | %s | %.4f | %.4f | %.4f |\n", r.Scenario, r.Replicas, r.N,
				f.Delivered, f.Expected, f.Doubled, ms(r.P50), ms(r.P99), ms(r.Max), strings.Join(cpus, ", "), secs(r.DBCPU),
				float64(r.Statements)/fires, float64(r.ClaimStatements)/fires, float64(r.Transactions)/fires)
		}
	}

	p("\n### Idle (scenario 4)\n\n")
	p("| scheduler | tasks | window | CPU | CPU per idle minute | wake-ups per minute | stub calls in window | peak RSS |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rs {
		if r.Scenario != 4 {
			continue
		}
		if r.Error != "" {
			p("| %s | error: %s |\n", r.Scheduler, oneLine(r.Error))
			continue
		}
		stub := "-"
		if r.Scheduler == "ours" {
			stub = fmt.Sprint(r.StubCalls)
		}
		p("| %s | %d | %s | %s | %s | %d | %s | %s |\n", r.Scheduler, r.N, dur(r.Window.Round(time.Second)),
			ms(r.CPUWindow), ms(r.CPUPerIdleM), perMinute(r.WakeWindow, r.Window), stub, mib(r.PeakRSS))
	}

	p("\n### API client (scenario 5)\n\n")
	p("| variant | limit | in flight | calls | calls/s | off the setting | max calls in a window − rate × length (burst) | call p50 | call p99 | CPU (window) |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rs {
		if r.Scenario != 5 {
			continue
		}
		if r.Error != "" {
			p("| %s | error: %s |\n", r.Variant, oneLine(r.Error))
			continue
		}
		limit, off, win := "none", "-", "-"
		if r.RateCheck != nil {
			limit = fmt.Sprintf("%.0f/s", r.Rate)
			off = fmt.Sprintf("%+.2f%%", 100*(r.RateCheck.Achieved/r.Rate-1))
			win = fmt.Sprintf("%.2f (%d)", r.RateCheck.MaxWindow, r.Burst)
		}
		p("| %s | %s | %d | %d | %.0f | %s | %s | %s | %s | %s |\n", r.Variant, limit, r.MaxInFlight, r.Calls,
			r.CallsPerSec, off, win, ms(r.CallP50), ms(r.CallP99), secs(r.CPUWindow))
	}

	p("\n### Targets\n\n")
	p("| target | figure | |\n| --- | --- | --- |\n")
	for _, s := range []int{1, 2, 3} {
		for _, st := range []string{"memory", "bolt"} {
			if o := findStore(rs, s, "ours", "", st); o != nil && o.Fires != nil {
				f := o.Fires
				p("| scenario %d, %s store: every due fire delivered, none doubled | %d / %d, %d doubled | %s |\n",
					s, st, f.Delivered, f.Expected, f.Doubled, yes(f.Delivered == f.Expected && f.Doubled == 0))
			}
		}
	}
	if o := find(rs, 1, "ours", ""); o != nil {
		if r := find(rs, 1, "robfig", ""); r != nil {
			p("| scenario 1, memory store: p99 no higher than robfig's (%s) | %s | %s |\n", ms(r.P99), ms(o.P99), yes(o.P99 <= r.P99))
		}
		if o.Fires != nil && o.Fires.Delivered > 0 {
			per := o.CPUWindow / time.Duration(o.Fires.Delivered)
			p("| scenario 1, memory store: CPU per delivered fire ≤ 3 µs | %.1f µs | %s |\n", float64(per)/1e3, yes(per <= targetS1CPUPerFire))
		}
	}
	if o := findStore(rs, 1, "ours", "", "bolt"); o != nil {
		p("| scenario 1, bolt store: p99 ≤ 50 ms | %s | %s |\n", ms(o.P99), yes(o.P99 <= targetS1BoltP99))
	}
	if o := find(rs, 2, "ours", ""); o != nil {
		if r := find(rs, 2, "robfig", ""); r != nil {
			p("| scenario 2, memory store: p99 no higher than robfig's (%s) | %s | %s |\n", ms(r.P99), ms(o.P99), yes(o.P99 <= r.P99))
		}
		p("| scenario 2, memory store: peak RSS ≤ 300 MiB | %s | %s |\n", mib(o.PeakRSS), yes(o.PeakRSS <= targetS2RSS))
	}
	if o := findStore(rs, 2, "ours", "", "bolt"); o != nil {
		p("| scenario 2, bolt store: p99 ≤ 500 ms | %s | %s |\n", ms(o.P99), yes(o.P99 <= targetS2BoltP99))
	}
	if o := find(rs, 3, "ours", ""); o != nil {
		p("| scenario 3: p99 ≤ 1 s | %s | %s |\n", ms(o.P99), yes(o.P99 <= targetS3P99))
		p("| scenario 3: peak RSS ≤ 2 GiB | %s | %s |\n", mib(o.PeakRSS), yes(o.PeakRSS <= targetS3RSS))
	}
	for _, r := range replicated(rs) {
		f := r.Fires
		fires := float64(max(f.Delivered, 1))
		p("| scenario %d on %d replicas (PostgreSQL): every due fire delivered once | %d / %d, %d doubled | %s |\n",
			r.Scenario, r.Replicas, f.Delivered, f.Expected, f.Doubled, yes(f.Delivered == f.Expected && f.Doubled == 0))
		p("| scenario %d on %d replicas: p99 ≤ 100 ms | %s | %s |\n", r.Scenario, r.Replicas, ms(r.P99), yes(r.P99 <= targetReplicasP99))
		p("| scenario %d on %d replicas: ≤ 0.1 statements per fire on the claim path | %.4f | %s |\n", r.Scenario, r.Replicas,
			float64(r.ClaimStatements)/fires, yes(float64(r.ClaimStatements)/fires <= targetClaimStmtsPerFire))
	}
	if o := find(rs, 4, "ours", ""); o != nil {
		p("| scenario 4: ≤ 20 ms CPU per idle minute | %s | %s |\n", ms(o.CPUPerIdleM), yes(o.CPUPerIdleM <= targetIdlePerM))
	}
	if o := find(rs, 5, "ours", "unlimited"); o != nil {
		p("| scenario 5: ≥ 10,000 calls/s unthrottled | %.0f/s | %s |\n", o.CallsPerSec, yes(o.CallsPerSec >= targetUnlimited))
	}
	for _, v := range []string{"rate-100", "rate-1000"} {
		if o := find(rs, 5, "ours", v); o != nil && o.RateCheck != nil {
			rc := o.RateCheck
			off := rc.Achieved/o.Rate - 1
			p("| scenario 5: %.0f/s within 1%% of the setting | %.2f/s (%+.2f%%) | %s |\n", o.Rate, rc.Achieved, 100*off,
				yes(off <= targetRateError && off >= -targetRateError))
			p("| scenario 5: %.0f/s never above rate × length + burst in any window (allowance %.0f call for jitter) | %.2f (burst %d) | %s |\n",
				o.Rate, rateSlack(o.Rate), rc.MaxWindow, o.Burst, yes(rc.MaxWindow <= float64(o.Burst)+rateSlack(o.Rate)))
		}
	}
	return b.String()
}

// replicated returns the fire runs of ours on replicas sharing PostgreSQL.
func replicated(rs []harness.Result) []harness.Result {
	var out []harness.Result
	for _, r := range rs {
		if r.Store == "postgres" && r.Fires != nil && r.Error == "" {
			out = append(out, r)
		}
	}
	return out
}

func perMinute(n int64, window time.Duration) int64 {
	if window <= 0 {
		return 0
	}
	return int64(float64(n) * float64(time.Minute) / float64(window))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
