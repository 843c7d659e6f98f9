package pgelection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrLockIDMismatch means the key space this node would serve (its
// meta_table_name and store_key_prefix) belongs to a cluster with another
// meta_election_lock_id. Started anyway, the node would elect itself in an
// election of its own and write the other cluster's keys behind its
// leader's back. Start refuses with it; the message names both lock ids.
var ErrLockIDMismatch = errors.New("pgelection: the table and store_key_prefix belong to a cluster with another meta_election_lock_id")

// ErrLockIDShared means this node's meta_election_lock_id is the election
// of a cluster with another store_key_prefix in the same table. The election
// row is keyed by lock id, so the two clusters would elect one leader between
// them, each answering for the other's key space. Start refuses with it.
var ErrLockIDShared = errors.New("pgelection: meta_election_lock_id is already the election of a cluster with another store_key_prefix")

// claim records, at the first start of a key space, which lock id's cluster
// owns it, and refuses a node whose configuration contradicts the claim.
func (e *Elector) claim(ctx context.Context) error {
	tag, err := e.cfg.Pool.Exec(ctx, e.sql.claim, e.keyPrefix, e.lockID, e.addr)
	if err != nil {
		return fmt.Errorf("pgelection: claim %s for this cluster: %w", e.kvTable, err)
	}
	if tag.RowsAffected() == 1 {
		e.logger.Info("claimed the key space for this cluster", "table", e.kvTable, "store_key_prefix", string(e.keyPrefix), "lock_id", e.lockID)
		return nil
	}
	rows, err := e.cfg.Pool.Query(ctx, e.sql.claims, e.keyPrefix, e.lockID)
	if err != nil {
		return fmt.Errorf("pgelection: read the claims on %s: %w", e.kvTable, err)
	}
	type claim struct {
		prefix    []byte
		lockID    int64
		by        string
		claimedAt time.Time
	}
	claims, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claim, error) {
		var c claim
		err := r.Scan(&c.prefix, &c.lockID, &c.by, &c.claimedAt)
		return c, err
	})
	if err != nil {
		return fmt.Errorf("pgelection: read the claims on %s: %w", e.kvTable, err)
	}
	for _, c := range claims {
		at := c.claimedAt.UTC().Format(time.RFC3339)
		switch {
		case string(c.prefix) == string(e.keyPrefix) && c.lockID != e.lockID:
			return fmt.Errorf("%w: table %s (store_key_prefix %q) belongs to the cluster with meta_election_lock_id %d; this node has %d: "+
				"set meta_election_lock_id = %d to join that cluster, or give this cluster its own meta_table_name or store_key_prefix "+
				"(claimed by %s at %s; if that cluster is gone for good, or changed its lock id, remove the claim with DELETE FROM %s WHERE lock_id = %d)",
				ErrLockIDMismatch, e.kvTable, e.keyPrefix, c.lockID, e.lockID, c.lockID, c.by, at, e.clustersTable, c.lockID)
		case string(c.prefix) != string(e.keyPrefix) && c.lockID == e.lockID:
			return fmt.Errorf("%w: meta_election_lock_id %d is the election of the cluster with store_key_prefix %q in table %s; this node has store_key_prefix %q: "+
				"give this cluster its own meta_election_lock_id, or set store_key_prefix = %q to join that cluster "+
				"(claimed by %s at %s; if that cluster is gone for good, remove the claim with DELETE FROM %s WHERE lock_id = %d)",
				ErrLockIDShared, e.lockID, c.prefix, e.kvTable, e.keyPrefix, c.prefix, c.by, at, e.clustersTable, e.lockID)
		}
	}
	// Our own claim (both keys match), or a claim withdrawn meanwhile: try
	// once more so the key space does not stay unclaimed.
	if len(claims) == 0 {
		if _, err := e.cfg.Pool.Exec(ctx, e.sql.claim, e.keyPrefix, e.lockID, e.addr); err != nil {
			return fmt.Errorf("pgelection: claim %s for this cluster: %w", e.kvTable, err)
		}
	}
	return nil
}

// holderWarnEvery rate-limits the report of a lock holder outside the
// cluster; the holder is looked up at most once a lease.
const holderWarnEvery = time.Minute

// holderWatch is the campaign's view of the advisory lock's holder.
type holderWatch struct {
	nextCheck time.Time
	suspect   uint32 // pid of a non-member holder seen at the last check
	warnedAt  time.Time
}

// checkHolder runs after a lost try-lock, at most once a lease. The lock id
// is per database, so a session of another cluster (another schema or
// table, same meta_election_lock_id) or of another program can hold it;
// then this cluster never elects a leader. A holder that is not the leader
// our election row records, at two checks in a row (a member that just won
// records itself within a statement), is reported, at most once a minute.
func (e *Elector) checkHolder(ctx context.Context) {
	now := time.Now()
	if now.Before(e.holder.nextCheck) {
		return
	}
	e.holder.nextCheck = now.Add(e.lease)
	qctx, cancel := context.WithTimeout(ctx, e.lease/3)
	defer cancel()
	var pid uint32
	var app, client, user, db string
	var member bool
	err := e.cfg.Pool.QueryRow(qctx, e.sql.lockHolder, e.lockID, e.classID, e.objID).Scan(&pid, &app, &client, &user, &db, &member)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		e.holder.suspect = 0 // free again: the next try may win
		e.testSignals.HolderChecked.Signal(holderFree)
		return
	case err != nil:
		if ctx.Err() == nil {
			e.logger.Debug("look up the election lock holder", "err", err)
		}
		e.testSignals.HolderChecked.Signal(holderUnknown)
		return
	case member:
		e.holder.suspect = 0
		e.logger.Debug("election lock holder is a member", "holder_pid", pid)
		e.testSignals.HolderChecked.Signal(holderMember)
		return
	}
	if e.holder.suspect != pid {
		e.holder.suspect = pid
		e.testSignals.HolderChecked.Signal(holderSuspect)
		return
	}
	if !e.holder.warnedAt.IsZero() && now.Sub(e.holder.warnedAt) < holderWarnEvery {
		e.testSignals.HolderChecked.Signal(holderRateLimited)
		return
	}
	e.holder.warnedAt = now
	if app == "" {
		app = "(not visible to this role)"
	}
	e.logger.Warn("meta_election_lock_id is held by a session outside this cluster, so this cluster cannot elect a leader: "+
		"another cluster (another meta_schema_name or meta_table_name) or program in this database uses the same advisory lock id; "+
		"give one of them a different meta_election_lock_id",
		"lock_id", e.lockID, "database", db, "holder_pid", pid, "holder_application_name", app, "holder_client_addr", client, "holder_user", user)
	e.testSignals.HolderChecked.Signal(holderReported)
}

// newInstanceID is a random id for this process's candidate registration.
func newInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
