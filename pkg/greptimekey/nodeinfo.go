package greptimekey

import (
	"encoding/json"
	"fmt"
)

// Peer is the proto's Peer as serde writes it: {"id":3,"addr":"10.0.0.3:4001"}.
// Both fields are required on reading.
type Peer struct {
	ID   uint64 `json:"id"`
	Addr string `json:"addr"`
}

func (p Peer) MarshalJSON() ([]byte, error) {
	type plain Peer
	return encode(plain(p))
}

func (p *Peer) UnmarshalJSON(data []byte) error {
	var out Peer
	if err := decodeObject("Peer", data, required("id", &out.ID), required("addr", &out.Addr)); err != nil {
		return err
	}
	*p = out
	return nil
}

// NodeAddressValue is the value of a __node_address key: {"peer":{...}}.
type NodeAddressValue struct {
	Peer Peer `json:"peer"`
}

// Encode returns the value as GreptimeDB writes it.
func (v NodeAddressValue) Encode() ([]byte, error) { return v.MarshalJSON() }

func (v NodeAddressValue) MarshalJSON() ([]byte, error) {
	type plain NodeAddressValue
	return encode(plain(v))
}

func (v *NodeAddressValue) UnmarshalJSON(data []byte) error {
	var out NodeAddressValue
	if err := decodeObject("NodeAddressValue", data, required("peer", &out.Peer)); err != nil {
		return err
	}
	*v = out
	return nil
}

// NodeInfo is what the leader knows of a node (common/meta cluster.rs
// NodeInfo), stored under NodeInfoKey and listed by the Cluster service (a
// frontend's information_schema.cluster_info reads it). Fields are in
// GreptimeDB's order. Peer, LastActivityTs, Status, Version, GitCommit and
// StartTimeMs are required on reading, the rest default to zero (EnvVars to
// empty). Peer is the peer as the node sent it (a frontend sends id 0).
type NodeInfo struct {
	Peer               Peer              `json:"peer"`
	LastActivityTs     int64             `json:"last_activity_ts"`
	Status             NodeStatus        `json:"status"`
	Version            string            `json:"version"`
	GitCommit          string            `json:"git_commit"`
	StartTimeMs        uint64            `json:"start_time_ms"`
	TotalCPUMillicores int64             `json:"total_cpu_millicores"`
	TotalMemoryBytes   int64             `json:"total_memory_bytes"`
	CPUUsageMillicores int64             `json:"cpu_usage_millicores"`
	MemoryUsageBytes   int64             `json:"memory_usage_bytes"`
	Hostname           string            `json:"hostname"`
	EnvVars            map[string]string `json:"env_vars"`
}

// Encode returns the value as GreptimeDB writes it, except that env_vars
// keys are sorted (GreptimeDB writes a HashMap in hash order).
func (n NodeInfo) Encode() ([]byte, error) { return n.MarshalJSON() }

func (n NodeInfo) MarshalJSON() ([]byte, error) { return appendNodeInfo(make([]byte, 0, 512), n) }

func (n *NodeInfo) UnmarshalJSON(data []byte) error {
	var out NodeInfo
	if err := decodeObject("NodeInfo", data,
		required("peer", &out.Peer),
		required("last_activity_ts", &out.LastActivityTs),
		required("status", &out.Status),
		required("version", &out.Version),
		required("git_commit", &out.GitCommit),
		required("start_time_ms", &out.StartTimeMs),
		optional("total_cpu_millicores", &out.TotalCPUMillicores),
		optional("total_memory_bytes", &out.TotalMemoryBytes),
		optional("cpu_usage_millicores", &out.CPUUsageMillicores),
		optional("memory_usage_bytes", &out.MemoryUsageBytes),
		optional("hostname", &out.Hostname),
		optional("env_vars", &out.EnvVars),
	); err != nil {
		return err
	}
	if out.EnvVars == nil {
		out.EnvVars = map[string]string{}
	}
	*n = out
	return nil
}

// NodeStatus is GreptimeDB's NodeStatus enum, externally tagged:
//
//	{"Datanode":{"rcus":0,"wcus":0,"leader_regions":N,"follower_regions":M,"workloads":{"types":[0]}}}
//	{"Frontend":{"workloads":{"types":[]}}}
//	{"Flownode":{"workloads":{"types":[]}}}
//	{"Metasrv":{"is_leader":true}}
//
// Role picks the variant, and only the fields of that variant are used:
// Datanode (required) for RoleDatanode, Workloads for RoleFrontend and
// RoleFlownode, MetasrvIsLeader for RoleMetasrv. GreptimeDB's fifth variant,
// "Standalone", never occurs in a distributed cluster and is refused.
type NodeStatus struct {
	Role            Role
	Datanode        *DatanodeStatus
	Workloads       []int32
	MetasrvIsLeader bool
}

