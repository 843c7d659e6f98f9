package pgelection

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/election"
)

// pipelinedFencedWrite is fencedWrite in one round trip, as the group commit
// sends it: BEGIN, the queued check, the insert and COMMIT are all sent before
// any answer is read.
func pipelinedFencedWrite(ctx context.Context, pool *pgxpool.Pool, n *node, term int64) error {
	f := n.Fence(term)
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	if err := f.QueueCheck(b); err != nil {
		return err
	}
	b.Queue(`INSERT INTO fenced_writes (term, node) VALUES ($1, $2)`, term, n.name)
	b.Queue(`COMMIT`)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return err
	}
	if _, err := br.Exec(); err != nil {
		if refusal := f.Refusal(ctx, err); refusal != nil {
			return refusal
		}
		return err
	}
	if _, err := br.Exec(); err != nil {
		return err
	}
	tag, err := br.Exec()
	if err != nil {
		return err
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("COMMIT answered %s", tag)
	}
	return nil
}

func fencedWrites(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var count int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM fenced_writes`).Scan(&count))
	return count
}

func TestPipelinedFence(t *testing.T) {
	t.Parallel()
	type bundle struct {
		lockID int64
		pool   *pgxpool.Pool
		n      *node
	}
	setup := func(t *testing.T) bundle {
		opts, pool := newDatabase(t)
		// No renewal or campaign during the test: only the database's row
		// decides what the fence says.
		opts.Election.Lease = 10 * time.Minute
		opts.Election.CampaignInterval = 5 * time.Minute
		n := startNode(t, opts, pool, "q1")
		require.Equal(t, int64(1), n.testSignals.GainedLeadership.WaitOrTimeout())
		return bundle{lockID: opts.MetaElectionLockID, pool: pool, n: n}
	}

	t.Run("AdmitsTheCurrentTerm", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		require.NoError(t, pipelinedFencedWrite(context.Background(), tb.pool, tb.n, 1))
		require.Equal(t, 1, fencedWrites(t, tb.pool))
		require.True(t, tb.n.IsLeader())
	})

	t.Run("RefusesANewerTermAndStepsDown", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		ctx := context.Background()
		_, err := tb.pool.Exec(ctx, `UPDATE metakv_election SET term = term + 1 WHERE lock_id = $1`, tb.lockID)
		require.NoError(t, err)
		err = pipelinedFencedWrite(ctx, tb.pool, tb.n, 1)
		var fe *election.FencedError
		require.ErrorAs(t, err, &fe)
		require.Equal(t, election.FencedError{Expected: 1, Actual: 2}, *fe)
		require.Zero(t, fencedWrites(t, tb.pool), "the insert sent behind the refused check committed")
		require.Equal(t, int64(1), tb.n.testSignals.LostLeadership.WaitOrTimeout())
		// Once the node no longer trusts the term, nothing is sent at all.
		err = pipelinedFencedWrite(ctx, tb.pool, tb.n, 1)
		require.ErrorAs(t, err, &fe)
		require.Equal(t, int64(1), fe.Expected)
		require.Zero(t, fencedWrites(t, tb.pool))
	})

	t.Run("RefusesAMissingRow", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		ctx := context.Background()
		_, err := tb.pool.Exec(ctx, `DELETE FROM metakv_election WHERE lock_id = $1`, tb.lockID)
		require.NoError(t, err)
		err = pipelinedFencedWrite(ctx, tb.pool, tb.n, 1)
		var fe *election.FencedError
		require.ErrorAs(t, err, &fe)
		require.Equal(t, election.FencedError{Expected: 1, Actual: 0}, *fe)
		require.Zero(t, fencedWrites(t, tb.pool))
	})

	t.Run("HoldsOffTheNextTermUntilCommit", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		ctx := context.Background()
		// The check's FOR SHARE lasts until COMMIT, so a term bump sent
		// meanwhile waits: queue the check in a transaction left open.
		conn, err := tb.pool.Acquire(ctx)
		require.NoError(t, err)
		defer conn.Release()
		b := &pgx.Batch{}
		b.Queue(`BEGIN`)
		require.NoError(t, tb.n.Fence(1).QueueCheck(b))
		require.NoError(t, conn.SendBatch(ctx, b).Close())
		bumped := make(chan error, 1)
		go func() {
			_, err := tb.pool.Exec(ctx, `UPDATE metakv_election SET term = term + 1 WHERE lock_id = $1`, tb.lockID)
			bumped <- err
		}()
		// The bump's wait is inside PostgreSQL: only pg_locks shows it.
		require.Eventually(t, func() bool {
			var blocked bool
			err := tb.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity
				WHERE $1 = ANY (pg_catalog.pg_blocking_pids(pid)))`, conn.Conn().PgConn().PID()).Scan(&blocked)
			return err == nil && blocked
		}, wait, 5*time.Millisecond, "the term bump never waited for the open fenced transaction")
		select {
		case err := <-bumped:
			t.Fatalf("the term bump ended while the fenced transaction was open: %v", err)
		default:
		}
		_, err = conn.Exec(ctx, `ROLLBACK`)
		require.NoError(t, err)
		require.NoError(t, <-bumped)
	})
}
