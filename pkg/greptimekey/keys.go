package greptimekey

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalidKey is the root of every error about a key that does not have
// the layout its parser expects.
var ErrInvalidKey = errors.New("greptimekey: invalid key")

// Role is a node's role as GreptimeDB numbers it in keys: the proto's
// greptime.v1.meta.Role for the first three, and 99 for a metasrv (node-info
// keys only, GreptimeDB's cluster::Role).
type Role int32

const (
	RoleDatanode Role = 0
	RoleFrontend Role = 1
	RoleFlownode Role = 2
	// RoleMetasrv appears only in node-info keys and NodeStatus; GreptimeDB's
	// metasrv lists itself under it, the heartbeat protocol never sends it.
	RoleMetasrv Role = 99
)

// String returns the role's Rust variant name, which is also its tag in the
// externally tagged JSON enums (NodeWorkloads, NodeStatus).
func (r Role) String() string {
	switch r {
	case RoleDatanode:
		return "Datanode"
	case RoleFrontend:
		return "Frontend"
	case RoleFlownode:
		return "Flownode"
	case RoleMetasrv:
		return "Metasrv"
	default:
		return "Role(" + strconv.FormatInt(int64(r), 10) + ")"
	}
}

// roleFromNumber is GreptimeDB's TryFrom<i32> for cluster::Role.
func roleFromNumber(n int32) (Role, bool) {
	switch r := Role(n); r {
	case RoleDatanode, RoleFrontend, RoleFlownode, RoleMetasrv:
		return r, true
	default:
		return 0, false
	}
}

// Leases, written by every metasrv that receives a heartbeat (followers too)
// into its in-memory store.
const (
	DatanodeLeasePrefix = "__meta_datanode_lease-0-"
	FlownodeLeasePrefix = "__meta_flownode_lease-0-"
)

// DatanodeLeaseKey is the key of datanode id's lease: __meta_datanode_lease-0-{id}.
func DatanodeLeaseKey(id uint64) []byte {
	return strconv.AppendUint([]byte(DatanodeLeasePrefix), id, 10)
}

// FlownodeLeaseKey is the key of flownode id's lease: __meta_flownode_lease-0-{id}.
func FlownodeLeaseKey(id uint64) []byte {
	return strconv.AppendUint([]byte(FlownodeLeasePrefix), id, 10)
}

// ParseDatanodeLeaseKey returns the node id of a datanode lease key.
func ParseDatanodeLeaseKey(key []byte) (uint64, error) {
	return parseNodeKey("__meta_datanode_lease-", key)
}

// ParseFlownodeLeaseKey returns the node id of a flownode lease key.
func ParseFlownodeLeaseKey(key []byte) (uint64, error) {
	return parseNodeKey("__meta_flownode_lease-", key)
}

// Datanode stats, written by the leader's heartbeat handlers.
const DatanodeStatPrefix = "__meta_datanode_stat-0-"

// DatanodeStatKey is the key of datanode id's recent stats: __meta_datanode_stat-0-{id}.
func DatanodeStatKey(id uint64) []byte { return strconv.AppendUint([]byte(DatanodeStatPrefix), id, 10) }

// ParseDatanodeStatKey returns the node id of a datanode stat key.
func ParseDatanodeStatKey(key []byte) (uint64, error) {
	return parseNodeKey("__meta_datanode_stat-", key)
}

// Node info, written by the leader's heartbeat handlers and expired by the
// node expiry listener.
const NodeInfoPrefix = "__meta_cluster_node_info-0-"

// NodeInfoKey is the key of a node's info: __meta_cluster_node_info-0-{role}-{id}.
// For a frontend, id is FrontendNodeID(addr), not the id it sends.
func NodeInfoKey(role Role, id uint64) []byte {
	return strconv.AppendUint(NodeInfoRolePrefix(role), id, 10)
}

// NodeInfoRolePrefix selects the node-info keys of one role:
// __meta_cluster_node_info-0-{role}-.
func NodeInfoRolePrefix(role Role) []byte {
	b := strconv.AppendInt([]byte(NodeInfoPrefix), int64(role), 10)
	return append(b, '-')
}

