package task

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	edlib "github.com/hbollon/go-edlib"
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

// Limits of a task file, checked before its tasks are decoded: a file of a
// few hundred bytes of nested aliases can otherwise stand for billions of
// nodes.
const (
	// MaxFileSize is the largest task file accepted, in bytes (1 MiB).
	MaxFileSize = 1 << 20
	// MaxFileNodes is the most YAML nodes a task file may hold, counted
	// with every alias and merge key expanded to what it stands for.
	MaxFileNodes = 100_000
)

// ErrFileTooLarge and ErrFileTooComplex report a task file over one of
// the limits. Parse wraps them with the limit and LoadFile with the file.
var (
	ErrFileTooLarge   = errors.New("larger than the task file size limit")
	ErrFileTooComplex = errors.New("more YAML nodes than the task file limit")
)

// LoadFile reads and validates a task file.
func LoadFile(path string) ([]Spec, error) {
	specs, _, err := ReadFile(path)
	return specs, err
}

// ReadFile reads and validates a task file, like LoadFile, and also returns
// its text (what replicas sharing a store publish as the task set).
func ReadFile(path string) ([]Spec, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("task file: %w", err)
	}
	defer f.Close()
	content, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("task file %s: %w", path, err)
	}
	specs, err := Parse(bytes.NewReader(content))
	if err != nil {
		return nil, nil, fmt.Errorf("task file %s: %w", path, err)
	}
	return specs, content, nil
}

// Parse decodes a task file and validates every task. Unknown fields, bad
// durations, times, weekdays, time zones, cron fields and duplicate names
// are errors; all of them are reported, joined, in the order of their lines.
// Each error about a task is a *FieldError naming the task (or "#N" when it
// has no name) and the field, prefixed with the line it is on. An unknown
// field close to a known one is reported with a suggestion.
//
// In a file, a field left out takes its default; a field written with an
// empty value (null) counts as left out. paginate.size and
// paginate.max_pages written as 0 are errors, not requests for the default.
// request.auth defaults to true. YAML anchors, aliases and merge keys
// (<<: *anchor) may be used; a file holds one YAML document.
//
// A file larger than MaxFileSize, or whose nodes exceed MaxFileNodes once
// its aliases are expanded, is refused (ErrFileTooLarge, ErrFileTooComplex)
// before any task is decoded.
func Parse(r io.Reader) ([]Spec, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w (%d bytes, 1 MiB)", ErrFileTooLarge, MaxFileSize)
	}
	root, err := readDocument(data)
	if err != nil {
		return nil, err
	}
	var rep report
	items := rep.document(root)
	specs := make([]Spec, 0, len(items))
	type first struct{ index, line int }
	seen := make(map[string]first, len(items))
	for i, n := range items {
		t := decodeTask(n, i)
		rep.add(t.problems...)
		if name := t.spec.Name; name != "" {
			line := t.lineOf("name")
			if f, dup := seen[name]; dup {
				rep.add(located{line, &FieldError{name, "name",
					fmt.Errorf("duplicate task name (tasks #%d at line %d and #%d at line %d)", f.index+1, f.line, i+1, line)}})
			} else {
				seen[name] = first{i, line}
			}
		}
		if t.ok {
			specs = append(specs, t.spec)
		}
	}
	if err := rep.err(); err != nil {
		return nil, err
	}
	return specs, nil
}

// located is a problem of the file with the line it is on (0: none).
type located struct {
	line int
	err  error
}

// Error implements error.
func (l located) Error() string {
	if l.line == 0 {
		return l.err.Error()
	}
	return fmt.Sprintf("line %d: %v", l.line, l.err)
}

// Unwrap returns the problem without its line.
func (l located) Unwrap() error { return l.err }

// report collects the problems of a file.
type report struct{ problems []located }

func (r *report) add(p ...located) { r.problems = append(r.problems, p...) }

