package pgkv

import (
	"bytes"
	"slices"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// batchKind is the write a batched request makes.
type batchKind uint8

const (
	kindPut batchKind = iota
	kindBatchPut
	kindBatchDelete
)

// batchOp is one request of a batch, as its caller gave it. Put is a BatchPut
// of one pair that answers with at most one previous pair.
type batchOp struct {
	kind batchKind
	kvs  []kv.KeyValue // kindPut (one pair) and kindBatchPut
	keys [][]byte      // kindBatchDelete
	prev bool
}

func (o batchOp) name() string {
	switch o.kind {
	case kindPut:
		return "put"
	case kindBatchPut:
		return "batch_put"
	default:
		return "batch_delete"
	}
}

// size is what the request adds to a batch's payload.
func (o batchOp) size() int {
	n := 0
	for _, p := range o.kvs {
		n += len(p.Key) + len(p.Value)
	}
	for _, k := range o.keys {
		n += len(k)
	}
	return n
}

// touched lists the keys the request writes, in request order.
func (o batchOp) touched() [][]byte {
	if o.kind == kindBatchDelete {
		return o.keys
	}
	out := make([][]byte, len(o.kvs))
	for i, p := range o.kvs {
		out[i] = p.Key
	}
	return out
}

// batchPlan is what a batch does to the table, computed once from its
// requests in arrival order: the net effect (the last write of each key wins)
// and the keys whose stored values some PrevKv answer needs. Keys written
// earlier in the same batch are not among those: their previous value is the
// earlier request's.
type batchPlan struct {
	ops       []batchOp
	lockKeys  [][]byte // sorted, distinct
	putKeys   [][]byte // sorted, distinct; final values in putValues
	putValues [][]byte
	delKeys   [][]byte // sorted, distinct
}

// netWrite is the last write of a key in the batch.
type netWrite struct {
	key     []byte
	value   []byte
	deleted bool
}

func newBatchPlan(ops []batchOp) *batchPlan {
	p := &batchPlan{ops: ops}
	written := make(map[string]*netWrite)
	needed := make(map[string][]byte)
	for _, op := range ops {
		if op.prev {
			for _, k := range op.touched() {
				if _, ok := written[string(k)]; !ok {
					needed[string(k)] = k
				}
			}
		}
		for i, k := range op.touched() {
			w := written[string(k)]
			if w == nil {
				w = &netWrite{key: k}
				written[string(k)] = w
			}
			if op.kind == kindBatchDelete {
				w.value, w.deleted = nil, true
			} else {
				w.value, w.deleted = nonNil(op.kvs[i].Value), false
			}
		}
	}
	for _, k := range needed {
		p.lockKeys = append(p.lockKeys, k)
	}
	slices.SortFunc(p.lockKeys, bytes.Compare)
	// Sorted so that the rows are locked in key order, like every other writer
	// of the table does, and concurrent transactions wait instead of deadlocking.
	ws := make([]*netWrite, 0, len(written))
	for _, w := range written {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b *netWrite) int { return bytes.Compare(a.key, b.key) })
	for _, w := range ws {
		if w.deleted {
			p.delKeys = append(p.delKeys, w.key)
			continue
		}
		p.putKeys = append(p.putKeys, w.key)
		p.putValues = append(p.putValues, w.value)
	}
	return p
}

// cell is a key's value while the batch is replayed.
type cell struct {
	value  []byte
	exists bool
}

// answers replays the batch over stored (the values of lockKeys read in the
// batch's transaction; a key absent from it does not exist) and returns each
// request's previous pairs, exactly as running the requests one by one in
// arrival order would report them.
func (p *batchPlan) answers(stored []kv.KeyValue) [][]kv.KeyValue {
	state := make(map[string]cell, len(p.lockKeys))
	for _, k := range p.lockKeys {
		state[string(k)] = cell{}
	}
	for _, s := range stored {
		state[string(s.Key)] = cell{value: s.Value, exists: true}
	}
	out := make([][]kv.KeyValue, len(p.ops))
	for i, op := range p.ops {
		if op.prev {
			out[i] = prevPairs(state, op)
		}
		for j, k := range op.touched() {
			if op.kind == kindBatchDelete {
				state[string(k)] = cell{}
			} else {
				state[string(k)] = cell{value: nonNil(op.kvs[j].Value), exists: true}
			}
		}
	}
	return out
}

// prevPairs is what op reports as previous pairs: each distinct key it
// touches that exists, in key order, with its value from before op. The
// pairs are copies, so no caller sees another request's buffers.
func prevPairs(state map[string]cell, op batchOp) []kv.KeyValue {
	keys := slices.Clone(op.touched())
	slices.SortFunc(keys, bytes.Compare)
	keys = slices.CompactFunc(keys, bytes.Equal)
	var out []kv.KeyValue
	for _, k := range keys {
		if c := state[string(k)]; c.exists {
			out = append(out, kv.KeyValue{Key: bytes.Clone(k), Value: append([]byte{}, c.value...)})
		}
	}
	return out
}
