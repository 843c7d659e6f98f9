package greptimekey

import (
	"encoding/json"
	"fmt"
)

// LeaseValue is a datanode's or flownode's lease (meta-srv key.rs
// LeaseValue): when the metasrv last heard from the node, by the metasrv's
// clock, and where it is. Every field is required on reading.
type LeaseValue struct {
	TimestampMillis int64         `json:"timestamp_millis"`
	NodeAddr        string        `json:"node_addr"`
	Workloads       NodeWorkloads `json:"workloads"`
}

// Encode returns the value as GreptimeDB writes it.
func (v LeaseValue) Encode() ([]byte, error) { return v.MarshalJSON() }

func (v LeaseValue) MarshalJSON() ([]byte, error) { return appendLease(make([]byte, 0, 128), v) }

func (v *LeaseValue) UnmarshalJSON(data []byte) error {
	var out LeaseValue
	if err := decodeObject("LeaseValue", data,
		required("timestamp_millis", &out.TimestampMillis),
		required("node_addr", &out.NodeAddr),
		required("workloads", &out.Workloads),
	); err != nil {
		return err
	}
	*v = out
	return nil
}

// NodeWorkloads is the heartbeat request's node_workloads oneof, which
// GreptimeDB stores with serde as an externally tagged enum:
// {"Datanode":{"types":[0]}}, {"Frontend":{"types":[]}},
// {"Flownode":{"types":[]}}. Role picks the variant (RoleDatanode,
// RoleFrontend or RoleFlownode); Types is the workload type list (for a
// datanode, 0 = Hybrid is the only known type).
type NodeWorkloads struct {
	Role  Role
	Types []int32
}

func (w NodeWorkloads) MarshalJSON() ([]byte, error) {
	switch w.Role {
	case RoleDatanode, RoleFrontend, RoleFlownode:
		return encodeVariant(w.Role.String(), workloads(w.Types))
	default:
		return nil, fmt.Errorf("%w: NodeWorkloads: role %v has no workloads variant", ErrInvalidValue, w.Role)
	}
}

func (w *NodeWorkloads) UnmarshalJSON(data []byte) error {
	const typ = "NodeWorkloads"
	tag, body, err := decodeVariant(typ, data)
	if err != nil {
		return err
	}
	var role Role
	switch tag {
	case "Datanode":
		role = RoleDatanode
	case "Frontend":
		role = RoleFrontend
	case "Flownode":
		role = RoleFlownode
	default:
		return &fieldError{typ: typ, err: fmt.Errorf("unknown variant %q, want Datanode, Frontend or Flownode", tag)}
	}
	var types workloads
	if err := json.Unmarshal(body, &types); err != nil {
		return within(typ, tag, err)
	}
	*w = NodeWorkloads{Role: role, Types: []int32(types)}
	return nil
}
