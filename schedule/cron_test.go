package schedule

import (
	"strings"
	"testing"
	"time"

	cron "github.com/netresearch/go-cron"
)

func TestCronInvalid(t *testing.T) {
	cases := []struct {
		expr string
		want string // substring of the error besides the quoted expression
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"* * * *", "found 4"},
		{"* * * * * * *", "found 7"},
		{"0 0 0 1 1 * 2030", "found 7"},
		{"60 * * * *", "above maximum"},
		{"* 24 * * *", "above maximum"},
		{"* * 0 * *", "below minimum"},
		{"* * 32 * *", "above maximum"},
		{"* * * 13 *", "above maximum"},
		{"* * * * 8", "above maximum"},
		{"60 * * * * *", "above maximum"},
		{"*/0 * * * *", "step"},
		{"a b c d e", "parse"},
		{"0 0 * * funday", "parse"},
		{"1-2-3 * * * *", "hyphens"},
		{"@every 5m", "use every: instead"},
		{"@EVERY 1h", "use every: instead"},
		{"@unknown", "descriptor"},
		{"@daily 5", "unexpected fields"},
		{"TZ=UTC * * * * *", "time zone"},
		{"CRON_TZ=Europe/Paris 0 * * * *", "time zone"},
		{"H * * * *", "hash"},
		{"0 H(0-5) * * *", "hash"},
		{"0 0 L * *", "L and W"},
		{"0 0 15W * *", "L and W"},
		{"0 0 LW * *", "L and W"},
		{"0 0 * * 5#3", "#"},
		{"0 0 * * fri#l", "#"},
		{"0 0 * * 5L", "L is not supported"},
		{"0 0 30 2 *", "matches no calendar date"},
		{"0 0 31 4,6,9,11 *", "matches no calendar date"},
	}
	for _, c := range cases {
		s, err := Cron(c.expr, time.UTC)
		if err == nil {
			t.Errorf("Cron(%q) = %v, want an error", c.expr, s)
			continue
		}
		wantErrNaming(t, err, c.expr)
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Cron(%q): error %q does not mention %q", c.expr, err, c.want)
		}
	}
	if _, err := Cron("* * * * *", nil); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("Cron with nil location: error %v", err)
	}
}