// err joins the problems, ordered by line.
func (r *report) err() error {
	slices.SortStableFunc(r.problems, func(a, b located) int { return a.line - b.line })
	errs := make([]error, len(r.problems))
	for i, p := range r.problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

var errEmpty = errors.New("empty task file: expected a top-level tasks: list")

// readDocument parses the file's single YAML document, checks its expanded
// size and returns its root.
func readDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errEmpty
		}
		return nil, syntaxError(err)
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err)
	default:
		return nil, located{more.Line, errors.New("a second YAML document: a task file holds one document")}
	}
	if err := checkSize(&doc); err != nil {
		return nil, err
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

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError turns a YAML parser error ("yaml: line 3: did not find ...")
// into a located problem without the package prefix.
func syntaxError(err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return located{line, fmt.Errorf("invalid YAML: %s", msg[len(m[0]):])}
	}
	return fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// checkSize counts the nodes of the document with every alias expanded
// (a merge key's value is an alias or a list of them, so merges count too)
// and refuses a document over MaxFileNodes, or an alias inside its own
// anchor.
func checkSize(doc *yaml.Node) error {
	n, err := countNodes(doc)
	if err != nil {
		return err
	}
	if n > MaxFileNodes {
		return fmt.Errorf("%w (%d nodes, aliases and merge keys counted as expanded)", ErrFileTooComplex, MaxFileNodes)
	}
	return nil
}

// countNodes returns the number of nodes of doc with every alias expanded,
// or MaxFileNodes+1 when there are more. It visits each node once: only
// an anchored node can be reached again (through an alias), and its
// expanded size is remembered.
func countNodes(doc *yaml.Node) (int, error) {
	c := nodeCounter{sizes: make(map[*yaml.Node]int), open: make(map[*yaml.Node]bool)}
	return c.count(doc)
}

type nodeCounter struct {
	sizes map[*yaml.Node]int  // expanded sizes of anchored nodes, capped at MaxFileNodes+1
	open  map[*yaml.Node]bool // anchored nodes being counted, to catch an alias inside its anchor
}

func (c *nodeCounter) count(n *yaml.Node) (int, error) {
	anchored := n.Anchor != ""
	if anchored {
		if s, ok := c.sizes[n]; ok {
			return s, nil
		}
		if c.open[n] {
			return 0, located{n.Line, fmt.Errorf("the anchor &%s contains an alias to itself", n.Anchor)}
		}
		c.open[n] = true
	}
	total := 1
	children := n.Content
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		children = []*yaml.Node{n.Alias}
	}
	for _, child := range children {
		s, err := c.count(child)
		if err != nil {
			return 0, err
		}
		if total += s; total > MaxFileNodes {
			total = MaxFileNodes + 1
			break
		}
	}
	if anchored {
		delete(c.open, n)
		c.sizes[n] = total
	}
	return total, nil
}

// document decodes the top level of the file and returns its task nodes.
func (r *report) document(root *yaml.Node) []*yaml.Node {
	if root.Kind != yaml.MappingNode {
		r.add(located{root.Line, fmt.Errorf("expected a mapping with a top-level tasks: list, got %s", describe(root))})
		return nil
	}
	var doc fileDocument
	d := newDecoder()
	d.mapping(root, reflect.ValueOf(&doc).Elem(), "", "top-level field")
	for _, p := range d.problems {
		var unknown *unknownFieldError
		if p.path != "" && !errors.As(p.err, &unknown) {
			p.err = fmt.Errorf("%s: %w", p.path, p.err)
		}
		r.add(located{p.line, p.err})
	}
	if doc.Tasks == nil && !d.failed["tasks"] {
		r.add(located{0, errors.New("no tasks: expected a top-level tasks: list")})
	}
	return doc.Tasks
}

// decodedTask is one task of a file, decoded and validated.
type decodedTask struct {
	spec     Spec
	ok       bool           // decoded and valid
	problems []located      // every problem of the task
	lines    map[string]int // line of each field's key ("": the task's line)
}

// lineOf returns the line of path, or of its closest enclosing field.
func (t *decodedTask) lineOf(path string) int {
	for {
		if l, ok := t.lines[path]; ok {
			return l
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return t.lines[""]
		}
		path = path[:i]
	}
}

