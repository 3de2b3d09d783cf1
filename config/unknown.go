package config

import (
	"slices"
	"strings"

	edlib "github.com/hbollon/go-edlib"
)

// prefix starts the name of every setting of the scheduler's own.
const prefix = "MOJODEX_SCHEDULER_"

// Warning is a variable in the environment that looks like a setting but is
// none: a typo, or a setting of another version.
type Warning struct {
	// Variable is the name found in the environment.
	Variable string
	// Suggestion is the closest setting, or "" when none is close.
	Suggestion string
}

// String is the warning in words, e.g. "MOJODEX_SCHEDULER_TASK is not a
// known setting (did you mean MOJODEX_SCHEDULER_TASKS?)".
func (w Warning) String() string {
	s := w.Variable + " is not a known setting"
	if w.Suggestion != "" {
		s += " (did you mean " + w.Suggestion + "?)"
	}
	return s
}

// unknownVariables returns, in name order, a warning for every name that is
// not a setting and either starts with MOJODEX_SCHEDULER_ (in any case), or
// starts with MOJODEX_ or BACKGROUND_ and is at most two edits from a
// setting (MOJODEX_BACKEND_URL, MOJODEX_SHEDULER_RATE). Other variables
// belong to other programs and are left alone.
func unknownVariables(names []string) []Warning {
	var out []Warning
	for _, name := range names {
		if _, ok := settingByName[name]; ok {
			continue
		}
		upper := strings.ToUpper(name)
		if !strings.HasPrefix(upper, "MOJODEX_") && !strings.HasPrefix(upper, "BACKGROUND_") {
			continue
		}
		switch closest, dist := closestSetting(upper, func(string) bool { return true }); {
		case strings.HasPrefix(upper, prefix):
			out = append(out, Warning{Variable: name, Suggestion: suggestOwn(strings.TrimPrefix(upper, prefix), closest, dist)})
		case dist <= 2:
			out = append(out, Warning{Variable: name, Suggestion: closest})
		}
	}
	slices.SortFunc(out, func(a, b Warning) int { return strings.Compare(a.Variable, b.Variable) })
	return out
}

// suggestOwn picks the setting to suggest for an unknown MOJODEX_SCHEDULER_
// name (given without the prefix, in upper case): the closest setting when
// it is a few edits away for the name's length; else the closest setting
// whose name extends it or that it extends (TLS for TLS_CA, SECRET_KEY for
// SECRET); else none.
func suggestOwn(unknown, closest string, dist int) string {
	if dist <= max(2, len(unknown)/3) {
		return closest
	}
	if len(unknown) < 3 {
		return ""
	}
	ext, _ := closestSetting(prefix+unknown, func(name string) bool {
		known, ok := strings.CutPrefix(name, prefix)
		return ok && (strings.HasPrefix(known, unknown) || strings.HasPrefix(unknown, known))
	})
	return ext
}

// closestSetting returns the setting, among those for which keep is true,
// closest to name by edit distance, a transposition counting as one edit
// (the first in declaration order on a tie), and that distance; "" and -1 when keep refuses them all.
func closestSetting(name string, keep func(string) bool) (string, int) {
	best, bestDist := "", -1
	for _, s := range settings {
		if !keep(s.name) {
			continue
		}
		if d := edlib.OSADamerauLevenshteinDistance(name, s.name); bestDist < 0 || d < bestDist {
			best, bestDist = s.name, d
		}
	}
	return best, bestDist
}
