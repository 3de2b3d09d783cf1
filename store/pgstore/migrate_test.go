package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/store/pgstore"
)

// sql runs a statement on dsn, for tests that look behind the store.
func sql(t *testing.T, dsn, query string, args ...any) pgx.Rows {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	rows, err := c.Query(ctx, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return rows
}

func column[T any](t *testing.T, dsn, query string, args ...any) []T {
	t.Helper()
	out, err := pgx.CollectRows(sql(t, dsn, query, args...), pgx.RowTo[T])
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

func migrate(t *testing.T, dsn, schema string) (int, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from, to, err := pgstore.Migrate(ctx, dsn, schema)
	if err != nil {
		t.Fatalf("Migrate(%s): %v", schema, err)
	}
	return from, to
}

func TestMigrate(t *testing.T) {
	dsn := pgtest.New(t)
	if from, to := migrate(t, dsn, "sched_a"); from != 0 || to != pgstore.SchemaVersion {
		t.Errorf("first Migrate = %d -> %d, want 0 -> %d", from, to, pgstore.SchemaVersion)
	}
	if from, to := migrate(t, dsn, "sched_a"); from != pgstore.SchemaVersion || to != pgstore.SchemaVersion {
		t.Errorf("second Migrate = %d -> %d, want nothing to do", from, to)
	}
	tables := column[string](t, dsn, `SELECT tablename::text FROM pg_tables WHERE schemaname = 'sched_a' ORDER BY 1`)
	want := []string{"scheduler_inprogress", "scheduler_replicas", "scheduler_runs", "scheduler_schema_version", "scheduler_task_sets", "scheduler_tasks"}
	if strings.Join(tables, " ") != strings.Join(want, " ") {
		t.Errorf("tables = %q, want %q", tables, want)
	}
	// Nothing outside the schema.
	if others := column[string](t, dsn, `SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'`); len(others) != 0 {
		t.Errorf("tables created in public: %q", others)
	}
	// Open finds it migrated; another schema in the same database is apart.
	s := open(t, dsn, pgstore.WithSchema("sched_a"))
	if s.MigratedFrom() != pgstore.SchemaVersion || s.Schema() != "sched_a" {
		t.Errorf("MigratedFrom = %d, Schema = %s", s.MigratedFrom(), s.Schema())
	}
	other := open(t, dsn, pgstore.WithSchema("sched_b"))
	if other.MigratedFrom() != 0 {
		t.Errorf("a new schema was found at version %d", other.MigratedFrom())
	}
	if err := s.Commit(&store.Batch{Claims: []store.Claim{{Task: "a", Slot: slot(1)}}}); err != nil {
		t.Fatal(err)
	}
	if names, err := other.Tasks(); err != nil || len(names) != 0 {
		t.Errorf("the other schema sees tasks %q, %v", names, err)
	}
}

// Replicas starting together on an empty database: one migrates, the
// others wait for it and find nothing to do.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	dsn := pgtest.New(t)
	const n = 8
	var (
		wg    sync.WaitGroup
		froms = make([]int, n)
	)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := pgstore.Open(ctx, dsn)
			if err != nil {
				t.Error(err)
				return
			}
			froms[i] = s.MigratedFrom()
			s.Close()
		})
	}
	wg.Wait()
	created := 0
	for _, f := range froms {
		if f == 0 {
			created++
		}
	}
	if created != 1 {
		t.Errorf("versions found by the opens = %v, want one 0 (the one that migrated)", froms)
	}
	if v := column[int32](t, dsn, `SELECT version FROM mojodex_scheduler.scheduler_schema_version`); len(v) != 1 || v[0] != pgstore.SchemaVersion {
		t.Errorf("schema versions recorded = %v", v)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.New(t)
	migrate(t, dsn, pgstore.DefaultSchema)
	sql(t, dsn, `INSERT INTO mojodex_scheduler.scheduler_schema_version (version) VALUES ($1)`, pgstore.SchemaVersion+1).Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := pgstore.Open(ctx, dsn)
	if !errors.Is(err, store.ErrNewerSchema) || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("Open of a newer schema: %v, want ErrNewerSchema naming the version", err)
	}
	if _, _, err := pgstore.Migrate(ctx, dsn, pgstore.DefaultSchema); !errors.Is(err, store.ErrNewerSchema) {
		t.Errorf("Migrate of a newer schema: %v, want ErrNewerSchema", err)
	}
}

func TestBadOptions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		opt  pgstore.Option
		want string
	}{
		{pgstore.WithSchema("Bad-Name"), "WithSchema"},
		{pgstore.WithSchema("pg_sched"), "reserved"},
		{pgstore.WithOperationTimeout(time.Nanosecond), "WithOperationTimeout"},
		{pgstore.WithStatementTimeout(0), "WithStatementTimeout"},
		{pgstore.WithPoolSize(0), "WithPoolSize"},
		{pgstore.WithPollInterval(0), "WithPollInterval"},
		{pgstore.WithPoolConfig(nil), "WithPoolConfig"},
	} {
		// The options are checked before connecting: no server needed.
		_, err := pgstore.Open(ctx, "postgres://nobody@127.0.0.1:1/none", tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open with a bad option: %v, want an error naming %s", err, tc.want)
		}
	}
	_, err := pgstore.Open(ctx, "postgres://nobody@127.0.0.1:1/none",
		pgstore.WithOperationTimeout(time.Second), pgstore.WithStatementTimeout(2*time.Second))
	if err == nil || !strings.Contains(err.Error(), "exceeds the operation timeout") {
		t.Errorf("a statement timeout above the operation timeout: %v", err)
	}
	if _, _, err := pgstore.Migrate(ctx, "postgres://nobody@127.0.0.1:1/none", "1bad"); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("Migrate of a bad schema name: %v", err)
	}
}

// A role that may only read and write the store's tables opens a schema
// migrated by its owner (the migrate command run with another role), and
// works with it; on a schema not migrated yet it fails, saying why.
func TestOpenWithoutTheRightToCreate(t *testing.T) {
	dsn := pgtest.New(t)
	migrate(t, dsn, "owned")
	db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	role := "rw_" + db
	for _, stmt := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT USAGE ON SCHEMA owned TO " + role,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA owned TO " + role,
	} {
		sql(t, dsn, stmt).Close()
	}
	rw := strings.Replace(dsn, "postgres@", role+"@", 1)
	s := open(t, rw, pgstore.WithSchema("owned"))
	b := &store.Batch{Claims: []store.Claim{{Task: "a", Slot: slot(1), Owner: "r1", Lease: time.Minute}}, Pauses: []store.Pause{{Task: "a", Paused: true}}}
	if err := s.Commit(b); err != nil || !b.Claims[0].Won {
		t.Fatalf("Commit as %s: %v", role, err)
	}
	if _, _, err := s.PublishTaskSet([]byte("x"), "x", false); err != nil {
		t.Errorf("PublishTaskSet as %s: %v", role, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := pgstore.Open(ctx, rw, pgstore.WithSchema("not_yet"))
	if err == nil || !strings.Contains(err.Error(), "create the schema") || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Open of a schema it may not create: %v", err)
	}
}
