package ddl

import (
	"context"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// moveAttempts bounds the retries of one chunk's move when its keys change
// under it (GreptimeDB's TombstoneManager retries 8 times).
const moveAttempts = 8

// moveKeys is GreptimeDB's tombstone move: every key of from that exists is
// moved to the key at the same index of to (its value put there, the key
// deleted), in transactions of chunk keys, each key's move guarded by a
// compare with the value read. A key that is gone is skipped, so a re-run
// after a commit is a no-op.
func moveKeys(ctx context.Context, store kv.Backend, from, to [][]byte, chunk int) error {
	chunk = max(chunk, 1)
	for start := 0; start < len(from); start += chunk {
		end := min(start+chunk, len(from))
		dest := make(map[string][]byte, end-start)
		for i := start; i < end; i++ {
			dest[string(from[i])] = to[i]
		}
		if err := moveChunk(ctx, store, from[start:end], dest); err != nil {
			return err
		}
	}
	return nil
}

func moveChunk(ctx context.Context, store kv.Backend, keys [][]byte, dest map[string][]byte) error {
	got, err := store.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
	if err != nil {
		return storeError(err)
	}
	pairs := got.Kvs
	for attempt := 0; attempt < moveAttempts; attempt++ {
		if len(pairs) == 0 {
			return nil
		}
		txn := kv.TxnRequest{}
		for _, p := range pairs {
			txn.Compare = append(txn.Compare, kv.CompareValue(p.Key, kv.CompareEqual, p.Value))
			txn.Success = append(txn.Success, kv.OpPut(dest[string(p.Key)], p.Value), kv.OpDelete(p.Key))
			txn.Failure = append(txn.Failure, kv.OpGet(p.Key))
		}
		resp, err := store.Txn(ctx, txn)
		if err != nil {
			return storeError(err)
		}
		if resp.Succeeded {
			return nil
		}
		// Someone changed a key since it was read: move what is there now.
		next := pairs[:0:0]
		for _, r := range resp.Responses {
			next = append(next, r.Kvs...)
		}
		pairs = next
	}
	return statuscode.Errorf(statuscode.Unexpected, "Unexpected: the keys of a table kept changing while they were moved (%d attempts)", moveAttempts)
}

// tombstones are the tombstone keys of keys, index for index.
func tombstones(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = greptimekey.TombstoneKey(k)
	}
	return out
}

// deleteKeys removes keys outright (GreptimeDB's destroy: a plain batch
// delete, no compare).
func deleteKeys(ctx context.Context, store kv.Backend, keys [][]byte, chunk int) error {
	for start := 0; start < len(keys); start += max(chunk, 1) {
		end := min(start+max(chunk, 1), len(keys))
		if _, err := store.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: keys[start:end]}); err != nil {
			return storeError(err)
		}
	}
	return nil
}
