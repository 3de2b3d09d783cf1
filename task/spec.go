// Package task defines what a scheduled task is: when it fires, what it
// calls, how it paginates and which backend probe gates it. Specs come from
// YAML task files (including the embedded Mojodex defaults) or are built in
// code by an embedding program.
package task

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mojodex/mojodex-scheduler/schedule"
)

// Gate names a backend probe that must report a configured service before a
// task may run.
type Gate string

// The gates Mojodex exposes.
const (
	// GateNone means the task always runs.
	GateNone Gate = ""
	// GateEmail runs the task only while GET /is_email_service_configured
	// answers {"is_configured": true}.
	GateEmail Gate = "email"
	// GatePush runs the task only while GET /is_push_notif_service_configured
	// answers {"is_configured": true}.
	GatePush Gate = "push"
)

// ProbePath returns the backend path of the gate's probe ("" for GateNone).
func (g Gate) ProbePath() string {
	switch g {
	case GateEmail:
		return "/is_email_service_configured"
	case GatePush:
		return "/is_push_notif_service_configured"
	}
	return ""
}

// Service names the Mojodex service a task calls.
type Service string

// The Mojodex services.
const (
	// ServiceBackend is the Mojodex backend (MOJODEX_BACKEND_URI).
	ServiceBackend Service = "backend"
	// ServiceBackground is the Mojodex background service (BACKGROUND_BACKEND_URI).
	ServiceBackground Service = "background"
)

// Services lists the services, in a stable order.
var Services = []Service{ServiceBackend, ServiceBackground}

// Mode is a pagination mode.
type Mode string

// Pagination modes.
const (
	// ModeOffset sends offset, offset+size, ... while the returned list is full.
	ModeOffset Mode = "offset"
	// ModeDrain sends the same body again while the returned list is full:
	// the backend removes processed rows from the result.
	ModeDrain Mode = "drain"
)

// Defaults applied to specs that leave a field at its zero value.
const (
	DefaultPageSize = 50
	DefaultMaxPages = 100
	MaxPageSize     = 50 // the Mojodex services clamp every batch to 50
	DefaultOffset   = "offset"
	DefaultTimezone = "UTC"
	// MinPeriod is the shortest every: period accepted without
	// AllowSubsecond; MinSubsecondPeriod the shortest with it.
	MinPeriod          = time.Second
	MinSubsecondPeriod = time.Millisecond
	// DefaultJobRunTimeout bounds a Job run that sets neither RunTimeout
	// nor Timeout.
	DefaultJobRunTimeout = time.Hour
	// MinTimeout and MaxTimeout bound timeout and run_timeout; MaxJitter
	// bounds jitter (an every: task's jitter is also below its period);
	// MaxMaxPages bounds paginate.max_pages.
	MinTimeout  = time.Millisecond
	MaxTimeout  = 24 * time.Hour
	MaxJitter   = 24 * time.Hour
	MaxMaxPages = 10_000
)

// Misfire says what happens to slots missed while the scheduler was down.
type Misfire string

// Misfire policies.
const (
	// MisfireSkip waits for the next slot (the default).
	MisfireSkip Misfire = "skip"
	// MisfireOnce fires once at start for the most recent missed slot, if it
	// is no older than MisfireGrace.
	MisfireOnce Misfire = "once"
)

// Overlap says what happens to a fire that comes while the previous run of
// the same task is still in progress.
type Overlap string

// Overlap policies.
const (
	// OverlapSkip drops the fire (the default).
	OverlapSkip Overlap = "skip"
	// OverlapQueueOne remembers one fire and runs it when the run in
	// progress ends; further fires meanwhile are dropped.
	OverlapQueueOne Overlap = "queue_one"
	// OverlapAllow starts another run alongside.
	OverlapAllow Overlap = "allow"
)

// Request describes the HTTP call a task makes on every page.
type Request struct {
	// Service is the Mojodex service called: ServiceBackend or ServiceBackground.
	Service Service
	// Method is the HTTP method (POST when empty).
	Method string
	// Path is the path on the service, starting with "/".
	Path string
	// Auth sends MOJODEX_SCHEDULER_SECRET as the Authorization header.
	Auth bool
	// Body holds the JSON fields sent besides datetime and pagination fields.
	Body map[string]any
	// Query holds URL query parameters.
	Query map[string]string
	// Result is the key of the list in the reply, used to count items and to
	// check the reply's shape. Optional for tasks without pagination.
	Result string
}

