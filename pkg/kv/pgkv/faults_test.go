package pgkv_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

// holder is a separate session that takes locks the store's statements then
// wait for.
func holder(t *testing.T, db *testDB) (pgx.Tx, uint32) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), db.dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	tx, err := conn.Begin(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx, conn.PgConn().PID()
}

// blockedBy waits until some backend waits for a lock of holderPID and
// returns its pid.
func blockedBy(t *testing.T, db *testDB, holderPID uint32) int32 {
	t.Helper()
	var pid int32
	require.Eventually(t, func() bool {
		err := db.pool.QueryRow(t.Context(),
			"SELECT pid FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid)) LIMIT 1", int32(holderPID)).Scan(&pid)
		return err == nil
	}, 30*time.Second, 5*time.Millisecond, "nothing blocked on backend %d", holderPID)
	return pid
}

func terminate(t *testing.T, db *testDB, pid int32) {
	t.Helper()
	var ok bool
	require.NoError(t, db.pool.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok))
	require.True(t, ok, "terminate backend %d", pid)
}

func seedPairs(t *testing.T, s kv.Backend, pairs ...string) {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		_, err := s.Put(t.Context(), kv.PutRequest{Key: []byte(pairs[i]), Value: []byte(pairs[i+1])})
		require.NoError(t, err)
	}
}

func requireValues(t *testing.T, s kv.Backend, pairs ...string) {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		got, err := kv.Get(t.Context(), s, []byte(pairs[i]))
		require.NoError(t, err)
		require.NotNil(t, got, "key %q", pairs[i])
		require.Equal(t, pairs[i+1], string(got.Value), "key %q", pairs[i])
	}
}

var twoPuts = kv.TxnRequest{Success: []kv.TxnOp{
	kv.OpPut([]byte("a"), []byte("new")), kv.OpPut([]byte("b"), []byte("new")), kv.OpDelete([]byte("c")),
}}

// The connection dies inside the transaction, before any write: the Txn fails
// as unavailable (not "outcome unknown": no COMMIT was sent) and nothing changes.
func TestConnectionKilledFromFence(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	seedPairs(t, s, "a", "old", "b", "old", "c", "old")

	killer := funcFence(func(ctx context.Context, tx pgx.Tx) error {
		terminate(t, db, int32(tx.Conn().PgConn().PID()))
		return nil
	})
	_, err := s.WithFence(killer).Txn(t.Context(), twoPuts)
	require.ErrorIs(t, err, kv.ErrUnavailable)
	require.NotErrorIs(t, err, kv.ErrOutcomeUnknown)
	requireValues(t, s, "a", "old", "b", "old", "c", "old")
}

// The connection dies while the Txn's upsert has written "a" and waits for
// the lock on "b": nothing is half-applied.
func TestConnectionKilledMidTxnWrite(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	schema := db.newSchema(t)
	s := db.newStore(t, pgkv.Options{Schema: schema})
	seedPairs(t, s, "a", "old", "b", "old", "c", "old")

	tx, holderPID := holder(t, db)
	_, err := tx.Exec(t.Context(), "SELECT 1 FROM "+pgx.Identifier{schema, pgkv.DefaultTable}.Sanitize()+" WHERE k = 'b' FOR UPDATE")
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { _, err := s.Txn(t.Context(), twoPuts); done <- err }()
	terminate(t, db, blockedBy(t, db, holderPID))
	err = <-done
	require.ErrorIs(t, err, kv.ErrUnavailable)
	require.NotErrorIs(t, err, kv.ErrOutcomeUnknown)
	require.NoError(t, tx.Rollback(t.Context()))
	requireValues(t, s, "a", "old", "b", "old", "c", "old")
}

// The connection dies while COMMIT runs (a deferred constraint trigger makes
// the COMMIT wait for a lock): the Txn must not claim success or failure.
func TestConnectionKilledDuringCommit(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	schema := db.newSchema(t)
	fn := pgx.Identifier{schema, "block_commit"}.Sanitize()
	db.exec(t, "CREATE FUNCTION "+fn+"() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END$$")
	db.exec(t, "CREATE CONSTRAINT TRIGGER block_commit AFTER INSERT OR UPDATE ON "+
		pgx.Identifier{schema, pgkv.DefaultTable}.Sanitize()+" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "+fn+"()")
	s := db.newStore(t, pgkv.Options{Schema: schema})
	seedPairs(t, s, "a", "old", "b", "old", "c", "old")

	tx, holderPID := holder(t, db)
	_, err := tx.Exec(t.Context(), "SELECT pg_advisory_xact_lock(4242)")
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { _, err := s.Txn(t.Context(), twoPuts); done <- err }()
	terminate(t, db, blockedBy(t, db, holderPID))
	err = <-done
	require.ErrorIs(t, err, kv.ErrOutcomeUnknown)
	require.ErrorIs(t, err, kv.ErrUnavailable)
	require.NoError(t, tx.Rollback(t.Context()))
	requireValues(t, s, "a", "old", "b", "old", "c", "old")
}

