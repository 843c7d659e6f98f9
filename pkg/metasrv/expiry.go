package metasrv

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// NodeInfoPrefix is where heartbeating nodes (datanodes, frontends, flownodes)
// keep their info in the leader's in-memory KV.
const NodeInfoPrefix = "__meta_node_info/"

// NodeActivity is the part of a node-info value the expiry listener reads:
// when the node was last heard from.
type NodeActivity struct {
	LastActivityTsMs int64 `json:"last_activity_ts_ms"`
}

// NodeExpiryListener removes node info that has been idle longer than
// MaxIdle from the in-memory KV, as the seed's NodeExpiryListener does, so
// nodes that left do not linger in membership.
type NodeExpiryListener struct {
	logger   *slog.Logger
	maxIdle  time.Duration
	interval time.Duration
	now      func() time.Time

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewNodeExpiryListener checks every interval for node info idle longer than
// maxIdle. now is the clock (time.Now outside tests).
func NewNodeExpiryListener(logger *slog.Logger, maxIdle, interval time.Duration, now func() time.Time) *NodeExpiryListener {
	return &NodeExpiryListener{
		logger:   logger.With("component", "node_expiry"),
		maxIdle:  maxIdle,
		interval: interval,
		now:      now,
	}
}

func (l *NodeExpiryListener) Name() string { return "node_expiry" }

func (l *NodeExpiryListener) Start(ctx context.Context, t Term) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		return fmt.Errorf("node expiry listener already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	l.cancel, l.done = cancel, make(chan struct{})
	go l.run(ctx, t.Memory, l.done)
	return nil
}

func (l *NodeExpiryListener) Stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel, l.done = nil, nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (l *NodeExpiryListener) run(ctx context.Context, mem kv.Backend, done chan struct{}) {
	defer close(done)
	ticker := time.NewTicker(l.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if n, err := l.Sweep(ctx, mem); err != nil {
				l.logger.Warn("node expiry sweep failed", "err", err)
			} else if n > 0 {
				l.logger.Info("expired idle nodes", "count", n, "max_idle", l.maxIdle)
			}
		}
	}
}

// Sweep removes the expired node info once and reports how many it removed.
func (l *NodeExpiryListener) Sweep(ctx context.Context, mem kv.Backend) (int, error) {
	prefix := []byte(NodeInfoPrefix)
	resp, err := mem.Range(ctx, kv.RangeRequest{Key: prefix, RangeEnd: kv.PrefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	deadline := l.now().Add(-l.maxIdle).UnixMilli()
	removed := 0
	for _, p := range resp.Kvs {
		var a NodeActivity
		if err := json.Unmarshal(p.Value, &a); err == nil && a.LastActivityTsMs >= deadline {
			continue
		} else if err != nil {
			l.logger.Warn("unreadable node info; removing it", "key", string(p.Key), "err", err)
		}
		// Delete only the value we judged: a heartbeat that refreshed the
		// node since the scan keeps it.
		tr, err := mem.Txn(ctx, kv.TxnRequest{
			Compare: []kv.Compare{kv.CompareValue(p.Key, kv.CompareEqual, p.Value)},
			Success: []kv.TxnOp{kv.OpDelete(p.Key)},
		})
		if err != nil {
			return removed, err
		}
		if tr.Succeeded {
			removed++
		}
	}
	return removed, nil
}