// decodeTask decodes the task node n (the index-th of the file) into a
// Spec, normalizes and validates it, and collects every problem found with
// its line.
func decodeTask(n *yaml.Node, index int) *decodedTask {
	n = resolve(n)
	label := fmt.Sprintf("#%d", index+1)
	if n.Kind != yaml.MappingNode {
		return &decodedTask{problems: []located{{n.Line,
			fmt.Errorf("task %q: expected a mapping (name:, every:, request:, ...), got %s", label, describe(n))}}}
	}
	var ft fileTask
	d := newDecoder()
	d.lines[""] = n.Line
	d.mapping(n, reflect.ValueOf(&ft).Elem(), "", "field")
	t := &decodedTask{spec: ft.spec(), lines: d.lines}
	if t.spec.Name != "" {
		label = t.spec.Name
	}
	for _, p := range d.problems {
		t.problems = append(t.problems, located{p.line, &FieldError{label, p.path, p.err}})
	}
	t.spec.Normalize()
	if err := t.spec.Validate(); err != nil {
		for _, e := range leaves(err) {
			var fe *FieldError
			if !errors.As(e, &fe) {
				t.problems = append(t.problems, located{t.lines[""], fmt.Errorf("task %q: %w", label, e)})
				continue
			}
			if d.consequence(fe.Field) {
				continue
			}
			if fe.Task == "" {
				fe.Task = label
			}
			t.problems = append(t.problems, located{t.lineOf(fe.Field), e})
		}
	}
	t.ok = len(t.problems) == 0
	return t
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

// dependsOn lists, for a problem Spec.Validate reports on a field, the
// other fields whose refused value would cause it: a refused at leaves the
// task without a schedule, and its weekdays without an at.
var dependsOn = map[string][]string{
	"every|at|cron":   {"every", "at", "cron"},
	"weekdays":        {"at"},
	"paginate.result": {"request.result"},
}

// consequence reports whether a validation problem of path follows from a
// value that was refused while decoding (and was reported already).
func (d *decoder) consequence(path string) bool {
	for f := range d.failed {
		if path == f || strings.HasPrefix(path, f+".") || slices.Contains(dependsOn[path], f) {
			return true
		}
	}
	return false
}

// The schema of a task file: these types' yaml tags name the fields, and
// every leaf type decodes and checks its own value (UnmarshalYAML).

// fileDocument is the top level of a task file.
type fileDocument struct {
	Tasks taskList `yaml:"tasks"`
}

// fileTask is one task of a file.
type fileTask struct {
	Name           text          `yaml:"name"`
	Every          duration      `yaml:"every"`
	At             timeOfDay     `yaml:"at"`
	Weekdays       weekdays      `yaml:"weekdays"`
	Cron           text          `yaml:"cron"`
	Timezone       text          `yaml:"timezone"`
	RunOnStart     flag          `yaml:"run_on_start"`
	EnabledIf      Gate          `yaml:"enabled_if"`
	Misfire        Misfire       `yaml:"misfire"`
	MisfireGrace   duration      `yaml:"misfire_grace"`
	Overlap        Overlap       `yaml:"overlap"`
	Jitter         duration      `yaml:"jitter"`
	Timeout        duration      `yaml:"timeout"`
	RunTimeout     duration      `yaml:"run_timeout"`
	AllowSubsecond flag          `yaml:"allow_subsecond"`
	Request        *fileRequest  `yaml:"request"`
	Paginate       *filePaginate `yaml:"paginate"`
}

// fileRequest is a task's request: block.
type fileRequest struct {
	Service Service         `yaml:"service"`
	Method  text            `yaml:"method"`
	Path    text            `yaml:"path"`
	Auth    *flag           `yaml:"auth"` // nil: left out, true in files
	Body    jsonObject      `yaml:"body"`
	Query   map[string]text `yaml:"query"`
	Result  text            `yaml:"result"`
}

// filePaginate is a task's paginate: block.
type filePaginate struct {
	Mode        Mode      `yaml:"mode"`
	Size        pageSize  `yaml:"size"`
	SizeField   text      `yaml:"size_field"`
	OffsetField text      `yaml:"offset_field"`
	Result      text      `yaml:"result"`
	MaxPages    pageCount `yaml:"max_pages"`
}

// spec converts the decoded task to a Spec (not normalized yet).
func (t *fileTask) spec() Spec {
	s := Spec{
		Name:           string(t.Name),
		Every:          t.Every.d(),
		At:             string(t.At),
		Cron:           string(t.Cron),
		Timezone:       string(t.Timezone),
		RunOnStart:     bool(t.RunOnStart),
		EnabledIf:      t.EnabledIf,
		Misfire:        t.Misfire,
		MisfireGrace:   t.MisfireGrace.d(),
		Overlap:        t.Overlap,
		Jitter:         t.Jitter.d(),
		Timeout:        t.Timeout.d(),
		RunTimeout:     t.RunTimeout.d(),
		AllowSubsecond: bool(t.AllowSubsecond),
	}
	if len(t.Weekdays) > 0 {
		s.Weekdays = t.Weekdays
	}
	if r := t.Request; r != nil {
		s.Request = &Request{
			Service: r.Service,
			Method:  string(r.Method),
			Path:    string(r.Path),
			Auth:    r.Auth == nil || bool(*r.Auth),
			Body:    r.Body,
			Result:  string(r.Result),
		}
		if r.Query != nil {
			s.Request.Query = make(map[string]string, len(r.Query))
			for k, v := range r.Query {
				s.Request.Query[k] = string(v)
			}
		}
	}
	if p := t.Paginate; p != nil {
		s.Paginate = &Paginate{
			Mode:        p.Mode,
			Size:        int(p.Size),
			SizeField:   string(p.SizeField),
			OffsetField: string(p.OffsetField),
			Result:      string(p.Result),
			MaxPages:    int(p.MaxPages),
		}
	}
	return s
}

// schema is the field list of one schema struct, read from its yaml tags.
type schema struct {
	names []string       // in declaration order
	index map[string]int // name to struct field index
}

var schemas sync.Map // reflect.Type to *schema

func schemaOf(t reflect.Type) *schema {
	if s, ok := schemas.Load(t); ok {
		return s.(*schema)
	}
	s := &schema{index: make(map[string]int)}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		s.names = append(s.names, name)
		s.index[name] = i
	}
	schemas.Store(t, s)
	return s
}