// An autocommit write whose connection dies after it was sent may have been
// applied: it reports the outcome as unknown.
func TestConnectionKilledDuringPut(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	schema := db.newSchema(t)
	s := db.newStore(t, pgkv.Options{Schema: schema})
	seedPairs(t, s, "a", "old")

	tx, holderPID := holder(t, db)
	_, err := tx.Exec(t.Context(), "SELECT 1 FROM "+pgx.Identifier{schema, pgkv.DefaultTable}.Sanitize()+" WHERE k = 'a' FOR UPDATE")
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := s.Put(t.Context(), kv.PutRequest{Key: []byte("a"), Value: []byte("new")})
		done <- err
	}()
	terminate(t, db, blockedBy(t, db, holderPID))
	err = <-done
	require.ErrorIs(t, err, kv.ErrOutcomeUnknown)
	require.ErrorContains(t, err, "pgkv: put:")
}

// countingHandler counts the log records with one message.
type countingHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(as), h.msg, h.n}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(name), h.msg, h.n}
}

// A read on a pooled connection the server has closed is retried on a new one.
func TestReadRetriedAfterConnectionLoss(t *testing.T) {
	t.Parallel()
	db := newTestDB(t, func(c *pgxpool.Config) {
		c.MaxConns = 1
		// Hand out idle connections unchecked, so the dead one is really used.
		c.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	})
	admin, err := pgxpool.New(t.Context(), db.dsn)
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	schema := db.newSchema(t)
	var retries atomic.Int64
	logger := slog.New(countingHandler{testLogger(t).Handler(), "retrying", &retries})
	s, err := pgkv.New(db.pool, pgkv.Options{Schema: schema}, logger)
	require.NoError(t, err)
	seedPairs(t, s, "a", "1")

	var pid int32
	require.NoError(t, db.pool.QueryRow(t.Context(), "SELECT pg_backend_pid()").Scan(&pid))
	_, err = admin.Exec(t.Context(), "SELECT pg_terminate_backend($1)", pid)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var gone bool
		err := admin.QueryRow(t.Context(), "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&gone)
		return err == nil && gone
	}, 30*time.Second, 5*time.Millisecond)

	resp, err := s.BatchGet(t.Context(), kv.BatchGetRequest{Keys: [][]byte{[]byte("a")}})
	require.NoError(t, err)
	require.Equal(t, []kv.KeyValue{{Key: []byte("a"), Value: []byte("1")}}, resp.Kvs)
	require.EqualValues(t, 1, retries.Load(), "the read was retried once")
}

// Every call honours its context: a statement stuck behind a lock returns
// the context's error once the deadline passes.
func TestContextDeadlineHonoured(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	schema := db.newSchema(t)
	table := pgx.Identifier{schema, pgkv.DefaultTable}.Sanitize()
	s := db.newStore(t, pgkv.Options{Schema: schema})
	seedPairs(t, s, "a", "old")
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("writes behind a row lock", func(t *testing.T) {
		tx, _ := holder(t, db)
		_, err := tx.Exec(t.Context(), "SELECT 1 FROM "+table+" WHERE k = 'a' FOR UPDATE")
		require.NoError(t, err)

		_, err = s.Put(short(), kv.PutRequest{Key: []byte("a"), Value: []byte("put")})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, kv.ErrOutcomeUnknown, "the statement was sent and may still apply")

		_, err = s.Txn(short(), kv.TxnRequest{Success: []kv.TxnOp{kv.OpPut([]byte("a"), []byte("txn"))}})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NotErrorIs(t, err, kv.ErrOutcomeUnknown, "no COMMIT was sent")

		_, err = s.CompareAndPut(short(), kv.CompareAndPutRequest{Key: []byte("a"), Expect: []byte("old"), Value: []byte("cas")})
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})

	t.Run("read behind a table lock", func(t *testing.T) {
		tx, _ := holder(t, db)
		_, err := tx.Exec(t.Context(), "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE")
		require.NoError(t, err)

		_, err = s.Range(short(), kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "pgkv: range:")
	})

	t.Run("already expired", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := s.Range(ctx, kv.RangeRequest{Key: []byte("a")})
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("x")})
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, kv.ErrOutcomeUnknown, "nothing was sent")
	})
}
