// Package regionfailoverbench is `metasrv bench failover-regions`: how long
// the leader regions of a GreptimeDB datanode that dies take to be writable
// on a live one, against a metasrv running with enable_region_failover.
//
// The run starts Config.Datanodes fake datanodes (internal/greptimefake
// region servers, ids 1..N; datanode 1 is the victim) and a database. Each
// round creates a table of N x Config.Regions partitions, which the
// round_robin selector spreads evenly, so the victim leads Config.Regions of
// them; once a lease has granted the victim all of them, it stops the
// victim (its heartbeat stream closes, as when the process dies) and times,
// from the last heartbeat the victim sent:
//
//   - floor: when a phi-accrual detector with Config.Detector, fed the
//     victim's heartbeats since the table was made, first reaches its
//     threshold: the earliest the metasrv can judge the regions failed;
//   - detected: the first OpenRegions a live datanode executes for one of
//     the victim's regions (the failover's submission itself is not
//     visible from outside; its first step is);
//   - upgraded: each region's UpgradeRegions executed on its new datanode;
//   - leader: each region's first region lease granting a live datanode
//     Leader, the moment the region is writable there as far as the
//     metasrv is concerned.
//
// Then it drops the table and starts a fresh victim with the same id (it
// comes back empty, as a datanode whose disk is gone) for the next round.
//
// The victim's send times come from a stream interceptor on its own
// connection; the fake records none. Leases and instructions are read from
// every datanode as they arrive, and every Leader grant is checked against
// the others, as pkg/node's failover test does: a grant is held from its
// arrival until lease_seconds later (or until the datanode is granted
// another role for the region), and no region may be granted Leader on a
// datanode while another still holds it. A run with such an overlap fails
// (Report.Failure).
package regionfailoverbench
