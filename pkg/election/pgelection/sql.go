package pgelection

import (
	"fmt"
	"strconv"
)

// The election tables sit beside the KV table, in its schema, named after it.
const (
	electionSuffix   = "_election"
	candidatesSuffix = "_election_candidates"
	clustersSuffix   = "_clusters"
)

// statements are the SQL of one elector, with its (quoted) table names.
type statements struct {
	tryLock    string
	bumpTerm   string
	renew      string
	resign     string
	fence      string
	fenceQueue string
	fenceTerm  string
	settle     string
	leader     string
	register   string
	unregister string
	expire     string
	candidates string
	claim      string
	claims     string
	lockHolder string
}

// heldByPID is true when the backend with the given pid holds the advisory
// lock whose bigint key was split into $2 (classid, high 32 bits) and $3
// (objid, low 32 bits); objsubid 1 marks a single-bigint key.
const heldByPID = `EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
	WHERE l.locktype = 'advisory'
	  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
	  AND l.classid = $2::bigint::oid AND l.objid = $3::bigint::oid AND l.objsubid = 1
	  AND l.granted AND l.pid = %s)`

func newStatements(election, candidates, clusters string) statements {
	held := func(pid string) string { return fmt.Sprintf(heldByPID, pid) }
	return statements{
		tryLock: `SELECT pg_try_advisory_lock($1)`,
		// One statement: the upsert takes the row lock, so it waits for every
		// in-flight fenced write of the previous term (they hold FOR SHARE).
		bumpTerm: `INSERT INTO ` + election + ` AS e (lock_id, term, leader_addr, node_info, backend_pid, elected_at)
			VALUES ($1, 1, $2, $3, pg_backend_pid(), now())
			ON CONFLICT (lock_id) DO UPDATE SET term = e.term + 1,
				leader_addr = EXCLUDED.leader_addr, node_info = EXCLUDED.node_info,
				backend_pid = EXCLUDED.backend_pid, elected_at = EXCLUDED.elected_at
			RETURNING term`,
		// Read-only on purpose: an UPDATE would queue behind fenced writes
		// (FOR SHARE) and a long one could make a healthy leader step down.
		renew: `SELECT e.term FROM ` + election + ` e
			WHERE e.lock_id = $1 AND e.backend_pid = pg_backend_pid() AND ` + held("pg_backend_pid()"),
		resign: `SELECT pg_advisory_unlock($1), pg_notify($2, $3)`,
		fence:  `SELECT term FROM ` + election + ` WHERE lock_id = $1 FOR SHARE`,
		// The fence as one statement of a pipeline: it takes the same lock
		// and, since the statements after it run without the client looking
		// at its answer, fails the transaction itself when the term is not
		// $2. SQL has no RAISE, so a failed text-to-bigint cast is the error
		// (SQLSTATE 22P02, unambiguous: nothing else in the statement casts
		// text); the LEFT JOIN makes a missing row fail as well.
		fenceQueue: `SELECT CASE WHEN f.term = $2 THEN f.term
				ELSE ('metasrv fence: the election row records term ' || coalesce(f.term::text, 'none') || ', not ' || $2::text)::bigint END
			FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT term FROM ` + election + ` WHERE lock_id = $1 FOR SHARE) AS f ON true`,
		fenceTerm: `SELECT term FROM ` + election + ` WHERE lock_id = $1`,
		// FOR NO KEY UPDATE conflicts with the fence's FOR SHARE, so it is
		// granted only once every fenced transaction holding it has ended.
		settle: `SELECT term FROM ` + election + ` WHERE lock_id = $1 FOR NO KEY UPDATE`,
		leader: `SELECT e.term, e.leader_addr, e.node_info, e.elected_at FROM ` + election + ` e
			WHERE e.lock_id = $1 AND ` + held("e.backend_pid"),
		// Registers (or renews) this node and returns the registration it
		// replaced when that was another live process's ($5 is our instance
		// id; '' is a node that predates instance ids). Both CTEs see the
		// table as it was before the statement.
		register: `WITH prev AS (
				SELECT c.instance_id, c.node_info FROM ` + candidates + ` c
				WHERE c.lock_id = $1 AND c.addr = $2 AND c.expires_at > now()
				  AND c.instance_id <> '' AND c.instance_id <> $5
			), up AS (
				INSERT INTO ` + candidates + ` (lock_id, addr, node_info, expires_at, instance_id)
				VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond', $5)
				ON CONFLICT (lock_id, addr) DO UPDATE SET node_info = EXCLUDED.node_info,
					expires_at = EXCLUDED.expires_at, instance_id = EXCLUDED.instance_id
			)
			SELECT instance_id, node_info FROM prev`,
		// Only our own registration: a duplicate's stays.
		unregister: `DELETE FROM ` + candidates + ` WHERE lock_id = $1 AND addr = $2 AND instance_id = $3`,
		expire:     `DELETE FROM ` + candidates + ` WHERE lock_id = $1 AND expires_at <= now()`,
		candidates: `SELECT node_info FROM ` + candidates + ` WHERE lock_id = $1 AND expires_at > now() ORDER BY addr`,
		// The first node of a key space claims it for its lock id; either
		// unique key (prefix, lock id) already taken leaves the claim as is.
		claim: `INSERT INTO ` + clusters + ` (key_prefix, lock_id, claimed_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		claims: `SELECT key_prefix, lock_id, claimed_by, claimed_at FROM ` + clusters + `
			WHERE key_prefix = $1 OR lock_id = $2 ORDER BY key_prefix = $1 DESC`,
		// Who holds the advisory lock, and whether that session is the
		// leader our election row records.
		lockHolder: `SELECT l.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), ''),
				coalesce(a.usename::text, ''), coalesce(a.datname::text, ''),
				EXISTS (SELECT 1 FROM ` + election + ` e WHERE e.lock_id = $1 AND e.backend_pid = l.pid)
			FROM pg_catalog.pg_locks l
			LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory'
			  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
			  AND l.classid = $2::bigint::oid AND l.objid = $3::bigint::oid AND l.objsubid = 1
			  AND l.granted
			ORDER BY l.pid LIMIT 1`,
	}
}

// lockKeyParts splits an advisory lock key as pg_locks shows it.
func lockKeyParts(lockID int64) (classid, objid int64) {
	u := uint64(lockID)
	return int64(u >> 32), int64(uint32(u))
}

// notifyChannel is the LISTEN/NOTIFY channel of resignations. Advisory locks
// and notifications are both scoped to the database, so the lock id alone
// names the election.
// The channel is always quoted, so a negative id's '-' is harmless.
func notifyChannel(lockID int64) string {
	return "metasrv_election_" + strconv.FormatInt(lockID, 10)
}
