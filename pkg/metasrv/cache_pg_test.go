package metasrv

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvtest"
)

// The leader's cache against PostgreSQL when a caller abandons its write at
// each point of the write's life. Every case ends with the cache equal to
// PostgreSQL on every key: the write's own outcome decides the cache, never
// its caller's departure.

// commitLock is the advisory lock a deferred trigger takes at COMMIT of any
// change to the KV table: a test session holding it keeps every write's
// COMMIT waiting.
const commitLock = 4244

// abandonOp is one leader write under test. Seeded keys a, b, c hold "old".
type abandonOp struct {
	name    string
	batched bool // goes through the group commit
	first   string
	run     func(ctx context.Context, b kv.Backend) error
	// after is what the keys a, b, c hold once the write applied.
	after map[string]string
}

var abandonOps = []abandonOp{
	{name: "put", batched: true, first: "a",
		run: func(ctx context.Context, b kv.Backend) error {
			_, err := b.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("new"), PrevKv: true})
			return err
		},
		after: map[string]string{"a": "new", "b": "old", "c": "old"}},
	{name: "batch_put", batched: true, first: "a",
		run: func(ctx context.Context, b kv.Backend) error {
			_, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{
				{Key: []byte("a"), Value: []byte("new")}, {Key: []byte("b"), Value: []byte("new")}}})
			return err
		},
		after: map[string]string{"a": "new", "b": "new", "c": "old"}},
	{name: "batch_delete", batched: true, first: "a",
		run: func(ctx context.Context, b kv.Backend) error {
			_, err := b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{[]byte("a"), []byte("b")}, PrevKv: true})
			return err
		},
		after: map[string]string{"c": "old"}},
	{name: "cas", first: "a",
		run: func(ctx context.Context, b kv.Backend) error {
			_, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: []byte("a"), Expect: []byte("old"), Value: []byte("new")})
			return err
		},
		after: map[string]string{"a": "new", "b": "old", "c": "old"}},
	{name: "txn", first: "a",
		run: func(ctx context.Context, b kv.Backend) error {
			_, err := b.Txn(ctx, kv.TxnRequest{
				Compare: []kv.Compare{kv.CompareValue([]byte("a"), kv.CompareEqual, []byte("old"))},
				Success: []kv.TxnOp{
					{Kind: kv.TxnPut, Key: []byte("a"), Value: []byte("new")},
					{Kind: kv.TxnPut, Key: []byte("b"), Value: []byte("new")},
					{Kind: kv.TxnDelete, Key: []byte("c")},
				}})
			return err
		},
		after: map[string]string{"a": "new", "b": "new"}},
	{name: "delete_range", first: "",
		run: func(ctx context.Context, b kv.Backend) error {
			_, err := b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), PrevKv: true})
			return err
		},
		after: map[string]string{"c": "old"}},
}

// abandonBundle is one leader on its own database, with the commit-blocking
// trigger installed and a session to hold locks with.
type abandonBundle struct {
	c       *pgCluster
	n       *pgNode
	leader  kv.Backend
	signals *testSignals
	holder  *pgx.Conn
}

