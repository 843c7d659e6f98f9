package kv

import (
	"bytes"
	"context"
)

// WithPrefix returns a view of b in which every key lives under prefix: keys are
// stored with the prefix prepended and returned without it, and ranges never
// leave the prefix. This is store_key_prefix, letting several clusters share one
// table. An empty prefix returns b itself.
func WithPrefix(b Backend, prefix []byte) Backend {
	if len(prefix) == 0 {
		return b
	}
	return &chroot{inner: b, prefix: bytes.Clone(prefix)}
}

type chroot struct {
	inner  Backend
	prefix []byte
}

func (c *chroot) Name() string { return c.inner.Name() }

func (c *chroot) key(k []byte) []byte {
	out := make([]byte, 0, len(c.prefix)+len(k))
	return append(append(out, c.prefix...), k...)
}

func (c *chroot) keys(ks [][]byte) [][]byte {
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = c.key(k)
	}
	return out
}

// rangeEnd maps a RangeEnd into the prefixed key space: "all keys from" becomes
// "up to the end of the prefix", so a scan never reads another cluster's keys.
func (c *chroot) rangeEnd(end []byte) []byte {
	switch {
	case len(end) == 0:
		return nil
	case IsAllKeysFrom(end):
		return PrefixEnd(c.prefix)
	default:
		return c.key(end)
	}
}

func (c *chroot) strip(kvs []KeyValue) []KeyValue {
	for i := range kvs {
		kvs[i].Key = kvs[i].Key[len(c.prefix):]
	}
	return kvs
}

func (c *chroot) stripOne(kv *KeyValue) *KeyValue {
	if kv != nil {
		kv.Key = kv.Key[len(c.prefix):]
	}
	return kv
}

func (c *chroot) Range(ctx context.Context, req RangeRequest) (RangeResponse, error) {
	req.Key, req.RangeEnd = c.key(req.Key), c.rangeEnd(req.RangeEnd)
	resp, err := c.inner.Range(ctx, req)
	resp.Kvs = c.strip(resp.Kvs)
	return resp, err
}

func (c *chroot) Put(ctx context.Context, req PutRequest) (PutResponse, error) {
	req.Key = c.key(req.Key)
	resp, err := c.inner.Put(ctx, req)
	resp.PrevKv = c.stripOne(resp.PrevKv)
	return resp, err
}

func (c *chroot) BatchGet(ctx context.Context, req BatchGetRequest) (BatchGetResponse, error) {
	req.Keys = c.keys(req.Keys)
	resp, err := c.inner.BatchGet(ctx, req)
	resp.Kvs = c.strip(resp.Kvs)
	return resp, err
}

func (c *chroot) BatchPut(ctx context.Context, req BatchPutRequest) (BatchPutResponse, error) {
	kvs := make([]KeyValue, len(req.Kvs))
	for i, kv := range req.Kvs {
		kvs[i] = KeyValue{Key: c.key(kv.Key), Value: kv.Value}
	}
	req.Kvs = kvs
	resp, err := c.inner.BatchPut(ctx, req)
	resp.PrevKvs = c.strip(resp.PrevKvs)
	return resp, err
}

func (c *chroot) BatchDelete(ctx context.Context, req BatchDeleteRequest) (BatchDeleteResponse, error) {
	req.Keys = c.keys(req.Keys)
	resp, err := c.inner.BatchDelete(ctx, req)
	resp.PrevKvs = c.strip(resp.PrevKvs)
	return resp, err
}

func (c *chroot) DeleteRange(ctx context.Context, req DeleteRangeRequest) (DeleteRangeResponse, error) {
	req.Key, req.RangeEnd = c.key(req.Key), c.rangeEnd(req.RangeEnd)
	resp, err := c.inner.DeleteRange(ctx, req)
	resp.PrevKvs = c.strip(resp.PrevKvs)
	return resp, err
}

func (c *chroot) CompareAndPut(ctx context.Context, req CompareAndPutRequest) (CompareAndPutResponse, error) {
	req.Key = c.key(req.Key)
	resp, err := c.inner.CompareAndPut(ctx, req)
	resp.PrevKv = c.stripOne(resp.PrevKv)
	return resp, err
}

func (c *chroot) Txn(ctx context.Context, req TxnRequest) (TxnResponse, error) {
	cmps := make([]Compare, len(req.Compare))
	for i, cmp := range req.Compare {
		cmp.Key = c.key(cmp.Key)
		cmps[i] = cmp
	}
	mapOps := func(ops []TxnOp) []TxnOp {
		out := make([]TxnOp, len(ops))
		for i, op := range ops {
			op.Key = c.key(op.Key)
			out[i] = op
		}
		return out
	}
	req = TxnRequest{Compare: cmps, Success: mapOps(req.Success), Failure: mapOps(req.Failure)}
	resp, err := c.inner.Txn(ctx, req)
	for i := range resp.Responses {
		resp.Responses[i].Kvs = c.strip(resp.Responses[i].Kvs)
	}
	return resp, err
}
