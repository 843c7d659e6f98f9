package sequence_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/migrations"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
	"github.com/pgmetasrv/metasrv/pkg/sequence"
)

func TestMain(m *testing.M) { pgtest.MainCheckLeaks(m) }

func le(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func stored(t *testing.T, b kv.Backend, name string) []byte {
	t.Helper()
	got, err := kv.Get(t.Context(), b, greptimekey.SequenceKey(name))
	require.NoError(t, err)
	require.NotNil(t, got, "the counter %s exists", name)
	return got.Value
}

func next(t *testing.T, s *sequence.Sequence, n int) []uint64 {
	t.Helper()
	ids := make([]uint64, n)
	for i := range ids {
		id, err := s.Next(t.Context())
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

func span(from, to uint64) []uint64 {
	var ids []uint64
	for id := from; id < to; id++ {
		ids = append(ids, id)
	}
	return ids
}

func TestFirstTableIDs(t *testing.T) {
	t.Parallel()
	store := memkv.New()
	seq := sequence.NewTableID(store)
	require.Equal(t, "table_id", seq.Name())
	require.Equal(t, []uint64{1024}, next(t, seq, 1))
	require.Equal(t, le(1034), stored(t, store, "table_id"), "the first range is [1024, 1034)")
	require.Equal(t, span(1025, 1034), next(t, seq, 9))
	require.Equal(t, le(1034), stored(t, store, "table_id"), "no new range while the first lasts")
	require.Equal(t, []uint64{1034}, next(t, seq, 1))
	require.Equal(t, le(1044), stored(t, store, "table_id"))
}

func TestGreptimeSequences(t *testing.T) {
	t.Parallel()
	store := memkv.New()
	flow := sequence.NewFlowID(store)
	require.Equal(t, span(1024, 1035), next(t, flow, 11))
	require.Equal(t, le(1044), stored(t, store, "flow_id"))

	mailbox := sequence.NewHeartbeatMailbox(store)
	require.Equal(t, span(1, 101), next(t, mailbox, 100))
	require.Equal(t, le(101), stored(t, store, "heartbeat_mailbox"))
}

func TestMailboxNeverHandsOutZero(t *testing.T) {
	t.Parallel()
	store := memkv.New()
	// A counter at 0 (below Initial) still starts at 1, and a sequence asked
	// to start at 0 skips it.
	_, err := store.Put(t.Context(), kv.PutRequest{Key: greptimekey.SequenceKey("heartbeat_mailbox"), Value: le(0)})
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, next(t, sequence.NewHeartbeatMailbox(store), 2))

	s, err := sequence.New(memkv.New(), sequence.Options{Name: "m", Initial: 0, Step: 2, SkipZero: true})
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, next(t, s, 3))
	s, err = sequence.New(memkv.New(), sequence.Options{Name: "m", Initial: 0, Step: 1, SkipZero: true})
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, next(t, s, 2), "a range holding only 0 is skipped whole")
}

func TestStartsFromStoredValue(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		exist uint64
		want  []uint64
	}{
		{1, []uint64{100, 101, 102}},   // below Initial: start at Initial
		{100, []uint64{100, 101, 102}}, // at Initial
		{200, []uint64{200, 201, 202}}, // above: start there
	} {
		store := memkv.New()
		key := greptimekey.SequenceKey("s")
		_, err := store.Put(t.Context(), kv.PutRequest{Key: key, Value: le(c.exist)})
		require.NoError(t, err)
		s, err := sequence.New(store, sequence.Options{Name: "s", Initial: 100, Step: 1})
		require.NoError(t, err)
		require.Equal(t, c.want, next(t, s, 3), "stored %d", c.exist)
	}
}

func TestCorruptCounter(t *testing.T) {
	t.Parallel()
	for _, value := range [][]byte{{}, {1, 2, 3}, []byte("123456789")} {
		store := memkv.New()
		_, err := store.Put(t.Context(), kv.PutRequest{Key: greptimekey.SequenceKey("table_id"), Value: value})
		require.NoError(t, err)
		seq := sequence.NewTableID(store)
		_, err = seq.Next(t.Context())
		require.ErrorIs(t, err, sequence.ErrCorrupt, "%x", value)
		require.ErrorContains(t, err, `"__meta_seq-table_id"`)
		// Nothing was handed out or written; the error repeats.
		_, err = seq.Next(t.Context())
		require.ErrorIs(t, err, sequence.ErrCorrupt)
		require.Equal(t, value, stored(t, store, "table_id"))
	}
}

