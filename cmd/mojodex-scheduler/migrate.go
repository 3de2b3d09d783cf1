package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mojodex/mojodex-scheduler/config"
	"github.com/mojodex/mojodex-scheduler/store/pgstore"
)

// migrateCmd creates or migrates the PostgreSQL store's schema.
type migrateCmd struct{}

// Run creates the schema of the PostgreSQL store named by
// MOJODEX_SCHEDULER_STATE (in MOJODEX_SCHEDULER_PG_SCHEMA), or brings it up
// to the version this program writes, and prints its version before and
// after. run does the same when it opens the store; migrate is for doing
// it ahead of time (a deployment step, or a database role that may create
// tables while the scheduler's may not). A schema newer than this program
// is refused and left alone. Nothing here prints the password.
func (m *migrateCmd) Run(a *appEnv) error {
	cfg, warnings, err := config.Load(a.environ)
	for _, w := range warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}
	if err != nil {
		return err
	}
	loc, err := cfg.StateLocation()
	if err != nil {
		return err
	}
	if loc.Kind != config.StatePostgres {
		what := "a state file"
		if loc.Kind == config.StateMemory {
			what = "state in memory"
		}
		return fmt.Errorf("MOJODEX_SCHEDULER_STATE=%s: migrate needs a postgres:// or postgresql:// URL; this is %s, which has no schema to migrate", loc.Redacted(), what)
	}
	log := a.logger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(a.stdout, "state: %s\nschema: %s\n", loc.Redacted(), cfg.PGSchema)
	from, to, err := pgstore.Migrate(ctx, loc.DSN, cfg.PGSchema, pgstore.WithLogger(log))
	if err != nil {
		return fmt.Errorf("MOJODEX_SCHEDULER_STATE=%s: %w", loc.Redacted(), err)
	}
	before := fmt.Sprint(from)
	if from == 0 {
		before = "none (schema created)"
	}
	after := fmt.Sprint(to)
	if from == to {
		after += " (up to date, nothing to do)"
	}
	fmt.Fprintf(a.stdout, "schema version before: %s\nschema version after: %s\n", before, after)
	return nil
}
