package pgelection

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgmetasrv/metasrv/pkg/election"
)

// Fence checks, inside a writer's transaction, that the writer's term is
// still the current one. Leader-only writers (the KV leader path, the
// procedure manager) run Check before committing.
type Fence struct {
	e    *Elector
	term int64
}

// Fence returns the fence of term, the term the writer believes it leads.
func (e *Elector) Fence(term int64) Fence { return Fence{e: e, term: term} }

// Term is the term the fence admits.
func (f Fence) Term() int64 { return f.term }

// Check fails with a *election.FencedError when this node no longer trusts
// its leadership of the term, or when the election row records another term.
// It reads the row FOR SHARE in tx, so the next leader's term bump waits for
// tx to end: a write that passed Check commits before the new term begins.
// When the row shows a newer term the elector steps down at once.
func (f Fence) Check(ctx context.Context, tx pgx.Tx) error {
	if f.e.stream.Trusted() != f.term {
		return &election.FencedError{Expected: f.term, Actual: f.e.stream.Lease().Term}
	}
	var current int64
	err := tx.QueryRow(ctx, f.e.sql.fence, f.e.lockID).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgelection: fence check of term %d: %w", f.term, err)
	}
	if current != f.term {
		f.e.stepDown(f.term, fmt.Errorf("fenced write: election records term %d", current))
		return &election.FencedError{Expected: f.term, Actual: current}
	}
	return nil
}

// Settle returns once every fenced write that held the fence when Settle was
// called has ended, committed or rolled back. A write whose connection broke
// during COMMIT may still commit on the server for a while; after Settle it
// no longer can, so a read that follows sees its final outcome. Every fenced
// transaction takes the fence before it writes anything, which is why waiting
// for the fence's holders is enough.
//
// Settle locks the election row briefly, so fenced writes arriving meanwhile
// wait for it; it is meant for the rare write of unknown outcome, not for
// every write.
func (e *Elector) Settle(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, e.cfg.Pool, func(tx pgx.Tx) error {
		var term int64
		err := tx.QueryRow(ctx, e.sql.settle, e.lockID).Scan(&term)
		if errors.Is(err, pgx.ErrNoRows) {
			// No election row: no fenced write has ever passed.
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("pgelection: settle fenced writes: %w", err)
	}
	return nil
}
