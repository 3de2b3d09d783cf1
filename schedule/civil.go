package schedule

import (
	"math/bits"
	"time"
)

// civil is a wall-clock date and time with whole-second resolution,
// independent of any location. month is 1..12 and day 1..31.
type civil struct {
	year, month, day  int
	hour, minute, sec int
}

// civilOf returns the civil fields of u, read in u's own location (callers
// pass UTC times that carry wall-clock fields). Sub-second parts are dropped.
func civilOf(u time.Time) civil {
	y, mo, d := u.Date()
	h, mi, s := u.Clock()
	return civil{y, int(mo), d, h, mi, s}
}

// wall returns c as a UTC time carrying c's civil fields.
func (c civil) wall() time.Time {
	return time.Date(c.year, time.Month(c.month), c.day, c.hour, c.minute, c.sec, 0, time.UTC)
}

// less reports whether c is earlier than d on the civil calendar.
func (c civil) less(d civil) bool {
	a := [...]int{c.year, c.month, c.day, c.hour, c.minute, c.sec}
	b := [...]int{d.year, d.month, d.day, d.hour, d.minute, d.sec}
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// isLeap reports whether y is a leap year of the proleptic Gregorian calendar.
func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// daysIn returns the number of days in month m (1..12) of year y.
func daysIn(y, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// weekdayOf returns the weekday of the civil date y-m-d (Sunday = 0).
func weekdayOf(y, m, d int) int {
	// Days since 1970-01-01 (a Thursday), after Howard Hinnant's
	// days_from_civil algorithm.
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := era*146097 + doe - 719468
	w := (days + 4) % 7
	if w < 0 {
		w += 7
	}
	return w
}

// Bit masks of the valid values of each field.
const (
	mask60    = uint64(1)<<60 - 1 // seconds and minutes: 0..59
	mask24    = uint64(1)<<24 - 1 // hours: 0..23
	maskDom   = uint64(1)<<32 - 2 // days of month: 1..31
	maskMonth = uint64(1)<<13 - 2 // months: 1..12
	maskDow   = uint64(1)<<7 - 1  // weekdays: 0..6 (Sunday = 0)
	allBits   = ^uint64(0)        // helper for nextBit
)

// calendar is the set of civil slots of a Daily or Cron schedule, one bit per
// admissible value of each field.
type calendar struct {
	second, minute, hour uint64
	dom, month, dow      uint64
	// domOrDow selects cron's OR rule: a day matches when either its day of
	// month or its weekday does. Otherwise both must match.
	domOrDow bool
	// dowDays[w] has bit d set (1 <= d <= 31) when day d of a month whose
	// first day is weekday w falls on an admissible weekday.
	dowDays [7]uint64
}

// newCalendar builds a calendar from field bit sets; bits outside the valid
// range of each field are ignored.
func newCalendar(second, minute, hour, dom, month, dow uint64, domOrDow bool) *calendar {
	c := &calendar{
		second:   second & mask60,
		minute:   minute & mask60,
		hour:     hour & mask24,
		dom:      dom & maskDom,
		month:    month & maskMonth,
		dow:      dow & maskDow,
		domOrDow: domOrDow,
	}
	for w := range 7 {
		for d := 1; d <= 31; d++ {
			if c.dow&(1<<((w+d-1)%7)) != 0 {
				c.dowDays[w] |= 1 << d
			}
		}
	}
	return c
}

// nextBit returns the smallest set bit of mask at position >= from, or -1.
func nextBit(mask uint64, from int) int {
	if from >= 64 {
		return -1
	}
	if from < 0 {
		from = 0
	}
	m := mask & (allBits << from)
	if m == 0 {
		return -1
	}
	return bits.TrailingZeros64(m)
}

// days returns the admissible days of month m of year y as a bit set.
func (c *calendar) days(y, m int) uint64 {
	valid := uint64(1)<<(daysIn(y, m)+1) - 2
	dm := c.dom & valid
	wm := c.dowDays[weekdayOf(y, m, 1)] & valid
	if c.domOrDow {
		return dm | wm
	}
	return dm & wm
}

// timeAtOrAfter returns the first admissible time of day at or after h:mi:s.
func (c *calendar) timeAtOrAfter(h, mi, s int) (int, int, int, bool) {
	for hh := nextBit(c.hour, h); hh >= 0; hh = nextBit(c.hour, hh+1) {
		m0 := 0
		if hh == h {
			m0 = mi
		}
		for mm := nextBit(c.minute, m0); mm >= 0; mm = nextBit(c.minute, mm+1) {
			s0 := 0
			if hh == h && mm == mi {
				s0 = s
			}
			if ss := nextBit(c.second, s0); ss >= 0 {
				return hh, mm, ss, true
			}
		}
	}
	return 0, 0, 0, false
}

// next returns the first admissible civil slot at or after from and strictly
// before limit. It skips whole months and days at once, so its cost is a few
// operations per month searched.
func (c *calendar) next(from, limit civil) (civil, bool) {
	t := from
	for t.year <= limit.year {
		if c.month&(1<<t.month) == 0 {
			m := nextBit(c.month, t.month+1)
			if m < 0 {
				t = civil{year: t.year + 1, month: nextBit(c.month, 1), day: 1}
			} else {
				t = civil{year: t.year, month: m, day: 1}
			}
			continue
		}
		d := nextBit(c.days(t.year, t.month), t.day)
		if d < 0 {
			t = civil{year: t.year, month: t.month + 1, day: 1}
			if t.month > 12 {
				t = civil{year: t.year + 1, month: 1, day: 1}
			}
			continue
		}
		if d != t.day {
			t = civil{year: t.year, month: t.month, day: d}
		}
		if h, mi, s, ok := c.timeAtOrAfter(t.hour, t.minute, t.sec); ok {
			t.hour, t.minute, t.sec = h, mi, s
			if !t.less(limit) {
				return civil{}, false
			}
			return t, true
		}
		// Nothing left today; day 32 is never admissible, so the next
		// iteration moves on to the following month.
		t = civil{year: t.year, month: t.month, day: t.day + 1}
	}
	return civil{}, false
}

// matchesSomeDate reports whether the calendar has any slot at all. The
// Gregorian calendar repeats every 400 years (weekdays included), so one
// cycle decides.
func (c *calendar) matchesSomeDate() bool {
	_, ok := c.next(civil{year: 2000, month: 1, day: 1}, civil{year: 2400, month: 1, day: 1})
	return ok
}

// calendarSchedule fires at the civil slots of a calendar, resolved in loc
// with the rules of Resolve.
type calendarSchedule struct {
	cal  *calendar
	loc  *time.Location
	desc string
}

// Next implements Schedule.
//
// Resolve is non-decreasing in the civil time, so the answer is the
// resolution of the first civil slot whose resolution lies after t; that slot
// is the first one at or after firstCivilAfter(t).
func (s *calendarSchedule) Next(t time.Time) time.Time {
	t = t.Round(0) // compare wall instants only
	lb := firstCivilAfter(t, s.loc)
	if lb.Nanosecond() != 0 {
		lb = lb.Truncate(time.Second).Add(time.Second)
	}
	from := civilOf(lb)
	limit := civilOf(lb.AddDate(horizonYears, 0, 0))
	// The loop runs once; it only guards the strictly-after contract
	// against time zone data that defeat firstCivilAfter's window.
	for range 8 {
		slot, ok := s.cal.next(from, limit)
		if !ok {
			return time.Time{}
		}
		if r := resolveWall(slot.wall(), s.loc); r.After(t) {
			return r
		}
		from = civilOf(slot.wall().Add(time.Second))
	}
	return time.Time{}
}

// String implements Schedule.
func (s *calendarSchedule) String() string { return s.desc }
