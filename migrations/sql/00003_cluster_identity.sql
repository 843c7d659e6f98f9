-- Which cluster owns which key space of the KV table (pkg/election/pgelection).
-- One row per store_key_prefix, claimed by the first node that starts on it:
-- the meta_election_lock_id of that cluster. A node with another lock id on
-- the same prefix (a second cluster writing the same keys), or with the same
-- lock id on another prefix (two clusters sharing one election row), is
-- refused at start.
CREATE TABLE {{table "_clusters"}} (
    key_prefix bytea PRIMARY KEY,
    lock_id    bigint NOT NULL UNIQUE,
    claimed_by text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- A random id per node process, so a node can tell that another live
-- process registered under its address (a duplicate grpc.server_addr).
-- Rows of nodes that predate it keep ''.
ALTER TABLE {{table "_election_candidates"}}
    ADD COLUMN instance_id text NOT NULL DEFAULT '';
