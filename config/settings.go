package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// setting is one Config field and its variable, read from the field's tags.
type setting struct {
	field   int    // index in Config
	name    string // environment variable
	def     string // default value, "" when none
	unset   string // what an unset variable without a default means
	typ     reflect.Type
	example string
	secret  bool

	// range: lo..hi inclusive, as numbers (nanoseconds for durations) and
	// as written in the tag.
	hasRange       bool
	lo, hi         float64
	loText, hiText string
	negative       string // a negative number is accepted and means this

	atMost    string // another variable...
	atMostDiv int    // ... divided by this bounds the value

	enum    []string
	pattern *regexp.Regexp
	hint    string
	check   string // uri, addr, state, path, token
}

var durationType = reflect.TypeFor[time.Duration]()

// settings are the Config fields in declaration order.
var settings = mustSettings()

// settingByName indexes settings by variable.
var settingByName = func() map[string]*setting {
	m := make(map[string]*setting, len(settings))
	for i := range settings {
		m[settings[i].name] = &settings[i]
	}
	return m
}()

// mustSettings reads the tags of Config. A malformed tag is a programming
// error, caught by the package's tests; it panics like regexp.MustCompile.
func mustSettings() []setting {
	s, err := readSettings(reflect.TypeFor[Config]())
	if err != nil {
		panic(err)
	}
	return s
}

func readSettings(t reflect.Type) ([]setting, error) {
	var out []setting
	for i := range t.NumField() {
		f := t.Field(i)
		s := setting{field: i, typ: f.Type, unset: f.Tag.Get("unset"), example: f.Tag.Get("example"), hint: f.Tag.Get("hint"),
			secret: f.Tag.Get("secret") == "true", negative: f.Tag.Get("negative"), check: f.Tag.Get("check")}
		switch f.Type.Kind() {
		case reflect.String, reflect.Int, reflect.Float64, reflect.Bool:
		case reflect.Int64:
			if f.Type != durationType {
				return nil, fmt.Errorf("config.%s: a %s cannot be read (use int)", f.Name, f.Type)
			}
		default:
			return nil, fmt.Errorf("config.%s: a %s cannot be read", f.Name, f.Type)
		}
		name, opts, _ := strings.Cut(f.Tag.Get("env"), ",")
		s.name = strings.TrimSpace(name)
		if s.name == "" {
			return nil, fmt.Errorf("config.%s: no env tag", f.Name)
		}
		if d, ok := strings.CutPrefix(strings.TrimSpace(opts), "default="); ok {
			s.def = d
		} else if opts != "" {
			return nil, fmt.Errorf("config.%s: env tag option %q is not default=", f.Name, opts)
		}
		if r := f.Tag.Get("range"); r != "" {
			lo, hi, ok := strings.Cut(r, "..")
			if !ok {
				return nil, fmt.Errorf("config.%s: range %q is not LOW..HIGH", f.Name, r)
			}
			var err error
			if s.lo, err = s.number(lo); err != nil {
				return nil, fmt.Errorf("config.%s: range %q: %w", f.Name, r, err)
			}
			if s.hi, err = s.number(hi); err != nil {
				return nil, fmt.Errorf("config.%s: range %q: %w", f.Name, r, err)
			}
			s.hasRange, s.loText, s.hiText = true, lo, hi
		}
		if a := f.Tag.Get("atmost"); a != "" {
			other, div, ok := strings.Cut(a, "/")
			n, err := strconv.Atoi(div)
			if !ok || err != nil || n < 1 || f.Type != durationType {
				return nil, fmt.Errorf("config.%s: atmost %q is not OTHER_VARIABLE/N on a duration", f.Name, a)
			}
			s.atMost, s.atMostDiv = other, n
		}
		if e := f.Tag.Get("enum"); e != "" {
			s.enum = strings.Split(e, ",")
		}
		if p := f.Tag.Get("pattern"); p != "" {
			re, err := regexp.Compile(p)
			if err != nil {
				return nil, fmt.Errorf("config.%s: pattern: %w", f.Name, err)
			}
			s.pattern = re
		}
		switch s.check {
		case "", "uri", "addr", "state", "path", "token":
		default:
			return nil, fmt.Errorf("config.%s: unknown check %q", f.Name, s.check)
		}
		if s.def == "" && s.unset == "" && f.Type.Kind() == reflect.String {
			return nil, fmt.Errorf("config.%s: neither a default nor an unset tag", f.Name)
		}
		out = append(out, s)
	}
	return out, nil
}

