package node

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

func pgOptions(dsn string) config.Options {
	o := config.Default()
	o.Backend = config.BackendPostgres
	o.StoreAddrs = []string{dsn}
	o.GRPC.BindAddr, o.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	o.Election.Lease = time.Second
	o.Election.CampaignInterval = 50 * time.Millisecond
	o.Election.CandidateLease = 2 * time.Second
	return o
}

// Two nodes on one database: New migrates (the second waits on the first's
// migration lock), one leads, writes through either node land, readiness
// and the pool metrics answer, and stopping the leader hands over.
func TestPostgresNodes(t *testing.T) {
	t.Parallel()
	o := pgOptions(pgtest.NewDatabase(t))
	ctx := context.Background()
	a, b := newNode(t, o), newNode(t, o)
	for _, n := range []*Node{a, b} {
		require.NoError(t, n.Start(ctx))
		<-n.ReadyNotify()
	}
	leader, follower := firstLeader(t, a, b)

	c, err := client.New(ctx, client.Config{Endpoints: []string{follower.GRPCAddr().String(), leader.GRPCAddr().String()}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)

	for _, n := range []*Node{leader, follower} {
		base := "http://" + n.HTTPAddr().String()
		require.Eventually(t, func() bool {
			code, _, err := httpGet(t, base+"/admin/ready")
			return err == nil && code == http.StatusOK
		}, 10*time.Second, 5*time.Millisecond)
		_, body, err := httpGet(t, base+"/metrics")
		require.NoError(t, err)
		require.Contains(t, body, "metasrv_pg_pool_")
	}

	require.NoError(t, leader.Stop(ctx))
	waitState(t, follower, metasrv.LeaderReady)
	got, err := c.Range(ctx, kv.RangeRequest{Key: []byte("k")})
	require.NoError(t, err)
	require.Equal(t, []kv.KeyValue{{Key: []byte("k"), Value: []byte("v")}}, got.Kvs)
}

// A transaction left open by a frozen leader must not outlive half a lease:
// it would hold the election row and block the next leader's term bump.
func TestStorePoolEndsTransactionsLeftIdle(t *testing.T) {
	t.Parallel()
	o := pgOptions(pgtest.NewDatabase(t))
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
			WHERE application_name = 'metasrv' AND datname = current_database() AND state = 'idle in transaction'`).Scan(&n)
		return err == nil && n == 0
	}, 30*time.Second, 20*time.Millisecond)
	_, err = tx.Exec(ctx, "SELECT 1")
	require.Error(t, err, "the transaction should have been ended by idle_in_transaction_session_timeout")
	_ = tx.Rollback(ctx)
}
