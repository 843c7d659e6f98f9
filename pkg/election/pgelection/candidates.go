package pgelection

import (
	"context"
	"fmt"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/election"
)

// register upserts this node's info with a lease on PostgreSQL's clock, so
// nodes with skewed clocks agree on who is alive.
func (e *Elector) register(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.candidateLease/3)
	defer cancel()
	_, err := e.cfg.Pool.Exec(ctx, e.sql.register, e.lockID, e.addr, e.cfg.NodeInfo(), e.candidateLease.Milliseconds())
	return err
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
		if err := e.register(ctx); err != nil && ctx.Err() == nil {
			e.logger.Warn("renew candidate registration", "err", err)
			continue
		}
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
