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
// are errors; all of them are reported, joined, each naming its task.
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
	for i := range f.Tasks {
		n := &f.Tasks[i]
		name := scalarAt(n, "name")
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		fail := func(err error) { errs = append(errs, fmt.Errorf("task %q (line %d): %w", name, n.Line, err)) }
		if err := checkKeys(n, taskKeys, ""); err != nil {
			fail(err)
			continue
		}
		var t taskYAML
		if err := n.Decode(&t); err != nil {
			fail(err)
			continue
		}
		s, err := t.spec()
		if err != nil {
			fail(err)
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

// The schema's keys; a nested map lists the keys of a nested mapping, nil
// means free-form (request.body, request.query).
var (
	paginateKeys = map[string]map[string]any{"mode": nil, "size": nil, "size_field": nil, "offset_field": nil, "result": nil, "max_pages": nil}
	requestKeys  = map[string]map[string]any{"service": nil, "method": nil, "path": nil, "auth": nil, "body": nil, "query": nil, "result": nil}
	taskKeys     = map[string]map[string]any{
		"name": nil, "every": nil, "at": nil, "weekdays": nil, "cron": nil, "timezone": nil, "run_on_start": nil,
		"enabled_if": nil, "timeout": nil, "request": {"": requestKeys}, "paginate": {"": paginateKeys},
	}
)

// checkKeys rejects keys of the mapping n that the schema does not know.
// yaml's KnownFields does not reach into nodes decoded one by one, so the
// check is done here, with the field's line.
func checkKeys(n *yaml.Node, allowed map[string]map[string]any, prefix string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: %sexpected a mapping", n.Line, prefix)
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub, ok := allowed[k.Value]
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: field %s%s not found in the task schema", k.Line, prefix, k.Value))
			continue
		}
		if nested, ok := sub[""].(map[string]map[string]any); ok {
			if err := checkKeys(v, nested, prefix+k.Value+"."); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// scalarAt returns the scalar value under key in the mapping n, or "".
func scalarAt(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

type fileYAML struct {
	Tasks []yaml.Node `yaml:"tasks"`
}

type taskYAML struct {
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