// Paginate describes how a task pages through a batch endpoint.
type Paginate struct {
	// Mode is ModeOffset or ModeDrain.
	Mode Mode
	// Size is the page size sent in SizeField (default 50, at most 50).
	Size int
	// SizeField is the body field carrying the page size.
	SizeField string
	// OffsetField is the body field carrying the offset (offset mode, default "offset").
	OffsetField string
	// Result is the key of the list in the reply; a full list asks for the next page.
	Result string
	// MaxPages bounds the pages of one run (default 100).
	MaxPages int
}

// JobFunc is an in-process job run by a task instead of an HTTP request.
// It must return when ctx is cancelled. Items may be reported through the
// returned count; a non-nil error marks the run failed.
type JobFunc func(ctx context.Context) (items int, err error)

// Spec is one task. Exactly one of Every, At and Cron is set, and exactly one
// of Request and Job.
type Spec struct {
	// Name identifies the task: lower-case kebab case, unique in a set.
	Name string
	// Every fires at a fixed rate: one period after start, then every period.
	Every time.Duration
	// At fires daily at "HH:MM" or "HH:MM:SS" local time in Timezone.
	At string
	// Weekdays restricts At (or nothing else) to these days: weekly firing.
	Weekdays []time.Weekday
	// Cron fires on a 5- or 6-field cron expression in Timezone.
	Cron string
	// Timezone is an IANA name for At and Cron (default "UTC").
	Timezone string
	// RunOnStart also fires once as soon as the scheduler starts.
	RunOnStart bool
	// EnabledIf gates the task on a backend probe.
	EnabledIf Gate
	// Misfire is the policy for slots missed while the scheduler was down
	// (default MisfireSkip).
	Misfire Misfire
	// MisfireGrace bounds how old a missed slot may be to fire under
	// MisfireOnce (0: no bound).
	MisfireGrace time.Duration
	// Overlap is the policy for a fire during a run (default OverlapSkip).
	Overlap Overlap
	// Jitter, when set, delays every fire of the task by a fixed amount
	// derived from its name, below Jitter: the same on every run and every
	// restart, different between tasks, to spread load.
	Jitter time.Duration
	// Timeout bounds each HTTP attempt of this task (default: the API
	// client's timeout), or a whole Job run.
	Timeout time.Duration
	// RunTimeout bounds a whole run, every page and retry included: past
	// it the run is recorded failed ("deadline exceeded"), at most a second
	// later if its executor does not end it first, and the next slot fires
	// as usual. Zero derives it (see RunDeadline).
	RunTimeout time.Duration
	// AllowSubsecond accepts an every: period shorter than MinPeriod (down
	// to MinSubsecondPeriod). Without it such a period is refused, since it
	// is most often a typo (10ms for 10m).
	AllowSubsecond bool
	// Request is the HTTP call of an HTTP task.
	Request *Request
	// Paginate, when set, makes the task page through a batch endpoint.
	Paginate *Paginate
	// Job is the function of an in-process task (embedding only).
	Job JobFunc
}

var nameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// FieldError reports an invalid field of a task.
type FieldError struct {
	Task  string // task name, or "#N" when the name itself is missing
	Field string // field path, e.g. "paginate.size"
	Err   error
}

