package pgkv_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvtest"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

// rowFence is termFence as a PipelineFence, the way pgelection's fence is
// one: its statement locks the term row and fails the transaction (a failed
// cast, SQLSTATE 22P02) when the row holds another term. checks counts the
// round-trip Checks, which only the unbatched writes make.
type rowFence struct {
	term   int64
	checks atomic.Int64
}

var _ pgkv.PipelineFence = (*rowFence)(nil)

func (f *rowFence) Check(ctx context.Context, tx pgx.Tx) error {
	f.checks.Add(1)
	return (&termFence{term: f.term}).Check(ctx, tx)
}

func (f *rowFence) QueueCheck(b *pgx.Batch) error {
	b.Queue(`SELECT CASE WHEN term = $1 THEN term ELSE ('fenced: the row holds term ' || term)::bigint END
		FROM fence_term WHERE id = 1 FOR SHARE`, f.term)
	return nil
}

func (f *rowFence) Refusal(_ context.Context, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "22P02" {
		return fmt.Errorf("%w: writer term %d: %s", errFenced, f.term, pgErr.Message)
	}
	return nil
}

func newFenceTerm(t *testing.T, db *testDB) {
	t.Helper()
	db.exec(t, "CREATE TABLE fence_term (id int PRIMARY KEY, term bigint NOT NULL); INSERT INTO fence_term VALUES (1, 1)")
}

// The conformance suite through the pipelined fence: BEGIN, the check, the
// writes and COMMIT in one round trip behave like the unbatched path.
func TestBatchedPipelinedConformance(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	newFenceTerm(t, db)
	kvtest.Run(t, func(t *testing.T) kv.Backend {
		s := db.newStore(t, pgkv.Options{})
		return startBatcher(t, s).WithFence(&rowFence{term: 1})
	})
}

func TestBatchedPipelinedFence(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	newFenceTerm(t, db)
	s := db.newStore(t, pgkv.Options{})
	seedPairs(t, s, "d", "old")
	b := startBatcher(t, s)
	ctx := t.Context()

	f1 := &rowFence{term: 1}
	v1 := b.WithFence(f1)
	_, err := v1.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("term1")})
	require.NoError(t, err)
	_, err = v1.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("d"), Value: []byte("term1")}}, PrevKv: true})
	require.NoError(t, err)
	require.Zero(t, f1.checks.Load(), "a batch checked the fence in a round trip of its own")

	db.exec(t, "UPDATE fence_term SET term = 2 WHERE id = 1")
	// Every kind of batched write, concurrently, so some share a batch: all
	// are refused for certain, none is of unknown outcome, none applied.
	writes := []func(ctx context.Context) error{
		func(ctx context.Context) error {
			_, err := v1.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("stale")})
			return err
		},
		func(ctx context.Context) error {
			_, err := v1.Put(ctx, kv.PutRequest{Key: []byte("b"), Value: []byte("stale"), PrevKv: true})
			return err
		},
		func(ctx context.Context) error {
			_, err := v1.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("c"), Value: []byte("stale")}}})
			return err
		},
		func(ctx context.Context) error {
			_, err := v1.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{[]byte("d")}, PrevKv: true})
			return err
		},
	}
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() { errs[i] = w(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		require.ErrorIs(t, err, errFenced, "write %d", i)
		require.NotErrorIs(t, err, kv.ErrOutcomeUnknown, "write %d", i)
	}
	resp, err := s.Range(ctx, kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	require.NoError(t, err)
	require.Equal(t, []string{"a=term1", "d=term1"}, pairList(resp.Kvs), "a write behind the refused check applied")

	// The connections the refused batches used are back in service.
	_, err = b.WithFence(&rowFence{term: 2}).Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("term2")})
	require.NoError(t, err)
	got, err := kv.Get(ctx, s, []byte("a"))
	require.NoError(t, err)
	require.Equal(t, "term2", string(got.Value))
}

// A connection lost after the pipeline was sent, with the check passed and
// COMMIT under way, leaves the batch of unknown outcome, as on the
// round-trip path.
func TestBatchedPipelinedCommitOutcomeUnknown(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	newFenceTerm(t, db)
	s := db.newStore(t, pgkv.Options{Schema: blockCommits(t, db, 4244)})
	v := startBatcher(t, s).WithFence(&rowFence{term: 1})

	tx, holderPID := holder(t, db)
	_, err := tx.Exec(t.Context(), "SELECT pg_advisory_xact_lock(4244)")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := v.Put(t.Context(), kv.PutRequest{Key: []byte("a"), Value: []byte("block")})
		done <- err
	}()
	// The COMMIT waits in the deferred trigger, behind the holder's lock.
	terminate(t, db, blockedBy(t, db, holderPID))
	err = <-done
	require.ErrorIs(t, err, kv.ErrOutcomeUnknown)
	require.NoError(t, tx.Rollback(t.Context()))
	_, err = v.Put(t.Context(), kv.PutRequest{Key: []byte("after"), Value: []byte("1")})
	require.NoError(t, err)
	requireValues(t, s, "after", "1")
}
