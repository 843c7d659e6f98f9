// Package heartbeat is the leader's side of GreptimeDB's heartbeat protocol:
// the sessions of the datanodes, frontends and flownodes that heartbeat to
// this node, the handler chain each heartbeat goes through, and the mailbox
// that pushes instructions to them and waits for their replies. The gRPC
// stream itself (greptime.v1.meta.Heartbeat) is package greptimeapi's; this
// package knows nothing of gRPC.
//
// # Terms and sessions
//
// The Service is a leadership listener. When its node leads term t and is
// ready, Start opens t's state: an empty session registry, the "infancy"
// flag, the per-datanode epochs of the stats handler and an empty mailbox.
// Stop, on step-down, closes that state: every session of t is ended (its
// Done channel closes) and the gRPC layer ends each stream with ABORTED, the
// status GreptimeDB's nodes reconnect on, so no stream outlives the term
// that accepted it (GreptimeDB #8156 left streams open after a step-down).
// A new term starts with no session at all.
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
// (all roles); mailbox replies, which end the chain (a heartbeat carrying a
// reply is answered with the header alone); the region lease (datanodes,
// through Options.RegionLeaser, none without it); region failure detection
// (datanodes: the leader regions of the heartbeat feed their phi-accrual
// detectors through Options.FailureDetector, only with
// enable_region_failover); stats collection with the
// __node_address rewrite on a new node epoch (datanodes); the flownode
// address rewrite. A handler's failure is logged and the chain goes on
// (GreptimeDB #7199: a lease error must not fail the heartbeat).
//
// # Mailbox
//
// The leader tells nodes things (open, close, upgrade, downgrade or flush
// regions; invalidate caches: package instruction) by pushing a
// HeartbeatResponse whose only fields are an OK header and a
// mailbox_message onto the node's stream, between the answers to its
// heartbeats; the node answers on a later heartbeat that carries the reply
// as its mailbox_message. The mailbox is part of the term's state:
//
//   - Each registered session has an outbox of 128 responses (GreptimeDB's
//     per-stream channel); the gRPC stream's goroutine is the only sender on
//     the stream, and sends a pushed response only if Deliverable: the
//     session's term is still the one this node trusts it leads. A full
//     outbox holds the pusher up (backpressure) until its deadline, ctx, or
//     the end of the session or term.
//   - Send takes the message id from the heartbeat_mailbox sequence
//     (__meta_seq-heartbeat_mailbox, ranges of 100 from 1) through the
//     term's fenced store, so ids stay unique across leader changes and a
//     deposed leader allocates none; 0 is never taken: one-way messages
//     (SendOneway, Broadcast) carry id 0. from is "Metasrv@{server_addr}",
//     to is "{Role}-{id}@{peer addr}" ("{Role} broadcast" for a broadcast).
//   - A Send waits, under its own deadline, for the reply with its id from
//     the node it went to; a reply nobody waits for (id 0, late, from
//     another node) is logged at debug and dropped.
//
// Failure: no session under the id is ErrPusherNotFound, before any id is
// taken; no reply in time is ErrMailboxTimeout (the node may still act on
// the message); the node's stream ending first (closed, or replaced by a
// reconnect) is ErrChannelClosed; a term this node does not run or trust,
// or the term ending while the caller waits, is an election.ErrNotLeader
// error. On step-down every waiter fails at once, sessions end, and what
// remains queued is never sent. Unlike GreptimeDB, which keeps a step-down's
// waiters until their timeouts, nothing of the mailbox outlives its term.
//
// Leases, node info and stats live in the leader's in-memory KV, which the
// core empties on every leadership change; __node_address is durable and
// written through the term's fenced store, so a deposed leader cannot write
// it.
package heartbeat
