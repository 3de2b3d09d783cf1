package schedule

import (
	"testing"
	"time"
)

func TestParseTimeOfDay(t *testing.T) {
	good := map[string]TimeOfDay{
		"00:00":    {0, 0, 0},
		"09:30":    {9, 30, 0},
		"23:59":    {23, 59, 0},
		"23:59:59": {23, 59, 59},
		"12:00:01": {12, 0, 1},
		"00:00:00": {0, 0, 0},
		"07:05:09": {7, 5, 9},
	}
	for in, want := range good {
		got, err := ParseTimeOfDay(in)
		if err != nil || got != want {
			t.Errorf("ParseTimeOfDay(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := []string{
		"", "25:00", "24:00", "9:3", "9:30", "09:3", "10:60", "10:00:60", "10:00:00:00",
		"ab:cd", "10", "10:", ":10", "10:00:", "1000", " 10:00", "10:00 ", "+1:00", "-1:00",
		"10:0a", "10.00", "１０:００", "٠٩:٣٠", "99:99", "10::00", "10:00:0",
	}
	for _, in := range bad {
		got, err := ParseTimeOfDay(in)
		if err == nil {
			t.Errorf("ParseTimeOfDay(%q) = %v, want an error", in, got)
			continue
		}
		wantErrNaming(t, err, in)
	}
}

func TestTimeOfDayString(t *testing.T) {
	for tod, want := range map[TimeOfDay]string{
		{9, 5, 3}:    "09:05:03",
		{0, 0, 0}:    "00:00:00",
		{23, 59, 59}: "23:59:59",
		{12, 30, 0}:  "12:30:00",
	} {
		if got := tod.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", tod, got, want)
		}
		back, err := ParseTimeOfDay(want)
		if err != nil || back != tod {
			t.Errorf("round trip of %q: %v, %v", want, back, err)
		}
	}
}

func TestParseWeekday(t *testing.T) {
	good := map[string]time.Weekday{
		"sunday": time.Sunday, "Sun": time.Sunday, "SUNDAY": time.Sunday, "sUn": time.Sunday,
		"monday": time.Monday, "Mon": time.Monday, "MONDAY": time.Monday,
		"Tuesday": time.Tuesday, "tue": time.Tuesday,
		"wednesday": time.Wednesday, "WED": time.Wednesday,
		"Thursday": time.Thursday, "thu": time.Thursday,
		"friday": time.Friday, "Fri": time.Friday,
		"saturday": time.Saturday, "SAT": time.Saturday,
		" Friday ": time.Friday,
	}
	for in, want := range good {
		got, err := ParseWeekday(in)
		if err != nil || got != want {
			t.Errorf("ParseWeekday(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Mo", "Mond", "Tues", "thurs", "monday!", "lundi", "1", "0", "Sundays", "m on"} {
		got, err := ParseWeekday(in)
		if err == nil {
			t.Errorf("ParseWeekday(%q) = %v, want an error", in, got)
			continue
		}
		wantErrNaming(t, err, in)
	}
}
