package pgkv_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvtest"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

func startBatcher(t testing.TB, s *pgkv.Store) *pgkv.Batcher {
	t.Helper()
	b, err := pgkv.NewBatcher(s, pgkv.BatchOptions{}, testLogger(t))
	require.NoError(t, err)
	require.NoError(t, b.Start(t.Context()))
	t.Cleanup(b.Stop)
	return b
}

// passFence admits every write, with a statement in the transaction like a
// real fence.
var passFence = funcFence(func(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SELECT 1")
	return err
})

func TestBatchedConformance(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	kvtest.Run(t, func(t *testing.T) kv.Backend {
		s := db.newStore(t, pgkv.Options{})
		return startBatcher(t, s).WithFence(passFence)
	})
}

// gateFence holds the first batch inside its fence check until release is
// closed, so the requests made meanwhile queue up into the next batch; later
// checks are decided by then (nil: admit).
type gateFence struct {
	calls   atomic.Int64
	entered chan struct{}
	release chan struct{}
	then    func(ctx context.Context, tx pgx.Tx) error
}

func newGate() *gateFence {
	return &gateFence{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateFence) Check(ctx context.Context, tx pgx.Tx) error {
	if g.calls.Add(1) == 1 {
		close(g.entered)
		select {
		case <-g.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if g.then != nil {
		return g.then(ctx, tx)
	}
	return nil
}

// outcome is what one asynchronous call returned.
type outcome struct {
	prev []kv.KeyValue
	err  error
}

type call func(ctx context.Context) ([]kv.KeyValue, error)

func putCall(v kv.Backend, key, value string, prevKv bool) call {
	return func(ctx context.Context) ([]kv.KeyValue, error) {
		resp, err := v.Put(ctx, kv.PutRequest{Key: []byte(key), Value: []byte(value), PrevKv: prevKv})
		if resp.PrevKv != nil {
			return []kv.KeyValue{*resp.PrevKv}, err
		}
		return nil, err
	}
}

func async(ctx context.Context, c call) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		prev, err := c(ctx)
		ch <- outcome{prev, err}
	}()
	return ch
}

// holdFlusher sends a put through v and waits until its batch is held in
// g's first fence check.
func holdFlusher(t *testing.T, v kv.Backend, g *gateFence) <-chan outcome {
	t.Helper()
	ch := async(t.Context(), putCall(v, "held", "x", false))
	<-g.entered
	return ch
}

// enqueue starts the calls one after the other, each once the previous one
// is queued, so their arrival order is the order given.
func enqueue(t *testing.T, b *pgkv.Batcher, ctx context.Context, calls ...call) []<-chan outcome {
	t.Helper()
	out := make([]<-chan outcome, len(calls))
	base := b.Queued()
	for i, c := range calls {
		out[i] = async(ctx, c)
		waitFor(t, func() bool { return b.Queued() == base+i+1 }, "call %d queued", i)
	}
	return out
}

func waitFor(t *testing.T, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, testWait, testTick, fmt.Sprintf(msg, args...))
}

func pairList(kvs []kv.KeyValue) []string {
	out := []string{}
	for _, e := range kvs {
		out = append(out, string(e.Key)+"="+string(e.Value))
	}
	return out
}

