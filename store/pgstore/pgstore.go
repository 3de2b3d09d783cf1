// Package pgstore keeps the scheduler's state in PostgreSQL, shared by
// the replicas of the scheduler: it implements store.Shared (and so
// store.Store) with pgx.
//
// The store lives in a schema of its own (mojodex_scheduler by default,
// created if missing), in tables named scheduler_*, so that it can share
// Mojodex's database. Open brings the schema up to SchemaVersion under an
// advisory lock (replicas starting together do not race) and refuses a
// newer one; Migrate does it ahead of time.
//
// Commit sends a whole Batch as one pipelined pgx.Batch, BEGIN to COMMIT:
// one round trip and one transaction, each list of the batch one statement
// over arrays (unnest), whatever the number of tasks. The database is the
// arbiter of claims: its clock judges early claims, the rows of the tasks
// a commit touches are locked (in name order, so concurrent commits never
// deadlock) before a claim reads the last claimed slot, the claim's UPDATE
// re-checks that slot and the primary key of the runs in progress (task,
// slot) is a second guard: concurrent replicas claiming a slot under Read
// Committed produce exactly one winner. Checkpoints and runs of a run taken
// over are fenced by (owner, epoch).
//
// Every call is bounded by the operation timeout (WithOperationTimeout,
// default 5 s; statement_timeout on the server a second less), so a stalled
// or unreachable server makes calls fail, never hang. Errors name the
// operation and never hold the connection's password.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/mojodex/mojodex-scheduler/store"
)

// Store is a store.Shared in PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	connCfg   *pgx.ConnConfig // the listener's connections
	schema    string
	channel   string
	q         queries
	log       zerolog.Logger
	opTimeout time.Duration
	poll      time.Duration
	secrets   []string
	from      int

	ctx       context.Context // canceled by Close: ends calls in flight and listeners
	cancel    context.CancelFunc
	closed    atomic.Bool
	lmu       sync.Mutex // orders Changes' listeners.Add before Close's Wait
	listeners sync.WaitGroup
}

var _ store.Shared = (*Store)(nil)

// Open connects to the database at dsn (a postgres:// or postgresql://
// URL, or a key=value string), creates or migrates the store's schema,
// and returns the store. ctx bounds the connection and the migration
// (which also stops after a minute). Close the store when done.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	const what = "open the PostgreSQL store"
	set, err := newSettings(what, opts)
	if err != nil {
		return nil, err
	}
	if st := set.statementTimeout(); st > set.opTimeout {
		return nil, fmt.Errorf("%s: WithStatementTimeout: %s exceeds the operation timeout %s", what, st, set.opTimeout)
	}
	cfg, secrets, err := poolConfig(what, dsn, set)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("open the PostgreSQL store (schema %s)", set.schema)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, &opError{op: op, err: err, secrets: secrets}
	}
	s := &Store{
		pool:      pool,
		connCfg:   cfg.ConnConfig.Copy(),
		schema:    set.schema,
		channel:   channelName(set.schema),
		log:       set.log,
		opTimeout: set.opTimeout,
		poll:      set.poll,
		secrets:   secrets,
	}
	s.q = newQueries(s.schema, s.channel)
	s.ctx, s.cancel = context.WithCancel(context.Background())

	mctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	err = pool.AcquireFunc(mctx, func(c *pgxpool.Conn) error {
		from, _, err := migrate(mctx, c.Conn(), s.schema, s.log)
		s.from = from
		return err
	})
	if err != nil {
		s.cancel()
		pool.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s: %w", migrateTimeout, err)
		}
		return nil, &opError{op: op, err: err, secrets: secrets}
	}
	s.log.Debug().Str("schema", s.schema).Int("schema_version", SchemaVersion).Int("migrated_from", s.from).
		Str("host", cfg.ConnConfig.Host).Str("database", cfg.ConnConfig.Database).Msg("PostgreSQL store opened")
	return s, nil
}

