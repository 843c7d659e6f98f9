// Package greptimeapi serves GreptimeDB's meta protocol, greptime.v1.meta
// (pkg/api/greptime/v1/meta), on the same gRPC server and over the same core
// as metasrv.v1: the Heartbeat service (AskLeader and the heartbeat stream of
// package heartbeat), Store, Cluster and Config. A GreptimeDB datanode,
// frontend or flownode whose metasrv_addrs name metasrv nodes finds the
// leader, heartbeats and reads its metadata here exactly as it would from
// GreptimeDB's own metasrv.
//
// # Not leader
//
// GreptimeDB's clients learn "not leader" in different ways per service, and
// each is answered as they expect:
//
//   - Heartbeat: the response header carries error code 2 (NotLeader), then
//     the stream ends with ABORTED; the node asks for the leader again.
//   - Cluster: an OK response whose header carries code 2; the client asks
//     for the leader again and retries.
//   - AskLeader, Config and Store reads: answered by every node.
//   - Store writes: GreptimeDB's own Store client never writes, but a write
//     that reaches a follower is forwarded to the leader (marked, so it is
//     never forwarded twice) and fenced there like any leader write; a
//     write the leader cannot take fails with the not-leader refusal.
//
// Every other failure is a plain Go error that package apierr's
// interceptors turn into a status, with the same map as metasrv.v1.
//
// Requests may come gzip- or zstd-compressed: GreptimeDB's clients send zstd.
// Importing this package registers both codecs with gRPC.
package greptimeapi