// Error implements error.
func (e *FieldError) Error() string {
	return fmt.Sprintf("task %q: field %s: %v", e.Task, e.Field, e.Err)
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// Location returns the task's time zone.
func (s *Spec) Location() (*time.Location, error) {
	tz := s.Timezone
	if tz == "" {
		tz = DefaultTimezone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, &zoneError{tz, err}
	}
	return loc, nil
}

// zoneError is a time zone that could not be loaded. Its message names the
// zone once (time.LoadLocation's own message repeats it).
type zoneError struct {
	name string
	err  error
}

func (e *zoneError) Error() string {
	return fmt.Sprintf("unknown time zone %q (want an IANA name such as Europe/Paris)", e.name)
}

func (e *zoneError) Unwrap() error { return e.err }

// Schedule builds the task's schedule. anchor is the start of fixed-rate
// schedules (their first slot is anchor+Every). It reports every problem
// of the schedule fields, joined, each a *FieldError naming its field: not
// exactly one of Every, At and Cron ("every|at|cron"), a bad period, time
// of day, weekday, time zone or cron expression, weekdays without At, a
// time zone with Every.
func (s *Spec) Schedule(anchor time.Time) (schedule.Schedule, error) {
	var errs []error
	bad := func(field string, err error) {
		errs = append(errs, &FieldError{s.Name, field, err})
	}
	set := 0
	for _, b := range []bool{s.Every != 0, s.At != "", s.Cron != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		bad("every|at|cron", errors.New("exactly one of every, at and cron must be set"))
	}
	if s.Every < 0 {
		bad("every", fmt.Errorf("%s must be positive", s.Every))
	}
	if len(s.Weekdays) > 0 {
		if s.At == "" {
			bad("weekdays", errors.New("weekdays needs at"))
		}
		for _, d := range s.Weekdays {
			if d < time.Sunday || d > time.Saturday {
				bad("weekdays", fmt.Errorf("weekday %d out of range 0 (Sunday) to 6 (Saturday)", int(d)))
			}
		}
	}
	loc := time.UTC
	if s.Timezone != "" {
		if s.Every != 0 {
			bad("timezone", errors.New("timezone applies to at and cron only"))
		} else if l, err := s.Location(); err != nil {
			bad("timezone", err)
		} else {
			loc = l
		}
	}
	var tod schedule.TimeOfDay
	if s.At != "" {
		var err error
		if tod, err = schedule.ParseTimeOfDay(s.At); err != nil {
			bad("at", withoutPrefix(err, "schedule: "))
		}
	}
	var cron schedule.Schedule
	if s.Cron != "" {
		var err error
		// With a bad time zone the expression is still checked, in UTC.
		if cron, err = schedule.Cron(s.Cron, loc); err != nil {
			bad("cron", withoutPrefix(err, "schedule: "))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	switch {
	case s.Every != 0:
		sc, err := schedule.Every(s.Every, anchor)
		if err != nil {
			return nil, &FieldError{s.Name, "every", withoutPrefix(err, "schedule: ")}
		}
		return sc, nil
	case s.At != "":
		sc, err := schedule.Daily(tod, s.Weekdays, loc)
		if err != nil {
			return nil, &FieldError{s.Name, "at", withoutPrefix(err, "schedule: ")}
		}
		return sc, nil
	default:
		return cron, nil
	}
}

// withoutPrefix presents err without a package prefix ("schedule: "),
// which tells an operator nothing; the original stays in the chain.
func withoutPrefix(err error, prefix string) error {
	if msg, ok := strings.CutPrefix(err.Error(), prefix); ok {
		return &trimmedError{msg, err}
	}
	return err
}

type trimmedError struct {
	msg string
	err error
}

func (e *trimmedError) Error() string { return e.msg }
func (e *trimmedError) Unwrap() error { return e.err }

// Normalize fills defaults in place (misfire and overlap policies, method,
// page size, offset field, max pages, result key) and returns the spec for chaining.
func (s *Spec) Normalize() *Spec {
	if s.Misfire == "" {
		s.Misfire = MisfireSkip
	}
	if s.Overlap == "" {
		s.Overlap = OverlapSkip
	}
	if r := s.Request; r != nil {
		if r.Method == "" {
			r.Method = http.MethodPost
		}
		r.Method = strings.ToUpper(r.Method)
	}
	if p := s.Paginate; p != nil {
		if p.Size == 0 {
			p.Size = DefaultPageSize
		}
		if p.MaxPages == 0 {
			p.MaxPages = DefaultMaxPages
		}
		if p.Mode == ModeOffset && p.OffsetField == "" {
			p.OffsetField = DefaultOffset
		}
		if p.Result == "" && s.Request != nil {
			p.Result = s.Request.Result
		}
	}
	return s
}

// Validate checks one spec (after Normalize) and returns every problem found,
// joined. It needs no network and no clock.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, &FieldError{s.Name, field, fmt.Errorf(format, args...)})
	}
	if s.Name == "" {
		bad("name", "is required")
	} else if !nameRE.MatchString(s.Name) {
		bad("name", "%q must be lower-case kebab case (e.g. extract-todos)", s.Name)
	}
	// Schedule also rejects a negative Every.
	if _, err := s.Schedule(time.Unix(0, 0)); err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, j.Unwrap()...)
		} else {
			errs = append(errs, err)
		}
	}
	if err := s.EnabledIf.check(); err != nil {
		errs = append(errs, &FieldError{s.Name, "enabled_if", err})
	}
	if s.Every > 0 {
		switch {
		case s.AllowSubsecond && s.Every < MinSubsecondPeriod:
			bad("every", "%s is shorter than %s", s.Every, MinSubsecondPeriod)
		case !s.AllowSubsecond && s.Every < MinPeriod:
			bad("every", "%s is shorter than %s (a typo of a longer unit? set allow_subsecond: true to fire this often)", s.Every, MinPeriod)
		}
	}
	if s.Timeout < 0 {
		bad("timeout", "%s must be positive", s.Timeout)
	} else if s.Timeout > 0 && (s.Timeout < MinTimeout || s.Timeout > MaxTimeout) {
		bad("timeout", "%s is out of range (1ms to 24h)", s.Timeout)
	}
	if s.RunTimeout < 0 {
		bad("run_timeout", "%s must be positive", s.RunTimeout)
	} else if s.RunTimeout > 0 && s.RunTimeout < MinTimeout {
		bad("run_timeout", "%s is shorter than 1ms", s.RunTimeout)
	} else if s.RunTimeout > MaxTimeout {
		bad("run_timeout", "%s is out of range (1ms to 24h)", s.RunTimeout)
	}
	if err := s.Misfire.check(); err != nil {
		errs = append(errs, &FieldError{s.Name, "misfire", err})
	}
	if s.MisfireGrace < 0 {
		bad("misfire_grace", "%s must be positive", s.MisfireGrace)
	}
	if err := s.Overlap.check(); err != nil {
		errs = append(errs, &FieldError{s.Name, "overlap", err})
	}
	if s.Jitter < 0 {
		bad("jitter", "%s must be positive", s.Jitter)
	} else if s.Every > 0 && s.Jitter >= s.Every {
		bad("jitter", "%s must be shorter than the period (every: %s)", s.Jitter, s.Every)
	} else if s.Jitter > MaxJitter {
		bad("jitter", "%s is longer than 24h", s.Jitter)
	}
	switch {
	case s.Request == nil && s.Job == nil:
		bad("request", "is required")
	case s.Request != nil && s.Job != nil:
		bad("request", "a task has either a request or a job, not both")
	}
	if s.Job != nil && s.EnabledIf != GateNone {
		bad("enabled_if", "gates apply to HTTP tasks only")
	}
	if s.Job != nil && s.Paginate != nil {
		bad("paginate", "applies to HTTP tasks only")
	}
	if r := s.Request; r != nil {
		if err := r.Service.check(); err != nil {
			errs = append(errs, &FieldError{s.Name, "request.service", err})
		}
		switch r.Method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			bad("request.method", "%q is not one of GET, POST, PUT, PATCH, DELETE", r.Method)
		}
		if !strings.HasPrefix(r.Path, "/") {
			bad("request.path", "%q must start with /", r.Path)
		}
		if _, ok := r.Body["datetime"]; ok {
			bad("request.body.datetime", "is set by the scheduler on every call")
		}
	}
	if p := s.Paginate; p != nil {
		if err := p.Mode.check(); err != nil {
			errs = append(errs, &FieldError{s.Name, "paginate.mode", err})
		}
		if p.Size < 1 || p.Size > MaxPageSize {
			bad("paginate.size", "%d must be between 1 and %d (the services clamp batches to %d)", p.Size, MaxPageSize, MaxPageSize)
		}
		if p.SizeField == "" {
			bad("paginate.size_field", "is required")
		}
		if p.Result == "" {
			bad("paginate.result", "is required")
		}
		if p.MaxPages < 1 {
			bad("paginate.max_pages", "%d must be at least 1", p.MaxPages)
		} else if p.MaxPages > MaxMaxPages {
			bad("paginate.max_pages", "%d is out of range (1 to %d)", p.MaxPages, MaxMaxPages)
		}
		if p.Mode == ModeDrain && p.OffsetField != "" {
			bad("paginate.offset_field", "applies to offset mode only")
		}
		if s.Request != nil && s.Request.Method == http.MethodGet {
			bad("paginate", "needs a request with a body (not GET)")
		}
	}
	return errors.Join(errs...)
}

