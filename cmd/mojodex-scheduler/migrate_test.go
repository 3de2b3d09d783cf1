package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/store/pgstore"
)

// runMigrate runs migrate in this process with environ.
func runMigrate(environ ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = (&migrateCmd{}).Run(&appEnv{stdout: &out, stderr: &errOut, environ: append(environ, "LOG_FORMAT=json")})
	return out.String(), errOut.String(), err
}

func TestMigrateCommand(t *testing.T) {
	srv := pgtest.NewServer(t)
	const pw = "migr4te-s3cret"
	dsn := strings.Replace(srv.NewDatabase(t), "postgres@", "postgres:"+pw+"@", 1) // trusted: the password is ignored
	state := "MOJODEX_SCHEDULER_STATE=" + dsn

	out, _, err := runMigrate(state, "MOJODEX_SCHEDULER_PG_SCHEMA=sched_x")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"schema: sched_x", "schema version before: none (schema created)", "schema version after: 1\n", "postgres:xxxxx@127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("first migrate printed:\n%s\nwant %q", out, want)
		}
	}
	out, _, err = runMigrate(state, "MOJODEX_SCHEDULER_PG_SCHEMA=sched_x")
	if err != nil || !strings.Contains(out, "schema version before: 1\nschema version after: 1 (up to date, nothing to do)") {
		t.Errorf("second migrate: %v\n%s", err, out)
	}
	// The default schema, then a store opened on it finds nothing to do.
	if out, _, err := runMigrate(state); err != nil || !strings.Contains(out, "schema: mojodex_scheduler") {
		t.Errorf("migrate of the default schema: %v\n%s", err, out)
	}
	s, err := pgstore.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if s.MigratedFrom() != pgstore.SchemaVersion {
		t.Errorf("Open after migrate found version %d", s.MigratedFrom())
	}
	s.Close()

	for _, tc := range []struct {
		name    string
		environ []string
		want    string
		is      error
	}{
		{"a state file", []string{"MOJODEX_SCHEDULER_STATE=data/state.db"}, "MOJODEX_SCHEDULER_STATE=data/state.db: migrate needs a postgres:// or postgresql:// URL; this is a state file", nil},
		{"memory", []string{"MOJODEX_SCHEDULER_STATE=off"}, "this is state in memory", nil},
		{"the default", nil, "MOJODEX_SCHEDULER_STATE=data/mojodex-scheduler.db: migrate needs", nil},
		{"a bad schema", []string{state, "MOJODEX_SCHEDULER_PG_SCHEMA=Bad"}, "MOJODEX_SCHEDULER_PG_SCHEMA", nil},
		{"no server", []string{"MOJODEX_SCHEDULER_STATE=postgres://u:" + pw + "@127.0.0.1:1/db?connect_timeout=1"}, "MOJODEX_SCHEDULER_STATE=postgres://u:xxxxx@127.0.0.1:1/db", nil},
		{"a bad URL", []string{"MOJODEX_SCHEDULER_STATE=mysql://u:" + pw + "@h/db"}, "MOJODEX_SCHEDULER_STATE", nil},
	} {
		out, stderr, err := runMigrate(tc.environ...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
		if all := out + stderr + errString(err); strings.Contains(all, pw) {
			t.Errorf("%s: the password was printed:\n%s", tc.name, all)
		}
	}

	// A schema newer than this program is refused, and left alone.
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(t.Context())
	if _, err := c.Exec(t.Context(), `INSERT INTO mojodex_scheduler.scheduler_schema_version (version) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	_, _, err = runMigrate(state)
	if !errors.Is(err, store.ErrNewerSchema) || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("migrate of a newer schema: %v, want ErrNewerSchema naming version 99", err)
	}
	var n int
	if err := c.QueryRow(t.Context(), `SELECT count(*) FROM mojodex_scheduler.scheduler_schema_version`).Scan(&n); err != nil || n != 2 {
		t.Errorf("the newer schema was changed: %d versions, %v", n, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