// number parses a bound of the setting's range.
func (s *setting) number(v string) (float64, error) {
	switch {
	case s.typ == durationType:
		d, err := time.ParseDuration(v)
		return float64(d), err
	case s.typ.Kind() == reflect.Int:
		n, err := strconv.ParseInt(v, 10, 64)
		return float64(n), err
	case s.typ.Kind() == reflect.Float64:
		return strconv.ParseFloat(v, 64)
	}
	return 0, fmt.Errorf("a range on a %s", s.typ)
}

// trims reports whether surrounding spaces are removed from the value:
// yes for words, numbers and addresses; no for free text (paths, URIs,
// the secret and the token are taken verbatim).
func (s *setting) trims() bool {
	if s.typ.Kind() != reflect.String {
		return true
	}
	return s.enum != nil || s.pattern != nil || s.check == "addr" || s.check == "state"
}

// load parses raw (the variable's value, without surrounding spaces when
// the setting trims, or its default) into field and checks it. The error
// does not repeat the variable's name.
func (s *setting) load(field reflect.Value, raw string) error {
	switch {
	case s.typ == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration (use Go syntax such as 30s, 10m, 1h)", raw)
		}
		if err := s.inRange(float64(d), raw); err != nil {
			return err
		}
		field.SetInt(int64(d))
	case s.typ.Kind() == reflect.Int:
		if !wholeNumber.MatchString(raw) {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil { // only ErrRange gets here
			return s.outOfRange(raw)
		}
		if err := s.inRange(float64(n), raw); err != nil {
			return err
		}
		field.SetInt(n)
	case s.typ.Kind() == reflect.Float64:
		f, err := parseFinite(raw)
		if errors.Is(err, strconv.ErrRange) {
			return s.outOfRange(raw)
		}
		if err != nil {
			return err
		}
		if err := s.inRange(f, raw); err != nil {
			return err
		}
		field.SetFloat(f)
	case s.typ.Kind() == reflect.Bool:
		switch strings.ToLower(raw) {
		case "true", "1":
			field.SetBool(true)
		case "false", "0":
			field.SetBool(false)
		default:
			return fmt.Errorf("%q is not true or false", raw)
		}
	case s.typ.Kind() == reflect.String:
		v, err := s.checkString(raw)
		if err != nil {
			return err
		}
		field.SetString(v)
	default:
		return fmt.Errorf("cannot read a %s", s.typ)
	}
	return nil
}

// checkString checks a string setting and returns the value to keep.
func (s *setting) checkString(raw string) (string, error) {
	if raw == "" {
		return "", nil // unset, no default: the field's unset tag says what it means
	}
	switch {
	case s.enum != nil:
		v := strings.ToLower(raw)
		for _, e := range s.enum {
			if v == e {
				return v, nil
			}
		}
		return "", notOneOf(raw, s.enum)
	case s.pattern != nil:
		if !s.pattern.MatchString(raw) {
			return "", fmt.Errorf("%q does not match %s (%s)", raw, s.pattern, s.hint)
		}
	case s.check == "addr":
		if strings.EqualFold(raw, off) {
			return off, nil
		}
		if err := checkAddr(raw, s.def); err != nil {
			return "", err
		}
	case s.check == "state":
		loc, err := parseState(raw)
		if err != nil {
			return "", err
		}
		if loc.Kind == StateMemory {
			return off, nil
		}
	case s.check == "token":
		if n := len([]rune(raw)); n < minTokenLength {
			return "", fmt.Errorf("is %d characters long: set at least %d, or leave it empty to turn status-page actions off", n, minTokenLength)
		}
	}
	return raw, nil
}

// off turns off an address or keeps state in memory.
const off = "off"

// minTokenLength is the shortest UI token accepted.
const minTokenLength = 16

var wholeNumber = regexp.MustCompile(`^[+-]?[0-9]+$`)

