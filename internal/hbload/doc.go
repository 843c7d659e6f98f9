// Package hbload is the load of `metasrv bench heartbeat`: a fleet of fake
// GreptimeDB nodes (internal/greptimefake) heartbeating to a running metasrv
// cluster as GreptimeDB's meta-client does, and the measurement of how the
// cluster's leader answers them.
//
// A run has two phases. Warm-up starts the nodes (all at once, or spread
// over Config.Ramp) and lasts until every node has completed a handshake
// with the leader; its length is reported. The measurement then runs for
// Config.Duration: heartbeats answered per second, the request -> response
// latency of the beats sent inside the window, errors, reconnects and
// not-leader answers, and, with a Scraper, the leader's CPU time per 1,000
// heartbeats and its resident memory before the nodes started and at the
// end.
//
// The nodes share connection pools (Config.ConnsPer nodes per pool, one
// connection per metasrv address in each), as the nodes of one process share
// GreptimeDB's channel manager; ten thousand nodes in pools of 250 use 40
// connections to the leader, not ten thousand.
//
// Latency: each node records its latencies from its first beat on, warm-up
// included, into its pool's histogram (greptimefake.Config.Latency); those
// merged are the whole run's figures. A histogram of the fake cannot be cut
// at the start of the window, so the window's own figures come from a
// stream interceptor on the pools' connections that times each beat from
// SendMsg to the RecvMsg of its answer, the same interval the nodes time,
// and records only beats sent inside the window.
package hbload