func TestCronString(t *testing.T) {
	ny := loadLoc(t, "America/New_York")
	cases := []struct {
		expr string
		loc  *time.Location
		want string
	}{
		{"0 */5 * * * *", ny, `cron "0 */5 * * * *" (America/New_York)`},
		{"  0   */5 * * * *\t", ny, `cron "0 */5 * * * *" (America/New_York)`},
		{"30 2 * * *", time.UTC, `cron "30 2 * * *" (UTC)`},
		{"0 0 * * THU", time.UTC, `cron "0 0 * * THU" (UTC)`},
		{"@daily", loadLoc(t, "Europe/Paris"), `cron "@daily" (Europe/Paris)`},
	}
	for _, c := range cases {
		s := must(t)(Cron(c.expr, c.loc))
		if got := s.String(); got != c.want {
			t.Errorf("Cron(%q).String() = %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestCronFields(t *testing.T) {
	cases := []struct {
		expr string
		from time.Time
		want []time.Time
	}{
		// 5 fields: seconds are 0.
		{"*/15 * * * *", utc(2026, 5, 1, 10, 7, 30), []time.Time{utc(2026, 5, 1, 10, 15, 0), utc(2026, 5, 1, 10, 30, 0), utc(2026, 5, 1, 10, 45, 0), utc(2026, 5, 1, 11, 0, 0)}},
		{"* * * * *", utc(2026, 5, 1, 23, 59, 0), []time.Time{utc(2026, 5, 2, 0, 0, 0), utc(2026, 5, 2, 0, 1, 0)}},
		{"* * * * *", utc(2026, 5, 1, 23, 58, 59).Add(999999999), []time.Time{utc(2026, 5, 1, 23, 59, 0)}},
		// 6 fields: seconds first.
		{"*/20 * * * * *", utc(2026, 5, 1, 10, 0, 0), []time.Time{utc(2026, 5, 1, 10, 0, 20), utc(2026, 5, 1, 10, 0, 40), utc(2026, 5, 1, 10, 1, 0)}},
		{"0 */5 * * * *", utc(2026, 5, 1, 10, 4, 59), []time.Time{utc(2026, 5, 1, 10, 5, 0), utc(2026, 5, 1, 10, 10, 0)}},
		{"30 0 9 * * MON-FRI", utc(2026, 5, 1, 9, 0, 30), []time.Time{ // Friday 1 May, on the fire
			utc(2026, 5, 4, 9, 0, 30), utc(2026, 5, 5, 9, 0, 30), utc(2026, 5, 6, 9, 0, 30), utc(2026, 5, 7, 9, 0, 30), utc(2026, 5, 8, 9, 0, 30), utc(2026, 5, 11, 9, 0, 30)}},
		{"59 59 23 31 12 *", utc(2026, 12, 31, 23, 59, 59), []time.Time{utc(2027, 12, 31, 23, 59, 59)}},
		// Lists, ranges, steps, names, wrap-around ranges.
		{"0 8,12,18 * * *", utc(2026, 5, 1, 12, 0, 0), []time.Time{utc(2026, 5, 1, 18, 0, 0), utc(2026, 5, 2, 8, 0, 0), utc(2026, 5, 2, 12, 0, 0)}},
		{"0 9-11 * * *", utc(2026, 5, 1, 11, 30, 0), []time.Time{utc(2026, 5, 2, 9, 0, 0), utc(2026, 5, 2, 10, 0, 0), utc(2026, 5, 2, 11, 0, 0), utc(2026, 5, 3, 9, 0, 0)}},
		{"10-20/5 1 * * *", utc(2026, 5, 1, 0, 0, 0), []time.Time{utc(2026, 5, 1, 1, 10, 0), utc(2026, 5, 1, 1, 15, 0), utc(2026, 5, 1, 1, 20, 0), utc(2026, 5, 2, 1, 10, 0)}},
		{"0 22-2 * * *", utc(2026, 5, 1, 21, 0, 0), []time.Time{utc(2026, 5, 1, 22, 0, 0), utc(2026, 5, 1, 23, 0, 0), utc(2026, 5, 2, 0, 0, 0), utc(2026, 5, 2, 1, 0, 0), utc(2026, 5, 2, 2, 0, 0), utc(2026, 5, 2, 22, 0, 0)}},
		{"0 0 1 */3 *", utc(2026, 5, 1, 0, 0, 0), []time.Time{utc(2026, 7, 1, 0, 0, 0), utc(2026, 10, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0)}},
		{"0 0 1 jan,JUL *", utc(2026, 5, 1, 0, 0, 0), []time.Time{utc(2026, 7, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0)}},
		{"0 0 * * 7", utc(2026, 5, 1, 0, 0, 0), []time.Time{utc(2026, 5, 3, 0, 0, 0), utc(2026, 5, 10, 0, 0, 0)}}, // 7 = Sunday
		{"0 0 * * sun", utc(2026, 5, 1, 0, 0, 0), []time.Time{utc(2026, 5, 3, 0, 0, 0)}},
		{"0 0 * * THU", utc(2026, 5, 1, 0, 0, 0), []time.Time{utc(2026, 5, 7, 0, 0, 0)}},
		{"0 0 * * fri-mon", utc(2026, 5, 5, 0, 0, 0), []time.Time{utc(2026, 5, 8, 0, 0, 0), utc(2026, 5, 9, 0, 0, 0), utc(2026, 5, 10, 0, 0, 0), utc(2026, 5, 11, 0, 0, 0), utc(2026, 5, 15, 0, 0, 0)}},
		{"0 0 31 * *", utc(2026, 1, 31, 0, 0, 0), []time.Time{utc(2026, 3, 31, 0, 0, 0), utc(2026, 5, 31, 0, 0, 0), utc(2026, 7, 31, 0, 0, 0), utc(2026, 8, 31, 0, 0, 0)}},
		// Descriptors.
		{"@hourly", utc(2026, 5, 1, 10, 0, 0), []time.Time{utc(2026, 5, 1, 11, 0, 0)}},
		{"@daily", utc(2026, 5, 1, 10, 0, 0), []time.Time{utc(2026, 5, 2, 0, 0, 0)}},
		{"@weekly", utc(2026, 5, 1, 10, 0, 0), []time.Time{utc(2026, 5, 3, 0, 0, 0)}},
		{"@monthly", utc(2026, 5, 1, 10, 0, 0), []time.Time{utc(2026, 6, 1, 0, 0, 0)}},
		{"@yearly", utc(2026, 5, 1, 10, 0, 0), []time.Time{utc(2027, 1, 1, 0, 0, 0)}},
		// Leap day: skips 2100, which is not a leap year.
		{"0 0 29 2 *", utc(2026, 1, 1, 0, 0, 0), []time.Time{utc(2028, 2, 29, 0, 0, 0), utc(2032, 2, 29, 0, 0, 0)}},
		{"0 0 29 2 *", utc(2096, 3, 1, 0, 0, 0), []time.Time{utc(2104, 2, 29, 0, 0, 0)}},
		{"0 0 0 29 feb *", utc(2028, 2, 29, 0, 0, 0), []time.Time{utc(2032, 2, 29, 0, 0, 0)}},
	}
	for _, c := range cases {
		s := must(t)(Cron(c.expr, time.UTC))
		checkUpcoming(t, s, c.from, c.want)
	}
}

// TestCronDayOfMonthOrWeek checks classic cron semantics: restricted
// day-of-month and day-of-week combine with OR; a wildcard in either makes
// the other one decide (AND).
func TestCronDayOfMonthOrWeek(t *testing.T) {
	from := utc(2026, 2, 1, 0, 0, 0) // Sunday
	cases := []struct {
		expr string
		days []int // February 2026 days that fire
	}{
		{"0 0 13 * *", []int{13}},
		{"0 0 * * FRI", []int{6, 13, 20, 27}},
		{"0 0 ? * 5", []int{6, 13, 20, 27}},
		{"0 0 13 * ?", []int{13}},
		{"0 0 13 * FRI", []int{6, 13, 20, 27}},                   // OR (the 13th is a Friday)
		{"0 0 1,15 * MON", []int{1, 2, 9, 15, 16, 23}},           // OR
		{"0 0 1-7 * MON", []int{1, 2, 3, 4, 5, 6, 7, 9, 16, 23}}, // OR, not "first Monday"
		{"0 0 */10 * MON", []int{1, 2, 9, 11, 16, 21, 23}},       // a stepped wildcard counts as restricted
		{"0 0 * * */1", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28}},
		{"0 0 28 * */1", []int{28}}, // "*/1" is still a wildcard: AND
	}
	for _, c := range cases {
		s := must(t)(Cron(c.expr, time.UTC))
		var got []int
		for _, f := range Upcoming(s, from.Add(-1), 40) {
			if f.Year() == 2026 && f.Month() == time.February {
				got = append(got, f.Day())
			}
		}
		if !equalInts(got, c.days) {
			t.Errorf("%s: February days %v, want %v", c.expr, got, c.days)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCronEveryMinuteAcrossParisGap(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	s := must(t)(Cron("* * * * *", paris))
	checkUpcoming(t, s, utc(2026, 3, 29, 0, 57, 0), []time.Time{
		utc(2026, 3, 29, 0, 58, 0), // 01:58 CET
		utc(2026, 3, 29, 0, 59, 0), // 01:59 CET
		utc(2026, 3, 29, 1, 0, 0),  // 02:00..03:00 civil collapse into 03:00 CEST
		utc(2026, 3, 29, 1, 1, 0),  // 03:01 CEST
		utc(2026, 3, 29, 1, 2, 0),
	})
	// Exactly one fire per civil minute over the whole day, gap minutes merged.
	fires := Upcoming(s, time.Date(2026, 3, 29, 0, 0, 0, 0, paris).Add(-1), 2000)
	n := 0
	for i, f := range fires {
		if i > 0 && !f.After(fires[i-1]) {
			t.Fatalf("not strictly increasing at %d: %v after %v", i, f, fires[i-1])
		}
		if f.In(paris).Day() == 29 {
			n++
		}
	}
	if want := 23 * 60; n != want { // a 23-hour day: 1440 civil minutes, 61 of them (02:00-03:00) fire once
		t.Errorf("fires on 29 March: %d, want %d", n, want)
	}
}

func TestCronEverySecondAcrossParisGap(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	s := must(t)(Cron("* * * * * *", paris))
	checkUpcoming(t, s, utc(2026, 3, 29, 0, 59, 57), []time.Time{
		utc(2026, 3, 29, 0, 59, 58), utc(2026, 3, 29, 0, 59, 59),
		utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 29, 1, 0, 1),
	})
}

func TestCronEveryMinuteAcrossParisOverlap(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	s := must(t)(Cron("* * * * *", paris))
	checkUpcoming(t, s, utc(2026, 10, 25, 0, 57, 0), []time.Time{
		utc(2026, 10, 25, 0, 58, 0), // 02:58 CEST
		utc(2026, 10, 25, 0, 59, 0), // 02:59 CEST
		utc(2026, 10, 25, 2, 0, 0),  // 03:00 CET: the second pass of 02:xx fires nothing
		utc(2026, 10, 25, 2, 1, 0),
	})
	// Queries at the end of the first pass and during the second pass move on to 03:00 CET.
	for _, q := range []time.Time{utc(2026, 10, 25, 1, 0, 0).Add(-1), utc(2026, 10, 25, 1, 0, 0), utc(2026, 10, 25, 1, 30, 0), utc(2026, 10, 25, 1, 59, 59)} {
		if got, want := s.Next(q), utc(2026, 10, 25, 2, 0, 0); !got.Equal(want) {
			t.Errorf("Next(%v) = %v, want %v", q, got.UTC(), want)
		}
	}
	fires := Upcoming(s, time.Date(2026, 10, 25, 0, 0, 0, 0, paris).Add(-1), 1500)
	seen := map[time.Time]bool{}
	n := 0
	for i, f := range fires {
		if i > 0 && !f.After(fires[i-1]) {
			t.Fatalf("not strictly increasing at %d: %v after %v", i, f, fires[i-1])
		}
		if seen[f.UTC()] {
			t.Fatalf("instant %v fires twice", f)
		}
		seen[f.UTC()] = true
		if f.In(paris).Day() == 25 {
			n++
		}
	}
	if n != 1440 { // a 25-hour day, each of its 1440 civil minutes fires once
		t.Errorf("fires on 25 October: %d, want 1440", n)
	}
}

// TestCronMatchesDaily checks that cron and daily schedules apply identical
// DST rules.
func TestCronMatchesDaily(t *testing.T) {
	cases := []struct {
		expr string
		at   TimeOfDay
	}{
		{"30 2 * * *", TimeOfDay{2, 30, 0}},
		{"0 30 1 * * *", TimeOfDay{1, 30, 0}},
		{"15 2 * * *", TimeOfDay{2, 15, 0}},
		{"0 0 * * *", TimeOfDay{0, 0, 0}},
		{"59 59 23 * * ?", TimeOfDay{23, 59, 59}},
	}
	for _, zone := range []string{"Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Antarctica/Troll"} {
		loc := loadLoc(t, zone)
		for _, c := range cases {
			cs := must(t)(Cron(c.expr, loc))
			ds := must(t)(Daily(c.at, nil, loc))
			from := utc(2026, 1, 1, 0, 0, 0)
			a, b := Upcoming(cs, from, 730), Upcoming(ds, from, 730)
			for i := range a {
				if !a[i].Equal(b[i]) {
					t.Fatalf("%s vs %s: fire %d: %v != %v", cs, ds, i, a[i], b[i])
				}
			}
		}
	}
	// Weekly equivalents.
	loc := loadLoc(t, "Europe/Paris")
	cs := must(t)(Cron("30 2 * * SUN,wed", loc))
	ds := must(t)(Daily(TimeOfDay{2, 30, 0}, []time.Weekday{time.Wednesday, time.Sunday}, loc))
	a, b := Upcoming(cs, utc(2026, 1, 1, 0, 0, 0), 300), Upcoming(ds, utc(2026, 1, 1, 0, 0, 0), 300)
	for i := range a {
		if !a[i].Equal(b[i]) {
			t.Fatalf("weekly fire %d: %v != %v", i, a[i], b[i])
		}
	}
}

// TestCronHorizon checks the 10-year search horizon on a calendar that
// matches only on 29 February falling on a Monday (which no cron expression
// can express: restricted day fields combine with OR).
func TestCronHorizon(t *testing.T) {
	cal := newCalendar(1, 1, 1, 1<<29, 1<<2, 1<<time.Monday, false)
	s := &calendarSchedule{cal: cal, loc: time.UTC, desc: "test"}
	if got := s.Next(utc(2015, 1, 1, 0, 0, 0)); !got.Equal(utc(2016, 2, 29, 0, 0, 0)) {
		t.Errorf("Next from 2015 = %v, want 2016-02-29", got)
	}
	if got := s.Next(utc(2016, 3, 1, 0, 0, 0)); !got.IsZero() { // next is 2044, beyond 10 years
		t.Errorf("Next from 2016-03 = %v, want zero", got)
	}
	if got := s.Next(utc(2034, 3, 1, 0, 0, 0)); !got.Equal(utc(2044, 2, 29, 0, 0, 0)) {
		t.Errorf("Next from 2034-03 = %v, want 2044-02-29", got)
	}
	if got := Upcoming(s, utc(2016, 3, 1, 0, 0, 0), 3); len(got) != 0 {
		t.Errorf("Upcoming = %v, want none", got)
	}
}

// TestCronAgainstLibrary cross-checks Next with go-cron's own SpecSchedule.Next
// in zones without DST, where both must agree exactly.
func TestCronAgainstLibrary(t *testing.T) {
	exprs := []string{
		"* * * * *", "*/7 * * * *", "0 0 29 2 *", "0 0 13 * FRI", "0 0 1-7 * MON",
		"5 4 * * SUN", "0 22-2 * * *", "*/13 */5 * * * *", "0 0 31 * *", "30 9 * JAN,jun mon-fri",
		"0 0 * * 7",
	}
	parser := cron.MustNewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom |
		cron.Month | cron.Dow | cron.Descriptor | cron.DowOrDom).WithMaxSearchYears(10)
	for _, zone := range []string{"UTC", "Asia/Tokyo", "Asia/Kathmandu"} {
		loc := loadLoc(t, zone)
		for _, expr := range exprs {
			ours, err := Cron(expr, loc)
			if err != nil {
				continue // invalid entries are covered elsewhere
			}
			lib, err := parser.Parse(expr)
			if err != nil {
				t.Fatalf("library rejects %q: %v", expr, err)
			}
			spec := lib.(*cron.SpecSchedule)
			spec.Location = loc
			tt := utc(2026, 1, 1, 0, 0, 0).Add(-1)
			for i := 0; i < 300; i++ {
				a, b := ours.Next(tt), spec.Next(tt)
				if !a.Equal(b) {
					t.Fatalf("%s: Next(%v) = %v, library %v", ours, tt, a, b)
				}
				// Advance by a pseudo-random stride to cover many situations.
				tt = a.Add(time.Duration(i%5) * 37 * time.Minute)
			}
		}
	}
}

// TestExtremeInstants checks that far-away queries neither panic nor break
// the strictly-after contract.
func TestExtremeInstants(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	scheds := []Schedule{
		must(t)(Cron("*/5 * * * *", paris)),
		must(t)(Cron("0 0 29 2 *", paris)),
		must(t)(Daily(TimeOfDay{2, 30, 0}, []time.Weekday{time.Monday}, paris)),
		must(t)(Every(time.Hour, utc(2026, 1, 1, 0, 0, 0))),
	}
	for _, s := range scheds {
		for _, tt := range []time.Time{{}, utc(1, 1, 1, 0, 0, 0), utc(1900, 1, 1, 0, 0, 0), utc(9000, 12, 31, 23, 59, 59), time.Unix(1<<40, 0)} {
			if n := s.Next(tt); !n.IsZero() && !n.After(tt) {
				t.Errorf("%s: Next(%v) = %v, not after", s, tt, n)
			}
		}
	}
}
