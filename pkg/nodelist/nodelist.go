// Package nodelist lists the GreptimeDB datanodes, frontends and flownodes
// that heartbeat to the leader, from what their heartbeats leave in its
// in-memory KV (leases and node info, under GreptimeDB's keys). The client
// (`metasrv ctl nodes`) and the leader's admin API (/admin/nodes) list them
// with the same code, each reading the KV its own way.
package nodelist

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// NodeRole is the kind of a GreptimeDB node that heartbeats to metasrv.
type NodeRole string

const (
	RoleDatanode NodeRole = "datanode"
	RoleFrontend NodeRole = "frontend"
	RoleFlownode NodeRole = "flownode"
)

// Roles are the roles in the order List sorts them.
func Roles() []NodeRole { return []NodeRole{RoleDatanode, RoleFrontend, RoleFlownode} }

// Valid reports whether r is one of Roles.
func (r NodeRole) Valid() bool { return slices.Contains(Roles(), r) }

// key is r's number in GreptimeDB's keys.
func (r NodeRole) key() greptimekey.Role {
	switch r {
	case RoleFrontend:
		return greptimekey.RoleFrontend
	case RoleFlownode:
		return greptimekey.RoleFlownode
	default:
		return greptimekey.RoleDatanode
	}
}

// DefaultHeartbeatInterval is GreptimeDB's and metasrv's default
// heartbeat_interval.
const DefaultHeartbeatInterval = 3 * time.Second

// Node is a GreptimeDB datanode, frontend or flownode as the leader knows it
// from its heartbeats: its lease (datanodes, flownodes) and its node info,
// both in the leader's in-memory KV, which starts empty in every term.
type Node struct {
	Role NodeRole `json:"role"`
	// ID is a datanode's or flownode's node id. A frontend's is the one
	// GreptimeDB keys its node info by, derived from its address
	// (greptimekey.FrontendNodeID): frontends all send id 0.
	ID   uint64 `json:"id"`
	Addr string `json:"addr"`
	// LastHeartbeat is when the leader last heard from the node, by the
	// leader's clock: the newer of its lease's timestamp and its node info's
	// last_activity_ts.
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// LastHeartbeatAgeMillis is the lister's now minus LastHeartbeat, at
	// least 0 (the lister's and the leader's clocks may differ).
	LastHeartbeatAgeMillis int64 `json:"last_heartbeat_age_ms"`
	// StartTime is the start time the node reports (node info
	// start_time_ms); zero, and left out of JSON, until its node info
	// arrives: a datanode sends it with its first heartbeat after the
	// handshake. The datanode lease carries no epoch.
	StartTime time.Time `json:"start_time,omitzero"`
	Version   string    `json:"version"`
	GitCommit string    `json:"git_commit"`
	Hostname  string    `json:"hostname"`
	// Workloads are the node's workload types, GreptimeDB's numbers (for a
	// datanode, 0 is hybrid, the only type GreptimeDB v1.1.4 knows).
	Workloads []int32 `json:"workloads"`
	// LeaseCurrent reports whether GreptimeDB would count the node as
	// alive: a datanode's or flownode's lease is younger than
	// 3 x heartbeat_interval + 1s (10s by default), a frontend, which has
	// no lease, heartbeated less than 6 x heartbeat_interval ago (18s).
	LeaseCurrent bool `json:"lease_current"`
}

// Options select and judge the nodes List lists.
type Options struct {
	// Role, when set, lists the nodes of that role only.
	Role NodeRole
	// HeartbeatInterval is the cluster's heartbeat_interval, from which the
	// lease windows follow; zero means DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// Now is the clock ages and leases are judged by; nil means time.Now.
	Now func() time.Time
}

// LeaseWindow is how recent a node's last heartbeat must be for its lease
// to be current, GreptimeDB's DistributedTimeConstants: 3 x interval + 1s
// for a datanode's or flownode's lease, 6 x interval (the frontend heartbeat
// interval) for a frontend.
func LeaseWindow(role NodeRole, heartbeatInterval time.Duration) time.Duration {
	if heartbeatInterval <= 0 {
		heartbeatInterval = DefaultHeartbeatInterval
	}
	if role == RoleFrontend {
		return 6 * heartbeatInterval
	}
	return 3*heartbeatInterval + time.Second
}

// Reader returns every pair under a prefix of the leader's in-memory KV.
type Reader func(ctx context.Context, prefix []byte) ([]kv.KeyValue, error)

