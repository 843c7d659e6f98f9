package pgelection

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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

// QueueCheck is Check for a pipelined transaction: it queues in b, where the
// transaction's first statement after BEGIN goes, a statement that takes the
// election row FOR SHARE as Check does and fails the transaction unless the
// row records the fence's term. The writes queued after it are then never
// applied under another term, though the client sends them (and COMMIT)
// before it has seen the check's answer. It queues nothing and returns
// Check's refusal when this node no longer trusts its leadership of the term.
func (f Fence) QueueCheck(b *pgx.Batch) error {
	if f.e.stream.Trusted() != f.term {
		return &election.FencedError{Expected: f.term, Actual: f.e.stream.Lease().Term}
	}
	b.Queue(f.e.sql.fenceQueue, f.e.lockID, f.term)
	return nil
}

// Refusal tells the error of the statement QueueCheck queued: the check
// failing (the row records another term, or none) steps down and returns the
// *election.FencedError Check would have, with the term read afresh, outside
// the failed transaction; any other error is not a refusal (nil).
func (f Fence) Refusal(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != invalidTextRepresentation {
		return nil
	}
	var current int64
	if err := f.e.cfg.Pool.QueryRow(ctx, f.e.sql.fenceTerm, f.e.lockID).Scan(&current); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		f.e.logger.WarnContext(ctx, "fenced write refused; reading the recorded term failed", "term", f.term, "err", err)
	}
	f.e.stepDown(f.term, fmt.Errorf("fenced write: election records term %d", current))
	return &election.FencedError{Expected: f.term, Actual: current}
}

// invalidTextRepresentation is the SQLSTATE of fenceQueue's refusal.
const invalidTextRepresentation = "22P02"

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