// oneOf reports whether v is one of values, listing them when it is not.
func oneOf[T ~string](v T, values ...T) error {
	if slices.Contains(values, v) {
		return nil
	}
	names := make([]string, len(values))
	for i, w := range values {
		names[i] = string(w)
	}
	return fmt.Errorf("%q is not one of %s", string(v), strings.Join(names, ", "))
}

// check reports whether g is GateNone or a known gate.
func (g Gate) check() error {
	if g == GateNone {
		return nil
	}
	return oneOf(g, GateEmail, GatePush)
}

// check reports whether s is a known service.
func (s Service) check() error {
	if s == "" {
		return errors.New("is required (backend or background)")
	}
	return oneOf(s, Services...)
}

// check reports whether m is a known pagination mode.
func (m Mode) check() error { return oneOf(m, ModeOffset, ModeDrain) }

// check reports whether m is a known misfire policy.
func (m Misfire) check() error { return oneOf(m, MisfireSkip, MisfireOnce) }

// check reports whether o is a known overlap policy.
func (o Overlap) check() error { return oneOf(o, OverlapSkip, OverlapQueueOne, OverlapAllow) }

// ValidateSet normalizes and validates every spec and rejects duplicate names.
func ValidateSet(specs []Spec) error {
	var errs []error
	seen := make(map[string]int, len(specs))
	for i := range specs {
		s := &specs[i]
		s.Normalize()
		if err := s.Validate(); err != nil {
			if s.Name == "" {
				labelUnnamed(err, fmt.Sprintf("#%d", i+1))
			}
			errs = append(errs, err)
		}
		if s.Name == "" {
			continue
		}
		if j, dup := seen[s.Name]; dup {
			errs = append(errs, &FieldError{s.Name, "name", fmt.Errorf("duplicate task name (tasks #%d and #%d)", j+1, i+1)})
		}
		seen[s.Name] = i
	}
	return errors.Join(errs...)
}

