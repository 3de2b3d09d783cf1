package task

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

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
// are errors; all of them are reported, joined. Each error about a task is
// a *FieldError naming the task (or "#N" when it has no name) and the field,
// prefixed with the line it is on.
//
// In a file, a field left out takes its default; a field written with an
// empty value (null) counts as left out. paginate.size and
// paginate.max_pages written as 0 are errors, not requests for the default.
// YAML anchors, aliases and merge keys (<<: *anchor) may be used.
func Parse(r io.Reader) ([]Spec, error) {
	root, err := readDocument(r)
	if err != nil {
		return nil, err
	}
	items, errs := taskList(root)
	specs := make([]Spec, 0, len(items))
	type first struct{ index, line int }
	seen := make(map[string]first, len(items))
	for i, n := range items {
		d := newTaskDecoder(n, i)
		s, ok := d.task()
		errs = append(errs, d.errs...)
		if s.Name != "" {
			if f, dup := seen[s.Name]; dup {
				errs = append(errs, fmt.Errorf("line %d: %w", d.lineOf("name"), &FieldError{s.Name, "name",
					fmt.Errorf("duplicate task name (tasks #%d at line %d and #%d)", f.index+1, f.line, i+1)}))
			} else {
				seen[s.Name] = first{i, n.Line}
			}
		}
		if ok {
			specs = append(specs, s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return specs, nil
}

var errEmpty = errors.New("empty task file: expected a top-level tasks: list")

// readDocument reads the file's single YAML document and returns its root.
func readDocument(r io.Reader) (*yaml.Node, error) {
	dec := yaml.NewDecoder(r)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errEmpty
		}
		return nil, fmt.Errorf("decode: %w", err)
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, fmt.Errorf("decode: %w", err)
	default:
		return nil, fmt.Errorf("line %d: a second YAML document: a task file holds one document", more.Line)
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, errEmpty
		}
		root = resolve(root.Content[0])
	}
	if isNull(root) {
		return nil, errEmpty
	}
	return root, nil
}

// taskList returns the items of the top-level tasks: list.
func taskList(root *yaml.Node) ([]*yaml.Node, []error) {
	if root.Kind != yaml.MappingNode {
		return nil, []error{fmt.Errorf("line %d: expected a mapping with a top-level tasks: list", root.Line)}
	}
	var errs []error
	fs := fields(root, "", func(path string, line int, err error) {
		errs = append(errs, fmt.Errorf("line %d: %s: %w", line, path, err))
	})
	var tasks *field
	for i, f := range fs {
		if f.path == "tasks" {
			tasks = &fs[i]
			continue
		}
		errs = append(errs, fmt.Errorf("line %d: unknown top-level field %q, not found in the task schema (a task file has only tasks:)", f.line, f.path))
	}
	switch {
	case tasks == nil || isNull(tasks.value):
		errs = append(errs, errors.New("no tasks: expected a top-level tasks: list"))
		return nil, errs
	case tasks.value.Kind != yaml.SequenceNode:
		errs = append(errs, fmt.Errorf("line %d: tasks: expected a list of tasks, got %s", tasks.line, describe(tasks.value)))
		return nil, errs
	case len(tasks.value.Content) == 0:
		errs = append(errs, fmt.Errorf("line %d: tasks: the list is empty", tasks.line))
		return nil, errs
	}
	return tasks.value.Content, errs
}

// field is one key of a mapping node.
type field struct {
	path  string // key with the path of its parent, e.g. "request.path"
	line  int    // line of the key
	value *yaml.Node
}