// decimal is the syntax of a number setting: no hexadecimal, no Inf or NaN,
// no digit separators, which strconv.ParseFloat would accept.
var decimal = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// parseFinite parses a decimal number. It returns strconv.ErrRange (wrapped)
// when the number does not fit a float64.
func parseFinite(raw string) (float64, error) {
	if !decimal.MatchString(raw) {
		switch strings.ToLower(strings.TrimLeft(raw, "+-")) {
		case "inf", "infinity", "nan":
			return 0, fmt.Errorf("%q is not a finite number", raw)
		}
		return 0, fmt.Errorf("%q is not a number", raw)
	}
	return strconv.ParseFloat(raw, 64)
}

// inRange checks v (raw as given) against the setting's range.
func (s *setting) inRange(v float64, raw string) error {
	if !s.hasRange || (s.negative != "" && v < 0) || (v >= s.lo && v <= s.hi) {
		return nil
	}
	return s.outOfRange(raw)
}

func (s *setting) outOfRange(raw string) error {
	return fmt.Errorf("%s is out of range (%s)", raw, s.rangeText())
}

// rangeText is the range in words: "1s to 24h", "0.01 to 10000, or
// negative for no limit".
func (s *setting) rangeText() string {
	t := s.loText + " to " + s.hiText
	if s.negative != "" {
		t += ", or negative for " + s.negative
	}
	return t
}

func notOneOf(raw string, words []string) error {
	return fmt.Errorf("%q is not one of %s", raw, strings.Join(words, ", "))
}

// accepted describes in words what the setting accepts. It is the
// "accepted" column of docs/configuration.md, which the package's tests
// compare with this text.
func (s *setting) accepted() string {
	var t string
	switch {
	case s.hasRange:
		t = s.rangeText()
	case s.typ.Kind() == reflect.Bool:
		t = "true or false (any case), 1 or 0"
	case s.enum != nil:
		t = strings.Join(s.enum, ", ") + " (any case)"
	case s.pattern != nil:
		t = s.pattern.String() + " (" + s.hint + ")"
	case s.check == "uri":
		t = "absolute http:// or https:// URL with a host; port 1 to 65535 if given; no fragment"
	case s.check == "addr":
		t = "host:port (port 0 to 65535), or off"
	case s.check == "state":
		t = "a file path, off (memory only), or a postgres:// or postgresql:// URL"
	case s.check == "path":
		t = "a file path"
	case s.check == "token":
		t = fmt.Sprintf("empty, or at least %d characters", minTokenLength)
	default:
		t = "any text"
	}
	for _, x := range crossChecks {
		if x.name == s.name {
			t += "; " + x.doc
		}
	}
	return t
}

// defaultText is the "default" column of docs/configuration.md.
func (s *setting) defaultText() string {
	if s.def != "" {
		return s.def
	}
	return s.unset
}

// atMostChecks turns the atmost tags into cross checks.
func atMostChecks() []crossCheck {
	var out []crossCheck
	for _, s := range settings {
		if s.atMost == "" {
			continue
		}
		var frac string
		switch s.atMostDiv {
		case 1:
			frac = ""
		case 2:
			frac = "half of "
		default:
			frac = fmt.Sprintf("1/%d of ", s.atMostDiv)
		}
		out = append(out, crossCheck{
			name:  s.name,
			other: s.atMost,
			doc:   "at most " + frac + s.atMost,
			check: func(c Config) error {
				v := reflect.ValueOf(c)
				mine := time.Duration(v.Field(s.field).Int())
				o, ok := settingByName[s.atMost]
				if !ok {
					return fmt.Errorf("bounded by %s, which is not a setting", s.atMost)
				}
				theirs := time.Duration(v.Field(o.field).Int())
				if mine*time.Duration(s.atMostDiv) > theirs {
					return fmt.Errorf("%s is more than %s%s (%s)", formatDuration(mine), frac, s.atMost, formatDuration(theirs))
				}
				return nil
			},
		})
	}
	return out
}

// formatDuration prints d without the zero units time.Duration.String
// keeps: 10m, 1h30m, 1.5s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatRate prints a rate setting.
func formatRate(r float64) string {
	if r < 0 || math.IsInf(r, 1) {
		return "unlimited"
	}
	return strconv.FormatFloat(r, 'g', -1, 64) + " calls/s"
}
