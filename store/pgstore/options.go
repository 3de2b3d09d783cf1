package pgstore

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// Defaults of the options.
const (
	// DefaultSchema is the schema the store keeps its tables in.
	DefaultSchema = "mojodex_scheduler"
	// DefaultOperationTimeout bounds every call of the store.
	DefaultOperationTimeout = 5 * time.Second
	// DefaultPoolSize is the most connections the store's pool opens (the
	// listener of Changes has one more of its own).
	DefaultPoolSize = 4
	// DefaultPollInterval is the longest time between two values on
	// Changes when nothing is notified.
	DefaultPollInterval = 15 * time.Second
)

// migrateTimeout bounds Open's migration step (waiting for another
// replica's migration included).
const migrateTimeout = time.Minute

// Option configures a Store. A bad value makes Open fail with an error
// naming the option.
type Option func(*settings) error

type settings struct {
	schema     string
	log        zerolog.Logger
	opTimeout  time.Duration
	stmt       time.Duration // 0: derived from opTimeout
	poolSize   int32
	poll       time.Duration
	poolConfig func(*pgxpool.Config)
}

func defaults() settings {
	return settings{
		schema:    DefaultSchema,
		log:       zerolog.Nop(),
		opTimeout: DefaultOperationTimeout,
		poolSize:  DefaultPoolSize,
		poll:      DefaultPollInterval,
	}
}

// newSettings applies opts over the defaults; its error names op and the
// bad option.
func newSettings(op string, opts []Option) (settings, error) {
	set := defaults()
	for _, o := range opts {
		if err := o(&set); err != nil {
			return settings{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	return set, nil
}

// statementTimeout is the server-side statement_timeout: the given one, or
// a second less than the operation timeout (four fifths of it when that is
// under 5 s), so that the server gives up first, with a clear error, and
// the connection stays usable.
func (s settings) statementTimeout() time.Duration {
	switch {
	case s.stmt > 0:
		return s.stmt
	case s.opTimeout >= 5*time.Second:
		return s.opTimeout - time.Second
	}
	return s.opTimeout * 4 / 5
}

// schemaName is what a schema name may be: what MOJODEX_SCHEDULER_PG_SCHEMA
// accepts (lower case, so that it needs no quoting in psql).
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// checkSchema checks a schema name.
func checkSchema(name string) error {
	switch {
	case !schemaName.MatchString(name):
		return fmt.Errorf("schema %q: lower-case letters, digits and _, not starting with a digit, at most 63 characters", name)
	case strings.HasPrefix(name, "pg_") || name == "information_schema":
		return fmt.Errorf("schema %q: the name is reserved by PostgreSQL", name)
	}
	return nil
}

// WithSchema sets the schema of the store's tables (default
// mojodex_scheduler), created if missing. Several schedulers (or
// environments) can share a database in schemas of their own.
func WithSchema(name string) Option {
	return func(s *settings) error {
		if err := checkSchema(name); err != nil {
			return fmt.Errorf("WithSchema: %w", err)
		}
		s.schema = name
		return nil
	}
}

// WithLogger sets the logger (default: none). The store logs migrations,
// retried commits and the listener's connection losses; never the
// password.
func WithLogger(l zerolog.Logger) Option {
	return func(s *settings) error {
		s.log = l
		return nil
	}
}

// WithOperationTimeout bounds every call of the store, round trips and
// waits for a connection included (default 5 s): a stalled or unreachable
// server makes calls fail within it, never hang.
func WithOperationTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d < 10*time.Millisecond || d > 10*time.Minute {
			return fmt.Errorf("WithOperationTimeout: %s is out of range (10ms to 10m)", d)
		}
		s.opTimeout = d
		return nil
	}
}

// WithStatementTimeout sets PostgreSQL's statement_timeout on the store's
// connections (default: the operation timeout less a second, or four
// fifths of it under 5 s). It must not exceed the operation timeout.
func WithStatementTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d < time.Millisecond {
			return fmt.Errorf("WithStatementTimeout: %s is below 1ms", d)
		}
		s.stmt = d
		return nil
	}
}

// WithPoolSize sets the most connections of the pool (default 4). Commits
// go through one Committer and take one connection at a time; the others
// serve loads, renewals, take-overs and heartbeats.
func WithPoolSize(n int) Option {
	return func(s *settings) error {
		if n < 1 || n > 1000 {
			return fmt.Errorf("WithPoolSize: %d is out of range (1 to 1000)", n)
		}
		s.poolSize = int32(n)
		return nil
	}
}

// WithPollInterval sets the longest time between two values on a Changes
// channel when nothing is notified (default 15 s): the safety net for
// notifications lost in ways the listener cannot see.
func WithPollInterval(d time.Duration) Option {
	return func(s *settings) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("WithPollInterval: %s is below 10ms", d)
		}
		s.poll = d
		return nil
	}
}

// WithPoolConfig calls f on the connection pool's configuration after the
// store has set it up and before it connects: for a tracer, a dialer or
// TLS settings that a connection URL cannot express. The same connection
// settings serve the listener of Changes.
func WithPoolConfig(f func(*pgxpool.Config)) Option {
	return func(s *settings) error {
		if f == nil {
			return errors.New("WithPoolConfig: nil function")
		}
		s.poolConfig = f
		return nil
	}
}