// ParseNodeInfoKey parses __meta_cluster_node_info-{n}-{role}-{id}, as
// GreptimeDB's pattern ^__meta_cluster_node_info-([0-9]+)-([0-9]+)-([0-9]+)$
// does: the first number may be any, the role must be a known one.
func ParseNodeInfoKey(key []byte) (Role, uint64, error) {
	const prefix = "__meta_cluster_node_info-"
	rest, ok := bytes.CutPrefix(key, []byte(prefix))
	if !ok {
		return 0, 0, fmt.Errorf("%w: %q does not start with %q", ErrInvalidKey, key, prefix)
	}
	parts := bytes.Split(rest, []byte("-"))
	if len(parts) != 3 || !allDigits(parts[0]) || !allDigits(parts[1]) || !allDigits(parts[2]) {
		return 0, 0, fmt.Errorf("%w: %q is not %s{n}-{role}-{id}", ErrInvalidKey, key, prefix)
	}
	n, err := strconv.ParseInt(string(parts[1]), 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %q: role: %w", ErrInvalidKey, key, err)
	}
	role, ok := roleFromNumber(int32(n))
	if !ok {
		return 0, 0, fmt.Errorf("%w: %q: unknown role %d", ErrInvalidKey, key, n)
	}
	id, err := strconv.ParseUint(string(parts[2]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %q: node id: %w", ErrInvalidKey, key, err)
	}
	return role, id, nil
}

// parseNodeKey parses {prefix}{n}-{id}, GreptimeDB's ^{prefix}([0-9]+)-([0-9]+)$.
func parseNodeKey(prefix string, key []byte) (uint64, error) {
	rest, ok := bytes.CutPrefix(key, []byte(prefix))
	if !ok {
		return 0, fmt.Errorf("%w: %q does not start with %q", ErrInvalidKey, key, prefix)
	}
	n, id, ok := bytes.Cut(rest, []byte("-"))
	if !ok || !allDigits(n) || !allDigits(id) {
		return 0, fmt.Errorf("%w: %q is not %s{n}-{id}", ErrInvalidKey, key, prefix)
	}
	v, err := strconv.ParseUint(string(id), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: node id: %w", ErrInvalidKey, key, err)
	}
	return v, nil
}

// allDigits is the regular expression [0-9]+.
func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// NodeAddressPrefix is where the persistent peer addresses of datanodes and
// flownodes live (rewritten when a node restarts with a new epoch).
const NodeAddressPrefix = "__node_address/"

// NodeAddressKey is __node_address/{role}/{id}.
func NodeAddressKey(role Role, id uint64) []byte {
	b := strconv.AppendInt([]byte(NodeAddressPrefix), int64(role), 10)
	b = append(b, '/')
	return strconv.AppendUint(b, id, 10)
}

// Catalogs and schemas.
const (
	CatalogNamePrefix = "__catalog_name/"
	SchemaNamePrefix  = "__schema_name/"

	// DefaultCatalog is GreptimeDB's build-time DEFAULT_CATALOG_NAME (the
	// default build's value; a GreptimeDB built with another one would need
	// it changed here too).
	DefaultCatalog = "greptime"
	// DefaultSchema, InformationSchema and PrivateSchema are the schemas every
	// metasrv creates in DefaultCatalog at start when they are missing.
	DefaultSchema     = "public"
	InformationSchema = "information_schema"
	PrivateSchema     = "greptime_private"
)

// CatalogNameKey is __catalog_name/{catalog}.
func CatalogNameKey(catalog string) []byte { return []byte(CatalogNamePrefix + catalog) }

// SchemaNameKey is __schema_name/{catalog}/{schema}.
func SchemaNameKey(catalog, schema string) []byte {
	return []byte(SchemaNamePrefix + catalog + "/" + schema)
}

// CatalogNameValue is the value of every catalog key: GreptimeDB's
// CatalogNameValue is a unit struct, which serde_json writes as null. A fresh
// slice each call, so no caller can change another's.
func CatalogNameValue() []byte { return []byte("null") }

// DefaultSchemaNameValue is the value GreptimeDB writes for a schema created
// without options: SchemaNameValue::default(), both fields written.
func DefaultSchemaNameValue() []byte { return []byte(`{"ttl":null,"extra_options":{}}`) }

// Runtime switches: on while the key exists, whatever its value (GreptimeDB
// writes an empty one).
const (
	MaintenanceKey = "__switches/maintenance"
	// LegacyMaintenanceKey is where GreptimeDB before the __switches keys kept
	// the maintenance switch; it still counts as on, and turning maintenance
	// off deletes it too.
	LegacyMaintenanceKey = "__maintenance"
	PauseProcedureKey    = "__switches/pause_procedure"
	RecoveryKey          = "__switches/recovery"
)

// Sequences.
const (
	SequencePrefix = "__meta_seq-"

	SeqTableID          = "table_id"
	SeqFlowID           = "flow_id"
	SeqHeartbeatMailbox = "heartbeat_mailbox"
)

// SequenceKey is __meta_seq-{name}.
func SequenceKey(name string) []byte { return []byte(SequencePrefix + name) }
