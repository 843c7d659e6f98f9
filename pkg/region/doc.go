// Package region holds the leader's region bookkeeping that GreptimeDB's
// metasrv keeps in memory: the operating-region keeper and the region lease
// decision of every datanode heartbeat (GreptimeDB v1.1.4's
// common/meta region_keeper.rs, meta-srv region/lease_keeper.rs and
// handler/region_lease_handler.rs). It knows nothing of gRPC: the heartbeat
// chain calls LeaseDecider.Lease and puts the answer in the response.
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
// # Failures
//
// When the routes cannot be read, Lease returns the error and no lease; the
// heartbeat goes on without one, and the datanode's current leases run out
// unless a later heartbeat renews them (GreptimeDB logs and continues the
// same way, so a metadata hiccup is not taken for a datanode failure).
package region
