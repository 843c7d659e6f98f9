// Package migration moves a region's leader from one datanode to another:
// GreptimeDB v1.1.4's region migration procedure (meta-srv
// procedure/region_migration*.rs) on metasrv's durable procedure manager,
// driven through the heartbeat mailbox. A manual migration
// (ProcedureService.migrate, `metasrv ctl region migrate`) and a failover
// (the region supervisor) both go through Manager.Submit.
//
// # Who runs what
//
// Manager.Submit checks the task against the current route as GreptimeDB's
// submit_procedure does (not already migrating, source differs from
// target, the table's route and the region's route exist, the region is
// not already on the target, its leader is the source, the target is not
// a follower of it and has a current datanode lease) and submits one
// procedure per region. It returns once the procedure is stored; the
// procedure runs to its end whatever the caller does. Manager.Running
// lists the migrations this leader runs.
//
// Manager is a leadership listener keeping the term it runs in; every step
// first checks that its procedure runs in that term, and a step of a term
// that ended fails with election.ErrFenced, which stops the procedure
// without rollback for the next leader to resume. It starts after the
// region keeper and before the procedure manager.
//
// # Steps
//
// Each step's result is persisted before the next begins (GreptimeDB
// persists only some), so a leader change resumes at the last persisted
// step, and every step is idempotent:
//
//	migration_start ──► open_candidate_region ──► flush_leader_region
//	   │ already on the target: done      │ fails: rollback
//	   │ leader is not the source: abort  ▼
//	   ▼                      update_metadata_downgrade
//	  done                                │
//	                                      ▼
//	                          downgrade_leader_region
//	                (fast: the leader answers; slow: its lease is waited out)
//	                                      │ task timeout spent: rollback
//	                                      ▼
//	                          upgrade_candidate_region ── fails: rollback
//	                                      │
//	                                      ▼
//	                          update_metadata_upgrade (+ cache invalidation)
//	                                      │
//	                                      ▼
//	                          close_downgraded_region ──► done
//
//	migration_start            read the route; done if the target already
//	                           leads, abort (roll back) if the source does not.
//	open_candidate_region      OpenRegions to the target: the source's
//	                           __dn_table storage path, options and WAL
//	                           options, skip_wal_replay, object storage
//	                           required; timeout max(remaining/2, lease).
//	                           Reopening an open region is a no-op there.
//	flush_leader_region        FlushRegions (Sync, TryAll, reason
//	                           RegionMigration) to the source; unreachable
//	                           or failing: ignored; no answer in time: abort.
//	update_metadata_downgrade  the route's leader_state becomes Downgrading
//	                           with leader_down_since, by compare-and-put on
//	                           the route bytes read (already so: nothing).
//	downgrade_leader_region    DowngradeRegions to the source, up to three
//	                           attempts; its last_entry_id is persisted. If
//	                           the source is unreachable or keeps failing,
//	                           wait until one region lease (region.
//	                           LeaseSeconds) has passed since the step
//	                           began, or since the source's last heartbeat
//	                           when that is earlier. Only a spent task
//	                           timeout rolls back from here.
//	upgrade_candidate_region   UpgradeRegions to the target with the source's
//	                           last_entry_id and location_id; asked again
//	                           while it replays (until the timeout), other
//	                           failures three times; then rollback.
//	update_metadata_upgrade    one transaction, compared with the route bytes
//	                           read: the target leads, leader_state cleared,
//	                           the source dropped from the route, the target
//	                           no longer a follower, and the two datanodes'
//	                           __dn_table values follow (a datanode left
//	                           without a region of the table loses its key).
//	                           Already so: nothing is written. Then the
//	                           table's caches are invalidated; a failed
//	                           broadcast is logged only, as GreptimeDB does.
//	close_downgraded_region    CloseRegions to the source; a failure is
//	                           logged only: the source's next heartbeat then
//	                           finds the region closeable.
//
// Route updates (update_metadata_downgrade, update_metadata_upgrade, a
// rollback's restore) of one table are queued and committed together:
// whoever holds the table's gate applies every queued update, in order, to
// one read of the route and writes the result with one compare-and-put
// (routeWriter). A failover of 100 regions of a table thus writes its route
// a few times instead of 200, each write raising the route's version by
// one. A lost compare (a writer outside this leader's migrations) answers
// each update "already so" or "retry later", as one update alone would be.
// Decoded routes are remembered by their bytes (greptimekey.RouteCache):
// each step reads the route, and decoding a 100-region route costs
// milliseconds.
//
// With Options.Detectors (failover on), a committed upgrade forgets the
// source's failure detector of the region and resets the target's, and a
// rollback forgets the target's and watches the source's again, as
// GreptimeDB's procedure does.
//
// The region keeper holds (target, region) as a follower and (source,
// region) as a downgrading leader from open_candidate_region to the end,
// taken again by a resumed procedure. The route wins over the keeper while
// it places the region on a datanode, so the holds matter before the
// target is in the route (its lease says Follower, not closeable) and
// after the source has left it (its lease says DowngradingLeader until it
// is closed, not Leader).
//
// # Rollback and abort
//
// A non-retryable error, or retries (procedure.max_retry_times) running
// out, rolls the migration back: from update_metadata_downgrade on, the
// route's Downgrading state is cleared, so the source leads again; from
// upgrade_candidate_region on, the target's region is closed first (or,
// unreachable, one region lease is waited out), since UpgradeRegions may
// have made it writable. A route the upgrade already committed is left
// alone: the region has moved. GreptimeDB ends an aborted migration with
// a MigrationAbort error; here it ends rolled_back, with the error and its
// GreptimeDB status code in the procedure's record.
//
// # At most one leader lease
//
// A datanode's region is writable while it holds a Leader lease (granted
// by the lease decision from the route, else the keeper) or until a
// lease it holds runs out, lease_seconds after the heartbeat that asked for
// it was sent. Each step keeps at most one such datanode:
//
//   - Up to update_metadata_downgrade the route names the source leader and
//     the keeper gives the target a Follower lease: only the source leads.
//   - update_metadata_downgrade commits before downgrade_leader_region
//     begins; every lease decided after the commit is DowngradingLeader.
//     A Leader lease decided before it came from a heartbeat sent before
//     it, so it ends less than one lease after the step begins (and less
//     than one lease after the source's last heartbeat).
//   - The target becomes writable only through UpgradeRegions, sent once
//     the source answered that it is downgraded, or once that lease time
//     has passed. A new leader resuming the step starts the wait afresh,
//     which only makes it longer.
//   - update_metadata_upgrade grants the target the Leader lease; the
//     source, gone from the route, is held DowngradingLeader until closed.
//   - A rollback makes the source a leader again only after the target
//     cannot write (closed, or its follower lease waited out).
//
// Leader changes do not break this: a deposed leader stops trusting its
// term (and granting leases) before a new one is elected, and the new one
// reads the committed route.
package migration
