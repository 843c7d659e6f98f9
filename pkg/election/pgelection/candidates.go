package pgelection

import (
	"context"
	"fmt"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/election"
)

// dupWarnEvery rate-limits the duplicate-address warning: two nodes on one
// address meet at every renewal.
const dupWarnEvery = time.Minute

// registerAt upserts this node's info with a lease on PostgreSQL's clock, so
// nodes with skewed clocks agree on who is alive. Candidates are keyed by
// address: when the registration it replaced was another live process's, two
// nodes share the address. At Start (first) that may be this node's crashed
// predecessor, whose lease has not run out yet; at a renewal it is a process
// that registered since our last renewal, so alive: a duplicate
// grpc.server_addr, which is reported.
func (e *Elector) registerAt(ctx context.Context, first bool) error {
	ctx, cancel := context.WithTimeout(ctx, e.candidateLease/3)
	defer cancel()
	rows, err := e.cfg.Pool.Query(ctx, e.sql.register, e.lockID, e.addr, e.cfg.NodeInfo(), e.candidateLease.Milliseconds(), e.instanceID)
	if err != nil {
		return err
	}
	var other string
	var otherInfo election.NodeInfo
	found := false
	for rows.Next() {
		found = true
		if err := rows.Scan(&other, &otherInfo); err != nil {
			// Unreadable node info of the other process: still a duplicate.
			otherInfo = election.NodeInfo{}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	switch {
	case !found:
	case first:
		e.logger.Debug("replaced a live registration of this address (a restarted node?)", "addr", e.addr, "other_instance", other, "other_hostname", otherInfo.Hostname)
	case e.dupWarnAt.IsZero() || time.Since(e.dupWarnAt) >= dupWarnEvery:
		e.dupWarnAt = time.Now()
		attrs := []any{"addr", e.addr, "lock_id", e.lockID, "instance", e.instanceID, "other_instance", other, "other_hostname", otherInfo.Hostname}
		if otherInfo.StartTimeMs > 0 {
			attrs = append(attrs, "other_started_at", time.UnixMilli(otherInfo.StartTimeMs).UTC().Format(time.RFC3339Nano))
		}
		e.logger.Warn("another live node registered the same address: candidates are keyed by address, so the two overwrite each other's registration and clients cannot tell them apart; give each node its own grpc.server_addr", attrs...)
	}
	if !first {
		e.testSignals.Registered.Signal(registration{duplicate: found})
	}
	return nil
}

// registerLoop renews the registration every candidate_lease/3; the leader
// also clears expired registrations so the table does not grow with every
// node that ever ran.
func (e *Elector) registerLoop(ctx context.Context) {
	t := time.NewTicker(e.candidateLease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := e.registerAt(ctx, false); err != nil {
			if ctx.Err() == nil {
				e.logger.Warn("renew candidate registration", "err", err)
			}
			continue
		}
		e.logger.Debug("renewed candidate registration", "addr", e.addr)
		if e.IsLeader() {
			if _, err := e.cfg.Pool.Exec(ctx, e.sql.expire, e.lockID); err != nil && ctx.Err() == nil {
				e.logger.Warn("remove expired candidates", "err", err)
			}
		}
	}
}

// Candidates lists the node info of every candidate whose lease holds.
func (e *Elector) Candidates(ctx context.Context) ([]election.NodeInfo, error) {
	rows, err := e.cfg.Pool.Query(ctx, e.sql.candidates, e.lockID)
	if err != nil {
		return nil, fmt.Errorf("pgelection: list candidates: %w: %w", election.ErrUnavailable, err)
	}
	defer rows.Close()
	var out []election.NodeInfo
	for rows.Next() {
		var info election.NodeInfo
		if err := rows.Scan(&info); err != nil {
			return nil, fmt.Errorf("pgelection: list candidates: unreadable node info: %w", err)
		}
		out = append(out, info)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgelection: list candidates: %w: %w", election.ErrUnavailable, err)
	}
	return out, nil
}
