// Package heartbeat is the leader's side of GreptimeDB's heartbeat protocol:
// the sessions of the datanodes, frontends and flownodes that heartbeat to
// this node, and the handler chain each heartbeat goes through. The gRPC
// stream itself (greptime.v1.meta.Heartbeat) is package greptimeapi's; this
// package knows nothing of gRPC.
//
// # Terms and sessions
//
// The Service is a leadership listener. When its node leads term t and is
// ready, Start opens t's state: an empty session registry, the "infancy"
// flag, and the per-datanode epochs of the stats handler. Stop, on step-down,
// closes that state: every session of t is ended (its Done channel closes)
// and the gRPC layer ends each stream with ABORTED, the status GreptimeDB's
// nodes reconnect on, so no stream outlives the term that accepted it
// (GreptimeDB #8156 left streams open after a step-down). A new term starts
// with no session at all.
//
//	           Open (node leads t)           term t ends / same id re-registers
//	(stream) ───────────────────▶ registered ───────────────────────────────▶ ended
//	   │                              │  Close (stream ended)
//	   │ Open (node does not lead)    ▼
//	   └────────────────────────▶ unregistered: its first heartbeat is answered
//	                              NotLeader, then the stream is aborted
//
// A session is registered under (role, node id): datanodes and flownodes by
// the member id they send, frontends by a counter of this process (they all
// send 0), as GreptimeDB does. A node that reconnects replaces its old
// session, which is ended. Close removes a session only if it is still the
// registered one, so a late close of an old stream cannot unregister its
// successor.
//
// # The handler chain
//
// Every request, the handshake included, runs the chain in GreptimeDB's
// order: response header; keep-lease (datanodes, flownodes); check-leader,
// which ends the chain with NotLeader (code 2) unless this node trusts its
// leadership of the session's term right now (GreptimeDB #5598: a follower
// must not accept work); the infancy reset of the in-memory KV on the first
// heartbeat of a term; stat extraction (datanodes); node-info collection
// (all roles); stats collection with the __node_address rewrite on a new
// node epoch (datanodes); the flownode address rewrite. A handler's failure
// is logged and the chain goes on (GreptimeDB #7199: a lease error must not
// fail the heartbeat). Part 2 adds handlers (mailbox replies, region leases)
// to the same list.
//
// Leases, node info and stats live in the leader's in-memory KV, which the
// core empties on every leadership change; __node_address is durable and
// written through the term's fenced store, so a deposed leader cannot write
// it.
package heartbeat