// Requests of one batch see each other in arrival order: a prev value is the
// previous request's value when the key was written earlier in the batch, and
// the last write wins.
func TestBatchedArrivalOrder(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	seedPairs(t, s, "k", "0", "gone", "g")
	b := startBatcher(t, s)
	g := newGate()
	v := b.WithFence(g)
	held := holdFlusher(t, v, g)

	ctx := t.Context()
	results := enqueue(t, b, ctx,
		putCall(v, "k", "1", true),
		putCall(v, "k", "2", true),
		func(ctx context.Context) ([]kv.KeyValue, error) {
			resp, err := v.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{[]byte("k"), []byte("gone"), []byte("k")}, PrevKv: true})
			return resp.PrevKvs, err
		},
		putCall(v, "k", "4", true),
		func(ctx context.Context) ([]kv.KeyValue, error) {
			resp, err := v.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{
				{Key: []byte("k"), Value: []byte("5")}, {Key: []byte("j"), Value: []byte("x")}, {Key: []byte("k"), Value: []byte("6")},
			}, PrevKv: true})
			return resp.PrevKvs, err
		},
		putCall(v, "j", "y", false),
		putCall(v, "j", "z", true),
	)
	close(g.release)
	require.NoError(t, (<-held).err)
	want := [][]string{{"k=0"}, {"k=1"}, {"gone=g", "k=2"}, {}, {"k=4"}, {}, {"j=y"}}
	for i, ch := range results {
		o := <-ch
		require.NoError(t, o.err, "request %d", i)
		require.Equal(t, want[i], pairList(o.prev), "request %d", i)
	}
	require.EqualValues(t, 2, g.calls.Load(), "the queued requests formed one batch with one fence check")
	requireValues(t, s, "k", "6", "j", "z")
	got, err := kv.Get(ctx, s, []byte("gone"))
	require.NoError(t, err)
	require.Nil(t, got)
}

// Concurrent writers of one key: the acknowledged prev values chain every
// acknowledged write into a single total order, which ends with the value
// stored.
func TestBatchedConcurrentWritersChain(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	b := startBatcher(t, s)
	var fences atomic.Int64
	v := b.WithFence(funcFence(func(context.Context, pgx.Tx) error { fences.Add(1); return nil }))

	const writers, perWriter = 32, 20
	var mu sync.Mutex
	prevOf := map[string]string{} // written value -> the value it replaced ("" for none)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				val := fmt.Sprintf("w%d-%d", w, i)
				resp, err := v.Put(t.Context(), kv.PutRequest{Key: []byte("ctr"), Value: []byte(val), PrevKv: true})
				if !assertNoError(t, err) {
					return
				}
				prev := ""
				if resp.PrevKv != nil {
					prev = string(resp.PrevKv.Value)
				}
				mu.Lock()
				prevOf[val] = prev
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, prevOf, writers*perWriter)

	next := map[string]string{} // replaced value -> the write that replaced it
	for val, prev := range prevOf {
		other, dup := next[prev]
		require.False(t, dup, "%q was replaced twice, by %q and %q", prev, other, val)
		next[prev] = val
	}
	cur, n := "", 0
	for {
		val, ok := next[cur]
		if !ok {
			break
		}
		cur = val
		n++
	}
	require.Equal(t, writers*perWriter, n, "the chain from the first write covers every write")
	requireValues(t, s, "ctr", cur)
	t.Logf("%d puts in %d batches", writers*perWriter, fences.Load())
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

// A fence refusal fails every request of the batch, each with the fence's
// error, and writes nothing.
func TestBatchedFenceFailsWholeBatch(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	seedPairs(t, s, "d", "old")
	b := startBatcher(t, s)
	g := newGate()
	g.then = func(context.Context, pgx.Tx) error { return fmt.Errorf("term 3 is over: %w", errFenced) }
	v := b.WithFence(g)
	held := holdFlusher(t, v, g)
	results := enqueue(t, b, t.Context(),
		putCall(v, "a", "1", false),
		putCall(v, "b", "1", true),
		func(ctx context.Context) ([]kv.KeyValue, error) {
			_, err := v.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("c"), Value: []byte("1")}}})
			return nil, err
		},
		func(ctx context.Context) ([]kv.KeyValue, error) {
			_, err := v.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{[]byte("d")}})
			return nil, err
		},
	)
	close(g.release)
	require.NoError(t, (<-held).err)
	for i, ch := range results {
		err := (<-ch).err
		require.ErrorIs(t, err, errFenced, "request %d", i)
		require.NotErrorIs(t, err, kv.ErrOutcomeUnknown, "request %d", i)
	}
	require.EqualValues(t, 2, g.calls.Load(), "one fence check for the batch, not retried")
	resp, err := s.Range(t.Context(), kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	require.NoError(t, err)
	require.Equal(t, []string{"d=old", "held=x"}, pairList(resp.Kvs))
}