func setupAbandon(t *testing.T, writeTimeout time.Duration) *abandonBundle {
	t.Helper()
	c := newPGCluster(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, c.dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	table := pgx.Identifier{c.opts.MetaTableName}.Sanitize()
	for _, stmt := range []string{
		// Cancel requests (pgx sends one when it gives up on a connection)
		// are swallowed: this COMMIT goes on once the lock is free, as a
		// real one past the point of no return would.
		// Counts the cancels swallowed (a sequence: not rolled back).
		`CREATE SEQUENCE block_commit_cancels`,
		`CREATE FUNCTION block_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			LOOP
				BEGIN
					PERFORM pg_advisory_xact_lock_shared(4244);
					EXIT;
				EXCEPTION WHEN query_canceled THEN
					PERFORM nextval('block_commit_cancels'); -- and keep waiting
				END;
			END LOOP;
			RETURN NULL;
		END$$`,
		`CREATE CONSTRAINT TRIGGER block_commit AFTER INSERT OR UPDATE OR DELETE ON ` + table +
			` DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION block_commit()`,
	} {
		_, err := conn.Exec(ctx, stmt)
		require.NoError(t, err)
	}
	b := &abandonBundle{c: c, signals: newTestSignals(t), holder: conn}
	b.n = c.node("n1", func(nc *nodeConfig) { nc.writeTimeout = writeTimeout; nc.signals = b.signals })
	// One node alone: it is elected as soon as it campaigns.
	waitTransition(t, b.n.m, LeaderReady)
	b.leader, err = b.n.m.LeaderBackend(ctx)
	require.NoError(t, err)
	for _, k := range []string{"a", "b", "c"} {
		_, err := b.leader.Put(ctx, kv.PutRequest{Key: []byte(k), Value: []byte("old")})
		require.NoError(t, err)
	}
	return b
}

// holdCommits makes every write's COMMIT wait until the returned function is
// called.
func (b *abandonBundle) holdCommits(t *testing.T) (release func()) {
	t.Helper()
	_, err := b.holder.Exec(t.Context(), "SELECT pg_advisory_lock($1)", commitLock)
	require.NoError(t, err)
	return func() {
		_, err := b.holder.Exec(t.Context(), "SELECT pg_advisory_unlock($1)", commitLock)
		require.NoError(t, err)
	}
}

// holdRow locks key's row, so a write of it waits in its statement.
func (b *abandonBundle) holdRow(t *testing.T, key string) (release func()) {
	t.Helper()
	tx, err := b.holder.Begin(t.Context())
	require.NoError(t, err)
	table := pgx.Identifier{b.c.opts.MetaTableName}.Sanitize()
	_, err = tx.Exec(t.Context(), "SELECT 1 FROM "+table+" WHERE k = $1 FOR UPDATE", []byte(b.c.opts.StoreKeyPrefix+key))
	require.NoError(t, err)
	return func() { require.NoError(t, tx.Commit(t.Context())) }
}

// waitCancelSwallowed waits until the held COMMIT has swallowed the cancel
// request pgx sends, asynchronously, when it gives up on a connection (here:
// the write's time limit struck, so nobody waits for the batch any more). Released before the cancel lands,
// the COMMIT could be running outside the trigger's guarded wait when it
// does, and be cancelled: the write would not commit, which is an allowed
// outcome of an unknown write, but not the case these tests set up.
func (b *abandonBundle) waitCancelSwallowed(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		var called bool
		err := b.n.pool.QueryRow(t.Context(), "SELECT is_called FROM block_commit_cancels").Scan(&called)
		return err == nil && called
	}, 30*time.Second, 5*time.Millisecond, "the held COMMIT never saw the cancel request")
}

// waitBlocked waits until some backend waits for a lock the holder session
// holds. PostgreSQL has no way to tell us, so this asks it.
func (b *abandonBundle) waitBlocked(t *testing.T) {
	t.Helper()
	pid := b.holder.PgConn().PID()
	require.Eventually(t, func() bool {
		var n int
		err := b.n.pool.QueryRow(t.Context(),
			"SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))", int32(pid)).Scan(&n)
		return err == nil && n > 0
	}, 30*time.Second, 5*time.Millisecond, "no write blocked on the holder session")
}

func (b *abandonBundle) start(ctx context.Context, op abandonOp) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- op.run(ctx, b.leader) }()
	return errc
}

// requireState checks the cache against PostgreSQL on every key, and the
// seeded keys against want.
func (b *abandonBundle) requireState(t *testing.T, want map[string]string) {
	t.Helper()
	requireCacheEqualsStore(t, b.n.m, b.n.m.store)
	resp, err := b.n.m.store.Range(t.Context(), kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d")})
	require.NoError(t, err)
	got := map[string]string{}
	for _, p := range resp.Kvs {
		got[string(p.Key)] = string(p.Value)
	}
	require.Equal(t, want, got)
}

// A caller that leaves while its write was sent, either still in its
// statement (the row is locked) or in COMMIT (a deferred trigger waits): it
// hears "unknown", the write goes on and commits, and the cache follows.
func TestAbandonedWriteInFlight(t *testing.T) {
	t.Parallel()
	points := map[string]func(t *testing.T, b *abandonBundle) (release func()){
		"statement": func(t *testing.T, b *abandonBundle) func() { return b.holdRow(t, "a") },
		"commit":    func(t *testing.T, b *abandonBundle) func() { return b.holdCommits(t) },
	}
	for point, hold := range points {
		for _, op := range abandonOps {
			t.Run(point+"/"+op.name, func(t *testing.T) {
				t.Parallel()
				b := setupAbandon(t, 0)
				release := hold(t, b)
				ctx, cancel := context.WithCancel(t.Context())
				errc := b.start(ctx, op)
				b.waitBlocked(t)
				cancel()
				require.ErrorIs(t, <-errc, kv.ErrOutcomeUnknown)
				release()
				b.requireState(t, op.after)
			})
		}
	}
}

// The write's connection is lost while PostgreSQL holds its COMMIT (here the
// write's own time limit closes it): the write commits after the client gave
// up on it. Its keys are read from PostgreSQL until it can no longer commit,
// then re-read into the cache.
func TestWriteLostInCommit(t *testing.T) {
	t.Parallel()
	for _, op := range abandonOps {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			b := setupAbandon(t, 200*time.Millisecond)
			release := b.holdCommits(t)
			errc := b.start(t.Context(), op)
			b.waitBlocked(t)
			require.ErrorIs(t, <-errc, kv.ErrOutcomeUnknown)
			if op.first != "" {
				require.Equal(t, op.first, waitSignal(t, b.signals.unsure, op.first))
				// Unsure keys are served from PostgreSQL, which still has the
				// old value: the write has not committed yet.
				got, err := kv.Get(t.Context(), b.leader, []byte(op.first))
				require.NoError(t, err)
				require.Equal(t, "old", string(got.Value))
			}
			b.waitCancelSwallowed(t)
			release()
			if op.first == "" {
				// A range delete of unknown outcome reloads the whole cache,
				// after it settles: only then is the cache whole again. The
				// reload's return to LeaderReady is what says so; the caller's
				// answer can come before the invalidation.
				waitTransition(t, b.n.m, LeaderReady)
			}
			b.requireState(t, op.after)
		})
	}
}

