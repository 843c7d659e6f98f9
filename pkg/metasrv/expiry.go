package metasrv

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// expiring lists what the expiry listener sweeps in the in-memory KV, under
// GreptimeDB's keys: node info (idle since last_activity_ts), as GreptimeDB's
// NodeExpiryListener does, and the datanode and flownode leases (idle since
// timestamp_millis), which GreptimeDB leaves until the next leader change.
type expiringEntries struct {
	prefix string
	stamp  func([]byte) (int64, bool)
}

func expiring() []expiringEntries {
	return []expiringEntries{
		{greptimekey.NodeInfoPrefix, nodeInfoStamp},
		{greptimekey.DatanodeLeasePrefix, leaseStamp},
		{greptimekey.FlownodeLeasePrefix, leaseStamp},
	}
}

func nodeInfoStamp(v []byte) (int64, bool) {
	var a struct {
		LastActivityTs *int64 `json:"last_activity_ts"`
	}
	if json.Unmarshal(v, &a) != nil || a.LastActivityTs == nil {
		return 0, false
	}
	return *a.LastActivityTs, true
}

func leaseStamp(v []byte) (int64, bool) {
	var a struct {
		TimestampMillis *int64 `json:"timestamp_millis"`
	}
	if json.Unmarshal(v, &a) != nil || a.TimestampMillis == nil {
		return 0, false
	}
	return *a.TimestampMillis, true
}

// NodeExpiryListener removes node info and leases idle longer than MaxIdle
// (node_max_idle_time) from the in-memory KV, as the seed's
// NodeExpiryListener does, so nodes that left do not linger in membership.
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

// Sweep removes the expired entries once and reports how many it removed.
// An entry it cannot read is left alone, as GreptimeDB's listener leaves it:
// a heartbeat rewrites it.
func (l *NodeExpiryListener) Sweep(ctx context.Context, mem kv.Backend) (int, error) {
	deadline := l.now().Add(-l.maxIdle).UnixMilli()
	removed := 0
	for _, e := range expiring() {
		prefix := []byte(e.prefix)
		resp, err := mem.Range(ctx, kv.RangeRequest{Key: prefix, RangeEnd: kv.PrefixEnd(prefix)})
		if err != nil {
			return removed, err
		}
		for _, p := range resp.Kvs {
			stamp, ok := e.stamp(p.Value)
			if !ok {
				l.logger.Debug("unreadable entry left for its next heartbeat", "key", string(p.Key))
				continue
			}
			if stamp >= deadline {
				continue
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
	}
	return removed, nil
}