func TestExhausted(t *testing.T) {
	t.Parallel()
	store := memkv.New()
	s, err := sequence.New(store, sequence.Options{Name: "small", Initial: 5, Step: 10, Max: 8})
	require.NoError(t, err)
	require.Equal(t, []uint64{5, 6, 7}, next(t, s, 3), "the last range is cut at Max")
	require.Equal(t, le(8), stored(t, store, "small"))
	_, err = s.Next(t.Context())
	require.ErrorIs(t, err, sequence.ErrExhausted)
	require.ErrorContains(t, err, "__meta_seq-small")

	zero, err := sequence.New(store, sequence.Options{Name: "zero", Step: 0})
	require.NoError(t, err)
	_, err = zero.Next(t.Context())
	require.ErrorIs(t, err, sequence.ErrExhausted, "step 0 takes nothing")

	// The default Max is the largest u64, exclusive.
	top := memkv.New()
	_, err = top.Put(t.Context(), kv.PutRequest{Key: greptimekey.SequenceKey("top"), Value: le(math.MaxUint64 - 2)})
	require.NoError(t, err)
	s, err = sequence.New(top, sequence.Options{Name: "top", Step: 10})
	require.NoError(t, err)
	require.Equal(t, []uint64{math.MaxUint64 - 2, math.MaxUint64 - 1}, next(t, s, 2))
	_, err = s.Next(t.Context())
	require.ErrorIs(t, err, sequence.ErrExhausted)

	// A counter stored above Max is exhausted, not wrapped around.
	_, err = top.Put(t.Context(), kv.PutRequest{Key: greptimekey.SequenceKey("over"), Value: le(50)})
	require.NoError(t, err)
	s, err = sequence.New(top, sequence.Options{Name: "over", Step: 10, Max: 20})
	require.NoError(t, err)
	_, err = s.Next(t.Context())
	require.ErrorIs(t, err, sequence.ErrExhausted)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := sequence.New(memkv.New(), sequence.Options{Step: 1})
	require.ErrorContains(t, err, "name")
	_, err = sequence.New(nil, sequence.Options{Name: "x", Step: 1})
	require.ErrorContains(t, err, "nil store")
}

// recordingStore counts compare-and-puts and can fail them.
type recordingStore struct {
	kv.Backend
	mu   sync.Mutex
	reqs []kv.CompareAndPutRequest
	err  error
}

func (r *recordingStore) CompareAndPut(ctx context.Context, req kv.CompareAndPutRequest) (kv.CompareAndPutResponse, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	err := r.err
	r.mu.Unlock()
	if err != nil {
		return kv.CompareAndPutResponse{}, err
	}
	return r.Backend.CompareAndPut(ctx, req)
}

