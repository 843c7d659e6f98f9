// Package ddlload is the load of `metasrv bench ddl`: fake GreptimeDB
// datanodes (internal/greptimefake region servers) that the metasrv creates
// regions on, and concurrent clients playing a GreptimeDB frontend that
// submit CREATE TABLE (and, optionally, DROP TABLE) DDL tasks to the leader's
// ProcedureService, with the measurement of how fast and with what latency
// the leader runs those procedures.
//
// A run starts the datanodes and waits until each has received its first
// region lease: the answer to a heartbeat that carried its node info, from
// when on the leader's selector counts it alive. It then creates one
// database, runs Config.Tables create-table calls from Config.Clients
// workers, and checks the result against the metadata itself (the
// __table_name keys under the schema, each table's __table_route, and the
// regions the datanodes hold), so that a run cannot report tables that were
// not made. With Config.Drop it drops every created table the same way,
// checks that nothing is left, and drops the database.
//
// The clients share one gRPC connection per metasrv address, as the DDL
// callers of one GreptimeDB frontend share its channel manager; each call is
// zstd-compressed as GreptimeDB's procedure client sends it. Like that
// client, a call answered with the NotLeader header, or failing with
// Unavailable, asks for the leader again and is retried, up to three
// attempts; a call's latency runs from its first attempt to its answer.
package ddlload
