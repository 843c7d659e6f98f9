// Package ddl runs GreptimeDB's DDL (GreptimeDB v1.1.4's ddl_manager and
// ddl/*.rs) on metasrv's durable procedure manager: CREATE and DROP
// DATABASE; CREATE, DROP and TRUNCATE TABLE and ALTER TABLE (add columns,
// drop columns, rename) for physical (mito) tables, as a GreptimeDB
// frontend submits them through ProcedureService.ddl.
//
// # Who runs what
//
// Service.Submit builds the task's procedure, submits it and waits for its
// end; the answer is the procedure's id and, for CREATE TABLE, the table id.
// A refusal (the table exists, the database is missing) is a
// *statuscode.Error: the procedure manager keeps the code of the error that
// rolled a procedure back (procedure.CodedError), so the frontend gets
// GreptimeDB's status code even when it asks after a leader change.
//
// Service is a leadership listener. It keeps the term it runs in: the
// term's in-memory KV (where heartbeats leave which datanodes are alive, for
// the selector) and a table id sequence over the term's fenced store. Every
// step first checks that its procedure runs in that term; a step of a term
// that ended fails with election.ErrFenced, which stops the procedure
// without rollback for the next leader to resume. It must start before the
// procedure manager (resumed procedures need it) and stop after it.
//
// # The procedures, step by step
//
// Each step's result is persisted before the next one starts, and every
// step can run again on a new leader, so every step is idempotent:
//
//	CREATE TABLE  prepare -> datanode_create_regions -> create_metadata
//	  prepare: an existing name is TableAlreadyExists (IF NOT EXISTS: done,
//	  with the existing id). The table id (from __meta_seq-table_id, or the
//	  one asked for, below 1024 only), the regions' datanodes (the selector)
//	  and WAL options are decided here and persisted, so a resumed create
//	  reuses them: no id is handed out twice and no region lands elsewhere.
//	  datanode_create_regions: one CreateRequest per region to its leader;
//	  creating a region the datanode has is a no-op there. The regions are
//	  held in the region keeper meanwhile, so their heartbeats keep a
//	  leader lease before the route exists.
//	  create_metadata: one fenced transaction puts the name, info, route and
//	  every datanode's __dn_table key, provided the info and route keys are
//	  absent; finding exactly its own values (a commit whose answer was
//	  lost) counts as done.
//	  Rollback (GreptimeDB has none): drops the regions on their datanodes
//	  (RegionNotFound counts as dropped), so a failed create leaves none.
//
//	DROP TABLE  prepare -> delete_metadata -> invalidate_table_cache ->
//	            datanode_drop_regions -> delete_tombstone
//	  delete_metadata moves every metadata key under __tombstone/ (each
//	  key's move compared with the value read; keys already moved are
//	  skipped), the broadcast tells frontends, datanodes and flownodes, the
//	  regions are dropped (followers closed), and the tombstones deleted.
//	  Rollback restores the keys from the tombstones until regions are being
//	  dropped; after that the drop can only go forward, and one that cannot
//	  is left failed for an operator, its metadata under __tombstone/.
//
//	CREATE DATABASE  prepare -> create_metadata (the __schema_name key)
//	DROP DATABASE    prepare -> (cursor -> executor)* -> remove_metadata ->
//	                 broadcast
//	  The cursor takes the database's first remaining table and persists it;
//	  the executor deletes its metadata outright (no tombstones, as
//	  GreptimeDB), broadcasts, and drops its regions. There is no rollback.
//
//	ALTER TABLE  prepare -> submit_alter_region_requests -> update_metadata
//	             -> invalidate_table_cache   (a rename skips the regions)
//	  The table id is read when the task is submitted, so the procedure
//	  locks it (and a rename the new name). prepare refuses a taken new
//	  name, a missing or logical table, and any alter GreptimeDB's
//	  TableMeta builder refuses; it persists the table info bytes it read
//	  and the new info it built (updated_on included), so a resumed update
//	  writes the same value. A kind, data type or default value metasrv
//	  does not write byte for byte is refused as Unsupported before
//	  anything changes. The regions step sends every leader region its
//	  AlterRequest again on a new leader (a datanode applies an alter once;
//	  the column ids come from the persisted info, so they are the same);
//	  update_metadata compares the info with the bytes read and puts
//	  version+1 (a rename moves the __table_name key in the same
//	  transaction), and finding its own value counts as done. The broadcast
//	  names the old name and the id. No region is held in the keeper (as
//	  GreptimeDB). Rollback undoes nothing: the alter ends rolled back if
//	  nothing changed (a refusal in prepare, every datanode refusing) and
//	  failed, for an operator, once some region or the metadata may have
//	  (GreptimeDB poisons the table); a rollback resumed by a new leader
//	  assumes the regions may have changed.
//
//	TRUNCATE TABLE  prepare -> datanode_truncate_regions
//	  One TruncateRequest per leader region (all, or the time ranges
//	  asked); no key changes, nothing is invalidated or held. A new leader
//	  sends the requests again, which truncating twice tolerates; there is
//	  nothing to roll back.
//
// # Failures
//
//   - A datanode that cannot be reached, or is busy, fails the step with a
//     retryable error: the manager retries it with backoff
//     (procedure.max_retry_times, retry_delay), then rolls back.
//   - A datanode refusing a request (bad options) rolls back at once.
//   - The store unavailable: retried. A fencing error (this node was
//     deposed): the procedure stops where it is; the next leader resumes it
//     from its last persisted step and re-takes the region keeper's holds.
//   - The caller leaving does not stop a procedure: it runs to its end, and
//     ProcedureService.query reports it.
package ddl
