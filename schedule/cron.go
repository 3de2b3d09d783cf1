package schedule

import (
	"fmt"
	"strings"
	"time"

	cron "github.com/netresearch/go-cron"
)

// starBit is the bit go-cron sets in a field written as "*" or "?" (without
// a step greater than one).
const starBit = uint64(1) << 63

// Cron parses a cron expression of 5 fields (minute hour day-of-month month
// day-of-week) or 6 fields (second first), evaluated in loc. Ranges, steps,
// lists, month and weekday names (any case), "?" and the descriptors
// @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly are
// accepted.
//
// Day-of-month and day-of-week follow the classic cron rule: when either
// field is "*" (or "?") a day must match both; when both are restricted a
// day matches if either does ("0 0 1,15 * MON" fires on the 1st, the 15th
// and every Monday).
//
// Fire instants follow the daylight-saving rules of Resolve, exactly as for
// Daily: each civil slot fires at most once, the slots inside a
// spring-forward gap collapse into one fire at the end of the gap, and only
// the first pass of a repeated hour fires.
//
// Rejected with an error naming the expression: a wrong number of fields,
// out-of-range values, "TZ=" or "CRON_TZ=" prefixes (the location is loc),
// "@every" (use an every: schedule instead), the extensions L, W, #, H and a
// year field, expressions that match no date at all (e.g. "0 0 30 2 *"), and
// a nil loc.
func Cron(expr string, loc *time.Location) (Schedule, error) {
	fail := func(format string, args ...any) (Schedule, error) {
		return nil, fmt.Errorf("schedule: cron %q: %s", expr, fmt.Sprintf(format, args...))
	}
	if loc == nil {
		return fail("nil *time.Location")
	}
	fields := strings.Fields(expr)
	if len(fields) == 0 {
		return fail("empty expression")
	}
	canonical := strings.Join(fields, " ")
	lower := strings.ToLower(canonical)
	switch {
	case strings.HasPrefix(lower, "tz=") || strings.HasPrefix(lower, "cron_tz="):
		return fail("time zone prefixes are not supported; the location is configured separately")
	case strings.HasPrefix(lower, "@every"):
		return fail("@every is not supported here, use every: instead")
	case strings.HasPrefix(lower, "@"):
		if len(fields) != 1 {
			return fail("unexpected fields after descriptor %q", fields[0])
		}
	default:
		if len(fields) != 5 && len(fields) != 6 {
			return fail("expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found %d", len(fields))
		}
		if err := checkUnsupported(fields); err != nil {
			return fail("%v", err)
		}
	}

	// go-cron matches names case-insensitively, but mistakes the "H" of an
	// upper-case "THU" for a hash expression; lower-casing avoids that (the
	// real hash syntax was rejected above).
	parser := cron.MustNewParser(cron.SecondOptional | cron.Minute | cron.Hour |
		cron.Dom | cron.Month | cron.Dow | cron.Descriptor | cron.DowOrDom)
	parsed, err := parser.Parse(lower)
	if err != nil {
		return fail("%v", err)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return fail("unsupported kind of schedule %T", parsed)
	}
	if spec.Year != nil || len(spec.DomConstraints) > 0 || len(spec.DowConstraints) > 0 {
		return fail("year field and L, W, # extensions are not supported")
	}
	// Classic cron rule, as go-cron implements it with DowOrDom: OR when
	// both day fields are restricted, AND when either is a wildcard.
	domOrDow := spec.DowOrDom && spec.Dom&starBit == 0 && spec.Dow&starBit == 0
	cal := newCalendar(spec.Second, spec.Minute, spec.Hour, spec.Dom, spec.Month,
		cron.NormalizeDOW(spec.Dow), domOrDow)
	if !cal.matchesSomeDate() {
		return fail("the expression matches no calendar date")
	}
	return &calendarSchedule{
		cal:  cal,
		loc:  loc,
		desc: fmt.Sprintf("cron %q (%s)", canonical, loc),
	}, nil
}

// checkUnsupported rejects the go-cron extensions whose meaning the civil
// search does not implement, with a clearer message than the parser's.
// fields has 5 or 6 entries.
func checkUnsupported(fields []string) error {
	domField := fields[len(fields)-3]
	dowField := fields[len(fields)-1]
	for _, f := range fields {
		for _, part := range strings.Split(f, ",") {
			if strings.HasPrefix(part, "H") || strings.HasPrefix(part, "h") {
				return fmt.Errorf("hash expression %q (H) is not supported", part)
			}
		}
	}
	if strings.ContainsAny(domField, "LlWw") {
		return fmt.Errorf("day-of-month %q: L and W are not supported", domField)
	}
	if strings.ContainsAny(dowField, "#") {
		return fmt.Errorf("day-of-week %q: # is not supported", dowField)
	}
	if strings.ContainsAny(dowField, "Ll") {
		return fmt.Errorf("day-of-week %q: L is not supported", dowField)
	}
	return nil
}
