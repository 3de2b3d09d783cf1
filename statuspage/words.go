package statuspage

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mojodex/mojodex-scheduler/schedule"
)

// This file puts schedules, durations and instants into the short words
// the pages show. The schedule package describes a schedule for logs
// ("every 1h0m0s", "weekly on Monday, Friday at 09:00:00 (Europe/Paris)");
// the page says the same thing the way a person would ("every hour",
// "daily 09:00 Europe/Paris, Mon, Fri"). A description it does not
// recognise is shown as it is.

var (
	dailyRE  = regexp.MustCompile(`^daily at (\d\d:\d\d:\d\d) \((.+)\)$`)
	weeklyRE = regexp.MustCompile(`^weekly on ([A-Za-z, ]+) at (\d\d:\d\d:\d\d) \((.+)\)$`)
	cronRE   = regexp.MustCompile(`^cron "(.+)" \((.+)\)$`)
)

// scheduleWords describes a schedule, given as the supervisor describes it
// (task.Status.Schedule), in a few words: "every 10 min", "every hour",
// "daily 09:00 Europe/Paris", "daily 09:00 Europe/Paris, Mon–Fri",
// "cron 0 15 3 * * * in America/New_York". An unknown form comes back
// unchanged.
func scheduleWords(desc string) string {
	if p, ok := strings.CutPrefix(desc, "every "); ok {
		d, err := time.ParseDuration(p)
		if err != nil || d <= 0 {
			return desc
		}
		return "every " + periodWords(d)
	}
	if m := dailyRE.FindStringSubmatch(desc); m != nil {
		return "daily " + clockWords(m[1]) + " " + m[2]
	}
	if m := weeklyRE.FindStringSubmatch(desc); m != nil {
		days, ok := weekdayWords(m[1])
		if !ok {
			return desc
		}
		if days == "" {
			return "daily " + clockWords(m[2]) + " " + m[3]
		}
		return "daily " + clockWords(m[2]) + " " + m[3] + ", " + days
	}
	if m := cronRE.FindStringSubmatch(desc); m != nil {
		return "cron " + m[1] + " in " + m[2]
	}
	return desc
}

// periodWords says a period: "second", "10 s", "10 min", "hour", "90 min",
// "2 h", "day", "2 days", "1 h 30 min".
func periodWords(d time.Duration) string {
	units := []struct {
		d           time.Duration
		one, plural string
	}{
		{24 * time.Hour, "day", "days"},
		{time.Hour, "hour", "h"},
		{time.Minute, "minute", "min"},
		{time.Second, "second", "s"},
		{time.Millisecond, "millisecond", "ms"},
	}
	for _, u := range units {
		if d == u.d {
			return u.one
		}
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + " " + u.plural
		}
	}
	return durationWords(d)
}

// clockWords drops zero seconds from "HH:MM:SS".
func clockWords(hms string) string {
	if s, ok := strings.CutSuffix(hms, ":00"); ok {
		return s
	}
	return hms
}

// weekOrder is Monday first, the order in which days are listed.
var weekOrder = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

// weekdayWords shortens a list of English day names: runs of three or more
// consecutive days (Monday first) become a range ("Mon–Fri"), others are
// listed ("Mon, Thu"). Every day gives "". ok is false for a name that is
// not a day.
func weekdayWords(list string) (string, bool) {
	var set [7]bool
	for _, name := range strings.Split(list, ",") {
		d, err := schedule.ParseWeekday(name)
		if err != nil {
			return "", false
		}
		set[d] = true
	}
	var parts []string
	all := true
	for i := 0; i < len(weekOrder); {
		if !set[weekOrder[i]] {
			all = false
			i++
			continue
		}
		j := i
		for j+1 < len(weekOrder) && set[weekOrder[j+1]] {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, short(weekOrder[i])+"–"+short(weekOrder[j]))
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, short(weekOrder[k]))
			}
		}
		i = j + 1
	}
	if all {
		return "", true
	}
	return strings.Join(parts, ", "), true
}

func short(d time.Weekday) string { return d.String()[:3] }

// durationWords says a duration briefly, to a precision that suits its
// size: "0 ms", "340 ms", "1.2 s", "42 s", "3 min 4 s", "2 h 5 min",
// "3 d 4 h".
func durationWords(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d < time.Millisecond:
		if d == 0 {
			s = "0 ms"
		} else {
			s = fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
		}
	case d < time.Second:
		s = fmt.Sprintf("%d ms", d/time.Millisecond)
	case d < 10*time.Second:
		s = fmt.Sprintf("%.1f s", float64(d)/float64(time.Second))
	case d < time.Minute:
		s = fmt.Sprintf("%d s", d/time.Second)
	case d < time.Hour:
		s = twoUnits(d, time.Minute, "min", time.Second, "s")
	case d < 24*time.Hour:
		s = twoUnits(d, time.Hour, "h", time.Minute, "min")
	default:
		s = twoUnits(d, 24*time.Hour, "d", time.Hour, "h")
	}
	if neg {
		return "−" + s
	}
	return s
}

// twoUnits says d in a big unit and the rest (rounded down) in a small one,
// leaving a zero rest out.
func twoUnits(d, big time.Duration, bigName string, small time.Duration, smallName string) string {
	n, rest := d/big, (d%big)/small
	if rest == 0 {
		return fmt.Sprintf("%d %s", n, bigName)
	}
	return fmt.Sprintf("%d %s %d %s", n, bigName, rest, smallName)
}

// relativeWords says when t is as seen from now: "in 4 min", "3 h ago",
// "just now" within a second. The same rule is in app.js, which updates
// the words in the browser.
func relativeWords(t, now time.Time) string {
	d := t.Sub(now)
	if d > -time.Second && d < time.Second {
		return "just now"
	}
	future := d > 0
	if !future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%d s", d/time.Second)
	case d < time.Hour:
		s = fmt.Sprintf("%d min", d/time.Minute)
	case d < 48*time.Hour:
		s = twoUnits(d, time.Hour, "h", time.Minute, "min")
	default:
		s = fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}
