package pgkv_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvtest"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

var errFenced = errors.New("fenced: not the leader")

type funcFence func(ctx context.Context, tx pgx.Tx) error

func (f funcFence) Check(ctx context.Context, tx pgx.Tx) error { return f(ctx, tx) }

// writeOps is one call of every write, each of which must be fenced.
func writeOps(b kv.Backend) map[string]func(ctx context.Context) error {
	k, v := []byte("k"), []byte("v")
	return map[string]func(ctx context.Context) error{
		"put": func(ctx context.Context) error { _, err := b.Put(ctx, kv.PutRequest{Key: k, Value: v}); return err },
		"put prev": func(ctx context.Context) error {
			_, err := b.Put(ctx, kv.PutRequest{Key: k, Value: v, PrevKv: true})
			return err
		},
		"batch_put": func(ctx context.Context) error {
			_, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: k, Value: v}}})
			return err
		},
		"batch_put prev": func(ctx context.Context) error {
			_, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: k, Value: v}}, PrevKv: true})
			return err
		},
		"batch_delete": func(ctx context.Context) error {
			_, err := b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{[]byte("seeded")}})
			return err
		},
		"delete_range": func(ctx context.Context) error {
			_, err := b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}})
			return err
		},
		"compare_and_put": func(ctx context.Context) error {
			_, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: k, Value: v})
			return err
		},
		"compare_and_put present": func(ctx context.Context) error {
			_, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: []byte("seeded"), Expect: []byte("x"), Value: v})
			return err
		},
		"txn": func(ctx context.Context) error {
			_, err := b.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{kv.OpPut(k, v)}})
			return err
		},
	}
}

func TestFenceFailingAbortsEveryWrite(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	ctx := t.Context()
	_, err := s.Put(ctx, kv.PutRequest{Key: []byte("seeded"), Value: []byte("x")})
	require.NoError(t, err)

	var calls atomic.Int64
	fenced := s.WithFence(funcFence(func(context.Context, pgx.Tx) error {
		calls.Add(1)
		return fmt.Errorf("term 3 is not 4: %w", errFenced)
	}))
	for name, op := range writeOps(fenced) {
		before := calls.Load()
		err := op(ctx)
		require.ErrorIs(t, err, errFenced, name)
		require.NotErrorIs(t, err, kv.ErrOutcomeUnknown, name)
		require.Equal(t, before+1, calls.Load(), "%s checks the fence once, and does not retry a fence refusal", name)
	}
	resp, err := fenced.Range(ctx, kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	require.NoError(t, err, "reads are not fenced")
	require.Equal(t, []kv.KeyValue{{Key: []byte("seeded"), Value: []byte("x")}}, resp.Kvs, "no fenced write applied")
}

// The whole conformance suite through a fence that lets everything pass: the
// fenced code paths behave exactly like the unfenced ones.
func TestFencePassingConformance(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	pass := funcFence(func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT 1")
		return err
	})
	kvtest.Run(t, func(t *testing.T) kv.Backend { return db.newStore(t, pgkv.Options{}).WithFence(pass) })
}

// termFence is the fence the election will use: the term row read FOR SHARE
// in the write's transaction must still hold the writer's term.
type termFence struct {
	term  int64
	after func() // called once the row is locked, for tests that pause there
}

func (f *termFence) Check(ctx context.Context, tx pgx.Tx) error {
	var current int64
	if err := tx.QueryRow(ctx, "SELECT term FROM fence_term WHERE id = 1 FOR SHARE").Scan(&current); err != nil {
		return fmt.Errorf("read term: %w", err)
	}
	if current != f.term {
		return fmt.Errorf("%w: writer term %d, current term %d", errFenced, f.term, current)
	}
	if f.after != nil {
		f.after()
	}
	return nil
}

func TestFenceOnTermRow(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	ctx := t.Context()
	db.exec(t, "CREATE TABLE fence_term (id int PRIMARY KEY, term bigint NOT NULL); INSERT INTO fence_term VALUES (1, 1)")

	// A write by the current term goes through.
	leader := s.WithFence(&termFence{term: 1})
	_, err := leader.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("term1")})
	require.NoError(t, err)

	// A term bump waits for a fenced write in flight, which then commits.
	locked, release := make(chan struct{}), make(chan struct{})
	pausing := s.WithFence(&termFence{term: 1, after: func() { close(locked); <-release }})
	writeDone := make(chan error, 1)
	go func() {
		_, err := pausing.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("in flight")})
		writeDone <- err
	}()
	<-locked
	bumper, err := pgx.Connect(ctx, db.dsn)
	require.NoError(t, err)
	defer bumper.Close(context.Background())
	var bumperPID uint32 = bumper.PgConn().PID()
	bumpDone := make(chan error, 1)
	go func() {
		_, err := bumper.Exec(ctx, "UPDATE fence_term SET term = 2 WHERE id = 1")
		bumpDone <- err
	}()
	waitUntilBlocked(t, db, bumperPID)
	close(release)
	require.NoError(t, <-writeDone)
	require.NoError(t, <-bumpDone)

	// The deposed term can no longer write; the new one can.
	_, err = leader.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("stale")})
	require.ErrorIs(t, err, errFenced)
	got, err := kv.Get(ctx, s, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "in flight", string(got.Value))
	_, err = s.WithFence(&termFence{term: 2}).Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("term2")})
	require.NoError(t, err)
}

// waitUntilBlocked waits until the backend pid waits for a lock.
func waitUntilBlocked(t *testing.T, db *testDB, pid uint32) {
	t.Helper()
	require.Eventually(t, func() bool {
		var blocked bool
		err := db.pool.QueryRow(t.Context(), "SELECT cardinality(pg_blocking_pids($1)) > 0", int32(pid)).Scan(&blocked)
		return err == nil && blocked
	}, 30*time.Second, 5*time.Millisecond, "backend %d never blocked", pid)
}
