package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// item is one line of the configuration in effect.
type item struct {
	key   string
	value any    // string, int, float64, bool or time.Duration
	human string // the human form, when it differs from the value's
}

// items is the configuration in effect, safe to print: never the secret,
// the UI token or a password (URIs and the DSN are redacted).
func (c Config) items() []item {
	level := strings.ToLower(strings.TrimSpace(c.LogLevel))
	if level == "critical" {
		level = "critical (logged as error)"
	}
	tasks := orUnset(c.Tasks, "MOJODEX_SCHEDULER_TASKS")
	its := []item{
		{key: "backend_uri", value: shownURI(c.BackendURI)},
		{key: "background_uri", value: shownURI(c.BackgroundURI)},
		{key: "secret_set", value: c.Secret != ""},
		{key: "log_level", value: level},
		{key: "log_format", value: c.LogFormat},
		{key: "tasks", value: tasks},
	}
	loc, err := c.StateLocation()
	if err != nil {
		its = append(its, item{key: "state", value: "invalid"})
	} else {
		its = append(its, item{key: "state_kind", value: string(loc.Kind)}, item{key: "state", value: loc.Redacted()})
	}
	if loc.Kind == StatePostgres {
		its = append(its,
			item{key: "pg_schema", value: c.PGSchema},
			item{key: "replica", value: orUnset(c.Replica, "MOJODEX_SCHEDULER_REPLICA")},
			item{key: "lease", value: c.Lease},
			item{key: "lease_renew", value: c.LeaseRenew},
			item{key: "reaper_interval", value: c.ReaperInterval},
		)
	}
	return append(its,
		item{key: "rate", value: c.Rate, human: formatRate(c.Rate)},
		item{key: "burst", value: c.Burst},
		item{key: "max_in_flight", value: c.MaxInFlight, human: strconv.Itoa(c.MaxInFlight) + " per service"},
		item{key: "queue_size", value: c.QueueSize},
		item{key: "request_timeout", value: c.RequestTimeout},
		item{key: "max_attempts", value: c.MaxAttempts},
		item{key: "shutdown_timeout", value: c.ShutdownTimeout},
		item{key: "gate_interval", value: c.GateInterval},
		item{key: "http_addr", value: c.HTTPAddr},
		item{key: "remote_addr", value: c.RemoteAddr},
		item{key: "remote_max_conns", value: c.RemoteMaxConns},
		item{key: "mutual_tls", value: c.tlsState()},
		item{key: "insecure_remote", value: c.InsecureRemote},
		item{key: "ui_actions", value: onOff(c.UIToken != "")},
		item{key: "ui_auth", value: c.UIAuth},
	)
}

// orUnset is v, or when it is empty what the setting's unset tag says an
// unset variable means.
func orUnset(v, name string) string {
	if v == "" {
		return settingByName[name].unset
	}
	return v
}

// shownURI is a service URI for printing: without a password, or "unset".
func shownURI(s string) string {
	if s == "" {
		return "unset"
	}
	return redactURL(s)
}

// tlsState is "on" when the three TLS files are set, "off" when none is,
// and "incomplete" otherwise (the remote endpoint then refuses to start).
func (c Config) tlsState() string {
	n := 0
	for _, f := range []string{c.TLSCert, c.TLSKey, c.TLSCA} {
		if f != "" {
			n++
		}
	}
	switch n {
	case 0:
		return "off"
	case 3:
		return "on"
	}
	return "incomplete"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (it item) text() string {
	if it.human != "" {
		return it.human
	}
	switch v := it.value.(type) {
	case time.Duration:
		return formatDuration(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(it.value)
}

// MarshalZerologObject writes the configuration in effect as fields, for
// log.Info().Object("config", cfg): never the secret, the UI token or a
// password. Durations are seconds, in fields named with the unit
// (request_timeout_s), as in every log event of the scheduler.
func (c Config) MarshalZerologObject(e *zerolog.Event) {
	for _, it := range c.items() {
		switch v := it.value.(type) {
		case string:
			e.Str(it.key, v)
		case int:
			e.Int(it.key, v)
		case float64:
			e.Float64(it.key, v)
		case bool:
			e.Bool(it.key, v)
		case time.Duration:
			e.Float64(it.key+"_s", v.Seconds())
		}
	}
}

// Summary is the configuration in effect, one "key  value" line each, for
// people (the validate command): never the secret, the UI token or a
// password.
func (c Config) Summary() string {
	its := c.items()
	width := 0
	for _, it := range its {
		width = max(width, len(it.key))
	}
	var b strings.Builder
	for _, it := range its {
		fmt.Fprintf(&b, "%-*s  %s\n", width, it.key, it.text())
	}
	return b.String()
}

// String is Summary, so that printing a Config with %v or %s never shows a
// secret.
func (c Config) String() string { return c.Summary() }

// GoString keeps %#v from printing the fields, which hold secrets.
func (c Config) GoString() string {
	var parts []string
	for _, it := range c.items() {
		parts = append(parts, it.key+": "+strconv.Quote(it.text()))
	}
	return "config.Config{" + strings.Join(parts, ", ") + "}"
}

// MarshalJSON writes the configuration in effect (the keys of
// MarshalZerologObject, durations as text such as "30s"), so that
// json.Marshal, and a logger's Interface field, never show a secret.
func (c Config) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, it := range c.items() {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(it.key)
		if err != nil {
			return nil, err
		}
		v := it.value
		if d, ok := v.(time.Duration); ok {
			v = formatDuration(d)
		}
		val, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", it.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
