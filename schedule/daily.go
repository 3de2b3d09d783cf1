package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Daily returns a schedule firing once a day at the wall-clock time at in
// loc or, when weekdays is non-empty, only on those weekdays (a weekly
// schedule). Duplicate weekdays are allowed. Daylight-saving gaps and
// overlaps are handled as documented on Resolve: a time inside a gap fires at
// the end of the gap, a repeated time fires on its first occurrence, and each
// day fires exactly once.
//
// It is an error if at is out of range, a weekday is not in
// time.Sunday..time.Saturday, or loc is nil.
func Daily(at TimeOfDay, weekdays []time.Weekday, loc *time.Location) (Schedule, error) {
	if loc == nil {
		return nil, errors.New("schedule: daily: nil *time.Location")
	}
	if err := at.validate(); err != nil {
		return nil, fmt.Errorf("schedule: daily: invalid time of day %s: %v", at, err)
	}
	var dow uint64
	for _, d := range weekdays {
		if d < time.Sunday || d > time.Saturday {
			return nil, fmt.Errorf("schedule: daily: invalid weekday %d", int(d))
		}
		dow |= 1 << d
	}
	desc := fmt.Sprintf("daily at %s (%s)", at, loc)
	if len(weekdays) == 0 {
		dow = maskDow
	} else {
		var names []string
		for d := time.Sunday; d <= time.Saturday; d++ {
			if dow&(1<<d) != 0 {
				names = append(names, d.String())
			}
		}
		desc = fmt.Sprintf("weekly on %s at %s (%s)", strings.Join(names, ", "), at, loc)
	}
	cal := newCalendar(1<<at.Second, 1<<at.Minute, 1<<at.Hour, maskDom, maskMonth, dow, false)
	return &calendarSchedule{cal: cal, loc: loc, desc: desc}, nil
}
