package node

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/election/pgelection"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvmetrics"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// kvStack is the store side of metasrv.Deps, the one place the layers of the
// key-value path are put in order.
type kvStack struct {
	store     kv.Backend                  // metrics over the durable store: unfenced reads, the cache load
	fenced    func(term int64) kv.Backend // metrics over batcher.WithFence(term); nil for memory_store
	settle    func(ctx context.Context) error
	keyPrefix []byte
	limits    kv.Limits
	batcher   *pgkv.Batcher // nil for memory_store
}

// newKVStack layers the key-value path, outside in as a call meets it:
//
//	limits (kv.WithLimits, in the core: the Term.Store handed out)
//	-> term store (the core's cache and write path)
//	-> prefix (kv.WithPrefix, in the core: store_key_prefix)
//	-> metrics (kvmetrics)
//	-> batcher + fence (group commit in one transaction that checks the term)
//	-> PostgreSQL (pgkv).
//
// The core applies the top three from the keyPrefix and limits set here. pg
// and el are nil for memory_store, which has one node and no term to fence
// with: its writes go to durable directly.
func newKVStack(o config.Options, durable kv.Backend, pg *pgkv.Store, el *pgelection.Elector, kvm *kvmetrics.Metrics, log *slog.Logger) (kvStack, error) {
	s := kvStack{
		store:     kvm.Wrap(durable),
		keyPrefix: []byte(o.StoreKeyPrefix),
		limits: kv.Limits{
			MaxTxnOps:    o.MaxTxnOps,
			MaxValueSize: int(o.Procedure.MaxMetadataValueSize),
			MaxKeySize:   int(o.MaxKeySize),
		},
	}
	if pg == nil || el == nil {
		return s, nil
	}
	b, err := pgkv.NewBatcher(pg, pgkv.BatchOptions{}, log)
	if err != nil {
		return kvStack{}, fmt.Errorf("node: batcher: %w", err)
	}
	s.batcher = b
	s.fenced = func(term int64) kv.Backend { return kvm.Wrap(b.WithFence(el.Fence(term))) }
	s.settle = el.Settle
	return s, nil
}

// into fills the store fields of d.
func (s kvStack) into(d *metasrv.Deps) {
	d.Store, d.Fenced, d.Settle, d.KeyPrefix, d.Limits = s.store, s.fenced, s.settle, s.keyPrefix, s.limits
}
