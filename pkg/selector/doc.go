// Package selector picks the datanodes that new regions go to, as GreptimeDB
// v1.1.4's metasrv selectors do (src/meta-srv/src/selector*): round_robin,
// lease_based and load_based, chosen by the `selector` configuration key.
//
// # What a selector reads
//
// Every selector starts from the datanodes that are alive: those whose node
// info (__meta_cluster_node_info-0-0-{id}) in the leader's in-memory KV has a
// last_activity_ts younger than the datanode lease, 3 x heartbeat_interval +
// 1s (10s by default). GreptimeDB v1.1.4 judges liveness by the node info,
// not by the __meta_datanode_lease key, and so does this package. A datanode
// whose node info is timestamped ahead of the leader's clock is not alive
// (GreptimeDB's unsigned elapsed time wraps). An optional workload filter
// drops datanodes whose workload types it refuses; AcceptIngestWorkload is
// the one GreptimeDB's table creation and region failover use.
//
// GreptimeDB's selectors exclude nothing for maintenance mode: the
// __switches/maintenance switch only pauses region failover, so selection
// goes on while it is on, here too.
//
// load_based also reads each alive datanode's stats
// (__meta_datanode_stat-0-{id}) and weighs it by its region count in its last
// stat: weight = max - regions + (max - min), with (max - min) taken as 1
// when all counts are equal; a datanode without stats is not a candidate.
//
// # State and ownership
//
// Only the leader selects (DDL procedures and region failover run there).
// LeaseBased and LoadBased keep no state. RoundRobin keeps one counter, in
// memory only: whoever holds the *RoundRobin owns it (the node's composition
// root builds one selector for the process, as GreptimeDB builds one per
// metasrv process), it is never persisted and not reset on a leadership
// change; a new leader, being another process, starts from its own counter.
// The counter only spreads choices, so losing it costs nothing.
//
// # Failures
//
// A request for more datanodes than are available fails with a
// *NotEnoughAvailableError (errors.Is ErrNotEnoughAvailableDatanodes), whose
// text is GreptimeDB's NoEnoughAvailableNode message and whose Code is
// GreptimeDB's RuntimeResourcesExhausted (6000). A KV read or a value that
// does not decode fails the selection with that error wrapped: choosing from
// a partial view could overload the datanodes that happened to be read.
package selector
