package selector

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
)

// AliveDatanodes returns the datanodes alive in in.Memory whose workloads
// filter accepts (nil accepts all), in key order: GreptimeDB's
// active_datanodes. A node-info entry that does not decode fails the call.
func AliveDatanodes(ctx context.Context, in Input, filter func(greptimekey.NodeWorkloads) bool) ([]Peer, error) {
	if in.Memory == nil {
		return nil, fmt.Errorf("%w: selector: Input.Memory is nil", kv.ErrInvalidArgument)
	}
	prefix := greptimekey.NodeInfoRolePrefix(greptimekey.RoleDatanode)
	resp, err := in.Memory.Range(ctx, kv.RangeRequest{Key: prefix, RangeEnd: kv.PrefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("selector: list datanode node info: %w", err)
	}
	window := nodelist.LeaseWindow(nodelist.RoleDatanode, in.HeartbeatInterval)
	now := in.now().UnixMilli()
	peers := make([]Peer, 0, len(resp.Kvs))
	for _, p := range resp.Kvs {
		info, err := greptimekey.Decode[greptimekey.NodeInfo](p.Value)
		if err != nil {
			return nil, fmt.Errorf("selector: node info %q: %w", p.Key, err)
		}
		if !activeWithin(now, info.LastActivityTs, window) {
			continue
		}
		w, ok := statusWorkloads(info.Status)
		if !ok || (filter != nil && !filter(w)) {
			continue
		}
		peers = append(peers, info.Peer)
	}
	return peers, nil
}

// activeWithin is GreptimeDB's build_active_filter: the elapsed time, a
// saturating difference read as unsigned, is below the window. A timestamp
// ahead of now is a negative difference, a huge unsigned one: not active.
func activeWithin(nowMs, lastMs int64, window time.Duration) bool {
	elapsed := nowMs - lastMs
	switch {
	case lastMs < 0 && elapsed < nowMs: // overflowed upwards
		elapsed = math.MaxInt64
	case lastMs > 0 && elapsed > nowMs: // overflowed downwards
		elapsed = math.MinInt64
	}
	return elapsed >= 0 && elapsed < window.Milliseconds()
}

// statusWorkloads is the workloads a node's status carries, as GreptimeDB
// hands them to the workload filter; ok is false for a status no datanode
// listing keeps (a metasrv's).
func statusWorkloads(s greptimekey.NodeStatus) (greptimekey.NodeWorkloads, bool) {
	switch s.Role {
	case greptimekey.RoleDatanode:
		if s.Datanode == nil {
			return greptimekey.NodeWorkloads{}, false
		}
		return greptimekey.NodeWorkloads{Role: s.Role, Types: s.Datanode.Workloads}, true
	case greptimekey.RoleFrontend, greptimekey.RoleFlownode:
		return greptimekey.NodeWorkloads{Role: s.Role, Types: s.Workloads}, true
	default:
		return greptimekey.NodeWorkloads{}, false
	}
}
