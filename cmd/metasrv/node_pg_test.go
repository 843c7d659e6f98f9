package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/config"
)

// A transaction left open by a frozen leader must not outlive half a lease:
// it would hold the election row and block the next leader's term bump.
func TestStorePoolEndsTransactionsLeftIdle(t *testing.T) {
	t.Parallel()
	o := config.Default()
	o.Backend = config.BackendPostgres
	o.StoreAddrs = []string{benchPG(t)}
	o.Election.Lease = 400 * time.Millisecond
	o.Election.CampaignInterval = 100 * time.Millisecond
	ctx := context.Background()
	pool, err := openStorePool(ctx, o, slog.New(slog.DiscardHandler), &connectState{})
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "SELECT 1")
	require.NoError(t, err)
	// Frozen: the session sits idle in the transaction until PostgreSQL ends it.
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'metasrv' AND state = 'idle in transaction'`).Scan(&n)
		return err == nil && n == 0
	}, 30*time.Second, 20*time.Millisecond)
	_, err = tx.Exec(ctx, "SELECT 1")
	require.Error(t, err, "the transaction should have been ended by idle_in_transaction_session_timeout")
	_ = tx.Rollback(ctx)
}
