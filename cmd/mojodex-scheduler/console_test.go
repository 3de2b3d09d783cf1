package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// A console log shows *_s seconds as Go durations under the name without
// the unit, in nested objects too, and instants as short local times.
func TestConsoleFields(t *testing.T) {
	var buf bytes.Buffer
	w := zerolog.ConsoleWriter{Out: &buf, NoColor: true, TimeFormat: "15:04:05", FormatPrepare: consoleFields}
	slot := time.Now().Truncate(time.Second) // today, so shown without its date
	yesterday := slot.Add(-48 * time.Hour)
	log := zerolog.New(w)
	log.Info().
		Float64("duration_s", 0.0314159).
		Time("slot", slot).
		Time("earlier", yesterday).
		Dict("config", zerolog.Dict().Float64("request_timeout_s", 30).Int("burst", 5)).
		Msg("run finished")
	out := buf.String()
	for _, want := range []string{
		"duration=31.42ms",
		"slot=" + slot.Local().Format("15:04:05") + "\n",
		`earlier="` + yesterday.Local().Format("2006-01-02 15:04:05") + `"`,
		`"request_timeout":"30s"`,
		`"burst":5`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console line lacks %s:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"duration_s", "request_timeout_s", "T" + slot.UTC().Format("15:04:05")} {
		if strings.Contains(out, unwanted) {
			t.Errorf("console line has %s:\n%s", unwanted, out)
		}
	}
}

func TestRoundDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		500 * time.Nanosecond:                     "500ns",
		1234567 * time.Nanosecond:                 "1.23ms",
		31415926 * time.Nanosecond:                "31.42ms",
		1234567890 * time.Nanosecond:              "1.235s",
		2*time.Minute + 1400*time.Millisecond:     "2m1s",
		90*time.Minute + 400*time.Millisecond:     "1h30m0s",
		17*time.Microsecond + 400*time.Nanosecond: "17µs",
	} {
		if got := roundDuration(d).String(); got != want {
			t.Errorf("roundDuration(%v) = %s, want %s", d, got, want)
		}
	}
}

// The demo's ready message says what to try, with the commands as they can
// be pasted.
func TestDemoReady(t *testing.T) {
	cases := []struct {
		http   string
		remote bool
		bin    string
		want   string
	}{
		{"127.0.0.1:9464", true, "bin/mojodex-scheduler",
			"mojodex-scheduler running against the demo stub: open http://127.0.0.1:9464/ for the status page, or run `bin/mojodex-scheduler ctl list` in another terminal; Ctrl-C stops it"},
		{"0.0.0.0:9464", false, "x",
			"mojodex-scheduler running against the demo stub: open http://127.0.0.1:9464/ for the status page; Ctrl-C stops it"},
		{"", true, "/opt/my dir/mojodex-scheduler",
			"mojodex-scheduler running against the demo stub: run `mojodex-scheduler ctl list` in another terminal; Ctrl-C stops it"},
		{"", false, "", "mojodex-scheduler running against the demo stub; Ctrl-C stops it"},
	}
	for _, c := range cases {
		if got := demoReady(c.http, c.remote, c.bin); got != c.want {
			t.Errorf("demoReady(%q, %v, %q) =\n%s\nwant\n%s", c.http, c.remote, c.bin, got, c.want)
		}
	}
}