// schemaFields returns the path of every field of a task ("name", ...,
// "request.service", ..., "paginate.max_pages"), in declaration order.
func schemaFields() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		s := schemaOf(t)
		for _, name := range s.names {
			out = append(out, prefix+name)
			ft := t.Field(s.index[name]).Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if isSchemaStruct(ft) {
				walk(ft, prefix+name+".")
			}
		}
	}
	walk(reflect.TypeFor[fileTask](), "")
	return out
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// isSchemaStruct reports whether t is a nested block of the schema
// (decoded field by field) rather than a leaf that decodes itself.
func isSchemaStruct(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(unmarshalerType)
}

// problem is one thing wrong with a field, found while decoding.
type problem struct {
	line int
	path string // the field ("" for the mapping itself)
	err  error
}

// decoder walks a YAML mapping into a schema struct, field by field, so
// that every problem is reported with its field and line and decoding goes
// on after one.
type decoder struct {
	problems []problem
	lines    map[string]int  // line of each field's key, by path
	failed   map[string]bool // fields whose value was refused
	listed   map[string]bool // mappings whose known fields an error listed
}

func newDecoder() *decoder {
	return &decoder{lines: make(map[string]int), failed: make(map[string]bool), listed: make(map[string]bool)}
}

func (d *decoder) fail(path string, line int, err error) {
	d.problems = append(d.problems, problem{line, path, err})
}

