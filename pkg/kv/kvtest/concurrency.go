package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func concurrencyCases() []testCase {
	return []testCase{
		{"CompareAndPutIncrements", testConcurrentCASIncrements},
		{"TxnIncrements", testConcurrentTxnIncrements},
		{"NoTornBatches", testNoTornBatches},
	}
}

// parallel runs fn(0..n-1) on n goroutines and joins their errors; require
// cannot be used off the test goroutine.
func parallel(n int, fn func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range n {
		wg.Go(func() {
			if err := fn(i); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("goroutine %d: %w", i, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func incremented(v []byte) ([]byte, error) {
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return nil, fmt.Errorf("counter holds %q: %w", v, err)
	}
	return []byte(strconv.Itoa(n + 1)), nil
}

// testConcurrentCASIncrements: racing read-modify-write loops built on
// CompareAndPut never lose an update.
func testConcurrentCASIncrements(t *testing.T, b kv.Backend) {
	const workers, increments = 8, 50
	ctx := t.Context()
	key := []byte("counter")
	put(t, b, "counter", "0")

	err := parallel(workers, func(int) error {
		cur := []byte("0")
		for done := 0; done < increments; {
			next, err := incremented(cur)
			if err != nil {
				return err
			}
			resp, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: key, Expect: cur, Value: next})
			if err != nil {
				return err
			}
			switch {
			case resp.Success:
				done++
				cur = next
			case resp.PrevKv == nil:
				return errors.New("compare and put failed without reporting the current value")
			default:
				cur = resp.PrevKv.Value
			}
		}
		return nil
	})
	require.NoError(t, err)
	requireValue(t, b, "counter", strconv.Itoa(workers*increments))
}

// testConcurrentTxnIncrements: the same with a Txn whose failure branch reads
// the current value.
func testConcurrentTxnIncrements(t *testing.T, b kv.Backend) {
	const workers, increments = 4, 25
	ctx := t.Context()
	key := []byte("counter")
	put(t, b, "counter", "0")

	err := parallel(workers, func(int) error {
		cur := []byte("0")
		for done := 0; done < increments; {
			next, err := incremented(cur)
			if err != nil {
				return err
			}
			resp, err := b.Txn(ctx, kv.TxnRequest{
				Compare: []kv.Compare{kv.CompareValue(key, kv.CompareEqual, cur)},
				Success: []kv.TxnOp{kv.OpPut(key, next)},
				Failure: []kv.TxnOp{kv.OpGet(key)},
			})
			if err != nil {
				return err
			}
			switch {
			case resp.Succeeded:
				done++
				cur = next
			case len(resp.Responses) != 1 || len(resp.Responses[0].Kvs) != 1:
				return fmt.Errorf("failure branch get returned %+v", resp.Responses)
			default:
				cur = resp.Responses[0].Kvs[0].Value
			}
		}
		return nil
	})
	require.NoError(t, err)
	requireValue(t, b, "counter", strconv.Itoa(workers*increments))
}

const tornKeys = 8 // fits MaxTxnOps, so the Txn writer works under limits too

func generationBatch(gen int) []kv.KeyValue {
	kvs := make([]kv.KeyValue, tornKeys)
	for i := range kvs {
		kvs[i] = kv.KeyValue{Key: fmt.Appendf(nil, "gen/%d", i), Value: []byte(strconv.Itoa(gen))}
	}
	return kvs
}

// sameGeneration checks that kvs is one whole batch and returns its
// generation.
func sameGeneration(kvs []kv.KeyValue) (int, error) {
	if len(kvs) != tornKeys {
		return 0, fmt.Errorf("read %d keys, want %d", len(kvs), tornKeys)
	}
	for _, e := range kvs[1:] {
		if !bytes.Equal(e.Value, kvs[0].Value) {
			return 0, fmt.Errorf("torn batch: %q=%q but %q=%q", kvs[0].Key, kvs[0].Value, e.Key, e.Value)
		}
	}
	return strconv.Atoi(string(kvs[0].Value))
}

// testNoTornBatches: a reader never sees part of a batch write, and never sees
// generations go backwards.
func testNoTornBatches(t *testing.T, b kv.Backend) {
	const generations, readers = 60, 2
	ctx := t.Context()
	_, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: generationBatch(0)})
	require.NoError(t, err)

	written := make(chan struct{})
	writer := func() error {
		defer close(written)
		for gen := 1; gen <= generations; gen++ {
			batch := generationBatch(gen)
			if gen%2 == 0 {
				if _, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: batch}); err != nil {
					return err
				}
				continue
			}
			ops := make([]kv.TxnOp, len(batch))
			for i, e := range batch {
				ops[i] = kv.OpPut(e.Key, e.Value)
			}
			if _, err := b.Txn(ctx, kv.TxnRequest{Success: ops}); err != nil {
				return err
			}
		}
		return nil
	}
	reader := func(i int) error {
		all := make([][]byte, tornKeys)
		for j, e := range generationBatch(0) {
			all[j] = e.Key
		}
		last := 0
		for finished := false; !finished; {
			select {
			case <-written:
				finished = true // one more round after the writer is done
			default:
			}
			var kvs []kv.KeyValue
			if i%2 == 0 {
				resp, err := b.Range(ctx, kv.RangeRequest{Key: []byte("gen/"), RangeEnd: kv.PrefixEnd([]byte("gen/"))})
				if err != nil {
					return err
				}
				kvs = resp.Kvs
			} else {
				resp, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: all})
				if err != nil {
					return err
				}
				kvs = resp.Kvs
			}
			gen, err := sameGeneration(kvs)
			if err != nil {
				return err
			}
			if gen < last {
				return fmt.Errorf("generation went back from %d to %d", last, gen)
			}
			last = gen
		}
		if last != generations {
			return fmt.Errorf("last read saw generation %d, want %d", last, generations)
		}
		return nil
	}

	err = parallel(1+readers, func(i int) error {
		if i == 0 {
			return writer()
		}
		return reader(i)
	})
	require.NoError(t, err)
}