// labelUnnamed sets the Task of the FieldErrors in err that have none.
func labelUnnamed(err error, label string) {
	switch e := err.(type) {
	case *FieldError:
		if e.Task == "" {
			e.Task = label
		}
	case interface{ Unwrap() []error }:
		for _, c := range e.Unwrap() {
			labelUnnamed(c, label)
		}
	}
}

// JitterDelay returns the task's fixed fire delay: a value below Jitter
// derived from the name (FNV-1a), so it is the same on every run and every
// restart.
func (s *Spec) JitterDelay() time.Duration {
	if s.Jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(s.Name))
	return time.Duration(h.Sum64() % uint64(s.Jitter))
}

// maxDerivedRunTimeout caps the run timeout RunDeadline derives.
const maxDerivedRunTimeout = 24 * time.Hour

// RunDeadline returns how long one run of the task may take in all:
// RunTimeout when it is set; for a Job, Timeout or DefaultJobRunTimeout;
// for an HTTP task, long enough for every page to use every attempt up to
// its timeout and to wait the longest backoff between attempts, plus a
// minute for the rate limiter and the queue, at most 24h. attemptTimeout,
// attempts and backoffMax are the API client's (a task's own Timeout
// overrides attemptTimeout).
func (s *Spec) RunDeadline(attemptTimeout time.Duration, attempts int, backoffMax time.Duration) time.Duration {
	switch {
	case s.RunTimeout > 0:
		return s.RunTimeout
	case s.Job != nil && s.Timeout > 0:
		return s.Timeout
	case s.Job != nil:
		return DefaultJobRunTimeout
	}
	if s.Timeout > 0 {
		attemptTimeout = s.Timeout
	}
	attempts = max(attempts, 1)
	pages := 1
	if s.Paginate != nil {
		pages = max(s.Paginate.MaxPages, 1)
	}
	perPage := time.Duration(attempts)*attemptTimeout + time.Duration(attempts-1)*backoffMax
	if perPage <= 0 || perPage > maxDerivedRunTimeout/time.Duration(pages) {
		return maxDerivedRunTimeout
	}
	return min(time.Duration(pages)*perPage+time.Minute, maxDerivedRunTimeout)
}
