package pgstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/mojodex/mojodex-scheduler/store"
)

// SchemaVersion is the version of the schema this code writes. Open and
// Migrate bring an older schema up to it, and refuse a newer one
// (store.ErrNewerSchema).
const SchemaVersion = 1

// migration brings the schema from version-1 to version.
type migration struct {
	version int
	what    string
	sql     string // {s}: the schema
}

// migrations, in order; each runs in the transaction that records it.
var migrations = []migration{
	{1, "tasks, runs in progress, run history, task sets and replicas", schemaV1},
}

// Migrate creates the store's schema in the database at dsn, or brings it
// up to SchemaVersion, and returns its version before (0: none) and after.
// Open does the same; Migrate is for doing it ahead of time (the migrate
// command). Only WithLogger, WithOperationTimeout and WithPoolConfig's
// connection settings apply from opts; schema is the schema's name.
func Migrate(ctx context.Context, dsn, schema string, opts ...Option) (from, to int, err error) {
	set, err := newSettings("migrate", opts)
	if err != nil {
		return 0, 0, err
	}
	if err := checkSchema(schema); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	cfg, secrets, err := poolConfig("migrate", dsn, set)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return 0, 0, &opError{op: fmt.Sprintf("migrate schema %s: connect", schema), err: err, secrets: secrets}
	}
	defer conn.Close(context.Background())
	from, to, err = migrate(ctx, conn, schema, set.log)
	if err != nil {
		return from, 0, &opError{op: fmt.Sprintf("migrate schema %s", schema), err: err, secrets: secrets}
	}
	return from, to, nil
}

// migrate brings schema up to SchemaVersion on conn, in one transaction
// under an advisory lock of its own: replicas starting together wait for
// the first one's migration, then find nothing to do.
func migrate(ctx context.Context, conn *pgx.Conn, schema string, log zerolog.Logger) (from, to int, err error) {
	s := pgx.Identifier{schema}.Sanitize()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }() // after Commit, a no-op
	// The lock may be waited for as long as another replica migrates.
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", migrateTimeout.Milliseconds())); err != nil {
		return 0, 0, fmt.Errorf("set the migration's timeout: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mojodex-scheduler migrations'), hashtext($1))`, schema); err != nil {
		return 0, 0, fmt.Errorf("take the migration lock: %w", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return 0, 0, fmt.Errorf("look the schema up: %w", err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+s); err != nil {
			return 0, 0, fmt.Errorf("create the schema: %w", err)
		}
	}
	// Created only when missing (CREATE ... IF NOT EXISTS would need the
	// right to create even when there is nothing to create): a role that
	// may only read and write the tables opens a migrated schema.
	var versioned bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s+".scheduler_schema_version").Scan(&versioned); err != nil {
		return 0, 0, fmt.Errorf("look the schema version table up: %w", err)
	}
	if !versioned {
		if _, err := tx.Exec(ctx, `CREATE TABLE `+s+`.scheduler_schema_version (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT statement_timestamp()
		)`); err != nil {
			return 0, 0, fmt.Errorf("create the schema version table: %w", err)
		}
	}
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+s+`.scheduler_schema_version`).Scan(&from); err != nil {
		return 0, 0, fmt.Errorf("read the schema version: %w", err)
	}
	if from > SchemaVersion {
		return from, 0, fmt.Errorf("%w: the schema has version %d, this program understands up to %d", store.ErrNewerSchema, from, SchemaVersion)
	}
	for _, m := range migrations {
		if m.version <= from {
			continue
		}
		start := time.Now()
		if _, err := tx.Exec(ctx, strings.ReplaceAll(m.sql, "{s}", s)); err != nil {
			return from, 0, fmt.Errorf("migration to version %d (%s): %w", m.version, m.what, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.scheduler_schema_version (version) VALUES ($1)`, m.version); err != nil {
			return from, 0, fmt.Errorf("record version %d: %w", m.version, err)
		}
		log.Info().Str("schema", schema).Int("version", m.version).Str("migration", m.what).
			Float64("duration_s", time.Since(start).Seconds()).Msg("schema migrated")
	}
	if err := tx.Commit(ctx); err != nil {
		return from, 0, fmt.Errorf("commit: %w", err)
	}
	return from, SchemaVersion, nil
}
