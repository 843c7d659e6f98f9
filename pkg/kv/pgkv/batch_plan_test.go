package pgkv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// A batch's plan must report what running its requests one by one, in
// arrival order, reports, and leave what they leave: checked against memkv on
// random batches over a few keys, so keys repeat within and across requests.
func TestBatchPlanMatchesSerialExecution(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	key := func() []byte { return fmt.Appendf(nil, "k%d", r.IntN(5)) }
	for round := range 500 {
		serial := memkv.New()
		var initial []kv.KeyValue
		for i := range 5 {
			if r.IntN(2) == 0 {
				p := kv.KeyValue{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "init%d", i)}
				initial = append(initial, p)
				_, err := serial.Put(ctx, kv.PutRequest{Key: p.Key, Value: p.Value})
				require.NoError(t, err)
			}
		}
		ops := make([]batchOp, 1+r.IntN(8))
		want := make([][]kv.KeyValue, len(ops))
		for i := range ops {
			op := batchOp{kind: batchKind(r.IntN(3)), prev: r.IntN(3) > 0}
			n := 1
			if op.kind != kindPut {
				n = 1 + r.IntN(3)
			}
			for j := range n {
				if op.kind == kindBatchDelete {
					op.keys = append(op.keys, key())
				} else {
					var v []byte // nil stays a valid (empty) value
					if r.IntN(4) > 0 {
						v = fmt.Appendf(nil, "r%d-op%d-%d", round, i, j)
					}
					op.kvs = append(op.kvs, kv.KeyValue{Key: key(), Value: v})
				}
			}
			ops[i] = op
			var err error
			switch op.kind {
			case kindPut:
				var resp kv.PutResponse
				resp, err = serial.Put(ctx, kv.PutRequest{Key: op.kvs[0].Key, Value: op.kvs[0].Value, PrevKv: op.prev})
				if resp.PrevKv != nil {
					want[i] = []kv.KeyValue{*resp.PrevKv}
				}
			case kindBatchPut:
				var resp kv.BatchPutResponse
				resp, err = serial.BatchPut(ctx, kv.BatchPutRequest{Kvs: op.kvs, PrevKv: op.prev})
				want[i] = resp.PrevKvs
			default:
				var resp kv.BatchDeleteResponse
				resp, err = serial.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: op.keys, PrevKv: op.prev})
				want[i] = resp.PrevKvs
			}
			require.NoError(t, err)
		}

		p := newBatchPlan(ops)
		// What the transaction would read: the initial values of lockKeys.
		var stored []kv.KeyValue
		for _, k := range p.lockKeys {
			for _, in := range initial {
				if string(in.Key) == string(k) {
					stored = append(stored, in)
				}
			}
		}
		got := p.answers(stored)
		for i := range ops {
			require.Equal(t, pairs(want[i]), pairs(got[i]), "round %d op %d (%s prev=%v)", round, i, ops[i].name(), ops[i].prev)
		}

		// The net writes turn the initial state into the serial final state.
		final := map[string]string{}
		for _, in := range initial {
			final[string(in.Key)] = string(in.Value)
		}
		for i, k := range p.putKeys {
			final[string(k)] = string(p.putValues[i])
		}
		for _, k := range p.delKeys {
			delete(final, string(k))
		}
		all, err := serial.Range(ctx, kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
		require.NoError(t, err)
		wantFinal := map[string]string{}
		for _, e := range all.Kvs {
			wantFinal[string(e.Key)] = string(e.Value)
		}
		require.Equal(t, wantFinal, final, "round %d", round)
	}
}

func pairs(kvs []kv.KeyValue) []string {
	out := []string{}
	for _, e := range kvs {
		out = append(out, fmt.Sprintf("%s=%s", e.Key, e.Value))
	}
	return out
}
