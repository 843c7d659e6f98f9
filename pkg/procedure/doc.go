// Package procedure is the durable procedure manager: it runs multi-step
// operations (procedures) whose state is persisted in the KV store after every
// step, so that a new leader resumes them where the old one stopped.
//
// # Procedures
//
// A procedure type implements Procedure and registers a Loader that rebuilds
// an instance from JSON: from the arguments given to Submit, and from the
// state Dump returned after a step. The manager calls Execute once per step
// until it returns Done. A step may run more than once (when a leader change
// interrupts it before its result is persisted), so steps and Rollback must be
// idempotent.
//
// # State machine
//
//	submitted ──► running ──► done
//	               │  ▲
//	  retryable    ▼  │ step succeeds
//	  error     retrying
//	               │ retries exhausted, or a non-retryable error
//	               ▼
//	          rolling_back ──► rolled_back
//	               │
//	               ▼ Rollback fails (after its retries)
//	             failed
//
// done, rolled_back and failed are final. failed means the procedure could
// neither finish nor undo itself: it is poisoned, its last state and the
// errors are kept for an operator. A retryable error (wrapped with Retryable)
// is retried up to Options.MaxRetryTimes with exponential backoff from
// Options.RetryDelay (doubling, capped at one minute, jitter in [d/2, d));
// Rollback errors are retried the same way.
//
// # What is persisted, and when
//
// Every write goes through the store given to Start (the term's fenced view)
// as one transaction that also checks that the record is the one this
// manager last wrote (so two writers can never interleave):
//
//   - on Submit, before the id is returned: the record (state running, step
//     0, lock keys, timestamps) and the procedure's Dump;
//   - after a step returning Executing(true): step+1 and the new Dump;
//     Executing(false) stores no state, so a new leader re-runs that step from
//     the previous persisted state;
//   - on entering retrying (with the error), and on leaving it;
//   - on entering rolling_back (with the error), keeping the last persisted
//     Dump, which a new leader hands to Rollback;
//   - on done (with the output) and rolled_back: the data is dropped, only the
//     record is kept; on failed the data is kept for inspection.
//
// A write failing with a transient store error is retried with backoff for as
// long as the term lasts. A state that is not JSON or does not fit (see
// Segments) rolls the procedure back. Should the store refuse even a
// rollback's record (it holds no data, and its error text is shortened to fit),
// the procedure is left as stored for the next leader and counted in
// Stats.Stalled.
//
// # Crash and leader change
//
// Start loads every unfinished procedure (running, retrying, rolling_back)
// and resumes it from its last persisted step: running and retrying ones call
// Execute with the persisted state, rolling_back ones call Rollback. They get
// their locks in submission order. A procedure whose type has no loader on
// this node, or whose state cannot be read, is logged, counted in
// Stats.Unloadable and left untouched for a node that can run it.
//
// Stop (step-down) cancels every procedure's context and waits for its
// goroutine. Nothing more is written: whatever the interrupted step did is
// redone by the next leader from the last persisted state. Locks are
// released (they are in memory only; the next leader re-takes them).
//
// A write refused with a fencing error (errors.Is(err, election.ErrFenced):
// this node was deposed) or by the record check (another writer took the
// procedure, ErrConflict) stops that procedure at once, without rollback and
// without retry: the new leader owns it. A step or rollback returning such an
// error is treated the same way. Stats.Fenced counts these.
//
// # Pause
//
// Pause writes GreptimeDB's switch key __switches/pause_procedure with an
// empty value; Resume deletes it. While it is present (whatever its value): Submit returns ErrPaused; every procedure finishes the step
// (or rollback attempt) in flight, persists its result, and then waits before
// its next step, retry or rollback attempt until Resume (or Stop); procedures
// resumed by a new leader wait too, before their first step. Get, List, Wait
// and garbage collection keep working. The manager re-reads the switch at
// Start and every Options.PausePollInterval, so a switch written by another
// client or kept from an earlier term applies.
//
// # Garbage collection
//
// Every Options.GCInterval (and on CollectGarbage), procedures that reached a
// final state more than Options.FinishedRetention ago (by Options.Now) are
// removed: data segments first, then the record.
//
// # Keys and segments
//
//	<prefix>meta/<id>                 the record (JSON, format 1)
//	<prefix>data/<id>/<gen>/<index>   data segments; gen is 16 hex digits, index 6 digits
//	__switches/pause_procedure        the pause switch (outside the prefix, GreptimeDB's key)
//
// The procedure's Dump is stored inline in the record when the record then
// fits in Options.MaxMetadataValueSize. Otherwise it is cut into segments of
// MaxMetadataValueSize bytes stored under a new generation number, and the
// record holds the generation, the segment count, the data length and its
// CRC-32C. The transaction that writes the new generation's segments also
// flips the record to it, so a reader sees either the old record with the old
// generation or the new record with the new one; the old generation is
// deleted after the commit. A crash before that cleanup leaves unreferenced
// segments, removed when the procedure is resumed or collected; a load
// verifies count, length and checksum and refuses (ErrCorruptState) rather
// than return mixed data.
//
// One transaction holds the record and the segments, so the state of a
// procedure is at most (MaxTxnOps-1) × MaxMetadataValueSize bytes (with the
// defaults, 127 × 1500 KiB ≈ 186 MiB; Options.MaxStateSize); a larger state
// fails with ErrStateTooLarge.
package procedure
