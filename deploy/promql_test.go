package deploy

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// schedulerSeries are the series the scheduler exports that the alert rules
// and the dashboard may use.
var schedulerSeries = []string{
	"mojodex_scheduler_runs_total",
	"mojodex_scheduler_task_last_success_timestamp_seconds",
	"mojodex_scheduler_task_interval_seconds",
	"mojodex_scheduler_task_state",
	"mojodex_scheduler_api_calls_total",
	"mojodex_scheduler_fires_skipped_total",
	"mojodex_scheduler_slots_missed_total",
	"mojodex_scheduler_ready",
	"mojodex_scheduler_build_info",
}

// schedulerHistograms are exported as _bucket, _sum and _count series.
var schedulerHistograms = []string{
	"mojodex_scheduler_fire_lateness_seconds",
	"mojodex_scheduler_run_duration_seconds",
	"mojodex_scheduler_api_call_duration_seconds",
}

// knownSeries returns the scheduler's series, plus extra.
func knownSeries(extra ...string) map[string]bool {
	known := map[string]bool{}
	for _, s := range append(slices.Clone(schedulerSeries), extra...) {
		known[s] = true
	}
	for _, h := range schedulerHistograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			known[h+suffix] = true
		}
	}
	return known
}

var (
	promStrings   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers  = regexp.MustCompile(`\{[^{}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\[\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "atan2": true, "inf": true, "nan": true}
	grafanaMacros = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges, grouping labels,
// function names, keywords and numbers are set aside.
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	seen := map[string]bool{}
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.$", rune(e[loc[0]-1])) {
			continue // the unit of a number or duration, or a dashboard variable
		}
		if strings.HasPrefix(strings.TrimLeft(e[loc[1]:], " \t\n"), "(") || promKeywords[strings.ToLower(name)] {
			continue // a function or an operator
		}
		seen[name] = true
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// unknownSeries returns the metric names of expr that are not in known.
func unknownSeries(expr string, known map[string]bool) []string {
	var bad []string
	for _, n := range metricNames(expr) {
		if !known[n] {
			bad = append(bad, n)
		}
	}
	return bad
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`up{job="mojodex-scheduler"} == 0 or absent(up{job="mojodex-scheduler"})`:                                                                        {"up"},
		`histogram_quantile(0.99, sum by (task, le) (rate(mojodex_scheduler_fire_lateness_seconds_bucket{job=~"$job", task!~"a|b"}[$__rate_interval])))`: {"mojodex_scheduler_fire_lateness_seconds_bucket"},
		`time() - (x_seconds >= on(job, instance) group_left() process_start_time_seconds) > 2 * y offset 1h`:                                            {"process_start_time_seconds", "x_seconds", "y"},
		`sum without (le) (rate(a_total[5m:1m])) / ignoring(code) b_total unless c{l="on(x)"}`:                                                           {"a_total", "b_total", "c"},
		`1e3 * 0x1F + 1.5 - inf + nan + 3h`:            nil,
		`{__name__="hidden"}`:                          nil,
		`label_replace(m, "dst", "$1", "src", "(.*)")`: {"m"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v; want %v", expr, got, want)
		}
	}
	if bad := unknownSeries(`sum(rate(mojodex_scheduler_runs_total[5m])) / mojodex_scheduler_runs`, knownSeries()); !slices.Equal(bad, []string{"mojodex_scheduler_runs"}) {
		t.Errorf("unknownSeries = %v; want the misspelt series", bad)
	}
}