// poolConfig parses dsn and applies the store's settings; it also returns
// the passwords that errors must not show (see opError). Its error names
// op and holds no password.
func poolConfig(op, dsn string, set settings) (*pgxpool.Config, []string, error) {
	secrets := secretsOf(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, &opError{op: op, err: parseError(err), secrets: secrets}
	}
	cfg.MaxConns = set.poolSize
	cfg.MinConns = 1
	cfg.HealthCheckPeriod = 30 * time.Second
	cfg.MaxConnIdleTime = 5 * time.Minute
	cc := cfg.ConnConfig
	if cc.ConnectTimeout <= 0 || cc.ConnectTimeout > set.opTimeout {
		cc.ConnectTimeout = set.opTimeout
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(set.statementTimeout().Milliseconds(), 10)
	// A session left in a transaction by a client that stopped half-way
	// (it cannot happen to a pipelined commit, which carries its COMMIT)
	// must not hold its locks for long.
	cc.RuntimeParams["idle_in_transaction_session_timeout"] = "60000"
	// A commit is one pipelined transaction with one Sync at its end: when
	// a partition cuts it half-way, the server waits for the rest while
	// holding the tasks' row locks, and no statement or idle timeout
	// applies. Keepalives (and a bound on unacknowledged writes) make the
	// server drop such a connection, and release its locks, within about
	// 10 s instead of TCP's minutes. Unix sockets ignore them.
	cc.RuntimeParams["tcp_keepalives_idle"] = "4"
	cc.RuntimeParams["tcp_keepalives_interval"] = "2"
	cc.RuntimeParams["tcp_keepalives_count"] = "3"
	cc.RuntimeParams["tcp_user_timeout"] = "10000"
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "mojodex-scheduler"
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		// PostgreSQL 14 and later can notice that the client of a query
		// waiting for a lock went away (a replica killed, a call timed
		// out) and release its locks, instead of when it next writes.
		if serverMajor(c) >= 14 {
			if _, err := c.Exec(ctx, "SET client_connection_check_interval = 1000"); err != nil {
				return fmt.Errorf("set client_connection_check_interval: %w", err)
			}
		}
		return nil
	}
	if set.poolConfig != nil {
		set.poolConfig(cfg)
	}
	return cfg, append(secrets, cfg.ConnConfig.Password), nil
}

// serverMajor is the server's major version (0 if unknown).
func serverMajor(c *pgx.Conn) int {
	v := c.PgConn().ParameterStatus("server_version")
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		v = v[:end]
	}
	n, _ := strconv.Atoi(v)
	return n
}

// MigratedFrom is the schema version Open found (0: none, the schema was
// created); SchemaVersion when there was nothing to migrate.
func (s *Store) MigratedFrom() int { return s.from }

// Schema is the store's schema.
func (s *Store) Schema() string { return s.schema }

// Close stops the listeners of Changes, ends the calls in flight and
// closes the connections. Later calls fail with store.ErrClosed. Closing
// twice is not an error.
func (s *Store) Close() error {
	s.lmu.Lock()
	already := s.closed.Swap(true)
	s.lmu.Unlock()
	if already {
		return nil
	}
	s.cancel()
	s.listeners.Wait()
	s.pool.Close()
	return nil
}

// op returns the context of one call: bounded by the operation timeout,
// and canceled by Close.
func (s *Store) op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.opTimeout)
}

// closedErr is the error of a call on a closed store.
func (s *Store) closedErr(op string) error {
	return fmt.Errorf("%s: %w", op, store.ErrClosed)
}

// fail wraps the error of operation op: store.ErrClosed when the store was
// closed meanwhile, a clear timeout, and never the password.
func (s *Store) fail(op string, err error) error {
	switch {
	case s.closed.Load():
		err = fmt.Errorf("%w (%w)", store.ErrClosed, err)
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("no answer from PostgreSQL within %s: %w", s.opTimeout, err)
	}
	return &opError{op: op, err: err, secrets: s.secrets}
}

// storable returns the names that a task can be stored under (set, valid
// UTF-8, no NUL byte), without repeats; others cannot have state.
func storable(names []string) []string {
	out := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "" || seen[n] || !validText(n) {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}

// validText reports whether PostgreSQL text can hold s.
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// text makes s storable as PostgreSQL text: invalid UTF-8 and NUL bytes
// become U+FFFD. Applied alike to every owner and replica name, so that
// they compare equal to what was stored.
func text(s string) string {
	if validText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