// A request whose context ends while it is queued is never sent.
func TestBatchedContextEndsBeforeSend(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	b := startBatcher(t, s)
	g := newGate()
	v := b.WithFence(g)
	held := holdFlusher(t, v, g)

	ctx, cancel := context.WithCancel(t.Context())
	gone := enqueue(t, b, ctx, putCall(v, "gone", "1", false))[0]
	cancel()
	err := (<-gone).err
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, kv.ErrOutcomeUnknown)
	waitFor(t, func() bool { return b.Queued() == 0 }, "abandoned request left the queue count")

	stays := enqueue(t, b, t.Context(), putCall(v, "stays", "1", false))[0]
	close(g.release)
	require.NoError(t, (<-held).err)
	require.NoError(t, (<-stays).err)
	require.EqualValues(t, 2, g.calls.Load())
	requireValues(t, s, "stays", "1")
	got, err := kv.Get(t.Context(), s, []byte("gone"))
	require.NoError(t, err)
	require.Nil(t, got, "the abandoned put was never sent")

	_, err = v.Put(ctx, kv.PutRequest{Key: []byte("late"), Value: []byte("1")})
	require.ErrorIs(t, err, context.Canceled, "a request with an ended context is refused up front")
}

// A caller that leaves while its batch is in flight gets the batch's own
// outcome, not a guess: here its batch, left by every caller, is aborted at
// the fence, so the write certainly did not apply.
func TestBatchedContextEndsInFlight(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	b := startBatcher(t, s)
	g := newGate()
	v := b.WithFence(g)
	ctx, cancel := context.WithCancel(t.Context())
	held := async(ctx, putCall(v, "left", "1", false))
	<-g.entered
	cancel()
	err := (<-held).err
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, kv.ErrOutcomeUnknown, "the batch ended at the fence: nothing was written")
	got, err := kv.Get(t.Context(), s, []byte("left"))
	require.NoError(t, err)
	require.Nil(t, got)
	// The flusher goes on.
	_, err = putCall(v, "next", "1", false)(t.Context())
	require.NoError(t, err)
}

