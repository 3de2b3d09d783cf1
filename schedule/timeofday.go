package schedule

import (
	"fmt"
	"strings"
	"time"
)

// TimeOfDay is a wall-clock time of day (24-hour clock).
type TimeOfDay struct{ Hour, Minute, Second int }

// ParseTimeOfDay parses "HH:MM" or "HH:MM:SS" on a 24-hour clock, with
// exactly two digits per field, e.g. "09:30" or "23:59:59". Anything else
// ("9:30", "25:00", "10:60", "10:00:00:00", "") is an error that names the
// rejected value.
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	bad := func(why string) (TimeOfDay, error) {
		return TimeOfDay{}, fmt.Errorf("schedule: invalid time of day %q: %s", s, why)
	}
	if s == "" {
		return bad("empty, want HH:MM or HH:MM:SS")
	}
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return bad("want HH:MM or HH:MM:SS")
	}
	var v [3]int
	names := [3]string{"hour", "minute", "second"}
	for i, p := range parts {
		if len(p) != 2 || !isDigit(p[0]) || !isDigit(p[1]) {
			return bad(fmt.Sprintf("%s %q is not two digits", names[i], p))
		}
		v[i] = int(p[0]-'0')*10 + int(p[1]-'0')
	}
	tod := TimeOfDay{Hour: v[0], Minute: v[1], Second: v[2]}
	if err := tod.validate(); err != nil {
		return bad(err.Error())
	}
	return tod, nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// validate reports whether every field is within its range.
func (t TimeOfDay) validate() error {
	switch {
	case t.Hour < 0 || t.Hour > 23:
		return fmt.Errorf("hour %d out of range 00-23", t.Hour)
	case t.Minute < 0 || t.Minute > 59:
		return fmt.Errorf("minute %d out of range 00-59", t.Minute)
	case t.Second < 0 || t.Second > 59:
		return fmt.Errorf("second %d out of range 00-59", t.Second)
	}
	return nil
}

// String formats t as "HH:MM:SS".
func (t TimeOfDay) String() string {
	return fmt.Sprintf("%02d:%02d:%02d", t.Hour, t.Minute, t.Second)
}

// ParseWeekday parses an English weekday name, case-insensitively, either in
// full or abbreviated to three letters ("monday", "Mon", "SUNDAY").
// Surrounding white space is ignored. The error names the rejected value.
func ParseWeekday(s string) (time.Weekday, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	for d := time.Sunday; d <= time.Saturday; d++ {
		full := strings.ToLower(d.String())
		if name == full || name == full[:3] {
			return d, nil
		}
	}
	return 0, fmt.Errorf("schedule: invalid weekday %q: want an English day name such as \"Monday\" or \"Mon\"", s)
}
