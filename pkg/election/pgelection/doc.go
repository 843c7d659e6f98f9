// Package pgelection elects the metasrv leader with a PostgreSQL advisory
// lock held by a dedicated session, bounds how long a leader trusts itself
// with a lease on the monotonic clock, and fences leader-only writes with a
// term stored beside the KV table.
//
// # Tables (migrations 2 and 3)
//
//	<table>_election            one row per lock id: term, leader address and
//	                            node info, the holder's backend pid, elected_at
//	<table>_election_candidates one row per (lock id, node address): node info,
//	                            expires_at on PostgreSQL's clock, and the
//	                            registering process's random instance id
//	<table>_clusters            one row per store_key_prefix: the lock id of
//	                            the cluster that owns that key space
//
// # Cluster identity
//
// Start claims the node's key space (table and store_key_prefix) for its
// meta_election_lock_id, the first node of a cluster recording the claim. A
// node whose lock id differs from the claim of its key space (a second
// cluster on the same keys) fails with ErrLockIDMismatch; a node whose lock
// id is claimed by another prefix of the same table (two clusters in one
// election) fails with ErrLockIDShared. Both messages name the two values
// and what to change.
//
// Advisory locks are per database, so a cluster in another schema or table
// with the same lock id takes the same lock. A follower that keeps losing
// looks up the holder (pg_locks, pg_stat_activity) at most once a lease; a
// holder that is not the leader recorded in our election row, twice in a
// row, is reported (application_name, pid, client) at most once a minute.
//
// Candidates are keyed by address. A renewal that replaces another live
// process's registration (another instance id) means two nodes share a
// grpc.server_addr: reported at most once a minute. The first registration
// at Start does not count: it may replace this node's crashed predecessor.
// Stop withdraws only its own registration.
//
// # States
//
//	       Start
//	         │
//	         ▼
//	┌──────────────────┐  connect fails / session error
//	│   Disconnected   │◄────────────────────────────────────┐
//	│ backoff + jitter │                                     │
//	└────────┬─────────┘                                     │
//	         │ connected, LISTEN                             │
//	         ▼                                               │
//	┌──────────────────┐  try_lock false: wait for NOTIFY   │
//	│     Follower     │  or campaign_interval, try again    │
//	│   (campaigning)  ├─────────────────────────────────────┤
//	└────────┬─────────┘                                     │
//	         │ pg_try_advisory_lock true                     │
//	         ▼                                               │
//	┌──────────────────┐  bump fails / too late              │
//	│    Candidate     ├─────────────────────────────────────┤
//	│   (bump term)    │                                     │
//	└────────┬─────────┘                                     │
//	         │ term bumped: Elected{term}                    │
//	         ▼                                               │
//	┌──────────────────┐  renew every lease/3; trust until   │
//	│      Leader      │  renewal start + lease - margin     │
//	└────────┬─────────┘                                     │
//	         │ resign / Stop / trust expired / lock or       │
//	         │ term lost / fenced write / session error      │
//	         ▼                                               │
//	┌──────────────────┐                                     │
//	│  Stepping down   │  StepDown{term}; resign: unlock +   │
//	│                  │  NOTIFY; always: close the session ─┘
//	└──────────────────┘
//
// The session is never reused after leadership ends: closing it is what
// guarantees PostgreSQL no longer holds our lock, and a new session campaigns
// afresh. pg_try_advisory_lock is never called while holding the lock
// (session advisory locks stack; one unlock would not release them).
//
// # Timing
//
// With lease L: idle_session_timeout, statement_timeout, lock_timeout and
// tcp_user_timeout are L on the session; the leader renews every L/3; it
// trusts its leadership until start-of-last-successful-renewal + L - L/5.
// PostgreSQL's idle timer starts at the end of the session's last statement,
// which is after the renewal started, so the trust window always closes
// before PostgreSQL can end the session and hand the lock to someone else.
// A watchdog timer broadcasts StepDown when the window closes even if the
// loop is stuck inside a statement.
//
// # Failures
//
//   - Leader process killed (SIGKILL, crash): the kernel closes its socket,
//     the backend exits, the lock is free at once; a follower wins at its
//     next try (≤ campaign_interval). Only a clean TCP close is this fast: a
//     vanished host is found by tcp_user_timeout/keepalives or, at the
//     latest, idle_session_timeout (one lease).
//   - Session terminated (pg_terminate_backend, PostgreSQL restart): the
//     leader waits on its socket between renewals, so it sees the error at
//     once, steps down and reconnects with backoff; a follower wins at its
//     next try.
//   - Leader paused or its session blocked: the watchdog steps it down at the
//     end of the trust window; PostgreSQL ends the idle session one margin
//     later and a follower wins. On resume the old leader finds its session
//     dead, and any write it attempts is fenced.
//   - Network partition between leader and PostgreSQL: as a pause. Takeover
//     within lease + campaign_interval of the last renewal.
//   - Graceful resign (Stop, SIGTERM): StepDown, pg_advisory_unlock and
//     pg_notify in one statement, close. Followers LISTEN on their session
//     and try at once; the resigned node waits a campaign interval before
//     campaigning again.
//   - PostgreSQL unreachable: every node keeps reconnecting with capped,
//     jittered backoff; nobody leads meanwhile.
//
// # Fencing
//
// A leader-only write runs Fence(term).Check in its transaction: it reads
// the election row FOR SHARE and compares terms. A new leader's term bump (an
// upsert, which takes the row lock) therefore waits for every in-flight
// fenced write, and any fenced write after it fails with
// election.FencedError. A node whose fenced write sees a newer term steps
// down. Renewal is a read, so fenced writes never delay it.
//
// The group commit sends the check as one statement of a pipeline
// (QueueCheck), with the writes and COMMIT behind it before its answer is
// back; so that statement fails the transaction itself when the row records
// another term, and Refusal turns that failure into the same FencedError and
// step-down. The lock and the order are Check's.
//
// # Stream
//
// Subscribers get an ordered, lossless stream (election.Stream): Elected{t}
// then StepDown{t}, never two Elected in a row, never blocking the loop.
package pgelection
