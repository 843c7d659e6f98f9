package metasrvapi

import (
	"context"
	"fmt"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Sizing the stored values a write will return, before it is applied. The
// estimate errs on the large side: per pair, its key and value plus
// kvOverhead for the protobuf framing; per response, responseHeadroom for
// the header and the counts. The leader's backend answers these reads from
// its in-memory cache.
const (
	kvOverhead       = 24
	txnOpOverhead    = 8
	responseHeadroom = 1024
	// sizePage is how many pairs one sizing read of a range asks for: the
	// walk stops at the first page that goes over the limit.
	sizePage = 64
)

func kvSize(key, value []byte) int { return len(key) + len(value) + kvOverhead }

// tooLarge is the refusal of a write whose previous values would not fit in
// the response. budget is the max send size less the headroom; the message
// names the configured limit.
func tooLarge(what string, size, budget int, atLeast bool, hint string) error {
	about := "about"
	if atLeast {
		about = "at least"
	}
	return fmt.Errorf("%w: %s would return stored values of %s %d bytes, over the %d bytes a response may carry (grpc.max_send_message_size is %d bytes); nothing was applied: %s",
		kv.ErrInvalidArgument, what, about, size, budget, budget+responseHeadroom, hint)
}

// checkKeys refuses a write whose response carries the pairs now stored
// under keys when they would not fit in budget bytes.
func checkKeys(ctx context.Context, b kv.Backend, what string, keys [][]byte, budget int, hint string) error {
	size, err := storedSize(ctx, b, keys)
	if err != nil {
		return err
	}
	if size > budget {
		return tooLarge(what, size, budget, false, hint)
	}
	return nil
}

func storedSize(ctx context.Context, b kv.Backend, keys [][]byte) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	// Only the sizes are read: nothing is copied.
	resp, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: keys, Shared: true})
	if err != nil {
		return 0, fmt.Errorf("sizing the response: %w", err)
	}
	size := 0
	for _, p := range resp.Kvs {
		size += kvSize(p.Key, p.Value)
	}
	return size, nil
}

// checkRange refuses a DeleteRange with prev_kv whose deleted pairs would not
// fit in budget bytes. It walks the range a page at a time, so sizing a huge
// range holds one page, and stops as soon as the total is over.
func checkRange(ctx context.Context, b kv.Backend, key, end []byte, budget int) error {
	size := 0
	from := key
	for {
		resp, err := b.Range(ctx, kv.RangeRequest{Key: from, RangeEnd: end, Limit: sizePage, Shared: true})
		if err != nil {
			return fmt.Errorf("sizing the response: %w", err)
		}
		for _, p := range resp.Kvs {
			size += kvSize(p.Key, p.Value)
		}
		if size > budget {
			return tooLarge("delete range with prev_kv", size, budget, resp.More, "delete without prev_kv, or in smaller ranges")
		}
		if !resp.More || len(resp.Kvs) == 0 || len(end) == 0 {
			return nil
		}
		// The next page starts just after the last key seen.
		last := resp.Kvs[len(resp.Kvs)-1].Key
		from = append(append(make([]byte, 0, len(last)+1), last...), 0)
	}
}

// checkTxn refuses a Txn whose op responses would not fit in budget bytes,
// whichever branch runs: every op returns a pair (a get the stored one, a put
// or delete the previous one), which may be one an earlier put of the same
// branch wrote.
func checkTxn(ctx context.Context, b kv.Backend, r kv.TxnRequest, budget int) error {
	var keys [][]byte
	seen := map[string]bool{}
	for _, ops := range [][]kv.TxnOp{r.Success, r.Failure} {
		for _, op := range ops {
			if !seen[string(op.Key)] {
				seen[string(op.Key)] = true
				keys = append(keys, op.Key)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	resp, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: keys, Shared: true})
	if err != nil {
		return fmt.Errorf("sizing the response: %w", err)
	}
	stored := make(map[string]int, len(resp.Kvs))
	for _, p := range resp.Kvs {
		stored[string(p.Key)] = len(p.Value)
	}
	for _, branch := range []struct {
		name string
		ops  []kv.TxnOp
	}{{"success", r.Success}, {"failure", r.Failure}} {
		largest := make(map[string]int, len(branch.ops)) // largest value the key may hold in this branch
		size := 0
		for _, op := range branch.ops {
			k := string(op.Key)
			v, ok := largest[k]
			if !ok {
				v = stored[k]
			}
			size += len(op.Key) + v + kvOverhead + txnOpOverhead
			if op.Kind == kv.TxnPut {
				largest[k] = max(v, len(op.Value))
			} else {
				largest[k] = v
			}
		}
		if size > budget {
			return tooLarge("txn ("+branch.name+" branch)", size, budget, false, "split the transaction, or read the large keys with Range")
		}
	}
	return nil
}
