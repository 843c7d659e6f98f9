package pgkv_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

// Concurrent puts asking for the previous value must form one chain per key:
// every written value is reported as replaced exactly once, except the one
// left in the table, and exactly one writer found the key absent. A previous
// value read outside the writing transaction shows up as a value reported
// twice or as a second "absent". The writers walk through fresh keys in step,
// so they race on the insert of each key as well as on its updates.
func TestPrevValuesChainUnderConcurrency(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	const workers, keys = 6, 40

	type outcome struct {
		key  string
		prev *string
	}
	// hammer runs put(worker, key) from every worker over every key and
	// returns, per key, the previous values reported.
	hammer := func(t *testing.T, put func(w int, key string) ([]outcome, error)) map[string][]*string {
		var mu sync.Mutex
		prevs := map[string][]*string{}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				for k := range keys {
					outs, err := put(w, fmt.Sprintf("k%02d", k))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					for _, o := range outs {
						prevs[o.key] = append(prevs[o.key], o.prev)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		return prevs
	}
	check := func(t *testing.T, s *pgkv.Store, key string, prevs []*string) {
		final, err := kv.Get(t.Context(), s, []byte(key))
		require.NoError(t, err)
		require.NotNil(t, final)
		seen := map[string]int{}
		absent := 0
		for _, p := range prevs {
			if p == nil {
				absent++
			} else {
				seen[*p]++
			}
		}
		require.Equal(t, 1, absent, "exactly one writer found %q absent", key)
		for w := range workers {
			v := fmt.Sprint(w)
			want := 1
			if v == string(final.Value) {
				want = 0
			}
			require.Equal(t, want, seen[v], "value %s of %q reported as replaced", v, key)
		}
	}

	t.Run("Put", func(t *testing.T) {
		t.Parallel()
		s := db.newStore(t, pgkv.Options{MaxAttempts: 100})
		prevs := hammer(t, func(w int, key string) ([]outcome, error) {
			resp, err := s.Put(t.Context(), kv.PutRequest{Key: []byte(key), Value: []byte(fmt.Sprint(w)), PrevKv: true})
			if err != nil || resp.PrevKv == nil {
				return []outcome{{key: key}}, err
			}
			v := string(resp.PrevKv.Value)
			return []outcome{{key, &v}}, nil
		})
		for k := range keys {
			key := fmt.Sprintf("k%02d", k)
			check(t, s, key, prevs[key])
		}
	})

	t.Run("BatchPut", func(t *testing.T) {
		t.Parallel()
		s := db.newStore(t, pgkv.Options{MaxAttempts: 100})
		prevs := hammer(t, func(w int, key string) ([]outcome, error) {
			v := []byte(fmt.Sprint(w))
			// Opposite key orders in the requests: sorted inside, so no deadlock.
			kvs := []kv.KeyValue{{Key: []byte(key + "/x"), Value: v}, {Key: []byte(key + "/y"), Value: v}}
			if w%2 == 1 {
				kvs[0], kvs[1] = kvs[1], kvs[0]
			}
			resp, err := s.BatchPut(t.Context(), kv.BatchPutRequest{Kvs: kvs, PrevKv: true})
			if err != nil {
				return nil, err
			}
			outs := []outcome{{key: key + "/x"}, {key: key + "/y"}}
			for _, p := range resp.PrevKvs {
				v := string(p.Value)
				outs[p.Key[len(p.Key)-1]-'x'].prev = &v
			}
			return outs, nil
		})
		for k := range keys {
			for _, suffix := range []string{"/x", "/y"} {
				key := fmt.Sprintf("k%02d%s", k, suffix)
				check(t, s, key, prevs[key])
			}
		}
	})
}

// barrierFence holds the first two transactions that pass it until both have
// taken their snapshot, so they are guaranteed to conflict; later calls pass.
type barrierFence struct {
	mu    sync.Mutex
	calls int
	both  chan struct{}
}

func newBarrierFence() *barrierFence { return &barrierFence{both: make(chan struct{})} }

func (f *barrierFence) Check(ctx context.Context, tx pgx.Tx) error {
	// The first statement fixes a SERIALIZABLE transaction's snapshot.
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		return err
	}
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	if n == 2 {
		close(f.both)
	}
	if n <= 2 {
		select {
		case <-f.both:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *barrierFence) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Two Txns that read and write the same keys from the same snapshot: one
// commits, the other fails with 40001, is retried, and then sees the first
// one's write: both succeed and neither update is lost.
func TestTxnSerializationFailureIsRetried(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	ctx := t.Context()
	_, err := s.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("initial")})
	require.NoError(t, err)

	fence := newBarrierFence()
	fenced := s.WithFence(fence)
	var wg sync.WaitGroup
	resps := make([]kv.TxnResponse, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			name := fmt.Appendf(nil, "writer%d", i)
			resps[i], errs[i] = fenced.Txn(ctx, kv.TxnRequest{
				Compare: []kv.Compare{kv.CompareExists([]byte("a"))},
				Success: []kv.TxnOp{kv.OpGet([]byte("a")), kv.OpPut([]byte("a"), name), kv.OpPut([]byte("b"), name)},
			})
		})
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.GreaterOrEqual(t, fence.Calls(), 3, "one transaction must have been retried")

	seen := func(i int) string {
		require.True(t, resps[i].Succeeded)
		require.Len(t, resps[i].Responses[0].Kvs, 1)
		return string(resps[i].Responses[0].Kvs[0].Value)
	}
	first, second := 0, 1
	if seen(0) != "initial" {
		first, second = 1, 0
	}
	require.Equal(t, "initial", seen(first))
	require.Equal(t, fmt.Sprintf("writer%d", first), seen(second), "the retried txn sees the first one's write")
	got, err := kv.Get(ctx, s, []byte("b"))
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("writer%d", second), string(got.Value))
}

// With no retries left, a serialisation failure is reported as unavailable,
// naming the operation and the attempts, and nothing is applied.
func TestTxnRetriesExhausted(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{MaxAttempts: 1})
	ctx := t.Context()
	_, err := s.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("0")})
	require.NoError(t, err)

	fenced := s.WithFence(newBarrierFence())
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			_, errs[i] = fenced.Txn(ctx, kv.TxnRequest{
				Success: []kv.TxnOp{kv.OpGet([]byte("a")), kv.OpPut([]byte("a"), fmt.Appendf(nil, "%d", i+1))},
			})
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			require.ErrorIs(t, err, kv.ErrUnavailable)
			require.NotErrorIs(t, err, kv.ErrOutcomeUnknown)
			require.ErrorContains(t, err, "pgkv: txn: gave up after 1 attempts")
		}
	}
	require.Equal(t, 1, failed, "exactly one of the two conflicting txns fails: %v", errs)
}
