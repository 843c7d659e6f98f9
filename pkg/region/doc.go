// Package region holds the leader's region bookkeeping that GreptimeDB's
// metasrv keeps in memory: the operating-region keeper, the region lease
// decision of every datanode heartbeat and the region failure detector
// (GreptimeDB v1.1.4's common/meta region_keeper.rs, meta-srv
// region/lease_keeper.rs, handler/region_lease_handler.rs,
// failure_detector.rs, region/failure_detector.rs and
// handler/failure_handler.rs). It knows nothing of gRPC: the heartbeat chain
// calls LeaseDecider.Lease and puts the answer in the response, then feeds
// FailureDetector.Heartbeats.
//
// # The keeper
//
// A procedure that creates, opens, drops or migrates a region registers
// (datanode id, region id) with the role the region's lease must carry
// meanwhile, and releases the Guard when it is done. Registering a pair that
// is already registered fails with ErrRegionOperating: two procedures must
// not operate one region on one datanode at once.
//
// The keeper is leader-only state scoped to a term. It is a
// metasrv.Listener: Start opens the term empty, Stop drops every
// registration, and between two terms Register fails with ErrNoTerm, so a
// procedure of an ended term cannot mark regions for the next. It must
// start before, and so stop after, the procedure manager in Deps.Listeners,
// so that resumed procedures can register again. A Guard removes only its
// own registration: one released late, after its term, removes nothing.
//
// # The lease decision
//
// For each region a datanode reports, in order and once per region id:
//
//  1. If the table's route places the region on the datanode: the leader
//     gets Leader, StagingLeader or DowngradingLeader by the route's
//     leader_state, a follower gets Follower. The route wins over the
//     keeper.
//  2. Else, if the keeper has the region operating on that datanode in the
//     heartbeat's term: the role it was registered with, whatever role the
//     datanode reports (GreptimeDB v1.1.4 grants the keeper's role, not the
//     reported one; a difference is logged).
//  3. Else the region is closeable: it goes to closeable_region_ids, so the
//     datanode closes it. This covers regions of tables without a route,
//     regions missing from their route, regions the route places elsewhere,
//     and regions of logical tables.
//
// lease_seconds is 3 x heartbeat_interval + 1s in whole seconds (10 by
// default) and duration_since_epoch is echoed from the request.
//
// # The failure detector
//
// FailureDetector holds one PhiAccrualDetector per (datanode id, region id).
// A detector keeps the last 1000 intervals between the heartbeats it saw,
// in whole milliseconds, and their sums; phi at a time t is
// -log10(1 - F(t - last)), F the normal distribution of the intervals with
// the acceptable pause added to their mean and a standard deviation of at
// least MinStdDeviation (a logistic approximation, as GreptimeDB's and
// Akka's). The first heartbeat seeds the intervals with the first
// heartbeat estimate ± a quarter of it, so a region seen once still fails
// when it goes silent; a heartbeat older than the last is ignored; one that
// comes when phi has already reached the threshold moves the last heartbeat
// but does not teach the history its gap. With GreptimeDB's defaults
// (threshold 8, 100ms, 10s, 1s) and 3s heartbeats, a silent datanode's
// regions fail 13.5s after its last heartbeat.
//
// It is fed three ways: the heartbeat chain (after the region lease) calls
// Heartbeats with the regions a datanode's heartbeat leads, which watches a
// region not watched yet; Register watches regions as if they had just
// heartbeated, leaving watched ones alone (the supervisor with the routes'
// leader regions, DDL with a new table's); Reset restarts them (a region
// placed anew). Deregister stops watching (a dropped table, a region that
// moved). The supervisor asks Failed, which lists the pairs whose phi has
// reached the threshold; they stay watched until it deregisters or resets
// them. Phi gives each datanode's highest phi, for metrics.
//
// Times are milliseconds since the term's start, from time.Time.Sub, so they
// follow the monotonic clock: GreptimeDB's wall-clock milliseconds fail
// every region when the wall clock steps forward, and hide silent ones when
// it steps back. The heartbeat's time is the leader's arrival time, as
// GreptimeDB's stat timestamp, never the datanode's.
//
// The detectors are leader-only state scoped to a term. FailureDetector is a
// metasrv.Listener: Start opens the term with none, Stop drops them all, and
// a term's detectors are rebuilt from that term's heartbeats and
// registrations (GreptimeDB clears them on leader change too). A heartbeat
// of another term, or with no term, is dropped; Register, Reset and
// Deregister fail with ErrNotDetecting, so a procedure of an ended term
// cannot watch regions in the next. It should start before the heartbeat
// service in Deps.Listeners, so the first heartbeats of a term are not lost.
//
// # Failures
//
// When the routes cannot be read, Lease returns the error and no lease; the
// heartbeat goes on without one, and the datanode's current leases run out
// unless a later heartbeat renews them (GreptimeDB logs and continues the
// same way, so a metadata hiccup is not taken for a datanode failure). The
// failure detector is then fed the regions by the roles the datanode
// reports, so the hiccup does not look like silence to it either. The
// detector itself cannot fail: it is memory only, and a leader change
// forgets it.
package region