// DatanodeStatus is the Datanode variant's body; every field is required on
// reading. The counts are of the datanode's regions in its last stat:
// LeaderRegions those with role Leader or StagingLeader, FollowerRegions the
// rest.
type DatanodeStatus struct {
	Rcus            int64   `json:"rcus"`
	Wcus            int64   `json:"wcus"`
	LeaderRegions   uint64  `json:"leader_regions"`
	FollowerRegions uint64  `json:"follower_regions"`
	Workloads       []int32 `json:"workloads"` // written as {"types":[..]}
}

type datanodeStatusJSON struct {
	Rcus            int64     `json:"rcus"`
	Wcus            int64     `json:"wcus"`
	LeaderRegions   uint64    `json:"leader_regions"`
	FollowerRegions uint64    `json:"follower_regions"`
	Workloads       workloads `json:"workloads"`
}

func (s DatanodeStatus) MarshalJSON() ([]byte, error) {
	return encode(datanodeStatusJSON{s.Rcus, s.Wcus, s.LeaderRegions, s.FollowerRegions, workloads(s.Workloads)})
}

func (s *DatanodeStatus) UnmarshalJSON(data []byte) error {
	var w workloads
	var out DatanodeStatus
	if err := decodeObject("DatanodeStatus", data,
		required("rcus", &out.Rcus),
		required("wcus", &out.Wcus),
		required("leader_regions", &out.LeaderRegions),
		required("follower_regions", &out.FollowerRegions),
		required("workloads", &w),
	); err != nil {
		return err
	}
	out.Workloads = []int32(w)
	*s = out
	return nil
}

func (s NodeStatus) MarshalJSON() ([]byte, error) {
	switch s.Role {
	case RoleDatanode:
		if s.Datanode == nil {
			return nil, fmt.Errorf("%w: NodeStatus: role Datanode without a DatanodeStatus", ErrInvalidValue)
		}
		return encodeVariant("Datanode", *s.Datanode)
	case RoleFrontend, RoleFlownode:
		return encodeVariant(s.Role.String(), struct {
			Workloads workloads `json:"workloads"`
		}{workloads(s.Workloads)})
	case RoleMetasrv:
		return encodeVariant("Metasrv", struct {
			IsLeader bool `json:"is_leader"`
		}{s.MetasrvIsLeader})
	default:
		return nil, fmt.Errorf("%w: NodeStatus: unknown role %v", ErrInvalidValue, s.Role)
	}
}

func (s *NodeStatus) UnmarshalJSON(data []byte) error {
	const typ = "NodeStatus"
	var tag string
	if err := json.Unmarshal(data, &tag); err == nil {
		// A unit variant is written as a bare string.
		return &fieldError{typ: typ, err: fmt.Errorf("variant %q is not supported", tag)}
	}
	tag, body, err := decodeVariant(typ, data)
	if err != nil {
		return err
	}
	var out NodeStatus
	switch tag {
	case "Datanode":
		var d DatanodeStatus
		if err := json.Unmarshal(body, &d); err != nil {
			return within(typ, tag, err)
		}
		out = NodeStatus{Role: RoleDatanode, Datanode: &d}
	case "Frontend", "Flownode":
		// FrontendStatus and FlownodeStatus have #[serde(default)] workloads.
		var w workloads
		if err := decodeObject(tag+"Status", body, optional("workloads", &w)); err != nil {
			return within(typ, tag, err)
		}
		out = NodeStatus{Role: RoleFrontend, Workloads: nonNil([]int32(w))}
		if tag == "Flownode" {
			out.Role = RoleFlownode
		}
	case "Metasrv":
		if err := decodeObject("MetasrvStatus", body, required("is_leader", &out.MetasrvIsLeader)); err != nil {
			return within(typ, tag, err)
		}
		out.Role = RoleMetasrv
	default:
		return &fieldError{typ: typ, err: fmt.Errorf("unknown variant %q", tag)}
	}
	*s = out
	return nil
}
