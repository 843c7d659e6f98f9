package pgelection

import (
	"fmt"
	"strconv"
)

// The election tables sit beside the KV table, in its schema, named after it.
const (
	electionSuffix   = "_election"
	candidatesSuffix = "_election_candidates"
)

// statements are the SQL of one elector, with its (quoted) table names.
type statements struct {
	tryLock    string
	bumpTerm   string
	renew      string
	resign     string
	fence      string
	settle     string
	leader     string
	register   string
	unregister string
	expire     string
	candidates string
}

// heldByPID is true when the backend with the given pid holds the advisory
// lock whose bigint key was split into $2 (classid, high 32 bits) and $3
// (objid, low 32 bits); objsubid 1 marks a single-bigint key.
const heldByPID = `EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
	WHERE l.locktype = 'advisory'
	  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
	  AND l.classid = $2::bigint::oid AND l.objid = $3::bigint::oid AND l.objsubid = 1
	  AND l.granted AND l.pid = %s)`

func newStatements(election, candidates string) statements {
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
		// FOR NO KEY UPDATE conflicts with the fence's FOR SHARE, so it is
		// granted only once every fenced transaction holding it has ended.
		settle: `SELECT term FROM ` + election + ` WHERE lock_id = $1 FOR NO KEY UPDATE`,
		leader: `SELECT e.term, e.leader_addr, e.node_info, e.elected_at FROM ` + election + ` e
			WHERE e.lock_id = $1 AND ` + held("e.backend_pid"),
		register: `INSERT INTO ` + candidates + ` (lock_id, addr, node_info, expires_at)
			VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
			ON CONFLICT (lock_id, addr) DO UPDATE SET node_info = EXCLUDED.node_info, expires_at = EXCLUDED.expires_at`,
		unregister: `DELETE FROM ` + candidates + ` WHERE lock_id = $1 AND addr = $2`,
		expire:     `DELETE FROM ` + candidates + ` WHERE lock_id = $1 AND expires_at <= now()`,
		candidates: `SELECT node_info FROM ` + candidates + ` WHERE lock_id = $1 AND expires_at > now() ORDER BY addr`,
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