// refuse records that the value of path could not be decoded. An error
// that points at a line of its own (an item of a list) is reported there.
func (d *decoder) refuse(path string, line int, err error) {
	d.failed[path] = true
	for _, e := range leaves(err) {
		l := line
		var at *lineError
		if errors.As(e, &at) {
			l, e = at.line, at.err
		}
		d.fail(path, l, e)
	}
}

// mapping decodes the mapping n into the schema struct out. Fields are
// named prefix+key; noun names them in unknown-field errors.
func (d *decoder) mapping(n *yaml.Node, out reflect.Value, prefix, noun string) {
	s := schemaOf(out.Type())
	for _, f := range d.fields(n, prefix) {
		name := strings.TrimPrefix(f.path, prefix)
		i, ok := s.index[name]
		if !ok {
			// The known names are listed once per mapping.
			e := unknownField(noun, name, s.names)
			if d.listed[prefix] {
				e.known = nil
			}
			d.listed[prefix] = true
			d.fail(f.path, f.line, e)
			continue
		}
		d.lines[f.path] = f.line
		if isNull(f.value) {
			continue // null counts as left out
		}
		d.value(f.value, out.Field(i), f.path, f.line)
	}
}

// value decodes n into out, the field path whose key is on line. It
// reports whether out was set.
func (d *decoder) value(n *yaml.Node, out reflect.Value, path string, line int) bool {
	t := out.Type()
	switch {
	case t.Kind() == reflect.Pointer:
		v := reflect.New(t.Elem())
		if !d.value(n, v.Elem(), path, line) {
			return false
		}
		out.Set(v)
		return true
	case reflect.PointerTo(t).Implements(unmarshalerType):
		if err := out.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.refuse(path, line, err)
			return false
		}
		return true
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			names := schemaOf(t).names
			d.refuse(path, line, fmt.Errorf("want a mapping (%s:, %s:, ...), got %s", names[0], names[1], describe(n)))
			return false
		}
		d.mapping(n, out, path+".", "field")
		return true
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		if n.Kind != yaml.MappingNode {
			d.refuse(path, line, fmt.Errorf("want a mapping of names to values, got %s", describe(n)))
			return false
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for _, f := range d.fields(n, path+".") {
			d.lines[f.path] = f.line
			if isNull(f.value) {
				continue
			}
			v := reflect.New(t.Elem()).Elem()
			if d.value(f.value, v, f.path, f.line) {
				m.SetMapIndex(reflect.ValueOf(strings.TrimPrefix(f.path, path+".")).Convert(t.Key()), v)
			}
		}
		out.Set(m)
		return true
	}
	// Unreachable with the schema above (TestSchemaTypesDecode).
	d.refuse(path, line, fmt.Errorf("internal error: no decoder for %s", t))
	return false
}

// field is one key of a mapping node.
type field struct {
	path  string // key with the path of its parent, e.g. "request.path"
	line  int    // line of the key
	value *yaml.Node
}