// List lists the nodes read finds, sorted by role, then id: the client reads
// over gRPC (Cluster/Range on the leader), the leader's admin API its own
// in-memory KV.
func List(ctx context.Context, read Reader, o Options) ([]Node, error) {
	if o.Role != "" && !o.Role.Valid() {
		return nil, fmt.Errorf("%w: role %q: expected datanode, frontend or flownode", kv.ErrInvalidArgument, o.Role)
	}
	entries, err := collect(ctx, read, o.Role)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	nowMs := now().UnixMilli()
	out := make([]Node, 0, len(entries))
	for k, e := range entries {
		out = append(out, e.node(k, nowMs, o.HeartbeatInterval))
	}
	slices.SortFunc(out, func(a, b Node) int {
		return cmp.Or(cmp.Compare(a.Role.key(), b.Role.key()), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// entry is what the KV holds of one node.
type entry struct {
	lease *greptimekey.LeaseValue
	info  *greptimekey.NodeInfo
}

type nodeKey struct {
	role greptimekey.Role
	id   uint64
}

// collect reads the leases and node info of role ("" for all), by node.
func collect(ctx context.Context, read Reader, only NodeRole) (map[nodeKey]*entry, error) {
	entries := map[nodeKey]*entry{}
	at := func(k nodeKey) *entry {
		e := entries[k]
		if e == nil {
			e = &entry{}
			entries[k] = e
		}
		return e
	}
	for _, src := range nodeSources(only) {
		kvs, err := read(ctx, src.prefix)
		if err != nil {
			return nil, err
		}
		for _, p := range kvs {
			if src.lease != nil {
				id, err := src.lease(p.Key)
				if err != nil {
					return nil, err
				}
				v, err := greptimekey.Decode[greptimekey.LeaseValue](p.Value)
				if err != nil {
					return nil, fmt.Errorf("lease %q: %w", p.Key, err)
				}
				at(nodeKey{src.role, id}).lease = &v
				continue
			}
			role, id, err := greptimekey.ParseNodeInfoKey(p.Key)
			if err != nil {
				return nil, err
			}
			if roleName(role) == "" || (only != "" && role != only.key()) {
				continue // a metasrv's own entry, or a role not asked for
			}
			v, err := greptimekey.Decode[greptimekey.NodeInfo](p.Value)
			if err != nil {
				return nil, fmt.Errorf("node info %q: %w", p.Key, err)
			}
			at(nodeKey{role, id}).info = &v
		}
	}
	return entries, nil
}

// node is the listing row of the node at k, judged at nowMs.
func (e *entry) node(k nodeKey, nowMs int64, heartbeatInterval time.Duration) Node {
	n := Node{Role: roleName(k.role), ID: k.id, Workloads: []int32{}}
	var last, leaseTs int64
	if l := e.lease; l != nil {
		n.Addr, last, leaseTs = l.NodeAddr, l.TimestampMillis, l.TimestampMillis
		n.Workloads = append(n.Workloads, l.Workloads.Types...)
	}
	if i := e.info; i != nil {
		if n.Addr == "" {
			n.Addr = i.Peer.Addr
		}
		last = max(last, i.LastActivityTs)
		n.Version, n.GitCommit, n.Hostname = i.Version, i.GitCommit, i.Hostname
		if i.StartTimeMs > 0 && i.StartTimeMs <= math.MaxInt64 {
			n.StartTime = time.UnixMilli(int64(i.StartTimeMs)).UTC()
		}
		if e.lease == nil {
			n.Workloads = append(n.Workloads, statusWorkloads(i.Status)...)
		}
	}
	n.LastHeartbeat = time.UnixMilli(last).UTC()
	n.LastHeartbeatAgeMillis = max(nowMs-last, 0)
	window := LeaseWindow(n.Role, heartbeatInterval).Milliseconds()
	if n.Role == RoleFrontend {
		// GreptimeDB's active filter: elapsed < window, with a clock
		// running behind counted as no time elapsed.
		n.LeaseCurrent = e.info != nil && max(nowMs-e.info.LastActivityTs, 0) < window
	} else {
		n.LeaseCurrent = e.lease != nil && max(nowMs-leaseTs, 0) < window
	}
	return n
}

// nodeSource is one prefix of the in-memory KV that Nodes reads: leases of
// one role (lease set), or node info.
type nodeSource struct {
	prefix []byte
	role   greptimekey.Role
	lease  func(key []byte) (uint64, error)
}

func nodeSources(role NodeRole) []nodeSource {
	datanodes := nodeSource{prefix: []byte(greptimekey.DatanodeLeasePrefix), role: greptimekey.RoleDatanode, lease: greptimekey.ParseDatanodeLeaseKey}
	flownodes := nodeSource{prefix: []byte(greptimekey.FlownodeLeasePrefix), role: greptimekey.RoleFlownode, lease: greptimekey.ParseFlownodeLeaseKey}
	switch role {
	case "":
		return []nodeSource{datanodes, flownodes, {prefix: []byte(greptimekey.NodeInfoPrefix)}}
	case RoleDatanode:
		return []nodeSource{datanodes, {prefix: greptimekey.NodeInfoRolePrefix(greptimekey.RoleDatanode)}}
	case RoleFlownode:
		return []nodeSource{flownodes, {prefix: greptimekey.NodeInfoRolePrefix(greptimekey.RoleFlownode)}}
	default:
		return []nodeSource{{prefix: greptimekey.NodeInfoRolePrefix(role.key())}}
	}
}

func roleName(r greptimekey.Role) NodeRole {
	switch r {
	case greptimekey.RoleDatanode:
		return RoleDatanode
	case greptimekey.RoleFrontend:
		return RoleFrontend
	case greptimekey.RoleFlownode:
		return RoleFlownode
	default:
		return ""
	}
}

func statusWorkloads(s greptimekey.NodeStatus) []int32 {
	if s.Datanode != nil {
		return s.Datanode.Workloads
	}
	return s.Workloads
}
