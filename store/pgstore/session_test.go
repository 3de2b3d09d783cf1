package pgstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mojodex/mojodex-scheduler/internal/pgtest"
	"github.com/mojodex/mojodex-scheduler/store/pgstore"
)

// Every connection of the store runs with the session settings that bound
// how long the server keeps a half-sent commit (and its row locks) alive
// when the client is cut off: TCP keepalives and a user timeout, beside the
// statement and idle-in-transaction timeouts.
func TestSessionSettingsBoundACutOffClient(t *testing.T) {
	dsn := pgtest.New(t)
	var mu sync.Mutex
	got := map[string]string{}
	s, err := pgstore.Open(context.Background(), dsn, pgstore.WithPoolConfig(func(cfg *pgxpool.Config) {
		after := cfg.AfterConnect
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			if after != nil {
				if err := after(ctx, c); err != nil {
					return err
				}
			}
			for _, name := range []string{"tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout", "idle_in_transaction_session_timeout", "statement_timeout"} {
				var v string
				if err := c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
					return err
				}
				mu.Lock()
				got[name] = v
				mu.Unlock()
			}
			return nil
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Tasks(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]string{
		"tcp_keepalives_idle": "4", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3",
		"tcp_user_timeout": "10000", "idle_in_transaction_session_timeout": "1min", "statement_timeout": "4s",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %q, want %q (a connection over TCP)", name, got[name], w)
		}
	}
}