// fields returns the keys of the mapping n, with merge keys (<<: *anchor)
// expanded: keys written in n win over merged ones, and earlier merged
// mappings over later ones. Problems (a key written twice, a bad merge) are
// reported through bad.
func fields(n *yaml.Node, prefix string, bad func(path string, line int, err error)) []field {
	var out, merged []field
	firstLine := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			sources := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				sources = v.Content
			}
			for _, m := range sources {
				if m = resolve(m); m.Kind != yaml.MappingNode {
					bad(prefix+"<<", k.Line, fmt.Errorf("a merge key needs a mapping or a list of mappings, got %s", describe(m)))
					continue
				}
				merged = append(merged, fields(m, prefix, bad)...)
			}
			continue
		}
		path := prefix + k.Value
		if k.Kind != yaml.ScalarNode {
			bad(strings.TrimSuffix(prefix, "."), k.Line, fmt.Errorf("keys must be names, got %s", describe(k)))
			continue
		}
		if l, dup := firstLine[path]; dup {
			bad(path, k.Line, fmt.Errorf("given twice (first at line %d)", l))
			continue
		}
		firstLine[path] = k.Line
		out = append(out, field{path, k.Line, v})
	}
	for _, f := range merged {
		if _, ok := firstLine[f.path]; !ok {
			firstLine[f.path] = f.line
			out = append(out, f)
		}
	}
	return out
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a value for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

// The schema: the fields of a task and of its request and paginate blocks.
var (
	taskFields     = []string{"name", "every", "at", "weekdays", "cron", "timezone", "run_on_start", "enabled_if", "misfire", "misfire_grace", "overlap", "jitter", "timeout", "request", "paginate"}
	requestFields  = []string{"service", "method", "path", "auth", "body", "query", "result"}
	paginateFields = []string{"mode", "size", "size_field", "offset_field", "result", "max_pages"}
)

// taskDecoder turns one task node into a Spec, field by field, so that
// every problem is reported with its task, field and line.
type taskDecoder struct {
	node   *yaml.Node
	label  string          // task name, or "#N"
	errs   []error         // problems found so far
	failed map[string]bool // fields whose value could not be decoded
	lines  map[string]int  // line of each field ("" is the task's line)
}

func newTaskDecoder(n *yaml.Node, index int) *taskDecoder {
	n = resolve(n)
	d := &taskDecoder{node: n, failed: map[string]bool{}, lines: map[string]int{"": n.Line}}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "name" {
				if v := resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode && !isNull(v) {
					d.label = v.Value
				}
			}
		}
	}
	if d.label == "" {
		d.label = fmt.Sprintf("#%d", index+1)
	}
	return d
}

func (d *taskDecoder) fail(path string, line int, err error) {
	d.errs = append(d.errs, fmt.Errorf("line %d: %w", line, &FieldError{d.label, path, err}))
}

// invalid records that f's value could not be decoded.
func (d *taskDecoder) invalid(f field, format string, args ...any) {
	d.failed[f.path] = true
	d.fail(f.path, f.value.Line, fmt.Errorf(format, args...))
}

// fields returns the keys of the mapping n, recording their lines.
func (d *taskDecoder) fields(n *yaml.Node, prefix string) []field {
	fs := fields(n, prefix, d.fail)
	for _, f := range fs {
		d.lines[f.path] = f.line
	}
	return fs
}

func (d *taskDecoder) unknown(f field, known []string) {
	d.fail(f.path, f.line, fmt.Errorf("unknown field, not found in the task schema (known: %s)", strings.Join(known, ", ")))
}

// task decodes the task, then normalizes and validates it. ok is false if
// the task has any problem.
func (d *taskDecoder) task() (s Spec, ok bool) {
	if d.node.Kind != yaml.MappingNode {
		d.errs = append(d.errs, fmt.Errorf("line %d: task %q: expected a mapping (name:, every:, request:, ...), got %s",
			d.node.Line, d.label, describe(d.node)))
		return Spec{}, false
	}
	for _, f := range d.fields(d.node, "") {
		switch f.path {
		case "name":
			d.str(f, &s.Name)
		case "every":
			d.duration(f, &s.Every)
		case "at":
			d.str(f, &s.At)
		case "weekdays":
			d.weekdays(f, &s.Weekdays)
		case "cron":
			d.str(f, &s.Cron)
		case "timezone":
			d.str(f, &s.Timezone)
		case "run_on_start":
			d.boolean(f, &s.RunOnStart)
		case "enabled_if":
			var g string
			d.str(f, &g)
			s.EnabledIf = Gate(g)
		case "misfire":
			var m string
			d.str(f, &m)
			s.Misfire = Misfire(m)
		case "misfire_grace":
			d.duration(f, &s.MisfireGrace)
		case "overlap":
			var o string
			d.str(f, &o)
			s.Overlap = Overlap(o)
		case "jitter":
			d.duration(f, &s.Jitter)
		case "timeout":
			d.duration(f, &s.Timeout)
		case "request":
			s.Request = d.request(f)
		case "paginate":
			s.Paginate = d.paginate(f)
		default:
			d.unknown(f, taskFields)
		}
	}
	s.Normalize()
	d.validate(&s)
	return s, len(d.errs) == 0
}

