package pgstore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/store"
	"github.com/mojodex/mojodex-scheduler/store/pgstore"
	"github.com/mojodex/mojodex-scheduler/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open opens a store on dsn, closed when t ends.
func open(t testing.TB, dsn string, opts ...pgstore.Option) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// reopenable is a store the conformance suite may close and reopen over
// the same database.
type reopenable struct {
	*pgstore.Store
	dsn string
}

// Reopen implements storetest.Reopener.
func (r reopenable) Reopen(t *testing.T) store.Store {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Fatalf("close before reopening: %v", err)
	}
	return reopenable{open(t, r.dsn), r.dsn}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		dsn := pgtest.New(t)
		return reopenable{open(t, dsn), dsn}
	})
}

func TestSharedConformance(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) store.Shared {
		// A poll interval longer than the suite: values on Changes come
		// from notifications and connections only.
		return open(t, pgtest.New(t), pgstore.WithPollInterval(time.Hour))
	})
}