// A caller that leaves while its write waits for the lock of a key another
// write holds gets a definite failure: its write is never sent.
func TestAbandonedWriteQueuedOnKey(t *testing.T) {
	t.Parallel()
	for _, op := range abandonOps {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			b := setupAbandon(t, 0)
			release := b.holdCommits(t)
			firstc := make(chan error, 1)
			go func() {
				_, err := b.leader.Put(t.Context(), kv.PutRequest{Key: []byte("a"), Value: []byte("first")})
				firstc <- err
			}()
			b.waitBlocked(t)
			drain(b.signals.locking)
			ctx, cancel := context.WithCancel(t.Context())
			errc := b.start(ctx, op)
			require.Equal(t, op.first, waitSignal(t, b.signals.locking, op.first))
			cancel()
			err := <-errc
			require.ErrorIs(t, err, context.Canceled)
			require.NotErrorIs(t, err, kv.ErrOutcomeUnknown)
			release()
			require.NoError(t, <-firstc)
			b.requireState(t, map[string]string{"a": "first", "b": "old", "c": "old"})
		})
	}
}

// A caller that leaves while its write waits in the group commit's queue
// behind a batch in flight: the write was handed over, so the caller hears
// "unknown"; the write goes on and commits, and the cache follows.
func TestAbandonedWriteQueuedInBatch(t *testing.T) {
	t.Parallel()
	for _, op := range abandonOps {
		if !op.batched {
			continue
		}
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			b := setupAbandon(t, 0)
			other := b.keyOffStripes("a", "b", "c")
			release := b.holdCommits(t)
			firstc := make(chan error, 1)
			go func() {
				_, err := b.leader.Put(t.Context(), kv.PutRequest{Key: []byte(other), Value: []byte("first")})
				firstc <- err
			}()
			b.waitBlocked(t)
			drain(b.signals.sent)
			ctx, cancel := context.WithCancel(t.Context())
			errc := b.start(ctx, op)
			require.Equal(t, op.first, waitSignal(t, b.signals.sent, op.first))
			cancel()
			require.ErrorIs(t, <-errc, kv.ErrOutcomeUnknown)
			release()
			require.NoError(t, <-firstc)
			b.requireState(t, op.after)
		})
	}
}

// keyOffStripes returns a key whose lock stripe none of keys shares, so a
// write of it holds up the group commit but not their locks.
func (b *abandonBundle) keyOffStripes(keys ...string) string {
	locks := b.n.m.current.Load().cache.locks
	taken := map[int]bool{}
	for _, k := range keys {
		taken[locks.stripe([]byte(k))] = true
	}
	for i := 0; ; i++ {
		k := fmt.Sprintf("z%d", i)
		if !taken[locks.stripe([]byte(k))] {
			return k
		}
	}
}

// waitSignal reads ch until key arrives.
func waitSignal(t *testing.T, ch chan string, key string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got := <-ch:
			if got == key {
				return got
			}
		case <-timeout:
			t.Fatalf("no signal for key %q", key)
		}
	}
}

// The leader's backend (cache reads, CAS decided on the cache, group-commit
// writes, fenced by the term) passes the conformance suite on PostgreSQL;
// each case gets a key prefix of its own, an empty namespace.
func TestLeaderBackendConformance(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	n := c.node("n1", func(nc *nodeConfig) { nc.signals = newTestSignals(t) })
	waitTransition(t, n.m, LeaderReady)
	leader, err := n.m.LeaderBackend(t.Context())
	require.NoError(t, err)
	var next atomic.Int64
	kvtest.Run(t, func(t *testing.T) kv.Backend {
		return kv.WithPrefix(leader, []byte(fmt.Sprintf("case%d/", next.Add(1))))
	})
}