// validate runs Spec.Validate and keeps the problems that are not mere
// consequences of a value that could not be decoded.
func (d *taskDecoder) validate(s *Spec) {
	err := s.Validate()
	if err == nil {
		return
	}
	for _, e := range leaves(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			d.errs = append(d.errs, fmt.Errorf("line %d: task %q: %w", d.lines[""], d.label, e))
			continue
		}
		if d.consequence(fe.Field) {
			continue
		}
		if fe.Task == "" {
			fe.Task = d.label
		}
		d.errs = append(d.errs, fmt.Errorf("line %d: %w", d.lineOf(fe.Field), e))
	}
}

// scheduleFields are the fields Spec.Schedule checks together.
var scheduleFields = map[string]bool{"every": true, "at": true, "cron": true, "weekdays": true, "timezone": true, "every|at|cron": true}

// consequence reports whether a validation problem of path follows from a
// field that could not be decoded (and was reported already).
func (d *taskDecoder) consequence(path string) bool {
	for f := range d.failed {
		if path == f || strings.HasPrefix(path, f+".") || (scheduleFields[path] && scheduleFields[f]) {
			return true
		}
	}
	return false
}

// lineOf returns the line of path, or of its closest enclosing field.
func (d *taskDecoder) lineOf(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return d.lines[""]
		}
		path = path[:i]
	}
}

// leaves flattens a tree of joined errors.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

func (d *taskDecoder) request(f field) *Request {
	if isNull(f.value) {
		return nil
	}
	if f.value.Kind != yaml.MappingNode {
		d.invalid(f, "want a mapping (service:, path:, ...), got %s", describe(f.value))
		return nil
	}
	r := &Request{Auth: true}
	for _, g := range d.fields(f.value, "request.") {
		switch strings.TrimPrefix(g.path, "request.") {
		case "service":
			var s string
			d.str(g, &s)
			r.Service = Service(s)
		case "method":
			d.str(g, &r.Method)
		case "path":
			d.str(g, &r.Path)
		case "auth":
			d.boolean(g, &r.Auth)
		case "body":
			d.body(g, &r.Body)
		case "query":
			d.query(g, &r.Query)
		case "result":
			d.str(g, &r.Result)
		default:
			d.unknown(g, requestFields)
		}
	}
	return r
}

func (d *taskDecoder) paginate(f field) *Paginate {
	if isNull(f.value) {
		return nil
	}
	if f.value.Kind != yaml.MappingNode {
		d.invalid(f, "want a mapping (mode:, size_field:, ...), got %s", describe(f.value))
		return nil
	}
	p := &Paginate{}
	for _, g := range d.fields(f.value, "paginate.") {
		switch strings.TrimPrefix(g.path, "paginate.") {
		case "mode":
			var m string
			d.str(g, &m)
			p.Mode = Mode(m)
		case "size":
			if d.integer(g, &p.Size) && p.Size == 0 {
				d.invalid(g, "0 must be between 1 and %d (leave size out for the default, %d)", MaxPageSize, DefaultPageSize)
			}
		case "size_field":
			d.str(g, &p.SizeField)
		case "offset_field":
			d.str(g, &p.OffsetField)
		case "result":
			d.str(g, &p.Result)
		case "max_pages":
			if d.integer(g, &p.MaxPages) && p.MaxPages == 0 {
				d.invalid(g, "0 must be at least 1 (leave max_pages out for the default, %d)", DefaultMaxPages)
			}
		default:
			d.unknown(g, paginateFields)
		}
	}
	return p
}

