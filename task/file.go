package task

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/schedule"
	"go.yaml.in/yaml/v3"
)

//go:embed defaults.yaml
var defaultsYAML []byte

// DefaultsYAML returns the embedded Mojodex default task file.
func DefaultsYAML() []byte { return bytes.Clone(defaultsYAML) }

// Defaults returns the Mojodex default task set, parsed from the embedded
// task file.
func Defaults() ([]Spec, error) {
	specs, err := Parse(bytes.NewReader(defaultsYAML))
	if err != nil {
		return nil, fmt.Errorf("embedded defaults: %w", err)
	}
	return specs, nil
}

// LoadFile reads and validates a task file.
func LoadFile(path string) ([]Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("task file: %w", err)
	}
	defer f.Close()
	specs, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("task file %s: %w", path, err)
	}
	return specs, nil
}

// Parse decodes a task file and validates every task. Unknown fields, bad
// durations, times, weekdays, time zones, cron fields and duplicate names
// are errors; all of them are reported, joined.
func Parse(r io.Reader) ([]Spec, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f fileYAML
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty task file: expected a top-level tasks: list")
		}
		return nil, fmt.Errorf("decode: %w", err)
	}
	if f.Tasks == nil {
		return nil, errors.New("no tasks: expected a top-level tasks: list")
	}
	specs := make([]Spec, 0, len(f.Tasks))
	var errs []error
	for i, t := range f.Tasks {
		s, err := t.spec()
		if err != nil {
			name := t.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			errs = append(errs, fmt.Errorf("task %q (line %d): %w", name, t.line, err))
			continue
		}
		specs = append(specs, s)
	}
	if err := ValidateSet(specs); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return specs, nil
}

type fileYAML struct {
	Tasks []taskYAML `yaml:"tasks"`
}

type taskYAML struct {
	line       int
	Name       string        `yaml:"name"`
	Every      duration      `yaml:"every"`
	At         string        `yaml:"at"`
	Weekdays   []string      `yaml:"weekdays"`
	Cron       string        `yaml:"cron"`
	Timezone   string        `yaml:"timezone"`
	RunOnStart bool          `yaml:"run_on_start"`
	EnabledIf  string        `yaml:"enabled_if"`
	Timeout    duration      `yaml:"timeout"`
	Request    *requestYAML  `yaml:"request"`
	Paginate   *paginateYAML `yaml:"paginate"`
}

type requestYAML struct {
	Service string            `yaml:"service"`
	Method  string            `yaml:"method"`
	Path    string            `yaml:"path"`
	Auth    *bool             `yaml:"auth"`
	Body    map[string]any    `yaml:"body"`
	Query   map[string]string `yaml:"query"`
	Result  string            `yaml:"result"`
}

type paginateYAML struct {
	Mode        string `yaml:"mode"`
	Size        int    `yaml:"size"`
	SizeField   string `yaml:"size_field"`
	OffsetField string `yaml:"offset_field"`
	Result      string `yaml:"result"`
	MaxPages    int    `yaml:"max_pages"`
}

// UnmarshalYAML records the task's line for error messages.
func (t *taskYAML) UnmarshalYAML(n *yaml.Node) error {
	type plain taskYAML
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*t = taskYAML(p)
	t.line = n.Line
	return nil
}

// duration is a Go duration string in YAML ("90s", "1h30m").
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q (use Go syntax such as 90s, 10m, 1h)", n.Line, n.Value)
	}
	if v <= 0 {
		return fmt.Errorf("line %d: duration %q must be positive", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

func (t taskYAML) spec() (Spec, error) {
	s := Spec{
		Name:       t.Name,
		Every:      time.Duration(t.Every),
		At:         t.At,
		Cron:       t.Cron,
		Timezone:   t.Timezone,
		RunOnStart: t.RunOnStart,
		EnabledIf:  Gate(t.EnabledIf),
		Timeout:    time.Duration(t.Timeout),
	}
	for _, w := range t.Weekdays {
		d, err := schedule.ParseWeekday(w)
		if err != nil {
			return Spec{}, fmt.Errorf("field weekdays: %w", err)
		}
		s.Weekdays = append(s.Weekdays, d)
	}
	if r := t.Request; r != nil {
		auth := true
		if r.Auth != nil {
			auth = *r.Auth
		}
		s.Request = &Request{
			Service: apiclient.Service(r.Service),
			Method:  r.Method,
			Path:    r.Path,
			Auth:    auth,
			Body:    r.Body,
			Query:   r.Query,
			Result:  r.Result,
		}
	}
	if p := t.Paginate; p != nil {
		s.Paginate = &Paginate{
			Mode:        Mode(p.Mode),
			Size:        p.Size,
			SizeField:   p.SizeField,
			OffsetField: p.OffsetField,
			Result:      p.Result,
			MaxPages:    p.MaxPages,
		}
	}
	return s, nil
}