// A caller that leaves while others still wait for its batch is answered
// when the batch ends, with the batch's outcome: the write committed, and the
// caller is told so rather than "unknown" while the batch may still commit.
func TestBatchedCallerLeavesBatchThatCommits(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	b := startBatcher(t, s)
	g := newGate()
	v := b.WithFence(g)
	held := holdFlusher(t, v, g)
	ctx, cancel := context.WithCancel(t.Context())
	results := enqueue(t, b, t.Context(), putCall(v, "stays", "1", false))
	leaving := enqueue(t, b, ctx, putCall(v, "leaves", "1", false))
	// Let the first batch end so the second (both requests) is claimed, and
	// hold the second at the fence: then the caller leaves.
	second := make(chan struct{})
	release2 := make(chan struct{})
	g.then = func(ctx context.Context, tx pgx.Tx) error {
		close(second)
		select {
		case <-release2:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	close(g.release)
	require.NoError(t, (<-held).err)
	<-second
	cancel()
	select {
	case o := <-leaving[0]:
		t.Fatalf("answered before its batch ended: %v", o.err)
	default:
	}
	close(release2)
	require.NoError(t, (<-results[0]).err)
	require.NoError(t, (<-leaving[0]).err, "the batch committed: the caller that left gets its outcome")
	requireValues(t, s, "leaves", "1")
}

// blockCommits makes a schema whose KV table's COMMIT of a pair valued
// "block" waits, in a deferred trigger, for the advisory lock lockKey: a
// test holding that lock holds such a COMMIT under way.
func blockCommits(t *testing.T, db *testDB, lockKey int) (schema string) {
	t.Helper()
	schema = db.newSchema(t)
	fn := pgx.Identifier{schema, "block_commit"}.Sanitize()
	db.exec(t, fmt.Sprintf("CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "+
		"IF NEW.v = 'block' THEN PERFORM pg_advisory_xact_lock(%d); END IF; RETURN NULL; END$$", fn, lockKey))
	db.exec(t, "CREATE CONSTRAINT TRIGGER block_commit AFTER INSERT OR UPDATE ON "+
		pgx.Identifier{schema, pgkv.DefaultTable}.Sanitize()+" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "+fn+"()")
	return schema
}

// The connection dies while the batch's COMMIT waits (a deferred trigger
// takes a lock a test session holds): every request of the batch gets
// ErrOutcomeUnknown, and the batcher serves the next batch.
func TestBatchedCommitOutcomeUnknown(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	schema := blockCommits(t, db, 4243)
	s := db.newStore(t, pgkv.Options{Schema: schema})
	b := startBatcher(t, s)
	g := newGate()
	v := b.WithFence(g)

	tx, holderPID := holder(t, db)
	_, err := tx.Exec(t.Context(), "SELECT pg_advisory_xact_lock(4243)")
	require.NoError(t, err)

	held := holdFlusher(t, v, g)
	results := enqueue(t, b, t.Context(),
		putCall(v, "a", "block", false),
		putCall(v, "b", "1", true),
		putCall(v, "b", "2", true),
	)
	close(g.release)
	require.NoError(t, (<-held).err)
	terminate(t, db, blockedBy(t, db, holderPID))
	for i, ch := range results {
		err := (<-ch).err
		require.ErrorIs(t, err, kv.ErrOutcomeUnknown, "request %d", i)
		require.ErrorIs(t, err, kv.ErrUnavailable, "request %d", i)
	}
	require.NoError(t, tx.Rollback(t.Context()))
	_, err = putCall(v, "after", "1", false)(t.Context())
	require.NoError(t, err)
	requireValues(t, s, "after", "1")
}

// A request PostgreSQL refuses (here a CHECK constraint) fails alone; the
// other requests of its batch apply, in arrival order.
func TestBatchedBadRequestIsolated(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	schema := db.newSchema(t)
	db.exec(t, "ALTER TABLE "+pgx.Identifier{schema, pgkv.DefaultTable}.Sanitize()+" ADD CONSTRAINT no_poison CHECK (v <> 'poison'::bytea)")
	s := db.newStore(t, pgkv.Options{Schema: schema})
	b := startBatcher(t, s)
	g := newGate()
	v := b.WithFence(g)
	held := holdFlusher(t, v, g)
	results := enqueue(t, b, t.Context(),
		putCall(v, "k", "1", true),
		putCall(v, "bad", "poison", false),
		putCall(v, "k", "2", true),
	)
	close(g.release)
	require.NoError(t, (<-held).err)
	first, bad, last := <-results[0], <-results[1], <-results[2]
	require.NoError(t, first.err)
	require.Empty(t, first.prev)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, bad.err, &pgErr)
	require.Equal(t, "23514", pgErr.Code)
	require.NoError(t, last.err)
	require.Equal(t, []string{"k=1"}, pairList(last.prev))
	requireValues(t, s, "k", "2")
}

// Stop fails the queued requests, aborts the batch in flight, and refuses
// new requests; Start after Stop fails; Stop twice is fine.
func TestBatcherStopWithRequestsInFlight(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	b := startBatcher(t, s)
	g := newGate()
	v := b.WithFence(g)
	held := holdFlusher(t, v, g)
	queued := enqueue(t, b, t.Context(), putCall(v, "q1", "1", false), putCall(v, "q2", "1", true))
	b.Stop()
	for i, ch := range append([]<-chan outcome{held}, queued...) {
		err := (<-ch).err
		require.ErrorIs(t, err, kv.ErrUnavailable, "request %d", i)
	}
	_, err := v.Put(t.Context(), kv.PutRequest{Key: []byte("after"), Value: []byte("1")})
	require.ErrorIs(t, err, kv.ErrUnavailable)
	b.Stop()
	require.Error(t, b.Start(t.Context()))
	resp, err := s.Range(t.Context(), kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	require.NoError(t, err)
	require.Empty(t, resp.Kvs)
	// Reads and unbatched writes do not need the batcher.
	_, err = v.CompareAndPut(t.Context(), kv.CompareAndPutRequest{Key: []byte("cas"), Value: []byte("1")})
	require.NoError(t, err)
}

func TestBatcherLifecycle(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	b, err := pgkv.NewBatcher(s, pgkv.BatchOptions{}, testLogger(t))
	require.NoError(t, err)
	_, err = b.WithFence(nil).Put(t.Context(), kv.PutRequest{Key: []byte("k"), Value: []byte("1")})
	require.ErrorIs(t, err, kv.ErrUnavailable, "not started")
	require.NoError(t, b.Start(t.Context()))
	require.NoError(t, b.Start(t.Context()), "a second Start is a no-op")
	_, err = b.WithFence(nil).Put(t.Context(), kv.PutRequest{Key: []byte("k"), Value: []byte("1")})
	require.NoError(t, err)
	b.Stop()
	b.Stop()

	_, err = pgkv.NewBatcher(s, pgkv.BatchOptions{MaxRequests: -1}, nil)
	require.ErrorContains(t, err, "max requests (-1)")
	never, err := pgkv.NewBatcher(s, pgkv.BatchOptions{}, nil)
	require.NoError(t, err)
	never.Stop()
}

// Small caps split a queue into several batches, each in arrival order.
func TestBatchedCaps(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	b, err := pgkv.NewBatcher(s, pgkv.BatchOptions{MaxRequests: 2, MaxBytes: 1000}, testLogger(t))
	require.NoError(t, err)
	require.NoError(t, b.Start(t.Context()))
	t.Cleanup(b.Stop)
	g := newGate()
	v := b.WithFence(g)
	held := holdFlusher(t, v, g)
	big := string(make([]byte, 998))
	results := enqueue(t, b, t.Context(),
		putCall(v, "k", "1", true), putCall(v, "k", "2", true), // batch 2
		putCall(v, "k", big, true), // batch 3: the next one would pass MaxBytes
		putCall(v, "k", "4", true), // batch 4
	)
	close(g.release)
	require.NoError(t, (<-held).err)
	for i, want := range []string{"", "1", "2", big} {
		o := <-results[i]
		require.NoError(t, o.err)
		if want == "" {
			require.Empty(t, o.prev)
		} else {
			require.Equal(t, want, string(o.prev[0].Value), "request %d", i)
		}
	}
	require.EqualValues(t, 4, g.calls.Load())
}

// Views of different fences never share a batch.
func TestBatchedViewsDoNotMix(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	b := startBatcher(t, s)
	g := newGate()
	v := b.WithFence(g)
	other := b.WithFence(funcFence(func(context.Context, pgx.Tx) error { return errFenced }))
	held := holdFlusher(t, v, g)
	results := enqueue(t, b, t.Context(), putCall(v, "a", "1", false), putCall(other, "b", "1", false), putCall(v, "c", "1", false))
	close(g.release)
	require.NoError(t, (<-held).err)
	require.NoError(t, (<-results[0]).err)
	require.ErrorIs(t, (<-results[1]).err, errFenced)
	require.NoError(t, (<-results[2]).err)
	requireValues(t, s, "a", "1", "c", "1")
}

// The batcher's goroutines end with Stop. Not parallel: no other test's
// goroutines come and go while it looks.
func TestBatcherNoGoroutineLeak(t *testing.T) {
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	ignore := goleak.IgnoreCurrent()
	b, err := pgkv.NewBatcher(s, pgkv.BatchOptions{}, testLogger(t))
	require.NoError(t, err)
	require.NoError(t, b.Start(t.Context()))
	v := b.WithFence(passFence)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			_, err := v.Put(t.Context(), kv.PutRequest{Key: fmt.Appendf(nil, "k%d", i%4), Value: []byte("v"), PrevKv: true})
			assertNoError(t, err)
		})
	}
	wg.Wait()
	b.Stop()
	goleak.VerifyNone(t, ignore)
}

// testWait bounds the waits for the batcher to reach a state; generous,
// so a loaded 2-core machine does not fail them.
const (
	testWait = 30 * time.Second
	testTick = 2 * time.Millisecond
)