// fields returns the keys of the mapping n, with merge keys (<<: *anchor)
// expanded: keys written in n win over merged ones, and earlier merged
// mappings over later ones. A key written twice and a bad merge are
// reported.
func (d *decoder) fields(n *yaml.Node, prefix string) []field {
	var out, merged []field
	firstLine := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			sources := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				sources = v.Content
			}
			for _, m := range sources {
				if m = resolve(m); m.Kind != yaml.MappingNode {
					d.fail(prefix+"<<", k.Line, fmt.Errorf("a merge key needs a mapping or a list of mappings, got %s", describe(m)))
					continue
				}
				merged = append(merged, d.fields(m, prefix)...)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(strings.TrimSuffix(prefix, "."), k.Line, fmt.Errorf("keys must be names, got %s", describe(k)))
			continue
		}
		path := prefix + k.Value
		if l, dup := firstLine[path]; dup {
			d.fail(path, k.Line, fmt.Errorf("given twice (first at line %d)", l))
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

// unknownFieldError is a key that is not in the schema.
type unknownFieldError struct {
	noun, name string
	suggestion string   // closest known name, if close enough
	known      []string // the known names, to list (nil: listed already)
}

func (e *unknownFieldError) Error() string {
	switch {
	case e.suggestion != "":
		return fmt.Sprintf("unknown %s %q (did you mean %s?)", e.noun, e.name, e.suggestion)
	case e.known == nil:
		return fmt.Sprintf("unknown %s %q, not found in the task schema", e.noun, e.name)
	}
	return fmt.Sprintf("unknown %s %q, not found in the task schema (known: %s)", e.noun, e.name, strings.Join(e.known, ", "))
}

func unknownField(noun, name string, known []string) *unknownFieldError {
	return &unknownFieldError{noun: noun, name: name, suggestion: closest(name, known), known: known}
}

// closest returns the known name nearest to name by edit distance (a
// transposition counts as one edit), if it is close enough to be a typo:
// at most one edit per four letters, or one name a prefix of the other.
func closest(name string, known []string) string {
	best, bestDist := "", len(name)+1
	for _, k := range known {
		if d := edlib.OSADamerauLevenshteinDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist <= max(1, (len(name)+2)/4) {
		return best
	}
	if len(name) >= 4 {
		for _, k := range known {
			if strings.HasPrefix(k, name) || strings.HasPrefix(name, k) {
				return k
			}
		}
	}
	return ""
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
		if isNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

// lineError places an error on a line other than its field's key: an item
// of a list.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// yamlError drops the "yaml: unmarshal errors:" header of a decode error.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return withoutPrefix(err, "yaml: ")
}

// The leaf types of the schema. Each UnmarshalYAML is handed the resolved
// value node of a field that is present and not null, and returns an error
// naming the rejected value.
var (
	_ yaml.Unmarshaler = (*text)(nil)
	_ yaml.Unmarshaler = (*flag)(nil)
	_ yaml.Unmarshaler = (*duration)(nil)
	_ yaml.Unmarshaler = (*timeOfDay)(nil)
	_ yaml.Unmarshaler = (*weekdays)(nil)
	_ yaml.Unmarshaler = (*jsonObject)(nil)
	_ yaml.Unmarshaler = (*pageSize)(nil)
	_ yaml.Unmarshaler = (*pageCount)(nil)
	_ yaml.Unmarshaler = (*taskList)(nil)
	_ yaml.Unmarshaler = (*Gate)(nil)
	_ yaml.Unmarshaler = (*Service)(nil)
	_ yaml.Unmarshaler = (*Mode)(nil)
	_ yaml.Unmarshaler = (*Misfire)(nil)
	_ yaml.Unmarshaler = (*Overlap)(nil)
)

// scalar returns the text of a single value.
func scalar(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want a single value, got %s", describe(n))
	}
	return n.Value, nil
}

// text is a single value, kept as written.
type text string

func (t *text) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n)
	if err != nil {
		return err
	}
	*t = text(s)
	return nil
}

// flag is true or false (the YAML 1.1 spellings yes, no, on, off too).
type flag bool

func (f *flag) UnmarshalYAML(n *yaml.Node) error {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		return fmt.Errorf("want true or false, got %s", describe(n))
	}
	*f = flag(b)
	return nil
}

// duration is a positive Go duration ("90s", "10m", "1h30m").
type duration time.Duration

func (d duration) d() time.Duration { return time.Duration(d) }

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 90s, 10m or 1h, got %s", describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q (use Go syntax such as 90s, 10m, 1h)", n.Value)
	}
	if v <= 0 {
		return fmt.Errorf("duration %q must be positive", n.Value)
	}
	*d = duration(v)
	return nil
}

// timeOfDay is a wall-clock time, "HH:MM" or "HH:MM:SS", kept as written.
type timeOfDay string

func (t *timeOfDay) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n)
	if err != nil {
		return err
	}
	if _, err := schedule.ParseTimeOfDay(s); err != nil {
		return withoutPrefix(err, "schedule: ")
	}
	*t = timeOfDay(s)
	return nil
}

