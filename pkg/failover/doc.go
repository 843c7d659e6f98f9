// Package failover is the region supervisor (GreptimeDB v1.1.4's
// region/supervisor.rs): the leader-only loop that moves the leader regions
// of a failed datanode to live ones.
//
// # State machine, per term
//
//	started ──(initialization delay)──► initialize: register a detector for
//	   │                                 every leader region of every route
//	   │                                 (retried every minute on error;
//	   │                                 skipped while maintenance is on)
//	   └────────────── every tick ─────► failed regions (phi over the
//	                                     threshold), minus those migrating;
//	                                     nothing while maintenance is on;
//	                                     grouped by datanode, a target per
//	                                     region from the selector with the
//	                                     failed datanode excluded; one
//	                                     migration each (reason Failover),
//	                                     submitted up to 32 at once
//
// The detectors are fed by every term's heartbeats from its start; the
// initialization only adds the regions whose datanode never heartbeated in
// this term (those that died before it began). A migration that finds the
// region already moved, its leader changed, or its table gone removes that
// detector, as GreptimeDB's does. A migration that moves the region hands
// its detection over itself (migration.Detectors): the old leader's pair is
// forgotten and the new leader's starts afresh.
//
// # Failures
//
// Everything the supervisor decides is leader-only and belongs to the term:
// on step-down its loop ends and a new leader starts over with empty
// detectors. A migration it submitted is a durable procedure: it goes on on
// the next leader, whose supervisor sees it as migrating and leaves the
// region alone. No target datanode (all others dead or excluded): the
// failure is logged and retried on the next tick.
package failover
