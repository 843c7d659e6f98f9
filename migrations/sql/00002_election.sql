-- The leader election (pkg/election/pgelection). One row per advisory lock
-- id: the current term, bumped by every new leader, and who holds it.
-- Leader-only writes read this row FOR SHARE in their transaction and compare
-- terms (fencing); the next leader's bump waits for them.
CREATE TABLE {{table "_election"}} (
    lock_id     bigint PRIMARY KEY,
    term        bigint NOT NULL CHECK (term > 0),
    leader_addr text NOT NULL,
    node_info   jsonb NOT NULL,
    backend_pid integer NOT NULL,
    elected_at  timestamptz NOT NULL
);

-- Every metasrv node registers here, under a lease measured by PostgreSQL's
-- clock (expires_at), and renews it while it runs.
CREATE TABLE {{table "_election_candidates"}} (
    lock_id    bigint NOT NULL,
    addr       text NOT NULL,
    node_info  jsonb NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (lock_id, addr)
);