func TestCompareAndPutProtocol(t *testing.T) {
	t.Parallel()
	store := &recordingStore{Backend: memkv.New()}
	key := greptimekey.SequenceKey("table_id")
	a, b := sequence.NewTableID(store), sequence.NewTableID(store)

	require.Equal(t, []uint64{1024}, next(t, a, 1))
	require.Equal(t, []kv.CompareAndPutRequest{{Key: key, Expect: nil, Value: le(1034)}}, store.reqs,
		"the first range expects the key absent")

	// b starts at Initial too: its guess fails, and it takes the value that won.
	store.reqs = nil
	require.Equal(t, []uint64{1034}, next(t, b, 1))
	require.Equal(t, []kv.CompareAndPutRequest{
		{Key: key, Expect: nil, Value: le(1034)},
		{Key: key, Expect: le(1034), Value: le(1044)},
	}, store.reqs)

	// a's next range guesses that nobody moved the counter since its own
	// range; b did, so a retries from where b left it.
	next(t, a, 9)
	store.reqs = nil
	require.Equal(t, []uint64{1044}, next(t, a, 1))
	require.Equal(t, []kv.CompareAndPutRequest{
		{Key: key, Expect: le(1034), Value: le(1044)},
		{Key: key, Expect: le(1044), Value: le(1054)},
	}, store.reqs)

	// The key vanishing under a guess restarts at Initial, expecting absent.
	_, err := store.Backend.BatchDelete(t.Context(), kv.BatchDeleteRequest{Keys: [][]byte{key}})
	require.NoError(t, err)
	next(t, b, 9)
	store.reqs = nil
	require.Equal(t, []uint64{1024}, next(t, b, 1))
	require.Equal(t, []kv.CompareAndPutRequest{
		{Key: key, Expect: le(1044), Value: le(1054)},
		{Key: key, Expect: nil, Value: le(1034)},
	}, store.reqs)

	// A store error hands out nothing and is returned naming the key.
	store.err = errors.New("boom")
	next(t, b, 9)
	_, err = b.Next(t.Context())
	require.ErrorContains(t, err, "boom")
	require.ErrorContains(t, err, "__meta_seq-table_id")
	store.err = nil
	require.Equal(t, []uint64{1034}, next(t, b, 1), "after the error, the next call allocates afresh")
}

// flippingStore makes every compare fail by moving the counter first.
type flippingStore struct {
	kv.Backend
	n uint64
}

func (f *flippingStore) CompareAndPut(ctx context.Context, req kv.CompareAndPutRequest) (kv.CompareAndPutResponse, error) {
	f.n++
	if _, err := f.Backend.Put(ctx, kv.PutRequest{Key: req.Key, Value: le(2000 + f.n)}); err != nil {
		return kv.CompareAndPutResponse{}, err
	}
	return f.Backend.CompareAndPut(ctx, req)
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	store := &flippingStore{Backend: memkv.New()}
	_, err := sequence.NewTableID(store).Next(t.Context())
	require.ErrorIs(t, err, kv.ErrUnavailable)
	require.ErrorContains(t, err, "1024 compare-and-put attempts")
	require.Equal(t, uint64(sequence.MaxAttempts), store.n)
}

// requireUnique runs workers on two sequences of the same name on store and
// checks that no id is handed out twice.
func requireUnique(t *testing.T, store kv.Backend, perSeq, workers int) {
	t.Helper()
	seqs := []*sequence.Sequence{sequence.NewTableID(store), sequence.NewTableID(store)}
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for _, s := range seqs {
		for w := range workers {
			wg.Go(func() {
				for i := w; i < perSeq; i += workers {
					id, err := s.Next(context.Background())
					if err != nil {
						t.Errorf("next: %v", err)
						return
					}
					mu.Lock()
					dup := seen[id]
					seen[id] = true
					mu.Unlock()
					if dup {
						t.Errorf("id %d handed out twice", id)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	require.Len(t, seen, 2*perSeq)
	for id := range seen {
		require.GreaterOrEqual(t, id, uint64(sequence.MinUserTableID))
	}
	v := binary.LittleEndian.Uint64(stored(t, store, "table_id"))
	require.GreaterOrEqual(t, v, uint64(sequence.MinUserTableID+2*perSeq), "the counter is past every id handed out")
}

func TestConcurrentSequencesUniqueMemory(t *testing.T) {
	t.Parallel()
	requireUnique(t, memkv.New(), 2000, 4)
}

func TestConcurrentSequencesUniquePostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	cc, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	require.NoError(t, migrations.Up(t.Context(), db, "", pgkv.DefaultTable, nil))
	pool, err := pgxpool.New(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	store, err := pgkv.New(pool, pgkv.Options{}, nil)
	require.NoError(t, err)

	requireUnique(t, store, 300, 3)

	// The stored bytes are GreptimeDB's: 8 bytes little-endian.
	raw := stored(t, store, "table_id")
	require.Len(t, raw, 8)
	var direct []byte
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT v FROM `+pgkv.DefaultTable+` WHERE k = $1`, greptimekey.SequenceKey("table_id")).Scan(&direct))
	require.Equal(t, raw, direct)
}