// str decodes a single value as a string; null leaves out alone.
func (d *taskDecoder) str(f field, out *string) {
	if isNull(f.value) {
		return
	}
	if f.value.Kind != yaml.ScalarNode {
		d.invalid(f, "want a single value, got %s", describe(f.value))
		return
	}
	*out = f.value.Value
}

func (d *taskDecoder) boolean(f field, out *bool) {
	if isNull(f.value) {
		return
	}
	// yaml.v3 also accepts the YAML 1.1 spellings (yes, no, on, off) here.
	if f.value.Kind != yaml.ScalarNode {
		d.invalid(f, "want true or false, got %s", describe(f.value))
		return
	}
	if err := f.value.Decode(out); err != nil {
		d.invalid(f, "want true or false, got %s", describe(f.value))
	}
}

// integer decodes a whole number; it reports whether a value was set.
func (d *taskDecoder) integer(f field, out *int) bool {
	if isNull(f.value) {
		return false
	}
	// The tag check matters: yaml.v3 would silently truncate 2.5 to 2.
	if f.value.Kind != yaml.ScalarNode || f.value.ShortTag() != "!!int" {
		d.invalid(f, "want a whole number, got %s", describe(f.value))
		return false
	}
	if err := f.value.Decode(out); err != nil {
		d.invalid(f, "want a whole number, got %s", describe(f.value))
		return false
	}
	return true
}

// duration decodes a positive Go duration ("90s", "10m", "1h30m").
func (d *taskDecoder) duration(f field, out *time.Duration) {
	if isNull(f.value) {
		return
	}
	if f.value.Kind != yaml.ScalarNode {
		d.invalid(f, "want a duration such as 90s, 10m or 1h, got %s", describe(f.value))
		return
	}
	v, err := time.ParseDuration(f.value.Value)
	if err != nil {
		d.invalid(f, "invalid duration %q (use Go syntax such as 90s, 10m, 1h)", f.value.Value)
		return
	}
	if v <= 0 {
		d.invalid(f, "duration %q must be positive", f.value.Value)
		return
	}
	*out = v
}

func (d *taskDecoder) weekdays(f field, out *[]time.Weekday) {
	if isNull(f.value) {
		return
	}
	if f.value.Kind != yaml.SequenceNode {
		d.invalid(f, "want a list of days such as [monday, friday], got %s", describe(f.value))
		return
	}
	for _, item := range f.value.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode {
			d.invalid(f, "want a day name, got %s", describe(item))
			continue
		}
		w, err := schedule.ParseWeekday(item.Value)
		if err != nil {
			d.failed[f.path] = true
			d.fail(f.path, item.Line, err)
			continue
		}
		*out = append(*out, w)
	}
}

// body decodes the free-form JSON fields of request.body.
func (d *taskDecoder) body(f field, out *map[string]any) {
	if isNull(f.value) {
		return
	}
	if f.value.Kind != yaml.MappingNode {
		d.invalid(f, "want a mapping of JSON fields, got %s", describe(f.value))
		return
	}
	var m map[string]any
	if err := f.value.Decode(&m); err != nil {
		d.invalid(f, "%v", yamlError(err))
		return
	}
	if _, err := json.Marshal(m); err != nil {
		d.invalid(f, "cannot be sent as JSON: %v", err)
		return
	}
	*out = m
}

// query decodes request.query: names to single values.
func (d *taskDecoder) query(f field, out *map[string]string) {
	if isNull(f.value) {
		return
	}
	if f.value.Kind != yaml.MappingNode {
		d.invalid(f, "want a mapping of names to values, got %s", describe(f.value))
		return
	}
	m := make(map[string]string)
	for _, g := range d.fields(f.value, f.path+".") {
		if g.value.Kind != yaml.ScalarNode {
			d.invalid(g, "want a single value, got %s", describe(g.value))
			continue
		}
		m[strings.TrimPrefix(g.path, f.path+".")] = g.value.Value
	}
	*out = m
}

// yamlError drops the "yaml: unmarshal errors:" header of a decode error.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}