// weekdays is a list of day names (monday or mon, in any case). Each bad
// item is reported on its own line.
type weekdays []time.Weekday

func (w *weekdays) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("want a list of days such as [monday, friday], got %s", describe(n))
	}
	var days []time.Weekday
	var errs []error
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode {
			errs = append(errs, &lineError{item.Line, fmt.Errorf("want a day name, got %s", describe(item))})
			continue
		}
		day, err := schedule.ParseWeekday(item.Value)
		if err != nil {
			errs = append(errs, &lineError{item.Line, withoutPrefix(err, "schedule: ")})
			continue
		}
		days = append(days, day)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*w = days
	return nil
}

// jsonObject is request.body: free-form fields that must encode as JSON.
type jsonObject map[string]any

func (o *jsonObject) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("want a mapping of JSON fields, got %s", describe(n))
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return yamlError(err)
	}
	if _, err := json.Marshal(m); err != nil {
		return fmt.Errorf("cannot be sent as JSON: %w", withoutPrefix(err, "json: "))
	}
	*o = m
	return nil
}

// wholeNumber decodes an integer. The tag check matters: yaml.v3 would
// silently truncate 2.5 to 2.
func wholeNumber(n *yaml.Node) (int, error) {
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		return 0, fmt.Errorf("want a whole number, got %s", describe(n))
	}
	return v, nil
}

// pageSize is paginate.size: a whole number, and 0 is a mistake rather
// than a request for the default (leave the field out for that).
type pageSize int

func (p *pageSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := wholeNumber(n)
	if err != nil {
		return err
	}
	if v == 0 {
		return fmt.Errorf("0 must be between 1 and %d (leave size out for the default, %d)", MaxPageSize, DefaultPageSize)
	}
	*p = pageSize(v)
	return nil
}

// pageCount is paginate.max_pages: a whole number, and 0 is a mistake.
type pageCount int

func (p *pageCount) UnmarshalYAML(n *yaml.Node) error {
	v, err := wholeNumber(n)
	if err != nil {
		return err
	}
	if v == 0 {
		return fmt.Errorf("0 must be at least 1 (leave max_pages out for the default, %d)", DefaultMaxPages)
	}
	*p = pageCount(v)
	return nil
}

// taskList is the top-level tasks: list, one node per task, decoded one by
// one.
type taskList []*yaml.Node

func (l *taskList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("expected a list of tasks, got %s", describe(n))
	}
	if len(n.Content) == 0 {
		return errors.New("the list is empty")
	}
	*l = n.Content
	return nil
}

// enum decodes the single value n into out, once check accepts it.
func enum[T ~string](n *yaml.Node, out *T, check func(T) error) error {
	s, err := scalar(n)
	if err != nil {
		return err
	}
	if err := check(T(s)); err != nil {
		return err
	}
	*out = T(s)
	return nil
}

// orDefault accepts the empty value (the default) besides what check accepts.
func orDefault[T ~string](check func(T) error) func(T) error {
	return func(v T) error {
		if v == "" {
			return nil
		}
		return check(v)
	}
}

// UnmarshalYAML decodes a gate: email or push (empty: none).
func (g *Gate) UnmarshalYAML(n *yaml.Node) error { return enum(n, g, Gate.check) }

// UnmarshalYAML decodes a service: backend or background.
func (s *Service) UnmarshalYAML(n *yaml.Node) error { return enum(n, s, Service.check) }

// UnmarshalYAML decodes a pagination mode: offset or drain.
func (m *Mode) UnmarshalYAML(n *yaml.Node) error { return enum(n, m, Mode.check) }

// UnmarshalYAML decodes a misfire policy: skip or once (empty: the
// default, skip).
func (m *Misfire) UnmarshalYAML(n *yaml.Node) error { return enum(n, m, orDefault(Misfire.check)) }

// UnmarshalYAML decodes an overlap policy: skip, queue_one or allow (empty:
// the default, skip).
func (o *Overlap) UnmarshalYAML(n *yaml.Node) error { return enum(n, o, orDefault(Overlap.check)) }
