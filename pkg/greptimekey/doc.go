// Package greptimekey holds GreptimeDB v1.1.4's metadata key layout and value
// encodings, byte for byte, so that metasrv can share a key-value table with
// GreptimeDB's own metasrv (take over a running cluster's greptime_metakv) and
// so that GreptimeDB frontends, datanodes and flownodes, which read several of
// these keys through the Store and Cluster services, find what they expect.
//
// # Keys
//
// Persistent (in the PostgreSQL table):
//
//	__catalog_name/{catalog}             null
//	__schema_name/{catalog}/{schema}     {"ttl":null,"extra_options":{}}
//	__node_address/{role}/{node_id}      {"peer":{"id":3,"addr":"10.0.0.3:4001"}}
//	__meta_seq-{name}                    8 bytes, little-endian: the next free id
//	__switches/maintenance               empty value; present = on
//	__maintenance                        the legacy maintenance switch (read, deleted, never written)
//	__switches/pause_procedure           empty value; present = on
//	__switches/recovery                  empty value; present = on
//
// In-memory (the leader's in-memory key-value store, written by the heartbeat
// handlers, read by the Cluster service):
//
//	__meta_datanode_lease-0-{id}              LeaseValue
//	__meta_flownode_lease-0-{id}              LeaseValue
//	__meta_cluster_node_info-0-{role}-{id}    NodeInfo
//	__meta_datanode_stat-0-{id}               StatValue (a bare JSON array of Stat)
//
// The "0" in the in-memory keys is a literal (GreptimeDB's former cluster id);
// parsers accept any number there, as GreptimeDB's regular expressions do.
// role is the number of a Role. A frontend's node-info id is not the id it
// sends but FrontendNodeID of its address.
//
// # Values
//
// GreptimeDB writes these values with serde_json, and reads them back with
// serde's rules, which are stricter than encoding/json's. The types here
// follow serde on both sides:
//
//   - fields are written in GreptimeDB's order, every field written (no
//     omitempty), an empty list as [] and an empty map as {} (never null);
//   - a Rust enum is externally tagged: {"Datanode":{...}}; the Go type
//     holds which variant it is (NodeWorkloads.Role, NodeStatus.Role);
//   - on decoding, a field GreptimeDB has no default for must be present and
//     not null (the error names it, with its path: "workloads.Datanode.types"),
//     a field with #[serde(default)] may be missing, unknown fields are
//     ignored and names match exactly (encoding/json would match any case).
//
// Read values with Decode (or json.Unmarshal); decoding errors wrap
// ErrInvalidValue, key parsing errors wrap ErrInvalidKey.
//
// Encode the top-level values with their Encode methods rather than
// json.Marshal: json.Marshal escapes <, > and & (as \u003c, ...), which
// GreptimeDB reads back the same but never writes. Both escape U+2028 and
// U+2029 the same way (encoding/json always does; serde_json never does),
// a difference no reader sees.
//
// # Table metadata
//
// Persistent, written by the DDL procedures (GreptimeDB's key.rs):
//
//	__table_name/{catalog}/{schema}/{table}   TableNameValue  {"table_id":1024}
//	__table_info/{table_id}                   TableInfoValue  {"table_info":{...},"version":0}
//	__table_route/{table_id}                  TableRouteValue {"type":"physical","region_routes":[...],"max_region_number":0,"version":0}
//	__dn_table/{datanode_id}/{table_id}       DatanodeTableValue
//	__table_repart/{table_id}                 (repartitioning only; tombstoned and deleted with the rest)
//	__topic_region/{topic}/{region_id}        empty value, one per region on a Kafka WAL
//	__tombstone/{key}                         a dropped table's key, moved with its value
//
// Table ids are u32; a region id is the table id in the high 32 bits and
// the region number in the low 32 (RegionID). Values are stored as the raw
// serde_json bytes, with no wrapper; GreptimeDB's updates compare-and-put
// against the bytes they read, so an update must compare against the value
// as read, never against a re-encoding of it.
package greptimekey
